"""The TensorFlow op on the CPU: against the float64 reference and against stock TF."""
import numpy as np
import pytest
import tensorflow as tf

import alexops
from alexops import _core
from alexops.reference import lrn_relu_grad_reference, lrn_relu_reference
from helpers import (ALEXNET, FLOAT_DTYPES, SHAPE_AND_PARAMS, as_float32_attrs, assert_close_to_reference,
                     case_id, gradient_term_scale, random_input, reference_backward, reference_forward,
                     value_and_gradient)

TF_DTYPES = {np.dtype(np.float16): tf.float16, np.dtype(np.float32): tf.float32,
             np.dtype(np.float64): tf.float64}
for _d in FLOAT_DTYPES:
    if _d.name == "bfloat16":
        TF_DTYPES[_d] = tf.bfloat16


def op_and_grad(x, dy, **params):
    return value_and_gradient(lambda t: alexops.lrn_relu(t, **params), x, dy)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("case", SHAPE_AND_PARAMS, ids=case_id)
def test_op_matches_reference(case, dtype, relu):
    shape, params = case
    params = as_float32_attrs(params)
    x = random_input(shape, seed=21, dtype=dtype)
    dy = random_input(shape, seed=22, dtype=dtype)
    y, dx = op_and_grad(x, dy, relu=relu, **params)
    assert y.dtype == dtype and dx.dtype == dtype
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    assert_close_to_reference(y, lrn_relu_reference(x64, relu=relu, **params), dtype)
    assert_close_to_reference(dx, lrn_relu_grad_reference(x64, dy64, relu=relu, **params), dtype, backward=True)


def stock_and_grad(x, dy, relu=True, **params):
    return value_and_gradient(lambda t: tf.nn.lrn(tf.nn.relu(t) if relu else t, **params), x, dy)


STOCK_CASES = [c for c in SHAPE_AND_PARAMS if c[1]["depth_radius"] <= 7]  # a stock limit on GPUs


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("case", STOCK_CASES, ids=case_id)
def test_float32_matches_stock_tf(case, relu):
    shape, params = case
    x = random_input(shape, seed=23, dtype=np.float32)
    dy = random_input(shape, seed=24, dtype=np.float32)
    ours_y, ours_dx = op_and_grad(x, dy, relu=relu, **params)
    stock_y, stock_dx = stock_and_grad(x, dy, relu=relu, **params)
    np.testing.assert_allclose(ours_y, stock_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_dx, stock_dx, rtol=1e-4, atol=1e-5 * np.abs(stock_dx).max())


@pytest.mark.parametrize("case", STOCK_CASES, ids=case_id)
def test_half_is_at_least_as_accurate_as_stock_tf_in_half(case):
    """Judged against the same-precision baseline: stock TF in half vs the float64 truth."""
    shape, params = case
    x = random_input(shape, seed=25, dtype=np.float16)
    dy = random_input(shape, seed=26, dtype=np.float16)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    attrs = as_float32_attrs(params)
    truth_y = lrn_relu_reference(x64, **attrs)
    truth_dx = lrn_relu_grad_reference(x64, dy64, **attrs)
    ours_y, ours_dx = op_and_grad(x, dy, **params)
    stock_y, stock_dx = stock_and_grad(x, dy, **params)

    def error(a, truth):
        return np.max(np.abs(a.astype(np.float64) - truth))

    assert error(ours_y, truth_y) <= error(stock_y, truth_y)
    assert error(ours_dx, truth_dx) <= error(stock_dx, truth_dx)


def test_works_in_tf_function_and_graph():
    x = random_input((2, 4, 4, 9), seed=27, dtype=np.float32)
    eager = alexops.lrn_relu(x, **ALEXNET).numpy()

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 9], tf.float32)])
    def traced(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = alexops.lrn_relu(t, **ALEXNET)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, t)

    y, dx = traced(x)
    np.testing.assert_array_equal(y.numpy(), eager)
    expected_dx = lrn_relu_grad_reference(x, 2 * lrn_relu_reference(x, **as_float32_attrs(ALEXNET)),
                                          **as_float32_attrs(ALEXNET))
    assert_close_to_reference(dx.numpy(), expected_dx, np.float32, backward=True)


