// CPU kernels. Pixels are processed in tiles of kLanes; a tile is transposed into a
// channel-major scratch buffer [channel][lane] so every step below is a loop over lanes
// that the compiler vectorises, whatever the channel count.
//
// Window sums use blocks of W = 2R+1 channels (van Herk / Gil-Werman, for sums): every
// window [c-R, c+R] is a block suffix plus the next block's prefix. That is O(1) work per
// element for any radius, and each partial sum holds only terms inside the window, so a
// large value that has left the window cannot leave rounding debris behind (which a running
// add/subtract sum would).
#include "lrn_relu/cpu.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace alexops {
namespace {

// One 512-bit vector of pixels per step (two 256-bit ones on AVX2).
template <typename A> constexpr int64_t kLanes = 64 / sizeof(A);

// Scratch rows are [row][lane]; "padded" buffers carry R zero rows before and after the C
// channel rows, so windows near the edges need no clipping.
template <typename A>
struct TileScratch {
  TileScratch(int64_t channels, int64_t radius)
      : C(channels), R(radius), padded_rows(channels + 2 * radius),
        r(padded_rows * kLanes<A>, A(0)), work(padded_rows * kLanes<A>, A(0)),
        prefix(padded_rows * kLanes<A>), suffix(padded_rows * kLanes<A>),
        sums(channels * kLanes<A>), g(channels * kLanes<A>) {}
  int64_t C, R, padded_rows;
  std::vector<A> r;       // relu(x), padded
  std::vector<A> work;    // r^2, then t = g * r * N^(-beta-1); padded
  std::vector<A> prefix, suffix, sums;
  std::vector<A> g;       // dy, then dy * N^(-beta)
  A* r_row(int64_t c) { return r.data() + (R + c) * kLanes<A>; }
  A* work_row(int64_t c) { return work.data() + (R + c) * kLanes<A>; }
};

// sums[c] = in[c-R] + ... + in[c+R] for c in [0, C), reading the padded buffer `in`.
template <typename A>
void window_sums(TileScratch<A>& s, const A* in) {
  constexpr int64_t L = kLanes<A>;
  const int64_t W = 2 * s.R + 1, rows = s.padded_rows;
  A* pre = s.prefix.data();
  A* suf = s.suffix.data();
  for (int64_t b0 = 0; b0 < rows; b0 += W) {
    const int64_t b1 = std::min(b0 + W, rows);
    for (int64_t l = 0; l < L; ++l) pre[b0 * L + l] = in[b0 * L + l];
    for (int64_t i = b0 + 1; i < b1; ++i)
      for (int64_t l = 0; l < L; ++l) pre[i * L + l] = pre[(i - 1) * L + l] + in[i * L + l];
    for (int64_t l = 0; l < L; ++l) suf[(b1 - 1) * L + l] = in[(b1 - 1) * L + l];
    for (int64_t i = b1 - 2; i >= b0; --i)
      for (int64_t l = 0; l < L; ++l) suf[i * L + l] = suf[(i + 1) * L + l] + in[i * L + l];
  }
  // Padded window of channel c is rows [c, c + 2R].
  for (int64_t c = 0; c < s.C; ++c) {
    const A* end = pre + (c + 2 * s.R) * L;
    A* out = s.sums.data() + c * L;
    if (c % W == 0) {
      for (int64_t l = 0; l < L; ++l) out[l] = end[l];
    } else {
      const A* start = suf + c * L;
      for (int64_t l = 0; l < L; ++l) out[l] = start[l] + end[l];
    }
  }
}

template <PowerKind kKind, typename A>
inline A negative_power(A n, A beta) {
  if constexpr (kKind == PowerKind::kHalf) return A(1) / std::sqrt(n);
  else if constexpr (kKind == PowerKind::kThreeQuarters) {
    const A root = std::sqrt(n);
    return A(1) / (root * std::sqrt(root));
  } else if constexpr (kKind == PowerKind::kOne) return A(1) / n;
  else return std::pow(n, -beta);
}

// Transposes pixels [p0, p0 + n) of `x` into the padded r rows (relu applied), zeroing
// unused lanes of a short tail tile.
template <typename T, typename A = Acc<T>>
void load_relu(TileScratch<A>& s, const T* x, int64_t p0, int64_t n, bool relu) {
  constexpr int64_t L = kLanes<A>;
  const int64_t C = s.C;
  for (int64_t l = 0; l < n; ++l) {
    const T* px = x + (p0 + l) * C;
    A* dst = s.r_row(0) + l;
    for (int64_t c = 0; c < C; ++c) {
      const A v = to_acc(px[c]);
      dst[c * L] = (relu && v < A(0)) ? A(0) : v;  // NaN passes through, as in tf.nn.relu
    }
  }
  if (n < L)
    for (int64_t c = 0; c < C; ++c) std::fill(s.r_row(c) + n, s.r_row(c) + L, A(0));
}

template <typename T, typename A>
void store_rows(const A* rows, T* out, int64_t p0, int64_t n, int64_t C) {
  constexpr int64_t L = kLanes<A>;
  for (int64_t l = 0; l < n; ++l) {
    T* po = out + (p0 + l) * C;
    for (int64_t c = 0; c < C; ++c) store(rows[c * L + l], po + c);
  }
}

// sums <- window sums of r^2.
template <typename A>
void square_window_sums(TileScratch<A>& s) {
  constexpr int64_t L = kLanes<A>;
  const A* r = s.r.data();
  A* sq = s.work.data();
  for (int64_t i = 0; i < s.padded_rows * L; ++i) sq[i] = r[i] * r[i];
  window_sums(s, sq);
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
void forward_range(const LrnParams& p, const T* x, T* y, int64_t n_pixels, int64_t C,
                   int64_t tile_begin, int64_t tile_end) {
  constexpr int64_t L = kLanes<A>;
  TileScratch<A> s(C, effective_radius(p.depth_radius, C));
  const A bias = A(p.bias), alpha = A(p.alpha), beta = A(p.beta);
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t p0 = tile * L, n = std::min(L, n_pixels - p0);
    load_relu(s, x, p0, n, p.relu);
    square_window_sums(s);
    A* out = s.sums.data();  // y overwrites the sums in place
    for (int64_t c = 0; c < C; ++c) {
      const A* r = s.r_row(c);
      A* row = out + c * L;
      for (int64_t l = 0; l < L; ++l)
        row[l] = r[l] * negative_power<kKind>(bias + alpha * row[l], beta);
    }
    store_rows(out, y, p0, n, C);
  }
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
void backward_range(const LrnParams& p, const T* x, const T* dy, T* dx, int64_t n_pixels,
                    int64_t C, int64_t tile_begin, int64_t tile_end) {
  constexpr int64_t L = kLanes<A>;
  TileScratch<A> s(C, effective_radius(p.depth_radius, C));
  const A bias = A(p.bias), alpha = A(p.alpha), beta = A(p.beta);
  const A two_alpha_beta = A(2) * alpha * beta;
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    const int64_t p0 = tile * L, n = std::min(L, n_pixels - p0);
    load_relu(s, x, p0, n, p.relu);
    for (int64_t l = 0; l < n; ++l)
      for (int64_t c = 0; c < C; ++c) s.g[c * L + l] = to_acc(dy[(p0 + l) * C + c]);
    if (n < L)
      for (int64_t c = 0; c < C; ++c) std::fill(s.g.begin() + c * L + n, s.g.begin() + (c + 1) * L, A(0));
    square_window_sums(s);
    // t_c = g_c * r_c * N_c^(-beta-1) into the padded work rows (the pads stay zero);
    // g becomes g * N^(-beta), the first term of dL/dr.
    for (int64_t c = 0; c < C; ++c) {
      const A* r = s.r_row(c);
      const A* sum = s.sums.data() + c * L;
      A* g = s.g.data() + c * L;
      A* t = s.work_row(c);
      for (int64_t l = 0; l < L; ++l) {
        const A norm = bias + alpha * sum[l];
        const A scaled_g = g[l] * negative_power<kKind>(norm, beta);
        t[l] = scaled_g * r[l] / norm;
        g[l] = scaled_g;
      }
    }
    window_sums(s, s.work.data());
    A* out = s.sums.data();  // dx overwrites the sums in place
    for (int64_t c = 0; c < C; ++c) {
      const A* r = s.r_row(c);
      const A* g = s.g.data() + c * L;
      A* row = out + c * L;
      for (int64_t l = 0; l < L; ++l) {
        const A d_r = g[l] - two_alpha_beta * r[l] * row[l];
        row[l] = (p.relu && !(r[l] > A(0))) ? A(0) : d_r;  // ReluGrad: zero at x <= 0
      }
    }
    store_rows(out, dx, p0, n, C);
  }
}

// Cycles per element of one tile, roughly: for the scheduler's shard sizes only.
constexpr int64_t kCyclesPerElement = 12;

template <typename Fn>
void for_each_tile(int64_t n_pixels, int64_t C, int64_t lanes, const ParallelFor& parallel_for,
                   Fn&& range_fn) {
  if (n_pixels == 0 || C == 0) return;
  const int64_t tiles = (n_pixels + lanes - 1) / lanes;
  parallel_for(tiles, lanes * C * kCyclesPerElement, range_fn);
}

}  // namespace

