// CUDA LRN(+ReLU) kernels, forward and backward: the templates. Each storage type is
// instantiated in a file of its own (cuda_float.cu, ...), so that the build compiles them in
// parallel. Two kernels, one contract:
//
// The register kernel (AlexNet's shapes, and most others): C a multiple of the 16-byte
// vector width, at most 4 vectors per lane and 32 lanes per pixel (512 floats, 1024 halves,
// 256 doubles), depth_radius <= 8. A group of G lanes (a power of two) owns a pixel; each
// lane holds a run of K * V channels, loaded and stored with 16-byte accesses. The R
// neighbouring channels on either side come from the neighbour lanes by warp shuffles, and
// every window is a direct sum of its own terms (no add/subtract drift, as on the CPU). No
// shared memory, no barriers, no per-element division; a thread has up to two pixels'
// loads in flight.
//
// The tiled kernel (everything else): a block takes a tile of whole pixels (one contiguous
// run of NHWC memory) into shared memory, as rows padded with R zeros on each side to an
// odd stride (so rows of neighbouring pixels fall in different banks). Windows are direct
// sums for R <= 8 and block scans above (the van Herk split, explained in
// common/lrn_rows_cpu.h): O(1) work per element for any radius.
//
// Both compute in float for the 16-bit types and float, in double for double. Unlike the CPU
// kernels they have no double-precision path for extreme norms: as in cuDNN, a float
// gradient whose window terms underflow (norms beyond ~1e30) loses them.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "common/cuda_launch.cuh"
#include "common/lrn_lanes_cuda.cuh"
#include "common/lrn_math_cuda.cuh"
#include "lrn_relu/cuda.h"