def test_in_place_forwarding_gives_the_same_answer():
    """When TF may reuse the input buffer (x and dy are temporaries), results are unchanged."""
    x = random_input((2, 5, 5, 32), seed=28, dtype=np.float32)
    dy = random_input(x.shape, seed=29, dtype=np.float32)

    @tf.function
    def fused(a, b):
        return (alexops.lrn_relu(a * 1.0, **ALEXNET),
                alexops.ops.lrn_relu_grad(a * 1.0, b * 1.0, **ALEXNET))

    y, dx = fused(tf.constant(x), tf.constant(dy))
    params = as_float32_attrs(ALEXNET)
    assert_close_to_reference(y.numpy(), lrn_relu_reference(x, **params), np.float32)
    assert_close_to_reference(dx.numpy(), lrn_relu_grad_reference(x, dy, **params), np.float32, backward=True)


# ---- the TF op agrees with the NumPy door exactly, degenerate norms and extremes included ----

def tf_dtype(dtype):
    return TF_DTYPES[np.dtype(dtype)]


@pytest.mark.parametrize("bias", [0.0, -0.5])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("channels", [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 33])
def test_padding_lanes_bring_no_nan_into_the_gradient(channels, dtype, bias):
    """bias <= 0 with relu off: N is 0 or negative in the lanes past the last channel."""
    x = random_input((2, 1, 3, channels), seed=channels, dtype=np.float64)
    x = (np.sign(x) * (1 + np.abs(x))).astype(dtype)  # every real channel's N >= 0.5
    if channels > 1:
        x[..., -1] = 0
    dy = random_input(x.shape, seed=channels + 1, dtype=dtype)
    params = dict(depth_radius=1, bias=bias, alpha=1.0, beta=0.75, relu=False)
    y, dx = op_and_grad(x, dy, **params)
    assert np.isfinite(y.astype(np.float64)).all() and np.isfinite(dx.astype(np.float64)).all()
    np.testing.assert_array_equal(y, _core.forward(x, **params))
    np.testing.assert_array_equal(dx, _core.backward(x, dy, **params))


def test_padding_reproducer_matches_stock():
    x = np.array([[[[2.0, 0.0]]]], np.float32)
    params = dict(depth_radius=1, bias=0.0, alpha=1.0, beta=0.75)
    ours = op_and_grad(x, np.ones_like(x), relu=False, **params)
    stock = stock_and_grad(x, np.ones_like(x), relu=False, **params)
    np.testing.assert_allclose(ours[1], stock[1], rtol=1e-6)
    np.testing.assert_allclose(ours[1], [[[[-0.1767767, 0.3535534]]]], rtol=1e-6)


@pytest.mark.parametrize("beta", [0.5, 0.75, 1.0, 0.3])
def test_huge_norms_do_not_underflow_in_tensorflow(beta):
    """TensorFlow runs its threads with denormals flushed to zero: N ~ 1e38 must still give
    N^(-beta) (and the gradient) as the NumPy door and the float64 reference do."""
    x = np.zeros((1, 1, 2, 19), np.float32)
    x[..., 1] = 1e19
    x[..., 7] = 3e18
    dy = random_input(x.shape, seed=30, dtype=np.float32)
    params = dict(depth_radius=1, bias=1.0, alpha=1.0, beta=beta, relu=False)
    y, dx = op_and_grad(x, dy, **params)
    if beta == 0.75:
        assert y[0, 0, 0, 1] == pytest.approx(3.1622777e-10, rel=1e-6)
        assert stock_and_grad(x, dy, **params)[0][0, 0, 0, 1] == pytest.approx(y[0, 0, 0, 1], rel=1e-5)
    np.testing.assert_array_equal(y, _core.forward(x, **params))
    np.testing.assert_array_equal(dx, _core.backward(x, dy, **params))
    assert_close_to_reference(y, reference_forward(x, **params), np.float32)
    assert_close_to_reference(dx, reference_backward(x, dy, **params), np.float32, backward=True,
                              scale=gradient_term_scale(x, dy, **params))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("case", SHAPE_AND_PARAMS, ids=case_id)
def test_tf_and_numpy_doors_agree_exactly(case, dtype):
    """One kernel behind both doors, float32 attributes on both: the same bits."""
    shape, params = case
    x = random_input(shape, seed=31, dtype=dtype)
    dy = random_input(shape, seed=32, dtype=dtype)
    y, dx = op_and_grad(x, dy, **params)
    np.testing.assert_array_equal(y, _core.forward(x, **params))
    np.testing.assert_array_equal(dx, _core.backward(x, dy, **params))