void serial_for(int64_t n_units, int64_t, const RangeFn& fn) {
  if (n_units > 0) fn(0, n_units);
}

template <typename T>
void lrn_relu_forward_cpu(const LrnParams& p, const T* x, T* y, int64_t n_pixels, int64_t C,
                          const ParallelFor& parallel_for) {
  with_power_kind(p.beta, [&](auto kind) {
    for_each_tile(n_pixels, C, kLanes<Acc<T>>, parallel_for, [&](int64_t begin, int64_t end) {
      forward_range<decltype(kind)::value>(p, x, y, n_pixels, C, begin, end);
    });
  });
}

template <typename T>
void lrn_relu_backward_cpu(const LrnParams& p, const T* x, const T* dy, T* dx, int64_t n_pixels,
                           int64_t C, const ParallelFor& parallel_for) {
  with_power_kind(p.beta, [&](auto kind) {
    for_each_tile(n_pixels, C, kLanes<Acc<T>>, parallel_for, [&](int64_t begin, int64_t end) {
      backward_range<decltype(kind)::value>(p, x, dy, dx, n_pixels, C, begin, end);
    });
  });
}

#define ALEXOPS_INSTANTIATE_CPU(T)                                                          \
  template void lrn_relu_forward_cpu<T>(const LrnParams&, const T*, T*, int64_t, int64_t,   \
                                        const ParallelFor&);                                \
  template void lrn_relu_backward_cpu<T>(const LrnParams&, const T*, const T*, T*, int64_t, \
                                         int64_t, const ParallelFor&);
ALEXOPS_INSTANTIATE_CPU(float)
ALEXOPS_INSTANTIATE_CPU(double)
ALEXOPS_INSTANTIATE_CPU(half_bits)
ALEXOPS_INSTANTIATE_CPU(bfloat16_bits)
#undef ALEXOPS_INSTANTIATE_CPU

}  // namespace alexops