namespace alexops {
namespace {

// ============================== the register kernel ======================================

constexpr int kRegisterThreads = 256;
using RegisterLayout = CudaRegisterLayout;

// Pixels a thread has in flight per iteration: two while its runs are short, one for long
// runs (the registers they would take cost more occupancy than the loads in flight gain).
// 16-bit runs of one vector take four: at two, the backward's 93 registers allowed only 2
// blocks per SM, so half float32's bytes were in flight; four fills the same 128-register
// budget and doubles them (forward+backward at C = 64 on an H100: 1.36x the copy -> 1.28x;
// docs/gpu-tuning.md).
template <typename T, int K>
constexpr int kPixelsInFlight = K <= 2 ? (sizeof(T) == 2 && K == 1 ? 4 : 2) : 1;

// Every lane of a warp goes through the same iterations (the shuffles need all 32): a warp
// takes 32 / G pixels at a time, kPixelsInFlight times over, and masks the ones past the end.
struct WarpPixels {
  int64_t first, stride;
  int pixels_per_warp;
  __device__ WarpPixels(int group_shift, int in_flight) {
    pixels_per_warp = 32 >> group_shift;
    const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    const int64_t warps = (int64_t(gridDim.x) * blockDim.x) >> 5;
    first = warp * pixels_per_warp * in_flight;
    stride = warps * pixels_per_warp * in_flight;
  }
};

template <PowerKind kKind, typename T, int K, int RMAX, typename A = Acc<T>>
__global__ void __launch_bounds__(kRegisterThreads, 2)
forward_registers(RegisterParams<A> p, const T* x, T* y, int64_t n_pixels) {
  constexpr int RUN = K * Packet<T>::kCount, P = kPixelsInFlight<T, K>;
  const int lane = threadIdx.x & 31, sub = lane & (p.group_lanes - 1), pixel_in_warp = lane >> p.group_shift;
  const WarpPixels w(p.group_shift, P);
  for (int64_t first = w.first; first < n_pixels; first += w.stride) {
    A r[P][RUN];
#pragma unroll
    for (int i = 0; i < P; ++i) {
      const int64_t pixel = first + int64_t(i) * w.pixels_per_warp + pixel_in_warp;
      load_run<T, K>(x + pixel * p.channels + sub * RUN, pixel < n_pixels, r[i]);
#pragma unroll
      for (int j = 0; j < RUN; ++j)
        if (p.relu && r[i][j] < A(0)) r[i][j] = A(0);  // NaN passes through, as in tf.nn.relu
    }
#pragma unroll
    for (int i = 0; i < P; ++i) {
      const int64_t pixel = first + int64_t(i) * w.pixels_per_warp + pixel_in_warp;
      A out[RUN];
      lane_forward<kKind, RUN, RMAX>(p, sub, r[i], out);
      if (pixel < n_pixels) store_run<T, K>(y + pixel * p.channels + sub * RUN, out);
    }
  }
}

template <PowerKind kKind, typename T, int K, int RMAX, typename A = Acc<T>>
__global__ void __launch_bounds__(kRegisterThreads, 2)
backward_registers(RegisterParams<A> p, const T* x, const T* dy, T* dx, int64_t n_pixels) {
  constexpr int RUN = K * Packet<T>::kCount, P = kPixelsInFlight<T, K>;
  const int lane = threadIdx.x & 31, sub = lane & (p.group_lanes - 1), pixel_in_warp = lane >> p.group_shift;
  const WarpPixels w(p.group_shift, P);
  for (int64_t first = w.first; first < n_pixels; first += w.stride) {
    A r[P][RUN], g[P][RUN];
#pragma unroll
    for (int i = 0; i < P; ++i) {
      const int64_t pixel = first + int64_t(i) * w.pixels_per_warp + pixel_in_warp;
      const int64_t offset = pixel * p.channels + sub * RUN;
      load_run<T, K>(x + offset, pixel < n_pixels, r[i]);
      load_run<T, K>(dy + offset, pixel < n_pixels, g[i]);
#pragma unroll
      for (int j = 0; j < RUN; ++j)
        if (p.relu && r[i][j] < A(0)) r[i][j] = A(0);
    }
#pragma unroll
    for (int i = 0; i < P; ++i) {
      const int64_t pixel = first + int64_t(i) * w.pixels_per_warp + pixel_in_warp;
      lane_backward<kKind, RUN, RMAX>(p, sub, r[i], g[i]);
      if (pixel < n_pixels) store_run<T, K>(dx + pixel * p.channels + sub * RUN, g[i]);
    }
  }
}

template <typename A>
RegisterParams<A> register_params(const LrnParams& params, int64_t channels, const RegisterLayout& layout) {
  return RegisterParams<A>{A(params.bias), A(params.alpha), A(params.beta), params.relu, int(channels),
                           int(effective_radius(params.depth_radius, channels)), 1 << layout.group_shift,
                           layout.group_shift};
}

unsigned register_grid(int64_t n_pixels, const RegisterLayout& layout, int in_flight) {
  const int64_t pixels_per_block = (kRegisterThreads >> 5) * (32 >> layout.group_shift) * int64_t(in_flight);
  return unsigned(std::min((n_pixels + pixels_per_block - 1) / pixels_per_block, kMaxGridBlocks));
}

// ============================== the tiled kernel ==========================================

constexpr int kTiledThreads = 256;
// The most threads an SM runs, for the architecture being compiled: 1024 on Turing, 1536 on
// the consumer Amperes and Ada, 2048 on the A100 and Hopper.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 750
constexpr int kMaxThreadsPerSM = 1024;
#elif defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 860 || __CUDA_ARCH__ == 870 || __CUDA_ARCH__ == 890)
constexpr int kMaxThreadsPerSM = 1536;
#else
constexpr int kMaxThreadsPerSM = 2048;
#endif
// Blocks of the tiled kernel an SM should hold: all the threads it runs (8 on Hopper: at
// most 32 registers each) in float; 6 in double, whose pow needs more than 32 not to spill.
template <typename A>
constexpr int kTiledBlocksPerSM = std::min(kMaxThreadsPerSM / kTiledThreads, sizeof(A) == 8 ? 6 : 8);
// Shared memory per block: 24 KiB lets 8 blocks (2048 threads, the most an SM runs) share
// the 228 KiB of a Hopper SM; an A100's 164 KiB fits 6.
constexpr int64_t kTargetTileBytes = 24 * 1024;
constexpr int kDirectMaxRadius = 8;

template <typename A>
struct TiledParams {
  A bias, alpha, beta;
  bool relu;
  int channels, radius;
  int stride;        // padded row: R zeros, C channels, R zeros, rounded up to an odd length
  int tile_pixels;   // pixels per tile
  bool direct;       // window sums by direct addition (R <= 8), else by block scans
};

template <typename A>
__device__ inline A* shared_scratch() {
  extern __shared__ __align__(16) unsigned char scratch[];
  return reinterpret_cast<A*>(scratch);
}

// Block prefix and suffix sums over the padded rows of `values` (squared if kSquare), for
// the radii past kDirectMaxRadius. One thread per (pixel, block of 2R+1 rows).
template <bool kSquare, typename A>
__device__ void block_scans(const TiledParams<A>& p, int pixels, const A* values, A* prefix, A* suffix) {
  const int width = 2 * p.radius + 1, rows = p.channels + 2 * p.radius;
  const int blocks = (rows + width - 1) / width;
  for (int job = threadIdx.x; job < pixels * blocks; job += blockDim.x) {
    const int pix = job / blocks, b0 = (job - pix * blocks) * width;
    const int b1 = min(b0 + width, rows);
    const A* row = values + pix * p.stride;
    A* pre = prefix + pix * p.stride;
    A* suf = suffix + pix * p.stride;
    A acc = 0;
    for (int i = b0; i < b1; ++i) pre[i] = acc += kSquare ? row[i] * row[i] : row[i];
    acc = 0;
    for (int i = b1 - 1; i >= b0; --i) suf[i] = acc += kSquare ? row[i] * row[i] : row[i];
  }
}

// The window over channels [c-R, c+R] of pixel `pix` (squared terms if kSquare): padded rows
// [c, c+2R], summed directly or read off the block scans.
template <bool kSquare, typename A>
__device__ inline A tile_window(const TiledParams<A>& p, const A* values, const A* prefix, const A* suffix, int pix,
                                int c) {
  const int base = pix * p.stride;
  if (p.direct) {
    A sum = 0;
    for (int d = 0; d <= 2 * p.radius; ++d) {
      const A v = values[base + c + d];
      sum += kSquare ? v * v : v;
    }
    return sum;
  }
  const int width = 2 * p.radius + 1;
  A sum = prefix[base + c + 2 * p.radius];
  if (c % width != 0) sum += suffix[base + c];  // one division per element, on the R > 8 path only
  return sum;
}

// Zeroes the R pads on both sides of every row of a padded tile array: the loop below writes
// only channels, so the pads stay zero from tile to tile.
template <typename A>
__device__ void zero_pads(const TiledParams<A>& p, A* padded) {
  const int pad_entries = p.stride - p.channels;
  for (int i = threadIdx.x; i < p.tile_pixels * pad_entries; i += blockDim.x) {
    const int pix = i / pad_entries, k = i - pix * pad_entries;
    padded[pix * p.stride + (k < p.radius ? k : p.channels + k)] = A(0);
  }
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
__global__ void __launch_bounds__(kTiledThreads, kTiledBlocksPerSM<A>)
forward_tiled(TiledParams<A> p, const T* x, T* y, int64_t n_pixels, int64_t n_tiles) {
  const int C = p.channels;
  A* r = shared_scratch<A>();                          // [tile_pixels][stride], padded
  A* prefix = r + p.tile_pixels * p.stride;            // block scans (R > 8 only)
  A* suffix = prefix + (p.direct ? 0 : p.tile_pixels * p.stride);
  zero_pads(p, r);
  const TileWalk walk(C);
  for (int64_t tile = blockIdx.x; tile < n_tiles; tile += gridDim.x) {
    const int64_t first = tile * p.tile_pixels;
    const int pixels = int(min(int64_t(p.tile_pixels), n_pixels - first));
    const T* xt = x + first * C;
    walk.each(pixels, C, [&](int pix, int c) {
      const A v = DeviceIO<T>::load(xt + pix * C + c);
      r[pix * p.stride + p.radius + c] = (p.relu && v < A(0)) ? A(0) : v;  // NaN passes through
    });
    __syncthreads();
    if (!p.direct) {
      block_scans<true>(p, pixels, r, prefix, suffix);
      __syncthreads();
    }
    T* yt = y + first * C;
    walk.each(pixels, C, [&](int pix, int c) {
      A power, inverse;
      norm_powers<kKind>(p.bias + p.alpha * tile_window<true>(p, r, prefix, suffix, pix, c), p.beta, power, inverse);
      DeviceIO<T>::store(r[pix * p.stride + p.radius + c] * power, yt + pix * C + c);
    });
    __syncthreads();  // the next tile reuses the scratch
  }
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
__global__ void __launch_bounds__(kTiledThreads, kTiledBlocksPerSM<A>)
backward_tiled(TiledParams<A> p, const T* x, const T* dy, T* dx, int64_t n_pixels, int64_t n_tiles) {
  const int C = p.channels;
  const int padded_size = p.tile_pixels * p.stride;
  A* r = shared_scratch<A>();         // relu(x), padded
  A* t = r + padded_size;             // dy * r * N^(-beta-1), padded
  A* g = t + padded_size;             // dy, then dy * N^(-beta): [tile_pixels][C]
  A* prefix = g + p.tile_pixels * C;  // block scans (R > 8 only)
  A* suffix = prefix + (p.direct ? 0 : padded_size);
  zero_pads(p, r);
  zero_pads(p, t);
  const TileWalk walk(C);
  const A two_alpha_beta = A(2) * p.alpha * p.beta;
  for (int64_t tile = blockIdx.x; tile < n_tiles; tile += gridDim.x) {
    const int64_t first = tile * p.tile_pixels;
    const int pixels = int(min(int64_t(p.tile_pixels), n_pixels - first));
    const T* xt = x + first * C;
    const T* dyt = dy + first * C;
    walk.each(pixels, C, [&](int pix, int c) {
      const A v = DeviceIO<T>::load(xt + pix * C + c);
      r[pix * p.stride + p.radius + c] = (p.relu && v < A(0)) ? A(0) : v;
      g[pix * C + c] = DeviceIO<T>::load(dyt + pix * C + c);
    });
    __syncthreads();
    if (!p.direct) {
      block_scans<true>(p, pixels, r, prefix, suffix);
      __syncthreads();
    }
    walk.each(pixels, C, [&](int pix, int c) {
      A power, inverse;
      norm_powers<kKind>(p.bias + p.alpha * tile_window<true>(p, r, prefix, suffix, pix, c), p.beta, power, inverse);
      const A scaled = g[pix * C + c] * power;
      t[pix * p.stride + p.radius + c] = scaled * r[pix * p.stride + p.radius + c] * inverse;
      g[pix * C + c] = scaled;
    });
    __syncthreads();
    if (!p.direct) {
      block_scans<false>(p, pixels, t, prefix, suffix);
      __syncthreads();
    }
    T* dxt = dx + first * C;
    walk.each(pixels, C, [&](int pix, int c) {
      const A rc = r[pix * p.stride + p.radius + c];
      const A d_r = g[pix * C + c] - two_alpha_beta * rc * tile_window<false>(p, t, prefix, suffix, pix, c);
      DeviceIO<T>::store((p.relu && !(rc > A(0))) ? A(0) : d_r, dxt + pix * C + c);  // ReluGrad
    });
    __syncthreads();
  }
}

// Sizes the tile from the shared memory one pixel needs, opts the kernel into more than
// 48 KiB when a single pixel needs it, and launches on `stream`.
template <typename A, typename Kernel, typename... Args>
Status launch_tiled(Kernel kernel, TiledParams<A> p, int padded_arrays, int channel_arrays, int64_t n_pixels,
                    cudaStream_t stream, Args... args) {
  const int scan_arrays = p.direct ? 0 : 2;
  const int64_t bytes_per_pixel =
      int64_t(sizeof(A)) * ((padded_arrays + scan_arrays) * int64_t(p.stride) + channel_arrays * int64_t(p.channels));
  p.tile_pixels = int(std::max<int64_t>(1, std::min(kTargetTileBytes / bytes_per_pixel, n_pixels)));
  const int64_t shared_bytes = p.tile_pixels * bytes_per_pixel;
  const Status room = opt_in_shared_memory(kernel, shared_bytes, [&] {
    return "channels=" + std::to_string(p.channels) + " is too many for the GPU kernel: one pixel";
  });
  if (!room.ok()) return room;
  const int64_t n_tiles = (n_pixels + p.tile_pixels - 1) / p.tile_pixels;
  const unsigned grid = unsigned(std::min(n_tiles, kMaxGridBlocks));
  kernel<<<grid, kTiledThreads, shared_bytes, stream>>>(p, args..., n_pixels, n_tiles);
  return last_launch_status("launching the tiled LRN kernel");
}

template <typename A>
TiledParams<A> tiled_params(const LrnParams& params, int64_t channels) {
  const int64_t radius = effective_radius(params.depth_radius, channels);
  const int64_t stride = (channels + 2 * radius) | 1;  // odd: rows of neighbouring pixels in different banks
  return TiledParams<A>{A(params.bias), A(params.alpha), A(params.beta), params.relu, int(channels), int(radius),
                        int(stride), 0, radius <= kDirectMaxRadius};
}

// ============================== dispatch ==================================================

}  // namespace

namespace {

// Checks the sizes, and picks the kernel: the register one where it applies (or is asked
// for), else the tiled one. Returns InvalidArgument for sizes no kernel takes.
Status choose_kernel(const LrnParams& params, int64_t n_pixels, int64_t channels, int element_bytes,
                     std::initializer_list<const void*> pointers, CudaKernel requested, bool* use_registers,
                     RegisterLayout* layout) {
  Status status = validate(params, n_pixels, channels);
  if (!status.ok()) return status;
  if (channels > (int64_t(1) << 24))
    return Status::InvalidArgument("channels=" + std::to_string(channels) + " is too many for the GPU kernel");
  if (requested == CudaKernel::kAuto) requested = kernel_from_environment();
  const int64_t radius = effective_radius(params.depth_radius, channels);
  const bool fits = register_layout(channels, radius, element_bytes, pointers, layout);
  if (requested == CudaKernel::kRegisters && !fits)
    return Status::InvalidArgument("the register kernel does not take channels=" + std::to_string(channels) +
                                   ", depth_radius=" + std::to_string(params.depth_radius) + " here (" +
                                   kCudaRegisterKernelScope + "); use kernel 'tiled' or 'auto'");
  *use_registers = fits && requested != CudaKernel::kTiled;
  return Status::Ok();
}

}  // namespace

template <typename T>
Status lrn_relu_forward_cuda(const LrnParams& params, const T* x, T* y, int64_t n_pixels, int64_t channels,
                             cudaStream_t stream, CudaKernel kernel) {
  using A = Acc<T>;
  bool use_registers = false;
  RegisterLayout layout;
  Status status = choose_kernel(params, n_pixels, channels, int(sizeof(T)), {x, y}, kernel, &use_registers,
                                &layout);
  if (!status.ok() || n_pixels == 0 || channels == 0) return status;
  with_power_kind(params.beta, [&](auto kind) {
    constexpr PowerKind kKind = decltype(kind)::value;
    if (use_registers) {
      with_register_shape<T>(layout, [&](auto k, auto max_radius) {
        constexpr int K = decltype(k)::value, RMAX = decltype(max_radius)::value;
        forward_registers<kKind, T, K, RMAX><<<register_grid(n_pixels, layout, kPixelsInFlight<T, K>), kRegisterThreads,
                                               0, stream>>>(register_params<A>(params, channels, layout), x, y,
                                                            n_pixels);
      });
      status = last_launch_status("launching the register LRN kernel");
    } else {
      status = launch_tiled(forward_tiled<kKind, T>, tiled_params<A>(params, channels), 1, 0, n_pixels, stream, x, y);
    }
  });
  return status;
}

template <typename T>
Status lrn_relu_backward_cuda(const LrnParams& params, const T* x, const T* dy, T* dx, int64_t n_pixels,
                              int64_t channels, cudaStream_t stream, CudaKernel kernel) {
  using A = Acc<T>;
  bool use_registers = false;
  RegisterLayout layout;
  Status status = choose_kernel(params, n_pixels, channels, int(sizeof(T)), {x, dy, dx}, kernel,
                                &use_registers, &layout);
  if (!status.ok() || n_pixels == 0 || channels == 0) return status;
  with_power_kind(params.beta, [&](auto kind) {
    constexpr PowerKind kKind = decltype(kind)::value;
    if (use_registers) {
      with_register_shape<T>(layout, [&](auto k, auto max_radius) {
        constexpr int K = decltype(k)::value, RMAX = decltype(max_radius)::value;
        backward_registers<kKind, T, K, RMAX><<<register_grid(n_pixels, layout, kPixelsInFlight<T, K>), kRegisterThreads,
                                                0, stream>>>(register_params<A>(params, channels, layout), x, dy, dx,
                                                             n_pixels);
      });
      status = last_launch_status("launching the register LRN kernel");
    } else {
      status = launch_tiled(backward_tiled<kKind, T>, tiled_params<A>(params, channels), 2, 1, n_pixels, stream, x,
                            dy, dx);
    }
  });
  return status;
}

// Instantiates both launchers for storage type T (one cuda_<type>.cu each).
#define ALEXOPS_INSTANTIATE_CUDA(T)                                                                     \
  template Status lrn_relu_forward_cuda<T>(const LrnParams&, const T*, T*, int64_t, int64_t, cudaStream_t, \
                                           CudaKernel);                                                  \
  template Status lrn_relu_backward_cuda<T>(const LrnParams&, const T*, const T*, T*, int64_t, int64_t,    \
                                            cudaStream_t, CudaKernel);

}  // namespace alexops
