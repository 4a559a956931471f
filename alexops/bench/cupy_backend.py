"""The CuPy backend of `python -m alexops.compare --backend cupy` and scripts/gpu_check.sh:
no TensorFlow. Fused vs the stock GPU path (a ReLU, then cuDNN's LRN, and their gradients),
beside a device copy of the same bytes and a plain ReLU (and ReluGrad): the yardsticks of
"LRN for free".

Every implementation writes into preallocated buffers of its input set and is launched
through the thinnest path there is (the kernels' raw entry points), and each timed step is
20 launches back to back between two CUDA events, rotating among input sets that together
exceed the L2 cache: what is measured is the kernels, and the host's dispatch per call is
reported beside it. Both 16-bit types are stored as uint16 arrays, so bfloat16 is timed
whether or not CuPy has that dtype.
"""
import itertools

import numpy as np

from alexops import _loader
from alexops.alexnet import LRN_PARAMS, POOL_PARAMS
from alexops.bench import cudnn
from alexops.bench.timing import time_cuda_events
from alexops.cupy import _cupy  # imports CuPy on first call, saying what to install if it cannot

# Bytes the input sets must span together: several times the largest L2 (60 MB on an H200).
ROTATION_BYTES = 256 << 20
LAUNCHES_PER_STEP = 20
STORAGE = {"float16": np.uint16, "bfloat16": np.uint16, "float32": np.float32, "float64": np.float64}


def from_float32(values, dtype):
    """Device float32 -> the storage of `dtype` (bfloat16: its top 16 bits, rounded to nearest even)."""
    cupy = _cupy()
    if dtype == "bfloat16":
        bits = values.view(cupy.uint32)
        return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(cupy.uint16)
    if dtype == "float16":
        return values.astype(cupy.float16).view(cupy.uint16)
    return values.astype(dtype)


