// alexops.bench._cudnn_baseline: the stock GPU baseline for the benchmark, not part of the
// API: cuDNN's cross-channel LRN on NHWC data, as tf.nn.lrn calls it on a CUDA GPU. cuDNN
// divides alpha by the window size (Caffe's convention), so TensorFlow's alpha is passed as
// alpha * (2R+1), as TF does. Only the binding lives here; the ReLU before it (and ReluGrad
// after) is in alexops/bench/cudnn.py.
#include <cuda_runtime.h>
#include <cudnn.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "python/binding_helpers.h"

namespace alexops {
namespace {

void check(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuDNN ") + what + ": " + cudnnGetErrorString(status));
}

// One handle per device, created on first use and kept for the process.
cudnnHandle_t handle_for_current_device() {
  static std::mutex mutex;
  static std::map<int, cudnnHandle_t> handles;
  int device = 0;
  const cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) throw std::runtime_error(std::string("cudaGetDevice: ") + cudaGetErrorString(e));
  std::lock_guard<std::mutex> lock(mutex);
  auto found = handles.find(device);
  if (found != handles.end()) return found->second;
  cudnnHandle_t handle;
  check(cudnnCreate(&handle), "cudnnCreate");
  handles[device] = handle;
  return handle;
}

cudnnDataType_t data_type(const std::string& dtype) {
  if (dtype == "float32") return CUDNN_DATA_FLOAT;
  if (dtype == "float16") return CUDNN_DATA_HALF;
  if (dtype == "float64") return CUDNN_DATA_DOUBLE;
  if (dtype == "bfloat16") return CUDNN_DATA_BFLOAT16;
  throw py::type_error(std::string("dtype must be ") + kFloatDtypeNames + ", got " + dtype);
}

// The NHWC tensor descriptor (shared by x, y, dy, dx) and the LRN descriptor of one call.
class Descriptors {
 public:
  Descriptors(int64_t n, int64_t h, int64_t w, int64_t c, const std::string& dtype, int64_t depth_radius,
              double bias, double alpha, double beta) : is_double_(dtype == "float64") {
    check(cudnnCreateTensorDescriptor(&tensor_), "cudnnCreateTensorDescriptor");
    check(cudnnCreateLRNDescriptor(&lrn_), "cudnnCreateLRNDescriptor");
    check(cudnnSetTensor4dDescriptor(tensor_, CUDNN_TENSOR_NHWC, data_type(dtype), int(n), int(c), int(h), int(w)),
          "cudnnSetTensor4dDescriptor");
    const unsigned window = unsigned(2 * depth_radius + 1);
    check(cudnnSetLRNDescriptor(lrn_, window, alpha * window, beta, bias),
          "cudnnSetLRNDescriptor (cuDNN takes 1 <= 2R+1 <= 16, bias >= 1e-5, beta >= 0.01)");
  }
  ~Descriptors() {
    cudnnDestroyLRNDescriptor(lrn_);
    cudnnDestroyTensorDescriptor(tensor_);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;

  cudnnTensorDescriptor_t tensor() const { return tensor_; }
  cudnnLRNDescriptor_t lrn() const { return lrn_; }
  // cuDNN's blend factors are double for double data, float otherwise.
  const void* one() const { return is_double_ ? static_cast<const void*>(&one_d_) : &one_f_; }
  const void* zero() const { return is_double_ ? static_cast<const void*>(&zero_d_) : &zero_f_; }

 private:
  bool is_double_;
  cudnnTensorDescriptor_t tensor_ = nullptr;
  cudnnLRNDescriptor_t lrn_ = nullptr;
  double one_d_ = 1.0, zero_d_ = 0.0;
  float one_f_ = 1.0f, zero_f_ = 0.0f;
};

cudnnHandle_t handle_on(uintptr_t stream) {
  cudnnHandle_t handle = handle_for_current_device();
  check(cudnnSetStream(handle, reinterpret_cast<cudaStream_t>(stream)), "cudnnSetStream");
  return handle;
}

void cudnn_lrn_forward(uintptr_t x, uintptr_t y, int64_t n, int64_t h, int64_t w, int64_t c,
                       const std::string& dtype, int64_t depth_radius, double bias, double alpha,
                       double beta, uintptr_t stream) {
  const Descriptors d(n, h, w, c, dtype, depth_radius, bias, alpha, beta);
  check(cudnnLRNCrossChannelForward(handle_on(stream), d.lrn(), CUDNN_LRN_CROSS_CHANNEL_DIM1, d.one(),
                                    d.tensor(), reinterpret_cast<const void*>(x), d.zero(), d.tensor(),
                                    reinterpret_cast<void*>(y)),
        "cudnnLRNCrossChannelForward");
}

void cudnn_lrn_backward(uintptr_t x, uintptr_t y, uintptr_t dy, uintptr_t dx, int64_t n, int64_t h,
                        int64_t w, int64_t c, const std::string& dtype, int64_t depth_radius, double bias,
                        double alpha, double beta, uintptr_t stream) {
  const Descriptors d(n, h, w, c, dtype, depth_radius, bias, alpha, beta);
  check(cudnnLRNCrossChannelBackward(handle_on(stream), d.lrn(), CUDNN_LRN_CROSS_CHANNEL_DIM1, d.one(),
                                     d.tensor(), reinterpret_cast<const void*>(y), d.tensor(),
                                     reinterpret_cast<const void*>(dy), d.tensor(),
                                     reinterpret_cast<const void*>(x), d.zero(), d.tensor(),
                                     reinterpret_cast<void*>(dx)),
        "cudnnLRNCrossChannelBackward");
}

// The NHWC descriptors of a VALID max-pool (what AlexNet's 3x3/2 pools are; cuDNN pads only
// symmetrically, so TensorFlow pads SAME inputs itself): input, output, pooling.
class PoolDescriptors {
 public:
  PoolDescriptors(int64_t n, int64_t h, int64_t w, int64_t c, int64_t out_h, int64_t out_w, int64_t kh, int64_t kw,
                  int64_t sh, int64_t sw, const std::string& dtype)
      : is_double_(dtype == "float64") {
    check(cudnnCreateTensorDescriptor(&input_), "cudnnCreateTensorDescriptor");
    check(cudnnCreateTensorDescriptor(&output_), "cudnnCreateTensorDescriptor");
    check(cudnnCreatePoolingDescriptor(&pool_), "cudnnCreatePoolingDescriptor");
    check(cudnnSetTensor4dDescriptor(input_, CUDNN_TENSOR_NHWC, data_type(dtype), int(n), int(c), int(h), int(w)),
          "cudnnSetTensor4dDescriptor");
    check(cudnnSetTensor4dDescriptor(output_, CUDNN_TENSOR_NHWC, data_type(dtype), int(n), int(c), int(out_h),
                                     int(out_w)),
          "cudnnSetTensor4dDescriptor");
    // TensorFlow's default: NaN is not propagated through the max.
    check(cudnnSetPooling2dDescriptor(pool_, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN, int(kh), int(kw), 0, 0,
                                      int(sh), int(sw)),
          "cudnnSetPooling2dDescriptor");
  }
  ~PoolDescriptors() {
    cudnnDestroyPoolingDescriptor(pool_);
    cudnnDestroyTensorDescriptor(output_);
    cudnnDestroyTensorDescriptor(input_);
  }
  PoolDescriptors(const PoolDescriptors&) = delete;
  PoolDescriptors& operator=(const PoolDescriptors&) = delete;

