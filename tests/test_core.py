"""alexops._core (the CPU kernels through NumPy) against the float64 reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alexops import _core
from alexops.reference import lrn_relu_grad_reference, lrn_relu_reference
from helpers import (FLOAT_DTYPES, SHAPE_AND_PARAMS, assert_close_to_reference, case_id,
                     random_input)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("case", SHAPE_AND_PARAMS, ids=case_id)
def test_forward_and_backward_match_reference(case, dtype, relu):
    shape, params = case
    x = random_input(shape, seed=1, dtype=dtype)
    dy = random_input(shape, seed=2, dtype=dtype)
    y = _core.forward(x, relu=relu, **params)
    dx = _core.backward(x, dy, relu=relu, **params)
    assert y.dtype == dtype and dx.dtype == dtype and y.shape == shape
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    assert_close_to_reference(y, lrn_relu_reference(x64, relu=relu, **params), dtype)
    assert_close_to_reference(dx, lrn_relu_grad_reference(x64, dy64, relu=relu, **params), dtype,
                              backward=True)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 40)),
    depth_radius=st.integers(0, 45),
    bias=st.floats(0.5, 3.0),
    alpha=st.floats(1e-4, 2.0),
    beta=st.sampled_from([0.5, 0.75, 1.0, 0.3, 2.0]),
    relu=st.booleans(),
    dtype=st.sampled_from(FLOAT_DTYPES),
    seed=st.integers(0, 2**31),
)
def test_random_shapes_and_parameters(shape, depth_radius, bias, alpha, beta, relu, dtype, seed):
    params = dict(depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta, relu=relu)
    x = random_input(shape, seed, dtype=dtype)
    dy = random_input(shape, seed + 1, dtype=dtype)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    assert_close_to_reference(_core.forward(x, **params), lrn_relu_reference(x64, **params), dtype)
    assert_close_to_reference(_core.backward(x, dy, **params), lrn_relu_grad_reference(x64, dy64, **params),
                              dtype, backward=True)


@pytest.mark.parametrize("relu", [True, False])
def test_backward_by_finite_differences(relu):
    """The kernel's own backward against central differences of the kernel's own forward."""
    params = dict(depth_radius=3, bias=1.0, alpha=0.6, beta=0.75, relu=relu)
    x = random_input((2, 2, 1, 11), seed=5, away_from_zero=True)
    weights = random_input(x.shape, seed=6)
    grad = _core.backward(x, weights, **params)
    step = 1e-6
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        numeric = np.sum(weights * (_core.forward(plus, **params) - _core.forward(minus, **params))) / (2 * step)
        assert abs(numeric - grad[index]) < 1e-7 * max(1.0, abs(numeric)), index


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_cancellation_when_magnitudes_mix(dtype):
    """1e4 and 1e-4 in one pixel: a running add/subtract window sum would leave ~ulp(1e8)
    of debris in the windows after the large values leave, and y there would be wrong."""
    x = np.full((1, 1, 2, 64), 1e-4)
    x[..., :10] = 1e4
    x[..., 30:33] = 1e4
    x = x.astype(dtype)
    dy = random_input(x.shape, seed=7, dtype=dtype)
    params = dict(depth_radius=2, bias=1.0, alpha=1.0, beta=0.75)
    assert_close_to_reference(_core.forward(x, **params), lrn_relu_reference(x.astype(np.float64), **params), dtype)
    assert_close_to_reference(_core.backward(x, dy, **params),
                              lrn_relu_grad_reference(x.astype(np.float64), dy.astype(np.float64), **params),
                              dtype, backward=True)


def test_large_tensor_uses_all_tiles():
    """Enough pixels for several threads and a ragged last tile."""
    x = random_input((3, 17, 19, 24), seed=8, dtype=np.float32)
    dy = random_input(x.shape, seed=9, dtype=np.float32)
    params = dict(depth_radius=4, bias=1.0, alpha=0.01, beta=0.75)
    assert_close_to_reference(_core.forward(x, **params), lrn_relu_reference(x, **params), np.float32)
    assert_close_to_reference(_core.backward(x, dy, **params), lrn_relu_grad_reference(x, dy, **params),
                              np.float32, backward=True)


def test_non_contiguous_input_is_accepted():
    x = random_input((2, 3, 4, 10), seed=10)
    view = x[:, ::-1, :, :]
    np.testing.assert_allclose(_core.forward(view, 2), lrn_relu_reference(view, 2), rtol=1e-12)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 3, 4)), "4-D"),
    (np.zeros((1, 2, 3, 4), dtype=np.int32), "float16, bfloat16, float32 or float64"),
])
def test_core_rejects_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        _core.forward(bad)


def test_core_rejects_negative_radius_and_mismatched_dy():
    x = random_input((1, 2, 2, 3), seed=11)
    with pytest.raises(ValueError, match="depth_radius"):
        _core.forward(x, depth_radius=-1)
    with pytest.raises(ValueError, match="same shape"):
        _core.backward(x, x[:, :1])
    with pytest.raises(ValueError, match="same dtype"):
        _core.backward(x, x.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("beta", [0.5, 0.75, 1.0, 0.3])
@pytest.mark.parametrize("depth_radius", [2, 12])
def test_nan_and_inf_follow_the_reference_for_every_beta(beta, dtype, depth_radius):
    """Every form of N^(-beta) (the specialised ones and pow) handles N = inf and NaN alike:
    NaN spreads over its window, +Inf is NaN in place and 0 in the rest of its window."""
    x = random_input((2, 1, 3, 40), seed=12, dtype=dtype)
    x[0, 0, 0, 3] = np.nan
    x[0, 0, 1, 20] = np.inf
    x[1, 0, 2, 30] = -np.inf
    dy = random_input(x.shape, seed=13, dtype=dtype)
    params = dict(depth_radius=depth_radius, bias=1.0, alpha=0.5, beta=beta)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    assert_close_to_reference(_core.forward(x, **params), lrn_relu_reference(x64, **params), dtype)
    assert_close_to_reference(_core.backward(x, dy, **params), lrn_relu_grad_reference(x64, dy64, **params),
                              dtype, backward=True)
