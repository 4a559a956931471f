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
