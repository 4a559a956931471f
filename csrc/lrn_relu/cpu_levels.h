// The kernels each instruction-set level's build of lrn_relu/cpu.cc defines, in that level's
// namespace (common/cpu_isa.h), before any validation. cpu_dispatch.cc declares them for
// every level and calls the one in use; scripts/cpu_kernel_bench.cc declares them for the
// builds it links. One list, so that the two cannot drift apart.
#pragma once

#include <cstdint>

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "common/params.h"

#define ALEXOPS_LRN_RELU_LEVEL_KERNELS                                                                          \
  template <typename T>                                                                                         \
  CpuKernelResult lrn_relu_forward_cpu(const LrnParams& params, const T* x, T* y, int64_t n_pixels,             \
                                       int64_t channels, const ParallelFor& parallel_for);                      \
  template <typename T>                                                                                         \
  CpuKernelResult lrn_relu_backward_cpu(const LrnParams& params, const T* x, const T* dy, T* dx, int64_t n_pixels, \
                                        int64_t channels, const ParallelFor& parallel_for);
