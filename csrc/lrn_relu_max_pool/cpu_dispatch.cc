// lrn_relu_max_pool's public CPU entry points (cpu.h): each calls its copy for the
// instruction-set level in use (common/cpu_isa.h).
#include "common/cpu_isa.h"
#include "lrn_relu_max_pool/cpu.h"
#include "lrn_relu_max_pool/cpu_levels.h"

ALEXOPS_CPU_DECLARE_EVERY_LEVEL(ALEXOPS_LRN_RELU_MAX_POOL_LEVEL_KERNELS)

namespace alexops {

template <typename T>
Status lrn_relu_max_pool_forward_cpu(const LrnParams& p, const PoolGeometry& g, const T* x, T* pooled,
                                     const ParallelFor& parallel_for) {
  Status status = validate(p, g.input_pixels(), g.channels);
  if (!status.ok()) return status;
  return cpu_kernel_status([&] { ALEXOPS_CPU_DISPATCH(lrn_relu_max_pool_forward_cpu<T>(p, g, x, pooled, parallel_for)) }());
}

template <typename T>
Status lrn_relu_max_pool_backward_cpu(const LrnParams& p, const PoolGeometry& g, const T* x, const T* dpooled, T* dx,
                                      const ParallelFor& parallel_for) {
  Status status = validate(p, g.input_pixels(), g.channels);
  if (!status.ok()) return status;
  return cpu_kernel_status(
      [&] { ALEXOPS_CPU_DISPATCH(lrn_relu_max_pool_backward_cpu<T>(p, g, x, dpooled, dx, parallel_for)) }());
}

#define ALEXOPS_INSTANTIATE_DISPATCH(T)                                                                     \
  template Status lrn_relu_max_pool_forward_cpu<T>(const LrnParams&, const PoolGeometry&, const T*, T*,      \
                                                   const ParallelFor&);                                      \
  template Status lrn_relu_max_pool_backward_cpu<T>(const LrnParams&, const PoolGeometry&, const T*, const T*, \
                                                    T*, const ParallelFor&);
ALEXOPS_INSTANTIATE_DISPATCH(float)
ALEXOPS_INSTANTIATE_DISPATCH(double)
ALEXOPS_INSTANTIATE_DISPATCH(half_bits)
ALEXOPS_INSTANTIATE_DISPATCH(bfloat16_bits)
#undef ALEXOPS_INSTANTIATE_DISPATCH

}  // namespace alexops
