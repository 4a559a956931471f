// Storage types and their conversions, for the CPU side of the core. The conversions are in
// an unnamed namespace: each translation unit (each instruction-set level's copy of the
// kernels, cpu_isa.h) gets its own, compiled for its own target.
// half and bfloat16 are stored as 16 raw bits so the core needs no framework's type;
// TensorFlow's Eigen::half / Eigen::bfloat16 and NumPy's float16 / ml_dtypes.bfloat16
// share this bit layout, so the front doors reinterpret their pointers.
#pragma once

#include <cstdint>
#include <cstring>

namespace alexops {

struct half_bits { uint16_t bits; };
struct bfloat16_bits { uint16_t bits; };

// Arithmetic type for each storage type: 16-bit types load, accumulate and compute in
// float32 and round once on store; float64 stays float64.
template <typename T> struct AccumulatorOf { using type = T; };
template <> struct AccumulatorOf<half_bits> { using type = float; };
template <> struct AccumulatorOf<bfloat16_bits> { using type = float; };
template <typename T> using Acc = typename AccumulatorOf<T>::type;

namespace {

inline float bits_to_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t float_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float to_acc(float v) { return v; }
inline double to_acc(double v) { return v; }
inline float to_acc(bfloat16_bits v) { return bits_to_float(uint32_t(v.bits) << 16); }

inline void store(float v, float* out) { *out = v; }
inline void store(double v, double* out) { *out = v; }
// Round to nearest even; NaN stays a (quiet) NaN.
inline void store(float v, bfloat16_bits* out) {
  uint32_t u = float_to_bits(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) { out->bits = uint16_t((u >> 16) | 0x40u); return; }
  u += 0x7fffu + ((u >> 16) & 1u);
  out->bits = uint16_t(u >> 16);
}

#if !defined(__CUDACC__) && (defined(__aarch64__) || (defined(__FLT16_MAX__) && defined(__x86_64__)))
// The compiler has IEEE binary16: _Float16 on x86-64 (GCC >= 12, Clang), and on AArch64 the
// ACLE's __fp16 (IEEE format there), which GCC 12 has in C++ where it lacks _Float16. Each
// conversion is one instruction (F16C, AVX512-FP16 or the AArch64 fcvt), rounding to nearest
// even. (__FLT16_MAX__ alone does not say that C++ has _Float16: GCC 12 on AArch64 defines it.)
#if defined(__aarch64__)
using binary16 = __fp16;
#else
using binary16 = _Float16;
#endif
inline float to_acc(half_bits v) { binary16 h; std::memcpy(&h, &v.bits, 2); return float(h); }
inline void store(float v, half_bits* out) { binary16 h = binary16(v); std::memcpy(&out->bits, &h, 2); }
#else
// Portable bit-level binary16 conversions for compilers without _Float16.
inline float to_acc(half_bits v) {
  uint32_t sign = uint32_t(v.bits & 0x8000u) << 16, exp = (v.bits >> 10) & 0x1fu, man = v.bits & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {  // zero or subnormal: value = man * 2^-24
    float f = float(man) * (1.0f / 16777216.0f);
    return sign ? -f : f;
  }
  return bits_to_float(sign | ((exp + 112u) << 23) | (man << 13));
}
inline void store(float v, half_bits* out) {
  uint32_t u = float_to_bits(v), sign = (u >> 16) & 0x8000u, abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) { out->bits = uint16_t(sign | 0x7e00u); return; }       // NaN
  if (abs >= 0x477ff000u) { out->bits = uint16_t(sign | 0x7c00u); return; }      // rounds to inf
  if (abs < 0x38800000u) {  // result is subnormal or zero: round v * 2^24 to an integer
    float scaled = bits_to_float(abs) * 16777216.0f;
    uint32_t m = uint32_t(scaled), rem_bits;
    float rem = scaled - float(m);
    rem_bits = (rem > 0.5f || (rem == 0.5f && (m & 1u))) ? 1u : 0u;
    out->bits = uint16_t(sign | (m + rem_bits));
    return;
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u) - (112u << 23);
  out->bits = uint16_t(sign | (rounded >> 13));
}
#endif

}  // namespace
}  // namespace alexops
