// Vectors for the CPU kernels: the target's widest vector type through GCC/Clang vector
// extensions, loads and stores that convert between a storage type and float, and a fast
// reciprocal square root. Only the kernel files include this; they are compiled once per
// instruction-set level (cpu_isa.h), so everything here is in an unnamed namespace.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "common/numeric.h"

namespace alexops {
namespace {
namespace cpu_simd {

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
// store_pair stores two vectors, lo at p and hi after it: one conversion for both where the
// target has one (bfloat16 with AVX512-BF16).
template <typename T, typename A = Acc<T>>
struct VecIO {  // float and double: storage is the arithmetic type
  using V = Simd<A>;
  static typename V::Vec load(const T* p) { return V::load(p); }
  static void store(T* p, typename V::Vec v) { V::store(p, v); }
  static void store_pair(T* p, typename V::Vec lo, typename V::Vec hi) { store(p, lo); store(p + V::kLanes, hi); }
};

template <>
struct VecIO<bfloat16_bits, float> {
  using V = Simd<float>;
  typedef uint16_t U16 __attribute__((vector_size(kVectorBytes / 2)));
  typedef uint32_t U32 __attribute__((vector_size(kVectorBytes)));
  static constexpr int kSubnormalClass = 0x20;  // vfpclassps's category bit for subnormals
  static V::Vec load(const bfloat16_bits* p) {  // bf16 is float's top half
#if defined(__AVX512BW__)
    // One vpermw: word i to the high half of lane i, the low halves zeroed by the mask.
    const __m512i odd_words = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0,
                                               7, 0, 6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 0);
    return (V::Vec)_mm512_maskz_permutexvar_epi16(__mmask32(0xAAAAAAAAu), odd_words,
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
#elif defined(__AVX512F__)
    return (V::Vec)_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16);
#elif defined(__AVX2__)
    return (V::Vec)_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16);
#else
    U16 bits;
    std::memcpy(&bits, p, sizeof bits);
    return (V::Vec)(__builtin_convertvector(bits, U32) << 16);
#endif
  }
  // Stores round to nearest even; NaN stays a (quiet) NaN. In store_rounding the rounding is
  // generic vector code; the NaN choice and the narrowing are written out for AVX2 and AVX-512,
  // where the generic forms (an unsigned compare for NaN, a generic narrowing) measured 1.6x
  // slower for the whole bfloat16 forward on AVX2. With AVX-512 BW, one vpermw each way (load,
  // and store_rounding from the high halves, unshifted) instead of a widening and a shift, or a
  // shift and a narrowing (2 uops): bfloat16 forward 0.95-0.98, backward 0.97-0.98, pooled
  // backward 0.95-0.97.
  //
  // AVX512-BF16's conversions round and quiet NaN exactly as store_rounding does (checked on
  // all 2^32 floats), in one instruction, but take subnormal floats for zeros: vectors holding
  // one (rare) take store_rounding. bfloat16 forward 0.88-0.89, backward 0.97, lrn_relu_max_pool
  // forward 0.91-0.93, backward 0.93 (AVX-512 Xeon, two threads, AlexNet's tensors; without
  // the check 0.84 and 0.92: it costs two instructions a vector). A pair in one conversion, its
  // two checks in one test: forward 0.97 more, lrn_relu_max_pool backward 0.97-0.98.
  static void store(bfloat16_bits* p, V::Vec v) {
#if defined(__AVX512BF16__)
    if (__builtin_expect(_mm512_fpclass_ps_mask((__m512)v, kSubnormalClass) == 0, 1)) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), (__m256i)_mm512_cvtneps_pbh((__m512)v));
      return;
    }
#endif
    store_rounding(p, v);
  }
  static void store_pair(bfloat16_bits* p, V::Vec lo, V::Vec hi) {
#if defined(__AVX512BF16__)
    if (__builtin_expect(_kortestz_mask16_u8(_mm512_fpclass_ps_mask((__m512)lo, kSubnormalClass),
                                             _mm512_fpclass_ps_mask((__m512)hi, kSubnormalClass)), 1)) {
      _mm512_storeu_si512(p, (__m512i)_mm512_cvtne2ps_pbh((__m512)hi, (__m512)lo));
      return;
    }
#endif
    store_rounding(p, lo);
    store_rounding(p + V::kLanes, hi);
  }
  static void store_rounding(bfloat16_bits* p, V::Vec v) {
    const U32 u = (U32)v;
#if defined(__AVX512BW__)
    // Rounded in the high halves, NaN made quiet there, then one vpermw gathers the high halves.
    const U32 rounded_high = u + 0x7fffu + ((u >> 16) & 1u);
    const __mmask16 nan_lanes = _mm512_cmp_ps_mask((__m512)v, (__m512)v, _CMP_UNORD_Q);
    const __m512i bits_high = _mm512_mask_or_epi32((__m512i)rounded_high, nan_lanes, (__m512i)u, _mm512_set1_epi32(0x400000));
    const __m512i high_words = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm512_castsi512_si256(_mm512_permutexvar_epi16(high_words, bits_high)));
    return;
