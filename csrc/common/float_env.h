// The floating-point environment the CPU kernels run in. TensorFlow runs its threads with
// flush-to-zero and denormals-are-zero on; NumPy's callers usually do not. The kernels turn
// both off for the span of their work, so every door gives the same, IEEE result: a
// subnormal intermediate (1/N for N > 2^126, the backward's N^(-beta-1)) keeps its value
// instead of becoming 0 and taking a normal result with it.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif
#include <cstdint>

namespace alexops {

class ScopedGradualUnderflow {
 public:
#if defined(__x86_64__) || defined(__i386__)
  // MXCSR bit 15 is flush-to-zero, bit 6 denormals-are-zero.
  ScopedGradualUnderflow() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ & ~0x8040u); }
  ~ScopedGradualUnderflow() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#elif defined(__aarch64__)
  // FPCR bit 24 is flush-to-zero (for inputs and results alike), bit 19 the same for
  // half-precision arithmetic. Inline assembly, which GCC and Clang both take (GCC's
  // __builtin_aarch64_get_fpcr64 is GCC's alone); "memory" keeps the kernels' loads and
  // stores on their side of it.
  ScopedGradualUnderflow() : saved_(read_fpcr()) { write_fpcr(saved_ & ~((uint64_t(1) << 24) | (uint64_t(1) << 19))); }
  ~ScopedGradualUnderflow() { write_fpcr(saved_); }

 private:
  static uint64_t read_fpcr() {
    uint64_t value;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(value) : : "memory");
    return value;
  }
  static void write_fpcr(uint64_t value) { __asm__ __volatile__("msr fpcr, %0" : : "r"(value) : "memory"); }
  uint64_t saved_;
#else
  ScopedGradualUnderflow() = default;
#endif
  ScopedGradualUnderflow(const ScopedGradualUnderflow&) = delete;
  ScopedGradualUnderflow& operator=(const ScopedGradualUnderflow&) = delete;
};

}  // namespace alexops