def to_float64(array, dtype):
    """Device storage of `dtype` -> a host float64 NumPy array."""
    host = _cupy().asnumpy(array)
    if dtype == "bfloat16":
        return (host.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if dtype == "float16":
        return host.view(np.float16).astype(np.float64)
    return host.astype(np.float64)


def relu_kernels(dtype):
    """(relu(x, y), relu_grad(x, dy, dx)) as CuPy elementwise kernels on the storage arrays.
    On 16-bit storage they test the sign bit (x > 0: sign clear and not zero), so they need
    no half-precision headers."""
    cupy = _cupy()
    if STORAGE[dtype] is np.uint16:
        relu = cupy.ElementwiseKernel("uint16 x", "uint16 y", "y = (x & 0x8000) ? 0 : x", "alexops_relu_16")
        relu_grad = cupy.ElementwiseKernel("uint16 x, uint16 dy", "uint16 dx",
                                           "dx = ((x & 0x8000) || x == 0) ? 0 : dy", "alexops_relu_grad_16")
        return relu, relu_grad
    ctype = np.dtype(dtype).name
    relu = cupy.ElementwiseKernel(f"{ctype} x", f"{ctype} y", "y = x > 0 ? x : 0", f"alexops_relu_{ctype}")
    relu_grad = cupy.ElementwiseKernel(f"{ctype} x, {ctype} dy", f"{ctype} dx", "dx = x > 0 ? dy : 0",
                                       f"alexops_relu_grad_{ctype}")
    return relu, relu_grad


class CupyBackend:
    name = "cupy"
    unsupported = (RuntimeError, ValueError, TypeError)  # e.g. cuDNN without this dtype

    def __init__(self):
        self.core = _loader.core()
        if not self.core.cuda_available():
            raise SystemExit("--backend cupy: alexops was built without its CUDA kernels (rebuild with ALEXOPS_CUDA=on)")
        try:
            cupy = _cupy()
        except ModuleNotFoundError as error:
            raise SystemExit(f"--backend cupy: {error}") from None
        try:  # CuPy raises its own CUDARuntimeError where there is no GPU or no driver
            devices = cupy.cuda.runtime.getDeviceCount()
        except Exception as error:
            raise SystemExit(f"--backend cupy: CuPy sees no GPU ({type(error).__name__}: {error})") from None
        if devices == 0:
            raise SystemExit("--backend cupy: CuPy sees no GPU")

    def description(self):
        cupy = _cupy()
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        return f"{name}, {props['l2CacheSize'] >> 20} MB L2"

    def _batch(self, x, dy):
        """An input set: x and dy, and the buffers every implementation writes."""
        cupy = _cupy()
        return {"x": x, "dy": dy, **{k: cupy.empty_like(x) for k in ("y", "dx", "r", "d_r")}}

    def inputs(self, shape, dtype):
        cupy = _cupy()
        set_bytes = 6 * int(np.prod(shape)) * np.dtype(STORAGE[dtype]).itemsize
        rng = cupy.random.default_rng(0)
        sets = max(3, -(-ROTATION_BYTES // set_bytes))
        return [self._batch(from_float32(rng.standard_normal(shape, dtype=np.float32), dtype),
                            from_float32(rng.standard_normal(shape, dtype=np.float32), dtype)) for _ in range(sets)]

    def passes(self, inputs):
        return [("forward", 2, inputs, 0), ("forward+backward", 5, inputs, 1)]

    def _fused(self, dtype):
        core, stream = self.core, _cupy().cuda.get_current_stream()
        params = dict(LRN_PARAMS, relu=True)

        def launch_forward(b):
            x = b["x"]
            core.forward_cuda(x.data.ptr, b["y"].data.ptr, x.size // x.shape[-1], x.shape[-1], dtype, stream=stream.ptr,
                              **params)

        def forward(b):
            launch_forward(b)
            return b["y"]

        def forward_backward(b):
            launch_forward(b)
            x = b["x"]
            core.backward_cuda(x.data.ptr, b["dy"].data.ptr, b["dx"].data.ptr, x.size // x.shape[-1], x.shape[-1],
                               dtype, stream=stream.ptr, **params)
            return b["y"], b["dx"]

        return forward, forward_backward

    def implementations(self, dtype):
        impls = {"fused": self._fused(dtype)}
        if cudnn.available():
            stock = cudnn.ReluCudnn(dtype, LRN_PARAMS, *relu_kernels(dtype))
            stream = _cupy().cuda.get_current_stream()

            def forward(b):
                stock.forward(b["x"], b["r"], b["y"], stream)
                return b["y"]

            def forward_backward(b):
                stock.forward(b["x"], b["r"], b["y"], stream)
                stock.backward(b["x"], b["r"], b["y"], b["dy"], b["d_r"], b["dx"], stream)
                return b["y"], b["dx"]

            impls["relu+cudnn"] = (forward, forward_backward)
        return impls

    def block_inputs(self, shape, pooled_shape, dtype):
        """Input sets for the block: x and dpooled (under "dy"), and every buffer written."""
        cupy = _cupy()
        rng = cupy.random.default_rng(1)
        set_bytes = 7 * int(np.prod(shape)) * np.dtype(STORAGE[dtype]).itemsize
        sets = []
        for _ in range(max(3, -(-ROTATION_BYTES // set_bytes))):
            x = from_float32(rng.standard_normal(shape, dtype=np.float32), dtype)
            dpooled = from_float32(rng.standard_normal(pooled_shape, dtype=np.float32), dtype)
            batch = self._batch(x, dpooled)
            batch.update(pooled=cupy.empty(pooled_shape, x.dtype), dy=dpooled, dy_lrn=cupy.empty_like(x))
            sets.append(batch)
        return sets

    def block_implementations(self, dtype):
        """The block on a GPU: the fused block; the fused LRN then cuDNN's max-pool; and stock
        (a ReLU, cuDNN's LRN, cuDNN's max-pool), each forward and forward+backward."""
        core, stream = self.core, _cupy().cuda.get_current_stream()
        lrn = dict(LRN_PARAMS, relu=True)
        pool = dict(ksize=(POOL_PARAMS["ksize"],) * 2, strides=(POOL_PARAMS["strides"],) * 2,
                    padding=POOL_PARAMS["padding"])

        def fused_pool_forward(b):
            core.forward_max_pool_cuda(b["x"].data.ptr, b["pooled"].data.ptr, b["x"].shape, dtype, stream=stream.ptr,
                                       **lrn, **pool)
            return b["pooled"]

        def fused_pool_forward_backward(b):
            fused_pool_forward(b)
            core.backward_max_pool_cuda(b["x"].data.ptr, b["dy"].data.ptr, b["dx"].data.ptr, b["x"].shape, dtype,
                                        stream=stream.ptr, **lrn, **pool)
            return b["pooled"], b["dx"]

        impls = {"fused_pool": (fused_pool_forward, fused_pool_forward_backward)}
        if not cudnn.available():
            return impls
        max_pool = cudnn.MaxPoolCudnn(dtype, POOL_PARAMS["ksize"], POOL_PARAMS["strides"])
        fused_forward, _ = self._fused(dtype)

        def fused_then_pool_forward(b):
            max_pool.forward(fused_forward(b), b["pooled"], stream)
            return b["pooled"]

        def fused_then_pool_forward_backward(b):
            fused_then_pool_forward(b)
            max_pool.backward(b["y"], b["pooled"], b["dy"], b["dy_lrn"], stream)
            x = b["x"]
            core.backward_cuda(x.data.ptr, b["dy_lrn"].data.ptr, b["dx"].data.ptr, x.size // x.shape[-1], x.shape[-1],
                               dtype, stream=stream.ptr, **lrn)
            return b["pooled"], b["dx"]

        stock_lrn = cudnn.ReluCudnn(dtype, LRN_PARAMS, *relu_kernels(dtype))

        def stock_forward(b):
            stock_lrn.forward(b["x"], b["r"], b["y"], stream)
            max_pool.forward(b["y"], b["pooled"], stream)
            return b["pooled"]

        def stock_forward_backward(b):
            stock_forward(b)
            max_pool.backward(b["y"], b["pooled"], b["dy"], b["dy_lrn"], stream)
            stock_lrn.backward(b["x"], b["r"], b["y"], b["dy_lrn"], b["d_r"], b["dx"], stream)
            return b["pooled"], b["dx"]

        return {"relu+cudnn+pool": (stock_forward, stock_forward_backward),
                "fused+cudnn pool": (fused_then_pool_forward, fused_then_pool_forward_backward), **impls}

    def yardsticks(self, shape, dtype):
        """copy: a device copy of the bytes the fused op must move at least (x into y
        forward; 2.5 tensors' worth forward+backward, from rotating sources). relu: a ReLU
        into y (2 tensors), then ReluGrad into dx (3 more)."""
        cupy = _cupy()
        tensor_bytes = int(np.prod(shape)) * np.dtype(STORAGE[dtype]).itemsize
        sources = itertools.cycle([cupy.empty(tensor_bytes * 5 // 2, np.uint8) for _ in range(3)])
        destination = cupy.empty(tensor_bytes * 5 // 2, np.uint8)
        relu, relu_grad = relu_kernels(dtype)

        def copy_forward(b):
            b["y"].data.copy_from_device_async(b["x"].data, b["x"].nbytes)

        def copy_forward_backward(b):
            destination.data.copy_from_device_async(next(sources).data, destination.nbytes)

        def relu_forward_backward(b):
            relu(b["x"], b["y"])
            relu_grad(b["x"], b["dy"], b["dx"])

        return {"copy": (copy_forward, copy_forward_backward),
                "relu": (lambda b: relu(b["x"], b["y"]), relu_forward_backward)}

    def head(self, batch, n):
        small = self._batch(batch["x"][:n].copy(), batch["dy"][:n].copy())
        if "pooled" in batch:  # a block's set: its pooled-shaped buffers too
            cupy = _cupy()
            small.update(pooled=cupy.empty_like(batch["pooled"][:n]), dy_lrn=cupy.empty_like(small["x"]))
        return small

    def x_and_dy(self, batch):
        return batch["x"], batch["dy"]

    def to_numpy(self, results, dtype):
        return [to_float64(array, dtype) for array in results]

    def time(self, steps, settings, label, log, inputs):
        return time_cuda_events(steps, settings["op_steps"], settings["op_burn_in"], label, log, inputs,
                                LAUNCHES_PER_STEP)
