"""GPU op-level benchmark without TensorFlow, for `python -m alexops.compare --backend cupy`
and scripts/gpu_check.sh: fused vs ReLU + cuDNN LRN, forward and forward+backward, beside a
device copy of the same bytes. CUDA events, warm-up, median of the timed runs, rotating
among input sets so that L2 is not what gets measured."""
import numpy as np

import alexops.cupy as acp
from alexops.reference import lrn_relu_grad_reference, lrn_relu_reference
from alexops.timing import time_cuda_events
from alexops import ALEXNET_LRN_PARAMS as LRN
from alexops import _agreement
from alexops._agreement import AgreementError  # noqa: F401  (compare catches it here)


# Enough distinct input sets that together they are several times a 50-60 MB L2.
INPUT_SETS = 4


def check_agreement(what, reference, actual, dtype_name):
    import cupy

    _agreement.check_agreement(what, [reference], [cupy.asnumpy(actual)], dtype_name)


def _implementations():
    """{impl: (forward(x), forward_backward(x, dy))}, each a sequence of GPU launches."""
    def fused_forward_backward(x, dy):
        acp.lrn_relu(x, **LRN)
        return acp.lrn_relu_grad(x, dy, **LRN)

    impls = {"fused": (lambda x: acp.lrn_relu(x, **LRN), fused_forward_backward)}
    if acp.cudnn_available():
        def cudnn_forward_backward(x, dy):
            r, y = acp.cudnn_relu_lrn(x, **LRN)
            return acp.cudnn_relu_lrn_grad(x, r, y, dy, **LRN)

        impls["relu+cudnn"] = (lambda x: acp.cudnn_relu_lrn(x, **LRN)[1], cudnn_forward_backward)
    return impls


def run_op_level(settings, log):
    import cupy

    if not acp.cudnn_available():
        log("  cuDNN baseline not built (cudnn.h / libcudnn not found): timing fused and the copy only")
    dtype = settings["dtype"]
    rows = []
    for name, (height, width, channels) in settings["op_shapes"].items():
        shape = (settings["batch"], height, width, channels)
        rng = cupy.random.default_rng(0)
        inputs = [(rng.standard_normal(shape, dtype=np.float32).astype(dtype),
                   rng.standard_normal(shape, dtype=np.float32).astype(dtype)) for _ in range(INPUT_SETS)]
        impls = _implementations()
        # Agreement on a slice of the batch against the float64 reference (the full batch is slow in NumPy).
        x_small, dy_small = inputs[0][0][:2], inputs[0][1][:2]
        x64, dy64 = cupy.asnumpy(x_small).astype(np.float64), cupy.asnumpy(dy_small).astype(np.float64)
        ref_y, ref_dx = lrn_relu_reference(x64, **LRN), lrn_relu_grad_reference(x64, dy64, **LRN)
        for impl, (forward, forward_backward) in impls.items():
            check_agreement(f"{impl} forward on {name}", ref_y, forward(x_small), dtype)
            check_agreement(f"{impl} forward+backward on {name}", ref_dx, forward_backward(x_small, dy_small), dtype)
        tensor_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        copies = {tensors: cupy.empty(tensor_bytes * tensors // 2, dtype=np.uint8) for tensors in (2, 5)}
        sources = {tensors: [cupy.empty_like(copies[tensors]) for _ in range(INPUT_SETS)] for tensors in (2, 5)}
        for pass_name, tensors in (("forward", 2), ("forward+backward", 5)):
            def copy_step(src, dst=copies[tensors]):
                dst.data.copy_from_device_async(src.data, dst.nbytes)
            copy = time_cuda_events(copy_step, settings["op_steps"], settings["op_burn_in"],
                                    f"op {name} {pass_name} copy", log, sources[tensors])
            rows.append(_row(name, shape, pass_name, "copy", copy, tensor_bytes * tensors, copy.median))
            for impl, (forward, forward_backward) in impls.items():
                step = (lambda xy, f=forward: f(xy[0])) if tensors == 2 else (lambda xy, f=forward_backward: f(*xy))
                stats = time_cuda_events(step, settings["op_steps"], settings["op_burn_in"],
                                         f"op {name} {pass_name} {impl}", log, inputs)
                rows.append(_row(name, shape, pass_name, impl, stats, tensor_bytes * tensors, copy.median))
    return rows


def _row(name, shape, pass_name, impl, stats, bytes_moved, floor_ms):
    return {"level": "op", "name": name, "shape": list(shape), "pass": pass_name, "impl": impl, "stats": stats,
            "bytes_moved": bytes_moved, "floor_ms": floor_ms,
            "gb_per_s": bytes_moved / (stats.median * 1e-3) / 1e9, "pct_of_floor": 100.0 * floor_ms / stats.median}


def describe_device():
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    return props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
