// The CUDA LRN launchers for bfloat16_bits (cuda_kernels.cuh).
#include "lrn_relu/cuda_kernels.cuh"

namespace alexops {
ALEXOPS_INSTANTIATE_CUDA(bfloat16_bits)
}  // namespace alexops
