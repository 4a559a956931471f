// alexops._core: the NumPy door to the CPU kernels (and, when built with CUDA, the raw-pointer
// door that alexops.cupy uses). Validation and dtype dispatch only; no kernel math here.
// Private: users call alexops.numpy, which documents these same arguments.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "common/cpu_isa.h"
#include "common/thread_pool.h"
#include "lrn_relu/cpu.h"
#include "lrn_relu_max_pool/cpu.h"
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

// `out` if given, else a new array of x's dtype and this shape (x's by default).
py::array output_for(const py::array& x, const py::object& out, std::vector<py::ssize_t> shape = {}) {
  if (shape.empty()) shape.assign(x.shape(), x.shape() + 4);
  if (out.is_none()) return py::array(x.dtype(), shape);
  if (!py::isinstance<py::array>(out))
    throw py::type_error("out must be a NumPy array, got " + std::string(py::str(py::type::of(out).attr("__name__"))));
  const py::array o = py::reinterpret_borrow<py::array>(out);
  if (!o.dtype().equal(x.dtype()))
    throw py::type_error("out must have x's dtype " + std::string(py::str(x.dtype())) + " in native byte order, got " +
                         std::string(py::str(o.dtype())));
  if (o.ndim() != 4 || !std::equal(shape.begin(), shape.end(), o.shape()))
    throw py::value_error("out must have the result's shape");
  if (!(o.flags() & py::array::c_style)) throw py::value_error("out must be C-contiguous");
  if (!o.writeable()) throw py::value_error("out must be writeable");
  return o;
}

// Whether the kernel cannot write into `out` while reading `in`: they share memory, other than
// as the very same buffer where the kernel allows that (lrn_relu reads each block of pixels
// before writing it; the pooling op reads rows other ranges write). Both arrays are
// C-contiguous, so their bytes are one range each.
bool conflicts(const py::array& out, const py::array& in, bool exact_alias_allowed) {
  const char* o = static_cast<const char*>(out.data());
  const char* i = static_cast<const char*>(in.data());
  const auto n = out.nbytes();
  if (n == 0 || in.nbytes() == 0) return false;
  const bool intersect = o < i + in.nbytes() && i < o + n;
  return intersect && !(exact_alias_allowed && o == i && n == in.nbytes());
}

// Runs kernel(destination) into `out` directly, or, where out conflicts with an input, into a
// temporary copied into out afterwards (as NumPy's ufuncs do).
template <typename Kernel>
py::array run_into(py::array out, const std::vector<py::array>& inputs, Kernel&& kernel,
                   bool exact_alias_allowed = true) {
  const bool overlap = std::any_of(inputs.begin(), inputs.end(),
                                   [&](const py::array& in) { return conflicts(out, in, exact_alias_allowed); });
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

PoolParams make_pool_params(const std::array<int64_t, 2>& ksize, const std::array<int64_t, 2>& strides,
                            const std::string& padding) {
  if (padding != "VALID" && padding != "SAME")
    throw py::value_error("padding must be 'VALID' or 'SAME', got '" + padding + "'");
  return PoolParams{ksize[0], ksize[1], strides[0], strides[1], padding == "SAME"};
}

PoolGeometry checked_geometry(const py::array& x, const PoolParams& pool) {
  PoolGeometry g;
  raise_if_failed(pool_geometry(x.shape(0), x.shape(1), x.shape(2), x.shape(3), pool, &g));
  return g;
}

py::array forward_max_pool(const py::array& x_in, const py::handle& depth_radius, double bias, double alpha,
                           double beta, const py::handle& relu, const std::array<int64_t, 2>& ksize,
                           const std::array<int64_t, 2>& strides, const std::string& padding, const py::object& out) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  const py::array x = checked_input(x_in, "x");
  const PoolGeometry g = checked_geometry(x, make_pool_params(ksize, strides, padding));
  const std::vector<py::ssize_t> shape{g.batch, g.out_rows, g.out_cols, g.channels};
  return run_into(output_for(x, out, shape), {x}, [&](py::array& pooled) {
    Status status;
    dispatch_dtype(dtype_name(x), [&](auto tag) {
      using T = decltype(tag);
      const T* xp = static_cast<const T*>(x.data());
      T* pp = static_cast<T*>(pooled.mutable_data());
      py::gil_scoped_release release;
      status = lrn_relu_max_pool_forward_cpu<T>(p, g, xp, pp, pool_parallel_for);
    });
    raise_if_failed(status);
  }, /*exact_alias_allowed=*/false);
}

