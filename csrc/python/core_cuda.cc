#include "python/core_cuda.h"

#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(ALEXOPS_WITH_CUDA)
#include <pybind11/stl.h>

#include <array>

#include "lrn_relu/cuda.h"
#include "lrn_relu_max_pool/cuda.h"
#include "python/binding_helpers.h"
#endif

namespace py = pybind11;

namespace alexops {

#if defined(ALEXOPS_WITH_CUDA)
namespace {

// Pointers arrive as Python ints (CuPy's .data.ptr and stream.ptr).
template <typename T> T* as_pointer(uintptr_t address) { return reinterpret_cast<T*>(address); }

CudaKernel kernel_named(const std::string& name) {
  CudaKernel kernel;
  if (!parse_cuda_kernel(name, &kernel))
    throw py::value_error("kernel must be 'auto', 'registers' or 'tiled', got '" + name + "'");
  return kernel;
}

void forward_cuda(uintptr_t x, uintptr_t y, int64_t n_pixels, int64_t channels, const std::string& dtype,
                  const py::handle& depth_radius, double bias, double alpha, double beta, const py::handle& relu,
                  uintptr_t stream, const std::string& kernel) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  const CudaKernel which = kernel_named(kernel);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    raise_if_failed(lrn_relu_forward_cuda<T>(p, as_pointer<const T>(x), as_pointer<T>(y), n_pixels, channels,
                                             as_pointer<CUstream_st>(stream), which));
  });
}

void backward_cuda(uintptr_t x, uintptr_t dy, uintptr_t dx, int64_t n_pixels, int64_t channels,
                   const std::string& dtype, const py::handle& depth_radius, double bias, double alpha, double beta,
                   const py::handle& relu, uintptr_t stream, const std::string& kernel) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  const CudaKernel which = kernel_named(kernel);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    raise_if_failed(lrn_relu_backward_cuda<T>(p, as_pointer<const T>(x), as_pointer<const T>(dy),
                                              as_pointer<T>(dx), n_pixels, channels,
                                              as_pointer<CUstream_st>(stream), which));
  });
}

// The geometry of pooling an NHWC tensor of `shape` (ValueError for what no max-pool takes).
PoolGeometry pool_geometry_of(const std::array<int64_t, 4>& shape, const std::array<int64_t, 2>& ksize,
                              const std::array<int64_t, 2>& strides, const std::string& padding) {
  if (padding != "VALID" && padding != "SAME")
    throw py::value_error("padding must be 'VALID' or 'SAME', got '" + padding + "'");
  PoolGeometry g;
  raise_if_failed(pool_geometry(shape[0], shape[1], shape[2], shape[3],
                                PoolParams{ksize[0], ksize[1], strides[0], strides[1], padding == "SAME"}, &g));
  return g;
}

void forward_max_pool_cuda(uintptr_t x, uintptr_t pooled, const std::array<int64_t, 4>& shape, const std::string& dtype,
                           const py::handle& depth_radius, double bias, double alpha, double beta,
                           const py::handle& relu, const std::array<int64_t, 2>& ksize,
                           const std::array<int64_t, 2>& strides, const std::string& padding, uintptr_t stream) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  const PoolGeometry g = pool_geometry_of(shape, ksize, strides, padding);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    raise_if_failed(lrn_relu_max_pool_forward_cuda<T>(p, g, as_pointer<const T>(x), as_pointer<T>(pooled),
                                                      as_pointer<CUstream_st>(stream)));
  });
}

void backward_max_pool_cuda(uintptr_t x, uintptr_t dpooled, uintptr_t dx, const std::array<int64_t, 4>& shape,
                            const std::string& dtype, const py::handle& depth_radius, double bias, double alpha,
                            double beta, const py::handle& relu, const std::array<int64_t, 2>& ksize,
                            const std::array<int64_t, 2>& strides, const std::string& padding, uintptr_t stream) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  const PoolGeometry g = pool_geometry_of(shape, ksize, strides, padding);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    raise_if_failed(lrn_relu_max_pool_backward_cuda<T>(p, g, as_pointer<const T>(x), as_pointer<const T>(dpooled),
                                                       as_pointer<T>(dx), as_pointer<CUstream_st>(stream)));
  });
}

