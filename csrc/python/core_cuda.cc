#include "python/core_cuda.h"

#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(ALEXOPS_WITH_CUDA)
#include "lrn_relu/cuda.h"
#include "python/binding_helpers.h"
#endif

namespace py = pybind11;

namespace alexops {

#if defined(ALEXOPS_WITH_CUDA)
namespace {

// Pointers arrive as Python ints (CuPy's .data.ptr and stream.ptr).
template <typename T> T* as_pointer(uintptr_t address) { return reinterpret_cast<T*>(address); }

void forward_cuda(uintptr_t x, uintptr_t y, int64_t n_pixels, int64_t channels, const std::string& dtype,
                  const py::handle& depth_radius, double bias, double alpha, double beta, const py::handle& relu,
                  uintptr_t stream) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    raise_if_failed(lrn_relu_forward_cuda<T>(p, as_pointer<const T>(x), as_pointer<T>(y), n_pixels, channels,
                                             as_pointer<CUstream_st>(stream)));
  });
}

void backward_cuda(uintptr_t x, uintptr_t dy, uintptr_t dx, int64_t n_pixels, int64_t channels,
                   const std::string& dtype, const py::handle& depth_radius, double bias, double alpha, double beta,
                   const py::handle& relu, uintptr_t stream) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    raise_if_failed(lrn_relu_backward_cuda<T>(p, as_pointer<const T>(x), as_pointer<const T>(dy),
                                              as_pointer<T>(dx), n_pixels, channels,
                                              as_pointer<CUstream_st>(stream)));
  });
}

}  // namespace
#endif

void register_cuda_functions(py::module_& m) {
#if defined(ALEXOPS_WITH_CUDA)
  m.def("cuda_available", [] { return true; }, "True: this build has the CUDA kernels.");
  m.def("forward_cuda", &forward_cuda, py::arg("x"), py::arg("y"), py::arg("n_pixels"), py::arg("channels"),
        py::arg("dtype"), py::arg("depth_radius"), py::arg("bias"), py::arg("alpha"), py::arg("beta"),
        py::arg("relu"), py::arg("stream"),
        "Launch y = LRN(relu(x)) on `stream`; x and y are device addresses of contiguous NHWC data.");
  m.def("backward_cuda", &backward_cuda, py::arg("x"), py::arg("dy"), py::arg("dx"), py::arg("n_pixels"),
        py::arg("channels"), py::arg("dtype"), py::arg("depth_radius"), py::arg("bias"), py::arg("alpha"),
        py::arg("beta"), py::arg("relu"), py::arg("stream"),
        "Launch dx = d LRN(relu(x)) / dx applied to dy, on `stream`.");
#else
  m.def("cuda_available", [] { return false; }, "False: this build has no CUDA kernels.");
#endif
}

}  // namespace alexops
