// CPU registration: the launcher runs the core's CPU kernels on TensorFlow's worker threads.
#include "lrn_relu/cpu.h"
#include "lrn_relu_max_pool/cpu.h"
#include "tf/kernels.h"
#include "tensorflow/core/framework/register_types.h"
#include "tensorflow/core/platform/threadpool.h"

namespace alexops {

using CPUDevice = Eigen::ThreadPoolDevice;

template <typename T>
struct LrnReluLauncher<CPUDevice, T> {
  using Core = typename CoreType<T>::type;

  static ParallelFor WorkerThreads(tf::OpKernelContext* ctx) {
    tf::thread::ThreadPool* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    return [pool](int64_t n, int64_t cost, const RangeFn& fn) { pool->ParallelFor(n, cost, fn); };
  }

  static absl::Status Forward(tf::OpKernelContext* ctx, const LrnParams& p, const T* x, T* y,
                              int64_t n_pixels, int64_t channels) {
    return ToAbsl(lrn_relu_forward_cpu(p, reinterpret_cast<const Core*>(x), reinterpret_cast<Core*>(y),
                                       n_pixels, channels, WorkerThreads(ctx)));
  }

  static absl::Status Backward(tf::OpKernelContext* ctx, const LrnParams& p, const T* x,
                               const T* dy, T* dx, int64_t n_pixels, int64_t channels) {
    return ToAbsl(lrn_relu_backward_cpu(p, reinterpret_cast<const Core*>(x), reinterpret_cast<const Core*>(dy),
                                        reinterpret_cast<Core*>(dx), n_pixels, channels, WorkerThreads(ctx)));
  }
};

template <typename T>
struct LrnReluMaxPoolLauncher<CPUDevice, T> {
  using Core = typename CoreType<T>::type;

  static absl::Status Forward(tf::OpKernelContext* ctx, const LrnParams& p, const PoolGeometry& g, const T* x,
                              T* pooled) {
    return ToAbsl(lrn_relu_max_pool_forward_cpu(p, g, reinterpret_cast<const Core*>(x), reinterpret_cast<Core*>(pooled),
                                                LrnReluLauncher<CPUDevice, T>::WorkerThreads(ctx)));
  }

  static absl::Status Backward(tf::OpKernelContext* ctx, const LrnParams& p, const PoolGeometry& g, const T* x,
                               const T* dpooled, T* dx) {
    return ToAbsl(lrn_relu_max_pool_backward_cpu(p, g, reinterpret_cast<const Core*>(x),
                                                 reinterpret_cast<const Core*>(dpooled), reinterpret_cast<Core*>(dx),
                                                 LrnReluLauncher<CPUDevice, T>::WorkerThreads(ctx)));
  }
};

ALEXOPS_REGISTER_KERNELS(tf::DEVICE_CPU, CPUDevice, Eigen::half)
ALEXOPS_REGISTER_KERNELS(tf::DEVICE_CPU, CPUDevice, Eigen::bfloat16)
ALEXOPS_REGISTER_KERNELS(tf::DEVICE_CPU, CPUDevice, float)
ALEXOPS_REGISTER_KERNELS(tf::DEVICE_CPU, CPUDevice, double)

}  // namespace alexops
