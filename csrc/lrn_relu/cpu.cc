// CPU LRN(+ReLU) kernels: the per-row machinery is in common/lrn_rows_cpu.h (window sums,
// N^-beta, scratch, the double-precision path); this file runs it over blocks of pixels,
// forward and backward, on the caller's parallel-for.
#include "lrn_relu/cpu.h"

#include "common/lrn_rows_cpu.h"

namespace alexops {
namespace {

// Pixels per parallel work unit: enough to amortise scheduling, few enough to balance.
constexpr int64_t kPixelsPerUnit = 64;
// Rough cycles per element, for the scheduler's shard sizes only.
constexpr int64_t kCyclesPerElement = 8;

template <PowerKind kKind, typename T, typename A = Acc<T>>
void forward_pixels(const LrnParams& p, const T* x, T* y, int64_t C, int64_t begin, int64_t end) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  BlockScratch<A> s(C, effective_radius(p.depth_radius, C), /*backward=*/false);
  const A bias = A(p.bias), alpha = A(p.alpha), beta = A(p.beta);
  for (int64_t first = begin; first < end; first += s.block_pixels) {
    const int64_t n_pixels = std::min(s.block_pixels, end - first);
    const auto [ahead, ahead_end] = prefetch_range(first, n_pixels, end, C * int64_t(sizeof(T)));
    prefetch_rows(x, ahead, ahead_end, C);
    for (int64_t i = 0; i < n_pixels; ++i) load_and_square(s, i, x + (first + i) * C, p.relu);
    for (int64_t i = 0; i < n_pixels; ++i) {
      const WindowSums<A> squares(s, s.squares_row(i));
      const A* r = s.r_row(i);
      T* out = y + (first + i) * C;
      FloatRowCheck<A> check;
      for_each_vector<A>(C, [&](int64_t c, int64_t n) {
        Vec power, inverse;
        // A 16-bit result needs only the 14-bit estimate: two of them stay under 1/4 of its ulp.
        norm_powers<kKind, A, (sizeof(T) > 2)>(bias + alpha * squares.window(c), beta, power, inverse);
        check.add_power(power);
        store_row_vector(out, c, n, V::load(r + c) * power);
      });
      if constexpr (FloatRowCheck<A>::kTracked) {
        if (check.needs_double(/*check_norms=*/false)) s.in_double.forward(p, s.R, r, out, C);  // over the row
      }
    }
  }
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
void backward_pixels(const LrnParams& p, const T* x, const T* dy, T* dx, int64_t C, int64_t begin,
                     int64_t end) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  BlockScratch<A> s(C, effective_radius(p.depth_radius, C), /*backward=*/true);
  const A bias = A(p.bias), alpha = A(p.alpha), beta = A(p.beta);
  const A two_alpha_beta = A(2) * alpha * beta;
  for (int64_t first = begin; first < end; first += s.block_pixels) {
    const int64_t n_pixels = std::min(s.block_pixels, end - first);
    // All of the block's x and dy are read (phases 1 and 2) before any of its dx is written
    // (phase 3): dx may share a buffer with either. (A pixel done in double reads its own dy
    // again in phase 3, before its own dx is written.)
    for (int64_t i = 0; i < n_pixels; ++i) load_and_square(s, i, x + (first + i) * C, p.relu);
    // g = dy * N^(-beta), the first term of dL/dr; t = dy * r * N^(-beta-1). The lanes of t
    // past C are the padding of its windows, so they are set to exact zeros: there r and dy
    // are 0, but N may be 0 or negative (bias <= 0), and 0 * inf or 0 * NaN is NaN.
    for (int64_t i = 0; i < n_pixels; ++i) {
      const WindowSums<A> squares(s, s.squares_row(i));
      const T* dy_row = dy + (first + i) * C;
      A* g = s.g_row(i);
      const A* r = s.r_row(i);
      A* t = s.t_row(i) + s.R;
      FloatRowCheck<A> check;
      for_each_vector<A>(C, [&](int64_t c, int64_t n) {
        Vec power, inverse;
        const Vec norm = bias + alpha * squares.window(c);
        norm_powers<kKind, A>(norm, beta, power, inverse);
        check.add_power(power);
        check.add_norm(norm);
        const Vec scaled = load_row_vector(dy_row, c, n) * power;
        V::store(t + c, first_lanes<A>(scaled * V::load(r + c) * inverse, n));
        V::store(g + c, scaled);
      });
      s.wide[i] = check.needs_double(/*check_norms=*/true);
    }
    for (int64_t i = 0; i < n_pixels; ++i) {
      T* out = dx + (first + i) * C;
      if constexpr (FloatRowCheck<A>::kTracked) {
        if (s.wide[i]) {
          s.in_double.backward(p, s.R, s.r_row(i), dy + (first + i) * C, out, C);
          continue;
        }
      }
      const WindowSums<A> scaled_dy(s, s.t_row(i));
      const A* g = s.g_row(i);
      const A* r = s.r_row(i);
      for_each_vector<A>(C, [&](int64_t c, int64_t n) {
        const Vec rc = V::load(r + c);
        const Vec d_r = V::load(g + c) - two_alpha_beta * rc * scaled_dy.window(c);
        store_row_vector(out, c, n, p.relu ? (rc > A(0) ? d_r : Vec{}) : d_r);  // ReluGrad: 0 at x <= 0
      });
    }
  }
}

// Runs pixels_fn over ranges of whole work units of pixels, on parallel_for's threads.
template <typename Fn>
Status for_each_pixel_range(int64_t n_pixels, int64_t C, const ParallelFor& parallel_for, Fn&& pixels_fn) {
  if (n_pixels == 0 || C == 0) return Status::Ok();
  const int64_t units = (n_pixels + kPixelsPerUnit - 1) / kPixelsPerUnit;
  return guarded_parallel_for(units, kPixelsPerUnit * C * kCyclesPerElement, parallel_for,
                              [&](int64_t begin, int64_t end) {
                                pixels_fn(begin * kPixelsPerUnit, std::min(n_pixels, end * kPixelsPerUnit));
                              });
}

}  // namespace

