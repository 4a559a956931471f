// The CUDA ReLU + LRN + max-pool launchers for float (cuda_kernels.cuh).
#include "lrn_relu_max_pool/cuda_kernels.cuh"

namespace alexops {
ALEXOPS_INSTANTIATE_POOL_CUDA(float)
}  // namespace alexops
