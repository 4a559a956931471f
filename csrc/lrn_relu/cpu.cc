// CPU kernels. Each pixel's C channels are contiguous in NHWC, so a pixel is processed as
// one row: converted into float scratch rows, windowed, and written back, every step a
// plain loop over channels that the compiler vectorises.
//
// Window sums over a row padded with R zeros at both ends, so edges need no clipping:
//  - R <= kDirectMaxRadius: the 2R+1 shifted rows are added directly. Per element that is
//    at most 17 vector adds, cheaper than any scan for the radii LRN is used with.
//  - larger R: blocks of W = 2R+1 (van Herk / Gil-Werman, for sums). Every window is a
//    block suffix plus the next block's prefix: O(1) work per element for any radius.
// Either way each sum holds only terms inside its window (squares, or the backward's
// t_c), so a large value that has left the window leaves no rounding debris, which a
// running add/subtract sum would.
#include "lrn_relu/cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#include <vector>

namespace alexops {
namespace {

constexpr int64_t kDirectMaxRadius = 8;
// Pixels per phase (see BlockScratch).
constexpr int64_t kBlockPixels = 16;
// Pixels per parallel work unit: enough to amortise scheduling, few enough to balance.
constexpr int64_t kPixelsPerUnit = 64;
// Rough cycles per element, for the scheduler's shard sizes only.
constexpr int64_t kCyclesPerElement = 8;

// The widest vector the target has: AVX-512, AVX2 or 128-bit (SSE, NEON). Wider-than-native
// vector types would be split and spilled by the compiler, far slower than scalar code.
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX2__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

#define ALEXOPS_INLINE inline __attribute__((always_inline))

// One vector of A through GCC/Clang vector extensions.
template <typename A>
struct Simd {
  typedef A Vec __attribute__((vector_size(kVectorBytes)));
  static constexpr int64_t kLanes = kVectorBytes / sizeof(A);
  static ALEXOPS_INLINE Vec load(const A* p) { Vec v; std::memcpy(&v, p, sizeof v); return v; }
  static ALEXOPS_INLINE void store(A* p, Vec v) { std::memcpy(p, &v, sizeof v); }
};

// Vector loads and stores in storage type T, converting to and from A. The partial forms
// move the first n < kLanes elements; a partial load fills the other lanes with zeros.
template <typename T, typename A = Acc<T>>
struct VecIO {  // float and double: storage is the arithmetic type
  using V = Simd<A>;
  static typename V::Vec load(const T* p) { return V::load(p); }
  static void store(T* p, typename V::Vec v) { V::store(p, v); }
};

template <>
struct VecIO<bfloat16_bits, float> {
  using V = Simd<float>;
  typedef uint16_t U16 __attribute__((vector_size(kVectorBytes / 2)));
  typedef uint32_t U32 __attribute__((vector_size(kVectorBytes)));
  static V::Vec load(const bfloat16_bits* p) {
    U16 bits;
    std::memcpy(&bits, p, sizeof bits);
    return (V::Vec)(__builtin_convertvector(bits, U32) << 16);  // bf16 is float's top half
  }
  static void store(bfloat16_bits* p, V::Vec v) {
    const U32 u = (U32)v;
    const U32 is_nan = (u & 0x7fffffffu) > 0x7f800000u;        // all ones where NaN
    const U32 rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;  // round to nearest even
    const U32 quiet_nan = (u >> 16) | 0x40u;
    const U16 bits = __builtin_convertvector((is_nan & quiet_nan) | (~is_nan & rounded), U16);
    std::memcpy(p, &bits, sizeof bits);
  }
};

template <>
struct VecIO<half_bits, float> {
  using V = Simd<float>;
  // The conversion instructions (F16C, AVX-512), named: GCC 12 turns a _Float16 vector
  // conversion into one scalar conversion per lane.
  static V::Vec load(const half_bits* p) {
#if defined(__AVX512F__)
    return (V::Vec)_mm512_maskz_cvtph_ps(__mmask16(0xffff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#elif defined(__AVX2__) && defined(__F16C__)
    return (V::Vec)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#else
    V::Vec v;
    for (int64_t i = 0; i < V::kLanes; ++i) v[i] = to_acc(p[i]);
    return v;
#endif
  }
  static void store(half_bits* p, V::Vec v) {
#if defined(__AVX512F__)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm512_maskz_cvtps_ph(__mmask16(0xffff), (__m512)v, _MM_FROUND_TO_NEAREST_INT));
#elif defined(__AVX2__) && defined(__F16C__)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT));
#else
    for (int64_t i = 0; i < V::kLanes; ++i) alexops::store(v[i], p + i);
#endif
  }
};

template <typename T, typename A = Acc<T>>
typename Simd<A>::Vec load_partial(const T* p, int64_t n) {
  T lanes[Simd<A>::kLanes] = {};
  std::memcpy(lanes, p, n * sizeof(T));
  return VecIO<T>::load(lanes);
}

template <typename T, typename A = Acc<T>>
void store_partial(T* p, typename Simd<A>::Vec v, int64_t n) {
  T lanes[Simd<A>::kLanes];
  VecIO<T>::store(lanes, v);
  std::memcpy(p, lanes, n * sizeof(T));
}

// Calls fn(c, n) for each vector of a row of C channels: c its first channel, n the
// channels it holds (kLanes, or fewer for the last).
template <typename A, typename Fn>
ALEXOPS_INLINE void for_each_vector(int64_t C, Fn&& fn) {
  constexpr int64_t L = Simd<A>::kLanes;
  for (int64_t c = 0; c < C; c += L) fn(c, std::min(L, C - c));
}

template <typename T, typename A = Acc<T>>
ALEXOPS_INLINE typename Simd<A>::Vec load_row_vector(const T* row, int64_t c, int64_t n) {
  return n == Simd<A>::kLanes ? VecIO<T>::load(row + c) : load_partial<T>(row + c, n);
}

template <typename T, typename A = Acc<T>>
ALEXOPS_INLINE void store_row_vector(T* row, int64_t c, int64_t n, typename Simd<A>::Vec v) {
  if (n == Simd<A>::kLanes) VecIO<T>::store(row + c, v);
  else store_partial<T>(row + c, v, n);
}

// Refined approximate 1/sqrt for float vectors: the hardware estimate (14 bits on AVX-512,
// 12 on AVX2) plus one Newton step, about 1 ulp, at a fraction of the cost of the exact
// sqrt and divide (each ~10 cycles a vector). Exact everywhere else. kRefine = false skips
// the Newton step where the 14-bit AVX-512 estimate is enough (16-bit outputs).
template <typename A, bool kRefine = true>
ALEXOPS_INLINE typename Simd<A>::Vec reciprocal_sqrt(typename Simd<A>::Vec n) {
  using Vec = typename Simd<A>::Vec;
#if defined(__AVX512F__) || defined(__AVX2__)
  if constexpr (std::is_same_v<A, float>) {
#if defined(__AVX512F__)
    const Vec estimate = (Vec)_mm512_maskz_rsqrt14_ps(__mmask16(0xffff), (__m512)n);
    if constexpr (!kRefine) return estimate;  // relative error < 2^-14
#else
    const Vec estimate = (Vec)_mm256_rsqrt_ps((__m256)n);
#endif
    const Vec refined = estimate * (A(1.5) - A(0.5) * n * estimate * estimate);
    // The Newton step turns 1/sqrt(inf) = 0 into inf * 0 = NaN; keep the exact 0.
    return n == std::numeric_limits<A>::infinity() ? Vec{} : refined;
  }
#endif
  Vec out;
  for (int64_t i = 0; i < Simd<A>::kLanes; ++i) out[i] = A(1) / std::sqrt(n[i]);
  return out;
}

// N^(-beta) and 1/N for one vector of norms N.
template <PowerKind kKind, typename A, bool kRefine = true>
ALEXOPS_INLINE void norm_powers(typename Simd<A>::Vec n, A beta, typename Simd<A>::Vec& power,
                        typename Simd<A>::Vec& inverse) {
  using Vec = typename Simd<A>::Vec;
  if constexpr (kKind == PowerKind::kHalf || kKind == PowerKind::kThreeQuarters) {
    const Vec q = reciprocal_sqrt<A, kRefine>(n);              // N^-1/2
    inverse = q * q;
    if constexpr (kKind == PowerKind::kHalf) power = q;
    else power = q == A(0) ? Vec{} : inverse * reciprocal_sqrt<A, kRefine>(q);  // N^-1 * N^1/4; 0 at N = inf
  } else if constexpr (kKind == PowerKind::kOne) {
    inverse = A(1) / n;
    power = inverse;
  } else {
    inverse = A(1) / n;
    for (int64_t i = 0; i < Simd<A>::kLanes; ++i) power[i] = std::pow(n[i], -beta);
  }
}

// Scratch rows for one thread and one block of pixels, each a whole number of vectors long
// (lanes past C hold zeros). Padded rows keep R zeros before and after the channels.
//
// Pixels go through each phase a block at a time because the window sums read rows that the
// previous phase wrote, at unaligned offsets: read straight after the write, every such load
// waits on the store buffer (failed store-to-load forwarding), which cost more than all the
// arithmetic. A block's worth of other work in between lets the stores land.
template <typename A>
struct BlockScratch {
  using V = Simd<A>;
  BlockScratch(int64_t channels, int64_t radius)
      : C(channels), R(radius), Cv((channels + V::kLanes - 1) / V::kLanes * V::kLanes),
        padded_stride(Cv + 2 * radius), direct(radius <= kDirectMaxRadius),
        r(kBlockPixels * Cv, A(0)), g(kBlockPixels * Cv, A(0)),
        squares(kBlockPixels * padded_stride, A(0)), t(kBlockPixels * padded_stride, A(0)),
        sums(direct ? 0 : Cv, A(0)), prefix(direct ? 0 : padded_stride), suffix(direct ? 0 : padded_stride) {}
  int64_t C, R, Cv, padded_stride;
  bool direct;             // window sums by direct addition (else by block scans)
  std::vector<A> r;        // relu(x)
  std::vector<A> g;        // dy * N^(-beta)
  std::vector<A> squares;  // padded r^2
  std::vector<A> t;        // padded dy * r * N^(-beta-1)
  std::vector<A> sums, prefix, suffix;  // the block-scan path's rows
  A* r_row(int64_t i) { return r.data() + i * Cv; }
  A* g_row(int64_t i) { return g.data() + i * Cv; }
  A* squares_row(int64_t i) { return squares.data() + i * padded_stride; }  // starts at the pad
  A* t_row(int64_t i) { return t.data() + i * padded_stride; }              // starts at the pad
};

// Window sums of one padded row: window(c) = padded[c] + ... + padded[c + 2R], a vector at a
// time. Direct addition for small radii; for larger ones prepare() runs the block scans
// (van Herk / Gil-Werman, for sums: each window is a block suffix plus the next block's
// prefix, O(1) per element for any radius) and window() reads their result.
template <typename A>
struct WindowSums {
  using V = Simd<A>;
  BlockScratch<A>& s;
  const A* padded;

  WindowSums(BlockScratch<A>& scratch, const A* row) : s(scratch), padded(row) {
    if (!s.direct) block_scans();
  }

  typename V::Vec window(int64_t c) const {
    if (!s.direct) return V::load(s.sums.data() + c);
    const int64_t width = 2 * s.R + 1;
    typename V::Vec even = V::load(padded + c), odd{};  // two chains of dependent adds
    int64_t k = 1;
    for (; k + 1 < width; k += 2) {
      odd += V::load(padded + c + k);
      even += V::load(padded + c + k + 1);
    }
    if (k < width) odd += V::load(padded + c + k);
    return even + odd;
  }

  void block_scans() const {
    const int64_t width = 2 * s.R + 1, rows = s.C + 2 * s.R;
    A* pre = s.prefix.data();
    A* suf = s.suffix.data();
    for (int64_t b0 = 0; b0 < rows; b0 += width) {
      const int64_t b1 = std::min(b0 + width, rows);
      A acc = 0;
      for (int64_t i = b0; i < b1; ++i) pre[i] = acc += padded[i];
      acc = 0;
      for (int64_t i = b1 - 1; i >= b0; --i) suf[i] = acc += padded[i];
    }
    for (int64_t c = 0; c < s.C; ++c)
      s.sums[c] = (c % width == 0) ? pre[c + 2 * s.R] : suf[c] + pre[c + 2 * s.R];
  }
};

// Row i of the block: r <- relu(x) (or x), squares <- padded r^2.
template <typename T, typename A>
void load_and_square(BlockScratch<A>& s, int64_t i, const T* x, bool relu) {
  using V = Simd<A>;
  A* r = s.r_row(i);
  A* sq = s.squares_row(i) + s.R;
  for_each_vector<A>(s.C, [&](int64_t c, int64_t n) {
    typename V::Vec v = load_row_vector(x, c, n);
    if (relu) v = v < A(0) ? typename V::Vec{} : v;  // NaN passes through, as in tf.nn.relu
    V::store(r + c, v);
    V::store(sq + c, v * v);
  });
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
void forward_pixels(const LrnParams& p, const T* x, T* y, int64_t C, int64_t begin, int64_t end) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  BlockScratch<A> s(C, effective_radius(p.depth_radius, C));
  const A bias = A(p.bias), alpha = A(p.alpha), beta = A(p.beta);
  for (int64_t first = begin; first < end; first += kBlockPixels) {
    const int64_t n_pixels = std::min(kBlockPixels, end - first);
    for (int64_t i = 0; i < n_pixels; ++i) load_and_square(s, i, x + (first + i) * C, p.relu);
    for (int64_t i = 0; i < n_pixels; ++i) {
      const WindowSums<A> squares(s, s.squares_row(i));
      const A* r = s.r_row(i);
      T* out = y + (first + i) * C;
      for_each_vector<A>(C, [&](int64_t c, int64_t n) {
        Vec power, inverse;
        // A 16-bit result needs only the 14-bit estimate: two of them stay under 1/4 of its ulp.
        norm_powers<kKind, A, (sizeof(T) > 2)>(bias + alpha * squares.window(c), beta, power, inverse);
        store_row_vector(out, c, n, V::load(r + c) * power);
      });
    }
  }
}

template <PowerKind kKind, typename T, typename A = Acc<T>>
void backward_pixels(const LrnParams& p, const T* x, const T* dy, T* dx, int64_t C, int64_t begin,
                     int64_t end) {
  using V = Simd<A>;
  using Vec = typename V::Vec;
  BlockScratch<A> s(C, effective_radius(p.depth_radius, C));
  const A bias = A(p.bias), alpha = A(p.alpha), beta = A(p.beta);
  const A two_alpha_beta = A(2) * alpha * beta;
  for (int64_t first = begin; first < end; first += kBlockPixels) {
    const int64_t n_pixels = std::min(kBlockPixels, end - first);
    // All of the block's x and dy are read (phases 1 and 2) before any of its dx is written
    // (phase 3): dx may share a buffer with either.
    for (int64_t i = 0; i < n_pixels; ++i) load_and_square(s, i, x + (first + i) * C, p.relu);
    // g = dy * N^(-beta), the first term of dL/dr; t = dy * r * N^(-beta-1), which is zero
    // in the lanes past C (r and dy are), as the padding of its windows must be.
    for (int64_t i = 0; i < n_pixels; ++i) {
      const WindowSums<A> squares(s, s.squares_row(i));
      const T* dy_row = dy + (first + i) * C;
      A* g = s.g_row(i);
      const A* r = s.r_row(i);
      A* t = s.t_row(i) + s.R;
      for_each_vector<A>(C, [&](int64_t c, int64_t n) {
        Vec power, inverse;
        norm_powers<kKind, A>(bias + alpha * squares.window(c), beta, power, inverse);
        const Vec scaled = load_row_vector(dy_row, c, n) * power;
        V::store(t + c, scaled * V::load(r + c) * inverse);
        V::store(g + c, scaled);
      });
    }
    for (int64_t i = 0; i < n_pixels; ++i) {
      const WindowSums<A> scaled_dy(s, s.t_row(i));
      const A* g = s.g_row(i);
      const A* r = s.r_row(i);
      T* out = dx + (first + i) * C;
      for_each_vector<A>(C, [&](int64_t c, int64_t n) {
        const Vec rc = V::load(r + c);
        const Vec d_r = V::load(g + c) - two_alpha_beta * rc * scaled_dy.window(c);
        store_row_vector(out, c, n, p.relu ? (rc > A(0) ? d_r : Vec{}) : d_r);  // ReluGrad: 0 at x <= 0
      });
    }
  }
}

template <typename Fn>
void for_each_pixel_range(int64_t n_pixels, int64_t C, const ParallelFor& parallel_for, Fn&& pixels_fn) {
  if (n_pixels == 0 || C == 0) return;
  const int64_t units = (n_pixels + kPixelsPerUnit - 1) / kPixelsPerUnit;
  parallel_for(units, kPixelsPerUnit * C * kCyclesPerElement, [&](int64_t begin, int64_t end) {
    pixels_fn(begin * kPixelsPerUnit, std::min(n_pixels, end * kPixelsPerUnit));
  });
}

}  // namespace

void serial_for(int64_t n_units, int64_t, const RangeFn& fn) {
  if (n_units > 0) fn(0, n_units);
}

template <typename T>
void lrn_relu_forward_cpu(const LrnParams& p, const T* x, T* y, int64_t n_pixels, int64_t C,
                          const ParallelFor& parallel_for) {
  with_power_kind(p.beta, [&](auto kind) {
    for_each_pixel_range(n_pixels, C, parallel_for, [&](int64_t begin, int64_t end) {
      forward_pixels<decltype(kind)::value>(p, x, y, C, begin, end);
    });
  });
}

template <typename T>
void lrn_relu_backward_cpu(const LrnParams& p, const T* x, const T* dy, T* dx, int64_t n_pixels,
                           int64_t C, const ParallelFor& parallel_for) {
  with_power_kind(p.beta, [&](auto kind) {
    for_each_pixel_range(n_pixels, C, parallel_for, [&](int64_t begin, int64_t end) {
      backward_pixels<decltype(kind)::value>(p, x, dy, dx, C, begin, end);
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
