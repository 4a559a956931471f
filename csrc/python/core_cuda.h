// The CUDA half of alexops._core: raw device pointers in (from CuPy arrays, checked by
// alexops/cupy.py), the core's CUDA launchers called on the caller's stream.
#pragma once

#include <pybind11/pybind11.h>

namespace alexops {

// Adds cuda_available(), and when built with CUDA forward_cuda/backward_cuda, to the module.
void register_cuda_functions(pybind11::module_& m);

}  // namespace alexops
