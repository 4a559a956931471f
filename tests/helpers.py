"""Shared cases and tolerances for the tests."""
import functools
import subprocess
import sys
import textwrap

import numpy as np

from alexops._validate import FLOAT_DTYPE_NAMES
from alexops.alexnet import LRN_PARAMS as ALEXNET
from alexops.reference import (lrn_relu_grad_reference, lrn_relu_max_pool_grad_reference, lrn_relu_max_pool_reference,
                               lrn_relu_reference)

try:
    import ml_dtypes

    BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # ml_dtypes comes with TensorFlow and JAX
    BFLOAT16 = None

# The package's dtypes as NumPy dtypes (bfloat16 where ml_dtypes is installed).
FLOAT_DTYPES = [BFLOAT16 if name == "bfloat16" else np.dtype(name) for name in FLOAT_DTYPE_NAMES]
FLOAT_DTYPES = [d for d in FLOAT_DTYPES if d is not None]

# (shape, params): odd C, C = 1, C < 2R+1, R = 0, R >= C, batch 1, and the betas we specialise.
SHAPE_AND_PARAMS = [
    ((2, 3, 4, 13), dict(depth_radius=2, bias=1.0, alpha=0.5, beta=0.75)),
    ((1, 2, 2, 1), dict(depth_radius=3, bias=2.0, alpha=1.0, beta=0.5)),
    ((2, 2, 3, 5), dict(depth_radius=4, bias=1.0, alpha=0.3, beta=1.0)),
    ((3, 1, 2, 7), dict(depth_radius=0, bias=1.5, alpha=0.7, beta=0.3)),
    ((1, 3, 3, 6), dict(depth_radius=9, bias=1.0, alpha=0.2, beta=2.0)),
    ((1, 4, 4, 64), dict(ALEXNET)),
    ((2, 2, 2, 19), dict(depth_radius=5, bias=1.0, alpha=1.0, beta=0.5)),  # tf.nn.lrn defaults
]


def case_id(case):
    shape, params = case
    return "x".join(map(str, shape)) + "-R{depth_radius}-b{beta}".format(**params)


def as_float32_attrs(params):
    """The op's float attributes are float32: the reference must see the same rounded values."""
    return {k: (float(np.float32(v)) if isinstance(v, float) else v) for k, v in params.items()}


def reference_forward(x, **params):
    """The float64 reference of y, with the float32 attributes every door computes with."""
    return lrn_relu_reference(np.asarray(x).astype(np.float64), **as_float32_attrs(params))


def reference_backward(x, dy, **params):
    """The float64 reference of dx, with the float32 attributes every door computes with."""
    return lrn_relu_grad_reference(np.asarray(x).astype(np.float64), np.asarray(dy).astype(np.float64),
                                   **as_float32_attrs(params))


def pool_reference(x, dpooled, storage, **params):
    """(pooled, dx) of lrn_relu_max_pool in float64, with the float32 attributes every door
    computes with, and the LRN's output rounded to `storage` before the pool, as the composite
    stores it; dx is None without dpooled."""
    params = as_float32_attrs(params)
    x64 = np.asarray(x).astype(np.float64)
    pooled = lrn_relu_max_pool_reference(x64, storage=storage, **params)
    dx = lrn_relu_max_pool_grad_reference(x64, dpooled, storage=storage, **params) if dpooled is not None else None
    return pooled, dx


