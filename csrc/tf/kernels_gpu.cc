// GPU registration: the launchers run the core's CUDA kernels on the op's stream, for all
// four dtypes (stock TensorFlow registers GPU LRN for float32 only). Host code only: the
// host compiler builds it with GOOGLE_CUDA=1 and the CUDA include directory.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include "lrn_relu/cuda.h"
#include "lrn_relu_max_pool/cuda.h"
#include "tf/kernels.h"

namespace alexops {

using GPUDevice = Eigen::GpuDevice;

template <typename T>
struct LrnReluLauncher<GPUDevice, T> {
  using Core = typename CoreType<T>::type;

  static absl::Status Forward(tf::OpKernelContext* ctx, const LrnParams& p, const T* x, T* y,
                              int64_t n_pixels, int64_t channels) {
    return ToAbsl(lrn_relu_forward_cuda(p, reinterpret_cast<const Core*>(x), reinterpret_cast<Core*>(y),
                                          n_pixels, channels, ctx->eigen_device<GPUDevice>().stream()));
  }

  static absl::Status Backward(tf::OpKernelContext* ctx, const LrnParams& p, const T* x,
                               const T* dy, T* dx, int64_t n_pixels, int64_t channels) {
    return ToAbsl(lrn_relu_backward_cuda(p, reinterpret_cast<const Core*>(x),
                                           reinterpret_cast<const Core*>(dy), reinterpret_cast<Core*>(dx),
                                           n_pixels, channels, ctx->eigen_device<GPUDevice>().stream()));
  }
};

template <typename T>
struct LrnReluMaxPoolLauncher<GPUDevice, T> {
  using Core = typename CoreType<T>::type;

  static absl::Status Forward(tf::OpKernelContext* ctx, const LrnParams& p, const PoolGeometry& g, const T* x,
                              T* pooled) {
    return ToAbsl(lrn_relu_max_pool_forward_cuda(p, g, reinterpret_cast<const Core*>(x),
                                                 reinterpret_cast<Core*>(pooled),
                                                 ctx->eigen_device<GPUDevice>().stream()));
  }

  static absl::Status Backward(tf::OpKernelContext* ctx, const LrnParams& p, const PoolGeometry& g, const T* x,
                               const T* dpooled, T* dx) {
    return ToAbsl(lrn_relu_max_pool_backward_cuda(p, g, reinterpret_cast<const Core*>(x),
                                                  reinterpret_cast<const Core*>(dpooled), reinterpret_cast<Core*>(dx),
                                                  ctx->eigen_device<GPUDevice>().stream()));
  }
};

ALEXOPS_REGISTER_KERNELS(tf::DEVICE_GPU, GPUDevice, Eigen::half)
ALEXOPS_REGISTER_KERNELS(tf::DEVICE_GPU, GPUDevice, Eigen::bfloat16)
ALEXOPS_REGISTER_KERNELS(tf::DEVICE_GPU, GPUDevice, float)
ALEXOPS_REGISTER_KERNELS(tf::DEVICE_GPU, GPUDevice, double)

}  // namespace alexops

#endif  // GOOGLE_CUDA
