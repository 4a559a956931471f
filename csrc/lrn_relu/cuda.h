// CUDA LRN(+ReLU) launchers, forward and backward, NHWC data seen as [n_pixels, channels].
// Framework-neutral: device pointers, sizes, parameters and the caller's stream. This header
// needs no CUDA include, so host-only translation units (the pybind11 module, the TF GPU
// OpKernels) can use it.
#pragma once

#include <cstdint>
#include <string>

#include "common/numeric.h"
#include "common/params.h"
#include "common/status.h"

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace alexops {

// Which kernel runs (see cuda.cu): kAuto picks the register kernel where it applies and the
// tiled one elsewhere; the environment variable ALEXOPS_CUDA_KERNEL=registers|tiled|auto
// overrides kAuto (for TensorFlow, whose op has no such argument). Forcing kRegisters where
// it does not apply is an InvalidArgument.
enum class CudaKernel { kAuto, kRegisters, kTiled };

// "auto", "registers" or "tiled"; false for anything else.
bool parse_cuda_kernel(const std::string& name, CudaKernel* kernel);

// ALEXOPS_CUDA_KERNEL's choice, read once: kAuto where it is unset or not a kernel's name. It
// also picks lrn_relu_max_pool's kernel ("tiled": its version 1).
CudaKernel kernel_from_environment();

// How the register kernel lays out a pixel: G = 1 << group_shift lanes, each with a run of
// vectors_per_lane 16-byte vectors; windows reach at most max_radius (4 or 8) channels.
struct CudaRegisterLayout {
  int vectors_per_lane = 0, group_shift = 0, max_radius = 0;
};
// A lane's run holds at most this many elements: the backward's arrays for a longer run of
// 16-bit values spill at the 128 registers that two blocks of 256 threads allow.
constexpr int kCudaMaxRunElements = 24;
constexpr int kCudaMaxVectorsPerLane = 4;
constexpr const char* kCudaRegisterKernelScope =
    "channels a multiple of the 16-byte vector, split evenly over 1 to 32 lanes of at most 4 vectors and 24 "
    "elements each, depth_radius <= 8, 16-byte aligned data";

// The layout for these sizes (element_bytes: 2, 4 or 8), or false where the register kernel
// does not apply (the tiled kernel takes those): the most lanes per pixel that split its
// vectors evenly with runs at least as long as the window's reach.
bool cuda_register_layout(int64_t channels, int64_t depth_radius, int element_bytes, CudaRegisterLayout* layout);

// Each returns Ok, InvalidArgument (parameters, or a size the kernel cannot take) or
// Internal (a CUDA error). Launches are asynchronous on `stream`; y may equal x, dx may
// equal dy or x (and none may overlap another otherwise).
template <typename T>
Status lrn_relu_forward_cuda(const LrnParams& params, const T* x, T* y, int64_t n_pixels,
                             int64_t channels, cudaStream_t stream, CudaKernel kernel = CudaKernel::kAuto);

template <typename T>
Status lrn_relu_backward_cuda(const LrnParams& params, const T* x, const T* dy, T* dx,
                              int64_t n_pixels, int64_t channels, cudaStream_t stream,
                              CudaKernel kernel = CudaKernel::kAuto);

}  // namespace alexops
