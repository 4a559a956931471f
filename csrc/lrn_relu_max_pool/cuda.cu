// The CUDA launchers' non-template parts: version 2's backward's band of output rows per block.
// The kernels themselves are in cuda_kernels.cuh, instantiated per type in cuda_<type>.cu.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "lrn_relu_max_pool/cuda.h"

namespace alexops {
namespace {

// A longer band computes fewer LRN rows twice (AlexNet's 3x3/2 windows: 2B + 3 rows for the
// 2B input rows a band owns), but fewer bands spread over fewer SMs. On an H200, bands of 2
// gave the fastest backward at AlexNet's [64,56,56,64] and came within 6% of the fastest
// (bands of 4) at [64,27,27,192], among bands of 1, 2, 3, 4 and 6 (BENCHMARKS.md): bands of
// 2 where that leaves at least this many blocks (two per SM of a 132-SM card), else 1.
constexpr int64_t kMinBandBlocks = 264;

// ALEXOPS_CUDA_POOL_BAND_ROWS, read once: 0 where it is unset (or not a positive count).
int64_t band_rows_from_environment() {
  static const int64_t chosen = [] {
    const char* text = std::getenv("ALEXOPS_CUDA_POOL_BAND_ROWS");
    if (text == nullptr || *text == '\0') return int64_t(0);
    char* end = nullptr;
    const long long value = std::strtoll(text, &end, 10);
    if (*end != '\0' || value < 1 || value > (1 << 20)) {
      std::fprintf(stderr, "alexops: ALEXOPS_CUDA_POOL_BAND_ROWS=%s is not a positive count of rows; ignored\n", text);
      return int64_t(0);
    }
    return int64_t(value);
  }();
  return chosen;
}

}  // namespace

int64_t cuda_pool_band_rows(const PoolGeometry& geometry) {
  const int64_t chosen = band_rows_from_environment();
  const int64_t most = std::max<int64_t>(1, geometry.out_rows);
  const int64_t pairs = geometry.batch * ((geometry.out_rows + 1) / 2);
  return std::min<int64_t>(chosen > 0 ? chosen : (pairs >= kMinBandBlocks ? 2 : 1), most);
}

}  // namespace alexops
