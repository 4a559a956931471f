// CPU LRN(+ReLU), forward and backward, over NHWC data seen as [n_pixels, channels].
// Framework-neutral: the caller hands in pointers, sizes, the parameters and a parallel-for.
#pragma once

#include <cstdint>
#include <functional>

#include "lrn_relu/numeric.h"
#include "lrn_relu/params.h"

namespace alexops {

using RangeFn = std::function<void(int64_t begin, int64_t end)>;
// Calls fn on disjoint ranges covering [0, n_units), possibly concurrently. cost_per_unit is
// a rough per-unit cost in CPU cycles, for schedulers that size their shards by it.
using ParallelFor = std::function<void(int64_t n_units, int64_t cost_per_unit, const RangeFn& fn)>;

// Runs fn(0, n_units) on the calling thread.
void serial_for(int64_t n_units, int64_t cost_per_unit, const RangeFn& fn);

// y may equal x (in place). T is float, double, half_bits or bfloat16_bits.
template <typename T>
void lrn_relu_forward_cpu(const LrnParams& params, const T* x, T* y, int64_t n_pixels,
                          int64_t channels, const ParallelFor& parallel_for);

// dx = d(loss)/dx given dy = d(loss)/dy; the norm is recomputed from x. dx may equal dy or x.
template <typename T>
void lrn_relu_backward_cpu(const LrnParams& params, const T* x, const T* dy, T* dx,
                           int64_t n_pixels, int64_t channels, const ParallelFor& parallel_for);

}  // namespace alexops
