"""The NumPy door: the fused kernels on NumPy arrays, on the CPU. Never imports TensorFlow.

The arguments and defaults are `tf.nn.lrn`'s, as in `alexops.lrn_relu` and `alexops.cupy`;
the same mistakes raise the same exceptions (see the README's "What bad input does").

    import numpy as np, alexops.numpy as anp
    y = anp.lrn_relu(x, depth_radius=4, bias=1.0, alpha=0.001 / 9, beta=0.75)
    dx = anp.lrn_relu_grad(x, dy, depth_radius=4, bias=1.0, alpha=0.001 / 9, beta=0.75)

x (and dy) are 4-D NHWC arrays of float16, bfloat16 (ml_dtypes), float32 or float64, in any
layout and byte order (copied to a C-contiguous native array when they are not one), or
anything else `np.asarray` takes (nested lists of floats become float64).
Results are new arrays, or `out`: a C-contiguous, writeable array of x's shape and dtype. It
may be x itself (or dy, for the gradient); if it partly overlaps an input, the result is
computed through a temporary. The work is spread over a pool of threads, one per CPU this
process may run on (`set_num_threads` changes that; so does ALEXOPS_NUM_THREADS).
"""
import numbers

import numpy as np

from alexops import _loader, _validate


def _array(value, what="x"):
    _validate.check_not_masked(value, what)
    return np.asarray(value)


def lrn_relu(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, out=None):
    """y = tf.nn.lrn(relu(x), depth_radius, bias, alpha, beta) over the last axis of x
    (TensorFlow's alpha convention: not divided by 2*depth_radius+1)."""
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    return _loader.core().forward(_array(x), depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta,
                                  relu=bool(relu), out=out)


def lrn_relu_grad(x, dy, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, out=None):
    """dL/dx of lrn_relu(x, ...) given dy = dL/dy; the norm is recomputed from x."""
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    return _loader.core().backward(_array(x), _array(dy, "dy"), depth_radius=depth_radius, bias=bias, alpha=alpha,
                                   beta=beta, relu=bool(relu), out=out)


def lrn_relu_max_pool(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3, strides=2,
                      padding="VALID", out=None):
    """pooled = max_pool2d(lrn_relu(x, ...), ksize, strides, padding), fused (see
    alexops.lrn_relu_max_pool); out may not share memory with x (else a temporary is used)."""
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    ksize, strides, padding = _validate.check_pool_arguments(ksize, strides, padding)
    return _loader.core().forward_max_pool(_array(x), depth_radius=depth_radius, bias=bias, alpha=alpha,
                                           beta=beta, relu=bool(relu), ksize=ksize, strides=strides, padding=padding,
                                           out=out)


def lrn_relu_max_pool_grad(x, dpooled, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3, strides=2,
                           padding="VALID", out=None):
    """dL/dx of lrn_relu_max_pool(x, ...) given dpooled = dL/dpooled."""
    _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
    ksize, strides, padding = _validate.check_pool_arguments(ksize, strides, padding)
    return _loader.core().backward_max_pool(_array(x), _array(dpooled, "dpooled"), depth_radius=depth_radius, bias=bias,
                                            alpha=alpha, beta=beta, relu=bool(relu), ksize=ksize, strides=strides,
                                            padding=padding, out=out)


def get_num_threads():
    """Threads the CPU kernels use for one call (the calling thread included)."""
    return _loader.core().get_num_threads()


def set_num_threads(n):
    """Use n threads per call; n < 1 restores the default (ALEXOPS_NUM_THREADS where it is a
    valid count, else the CPUs this process may run on).
    n may be at most 65536, as for ALEXOPS_NUM_THREADS.
    Returns the count in effect, lower if the system would not start that many."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int, got {n!r}")
    core = _loader.core()
    if n > core.MAX_THREADS:
        raise ValueError(f"n must be at most {core.MAX_THREADS}, got {n}")
    return core.set_num_threads(max(int(n), 0))
