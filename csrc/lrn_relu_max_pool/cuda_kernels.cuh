// CUDA ReLU + LRN + max-pool kernels and launchers (see docs/gpu-tuning.md): the templates.
// Each storage type is instantiated in a file of its own (cuda_float.cu, ...), so that the
// build compiles them in parallel. The LRN output lives only in shared memory. Two versions;
// the launchers take version 2 wherever it applies:
//
// Version 2, for the shapes lrn_relu's register kernel takes (cuda_register_layout: AlexNet's,
// in every dtype) and 16-byte aligned data: rows' LRN in lane groups (common/lrn_lanes_cuda.cuh:
// 16-byte loads, windows by warp shuffles), pooling a 16-byte packet of channels at a time,
// each window's first maximum found once. Forward: a block per output row. Backward: a block
// takes a band of output rows and keeps the LRN rows of its windows in a ring in shared
// memory (rows two windows share are computed once per band); each window's first maxima and
// dpooled go to a ring of windows, from which each input row the band owns gathers its
// elements' dpooled before the LRN's gradient of the row in lanes.
//
// Version 1, for every other shape (and with ALEXOPS_CUDA_KERNEL=tiled): correct first,
// simple, slow (on an H100, 2-5x behind fused LRN then cuDNN's pool forward, 6-11x forward+backward).
// Forward: a block takes one output row (n, oh). Its threads compute y = LRN(relu(x)) for the
// window's input rows straight from global memory (each element's channel window read
// through L1), rounded to T as the composite stores it, into shared memory; then each
// output pixel's max over its window.
// Backward: a block takes one input row (n, ih). It computes y for every input row that the
// windows holding row ih cover; each element (iw, c) of row ih then sums, in a fixed order,
// the dpooled entries of the windows whose first maximum it is (deterministic: no atomics);
// and the LRN's gradient of row ih follows, with t shared across the row's channels.
//
// Both are checked without a card by scripts/cuda_on_cpu/run.sh (in CI).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>

#include "common/cuda_launch.cuh"
#include "common/lrn_lanes_cuda.cuh"
#include "common/lrn_math_cuda.cuh"
#include "lrn_relu/cuda.h"
#include "lrn_relu_max_pool/cuda.h"

namespace alexops {
namespace {

constexpr int kThreads = 256;

template <typename A>
struct PoolKernelParams {
  A bias, alpha, beta;
  bool relu;
  int radius;
  int batch, rows, cols, channels, out_rows, out_cols, pad_top, pad_left;
  int window_rows, window_cols, stride_rows, stride_cols;
  int span_rows;  // version 1's backward: the input rows the windows holding one row cover, at most
  A lowest;       // T's lowest value: where a max starts
  // Version 2's backward: output rows per block (a band), the rows of the ring of LRN rows
  // (input row r in slot r % ring_rows: a window's rows, at most) and the windows of the
  // window ring (window (oh, ow) in slot oh % window_ring: the windows holding one row, at most).
  int band_rows, ring_rows, window_ring;