std::array<int64_t, 4> pooled_shape(const std::array<int64_t, 4>& shape, const std::array<int64_t, 2>& ksize,
                                    const std::array<int64_t, 2>& strides, const std::string& padding) {
  const PoolGeometry g = pool_geometry_of(shape, ksize, strides, padding);
  return {g.batch, g.out_rows, g.out_cols, g.channels};
}

// The kernel kernel='auto' takes for these sizes (given aligned data and no
// ALEXOPS_CUDA_KERNEL): "registers" or "tiled".
std::string cuda_kernel_for(const std::string& dtype, int64_t channels, int64_t depth_radius) {
  std::string name;
  dispatch_dtype(dtype, [&](auto tag) {
    CudaRegisterLayout layout;
    name = cuda_register_layout(channels, depth_radius, int(sizeof(tag)), &layout) ? "registers" : "tiled";
  });
  return name;
}

}  // namespace
#endif

void register_cuda_functions(py::module_& m) {
#if defined(ALEXOPS_WITH_CUDA)
  m.def("cuda_available", [] { return true; }, "True: this build has the CUDA kernels.");
  m.def("forward_cuda", &forward_cuda, py::arg("x"), py::arg("y"), py::arg("n_pixels"), py::arg("channels"),
        py::arg("dtype"), py::arg("depth_radius"), py::arg("bias"), py::arg("alpha"), py::arg("beta"),
        py::arg("relu") = true, py::arg("stream") = 0, py::arg("kernel") = "auto",
        "Launch y = LRN(relu(x)) on `stream` (0: the legacy default stream); x and y are device addresses of "
        "contiguous NHWC data. kernel: "
        "'auto', 'registers' or 'tiled' (see csrc/lrn_relu/cuda.cu).");
  m.def("backward_cuda", &backward_cuda, py::arg("x"), py::arg("dy"), py::arg("dx"), py::arg("n_pixels"),
        py::arg("channels"), py::arg("dtype"), py::arg("depth_radius"), py::arg("bias"), py::arg("alpha"),
        py::arg("beta"), py::arg("relu") = true, py::arg("stream") = 0, py::arg("kernel") = "auto",
        "Launch dx = d LRN(relu(x)) / dx applied to dy, on `stream`; kernel as for forward_cuda.");
  m.def("forward_max_pool_cuda", &forward_max_pool_cuda, py::arg("x"), py::arg("pooled"), py::arg("shape"),
        py::arg("dtype"), py::arg("depth_radius"), py::arg("bias"), py::arg("alpha"), py::arg("beta"),
        py::arg("relu"), py::arg("ksize"), py::arg("strides"), py::arg("padding"), py::arg("stream"),
        "Launch pooled = max_pool2d(LRN(relu(x))) on `stream`; x has NHWC `shape`.");
  m.def("backward_max_pool_cuda", &backward_max_pool_cuda, py::arg("x"), py::arg("dpooled"), py::arg("dx"),
        py::arg("shape"), py::arg("dtype"), py::arg("depth_radius"), py::arg("bias"), py::arg("alpha"),
        py::arg("beta"), py::arg("relu"), py::arg("ksize"), py::arg("strides"), py::arg("padding"), py::arg("stream"),
        "Launch dx of max_pool2d(LRN(relu(x))) given dpooled, on `stream`.");
  m.def("pooled_shape", &pooled_shape, py::arg("shape"), py::arg("ksize"), py::arg("strides"), py::arg("padding"),
        "The pooled output's NHWC shape (TensorFlow's rules); ValueError where none exists.");
  m.def("cuda_kernel_for", &cuda_kernel_for, py::arg("dtype"), py::arg("channels"), py::arg("depth_radius"),
        "The CUDA kernel kernel='auto' picks for these sizes: 'registers' or 'tiled'.");
#else
  m.def("cuda_available", [] { return false; }, "False: this build has no CUDA kernels.");
#endif
}

}  // namespace alexops