template <typename T>
Status lrn_relu_forward_cpu(const LrnParams& p, const T* x, T* y, int64_t n_pixels, int64_t C,
                            const ParallelFor& parallel_for) {
  Status status = validate(p, n_pixels, C);
  if (!status.ok()) return status;
  with_power_kind(p.beta, [&](auto kind) {
    status = for_each_pixel_range(n_pixels, C, parallel_for, [&](int64_t begin, int64_t end) {
      forward_pixels<decltype(kind)::value>(p, x, y, C, begin, end);
    });
  });
  return status;
}

template <typename T>
Status lrn_relu_backward_cpu(const LrnParams& p, const T* x, const T* dy, T* dx, int64_t n_pixels,
                             int64_t C, const ParallelFor& parallel_for) {
  Status status = validate(p, n_pixels, C);
  if (!status.ok()) return status;
  with_power_kind(p.beta, [&](auto kind) {
    status = for_each_pixel_range(n_pixels, C, parallel_for, [&](int64_t begin, int64_t end) {
      backward_pixels<decltype(kind)::value>(p, x, dy, dx, C, begin, end);
    });
  });
  return status;
}

#define ALEXOPS_INSTANTIATE_CPU(T)                                                          \
  template Status lrn_relu_forward_cpu<T>(const LrnParams&, const T*, T*, int64_t, int64_t, \
                                          const ParallelFor&);                              \
  template Status lrn_relu_backward_cpu<T>(const LrnParams&, const T*, const T*, T*,       \
                                           int64_t, int64_t, const ParallelFor&);
ALEXOPS_INSTANTIATE_CPU(float)
ALEXOPS_INSTANTIATE_CPU(double)
ALEXOPS_INSTANTIATE_CPU(half_bits)
ALEXOPS_INSTANTIATE_CPU(bfloat16_bits)
#undef ALEXOPS_INSTANTIATE_CPU

}  // namespace alexops
