// lrn_relu's public CPU entry points (cpu.h): each calls its copy for the instruction-set
// level in use (common/cpu_isa.h).
#include "common/cpu_isa.h"
#include "lrn_relu/cpu.h"
#include "lrn_relu/cpu_levels.h"

ALEXOPS_CPU_DECLARE_EVERY_LEVEL(ALEXOPS_LRN_RELU_LEVEL_KERNELS)

namespace alexops {

template <typename T>
Status lrn_relu_forward_cpu(const LrnParams& p, const T* x, T* y, int64_t n_pixels, int64_t channels,
                            const ParallelFor& parallel_for) {
  Status status = validate(p, n_pixels, channels);
  if (!status.ok()) return status;
  return cpu_kernel_status([&] { ALEXOPS_CPU_DISPATCH(lrn_relu_forward_cpu<T>(p, x, y, n_pixels, channels, parallel_for)) }());
}

template <typename T>
Status lrn_relu_backward_cpu(const LrnParams& p, const T* x, const T* dy, T* dx, int64_t n_pixels, int64_t channels,
                             const ParallelFor& parallel_for) {
  Status status = validate(p, n_pixels, channels);
  if (!status.ok()) return status;
  return cpu_kernel_status(
      [&] { ALEXOPS_CPU_DISPATCH(lrn_relu_backward_cpu<T>(p, x, dy, dx, n_pixels, channels, parallel_for)) }());
}

#define ALEXOPS_INSTANTIATE_DISPATCH(T)                                                                         \
  template Status lrn_relu_forward_cpu<T>(const LrnParams&, const T*, T*, int64_t, int64_t, const ParallelFor&); \
  template Status lrn_relu_backward_cpu<T>(const LrnParams&, const T*, const T*, T*, int64_t, int64_t,           \
                                           const ParallelFor&);
ALEXOPS_INSTANTIATE_DISPATCH(float)
ALEXOPS_INSTANTIATE_DISPATCH(double)
ALEXOPS_INSTANTIATE_DISPATCH(half_bits)
ALEXOPS_INSTANTIATE_DISPATCH(bfloat16_bits)
#undef ALEXOPS_INSTANTIATE_DISPATCH

}  // namespace alexops
