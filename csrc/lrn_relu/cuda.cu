// CUDA kernels. A block takes a tile of whole pixels: because NHWC keeps a pixel's channels
// together, a tile is one contiguous run of memory, read once (coalesced) into shared
// memory and written once. Window sums inside the tile use the same block-prefix/suffix
// split as the CPU kernels (explained in common/lrn_rows_cpu.h): O(1) work per element
// for any radius and no add/subtract drift.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "lrn_relu/cuda.h"

#include "common/lrn_math_cuda.cuh"

namespace alexops {
namespace {

constexpr int kThreadsPerBlock = 256;
// Shared memory per block: 24 KiB lets 8 blocks (2048 threads, the most an SM runs) share
// the 228 KiB of a Hopper SM; an A100's 164 KiB fits 6.
constexpr int64_t kTargetTileBytes = 24 * 1024;
// A cap on the grid's size, not a residency target: blocks loop over the tiles past it.
constexpr int64_t kMaxGridBlocks = 1 << 20;

template <typename A>
struct DeviceParams {
  A bias, alpha, beta;
  bool relu;
  int channels, radius, padded_rows, tile_pixels;  // padded_rows = channels + 2 * radius
};

// Padded row `row` of pixel `pix` of a [pixels][C] tile array: zero in the R rows of padding
// on either side, the value (or its square) inside.
template <bool kSquare, typename A>
__device__ inline A padded_term(const DeviceParams<A>& p, const A* values, int pix, int row) {
  const int c = row - p.radius;
  if (c < 0 || c >= p.channels) return A(0);
  const A v = values[pix * p.channels + c];
  return kSquare ? v * v : v;
}

// For every pixel of the tile, block prefix and suffix sums over the padded channel rows of
// `values` (squared if kSquare). One thread per (pixel, block of 2R+1 rows).
template <bool kSquare, typename A>
__device__ void block_scans(const DeviceParams<A>& p, int pixels, const A* values, A* prefix, A* suffix) {
  const int width = 2 * p.radius + 1;
  const int blocks = (p.padded_rows + width - 1) / width;
  for (int job = threadIdx.x; job < pixels * blocks; job += blockDim.x) {
    const int pix = job / blocks, b0 = (job % blocks) * width;
    const int b1 = min(b0 + width, p.padded_rows);
    A* pre = prefix + pix * p.padded_rows;
    A* suf = suffix + pix * p.padded_rows;
    A acc = 0;
    for (int i = b0; i < b1; ++i) pre[i] = acc += padded_term<kSquare>(p, values, pix, i);
    acc = 0;
    for (int i = b1 - 1; i >= b0; --i) suf[i] = acc += padded_term<kSquare>(p, values, pix, i);
  }
}

// Sum over channels [c-R, c+R] of pixel `pix`: padded rows [c, c+2R] = a block suffix plus
// the next block's prefix, or one whole block when the window is aligned to it.
template <typename A>
__device__ inline A window_sum(const DeviceParams<A>& p, const A* prefix, const A* suffix, int pix, int c) {
  const int base = pix * p.padded_rows;
  A sum = prefix[base + c + 2 * p.radius];
  if (c % (2 * p.radius + 1) != 0) sum += suffix[base + c];
  return sum;
}

template <typename A>
__device__ inline A* shared_scratch() {
  extern __shared__ __align__(16) unsigned char scratch[];
  return reinterpret_cast<A*>(scratch);
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
__global__ void __launch_bounds__(kThreadsPerBlock)
forward_kernel(DeviceParams<A> p, const T* x, T* y, int64_t n_pixels, int64_t n_tiles) {
  const int C = p.channels;
  A* r = shared_scratch<A>();                   // [tile_pixels][C]
  A* prefix = r + p.tile_pixels * C;            // [tile_pixels][padded_rows]
  A* suffix = prefix + p.tile_pixels * p.padded_rows;
  for (int64_t tile = blockIdx.x; tile < n_tiles; tile += gridDim.x) {
    const int64_t first = tile * p.tile_pixels;
    const int pixels = int(min(int64_t(p.tile_pixels), n_pixels - first));
    const int elements = pixels * C;
    const T* xt = x + first * C;
    for (int i = threadIdx.x; i < elements; i += blockDim.x) {
      const A v = DeviceIO<T>::load(xt + i);
      r[i] = (p.relu && v < A(0)) ? A(0) : v;  // NaN passes through, as in tf.nn.relu
    }
    __syncthreads();
    block_scans<true>(p, pixels, r, prefix, suffix);
    __syncthreads();
    T* yt = y + first * C;
    for (int i = threadIdx.x; i < elements; i += blockDim.x) {
      const int pix = i / C, c = i - pix * C;
      const A norm = p.bias + p.alpha * window_sum(p, prefix, suffix, pix, c);
      DeviceIO<T>::store(r[i] * negative_power<kKind>(norm, p.beta), yt + i);
    }
    __syncthreads();  // the next tile reuses the scratch
  }
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
__global__ void __launch_bounds__(kThreadsPerBlock)
backward_kernel(DeviceParams<A> p, const T* x, const T* dy, T* dx, int64_t n_pixels,
                int64_t n_tiles) {
  const int C = p.channels;
  const int tile_elements = p.tile_pixels * C;
  A* r = shared_scratch<A>();          // relu(x)
  A* g = r + tile_elements;            // dy, then dy * N^(-beta)
  A* t = g + tile_elements;            // dy * r * N^(-beta-1)
  A* prefix = t + tile_elements;
  A* suffix = prefix + p.tile_pixels * p.padded_rows;
  const A two_alpha_beta = A(2) * p.alpha * p.beta;
  for (int64_t tile = blockIdx.x; tile < n_tiles; tile += gridDim.x) {
    const int64_t first = tile * p.tile_pixels;
    const int pixels = int(min(int64_t(p.tile_pixels), n_pixels - first));
    const int elements = pixels * C;
    const T* xt = x + first * C;
    const T* dyt = dy + first * C;
    for (int i = threadIdx.x; i < elements; i += blockDim.x) {
      const A v = DeviceIO<T>::load(xt + i);
      r[i] = (p.relu && v < A(0)) ? A(0) : v;
      g[i] = DeviceIO<T>::load(dyt + i);
    }
    __syncthreads();
    block_scans<true>(p, pixels, r, prefix, suffix);
    __syncthreads();
    for (int i = threadIdx.x; i < elements; i += blockDim.x) {
      const int pix = i / C, c = i - pix * C;
      const A norm = p.bias + p.alpha * window_sum(p, prefix, suffix, pix, c);
      const A scaled = g[i] * negative_power<kKind>(norm, p.beta);
      t[i] = scaled * r[i] / norm;
      g[i] = scaled;
    }
    __syncthreads();
    block_scans<false>(p, pixels, t, prefix, suffix);
    __syncthreads();
    T* dxt = dx + first * C;
    for (int i = threadIdx.x; i < elements; i += blockDim.x) {
      const int pix = i / C, c = i - pix * C;
      const A d_r = g[i] - two_alpha_beta * r[i] * window_sum(p, prefix, suffix, pix, c);
      DeviceIO<T>::store((p.relu && !(r[i] > A(0))) ? A(0) : d_r, dxt + i);  // ReluGrad
    }
    __syncthreads();
  }
}

Status cuda_error(cudaError_t e, const char* what) {
  return Status::Internal(std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

// Sizes the tile from the shared memory one pixel needs, opts the kernel into more than
// 48 KiB when a single pixel needs it, and launches on `stream`.
template <typename A, typename Kernel, typename... Args>
Status launch_tiled(Kernel kernel, DeviceParams<A> p, int64_t arrays_of_c, int64_t n_pixels,
                         cudaStream_t stream, Args... args) {
  const int64_t bytes_per_pixel = int64_t(sizeof(A)) * (arrays_of_c * p.channels + 2 * p.padded_rows);
  p.tile_pixels = int(std::max<int64_t>(1, std::min(kTargetTileBytes / bytes_per_pixel, n_pixels)));
  const int64_t shared_bytes = p.tile_pixels * bytes_per_pixel;
  if (shared_bytes > 48 * 1024) {
    int device = 0, optin = 0;
    cudaError_t e = cudaGetDevice(&device);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (e != cudaSuccess) return cuda_error(e, "querying shared memory size");
    if (shared_bytes > optin)
      return Status::InvalidArgument("channels=" + std::to_string(p.channels) + " is too many for the GPU kernel: it needs " +
                                     std::to_string(shared_bytes) + " bytes of shared memory per pixel; this GPU allows " +
                                     std::to_string(optin));
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes));
    if (e != cudaSuccess) return cuda_error(e, "raising the shared memory limit");
  }
  const int64_t n_tiles = (n_pixels + p.tile_pixels - 1) / p.tile_pixels;
  const unsigned grid = unsigned(std::min(n_tiles, kMaxGridBlocks));
  kernel<<<grid, kThreadsPerBlock, shared_bytes, stream>>>(p, args..., n_pixels, n_tiles);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? Status::Ok() : cuda_error(e, "launching the LRN kernel");
}

template <typename A>
DeviceParams<A> device_params(const LrnParams& params, int64_t channels) {
  const int64_t radius = effective_radius(params.depth_radius, channels);
  return DeviceParams<A>{A(params.bias), A(params.alpha), A(params.beta), params.relu,
                         int(channels), int(radius), int(channels + 2 * radius), 0};
}

Status check_sizes(const LrnParams& params, int64_t n_pixels, int64_t channels) {
  Status status = validate(params, n_pixels, channels);
  if (status.ok() && channels > (int64_t(1) << 24))
    status = Status::InvalidArgument("channels=" + std::to_string(channels) + " is too many for the GPU kernel");
  return status;
}

}  // namespace

template <typename T>
Status lrn_relu_forward_cuda(const LrnParams& params, const T* x, T* y, int64_t n_pixels,
                             int64_t channels, cudaStream_t stream) {
  Status problem = check_sizes(params, n_pixels, channels);
  if (!problem.ok() || n_pixels == 0 || channels == 0) return problem;
  using A = Acc<T>;
  with_power_kind(params.beta, [&](auto kind) {
    problem = launch_tiled(forward_kernel<decltype(kind)::value, T>, device_params<A>(params, channels),
                           1, n_pixels, stream, x, y);
  });
  return problem;
}

template <typename T>
Status lrn_relu_backward_cuda(const LrnParams& params, const T* x, const T* dy, T* dx,
                              int64_t n_pixels, int64_t channels, cudaStream_t stream) {
  Status problem = check_sizes(params, n_pixels, channels);
  if (!problem.ok() || n_pixels == 0 || channels == 0) return problem;
  using A = Acc<T>;
  with_power_kind(params.beta, [&](auto kind) {
    problem = launch_tiled(backward_kernel<decltype(kind)::value, T>, device_params<A>(params, channels),
                           3, n_pixels, stream, x, dy, dx);
  });
  return problem;
}

#define ALEXOPS_INSTANTIATE_CUDA(T)                                                              \
  template Status lrn_relu_forward_cuda<T>(const LrnParams&, const T*, T*, int64_t, int64_t, \
                                           cudaStream_t);                                    \
  template Status lrn_relu_backward_cuda<T>(const LrnParams&, const T*, const T*, T*,        \
                                            int64_t, int64_t, cudaStream_t);
ALEXOPS_INSTANTIATE_CUDA(float)
ALEXOPS_INSTANTIATE_CUDA(double)
ALEXOPS_INSTANTIATE_CUDA(half_bits)
ALEXOPS_INSTANTIATE_CUDA(bfloat16_bits)
#undef ALEXOPS_INSTANTIATE_CUDA

}  // namespace alexops
