"""The CuPy door: the fused kernels on CuPy arrays, and the stock GPU baseline
(ReLU + cuDNN LRN). Never imports TensorFlow.

Inputs are C-contiguous NHWC cupy arrays; work runs on CuPy's current stream of the
array's device, and the results are new cupy arrays.
"""
import numbers

from alexops import _loader

_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _cupy():
    import cupy

    return cupy


def _core_with_cuda():
    core = _loader.core()
    if not core.cuda_available():
        raise RuntimeError("alexops was built without its CUDA kernels (nvcc was not found at build "
                           "time); rebuild with ALEXOPS_CUDA=on")
    return core


def _check_nhwc(array, name):
    cupy = _cupy()
    if not isinstance(array, cupy.ndarray):
        raise TypeError(f"{name} must be a cupy.ndarray, got {type(array).__name__}")
    if array.ndim != 4:
        raise ValueError(f"{name} must be 4-D NHWC [batch, rows, cols, depth], got shape {array.shape}")
    if array.dtype.name not in _DTYPES:
        raise ValueError(f"{name} must be float16, bfloat16, float32 or float64, got {array.dtype.name}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous NHWC; pass cupy.ascontiguousarray({name})")


def _check_radius(depth_radius):
    if isinstance(depth_radius, bool) or not isinstance(depth_radius, numbers.Integral):
        raise TypeError(f"depth_radius must be an int, got {depth_radius!r}")
    if depth_radius < 0:
        raise ValueError(f"depth_radius must be >= 0, got {depth_radius}")


def _check_pair(x, dy):
    _check_nhwc(x, "x")
    _check_nhwc(dy, "dy")
    if x.shape != dy.shape:
        raise ValueError(f"x and dy must have the same shape, got x {x.shape} and dy {dy.shape}")
    if x.dtype != dy.dtype:
        raise ValueError(f"x and dy must have the same dtype, got {x.dtype.name} and {dy.dtype.name}")
    if x.device != dy.device:
        raise ValueError(f"x and dy must be on the same device, got {x.device} and {dy.device}")


def _pixels_and_channels(x):
    channels = x.shape[3]
    return (x.size // channels if channels else 0), channels


def lrn_relu(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True):
    """Fused tf.nn.lrn(relu(x)) on a CuPy array (TensorFlow's alpha convention)."""
    core = _core_with_cuda()
    _check_nhwc(x, "x")
    _check_radius(depth_radius)
    cupy = _cupy()
    with x.device:
        y = cupy.empty_like(x)
        pixels, channels = _pixels_and_channels(x)
        core.forward_cuda(x.data.ptr, y.data.ptr, pixels, channels, x.dtype.name, depth_radius,
                          bias, alpha, beta, relu, cupy.cuda.get_current_stream().ptr)
    return y


def lrn_relu_grad(x, dy, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True):
    """dL/dx of lrn_relu given dy = dL/dy; recomputes the norm from x."""
    core = _core_with_cuda()
    _check_pair(x, dy)
    _check_radius(depth_radius)
    cupy = _cupy()
    with x.device:
        dx = cupy.empty_like(x)
        pixels, channels = _pixels_and_channels(x)
        core.backward_cuda(x.data.ptr, dy.data.ptr, dx.data.ptr, pixels, channels, x.dtype.name,
                           depth_radius, bias, alpha, beta, relu, cupy.cuda.get_current_stream().ptr)
    return dx


# ---- the stock baseline: separate ReLU, then cuDNN's LRN (what tf.nn.lrn runs on a GPU) ----

def cudnn_available():
    core = _loader.core()
    return core.cuda_available() and core.cudnn_available()


def _core_with_cudnn():
    core = _core_with_cuda()
    if not core.cudnn_available():
        raise RuntimeError("alexops was built without the cuDNN baseline (cudnn.h / libcudnn not "
                           "found at build time; set CUDNN_ROOT or install nvidia-cudnn)")
    return core


def cudnn_relu_lrn(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True):
    """Stock forward: r = relu(x) (one elementwise kernel), y = cuDNN LRN(r). Returns (r, y)."""
    core = _core_with_cudnn()
    _check_nhwc(x, "x")
    cupy = _cupy()
    with x.device:
        r = cupy.maximum(x, 0) if relu else x
        y = cupy.empty_like(x)
        if x.size:
            core.cudnn_lrn_forward(r.data.ptr, y.data.ptr, *x.shape, x.dtype.name, depth_radius,
                                   bias, alpha, beta, cupy.cuda.get_current_stream().ptr)
    return r, y


def cudnn_relu_lrn_grad(x, r, y, dy, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True):
    """Stock backward from the forward's r and y: cuDNN LRN backward, then ReluGrad."""
    core = _core_with_cudnn()
    _check_pair(x, dy)
    cupy = _cupy()
    with x.device:
        d_r = cupy.empty_like(x)
        if x.size:
            core.cudnn_lrn_backward(r.data.ptr, y.data.ptr, dy.data.ptr, d_r.data.ptr, *x.shape,
                                    x.dtype.name, depth_radius, bias, alpha, beta,
                                    cupy.cuda.get_current_stream().ptr)
        return cupy.where(x > 0, d_r, cupy.zeros((), x.dtype)) if relu else d_r
