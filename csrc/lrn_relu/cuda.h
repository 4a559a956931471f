// CUDA LRN(+ReLU) launchers, forward and backward, NHWC data seen as [n_pixels, channels].
// Framework-neutral: device pointers, sizes, parameters and the caller's stream. This header
// needs no CUDA include, so host-only translation units (the pybind11 module) can use it.
#pragma once

#include <cstdint>

#include "common/numeric.h"
#include "common/params.h"
#include "common/status.h"

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace alexops {

// Each returns Ok, InvalidArgument (parameters, or a size the kernel cannot take) or
// Internal (a CUDA error). Launches are asynchronous on `stream`; y may equal x, dx may
// equal dy or x.
template <typename T>
Status lrn_relu_forward_cuda(const LrnParams& params, const T* x, T* y, int64_t n_pixels,
                                  int64_t channels, cudaStream_t stream);

template <typename T>
Status lrn_relu_backward_cuda(const LrnParams& params, const T* x, const T* dy, T* dx,
                                   int64_t n_pixels, int64_t channels, cudaStream_t stream);

}  // namespace alexops