  __host__ __device__ int bands() const { return (out_rows + band_rows - 1) / band_rows; }

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
          // TensorFlow's CPU max-pool gradient's place: the window's first element whatever its
          // value (a NaN there keeps it), replaced by each later one strictly greater.
          int best_row = p.row_begin(oh), best_col = p.col_begin(ow);
          A best = y[((best_row - s0) * p.cols + best_col) * C + c];
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

// ---- version 2: each row's LRN in registers, as lrn_relu's register kernel computes it ----
// For the shapes that kernel takes (cuda_register_layout: AlexNet's, in every dtype) and
// 16-byte aligned data. The rows' LRN goes through lane groups (common/lrn_lanes_cuda.cuh:
// 16-byte loads, windows by warp shuffles); the pooling reads it a 16-byte packet of channels
// at a time and finds each window's first maximum once. The forward's block computes its
// window's rows into y from row 0 on. The backward's block goes down a band of p.band_rows
// output rows, and keeps the LRN rows of the current window in a ring (kRing: input row r in
// slot r % p.ring_rows), so a row that two windows share (one in two for AlexNet's 3x3/2) is
// computed once per band, not once per window. (The forward in bands, with that ring, was
// slower on an H200 at every band: docs/gpu-tuning.md.)

// y = LRN(relu(x)) of input rows [first, first + count) of image n, rounded to T as the
// composite stores it, into y: [row - first][col][C], or the ring ([slot][col][C]). A warp
// takes 32 / G pixels at a time; all of its lanes go through the same iterations (the
// shuffles need all 32) and mask the pixels past the rows.
//
// Shared memory (y) moves 16 bytes a thread at a time (load_run / store_run with T = A): a
// warp's neighbouring 16-byte packets then take no bank conflicts, where scalar accesses 16
// bytes apart would be 4-way conflicts. Every such address is 16-byte aligned.
template <PowerKind kKind, typename T, int K, int RMAX, bool kRing, typename A>
__device__ void lrn_rows_in_lanes(const PoolKernelParams<A>& p, const RegisterParams<A>& lanes, const T* x, int n,
                                  int first, int count, A* y) {
  constexpr int RUN = K * Packet<T>::kCount;
  const int lane = threadIdx.x & 31, sub = lane & (lanes.group_lanes - 1), pixel_in_warp = lane >> lanes.group_shift;
  const int per_warp = 32 >> lanes.group_shift, step = int(blockDim.x >> 5) * per_warp;
  const int pixels = count * p.cols;
  const T* rows = x + ((int64_t(n) * p.rows + first) * p.cols) * p.channels;
  // The ring: row first's place, and the ring's size in pixels (count rows fit, so a pixel's
  // place wraps at most once).
  const int ring_first = kRing ? (first % p.ring_rows) * p.cols : 0, ring_size = p.ring_rows * p.cols;
  for (int base = int(threadIdx.x >> 5) * per_warp; base < pixels; base += step) {
    const int pixel = base + pixel_in_warp;
    A r[RUN], out[RUN];
    load_run<T, K>(rows + int64_t(pixel) * p.channels + sub * RUN, pixel < pixels, r);
#pragma unroll
    for (int j = 0; j < RUN; ++j)
      if (p.relu && r[j] < A(0)) r[j] = A(0);  // NaN passes through, as in tf.nn.relu
    lane_forward<kKind, RUN, RMAX>(lanes, sub, r, out);
#pragma unroll
    for (int j = 0; j < RUN; ++j) out[j] = rounded<T>(out[j]);
    if (pixel < pixels) {
      int place = pixel;
      if constexpr (kRing) {
        place += ring_first;
        if (place >= ring_size) place -= ring_size;
      }
      store_run<A, RUN / Packet<A>::kCount>(y + place * p.channels + sub * RUN, out);
    }
  }
}

// Computes the LRN rows of window oh that the ring lacks (*computed_end: the end of the rows
// computed so far in this band; rows from row_begin(oh) up to it are still in the ring).
template <PowerKind kKind, typename T, int K, int RMAX, typename A>
__device__ void window_rows_into_ring(const PoolKernelParams<A>& p, const RegisterParams<A>& lanes, const T* x, int n,
                                      int oh, int* computed_end, A* y) {
  const int first = max(p.row_begin(oh), *computed_end), end = p.row_end(oh);
  if (first < end) lrn_rows_in_lanes<kKind, T, K, RMAX, true>(p, lanes, x, n, first, end - first, y);
  *computed_end = max(*computed_end, end);
}

// Packet q (channels q * kCount on) of window (oh, ow)'s first maximum in row-major order:
// best[e] its value, where[e] its place in the window ((row - top) * window_cols + col - left,
// from the window's corner before clipping). The forward's (kGradientPlace false) starts from
// the lowest value and skips NaN, as tf.nn.max_pool2d's value does (where[e] is -1 if no
// value is greater). The backward's (kGradientPlace) is where TensorFlow's CPU max-pool
// gradient sends the window's gradient: the first element whatever its value (a NaN there
// keeps it), replaced by each later one strictly greater. y holds the window's rows from row
// s0 on, or (kRing) is the ring, where row row_begin(oh) is in slot first_slot.
template <typename T, bool kRing, bool kGradientPlace, typename A, int kCount = Packet<T>::kCount>
__device__ inline void window_maximum(const PoolKernelParams<A>& p, const A* y, int s0, int first_slot, int oh, int ow,
                                      int q, A (&best)[kCount], int (&where)[kCount]) {
#pragma unroll
  for (int e = 0; e < kCount; ++e) best[e] = p.lowest, where[e] = -1;
  const int top = oh * p.stride_rows - p.pad_top, left = ow * p.stride_cols - p.pad_left;
  int slot = first_slot;
  bool first = kGradientPlace;
  for (int r = p.row_begin(oh); r < p.row_end(oh); ++r) {
    for (int col = p.col_begin(ow); col < p.col_end(ow); ++col) {
      const int place = (r - top) * p.window_cols + col - left;
      A v[kCount];
      const int at = kRing ? slot * p.cols + col : (r - s0) * p.cols + col;
      load_run<A, kCount / Packet<A>::kCount>(y + at * p.channels + q * kCount, true, v);
#pragma unroll
      for (int e = 0; e < kCount; ++e)
        if (first || v[e] > best[e]) best[e] = v[e], where[e] = place;  // a later NaN is never greater
      first = false;
    }
    if (kRing) slot = slot + 1 == p.ring_rows ? 0 : slot + 1;
  }
}

// Two blocks per SM (at most 128 registers a thread) where a lane's arrays, its run and both
// reaches, take at most 128 bytes; longer ones spill at that cap (nvcc 13.0, sm_90), and so
// does double's general power (exp and log): one.
template <PowerKind kKind, typename T, int K, int RMAX>
constexpr int kLanesBlocksPerSM =
    (K * Packet<T>::kCount + 2 * RMAX) * sizeof(Acc<T>) > 128 || (kKind == PowerKind::kGeneral && sizeof(Acc<T>) == 8)
        ? 1
        : 2;

template <PowerKind kKind, typename T, int K, int RMAX, typename A = Acc<T>>
__global__ void __launch_bounds__(kThreads, (kLanesBlocksPerSM<kKind, T, K, RMAX>))
pool_forward_lanes(PoolKernelParams<A> p, RegisterParams<A> lanes, const T* x, T* pooled) {
  constexpr int kCount = Packet<T>::kCount;
  A* y = shared_scratch<A>();  // [window rows][cols][C]
  const int packets = p.channels / kCount;
  for (int64_t unit = blockIdx.x; unit < int64_t(p.batch) * p.out_rows; unit += gridDim.x) {
    const int n = int(unit / p.out_rows), oh = int(unit - int64_t(n) * p.out_rows);
    const int r0 = p.row_begin(oh);
    lrn_rows_in_lanes<kKind, T, K, RMAX, false>(p, lanes, x, n, r0, p.row_end(oh) - r0, y);
    __syncthreads();
    T* out = pooled + unit * p.out_cols * p.channels;
    for (int item = threadIdx.x; item < p.out_cols * packets; item += blockDim.x) {
      const int ow = item / packets, q = item - ow * packets;
      A best[kCount];
      int where[kCount];
      window_maximum<T, false, false>(p, y, r0, 0, oh, ow, q, best, where);
      Packet<T>::store(out + int64_t(ow) * p.channels + q * kCount, best);
    }
    __syncthreads();  // the next unit reuses y
  }
}

// RUN places (ints) from shared memory, 16 or 8 bytes at a time (RUN is even, and places of
// a run start 16-byte aligned where RUN is a multiple of 4, 8-byte aligned otherwise).
template <int RUN>
__device__ inline void load_places(const int* at, int (&out)[RUN]) {
  if constexpr (RUN % 4 == 0) {
#pragma unroll
    for (int k = 0; k < RUN; k += 4) {
      const int4 v = *reinterpret_cast<const int4*>(at + k);
      out[k] = v.x, out[k + 1] = v.y, out[k + 2] = v.z, out[k + 3] = v.w;
    }
  } else {
    static_assert(RUN % 2 == 0, "runs hold whole 16-byte packets");
#pragma unroll
    for (int k = 0; k < RUN; k += 2) {
      const int2 v = *reinterpret_cast<const int2*>(at + k);
      out[k] = v.x, out[k + 1] = v.y;
    }
  }
}

// The gradient of input rows [from, end) of image n, in lanes: each element's dy is the sum,
// in a fixed order (windows by row, then by column), of the dpooled of the windows holding
// it whose first maximum it is, rounded to T (the composite's dy); then the LRN's gradient
// from x and dy. Every window holding these rows must be in the window ring. A row at a
// time, so that no pixel's row and column need a division; col_windows[iw] holds the first
// and last output columns holding column iw.
template <PowerKind kKind, typename T, int K, int RMAX, typename A>
__device__ void finish_rows(const PoolKernelParams<A>& p, const RegisterParams<A>& lanes, const T* x, int n, int from,
                            int end, const int* window_place, const A* window_dp, const int2* col_windows, T* dx) {
  constexpr int RUN = K * Packet<T>::kCount;
  const int C = p.channels;
  const int lane = threadIdx.x & 31, sub = lane & (lanes.group_lanes - 1), pixel_in_warp = lane >> lanes.group_shift;
  const int per_warp = 32 >> lanes.group_shift, step = int(blockDim.x >> 5) * per_warp;
  for (int ih = from; ih < end; ++ih) {
    const int first_oh = p.first_out_row(ih), last_oh = p.last_out_row(ih);
    const int first_slot = first_oh <= last_oh ? first_oh % p.window_ring : 0;
    const int64_t row_at = (int64_t(n) * p.rows + ih) * p.cols * C;
    for (int base = int(threadIdx.x >> 5) * per_warp; base < p.cols; base += step) {
      const int iw = base + pixel_in_warp;
      const bool inside = iw < p.cols;
      const int64_t at = row_at + int64_t(iw) * C + sub * RUN;
      A r[RUN], g[RUN];
      load_run<T, K>(x + at, inside, r);
#pragma unroll
      for (int j = 0; j < RUN; ++j) g[j] = A(0);
      if (inside) {
        const int2 cols = col_windows[iw];
        int slot = first_slot;
        for (int oh = first_oh; oh <= last_oh; ++oh) {
          const int row_place = (ih - (oh * p.stride_rows - p.pad_top)) * p.window_cols;
          for (int ow = cols.x; ow <= cols.y; ++ow) {
            const int place = row_place + iw - (ow * p.stride_cols - p.pad_left);
            const int window = (slot * p.out_cols + ow) * C + sub * RUN;
            int places[RUN];
            A d[RUN];
            load_places<RUN>(window_place + window, places);
            load_run<A, RUN / Packet<A>::kCount>(window_dp + window, true, d);
#pragma unroll
            for (int j = 0; j < RUN; ++j)
              if (places[j] == place) g[j] += d[j];
          }
          slot = slot + 1 == p.window_ring ? 0 : slot + 1;
        }
      }
#pragma unroll
      for (int j = 0; j < RUN; ++j) {
        if (p.relu && r[j] < A(0)) r[j] = A(0);
        g[j] = rounded<T>(g[j]);
      }
      lane_backward<kKind, RUN, RMAX>(lanes, sub, r, g);  // (all lanes: the shuffles need them)
      if (inside) store_run<T, K>(dx + at, g);
    }
  }
}

// A band owns the input rows from its first window's first row up to the next band's
// (the first band from row 0, the last to the image's end): each input row's gradient is
// written by one block. The band also takes the window before its first, whose last rows
// (AlexNet: one) it owns. Output row by output row: (A) the rows whose windows are all done
// get their gradient, and the window's LRN rows that the ring lacks are computed; (B) each
// window's first maxima and dpooled go to the window ring (slot oh % window_ring: a row is
// in at most window_ring windows, so every window a row needs is still there when it is
// finished). Deterministic: no atomics.
template <PowerKind kKind, typename T, int K, int RMAX, typename A = Acc<T>>
__global__ void __launch_bounds__(kThreads, (kLanesBlocksPerSM<kKind, T, K, RMAX>))
pool_backward_lanes(PoolKernelParams<A> p, RegisterParams<A> lanes, const T* x, const T* dpooled, T* dx) {
  constexpr int kCount = Packet<T>::kCount;
  const int C = p.channels, packets = C / kCount, bands = p.bands();
  A* y = shared_scratch<A>();                                      // [ring_rows][cols][C]
  A* window_dp = y + p.ring_rows * p.cols * C;                     // [window_ring][out_cols][C]
  int* window_place = reinterpret_cast<int*>(window_dp + p.window_ring * p.out_cols * C);  // the same, places
  int2* col_windows = reinterpret_cast<int2*>(window_place + p.window_ring * p.out_cols * C);  // [cols]
  for (int iw = threadIdx.x; iw < p.cols; iw += blockDim.x)
    col_windows[iw] = make_int2(p.first_out_col(iw), p.last_out_col(iw));
  __syncthreads();
  for (int64_t unit = blockIdx.x; unit < int64_t(p.batch) * bands; unit += gridDim.x) {
    const int n = int(unit / bands), band = int(unit - int64_t(n) * bands);
    const int first_oh = band * p.band_rows, end_oh = min(p.out_rows, first_oh + p.band_rows);
    const int first = band == 0 ? 0 : p.row_begin(first_oh), end = end_oh == p.out_rows ? p.rows : p.row_begin(end_oh);
    if (first >= end) continue;  // (the same for every thread of the block)
    const T* dp = dpooled + int64_t(n) * p.out_rows * p.out_cols * C;
    int computed_end = 0, finished = first;
    const auto ready_end = [&](int done_through) {  // the end of the rows whose windows are all done
      int row = finished;
      while (row < end && p.last_out_row(row) <= done_through) ++row;
      return row;
    };
    const int last_oh = p.last_out_row(end - 1);
    for (int oh = p.first_out_row(first); oh <= last_oh; ++oh) {
      const int ready = ready_end(oh - 1);
      finish_rows<kKind, T, K, RMAX>(p, lanes, x, n, finished, ready, window_place, window_dp, col_windows, dx);
      finished = ready;
      window_rows_into_ring<kKind, T, K, RMAX>(p, lanes, x, n, oh, &computed_end, y);
      __syncthreads();
      const int first_slot = p.row_begin(oh) % p.ring_rows, window_row = (oh % p.window_ring) * p.out_cols;
      for (int item = threadIdx.x; item < p.out_cols * packets; item += blockDim.x) {
        const int ow = item / packets, q = item - ow * packets;
        A best[kCount], d[kCount];
        int where[kCount];
        window_maximum<T, true, true>(p, y, 0, first_slot, oh, ow, q, best, where);
        Packet<T>::load(dp + (int64_t(oh) * p.out_cols + ow) * C + q * kCount, d);
        const int window = (window_row + ow) * C + q * kCount;
        store_run<A, kCount / Packet<A>::kCount>(window_dp + window, d);
#pragma unroll
        for (int e = 0; e < kCount; ++e) window_place[window + e] = where[e];
      }
      __syncthreads();  // (A) of the next window reads the ring of windows and overwrites y's
    }
    finish_rows<kKind, T, K, RMAX>(p, lanes, x, n, finished, end, window_place, window_dp, col_windows, dx);
    __syncthreads();  // the next unit's (B) overwrites the window ring
  }
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
                             int(pool.stride_cols), int(std::max<int64_t>(1, span)), lowest,
                             int(cuda_pool_band_rows(g)), int(std::max<int64_t>(1, g.max_window_rows())),
                             int(windows_per_row)};
}

Status check_sizes(const LrnParams& params, const PoolGeometry& g) {
  Status status = validate(params, g.input_pixels(), g.channels);
  if (status.ok() && (g.input_pixels() > (int64_t(1) << 31) || g.channels > (int64_t(1) << 24)))
    status = Status::InvalidArgument("the tensor is too large for the GPU kernel of lrn_relu_max_pool");
  return status;
}

// Whether version 2 (the lanes) takes this call, and its layout: where lrn_relu's register
// kernel would (cuda_register_layout) and every pointer is 16-byte aligned, unless
// ALEXOPS_CUDA_KERNEL=tiled asks for version 1 (lrn_relu's kernel choice, read the same way).
bool lanes_layout(const LrnParams& params, const PoolGeometry& g, int element_bytes,
                  std::initializer_list<const void*> pointers, CudaRegisterLayout* layout) {
  if (kernel_from_environment() == CudaKernel::kTiled) return false;
  const int64_t radius = effective_radius(params.depth_radius, g.channels);
  return register_layout(g.channels, radius, element_bytes, pointers, layout);
}

template <typename A>
RegisterParams<A> lanes_params(const PoolKernelParams<A>& p, const CudaRegisterLayout& layout) {
  return RegisterParams<A>{p.bias, p.alpha, p.beta, p.relu, p.channels, p.radius, 1 << layout.group_shift,
                           layout.group_shift};
}

// Launches kernel (grid blocks of kThreads, `bytes` of shared memory) after opting it into them.
template <typename Kernel, typename... Args>
Status launch(Kernel kernel, unsigned grid, int64_t bytes, const PoolGeometry& g, cudaStream_t stream,
              const char* what, Args... args) {
  const Status room = opt_in_shared_memory(kernel, bytes, [&] {
    return "rows of " + std::to_string(g.cols) + " pixels x " + std::to_string(g.channels) +
           " channels are too wide for the GPU kernel of lrn_relu_max_pool: it";
  });
  if (!room.ok()) return room;
  kernel<<<grid, kThreads, bytes, stream>>>(args...);
  return last_launch_status(what);
}

}  // namespace

template <typename T>
Status lrn_relu_max_pool_forward_cuda(const LrnParams& params, const PoolGeometry& g, const T* x, T* pooled,
                                      cudaStream_t stream) {
  using A = Acc<T>;
  Status status = check_sizes(params, g);
  if (!status.ok() || g.output_pixels() == 0 || g.channels == 0) return status;
  const PoolKernelParams<A> p = kernel_params<T>(params, g);
  const int64_t bytes = int64_t(sizeof(A)) * g.max_window_rows() * g.cols * g.channels;  // a window's rows
  const unsigned grid = unsigned(std::min(g.batch * g.out_rows, kMaxGridBlocks));
  const char* what = "launching the lrn_relu_max_pool kernel";
  CudaRegisterLayout layout;
  const bool lanes = lanes_layout(params, g, int(sizeof(T)), {x, pooled}, &layout);
  with_power_kind(params.beta, [&](auto kind) {
    constexpr PowerKind kKind = decltype(kind)::value;
    if (lanes) {
      with_register_shape<T>(layout, [&](auto k, auto max_radius) {
        constexpr int K = decltype(k)::value, RMAX = decltype(max_radius)::value;
        status = launch(pool_forward_lanes<kKind, T, K, RMAX>, grid, bytes, g, stream, what, p, lanes_params(p, layout),
                        x, pooled);
      });
    } else {
      status = launch(pool_forward<kKind, T>, grid, bytes, g, stream, what, p, x, pooled);
    }
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
  const char* what = "launching the lrn_relu_max_pool gradient kernel";
  const int64_t row = g.cols * g.channels;
  CudaRegisterLayout layout;
  const bool lanes = lanes_layout(params, g, int(sizeof(T)), {x, dpooled, dx}, &layout);
  with_power_kind(params.beta, [&](auto kind) {
    constexpr PowerKind kKind = decltype(kind)::value;
    if (lanes) {
      // The ring of LRN rows, then the window ring's dpooled (A) and places (int), then each
      // column's output columns (int2).
      const int64_t windows = int64_t(p.window_ring) * g.out_cols * g.channels;
      const int64_t bytes = int64_t(sizeof(A)) * (p.ring_rows * row + windows) + int64_t(sizeof(int)) * windows +
                            int64_t(sizeof(int2)) * g.cols;
      const unsigned grid = unsigned(std::min(g.batch * p.bands(), kMaxGridBlocks));
      with_register_shape<T>(layout, [&](auto k, auto max_radius) {
        constexpr int K = decltype(k)::value, RMAX = decltype(max_radius)::value;
        status = launch(pool_backward_lanes<kKind, T, K, RMAX>, grid, bytes, g, stream, what, p,
                        lanes_params(p, layout), x, dpooled, dx);
      });
    } else {
      const int64_t bytes = int64_t(sizeof(A)) * ((p.span_rows + 1) * row + g.cols * (g.channels + 2 * p.radius));
      const unsigned grid = unsigned(std::min(g.batch * g.rows, kMaxGridBlocks));
      status = launch(pool_backward<kKind, T>, grid, bytes, g, stream, what, p, x, dpooled, dx);
    }
  });
  return status;
}

#define ALEXOPS_INSTANTIATE_POOL_CUDA(T)                                                                        \
  template Status lrn_relu_max_pool_forward_cuda<T>(const LrnParams&, const PoolGeometry&, const T*, T*,          \
                                                    cudaStream_t);                                                \
  template Status lrn_relu_max_pool_backward_cuda<T>(const LrnParams&, const PoolGeometry&, const T*, const T*, T*, \
                                                     cudaStream_t);

}  // namespace alexops
