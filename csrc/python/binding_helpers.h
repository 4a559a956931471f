// Shared by the NumPy and CUDA halves of alexops._core: parameter checks and dtype dispatch.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "lrn_relu/numeric.h"
#include "lrn_relu/params.h"

namespace alexops {

// The parameters of one call, or ValueError naming the bad argument.
inline LrnParams make_params(int64_t depth_radius, double bias, double alpha, double beta, bool relu) {
  LrnParams p{depth_radius, bias, alpha, beta, relu};
  const std::string problem = validate(p, 0, 0);
  if (!problem.empty()) throw pybind11::value_error(problem);
  return p;
}

// Calls fn(T{}) with the core's storage type T for a NumPy/CuPy dtype name.
template <typename Fn>
void dispatch_dtype(const std::string& dtype, Fn&& fn) {
  if (dtype == "float32") fn(float{});
  else if (dtype == "float64") fn(double{});
  else if (dtype == "float16") fn(half_bits{});
  else if (dtype == "bfloat16") fn(bfloat16_bits{});
  else throw pybind11::value_error("dtype must be float16, bfloat16, float32 or float64, got " + dtype);
}

}  // namespace alexops
