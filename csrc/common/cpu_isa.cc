#include "common/cpu_isa.h"

#include <cstdlib>
#include <cstring>

namespace alexops {
namespace {

CpuIsa supported_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
#if defined(ALEXOPS_CPU_ISA_AVX512BF16)
  if (__builtin_cpu_supports("x86-64-v4") && __builtin_cpu_supports("avx512bf16")) return CpuIsa::kAvx512Bf16;
#endif
#if defined(ALEXOPS_CPU_ISA_AVX512)
  if (__builtin_cpu_supports("x86-64-v4")) return CpuIsa::kAvx512;
#endif
#if defined(ALEXOPS_CPU_ISA_AVX2)
  if (__builtin_cpu_supports("x86-64-v3")) return CpuIsa::kAvx2;
#endif
#endif
  return CpuIsa::kBaseline;
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512Bf16: return "avx512bf16";
    case CpuIsa::kAvx512: return "avx512";
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kBaseline: break;
  }
  return "baseline";
}

CpuIsa cpu_isa_in_use() {
  static const CpuIsa chosen = [] {
    CpuIsa isa = supported_isa();
    if (const char* asked = std::getenv("ALEXOPS_CPU_ISA")) {
      for (CpuIsa lower : {CpuIsa::kBaseline, CpuIsa::kAvx2, CpuIsa::kAvx512, CpuIsa::kAvx512Bf16})
        if (std::strcmp(asked, cpu_isa_name(lower)) == 0 && lower < isa) isa = lower;
    }
    return isa;
  }();
  return chosen;
}

Status cpu_kernel_status(CpuKernelResult result) {
  if (result == CpuKernelResult::kOutOfMemory)
    return Status::ResourceExhausted("alexops: out of memory for the CPU kernel's scratch rows");
  return Status::Ok();
}

std::string cpu_isas_built() {
  std::string built = "baseline";
#if defined(ALEXOPS_CPU_ISA_AVX2)
  built += ", avx2";
#endif
#if defined(ALEXOPS_CPU_ISA_AVX512)
  built += ", avx512";
#endif
#if defined(ALEXOPS_CPU_ISA_AVX512BF16)
  built += ", avx512bf16";
#endif
  return built;
}

}  // namespace alexops
