"""The CuPy door: the fused CUDA kernels on CuPy arrays. Never imports TensorFlow.

The arguments and defaults are `tf.nn.lrn`'s, as in `alexops.lrn_relu` and `alexops.numpy`;
the same mistakes raise the same exceptions. Inputs are C-contiguous NHWC cupy arrays of
float16, bfloat16, float32 or float64; work runs on CuPy's current stream of the array's
device. Results are new cupy arrays, or `out` (x's shape and dtype, C-contiguous); `out`
may be x itself (or dy, for the gradient), and one that partly overlaps an input is
computed through a temporary.
"""
from alexops import _loader, _validate


def _cupy():
    try:
        import cupy
    except ImportError as error:  # say what to install, not only what is missing
        raise ModuleNotFoundError(f"alexops.cupy needs CuPy, which cannot be imported here ({error}): install "
                                  "the CuPy wheel for your CUDA (pip install cupy-cuda13x, or cupy-cuda12x)",
                                  name="cupy") from error
    return cupy


def _core_with_cuda():
    core = _loader.core()
    if not core.cuda_available():
        raise RuntimeError("alexops was built without its CUDA kernels (nvcc was not found at build "
                           "time); rebuild with ALEXOPS_CUDA=on")
    return core


def _check_array(array, what):
    cupy = _cupy()
    if not isinstance(array, cupy.ndarray):
        raise TypeError(f"{what} must be a cupy.ndarray, got {type(array).__name__}")
    _validate.check_dtype(array.dtype.name, what)
    _validate.check_nhwc_rank(array.ndim, array.shape, what)
    if not array.flags.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous NHWC; pass cupy.ascontiguousarray({what})")


def _check_like(array, x, what, pooled_shape=None):
    """array has x's dtype and device, and x's shape (or, given one, the pooled shape)."""
    if array.dtype != x.dtype:
        raise TypeError(f"x and {what} must have the same dtype, got {x.dtype.name} and {array.dtype.name}")
    if pooled_shape is None and array.shape != x.shape:
        raise ValueError(f"x and {what} must have the same shape, got x {x.shape} and {what} {array.shape}")
    if pooled_shape is not None and array.shape != pooled_shape:
        raise ValueError(f"{what} must have the pooled shape {pooled_shape}, got {array.shape}")
    if array.device != x.device:
        raise ValueError(f"x and {what} must be on the same device, got {x.device} and {array.device}")


def _shares_memory(a, b):
    return a.nbytes > 0 and b.nbytes > 0 and a.data.ptr < b.data.ptr + b.nbytes and b.data.ptr < a.data.ptr + a.nbytes


def _conflicts(out, array, exact_alias_allowed):
    """The kernel cannot write into out while reading array: they share memory, other than as
    the very same buffer where the kernel allows that (lrn_relu does; the pooling op not)."""
    same = (out.data.ptr, out.nbytes) == (array.data.ptr, array.nbytes)
    return _shares_memory(out, array) and not (exact_alias_allowed and same)


def _run(x, inputs, out, launch, pooled_shape=None, exact_alias_allowed=True):
    """launch(destination) into `out` (or a new array of x's dtype, and x's shape or the pooled
    shape), through a temporary where out conflicts with an input."""
    cupy = _cupy()
    with x.device:
        if out is None:
            out = cupy.empty(x.shape if pooled_shape is None else pooled_shape, x.dtype)
        else:
            _check_array(out, "out")
            _check_like(out, x, "out", pooled_shape)
        if any(_conflicts(out, array, exact_alias_allowed) for array in inputs):
            temporary = cupy.empty_like(out)
            launch(temporary)
            out[...] = temporary
        else:
            launch(out)
    return out


def _pixels_and_channels(x):
    channels = x.shape[3]
    return (x.size // channels if channels else 0), channels


def lrn_relu(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, out=None):
    """Fused tf.nn.lrn(relu(x)) on a CuPy array (TensorFlow's alpha convention)."""
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    _check_array(x, "x")
    core = _core_with_cuda()
    pixels, channels = _pixels_and_channels(x)

    def launch(y):
        core.forward_cuda(x.data.ptr, y.data.ptr, pixels, channels, x.dtype.name, depth_radius, bias, alpha, beta,
                          bool(relu), _cupy().cuda.get_current_stream().ptr)

    return _run(x, [x], out, launch)


def lrn_relu_grad(x, dy, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, out=None):
    """dL/dx of lrn_relu given dy = dL/dy; recomputes the norm from x."""
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    _check_array(x, "x")
    _check_array(dy, "dy")
    _check_like(dy, x, "dy")
    core = _core_with_cuda()
    pixels, channels = _pixels_and_channels(x)

    def launch(dx):
        core.backward_cuda(x.data.ptr, dy.data.ptr, dx.data.ptr, pixels, channels, x.dtype.name, depth_radius, bias,
                           alpha, beta, bool(relu), _cupy().cuda.get_current_stream().ptr)

    return _run(x, [x, dy], out, launch)


def lrn_relu_max_pool(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3, strides=2,
                      padding="VALID", out=None):
    """pooled = max_pool2d(lrn_relu(x, ...), ksize, strides, padding), fused (see
    alexops.lrn_relu_max_pool), on a CuPy array. Its speed against lrn_relu followed by cuDNN's
    max-pool: see alexops.ops.lrn_relu_max_pool and the README's "On a GPU"."""
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    ksize, strides, padding = _validate.check_pool_arguments(ksize, strides, padding)
    _check_array(x, "x")
    core = _core_with_cuda()
    shape = tuple(core.pooled_shape(x.shape, ksize, strides, padding))

    def launch(pooled):
        core.forward_max_pool_cuda(x.data.ptr, pooled.data.ptr, x.shape, x.dtype.name, depth_radius, bias, alpha, beta,
                                   bool(relu), ksize, strides, padding, _cupy().cuda.get_current_stream().ptr)

    return _run(x, [x], out, launch, shape, exact_alias_allowed=False)


def lrn_relu_max_pool_grad(x, dpooled, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3, strides=2,
                           padding="VALID", out=None):
    """dL/dx of lrn_relu_max_pool(x, ...) given dpooled = dL/dpooled."""
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    ksize, strides, padding = _validate.check_pool_arguments(ksize, strides, padding)
    _check_array(x, "x")
    _check_array(dpooled, "dpooled")
    core = _core_with_cuda()
    shape = tuple(core.pooled_shape(x.shape, ksize, strides, padding))
    _check_like(dpooled, x, "dpooled", shape)

    def launch(dx):
        core.backward_max_pool_cuda(x.data.ptr, dpooled.data.ptr, dx.data.ptr, x.shape, x.dtype.name, depth_radius,
                                    bias, alpha, beta, bool(relu), ksize, strides, padding,
                                    _cupy().cuda.get_current_stream().ptr)

    return _run(x, [x, dpooled], out, launch, exact_alias_allowed=False)
