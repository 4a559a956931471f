// CUDA ReLU + LRN + max-pool, version 1: correct first, simple, not yet tuned (see
// docs/gpu-tuning.md). The LRN output lives only in shared memory:
//
// Forward: a block takes one output row (n, oh). Its threads compute y = LRN(relu(x)) for the
// window's input rows straight from global memory (each element's channel window read
// through L1), rounded to T as the composite stores it, into shared memory; then each
// output pixel's max over its window.
// Backward: a block takes one input row (n, ih). It computes y for every input row that the
// windows holding row ih cover; each element (iw, c) of row ih then sums, in a fixed order,
// the dpooled entries of the windows whose first maximum it is (deterministic: no atomics);
// and the LRN's gradient of row ih follows, with t shared across the row's channels.
#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>

#include "common/lrn_math_cuda.cuh"
#include "lrn_relu_max_pool/cuda.h"

namespace alexops {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxGridBlocks = 1 << 20;

template <typename A>
struct PoolKernelParams {
  A bias, alpha, beta;
  bool relu;
  int radius;
  int batch, rows, cols, channels, out_rows, out_cols, pad_top, pad_left;
  int window_rows, window_cols, stride_rows, stride_cols;
  int span_rows;  // backward: the input rows the windows holding one row cover, at most
  A lowest;       // T's lowest value: where a max starts

