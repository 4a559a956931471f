// The CUDA LRN launchers for half_bits (cuda_kernels.cuh).
#include "lrn_relu/cuda_kernels.cuh"

namespace alexops {
ALEXOPS_INSTANTIATE_CUDA(half_bits)
}  // namespace alexops
