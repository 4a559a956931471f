// The CUDA launchers' non-template parts: the kernel choice by name and by environment.
// The kernels themselves are in cuda_kernels.cuh, instantiated per type in cuda_<type>.cu.
#include <cstdlib>
#include <string>

#include "lrn_relu/cuda.h"

namespace alexops {

bool parse_cuda_kernel(const std::string& name, CudaKernel* kernel) {
  if (name == "auto") *kernel = CudaKernel::kAuto;
  else if (name == "registers") *kernel = CudaKernel::kRegisters;
  else if (name == "tiled") *kernel = CudaKernel::kTiled;
  else return false;
  return true;
}

bool cuda_register_layout(int64_t channels, int64_t depth_radius, int element_bytes, CudaRegisterLayout* layout) {
  const int64_t vector_elements = 16 / element_bytes;
  const int64_t radius = effective_radius(depth_radius, channels);
  if (channels <= 0 || channels % vector_elements != 0 || radius > 8) return false;
  const int64_t vectors = channels / vector_elements;
  const int max_radius = radius <= 4 ? 4 : 8;
  for (int shift = 5; shift >= 0; --shift) {
    const int64_t lanes = int64_t(1) << shift;
    if (vectors % lanes != 0) continue;
    const int64_t per_lane = vectors / lanes;
    if (per_lane > kCudaMaxVectorsPerLane || per_lane * vector_elements > kCudaMaxRunElements)
      return false;  // fewer lanes only make runs longer
    if (per_lane * vector_elements < max_radius) continue;
    *layout = CudaRegisterLayout{int(per_lane), shift, max_radius};
    return true;
  }
  return false;
}

CudaKernel kernel_from_environment() {
  static const CudaKernel chosen = [] {
    CudaKernel kernel = CudaKernel::kAuto;
    if (const char* name = std::getenv("ALEXOPS_CUDA_KERNEL")) parse_cuda_kernel(name, &kernel);
    return kernel;
  }();
  return chosen;
}

}  // namespace alexops
