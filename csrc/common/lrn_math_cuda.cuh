// Device-side helpers shared by the CUDA LRN kernels (lrn_relu, lrn_relu_max_pool): loads
// and stores that convert between a storage type and its arithmetic type, and N^(-beta).
// Everything is in an unnamed namespace: each .cu file gets its own copy.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/numeric.h"
#include "common/params.h"

namespace alexops {
namespace {

template <typename T> struct DeviceIO;
template <> struct DeviceIO<float> {
  __device__ static float load(const float* p) { return *p; }
  __device__ static void store(float v, float* p) { *p = v; }
};
template <> struct DeviceIO<double> {
  __device__ static double load(const double* p) { return *p; }
  __device__ static void store(double v, double* p) { *p = v; }
};
template <> struct DeviceIO<half_bits> {
  __device__ static float load(const half_bits* p) { return __half2float(*reinterpret_cast<const __half*>(p)); }
  __device__ static void store(float v, half_bits* p) { *reinterpret_cast<__half*>(p) = __float2half_rn(v); }
};
template <> struct DeviceIO<bfloat16_bits> {
  __device__ static float load(const bfloat16_bits* p) {
    return __bfloat162float(*reinterpret_cast<const __nv_bfloat16*>(p));
  }
  __device__ static void store(float v, bfloat16_bits* p) {
    *reinterpret_cast<__nv_bfloat16*>(p) = __float2bfloat16_rn(v);
  }
};

__device__ inline float reciprocal_sqrt(float v) { return rsqrtf(v); }
__device__ inline double reciprocal_sqrt(double v) { return rsqrt(v); }

template <PowerKind kKind, typename A>
__device__ inline A negative_power(A n, A beta) {
  if constexpr (kKind == PowerKind::kHalf) return reciprocal_sqrt(n);
  else if constexpr (kKind == PowerKind::kThreeQuarters) {
    const A q = reciprocal_sqrt(n);  // n^-1/2
    return q * sqrt(q);              // n^-1/2 * n^-1/4
  } else if constexpr (kKind == PowerKind::kOne) return A(1) / n;
  else return pow(n, -beta);
}

}  // namespace
}  // namespace alexops
