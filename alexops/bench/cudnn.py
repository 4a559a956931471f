"""The stock GPU baseline of the CuPy benchmark: a ReLU, then cuDNN's LRN (what tf.nn.lrn
runs on a CUDA GPU), and their gradients. A benchmark tool, not part of the API.

Works on raw device buffers with a dtype name, so bfloat16 (which CuPy may not have as a
dtype) is timed too. The ReLU and ReluGrad kernels are the benchmark's (cupy_backend).
"""
import importlib


def cudnn_module():
    """alexops.bench._cudnn_baseline, or None where it was not built (no cuDNN at build time)."""
    try:
        return importlib.import_module("alexops.bench._cudnn_baseline")
    except ImportError:
        return None


def available():
    return cudnn_module() is not None


class ReluCudnn:
    """relu + cuDNN LRN, forward and backward, for one dtype and LRN parameters (TensorFlow's
    alpha convention; the binding converts it for cuDNN)."""

    def __init__(self, dtype_name, lrn_params, relu, relu_grad):
        self.module = cudnn_module()
        if self.module is None:
            raise RuntimeError("the cuDNN baseline was not built (cudnn.h / libcudnn not found at build time; "
                               "set CUDNN_ROOT or install nvidia-cudnn)")
        self.dtype_name = dtype_name
        self.lrn = tuple(lrn_params[k] for k in ("depth_radius", "bias", "alpha", "beta"))
        self.relu = relu
        self.relu_grad = relu_grad

    def forward(self, x, r, y, stream):
        """r <- relu(x); y <- LRN(r). x, r, y: device arrays of one NHWC shape."""
        self.relu(x, r)
        if x.size:
            self.module.cudnn_lrn_forward(r.data.ptr, y.data.ptr, *x.shape, self.dtype_name, *self.lrn, stream.ptr)

    def backward(self, x, r, y, dy, d_r, dx, stream):
        """d_r <- LRN backward from (r, y, dy); dx <- ReluGrad(d_r, x)."""
        if x.size:
            self.module.cudnn_lrn_backward(r.data.ptr, y.data.ptr, dy.data.ptr, d_r.data.ptr, *x.shape,
                                           self.dtype_name, *self.lrn, stream.ptr)
        self.relu_grad(x, d_r, dx)


class MaxPoolCudnn:
    """cuDNN's max-pool (VALID, NaN not propagated, as TensorFlow runs it), forward and
    backward, on NHWC device arrays."""

    def __init__(self, dtype_name, ksize, strides):
        self.module = cudnn_module()
        if self.module is None:
            raise RuntimeError("the cuDNN baseline was not built")
        self.dtype_name = dtype_name
        self.window = (ksize, ksize) if isinstance(ksize, int) else tuple(ksize)
        self.strides = (strides, strides) if isinstance(strides, int) else tuple(strides)

    def forward(self, y, pooled, stream):
        self.module.cudnn_max_pool_forward(y.data.ptr, pooled.data.ptr, *y.shape, *pooled.shape[1:3], *self.window,
                                           *self.strides, self.dtype_name, stream.ptr)

    def backward(self, y, pooled, dpooled, dy, stream):
        self.module.cudnn_max_pool_backward(y.data.ptr, pooled.data.ptr, dpooled.data.ptr, dy.data.ptr, *y.shape,
                                            *pooled.shape[1:3], *self.window, *self.strides, self.dtype_name,
                                            stream.ptr)