  __device__ int row_begin(int oh) const { return max(0, oh * stride_rows - pad_top); }
  __device__ int row_end(int oh) const { return min(rows, oh * stride_rows - pad_top + window_rows); }
  __device__ int col_begin(int ow) const { return max(0, ow * stride_cols - pad_left); }
  __device__ int col_end(int ow) const { return min(cols, ow * stride_cols - pad_left + window_cols); }
  __device__ int first_out_row(int ih) const {
    const int reach = ih + pad_top - window_rows + 1;
    return reach <= 0 ? 0 : (reach + stride_rows - 1) / stride_rows;
  }
  __device__ int last_out_row(int ih) const { return min(out_rows - 1, (ih + pad_top) / stride_rows); }
  __device__ int first_out_col(int iw) const {
    const int reach = iw + pad_left - window_cols + 1;
    return reach <= 0 ? 0 : (reach + stride_cols - 1) / stride_cols;
  }
  __device__ int last_out_col(int iw) const { return min(out_cols - 1, (iw + pad_left) / stride_cols); }
};

template <typename A>
__device__ inline A* shared_scratch() {
  extern __shared__ __align__(16) unsigned char scratch[];
  return reinterpret_cast<A*>(scratch);
}

// v rounded to T and back: what the composite's stored LRN output holds.
template <typename T, typename A>
__device__ inline A rounded(A v) {
  if constexpr (std::is_same_v<T, A>) {
    return v;
  } else {
    T stored;
    DeviceIO<T>::store(v, &stored);
    return DeviceIO<T>::load(&stored);
  }
}

template <typename T, typename A>
__device__ inline A relu_at(const PoolKernelParams<A>& p, const T* row, int c) {
  const A v = DeviceIO<T>::load(row + c);
  return (p.relu && v < A(0)) ? A(0) : v;  // NaN passes through
}

// N = bias + alpha * (the window of squares) of channel c of the pixel at `pixel`.
template <typename T, typename A>
__device__ inline A norm_at(const PoolKernelParams<A>& p, const T* pixel, int c) {
  A sum = 0;
  for (int j = max(0, c - p.radius); j <= min(p.channels - 1, c + p.radius); ++j) {
    const A r = relu_at(p, pixel, j);
    sum += r * r;
  }
  return p.bias + p.alpha * sum;
}

// y (rounded to T) of input rows [first, first + count) of image n, into y[row][col][c].
template <PowerKind kKind, typename T, typename A>
__device__ void lrn_rows_into(const PoolKernelParams<A>& p, const T* x, int n, int first, int count, A* y) {
  const TileWalk walk(p.channels);
  const T* rows = x + ((int64_t(n) * p.rows + first) * p.cols) * p.channels;
  walk.each(count * p.cols, p.channels, [&](int pixel, int c) {
    const T* at = rows + int64_t(pixel) * p.channels;
    A power, inverse;
    norm_powers<kKind>(norm_at(p, at, c), p.beta, power, inverse);
    y[pixel * p.channels + c] = rounded<T>(relu_at(p, at, c) * power);
  });
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
__global__ void __launch_bounds__(kThreads)
pool_forward(PoolKernelParams<A> p, const T* x, T* pooled) {
  A* y = shared_scratch<A>();  // [window rows][cols][C]
  const TileWalk walk(p.channels);
  for (int64_t unit = blockIdx.x; unit < int64_t(p.batch) * p.out_rows; unit += gridDim.x) {
    const int n = int(unit / p.out_rows), oh = int(unit - int64_t(n) * p.out_rows);
    const int r0 = p.row_begin(oh), r1 = p.row_end(oh);
    lrn_rows_into<kKind, T>(p, x, n, r0, r1 - r0, y);
    __syncthreads();
    T* out = pooled + unit * p.out_cols * p.channels;
    walk.each(p.out_cols, p.channels, [&](int ow, int c) {
      A best = p.lowest;
      for (int i = 0; i < r1 - r0; ++i)
        for (int iw = p.col_begin(ow); iw < p.col_end(ow); ++iw) {
          const A v = y[(i * p.cols + iw) * p.channels + c];
          if (v > best) best = v;  // a NaN is never greater: skipped, as TensorFlow's CPU max-pool does
        }
      DeviceIO<T>::store(best, out + int64_t(ow) * p.channels + c);
    });
    __syncthreads();  // the next unit reuses y
  }
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
__global__ void __launch_bounds__(kThreads, 1)
pool_backward(PoolKernelParams<A> p, const T* x, const T* dpooled, T* dx) {
  const int C = p.channels, stride = C + 2 * p.radius;
  A* y = shared_scratch<A>();               // [span rows][cols][C]
  A* g = y + p.span_rows * p.cols * C;      // [cols][C]: dy, then dy * N^(-beta)
  A* t = g + p.cols * C;                    // [cols][stride]: R zeros, t, R zeros
  const TileWalk walk(C);
  for (int i = threadIdx.x; i < p.cols * 2 * p.radius; i += blockDim.x) {
    const int pixel = i / (2 * p.radius), k = i - pixel * 2 * p.radius;
    t[pixel * stride + (k < p.radius ? k : C + k)] = A(0);
  }
  const A two_alpha_beta = A(2) * p.alpha * p.beta;
  for (int64_t unit = blockIdx.x; unit < int64_t(p.batch) * p.rows; unit += gridDim.x) {
    const int n = int(unit / p.rows), ih = int(unit - int64_t(n) * p.rows);
    const int oh0 = p.first_out_row(ih), oh1 = p.last_out_row(ih);  // may be empty (oh1 < oh0)
    const int s0 = oh0 <= oh1 ? p.row_begin(oh0) : ih, s1 = oh0 <= oh1 ? p.row_end(oh1) : ih;
    lrn_rows_into<kKind, T>(p, x, n, s0, s1 - s0, y);
    __syncthreads();
    // dy of (ih, iw, c): the windows holding it, in order, whose first maximum it is.
    const T* dp = dpooled + int64_t(n) * p.out_rows * p.out_cols * C;
    walk.each(p.cols, C, [&](int iw, int c) {
      A sum = 0;
      for (int oh = oh0; oh <= oh1; ++oh)
        for (int ow = p.first_out_col(iw); ow <= p.last_out_col(iw); ++ow) {
          A best = p.lowest;
          int best_row = -1, best_col = -1;
          for (int r = p.row_begin(oh); r < p.row_end(oh); ++r)
            for (int col = p.col_begin(ow); col < p.col_end(ow); ++col) {
              const A v = y[((r - s0) * p.cols + col) * C + c];
              if (v > best) best = v, best_row = r, best_col = col;
            }
          if (best_row == ih && best_col == iw) sum += DeviceIO<T>::load(dp + (int64_t(oh) * p.out_cols + ow) * C + c);
        }
      g[iw * C + c] = rounded<T>(sum);  // the composite's dy, in T
    });
    __syncthreads();
    // The LRN's gradient of row ih (as lrn_relu's backward): g = dy N^-beta, t = g r / N.
    const T* x_row = x + (int64_t(n) * p.rows + ih) * p.cols * C;
    walk.each(p.cols, C, [&](int iw, int c) {
      const T* at = x_row + int64_t(iw) * C;
      A power, inverse;
      norm_powers<kKind>(norm_at(p, at, c), p.beta, power, inverse);
      const A scaled = g[iw * C + c] * power;
      t[iw * stride + p.radius + c] = scaled * relu_at(p, at, c) * inverse;
      g[iw * C + c] = scaled;
    });
    __syncthreads();
    T* dx_row = dx + (int64_t(n) * p.rows + ih) * p.cols * C;
    walk.each(p.cols, C, [&](int iw, int c) {
      const A r = relu_at(p, x_row + int64_t(iw) * C, c);
      A window = 0;
      for (int d = 0; d <= 2 * p.radius; ++d) window += t[iw * stride + c + d];
      const A d_r = g[iw * C + c] - two_alpha_beta * r * window;
      DeviceIO<T>::store((p.relu && !(r > A(0))) ? A(0) : d_r, dx_row + int64_t(iw) * C + c);  // ReluGrad
    });
    __syncthreads();
  }
}

Status cuda_error(cudaError_t e, const char* what) {
  return Status::Internal(std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

template <typename T, typename A = Acc<T>>
PoolKernelParams<A> kernel_params(const LrnParams& params, const PoolGeometry& g) {
  const PoolParams& pool = g.pool;
  const int64_t windows_per_row = (pool.window_rows + pool.stride_rows - 1) / pool.stride_rows;
  const int64_t span = std::min(g.rows, pool.window_rows + pool.stride_rows * (windows_per_row - 1));
  A lowest;
  if constexpr (std::is_same_v<T, half_bits>) lowest = A(-65504.0f);
  else if constexpr (std::is_same_v<T, bfloat16_bits>) lowest = A(-3.3895313892515355e38f);
  else lowest = std::numeric_limits<A>::lowest();
  return PoolKernelParams<A>{A(params.bias), A(params.alpha), A(params.beta), params.relu,
                             int(effective_radius(params.depth_radius, g.channels)), int(g.batch), int(g.rows),
                             int(g.cols), int(g.channels), int(g.out_rows), int(g.out_cols), int(g.pad_top),
                             int(g.pad_left), int(pool.window_rows), int(pool.window_cols), int(pool.stride_rows),
                             int(pool.stride_cols), int(std::max<int64_t>(1, span)), lowest};
}

// Opts `kernel` into `bytes` of shared memory where that is over 48 KiB, or says why not.
template <typename Kernel>
Status shared_memory_for(Kernel kernel, int64_t bytes, const PoolGeometry& g) {
  if (bytes <= 48 * 1024) return Status::Ok();
  int device = 0, optin = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return cuda_error(e, "querying shared memory size");
  if (bytes > optin)
    return Status::InvalidArgument("rows of " + std::to_string(g.cols) + " pixels x " + std::to_string(g.channels) +
                                   " channels are too wide for the GPU kernel of lrn_relu_max_pool: it needs " +
                                   std::to_string(bytes) + " bytes of shared memory; this GPU allows " +
                                   std::to_string(optin));
  e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  return e == cudaSuccess ? Status::Ok() : cuda_error(e, "raising the shared memory limit");
}

Status check_sizes(const LrnParams& params, const PoolGeometry& g) {
  Status status = validate(params, g.input_pixels(), g.channels);
  if (status.ok() && (g.input_pixels() > (int64_t(1) << 31) || g.channels > (int64_t(1) << 24)))
    status = Status::InvalidArgument("the tensor is too large for the GPU kernel of lrn_relu_max_pool");
  return status;
}

}  // namespace

template <typename T>
Status lrn_relu_max_pool_forward_cuda(const LrnParams& params, const PoolGeometry& g, const T* x, T* pooled,
                                      cudaStream_t stream) {
  using A = Acc<T>;
  Status status = check_sizes(params, g);
  if (!status.ok() || g.output_pixels() == 0 || g.channels == 0) return status;
  const PoolKernelParams<A> p = kernel_params<T>(params, g);
  const int64_t bytes = int64_t(sizeof(A)) * g.max_window_rows() * g.cols * g.channels;
  const unsigned grid = unsigned(std::min(g.batch * g.out_rows, kMaxGridBlocks));
  with_power_kind(params.beta, [&](auto kind) {
    const auto kernel = pool_forward<decltype(kind)::value, T>;
    status = shared_memory_for(kernel, bytes, g);
    if (!status.ok()) return;
    kernel<<<grid, kThreads, bytes, stream>>>(p, x, pooled);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) status = cuda_error(e, "launching the lrn_relu_max_pool kernel");
  });
  return status;
}

template <typename T>
Status lrn_relu_max_pool_backward_cuda(const LrnParams& params, const PoolGeometry& g, const T* x, const T* dpooled,
                                       T* dx, cudaStream_t stream) {
  using A = Acc<T>;
  Status status = check_sizes(params, g);
  if (!status.ok() || g.input_pixels() == 0 || g.channels == 0) return status;
  const PoolKernelParams<A> p = kernel_params<T>(params, g);
  const int64_t stride = g.channels + 2 * p.radius;
  const int64_t bytes = int64_t(sizeof(A)) * ((p.span_rows + 1) * g.cols * g.channels + g.cols * stride);
  const unsigned grid = unsigned(std::min(g.batch * g.rows, kMaxGridBlocks));
  with_power_kind(params.beta, [&](auto kind) {
    const auto kernel = pool_backward<decltype(kind)::value, T>;
    status = shared_memory_for(kernel, bytes, g);
    if (!status.ok()) return;
    kernel<<<grid, kThreads, bytes, stream>>>(p, x, dpooled, dx);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) status = cuda_error(e, "launching the lrn_relu_max_pool gradient kernel");
  });
  return status;
}

#define ALEXOPS_INSTANTIATE_POOL_CUDA(T)                                                                        \
  template Status lrn_relu_max_pool_forward_cuda<T>(const LrnParams&, const PoolGeometry&, const T*, T*,          \
                                                    cudaStream_t);                                                \
  template Status lrn_relu_max_pool_backward_cuda<T>(const LrnParams&, const PoolGeometry&, const T*, const T*, T*, \
                                                     cudaStream_t);
ALEXOPS_INSTANTIATE_POOL_CUDA(float)
ALEXOPS_INSTANTIATE_POOL_CUDA(double)
ALEXOPS_INSTANTIATE_POOL_CUDA(half_bits)
ALEXOPS_INSTANTIATE_POOL_CUDA(bfloat16_bits)
#undef ALEXOPS_INSTANTIATE_POOL_CUDA

}  // namespace alexops
