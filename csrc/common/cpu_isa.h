// The CPU kernels are compiled once per instruction-set level, each copy in a namespace of its
// own, and the widest level this CPU runs is picked at run time, as NumPy and oneDNN do: a
// build runs on any x86-64 and is as fast as one built for the machine.
//
//   baseline    x86-64 (SSE2)                     namespace cpu_baseline (also: every other CPU)
//   avx2        x86-64-v3 (AVX2, FMA, F16C, ...)  namespace cpu_avx2
//   avx512      x86-64-v4 (AVX-512 F/BW/DQ/VL)    namespace cpu_avx512
//   avx512bf16  x86-64-v4 and AVX512-BF16         namespace cpu_avx512bf16: its conversion to
//               bfloat16 (Cooper Lake, Sapphire Rapids and later Xeons; Zen 4 and later)
//
// The kernel files (<op>/cpu.cc) are built once per level with ALEXOPS_ISA_NAMESPACE set to
// the level's namespace; every helper they use lives in an unnamed namespace, so no two
// levels share a function by name (the linker would keep just one). ALEXOPS_CPU_ISA=
// baseline|avx2|avx512|avx512bf16 asks for a lower level than the CPU's (for tests, and for timing).
#pragma once

#include <string>

#include "common/status.h"

namespace alexops {

enum class CpuIsa { kBaseline = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Bf16 = 3 };

// What a level's kernel reports: the dispatcher (built once, for the baseline) validates the
// arguments before and turns this into a Status after, so that the levels' code builds no
// strings (whose functions the levels would share by name).
enum class CpuKernelResult { kOk, kOutOfMemory };
Status cpu_kernel_status(CpuKernelResult result);

const char* cpu_isa_name(CpuIsa isa);
// The level the kernels run at: the widest this CPU supports among those built, or the one
// ALEXOPS_CPU_ISA names if that is lower. Decided once per process.
CpuIsa cpu_isa_in_use();
// The levels built into this library, widest last: "baseline, avx2, avx512, avx512bf16".
std::string cpu_isas_built();

}  // namespace alexops

#if defined(ALEXOPS_CPU_ISA_AVX512BF16)
#define ALEXOPS_CPU_CASE_AVX512BF16(call) \
  case ::alexops::CpuIsa::kAvx512Bf16:    \
    return ::alexops::cpu_avx512bf16::call;
#else
#define ALEXOPS_CPU_CASE_AVX512BF16(call)
#endif
#if defined(ALEXOPS_CPU_ISA_AVX512)
#define ALEXOPS_CPU_CASE_AVX512(call) \
  case ::alexops::CpuIsa::kAvx512:    \
    return ::alexops::cpu_avx512::call;
#else
#define ALEXOPS_CPU_CASE_AVX512(call)
#endif
#if defined(ALEXOPS_CPU_ISA_AVX2)
#define ALEXOPS_CPU_CASE_AVX2(call) \
  case ::alexops::CpuIsa::kAvx2:    \
    return ::alexops::cpu_avx2::call;
#else
#define ALEXOPS_CPU_CASE_AVX2(call)
#endif

// `return <namespace of the level in use>::call;`
#define ALEXOPS_CPU_DISPATCH(call)            \
  switch (::alexops::cpu_isa_in_use()) {      \
    ALEXOPS_CPU_CASE_AVX512BF16(call)         \
    ALEXOPS_CPU_CASE_AVX512(call)             \
    ALEXOPS_CPU_CASE_AVX2(call)               \
    default:                                  \
      return ::alexops::cpu_baseline::call;   \
  }

// Declares `declarations` in every level's namespace that was built.
#if defined(ALEXOPS_CPU_ISA_AVX512BF16)
#define ALEXOPS_CPU_DECLARE_AVX512BF16(declarations) namespace alexops { namespace cpu_avx512bf16 { declarations } }
#else
#define ALEXOPS_CPU_DECLARE_AVX512BF16(declarations)
#endif
#if defined(ALEXOPS_CPU_ISA_AVX512)
#define ALEXOPS_CPU_DECLARE_AVX512(declarations) namespace alexops { namespace cpu_avx512 { declarations } }
#else
#define ALEXOPS_CPU_DECLARE_AVX512(declarations)
#endif
#if defined(ALEXOPS_CPU_ISA_AVX2)
#define ALEXOPS_CPU_DECLARE_AVX2(declarations) namespace alexops { namespace cpu_avx2 { declarations } }
#else
#define ALEXOPS_CPU_DECLARE_AVX2(declarations)
#endif
#define ALEXOPS_CPU_DECLARE_EVERY_LEVEL(declarations)                   \
  namespace alexops { namespace cpu_baseline { declarations } }         \
  ALEXOPS_CPU_DECLARE_AVX2(declarations)                                \
  ALEXOPS_CPU_DECLARE_AVX512(declarations)                              \
  ALEXOPS_CPU_DECLARE_AVX512BF16(declarations)
