// CPU LRN(+ReLU), forward and backward, over NHWC data seen as [n_pixels, channels].
// Framework-neutral: the caller hands in pointers, sizes, the parameters and a parallel-for.
#pragma once

#include <cstdint>

#include "common/numeric.h"
#include "common/parallel.h"
#include "common/params.h"
#include "common/status.h"

namespace alexops {

// y may equal x (in place), but must not overlap it otherwise. T is float, double, half_bits
// or bfloat16_bits. Returns ResourceExhausted when a thread cannot get its scratch memory
// (nothing is thrown, on any thread); y is then incomplete.
template <typename T>
Status lrn_relu_forward_cpu(const LrnParams& params, const T* x, T* y, int64_t n_pixels,
                          int64_t channels, const ParallelFor& parallel_for);

// dx = d(loss)/dx given dy = d(loss)/dy; the norm is recomputed from x. dx may equal dy or x
// (and must not overlap them otherwise). Errors as for the forward.
template <typename T>
Status lrn_relu_backward_cpu(const LrnParams& params, const T* x, const T* dy, T* dx,
                           int64_t n_pixels, int64_t channels, const ParallelFor& parallel_for);

}  // namespace alexops
