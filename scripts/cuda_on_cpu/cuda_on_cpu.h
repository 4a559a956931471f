// Runs the project's CUDA kernels on the CPU, for checking their logic on a machine without
// a GPU: every CUDA thread of a block is a std::thread, __syncthreads is a barrier of the
// block's threads, and a warp shuffle is an exchange through memory between two barriers of
// the warp's 32 threads. Blocks run one after another, so one buffer serves as every block's
// shared memory. Nothing here says anything about speed. A barrier missing between two
// threads' accesses to one place usually leaves the results right here (the threads seldom
// interleave as a card's warps would), so run.sh can build it all with ThreadSanitizer, which
// reports such a pair however they happened to run: the barriers are std::barrier, whose
// ordering it follows. Races between blocks, which run one after another here, and shared
// memory ordered by nothing but a warp shuffle (a barrier of the warp here, not on a card)
// stay for compute-sanitizer on a card.
//
// scripts/cuda_on_cpu/run.sh builds it: it rewrites each launch `k<<<grid, block, bytes,
// stream>>>(args)` of the .cu files as `cuda_on_cpu::launch(grid, block, bytes, [&] { k(args); })`,
// then compiles them with g++ after this header, which stands in for CUDA's device-side names.
#pragma once

#include <cuda_runtime.h>  // host-side types: dim3, float4, cudaError_t (no libcudart is linked)
#include <math.h>

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace cuda_on_cpu {

constexpr int kWarp = 32;
constexpr size_t kSharedBytes = 256 * 1024;  // more than any GPU gives a block

struct Block {
  std::barrier<> threads;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  std::vector<uint64_t> lanes;  // one 8-byte slot per thread, for the shuffles
  explicit Block(int n_threads) : threads(n_threads), lanes(n_threads) {
    for (int w = 0; w < (n_threads + kWarp - 1) / kWarp; ++w)
      warps.push_back(std::make_unique<std::barrier<>>(std::min(kWarp, n_threads - w * kWarp)));
  }
};

struct ThreadState {
  uint3 thread_idx{}, block_idx{};
  Block* block = nullptr;
};
inline thread_local ThreadState current;
inline dim3 grid_dim, block_dim;

// Runs kernel() once per thread of every block of the grid (1-D grids and blocks).
inline void launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& kernel) {
  if (shared_bytes > kSharedBytes) std::abort();
  grid_dim = grid, block_dim = block;
  for (unsigned b = 0; b < grid.x; ++b) {
    Block state(int(block.x));
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < block.x; ++t)
      threads.emplace_back([&, t] {
        current.thread_idx = {t, 0, 0};
        current.block_idx = {b, 0, 0};
        current.block = &state;
        kernel();
      });
    for (auto& thread : threads) thread.join();
  }
}
inline void launch(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t, const std::function<void()>& kernel) {
  launch(grid, block, shared_bytes, kernel);
}

// value of the lane `source(lane)` of this thread's warp (its own where the source is out of range).
template <typename V, typename Source>
V exchange(V value, Source source) {
  static_assert(sizeof(V) <= 8, "one 8-byte slot per lane");
  Block& block = *current.block;
  const int t = int(current.thread_idx.x), warp = t / kWarp, lane = t % kWarp;
  std::memcpy(&block.lanes[t], &value, sizeof value);
  block.warps[warp]->arrive_and_wait();
  V out;
  std::memcpy(&out, &block.lanes[warp * kWarp + source(lane)], sizeof out);
  block.warps[warp]->arrive_and_wait();  // no lane overwrites its slot before all have read
  return out;
}

}  // namespace cuda_on_cpu

#define threadIdx (cuda_on_cpu::current.thread_idx)
#define blockIdx (cuda_on_cpu::current.block_idx)
#define blockDim (cuda_on_cpu::block_dim)
#define gridDim (cuda_on_cpu::grid_dim)
#undef __launch_bounds__
#define __launch_bounds__(...)
#undef __shared__
#define __shared__

inline void __syncthreads() { cuda_on_cpu::current.block->threads.arrive_and_wait(); }

template <typename V>
V __shfl_up_sync(unsigned, V value, unsigned delta, int width = cuda_on_cpu::kWarp) {
  return cuda_on_cpu::exchange(value, [&](int lane) {
    return lane % width >= int(delta) ? lane - int(delta) : lane;
  });
}
template <typename V>
V __shfl_down_sync(unsigned, V value, unsigned delta, int width = cuda_on_cpu::kWarp) {
  return cuda_on_cpu::exchange(value, [&](int lane) {
    return lane % width + int(delta) < width ? lane + int(delta) : lane;
  });
}

inline float rsqrtf(float v) { return 1.0f / sqrtf(v); }
inline double rsqrt(double v) { return 1.0 / sqrt(v); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }

// The runtime calls the launchers make, answered as a GPU with room for everything would.
extern "C" {
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* device) { *device = 0; return cudaSuccess; }
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr, int) {
  *value = 227 * 1024;  // an H100's opt-in shared memory per block (and plenty for other attributes)
  return cudaSuccess;
}
inline const char* cudaGetErrorName(cudaError_t) { return "cudaError"; }
inline const char* cudaGetErrorString(cudaError_t) { return "(emulated)"; }
}
template <typename F>
cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) { return cudaSuccess; }

// The kernels' dynamic shared memory (`extern __shared__ ... scratch[]` inside their
// shared_scratch(), in alexops' unnamed namespace): one buffer, as blocks run one at a time.
namespace alexops {
namespace {
alignas(16) unsigned char scratch[cuda_on_cpu::kSharedBytes];
}  // namespace
}  // namespace alexops
