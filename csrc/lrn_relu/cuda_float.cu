// The CUDA LRN launchers for float (cuda_kernels.cuh).
#include "lrn_relu/cuda_kernels.cuh"

namespace alexops {
ALEXOPS_INSTANTIATE_CUDA(float)
}  // namespace alexops
