// The CUDA ReLU + LRN + max-pool launchers for bfloat16_bits (cuda_kernels.cuh).
#include "lrn_relu_max_pool/cuda_kernels.cuh"

namespace alexops {
ALEXOPS_INSTANTIATE_POOL_CUDA(bfloat16_bits)
}  // namespace alexops
