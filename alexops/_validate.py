"""Argument checks shared by every door (TensorFlow, Keras, NumPy, CuPy), so the same mistake
raises the same exception everywhere: TypeError for a wrong type or dtype, ValueError for a
wrong value or shape."""
import numbers

import numpy as np

# The dtypes the kernels take, by NumPy name: the one list on the Python side.
FLOAT_DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64")
FLOAT_DTYPES_TEXT = "float16, bfloat16, float32 or float64"
# The kernels' sizes are int64: a larger int is refused here, not wrapped or cast later.
INT64_MAX = 2**63 - 1


def check_lrn_arguments(depth_radius, bias, alpha, beta, relu):
    """depth_radius an int >= 0 (not a bool), bias/alpha/beta real numbers, relu a bool."""
    if isinstance(depth_radius, (bool, np.bool_)) or not isinstance(depth_radius, numbers.Integral):
        raise TypeError(f"depth_radius must be an int, got {depth_radius!r}")
    if depth_radius < 0:
        raise ValueError(f"depth_radius must be >= 0, got {depth_radius}")
    if depth_radius > INT64_MAX:
        raise ValueError(f"depth_radius must be < 2**63, got {depth_radius}")
    for name, value in (("bias", bias), ("alpha", alpha), ("beta", beta)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a float, got {value!r}")
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu must be a bool, got {relu!r}")


def check_dtype(dtype_name, what="x"):
    if dtype_name not in FLOAT_DTYPE_NAMES:
        raise TypeError(f"{what} must be {FLOAT_DTYPES_TEXT}, got {dtype_name}")


def check_nhwc_rank(rank, shape, what="x"):
    """rank None (unknown until run time) passes; the kernels check again then."""
    if rank is not None and rank != 4:
        raise ValueError(f"{what} must be 4-D NHWC [batch, rows, cols, depth], got shape {shape}")


def pool_pair(value, what):
    """An int or a pair of ints, each >= 1, as (rows, cols)."""
    pair = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) else value
    try:
        rows, cols = pair
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be an int or a pair of ints (rows, cols), got {value!r}") from None
    for v in (rows, cols):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{what} must be an int or a pair of ints (rows, cols), got {value!r}")
        if v < 1:
            raise ValueError(f"{what} must be >= 1, got {value!r}")
        if v > INT64_MAX:
            raise ValueError(f"{what} must be < 2**63, got {value!r}")
    return int(rows), int(cols)


def check_pool_arguments(ksize, strides, padding):
    """(ksize pair, strides pair, padding) for the max-pool of lrn_relu_max_pool."""
    if padding not in ("VALID", "SAME"):
        raise ValueError(f"padding must be 'VALID' or 'SAME', got {padding!r}")
    return pool_pair(ksize, "ksize"), pool_pair(strides, "strides"), padding
