"""A small forward + backward of every dtype on both CUDA kernels, for compute-sanitizer
(memcheck, racecheck, initcheck, synccheck) in scripts/gpu_check.sh. Raw _core calls on CuPy
buffers, so that only our kernels are checked. With ALEXOPS_NO_MEMPOOL=1, CuPy's memory pool
is off: every buffer is its own allocation, and an access past one is seen."""
import os

# lrn_relu_max_pool's version 2 backward in bands of 2 output rows (AlexNet's shapes take 2 or
# 4 by their batch; shapes this small get bands of one), so that a band's rings are checked
# across bands.
os.environ.setdefault("ALEXOPS_CUDA_POOL_BAND_ROWS", "2")

import cupy as cp
import numpy as np

from alexops import _core

if os.environ.get("ALEXOPS_NO_MEMPOOL"):
    cp.cuda.set_allocator(None)

# (shape, depth_radius, kernels): AlexNet-like shapes on both kernels (a partial last tile
# and a partial last warp), block scans (R > 8), more than 48 KiB of shared memory.
CASES = [
    ((2, 3, 5, 64), 4, ("registers", "tiled")),
    ((1, 3, 3, 192), 4, ("registers", "tiled")),
    ((1, 2, 3, 13), 9, ("tiled",)),
    ((1, 1, 2, 3000), 2, ("tiled",)),
]
STORAGE = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": np.uint16}

rng = np.random.default_rng(0)
stream = cp.cuda.get_current_stream().ptr
runs = 0
for shape, radius, kernels in CASES:
    for name, storage in STORAGE.items():
        values = rng.standard_normal(shape).astype(np.float32)
        host = (values.view(np.uint32) >> 16).astype(np.uint16) if name == "bfloat16" else values.astype(storage)
        pixels, channels = int(np.prod(shape[:-1])), shape[-1]
        common = dict(depth_radius=radius, bias=1.0, alpha=0.001 / 9, beta=0.75, relu=True, stream=stream)
        for kernel in kernels:
            x, dy = cp.asarray(host), cp.asarray(host[::-1].copy())
            y, dx = cp.empty_like(x), cp.empty_like(x)
            _core.forward_cuda(x.data.ptr, y.data.ptr, pixels, channels, name, kernel=kernel, **common)
            _core.backward_cuda(x.data.ptr, dy.data.ptr, dx.data.ptr, pixels, channels, name, kernel=kernel, **common)
            _core.backward_cuda(x.data.ptr, dy.data.ptr, dy.data.ptr, pixels, channels, name, kernel=kernel,
                                **common)  # dx over dy
            _core.forward_cuda(x.data.ptr, x.data.ptr, pixels, channels, name, kernel=kernel, **common)  # in place
            runs += 1
# lrn_relu_max_pool: AlexNet's block (5 output rows: bands of 2, 2 and 1), SAME padding with a
# partial window, R > 8.
for shape, radius, padding in (((2, 11, 9, 64), 4, "VALID"), ((1, 6, 7, 13), 9, "SAME")):
    for name, storage in STORAGE.items():
        values = rng.standard_normal(shape).astype(np.float32)
        host = (values.view(np.uint32) >> 16).astype(np.uint16) if name == "bfloat16" else values.astype(storage)
        pooled_shape = tuple(_core.pooled_shape(shape, (3, 3), (2, 2), padding))
        x = cp.asarray(host)
        pooled = cp.empty(pooled_shape, x.dtype)
        dpooled = cp.asarray(host[:, :pooled_shape[1], :pooled_shape[2]].copy())
        dx = cp.empty_like(x)
        pool = dict(depth_radius=radius, bias=1.0, alpha=0.001 / 9, beta=0.75, relu=True, ksize=(3, 3), strides=(2, 2),
                    padding=padding, stream=stream)
        _core.forward_max_pool_cuda(x.data.ptr, pooled.data.ptr, shape, name, **pool)
        _core.backward_max_pool_cuda(x.data.ptr, dpooled.data.ptr, dx.data.ptr, shape, name, **pool)
        runs += 1
cp.cuda.runtime.deviceSynchronize()
print(f"gpu_smoke: forward and backward ran for {runs} cases (shape x dtype x kernel)")
