"""A small forward + backward of every dtype and kernel path, for compute-sanitizer
(memcheck and racecheck) in scripts/gpu_check.sh. Raw _core calls on CuPy buffers, so no
CuPy kernel is compiled or checked, only ours."""
import numpy as np
import cupy as cp

from alexops import _core

CASES = [  # (shape, depth_radius): AlexNet-like; block scans (R > 8); > 48 KiB shared memory
    ((2, 3, 5, 64), 4),
    ((1, 2, 3, 13), 9),
    ((1, 1, 2, 3000), 2),
]
DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": np.uint16}

rng = np.random.default_rng(0)
stream = cp.cuda.get_current_stream().ptr
for shape, radius in CASES:
    for name, storage in DTYPES.items():
        values = rng.standard_normal(shape).astype(np.float32)
        if name == "bfloat16":
            host = (values.view(np.uint32) >> 16).astype(np.uint16)
        else:
            host = values.astype(storage)
        x, dy = cp.asarray(host), cp.asarray(host[::-1].copy())
        y, dx = cp.empty_like(x), cp.empty_like(x)
        channels = shape[-1]
        pixels = x.size // channels
        common = dict(depth_radius=radius, bias=1.0, alpha=0.001 / 9, beta=0.75, relu=True, stream=stream)
        _core.forward_cuda(x.data.ptr, y.data.ptr, pixels, channels, name, **common)
        _core.backward_cuda(x.data.ptr, dy.data.ptr, dx.data.ptr, pixels, channels, name, **common)
        _core.forward_cuda(x.data.ptr, x.data.ptr, pixels, channels, name, **common)  # in place
cp.cuda.runtime.deviceSynchronize()
print("gpu_smoke: forward and backward ran for", len(CASES) * len(DTYPES), "cases")