#endif
    const U32 high = u >> 16;
    const U32 rounded = (u + 0x7fffu + (high & 1u)) >> 16;
#if defined(__AVX512F__)
    const __mmask16 nan = _mm512_cmp_ps_mask((__m512)v, (__m512)v, _CMP_UNORD_Q);
    const __m512i bits = _mm512_mask_or_epi32((__m512i)rounded, nan, (__m512i)high, _mm512_set1_epi32(0x40));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(bits));
#elif defined(__AVX2__)
    const __m256 nan = _mm256_cmp_ps((__m256)v, (__m256)v, _CMP_UNORD_Q);
    const __m256i bits = _mm256_blendv_epi8((__m256i)rounded, (__m256i)(high | 0x40u), _mm256_castps_si256(nan));
    // Pack the eight 32-bit lanes to 16 bits (within 128-bit halves), then bring the halves together.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(bits, bits), 0xD8);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
#else
    const U32 is_nan = (u & 0x7fffffffu) > 0x7f800000u;  // all ones where NaN
    const U16 bits = __builtin_convertvector((is_nan & (high | 0x40u)) | (~is_nan & rounded), U16);
    std::memcpy(p, &bits, sizeof bits);
#endif
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
  static void store_pair(half_bits* p, V::Vec lo, V::Vec hi) { store(p, lo); store(p + V::kLanes, hi); }
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

// for_each_vector for loops in which each vector is a long chain of dependent operations (a
// running maximum; an LRN's window, power and product): calls
// fn(std::integral_constant<int64_t, K>{}, c, n) for K consecutive vectors from channel c,
// K = 4 (where kMaxGroup allows) or 2 where they are whole (n = kLanes), else 1 (n channels),
// so that fn can run K chains side by side and hide their latency.
template <typename A, int64_t kMaxGroup = 4, typename Fn>
ALEXOPS_INLINE void for_each_vector_group(int64_t C, Fn&& fn) {
  constexpr int64_t L = Simd<A>::kLanes;
  int64_t c = 0;
  if constexpr (kMaxGroup >= 4)
    for (; c + 4 * L <= C; c += 4 * L) fn(std::integral_constant<int64_t, 4>{}, c, L);
  for (; c + 2 * L <= C; c += 2 * L) fn(std::integral_constant<int64_t, 2>{}, c, L);
  for (; c < C; c += L) fn(std::integral_constant<int64_t, 1>{}, c, std::min(L, C - c));
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

// Whether this target has a reciprocal-sqrt estimate instruction for vectors of A.
template <typename A>
constexpr bool kHasFastReciprocalSqrt =
#if defined(__AVX512F__) || defined(__AVX2__)
    std::is_same_v<A, float>;
#else
    false;
#endif

// Whether fast_reciprocal_sqrt<A, false> skips anything (the Newton step): only where the
// estimate has 14 bits. Elsewhere both forms are the same refined value.
constexpr bool kUnrefinedEstimateDiffers =
#if defined(__AVX512F__)
    true;
#else
    false;
#endif

// Refined approximate 1/sqrt for float vectors: the hardware estimate (14 bits on AVX-512,
// 12 on AVX2) plus one Newton step, about 1 ulp, at a fraction of the cost of the exact
// sqrt and divide (each ~10 cycles a vector). Right for positive normal floats only: the
// estimate reads subnormals as zero, and the Newton step turns 0 and inf into NaN; callers
// check the range of what they passed (the kernels, once per pixel). kRefine = false skips
// the Newton step where the 14-bit AVX-512 estimate is enough (16-bit outputs).
template <typename A, bool kRefine = true>
ALEXOPS_INLINE typename Simd<A>::Vec fast_reciprocal_sqrt(typename Simd<A>::Vec n) {
  static_assert(kHasFastReciprocalSqrt<A>, "no reciprocal-sqrt estimate for this type and target");
  using Vec = typename Simd<A>::Vec;
#if defined(__AVX512F__)
  const Vec estimate = (Vec)_mm512_maskz_rsqrt14_ps(__mmask16(0xffff), (__m512)n);
  if constexpr (!kRefine) return estimate;  // relative error < 2^-14
#elif defined(__AVX2__)
  const Vec estimate = (Vec)_mm256_rsqrt_ps((__m256)n);
#else
  const Vec estimate = n;  // unreachable: kHasFastReciprocalSqrt is false
#endif
  return estimate * (A(1.5) - A(0.5) * n * estimate * estimate);
}

// Exact (IEEE) square root of every lane: one instruction on AVX2 and AVX-512.
template <typename A>
ALEXOPS_INLINE typename Simd<A>::Vec vector_sqrt(typename Simd<A>::Vec v) {
  using Vec = typename Simd<A>::Vec;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<A, float>) return (Vec)_mm512_maskz_sqrt_ps(__mmask16(0xffff), (__m512)v);
  else return (Vec)_mm512_maskz_sqrt_pd(__mmask8(0xff), (__m512d)v);
#elif defined(__AVX2__)
  if constexpr (std::is_same_v<A, float>) return (Vec)_mm256_sqrt_ps((__m256)v);
  else return (Vec)_mm256_sqrt_pd((__m256d)v);
#else
  Vec out;
  for (int64_t i = 0; i < Simd<A>::kLanes; ++i) out[i] = std::sqrt(v[i]);
  return out;
#endif
}

