// alexops._core: the NumPy door to the CPU kernels (and, when built with CUDA, the raw-pointer
// door that alexops.cupy uses). Validation and dtype dispatch only; no kernel math here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lrn_relu/cpu.h"
#include "python/binding_helpers.h"
#include "python/core_cuda.h"

namespace py = pybind11;

namespace alexops {
namespace {

// Splits the units evenly over up to hardware_concurrency std::threads.
void thread_parallel_for(int64_t n_units, int64_t, const RangeFn& fn) {
  const int64_t threads = std::min<int64_t>(n_units, std::max(1u, std::thread::hardware_concurrency()));
  if (threads <= 1) return serial_for(n_units, 0, fn);
  std::vector<std::thread> pool;
  const int64_t per_thread = (n_units + threads - 1) / threads;
  for (int64_t begin = per_thread; begin < n_units; begin += per_thread)
    pool.emplace_back(fn, begin, std::min(n_units, begin + per_thread));
  fn(0, std::min(n_units, per_thread));
  for (auto& t : pool) t.join();
}


// Rank-4 C-contiguous array of a supported floating dtype, else ValueError naming `what`.
py::array checked_nhwc(const py::array& a, const char* what) {
  if (a.ndim() != 4)
    throw py::value_error(std::string(what) + " must be 4-D NHWC, got rank " + std::to_string(a.ndim()));
  const std::string dtype = py::str(a.dtype().attr("name"));
  if (dtype != "float16" && dtype != "bfloat16" && dtype != "float32" && dtype != "float64")
    throw py::value_error(std::string(what) + " must be float16, bfloat16, float32 or float64, got " + dtype);
  return py::array::ensure(a, py::array::c_style);
}


// `out` if given (it may be x itself), else a new array like x.
py::array output_for(const py::array& x, const std::optional<py::array>& out) {
  if (!out) return py::array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + 4));
  const py::array& o = *out;
  if (!o.dtype().is(x.dtype()) || o.ndim() != 4 || !std::equal(x.shape(), x.shape() + 4, o.shape()) ||
      !(o.flags() & py::array::c_style) || !o.writeable())
    throw py::value_error("out must be a writeable C-contiguous array of x's shape and dtype");
  return o;
}

py::array forward(const py::array& x_in, int64_t depth_radius, double bias, double alpha,
                  double beta, bool relu, const std::optional<py::array>& out) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  py::array x = checked_nhwc(x_in, "x");
  py::array y = output_for(x, out);
  const int64_t C = x.shape(3), pixels = C ? x.size() / C : 0;
  dispatch_dtype(py::str(x.dtype().attr("name")), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.data());
    T* yp = static_cast<T*>(y.mutable_data());
    py::gil_scoped_release release;
    lrn_relu_forward_cpu<T>(p, xp, yp, pixels, C, thread_parallel_for);
  });
  return y;
}

py::array backward(const py::array& x_in, const py::array& dy_in, int64_t depth_radius,
                   double bias, double alpha, double beta, bool relu, const std::optional<py::array>& out) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  py::array x = checked_nhwc(x_in, "x"), dy = checked_nhwc(dy_in, "dy");
  if (!x.dtype().is(dy.dtype()))
    throw py::value_error("x and dy must have the same dtype");
  if (!std::equal(x.shape(), x.shape() + 4, dy.shape()))
    throw py::value_error("x and dy must have the same shape");
  py::array dx = output_for(x, out);
  const int64_t C = x.shape(3), pixels = C ? x.size() / C : 0;
  dispatch_dtype(py::str(x.dtype().attr("name")), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.data());
    const T* dyp = static_cast<const T*>(dy.data());
    T* dxp = static_cast<T*>(dx.mutable_data());
    py::gil_scoped_release release;
    lrn_relu_backward_cpu<T>(p, xp, dyp, dxp, pixels, C, thread_parallel_for);
  });
  return dx;
}

}  // namespace
}  // namespace alexops

PYBIND11_MODULE(_core, m) {
  m.doc() = "alexops core kernels: fused ReLU + LRN (TensorFlow's alpha convention), NHWC.";
  m.def("forward", &alexops::forward, py::arg("x"), py::arg("depth_radius") = 5,
        py::arg("bias") = 1.0, py::arg("alpha") = 1.0, py::arg("beta") = 0.5,
        py::arg("relu") = true, py::arg("out") = py::none(),
        "y = LRN(relu(x)) on the CPU; x is a 4-D NHWC NumPy array; out (optional) receives y.");
  m.def("backward", &alexops::backward, py::arg("x"), py::arg("dy"), py::arg("depth_radius") = 5,
        py::arg("bias") = 1.0, py::arg("alpha") = 1.0, py::arg("beta") = 0.5,
        py::arg("relu") = true, py::arg("out") = py::none(),
        "dx given dy for y = LRN(relu(x)), on the CPU; out (optional) receives dx.");
  alexops::register_cuda_functions(m);
}
