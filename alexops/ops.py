"""The TensorFlow API: `lrn_relu` and `lrn_relu_max_pool`, their gradient ops, and their
gradients registered.

Importing this module loads the op library and registers the gradient; `alexops.register_ops()`
does it (and registers the Keras layers) for code that loads saved models.
"""
import tensorflow as tf

from alexops import _loader, _validate

_ops = _loader.op_library()


def _dense_tensor(value, what):
    """value as a checked dense tensor. A SparseTensor or RaggedTensor is refused with a
    TypeError here: tf.convert_to_tensor would raise a ValueError about its conversion instead."""
    if isinstance(value, (tf.SparseTensor, tf.RaggedTensor)):
        raise TypeError(f"{what} must be a dense tensor, got a {type(value).__name__} "
                        "(densify it first, e.g. with .to_tensor() or tf.sparse.to_dense)")
    _validate.check_not_masked(value, what)
    t = tf.convert_to_tensor(value, name=what)
    _validate.check_dtype(t.dtype.name, what)
    _validate.check_nhwc_rank(t.shape.rank, t.shape, what)
    return t


def _gradient_inputs(x, upstream, what):
    """x and the upstream gradient as checked tensors of one dtype."""
    x = _dense_tensor(x, "x")
    upstream = _dense_tensor(upstream, what)
    if x.dtype != upstream.dtype:
        raise TypeError(f"x and {what} must have the same dtype, got {x.dtype.name} and {upstream.dtype.name}")
    return x, upstream


def lrn_relu(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, name=None):
    """Fused `tf.nn.lrn(tf.nn.relu(x), depth_radius, bias, alpha, beta)`.

    For each position, over the last (depth) axis of the 4-D NHWC `x`:
        r = relu(x) (or x when relu=False)
        y[c] = r[c] / (bias + alpha * sum(r[j]**2 for |j - c| <= depth_radius)) ** beta
    alpha follows tf.nn.lrn: it is NOT divided by the window size 2*depth_radius+1 (cuDNN,
    Caffe and PyTorch divide it). With relu=False this is a drop-in for tf.nn.lrn, in all of
    float16, bfloat16, float32 and float64, on CPU and (when built with CUDA) GPU, with any
    depth_radius >= 0. NaN and Inf inputs propagate into their windows, as in tf.nn.lrn.
    bias, alpha and beta are float32 attributes, as in tf.nn.lrn: a float64 x is computed
    with their float32 roundings.
    """
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    x = _dense_tensor(x, "x")
    return _ops.alex_ops_lrn_relu(x, depth_radius=int(depth_radius), bias=bias, alpha=alpha,
                                  beta=beta, relu=bool(relu), name=name)


def lrn_relu_grad(x, dy, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, name=None):
    """dL/dx of `lrn_relu(x, ...)` given dy = dL/dy; the norm is recomputed from x."""
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    x, dy = _gradient_inputs(x, dy, "dy")
    if not x.shape.is_compatible_with(dy.shape):
        raise ValueError(f"x and dy must have the same shape, got x {x.shape} and dy {dy.shape}")
    return _ops.alex_ops_lrn_relu_grad(x, dy, depth_radius=int(depth_radius), bias=bias, alpha=alpha,
                                       beta=beta, relu=bool(relu), name=name)


@tf.RegisterGradient("AlexOps>LrnRelu")
def _lrn_relu_gradient(op, dy):
    attrs = {key: op.get_attr(key) for key in ("depth_radius", "bias", "alpha", "beta", "relu")}
    return _ops.alex_ops_lrn_relu_grad(op.inputs[0], dy, **attrs)


def lrn_relu_max_pool(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3, strides=2,
                      padding="VALID", name=None):
    """AlexNet's block in one op: `tf.nn.max_pool2d(tf.nn.lrn(tf.nn.relu(x), depth_radius, bias,
    alpha, beta), ksize, strides, padding)` on NHWC x, without storing the LRN's output.

    ksize and strides are an int or a pair (rows, cols), or tf.nn.max_pool2d's list of 1 or 4
    (NHWC: `[1, 3, 3, 1]`; pooling over the batch or depth is refused); padding is "VALID" or
    "SAME", with tf.nn.max_pool2d's output sizes. The max skips NaN, as TensorFlow's CPU
    max-pool does (a window of nothing but NaN gives the dtype's lowest value). The gradient
    sends each entry of dpooled to the first maximum of its window in row-major order (a window
    of equal values sends it to its top-left member), as TensorFlow's max-pool gradient does,
    and recomputes the LRN from x: nothing is stored between the passes.

    Speed: on the 2-core Intel CPUs measured (BENCHMARKS.md), 0.57-0.74x the time of lrn_relu
    followed by tf.nn.max_pool2d forward, 0.76-1.03x forward+backward; on a 2-core AMD Zen 4,
    0.60-0.71x and 0.71-0.88x. On a GPU it depends on the shape. Where lrn_relu's register
    kernel applies (C a multiple of 16 bytes' worth of channels and not too large,
    depth_radius <= 8, 16-byte aligned data: AlexNet's shapes in every dtype), an H200 ran it in
    0.83-1.08x the time that `lrn_relu` followed by cuDNN's max-pool (what `tf.nn.max_pool2d`
    runs on a GPU) takes forward, and in 0.83-1.04x of it forward+backward. Other shapes take a
    first, simple CUDA kernel, several times slower than that pair (README "On a GPU",
    BENCHMARKS.md, docs/gpu-tuning.md).
    """
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    ksize, strides, padding = _validate.check_pool_arguments(ksize, strides, padding)
    x = _dense_tensor(x, "x")
    return _ops.alex_ops_lrn_relu_max_pool(x, depth_radius=int(depth_radius), bias=bias, alpha=alpha, beta=beta,
                                           relu=bool(relu), ksize=list(ksize), strides=list(strides),
                                           padding=padding, name=name)


def lrn_relu_max_pool_grad(x, dpooled, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3, strides=2,
                           padding="VALID", name=None):
    """dL/dx of `lrn_relu_max_pool(x, ...)` given dpooled = dL/dpooled."""
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    ksize, strides, padding = _validate.check_pool_arguments(ksize, strides, padding)
    x, dpooled = _gradient_inputs(x, dpooled, "dpooled")
    return _ops.alex_ops_lrn_relu_max_pool_grad(x, dpooled, depth_radius=int(depth_radius), bias=bias, alpha=alpha,
                                                beta=beta, relu=bool(relu), ksize=list(ksize),
                                                strides=list(strides), padding=padding, name=name)


@tf.RegisterGradient("AlexOps>LrnReluMaxPool")
def _lrn_relu_max_pool_gradient(op, dpooled):
    attrs = {key: op.get_attr(key) for key in
             ("depth_radius", "bias", "alpha", "beta", "relu", "ksize", "strides", "padding")}
    return _ops.alex_ops_lrn_relu_max_pool_grad(op.inputs[0], dpooled, **attrs)