  cudnnTensorDescriptor_t input() const { return input_; }
  cudnnTensorDescriptor_t output() const { return output_; }
  cudnnPoolingDescriptor_t pool() const { return pool_; }
  const void* one() const { return is_double_ ? static_cast<const void*>(&one_d_) : &one_f_; }
  const void* zero() const { return is_double_ ? static_cast<const void*>(&zero_d_) : &zero_f_; }

 private:
  bool is_double_;
  cudnnTensorDescriptor_t input_ = nullptr, output_ = nullptr;
  cudnnPoolingDescriptor_t pool_ = nullptr;
  double one_d_ = 1.0, zero_d_ = 0.0;
  float one_f_ = 1.0f, zero_f_ = 0.0f;
};

void cudnn_max_pool_forward(uintptr_t x, uintptr_t y, int64_t n, int64_t h, int64_t w, int64_t c, int64_t out_h,
                            int64_t out_w, int64_t kh, int64_t kw, int64_t sh, int64_t sw, const std::string& dtype,
                            uintptr_t stream) {
  const PoolDescriptors d(n, h, w, c, out_h, out_w, kh, kw, sh, sw, dtype);
  check(cudnnPoolingForward(handle_on(stream), d.pool(), d.one(), d.input(), reinterpret_cast<const void*>(x),
                            d.zero(), d.output(), reinterpret_cast<void*>(y)),
        "cudnnPoolingForward");
}

void cudnn_max_pool_backward(uintptr_t x, uintptr_t y, uintptr_t dy, uintptr_t dx, int64_t n, int64_t h, int64_t w,
                             int64_t c, int64_t out_h, int64_t out_w, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                             const std::string& dtype, uintptr_t stream) {
  const PoolDescriptors d(n, h, w, c, out_h, out_w, kh, kw, sh, sw, dtype);
  check(cudnnPoolingBackward(handle_on(stream), d.pool(), d.one(), d.output(), reinterpret_cast<const void*>(y),
                             d.output(), reinterpret_cast<const void*>(dy), d.input(),
                             reinterpret_cast<const void*>(x), d.zero(), d.input(), reinterpret_cast<void*>(dx)),
        "cudnnPoolingBackward");
}

}  // namespace
}  // namespace alexops

