// The CUDA launchers' non-template parts: version 2's band of output rows per block.
// The kernels themselves are in cuda_kernels.cuh, instantiated per type in cuda_<type>.cu.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "lrn_relu_max_pool/cuda.h"

namespace alexops {
namespace {

// A longer band computes fewer LRN rows twice (AlexNet's 3x3/2 windows: 2B + 1 rows for B
// output rows forward, 2B + 3 for the 2B rows a band owns backward), but fewer bands spread
// over fewer SMs: about this many blocks, a few waves of a large card's SMs.
constexpr int64_t kBandBlocks = 640;

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
  return std::clamp<int64_t>(chosen > 0 ? chosen : geometry.batch * geometry.out_rows / kBandBlocks, 1, most);
}

}  // namespace alexops
