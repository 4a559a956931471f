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


def int_at_least(value, least, name, kind="an int", shown=None):
    """value as an int: TypeError unless it is an int (a bool is not one), ValueError unless it
    is in [least, 2**63). Messages name `name` and show `shown` (by default the value)."""
    shown = value if shown is None else shown
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {kind}, got {shown!r}")
    if value < least:
        raise ValueError(f"{name} must be >= {least}, got {shown}")
    if value > INT64_MAX:
        raise ValueError(f"{name} must be < 2**63, got {shown}")
    return int(value)


def check_real(value, name):
    """TypeError unless value is a real number (a bool is not one)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {value!r}")


def check_lrn_arguments(depth_radius, bias, alpha, beta, relu):
    """depth_radius an int >= 0 (not a bool), bias/alpha/beta real numbers, relu a bool."""
    int_at_least(depth_radius, 0, "depth_radius")
    for name, value in (("bias", bias), ("alpha", alpha), ("beta", beta)):
        check_real(value, name)
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu must be a bool, got {relu!r}")


def check_not_masked(value, what="x"):
    """A NumPy masked array is refused: converting it drops the mask, and the masked entries,
    whatever they hold, would enter their neighbours' norms."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{what} is a masked array, and the LRN has no notion of a mask: pass {what}.filled(v) "
                        f"with the value the masked entries should take, or {what}.data")


def check_dtype(dtype_name, what="x"):
    if dtype_name not in FLOAT_DTYPE_NAMES:
        raise TypeError(f"{what} must be {FLOAT_DTYPES_TEXT}, got {dtype_name}")


def check_nhwc_rank(rank, shape, what="x"):
    """rank None (unknown until run time) passes; the kernels check again then."""
    if rank is not None and rank != 4:
        raise ValueError(f"{what} must be 4-D NHWC [batch, rows, cols, depth], got shape {shape}")


def pool_pair(value, what):
    """(rows, cols), each an int >= 1, from the forms tf.nn.max_pool2d takes: an int, or a
    sequence of 1, 2 or 4 ints. Four are NHWC, whose batch and depth entries must be 1 (the
    write-up's `ksize=[1, 3, 3, 1]`): the op pools over rows and cols only."""
    kind = "an int or a pair of ints (rows, cols), or 1 or 4 ints as in tf.nn.max_pool2d"
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        entries = (value, value)
    else:
        try:
            entries = tuple(value)
        except TypeError:
            entries = ()
        if len(entries) == 1:
            entries *= 2
        if len(entries) not in (2, 4):
            raise TypeError(f"{what} must be {kind}, got {value!r}")
    if len(entries) == 4:
        batch, depth = (int_at_least(e, 1, what, kind, value) for e in (entries[0], entries[3]))
        if (batch, depth) != (1, 1):
            raise ValueError(f"{what} {list(value)} would pool over the batch or depth dimension: its first and "
                             f"last entries must be 1 (this op pools over rows and cols only)")
        entries = entries[1:3]
    rows, cols = entries
    return int_at_least(rows, 1, what, kind, value), int_at_least(cols, 1, what, kind, value)


def check_pool_arguments(ksize, strides, padding):
    """(ksize pair, strides pair, padding) for the max-pool of lrn_relu_max_pool."""
    if padding not in ("VALID", "SAME"):
        raise ValueError(f"padding must be 'VALID' or 'SAME', got {padding!r}")
    return pool_pair(ksize, "ksize"), pool_pair(strides, "strides"), padding
