// The kernels each instruction-set level's build of lrn_relu_max_pool/cpu.cc defines, in that
// level's namespace (common/cpu_isa.h), before any validation. cpu_dispatch.cc declares them
// for every level and calls the one in use; scripts/cpu_kernel_bench.cc declares them for the
// builds it links. One list, so that the two cannot drift apart.
#pragma once

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "common/params.h"
#include "lrn_relu_max_pool/pooling.h"

#define ALEXOPS_LRN_RELU_MAX_POOL_LEVEL_KERNELS                                                                   \
  template <typename T>                                                                                          \
  CpuKernelResult lrn_relu_max_pool_forward_cpu(const LrnParams& params, const PoolGeometry& geometry, const T* x, \
                                                T* pooled, const ParallelFor& parallel_for);                     \
  template <typename T>                                                                                          \
  CpuKernelResult lrn_relu_max_pool_backward_cpu(const LrnParams& params, const PoolGeometry& geometry,          \
                                                 const T* x, const T* dpooled, T* dx, const ParallelFor& parallel_for);
