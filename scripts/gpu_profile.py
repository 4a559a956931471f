"""One launch of each of our CUDA kernels at AlexNet's two LRN shapes (batch 64), for ncu in
scripts/gpu_check.sh (PROFILE=1): lrn_relu's forward and backward and lrn_relu_max_pool's,
in float32 and float16. ncu filters by kernel name, so CuPy's own kernels (random inputs,
casts) are not profiled; it flushes the caches before each profiled launch, so no warm-up
is needed."""
import cupy as cp

import alexops.cupy as acp
from alexops.alexnet import LRN_PARAMS

SHAPES = {"lrn1": (64, 56, 56, 64), "lrn2": (64, 27, 27, 192)}


def calls(x, dy, dpooled):
    return {
        "lrn_relu forward": lambda: acp.lrn_relu(x, **LRN_PARAMS),
        "lrn_relu backward": lambda: acp.lrn_relu_grad(x, dy, **LRN_PARAMS),
        "lrn_relu_max_pool forward": lambda: acp.lrn_relu_max_pool(x, **LRN_PARAMS),
        "lrn_relu_max_pool backward": lambda: acp.lrn_relu_max_pool_grad(x, dpooled, **LRN_PARAMS),
    }


rng = cp.random.default_rng(0)
for dtype in ("float32", "float16"):
    for shape_name, shape in SHAPES.items():
        x = rng.standard_normal(shape, dtype=cp.float32).astype(dtype)
        dy = rng.standard_normal(shape, dtype=cp.float32).astype(dtype)
        pooled_shape = (shape[0], (shape[1] - 3) // 2 + 1, (shape[2] - 3) // 2 + 1, shape[3])  # 3x3/2 VALID
        dpooled = rng.standard_normal(pooled_shape, dtype=cp.float32).astype(dtype)
        for name, call in calls(x, dy, dpooled).items():
            print(f"{dtype} {shape_name} {name}", flush=True)
            call()
            cp.cuda.get_current_stream().synchronize()
