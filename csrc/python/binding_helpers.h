// Shared by the NumPy and CUDA halves of alexops._core: argument checks, dtype dispatch, and
// the core's Status as a Python exception.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <new>
#include <string>

#include "common/numeric.h"
#include "common/params.h"
#include "common/status.h"

namespace alexops {

namespace py = pybind11;

// The dtypes the kernels take, by NumPy/CuPy name: the one list on the C++ side.
inline constexpr const char* kFloatDtypeNames = "float16, bfloat16, float32 or float64";

// Calls fn(T{}) with the core's storage type T for a NumPy/CuPy dtype name; TypeError naming
// `what` for any other dtype.
template <typename Fn>
void dispatch_dtype(const std::string& dtype, Fn&& fn, const char* what = "x") {
  if (dtype == "float32") fn(float{});
  else if (dtype == "float64") fn(double{});
  else if (dtype == "float16") fn(half_bits{});
  else if (dtype == "bfloat16") fn(bfloat16_bits{});
  else throw py::type_error(std::string(what) + " must be " + kFloatDtypeNames + ", got " + dtype);
}

inline bool is_float_dtype(const std::string& dtype) {
  bool known = true;
  try {
    dispatch_dtype(dtype, [](auto) {});
  } catch (const py::type_error&) {
    known = false;
  }
  return known;
}

// The parameters of one call. depth_radius must be an int (not a bool) and relu a bool, as
// in the TensorFlow door: TypeError otherwise; ValueError for a negative radius. bias, alpha
// and beta are rounded to float32, as TensorFlow's attributes are.
inline LrnParams make_params(const py::handle& depth_radius, double bias, double alpha, double beta,
                             const py::handle& relu) {
  const py::object numpy_bool = py::module_::import("numpy").attr("bool_");
  const auto is_bool = [&](const py::handle& h) { return PyBool_Check(h.ptr()) || py::isinstance(h, numpy_bool); };
  const auto repr = [](const py::handle& h) { return std::string(py::repr(h)); };
  // Any integer (NumPy's too), but not a bool, which Python counts as one.
  if (is_bool(depth_radius) || !PyIndex_Check(depth_radius.ptr()))
    throw py::type_error("depth_radius must be an int, got " + repr(depth_radius));
  if (!is_bool(relu)) throw py::type_error("relu must be a bool, got " + repr(relu));
  const py::int_ radius = py::reinterpret_steal<py::int_>(PyNumber_Index(depth_radius.ptr()));
  if (!radius) throw py::error_already_set();
  LrnParams p{radius.cast<int64_t>(), float(bias), float(alpha), float(beta), relu.cast<bool>()};
  const Status status = validate(p, 0, 0);
  if (!status.ok()) throw py::value_error(status.message());
  return p;
}

// Raises the Python exception for a failed Status (with the GIL held): ValueError,
// MemoryError or RuntimeError.
inline void raise_if_failed(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk: return;
    case Status::Code::kInvalidArgument: throw py::value_error(status.message());
    case Status::Code::kResourceExhausted:
      PyErr_SetString(PyExc_MemoryError, status.message().c_str());
      throw py::error_already_set();
    case Status::Code::kInternal: break;
  }
  throw std::runtime_error(status.message());
}

}  // namespace alexops
