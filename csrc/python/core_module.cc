// alexops._core: the NumPy door to the CPU kernels (and, when built with CUDA, the raw-pointer
// door that alexops.cupy uses). Validation and dtype dispatch only; no kernel math here.
// Private: users call alexops.numpy, which documents these same arguments.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/thread_pool.h"
#include "lrn_relu/cpu.h"
#include "python/binding_helpers.h"
#include "python/core_cuda.h"

namespace alexops {
namespace {

std::string dtype_name(const py::array& a) { return py::str(a.dtype().attr("name")); }

// x or dy as a 4-D, C-contiguous array of a supported dtype in native byte order (converted
// when it is not, as NumPy's own functions do). ValueError / TypeError naming `what`.
py::array checked_input(const py::array& a, const char* what) {
  if (a.ndim() != 4)
    throw py::value_error(std::string(what) + " must be 4-D NHWC, got rank " + std::to_string(a.ndim()));
  if (!is_float_dtype(dtype_name(a)))
    throw py::type_error(std::string(what) + " must be " + kFloatDtypeNames + ", got " + dtype_name(a));
  if (!a.dtype().attr("isnative").cast<bool>())
    return a.attr("astype")(a.dtype().attr("newbyteorder")("="));
  return py::array::ensure(a, py::array::c_style);
}

bool same_shape(const py::array& a, const py::array& b) {
  return a.ndim() == b.ndim() && std::equal(a.shape(), a.shape() + a.ndim(), b.shape());
}

// `out` if given (x itself is fine), else a new array like x.
py::array output_for(const py::array& x, const py::object& out) {
  if (out.is_none()) return py::array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + 4));
  if (!py::isinstance<py::array>(out))
    throw py::type_error("out must be a NumPy array, got " + std::string(py::str(py::type::of(out).attr("__name__"))));
  const py::array o = py::reinterpret_borrow<py::array>(out);
  if (!o.dtype().equal(x.dtype()))
    throw py::type_error("out must have x's dtype " + std::string(py::str(x.dtype())) + " in native byte order, got " +
                         std::string(py::str(o.dtype())));
  if (!same_shape(o, x)) throw py::value_error("out must have x's shape");
  if (!(o.flags() & py::array::c_style)) throw py::value_error("out must be C-contiguous");
  if (!o.writeable()) throw py::value_error("out must be writeable");
  return o;
}

// Whether `out` shares memory with `in` other than as the very same buffer. The kernels may
// write over their input exactly (they read each block of pixels before writing it), not a
// shifted view of it. Both arrays are C-contiguous, so their bytes are one range each.
bool overlaps_partly(const py::array& out, const py::array& in) {
  const char* o = static_cast<const char*>(out.data());
  const char* i = static_cast<const char*>(in.data());
  const auto n = out.nbytes();
  if (n == 0 || in.nbytes() == 0) return false;
  const bool intersect = o < i + in.nbytes() && i < o + n;
  return intersect && !(o == i && n == in.nbytes());
}

// Runs kernel(destination) into `out` directly, or, where out partly overlaps an input,
// into a temporary copied into out afterwards (as NumPy's ufuncs do).
template <typename Kernel>
py::array run_into(py::array out, const std::vector<py::array>& inputs, Kernel&& kernel) {
  const bool overlap = std::any_of(inputs.begin(), inputs.end(), [&](const py::array& in) { return overlaps_partly(out, in); });
  if (!overlap) {
    kernel(out);
    return out;
  }
  py::array temporary(out.dtype(), std::vector<py::ssize_t>(out.shape(), out.shape() + out.ndim()));
  kernel(temporary);
  std::memcpy(out.mutable_data(), temporary.data(), size_t(out.nbytes()));
  return out;
}

void pool_parallel_for(int64_t n_units, int64_t cost_per_unit, const RangeFn& fn) {
  ThreadPool::instance().parallel_for(n_units, cost_per_unit, fn);
}

py::array forward(const py::array& x_in, const py::handle& depth_radius, double bias, double alpha, double beta,
                  const py::handle& relu, const py::object& out) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  const py::array x = checked_input(x_in, "x");
  const int64_t C = x.shape(3), pixels = C ? x.size() / C : 0;
  return run_into(output_for(x, out), {x}, [&](py::array& y) {
    Status status;
    dispatch_dtype(dtype_name(x), [&](auto tag) {
      using T = decltype(tag);
      const T* xp = static_cast<const T*>(x.data());
      T* yp = static_cast<T*>(y.mutable_data());
      py::gil_scoped_release release;
      status = lrn_relu_forward_cpu<T>(p, xp, yp, pixels, C, pool_parallel_for);
    });
    raise_if_failed(status);
  });
}

py::array backward(const py::array& x_in, const py::array& dy_in, const py::handle& depth_radius, double bias,
                   double alpha, double beta, const py::handle& relu, const py::object& out) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  const py::array x = checked_input(x_in, "x"), dy = checked_input(dy_in, "dy");
  if (!x.dtype().equal(dy.dtype()))
    throw py::type_error("x and dy must have the same dtype, got " + dtype_name(x) + " and " + dtype_name(dy));
  if (!same_shape(x, dy)) throw py::value_error("x and dy must have the same shape");
  const int64_t C = x.shape(3), pixels = C ? x.size() / C : 0;
  return run_into(output_for(x, out), {x, dy}, [&](py::array& dx) {
    Status status;
    dispatch_dtype(dtype_name(x), [&](auto tag) {
      using T = decltype(tag);
      const T* xp = static_cast<const T*>(x.data());
      const T* dyp = static_cast<const T*>(dy.data());
      T* dxp = static_cast<T*>(dx.mutable_data());
      py::gil_scoped_release release;
      status = lrn_relu_backward_cpu<T>(p, xp, dyp, dxp, pixels, C, pool_parallel_for);
    });
    raise_if_failed(status);
  });
}

}  // namespace
}  // namespace alexops

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  m.doc() = "alexops core kernels (private: see alexops.numpy and alexops.cupy).";
  m.attr("FLOAT_DTYPE_NAMES") = alexops::kFloatDtypeNames;
  m.def("forward", &alexops::forward, py::arg("x"), py::arg("depth_radius") = 5,
        py::arg("bias") = 1.0, py::arg("alpha") = 1.0, py::arg("beta") = 0.5,
        py::arg("relu") = true, py::arg("out") = py::none(),
        "y = LRN(relu(x)) on the CPU; x is a 4-D NHWC NumPy array; out (optional) receives y.");
  m.def("backward", &alexops::backward, py::arg("x"), py::arg("dy"), py::arg("depth_radius") = 5,
        py::arg("bias") = 1.0, py::arg("alpha") = 1.0, py::arg("beta") = 0.5,
        py::arg("relu") = true, py::arg("out") = py::none(),
        "dx given dy for y = LRN(relu(x)), on the CPU; out (optional) receives dx.");
  m.def("get_num_threads", [] { return alexops::ThreadPool::instance().num_threads(); },
        "Threads the CPU kernels use (the calling one included).");
  m.def("set_num_threads", [](int n) { return alexops::ThreadPool::instance().set_num_threads(n); },
        py::arg("n"), "Use n threads (n < 1: the CPUs this process may run on); returns the count in effect.");
  alexops::register_cuda_functions(m);
}
