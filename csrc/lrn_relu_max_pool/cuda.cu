// The CUDA launchers' non-template parts: version 2's backward's band of output rows per block.
// The kernels themselves are in cuda_kernels.cuh, instantiated per type in cuda_<type>.cu.
#include <algorithm>
#include <cstdint>

#include "common/environment.h"
#include "lrn_relu_max_pool/cuda.h"

namespace alexops {
namespace {

// A longer band computes fewer LRN rows twice (AlexNet's 3x3/2 windows: 2B + 3 rows for the
// 2B input rows a band owns), but fewer bands spread over fewer SMs. On an H200, with the
// division-free backward, bands of 4 gave the fastest backward at both of AlexNet's shapes,
// [64,56,56,64] and [64,27,27,192], among bands of 1, 2, 3, 4 and 6 (BENCHMARKS.md, the
// fifteenth session): the longest of bands of 4 and 2 that leaves at least this many blocks
// (about two per SM of a 132-SM card), else 1.
constexpr int64_t kMinBandBlocks = 256;
constexpr int64_t kBandRowsToTry[] = {4, 2};

// ALEXOPS_CUDA_POOL_BAND_ROWS, read once: 0 where it is unset (or not a positive count).
int64_t band_rows_from_environment() {
  static const int64_t chosen = positive_count_from_environment("ALEXOPS_CUDA_POOL_BAND_ROWS", 1 << 20);
  return chosen;
}

}  // namespace

int64_t cuda_pool_band_rows(const PoolGeometry& geometry) {
  const int64_t chosen = band_rows_from_environment();
  const int64_t most = std::max<int64_t>(1, geometry.out_rows);
  if (chosen > 0) return std::min(chosen, most);
  for (const int64_t rows : kBandRowsToTry) {
    if (geometry.batch * ((geometry.out_rows + rows - 1) / rows) >= kMinBandBlocks) return std::min(rows, most);
  }
  return 1;
}

}  // namespace alexops
