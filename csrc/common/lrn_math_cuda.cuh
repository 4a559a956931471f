// Device-side helpers shared by the CUDA LRN kernels: 16-byte packets that convert between a
// storage type and its arithmetic type, scalar loads and stores, and N^(-beta) with 1/N.
// Everything is in an unnamed namespace: each .cu file gets its own copy.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "common/numeric.h"
#include "common/params.h"

namespace alexops {
namespace {

// One element: load converts to the arithmetic type (float for the 16-bit types), store
// rounds once to nearest even.
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

// 16 bytes of T (kCount elements), moved with one 16-byte load or store: the widest access
// a thread has. The address must be 16-byte aligned.
template <typename T> struct Packet;
template <> struct Packet<float> {
  static constexpr int kCount = 4;
  __device__ static void load(const float* p, float* out) {
    const float4 v = *reinterpret_cast<const float4*>(p);
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
  }
  __device__ static void store(float* p, const float* in) {
    *reinterpret_cast<float4*>(p) = make_float4(in[0], in[1], in[2], in[3]);
  }
};
template <> struct Packet<double> {
  static constexpr int kCount = 2;
  __device__ static void load(const double* p, double* out) {
    const double2 v = *reinterpret_cast<const double2*>(p);
    out[0] = v.x, out[1] = v.y;
  }
  __device__ static void store(double* p, const double* in) { *reinterpret_cast<double2*>(p) = make_double2(in[0], in[1]); }
};
// The two 16-bit types: 8 elements, as four pairs.
template <typename Pair, typename Storage>
struct PacketOf16Bit {
  static constexpr int kCount = 8;
  __device__ static void load(const Storage* p, float* out) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const Pair* pairs = reinterpret_cast<const Pair*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = to_float2(pairs[i]);
      out[2 * i] = f.x, out[2 * i + 1] = f.y;
    }
  }
  __device__ static void store(Storage* p, const float* in) {
    uint4 raw;
    Pair* pairs = reinterpret_cast<Pair*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) pairs[i] = from_floats(in[2 * i], in[2 * i + 1]);
    *reinterpret_cast<uint4*>(p) = raw;
  }
  __device__ static float2 to_float2(__half2 v) { return __half22float2(v); }
  __device__ static float2 to_float2(__nv_bfloat162 v) { return __bfloat1622float2(v); }
  __device__ static Pair from_floats(float a, float b) {
    if constexpr (std::is_same_v<Pair, __half2>) return __floats2half2_rn(a, b);
    else return __floats2bfloat162_rn(a, b);
  }
};
template <> struct Packet<half_bits> : PacketOf16Bit<__half2, half_bits> {};
template <> struct Packet<bfloat16_bits> : PacketOf16Bit<__nv_bfloat162, bfloat16_bits> {};

__device__ inline float reciprocal_sqrt(float v) { return rsqrtf(v); }
__device__ inline double reciprocal_sqrt(double v) { return rsqrt(v); }
// The square root of q = N^(-1/2) for N^(-3/4). In float, the hardware's approximate square
// root (one MUFU instruction, an ulp or so, like rsqrtf beside it) rather than the correctly
// rounded sqrtf's instruction sequence: the 16-bit kernels at C = 64 are short of instruction
// issue, and it made their forward 13% faster on an H100 (docs/gpu-tuning.md). q is never
// subnormal (that would need N > 2^252), and inf, 0 and NaN map to themselves as in sqrtf.
__device__ inline float root_of_reciprocal_sqrt(float q) {
#if defined(__CUDA_ARCH__)
  float root;
  asm("sqrt.approx.f32 %0, %1;" : "=f"(root) : "f"(q));
  return root;
#else  // compiled for the host: scripts/cuda_on_cpu, which runs the kernels on the CPU
  return sqrtf(q);
#endif
}
__device__ inline double root_of_reciprocal_sqrt(double q) { return sqrt(q); }

// N^(-beta) and 1/N. N^(-3/4) is q * sqrt(q), q = N^(-1/2): no intermediate smaller than
// the result (through 1/N it would underflow for N > 2^126 while N^(-3/4) is ~1e-29), and
// IEEE's special values (0 -> inf, inf -> 0, negative -> NaN) come out as they should.
template <PowerKind kKind, typename A>
__device__ inline void norm_powers(A n, A beta, A& power, A& inverse) {
  if constexpr (kKind == PowerKind::kHalf || kKind == PowerKind::kThreeQuarters) {
    const A q = reciprocal_sqrt(n);
    inverse = q * q;
    if constexpr (kKind == PowerKind::kHalf) power = q;
    else power = q * root_of_reciprocal_sqrt(q);
  } else if constexpr (kKind == PowerKind::kOne) {
    inverse = A(1) / n;
    power = inverse;
  } else {
    inverse = A(1) / n;
    // double's pow is a large out-of-line routine that spills where a kernel calls it more
    // than once; exp(-beta log N) is within ~|beta log N| ulp of it, far inside double's
    // margin, with the same special values. float keeps powf (expf would lose digits).
    if constexpr (std::is_same_v<A, double>) power = exp(-beta * log(n));
    else power = pow(n, -beta);
  }
}

// Visits the (pixel, channel) elements of a tile a thread owns, in order, without a division
// per element: threadIdx.x's first element and the block's stride are split once.
struct TileWalk {
  int first_pixel, first_channel, pixel_step, channel_step;
  __device__ explicit TileWalk(int channels) {
    first_pixel = threadIdx.x / channels;
    first_channel = threadIdx.x - first_pixel * channels;
    pixel_step = blockDim.x / channels;
    channel_step = blockDim.x - pixel_step * channels;
  }
  template <typename Fn>
  __device__ void each(int pixels, int channels, Fn&& fn) const {
    for (int pix = first_pixel, c = first_channel; pix < pixels;) {
      fn(pix, c);
      c += channel_step;
      pix += pixel_step;
      if (c >= channels) c -= channels, ++pix;
    }
  }
};

}  // namespace
}  // namespace alexops