// Whether the kernels may take windows from lanes_shifted (in registers) rather than from
// loads: float on AVX2 and AVX-512, where it was measured (see kWindowsInRegisters in
// lrn_rows_cpu.h). The 128-bit baseline keeps the loads.
template <typename A>
constexpr bool kHasLaneShifts =
#if defined(__AVX2__)
    std::is_same_v<A, float>;
#else
    false;
#endif

// Whether a shift by any number of lanes (lanes_shifted) is one instruction: AVX-512's valignd.
// On AVX2 a shift across the 128-bit halves takes a vperm2f128 too (the costly kind on an AMD
// Zen: 0.35 ns against 0.18-0.22 for an add, BENCHMARKS.md).
constexpr bool kShiftsAreOneInstruction =
#if defined(__AVX512F__)
    true;
#else
    false;
#endif

template <int kFirst, typename Vec, int... I>
ALEXOPS_INLINE Vec lanes_from_pair(Vec low, Vec high, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(low, high, (kFirst + I)...);
}

// Lanes [K, K + kLanes) of prev, cur and next laid end to end, counted from cur's first lane
// (-kLanes <= K <= kLanes): the row shifted by K channels, in registers. One generic shuffle,
// the same for every vector width (AVX2: a vperm2f128 shared by the K of one side, then a
// vpalignr or vshufps).
template <int K, typename A>
ALEXOPS_INLINE typename Simd<A>::Vec lanes_shifted(typename Simd<A>::Vec prev, typename Simd<A>::Vec cur,
                                                   typename Simd<A>::Vec next) {
  constexpr int L = int(Simd<A>::kLanes);
  static_assert(-L <= K && K <= L, "a shift reaches one vector either side at most");
  if constexpr (K == 0) return cur;
  else if constexpr (K > 0) return lanes_from_pair<K>(cur, next, std::make_integer_sequence<int, L>{});
  else return lanes_from_pair<L + K>(prev, cur, std::make_integer_sequence<int, L>{});
}

// max(0, v) with NaN passing through (tf.nn.relu's): one instruction on x86, whose max
// returns its second operand when either is NaN.
template <typename A>
ALEXOPS_INLINE typename Simd<A>::Vec relu_vector(typename Simd<A>::Vec v) {
  using Vec = typename Simd<A>::Vec;
#if defined(__AVX512F__)
  // (The masked forms: GCC 12's plain _mm512_max_* warn of an uninitialised operand.)
  if constexpr (std::is_same_v<A, float>) return (Vec)_mm512_maskz_max_ps(__mmask16(0xffff), _mm512_setzero_ps(), (__m512)v);
  else return (Vec)_mm512_maskz_max_pd(__mmask8(0xff), _mm512_setzero_pd(), (__m512d)v);
#elif defined(__AVX2__)
  if constexpr (std::is_same_v<A, float>) return (Vec)_mm256_max_ps(_mm256_setzero_ps(), (__m256)v);
  else return (Vec)_mm256_max_pd(_mm256_setzero_pd(), (__m256d)v);
#else
  return v < A(0) ? Vec{} : v;
#endif
}

// Whether any lane of v is non-zero (NaN counts). v may also be a comparison's result.
template <typename A, typename Vec>
ALEXOPS_INLINE bool any_lane_nonzero(Vec v) {
  static_assert(sizeof(Vec) == kVectorBytes, "one vector");
  using Bits = typename std::conditional<sizeof(A) == 4, uint32_t, uint64_t>::type;
  typedef Bits BitsVec __attribute__((vector_size(kVectorBytes)));
  // Non-zero as a float means bits other than the sign; a comparison's all-ones lanes pass too.
  const BitsVec bits = (BitsVec)v & ~(BitsVec{} + (Bits(1) << (8 * sizeof(A) - 1)));
#if defined(__AVX512F__)
  return _mm512_test_epi32_mask((__m512i)bits, (__m512i)bits) != 0;
#elif defined(__AVX2__)
  return !_mm256_testz_si256((__m256i)bits, (__m256i)bits);
#else
  for (int64_t i = 0; i < int64_t(kVectorBytes / sizeof(Bits)); ++i)
    if (bits[i]) return true;
  return false;
#endif
}

// v with its lanes from n on set to `fill`.
template <typename A>
ALEXOPS_INLINE typename Simd<A>::Vec first_lanes(typename Simd<A>::Vec v, int64_t n, A fill = A(0)) {
  if (n >= Simd<A>::kLanes) return v;
  for (int64_t i = n; i < Simd<A>::kLanes; ++i) v[i] = fill;
  return v;
}

}  // namespace cpu_simd
}  // namespace
}  // namespace alexops