py::array backward_max_pool(const py::array& x_in, const py::array& dpooled_in, const py::handle& depth_radius,
                            double bias, double alpha, double beta, const py::handle& relu,
                            const std::array<int64_t, 2>& ksize, const std::array<int64_t, 2>& strides,
                            const std::string& padding, const py::object& out) {
  const LrnParams p = make_params(depth_radius, bias, alpha, beta, relu);
  const py::array x = checked_input(x_in, "x"), dpooled = checked_input(dpooled_in, "dpooled");
  if (!x.dtype().equal(dpooled.dtype()))
    throw py::type_error("x and dpooled must have the same dtype, got " + dtype_name(x) + " and " +
                         dtype_name(dpooled));
  const PoolGeometry g = checked_geometry(x, make_pool_params(ksize, strides, padding));
  const std::vector<py::ssize_t> pooled_shape{g.batch, g.out_rows, g.out_cols, g.channels};
  if (!std::equal(pooled_shape.begin(), pooled_shape.end(), dpooled.shape()))
    throw py::value_error("dpooled must have the pooled output's shape [" + std::to_string(g.batch) + ", " +
                          std::to_string(g.out_rows) + ", " + std::to_string(g.out_cols) + ", " +
                          std::to_string(g.channels) + "]");
  return run_into(output_for(x, out), {x, dpooled}, [&](py::array& dx) {
    Status status;
    dispatch_dtype(dtype_name(x), [&](auto tag) {
      using T = decltype(tag);
      const T* xp = static_cast<const T*>(x.data());
      const T* dp = static_cast<const T*>(dpooled.data());
      T* dxp = static_cast<T*>(dx.mutable_data());
      py::gil_scoped_release release;
      status = lrn_relu_max_pool_backward_cpu<T>(p, g, xp, dp, dxp, pool_parallel_for);
    });
    raise_if_failed(status);
  }, /*exact_alias_allowed=*/false);
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
  m.def("forward_max_pool", &alexops::forward_max_pool, py::arg("x"), py::arg("depth_radius") = 5,
        py::arg("bias") = 1.0, py::arg("alpha") = 1.0, py::arg("beta") = 0.5, py::arg("relu") = true,
        py::arg("ksize") = std::array<int64_t, 2>{3, 3}, py::arg("strides") = std::array<int64_t, 2>{2, 2},
        py::arg("padding") = "VALID", py::arg("out") = py::none(),
        "pooled = max_pool2d(LRN(relu(x))) on the CPU; ksize and strides are (rows, cols).");
  m.def("backward_max_pool", &alexops::backward_max_pool, py::arg("x"), py::arg("dpooled"),
        py::arg("depth_radius") = 5, py::arg("bias") = 1.0, py::arg("alpha") = 1.0, py::arg("beta") = 0.5,
        py::arg("relu") = true, py::arg("ksize") = std::array<int64_t, 2>{3, 3},
        py::arg("strides") = std::array<int64_t, 2>{2, 2}, py::arg("padding") = "VALID", py::arg("out") = py::none(),
        "dx given dpooled for pooled = max_pool2d(LRN(relu(x))), on the CPU.");
  m.def("cpu_isa", [] { return std::string(alexops::cpu_isa_name(alexops::cpu_isa_in_use())); },
        "The instruction-set level the CPU kernels run at: baseline, avx2, avx512 or avx512bf16 "
        "(ALEXOPS_CPU_ISA may lower it).");
  m.def("cpu_isas_built", &alexops::cpu_isas_built, "The instruction-set levels built into this library.");
  m.def("get_num_threads", [] { return alexops::ThreadPool::instance().num_threads(); },
        "Threads the CPU kernels use (the calling one included).");
  m.attr("MAX_THREADS") = int(alexops::ThreadPool::kMaxThreads);
  m.def("set_num_threads", [](int n) { return alexops::ThreadPool::instance().set_num_threads(n); },
        py::arg("n"), "Use n threads (n < 1: the CPUs this process may run on); returns the count in effect.");
  alexops::register_cuda_functions(m);
}
