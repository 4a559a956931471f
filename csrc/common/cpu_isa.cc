#include "common/cpu_isa.h"

#include <cstdio>
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
    const CpuIsa supported = supported_isa();
    const char* asked = std::getenv("ALEXOPS_CPU_ISA");
    if (asked == nullptr || *asked == '\0') return supported;
    std::string names;
    for (CpuIsa level : {CpuIsa::kBaseline, CpuIsa::kAvx2, CpuIsa::kAvx512, CpuIsa::kAvx512Bf16}) {
      if (std::strcmp(asked, cpu_isa_name(level)) == 0) {
        if (level <= supported) return level;
        // A level this CPU (or this build) lacks would die on its first instruction.
        std::fprintf(stderr, "alexops: ALEXOPS_CPU_ISA=%s is above what this CPU and build run; using %s\n", asked,
                     cpu_isa_name(supported));
        return supported;
      }
      names += names.empty() ? "" : ", ";
      names += cpu_isa_name(level);
    }
    // Said on first use (by each of the package's two libraries), so that a misspelt level does
    // not pass for the one meant.
    std::fprintf(stderr, "alexops: ALEXOPS_CPU_ISA=%s is not one of %s; using %s\n", asked, names.c_str(),
                 cpu_isa_name(supported));
    return supported;
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