def random_input(shape, seed, dtype=np.float64, away_from_zero=False):
    """Standard-normal data (never zeros); away_from_zero keeps |x| >= 0.1 for finite differences."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if away_from_zero:
        x = np.sign(x) * (0.1 + np.abs(x))
    return x.astype(dtype)


# The spacing of each storage type's subnormal numbers: its unit in the last place below
# the normal range, where a relative tolerance no longer covers one.
SMALLEST_SUBNORMAL = {"float16": 2.0 ** -24, "bfloat16": 2.0 ** -133, "float32": 2.0 ** -149, "float64": 2.0 ** -1074}


def tolerance(dtype, backward=False):
    """(rtol, atol_fraction): the kernel rounds once from float32 (float64 for float64), so
    its error is about one unit in the last place of the storage type; atol_fraction scales
    with the largest reference value and covers float32 rounding where terms cancel.
    (assert_close_to_reference adds one subnormal unit, for results below the normal range.)"""
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return 1e-12, 1e-13
    if dtype == np.float32:
        return 2e-6, 1e-6 if backward else 1e-7
    eps = 2.0 ** -10 if dtype == np.float16 else 2.0 ** -7
    return eps, 1e-5 if backward else 0.0


def gradient_term_scale(x, dy, **params):
    """The size of dx's first term, |dy| N^(-beta) = |dy y / r|: dx is that minus a term of
    the same size, and where the two cancel, rounding errors scale with them, not with dx."""
    y = reference_forward(x, **params)
    with np.errstate(all="ignore"):
        terms = np.abs(np.asarray(dy, np.float64) * y / np.asarray(x, np.float64))
    terms = terms[np.isfinite(terms)]
    return float(terms.max()) if terms.size else 0.0


def assert_close_to_reference(actual, reference, dtype, backward=False, what="", scale=None):
    """scale: the size of the terms that cancel in the result, where that is larger than the
    largest result (by default, the largest finite reference value)."""
    rtol, atol_fraction = tolerance(dtype, backward)
    reference = np.asarray(reference, dtype=np.float64)
    actual = np.asarray(actual).astype(np.float64)
    # The reference rounded to the storage type is what a perfect kernel returns. Past the
    # type's range it rounds to inf, as the kernel's store does: NumPy's warning is expected.
    with np.errstate(over="ignore"):
        rounded = reference.astype(dtype).astype(np.float64)
    finite = np.isfinite(reference)
    # Scale from the finite values only: an inf in the reference must not make atol infinite.
    if scale is None:
        scale = np.max(np.abs(reference[finite])) if finite.any() else 0.0
    # rtol is one unit in the last place for normal numbers. A subnormal result's unit is the
    # smallest subnormal, larger than rtol times it: a kernel right to float32 whose exact
    # value lies near a midpoint of the storage type may round to either side of it there.
    atol = atol_fraction * scale + SMALLEST_SUBNORMAL[np.dtype(dtype).name]
    np.testing.assert_allclose(actual, rounded, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


@functools.lru_cache(maxsize=None)
def gpu_unavailable_reason():
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            return "no CUDA device"
    except Exception as error:  # CUDA driver missing
        return f"no CUDA device ({error})"
    from alexops import _core

    if not _core.cuda_available():
        return "alexops was built without CUDA"
    return None


def run_fresh(script, **kwargs):
    """Runs `script` in a fresh interpreter; fails the test with its output if it fails."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                            timeout=300, **kwargs)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    return result


def assert_saved_model_differentiates_in_a_fresh_process(module, x, tmp_path):
    """Save `module` (a tf.Module whose __call__ takes x), reload it in a fresh interpreter that
    imports tensorflow and alexops only, and check that the gradient of sum(module(x)^2) there
    equals the one here: the op and its gradient must be registered by the import."""
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(module(xt) ** 2)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "dx.npy", tape.gradient(loss, xt).numpy())
    tf.saved_model.save(module, str(tmp_path / "sm"))
    run_fresh(f"""
        import numpy as np
        import tensorflow as tf
        import alexops
        module = tf.saved_model.load({str(tmp_path / 'sm')!r})
        x = tf.constant(np.load({str(tmp_path / 'x.npy')!r}))
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(module(x) ** 2)
        np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), np.load({str(tmp_path / 'dx.npy')!r}))
    """)


def value_and_gradient(function, x, upstream):
    """function(x) and the gradient of <function(x), upstream> with respect to x, as NumPy
    arrays, through a GradientTape (the TF op's registered gradient)."""
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = function(xt)
    return y.numpy(), tape.gradient(y, xt, output_gradients=tf.constant(upstream)).numpy()
