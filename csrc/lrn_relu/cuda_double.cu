// The CUDA LRN launchers for double (cuda_kernels.cuh).
#include "lrn_relu/cuda_kernels.cuh"

namespace alexops {
ALEXOPS_INSTANTIATE_CUDA(double)
}  // namespace alexops