PYBIND11_MODULE(_cudnn_baseline, m) {
  namespace py = pybind11;
  using namespace alexops;
  m.doc() = "cuDNN's LRN on NHWC device data: the stock GPU baseline of alexops' benchmark.";
  m.def("cudnn_lrn_forward", &cudnn_lrn_forward, py::arg("x"), py::arg("y"), py::arg("n"), py::arg("h"),
        py::arg("w"), py::arg("c"), py::arg("dtype"), py::arg("depth_radius"), py::arg("bias"),
        py::arg("alpha"), py::arg("beta"), py::arg("stream"),
        "cuDNN LRN forward on NHWC device data (TensorFlow's alpha convention).");
  m.def("cudnn_lrn_backward", &cudnn_lrn_backward, py::arg("x"), py::arg("y"), py::arg("dy"), py::arg("dx"),
        py::arg("n"), py::arg("h"), py::arg("w"), py::arg("c"), py::arg("dtype"), py::arg("depth_radius"),
        py::arg("bias"), py::arg("alpha"), py::arg("beta"), py::arg("stream"),
        "cuDNN LRN backward: dx from the LRN input x, its output y and dy.");
  m.def("cudnn_max_pool_forward", &cudnn_max_pool_forward, py::arg("x"), py::arg("y"), py::arg("n"), py::arg("h"),
        py::arg("w"), py::arg("c"), py::arg("out_h"), py::arg("out_w"), py::arg("kh"), py::arg("kw"), py::arg("sh"),
        py::arg("sw"), py::arg("dtype"), py::arg("stream"), "cuDNN max-pool forward (VALID) on NHWC device data.");
  m.def("cudnn_max_pool_backward", &cudnn_max_pool_backward, py::arg("x"), py::arg("y"), py::arg("dy"),
        py::arg("dx"), py::arg("n"), py::arg("h"), py::arg("w"), py::arg("c"), py::arg("out_h"), py::arg("out_w"),
        py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("dtype"), py::arg("stream"),
        "cuDNN max-pool backward (VALID): dx from the pool's input x, output y and dy.");
}
