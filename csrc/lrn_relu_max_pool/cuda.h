// CUDA ReLU + LRN + max-pool launchers, forward and backward (the contract of cpu.h).
// Framework-neutral: device pointers, the geometry, the LRN parameters and the caller's
// stream; no CUDA include, so host-only translation units can use it.
#pragma once

#include "common/numeric.h"
#include "common/params.h"
#include "common/status.h"
#include "lrn_relu_max_pool/pooling.h"

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace alexops {

// Ok, InvalidArgument (parameters, or rows too wide for a block's shared memory) or Internal
// (a CUDA error). Asynchronous on `stream`. pooled must not overlap x; dx must not overlap x
// or dpooled.
template <typename T>
Status lrn_relu_max_pool_forward_cuda(const LrnParams& params, const PoolGeometry& geometry, const T* x, T* pooled,
                                      cudaStream_t stream);

template <typename T>
Status lrn_relu_max_pool_backward_cuda(const LrnParams& params, const PoolGeometry& geometry, const T* x,
                                       const T* dpooled, T* dx, cudaStream_t stream);

// Output rows per block of version 2's backward (a band, which computes an LRN row two of its
// windows share once): 2 where the batch gives enough blocks, else 1, or
// ALEXOPS_CUDA_POOL_BAND_ROWS=N (tests, tuning; a value that is not a positive count is
// ignored, with a line on stderr).
int64_t cuda_pool_band_rows(const PoolGeometry& geometry);

}  // namespace alexops
