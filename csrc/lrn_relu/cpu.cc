// CPU LRN(+ReLU) kernels: the machinery (window sums, N^-beta, scratch, the double-precision
// path, and forward_pixels / backward_pixels over a run of pixels) is in
// common/lrn_rows_cpu.h; this file spreads it over the caller's parallel-for.
#include "lrn_relu/cpu.h"

#include "common/lrn_rows_cpu.h"

namespace alexops {
namespace {

// Pixels per parallel work unit: enough to amortise scheduling, few enough to balance.
constexpr int64_t kPixelsPerUnit = 64;
// Rough cycles per element, for the scheduler's shard sizes only.
constexpr int64_t kCyclesPerElement = 8;

// Runs pixels_fn over ranges of whole work units of pixels, on parallel_for's threads.
template <typename Fn>
CpuKernelResult for_each_pixel_range(int64_t n_pixels, int64_t C, const ParallelFor& parallel_for, Fn&& pixels_fn) {
  if (n_pixels == 0 || C == 0) return CpuKernelResult::kOk;
  const int64_t units = (n_pixels + kPixelsPerUnit - 1) / kPixelsPerUnit;
  return guarded_parallel_for(units, kPixelsPerUnit * C * kCyclesPerElement, parallel_for,
                              [&](int64_t begin, int64_t end) {
                                pixels_fn(begin * kPixelsPerUnit, std::min(n_pixels, end * kPixelsPerUnit));
                              });
}

}  // namespace

#ifndef ALEXOPS_ISA_NAMESPACE
#error "ALEXOPS_ISA_NAMESPACE must name the instruction-set level this file is built for (see common/cpu_isa.h)"
#endif
// This level's entry points; the public ones (cpu.h) dispatch to them (cpu_dispatch.cc).
namespace ALEXOPS_ISA_NAMESPACE {

// (The arguments are validated by the dispatcher.)
template <typename T>
CpuKernelResult lrn_relu_forward_cpu(const LrnParams& p, const T* x, T* y, int64_t n_pixels, int64_t C,
                                     const ParallelFor& parallel_for) {
  CpuKernelResult status = CpuKernelResult::kOk;
  with_power_kind(p.beta, [&](auto kind) {
    status = for_each_pixel_range(n_pixels, C, parallel_for, [&](int64_t begin, int64_t end) {
      forward_pixels<decltype(kind)::value>(p, x, y, C, begin, end);
    });
  });
  return status;
}

template <typename T>
CpuKernelResult lrn_relu_backward_cpu(const LrnParams& p, const T* x, const T* dy, T* dx, int64_t n_pixels,
                                      int64_t C, const ParallelFor& parallel_for) {
  CpuKernelResult status = CpuKernelResult::kOk;
  with_power_kind(p.beta, [&](auto kind) {
    status = for_each_pixel_range(n_pixels, C, parallel_for, [&](int64_t begin, int64_t end) {
      backward_pixels<decltype(kind)::value>(p, x, dy, dx, C, begin, end);
    });
  });
  return status;
}

#define ALEXOPS_INSTANTIATE_CPU(T)                                                          \
  template CpuKernelResult lrn_relu_forward_cpu<T>(const LrnParams&, const T*, T*, int64_t, int64_t, \
                                                   const ParallelFor&);                              \
  template CpuKernelResult lrn_relu_backward_cpu<T>(const LrnParams&, const T*, const T*, T*,       \
                                                    int64_t, int64_t, const ParallelFor&);
ALEXOPS_INSTANTIATE_CPU(float)
ALEXOPS_INSTANTIATE_CPU(double)
ALEXOPS_INSTANTIATE_CPU(half_bits)
ALEXOPS_INSTANTIATE_CPU(bfloat16_bits)
#undef ALEXOPS_INSTANTIATE_CPU

}  // namespace ALEXOPS_ISA_NAMESPACE
}  // namespace alexops
