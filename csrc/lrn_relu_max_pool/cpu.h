// CPU ReLU + LRN + max-pool, forward and backward, over an NHWC tensor: AlexNet's block in one
// op. Framework-neutral: pointers, the geometry (pooling.h), the LRN parameters and a
// parallel-for. The LRN output is never stored: the forward writes only the pooled tensor,
// and the backward recomputes what it needs from x and dpooled.
#pragma once

#include "common/numeric.h"
#include "common/parallel.h"
#include "common/params.h"
#include "common/status.h"
#include "lrn_relu_max_pool/pooling.h"

namespace alexops {

// pooled[n, oh, ow, c] = max over the window of y = LRN(relu(x)) (y rounded to T first, as the
// composite stores it). The max skips NaN, as TensorFlow's CPU max-pool does: a window of
// nothing but NaN gives T's lowest value. pooled must not overlap x.
template <typename T>
Status lrn_relu_max_pool_forward_cpu(const LrnParams& params, const PoolGeometry& geometry, const T* x, T* pooled,
                                     const ParallelFor& parallel_for);

// dx given dpooled: each dpooled entry goes to the first maximum of its window in row-major
// order (a window of equal values sends it to its top-left member), as TensorFlow's max-pool
// gradient does; the LRN's gradient follows from x. dx must not overlap x or dpooled.
template <typename T>
Status lrn_relu_max_pool_backward_cpu(const LrnParams& params, const PoolGeometry& geometry, const T* x,
                                      const T* dpooled, T* dx, const ParallelFor& parallel_for);

}  // namespace alexops
