// How the CPU kernels are spread over threads: the caller hands in a parallel-for (TensorFlow's
// worker threads, or alexops' own pool for the pybind11 door), and the kernels call it.
#pragma once

#include <cstdint>
#include <functional>

namespace alexops {

using RangeFn = std::function<void(int64_t begin, int64_t end)>;
// Calls fn on disjoint ranges covering [0, n_units), possibly concurrently. cost_per_unit is
// a rough per-unit cost in CPU cycles, for schedulers that size their shards by it. fn must
// not throw: the kernels catch what they can raise and report it through their Status.
using ParallelFor = std::function<void(int64_t n_units, int64_t cost_per_unit, const RangeFn& fn)>;

// Runs fn(0, n_units) on the calling thread.
inline void serial_for(int64_t n_units, int64_t, const RangeFn& fn) {
  if (n_units > 0) fn(0, n_units);
}

}  // namespace alexops
