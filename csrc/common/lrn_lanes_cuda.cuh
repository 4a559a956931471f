// The register kernels' lanes, shared by the CUDA ops that compute an LRN(+ReLU) over a
// pixel's channels in registers (lrn_relu's register kernel, lrn_relu_max_pool's): a group of
// G lanes (a power of two) owns a pixel, each lane a run of RUN channels, and the RMAX
// channels either side of a run come from the neighbour lanes by warp shuffles. Every window
// is a direct sum of its own terms. Everything is in an unnamed namespace: each .cu file gets
// its own copy.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "common/lrn_math_cuda.cuh"
#include "lrn_relu/cuda.h"  // CudaRegisterLayout: the layouts lrn_relu's cuda_register_layout picks

namespace alexops {
namespace {

constexpr unsigned kFullWarp = 0xffffffffu;

template <typename A>
struct RegisterParams {
  A bias, alpha, beta;
  bool relu;
  int channels, radius;
  int group_lanes, group_shift;  // G lanes per pixel, G = 1 << group_shift
};

// The RMAX channels on either side of a lane's run, from its neighbour lanes: ext[RMAX + j]
// is the lane's own value j, ext[RMAX - d] the left neighbour's last d-th, ext[RMAX + RUN +
// d - 1] the right neighbour's d-th. Zero past the pixel's first and last channels.
template <int RUN, int RMAX, typename A>
__device__ inline void fill_neighbours(A (&ext)[RUN + 2 * RMAX], int sub, int G) {
#pragma unroll
  for (int d = 1; d <= RMAX; ++d) {
    const A from_left = __shfl_up_sync(kFullWarp, ext[RMAX + RUN - d], 1, G);
    const A from_right = __shfl_down_sync(kFullWarp, ext[RMAX + d - 1], 1, G);
    ext[RMAX - d] = sub > 0 ? from_left : A(0);
    ext[RMAX + RUN + d - 1] = sub < G - 1 ? from_right : A(0);
  }
}

// sum over |d| <= radius of ext[RMAX + j + d] (terms past the radius weigh 0).
template <int RUN, int RMAX, typename A>
__device__ inline A window_at(const A (&ext)[RUN + 2 * RMAX], int j, int radius) {
  A sum = ext[RMAX + j];
#pragma unroll
  for (int d = 1; d <= RMAX; ++d) {
    if (d <= radius) sum += ext[RMAX + j - d] + ext[RMAX + j + d];
  }
  return sum;
}

// One lane's part of a pixel: r (its run of relu(x)) in, y out.
template <PowerKind kKind, int RUN, int RMAX, typename A>
__device__ inline void lane_forward(const RegisterParams<A>& p, int sub, const A (&r)[RUN], A (&y)[RUN]) {
  A squares[RUN + 2 * RMAX];
#pragma unroll
  for (int j = 0; j < RUN; ++j) squares[RMAX + j] = r[j] * r[j];
  fill_neighbours<RUN, RMAX>(squares, sub, p.group_lanes);
#pragma unroll
  for (int j = 0; j < RUN; ++j) {
    A power, inverse;
    norm_powers<kKind>(p.bias + p.alpha * window_at<RUN, RMAX>(squares, j, p.radius), p.beta, power, inverse);
    y[j] = r[j] * power;
  }
}

// One lane's part of the gradient: r and dy in, dx out (see LRN_MATH: g = dy N^-beta,
// t = g r / N, dL/dr = g - 2 alpha beta r window(t), then ReluGrad).
template <PowerKind kKind, int RUN, int RMAX, typename A>
__device__ inline void lane_backward(const RegisterParams<A>& p, int sub, const A (&r)[RUN], A (&dy_then_dx)[RUN]) {
  A squares[RUN + 2 * RMAX];
#pragma unroll
  for (int j = 0; j < RUN; ++j) squares[RMAX + j] = r[j] * r[j];
  fill_neighbours<RUN, RMAX>(squares, sub, p.group_lanes);
  A t[RUN + 2 * RMAX];
#pragma unroll
  for (int j = 0; j < RUN; ++j) {
    A power, inverse;
    norm_powers<kKind>(p.bias + p.alpha * window_at<RUN, RMAX>(squares, j, p.radius), p.beta, power, inverse);
    dy_then_dx[j] *= power;  // g
    t[RMAX + j] = dy_then_dx[j] * r[j] * inverse;
  }
  fill_neighbours<RUN, RMAX>(t, sub, p.group_lanes);
  const A two_alpha_beta = A(2) * p.alpha * p.beta;
#pragma unroll
  for (int j = 0; j < RUN; ++j) {
    const A d_r = dy_then_dx[j] - two_alpha_beta * r[j] * window_at<RUN, RMAX>(t, j, p.radius);
    dy_then_dx[j] = (p.relu && !(r[j] > A(0))) ? A(0) : d_r;  // ReluGrad: 0 at x <= 0
  }
}

template <typename T, int K, typename A>
__device__ inline void load_run(const T* row, bool active, A (&out)[K * Packet<T>::kCount]) {
#pragma unroll
  for (int k = 0; k < K; ++k) {
    if (active) Packet<T>::load(row + k * Packet<T>::kCount, out + k * Packet<T>::kCount);
    else
#pragma unroll
      for (int i = 0; i < Packet<T>::kCount; ++i) out[k * Packet<T>::kCount + i] = A(0);
  }
}

template <typename T, int K, typename A>
__device__ inline void store_run(T* row, const A (&in)[K * Packet<T>::kCount]) {
#pragma unroll
  for (int k = 0; k < K; ++k) Packet<T>::store(row + k * Packet<T>::kCount, in + k * Packet<T>::kCount);
}

// The lanes' layout (cuda.h's cuda_register_layout), or false where it does not apply: also
// for data that is not 16-byte aligned.
bool register_layout(int64_t channels, int64_t radius, int element_bytes, std::initializer_list<const void*> pointers,
                     CudaRegisterLayout* layout) {
  for (const void* pointer : pointers)
    if (reinterpret_cast<uintptr_t>(pointer) % 16 != 0) return false;
  return cuda_register_layout(channels, radius, element_bytes, layout);
}

// Calls fn(std::integral_constant<int, K>, std::integral_constant<int, RMAX>) for the layout
// (cuda_register_layout keeps K * V within kCudaMaxRunElements: longer runs are not instantiated).
template <typename T, typename Fn>
void with_register_shape(const CudaRegisterLayout& layout, Fn&& fn) {
  const auto with_radius = [&](auto k) {
    if constexpr (decltype(k)::value * Packet<T>::kCount <= kCudaMaxRunElements) {
      if (layout.max_radius == 4) fn(k, std::integral_constant<int, 4>{});
      else fn(k, std::integral_constant<int, 8>{});
    }
  };
  switch (layout.vectors_per_lane) {
    case 1: return with_radius(std::integral_constant<int, 1>{});
    case 2: return with_radius(std::integral_constant<int, 2>{});
    case 3: return with_radius(std::integral_constant<int, 3>{});
    default: return with_radius(std::integral_constant<int, 4>{});
  }
}

}  // namespace
}  // namespace alexops
