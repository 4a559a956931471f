// What the CUDA launchers of both ops share: the grid's cap, CUDA errors as a Status, and
// opting a kernel into more than the default 48 KiB of dynamic shared memory. Host code only;
// in an unnamed namespace, as the kernels' headers are: each .cu file gets its own copy.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "common/status.h"

// scripts/cuda_on_cpu/run.sh builds with a cap of a few blocks, so that every kernel's loop
// over the units past its grid runs there (on a card it runs only past 2^20 units).
#ifndef ALEXOPS_CUDA_MAX_GRID_BLOCKS
#define ALEXOPS_CUDA_MAX_GRID_BLOCKS (int64_t(1) << 20)
#endif

namespace alexops {
namespace {

// A cap on the grid's size, not a residency target: blocks loop over the work past it.
constexpr int64_t kMaxGridBlocks = ALEXOPS_CUDA_MAX_GRID_BLOCKS;

Status cuda_error(cudaError_t e, const char* what) {
  return Status::Internal(std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

Status last_launch_status(const char* what) {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? Status::Ok() : cuda_error(e, what);
}

// Opts `kernel` into `bytes` of dynamic shared memory where that is over 48 KiB. Where the
// GPU has less, an InvalidArgument: needing_it() (what needs the bytes, as a sentence's
// subject; made only then) + " needs N bytes of shared memory; this GPU allows M".
template <typename Kernel, typename Subject>
Status opt_in_shared_memory(Kernel kernel, int64_t bytes, Subject needing_it) {
  if (bytes <= 48 * 1024) return Status::Ok();
  int device = 0, optin = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return cuda_error(e, "querying shared memory size");
  if (bytes > optin)
    return Status::InvalidArgument(needing_it() + " needs " + std::to_string(bytes) +
                                   " bytes of shared memory; this GPU allows " + std::to_string(optin));
  e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  return e == cudaSuccess ? Status::Ok() : cuda_error(e, "raising the shared memory limit");
}

}  // namespace
}  // namespace alexops
