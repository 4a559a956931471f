"""alexops._core (the CPU kernels through NumPy) against the float64 reference."""
import concurrent.futures
import threading

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alexops import _core
from helpers import (BFLOAT16, FLOAT_DTYPES, SHAPE_AND_PARAMS, assert_close_to_reference, case_id,
                     gradient_term_scale, random_input, reference_backward, reference_forward, run_fresh)


def assert_matches_reference(x, dy, cancelling_terms=False, **params):
    """Forward and backward of _core against the reference, in x's dtype. cancelling_terms:
    judge dx against the size of its two terms where that exceeds dx's (random parameters
    reach the near-cancellations that tests/test_core.py's gradient tests pick on purpose)."""
    dtype = x.dtype
    y = _core.forward(x, **params)
    dx = _core.backward(x, dy, **params)
    assert y.dtype == dtype and dx.dtype == dtype and y.shape == x.shape and dx.shape == x.shape
    assert_close_to_reference(y, reference_forward(x, **params), dtype)
    dx_reference = reference_backward(x, dy, **params)
    scale = None
    if cancelling_terms:
        finite = dx_reference[np.isfinite(dx_reference)]
        scale = max(float(np.abs(finite).max()) if finite.size else 0.0, gradient_term_scale(x, dy, **params))
    assert_close_to_reference(dx, dx_reference, dtype, backward=True, scale=scale)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("case", SHAPE_AND_PARAMS, ids=case_id)
def test_forward_and_backward_match_reference(case, dtype, relu):
    shape, params = case
    x = random_input(shape, seed=1, dtype=dtype)
    dy = random_input(shape, seed=2, dtype=dtype)
    assert_matches_reference(x, dy, relu=relu, **params)


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
# A float16 dx in the subnormal range whose exact value lies 0.50014 of a unit above a
# storage value: the vector levels round it down, the baseline up (found by CI's draw).
@example(shape=(1, 3, 3, 36), depth_radius=35, bias=1.5622855726502642, alpha=1.5622855726502642, beta=2.0,
         relu=False, dtype=np.dtype(np.float16), seed=2)
def test_random_shapes_and_parameters(shape, depth_radius, bias, alpha, beta, relu, dtype, seed):
    x = random_input(shape, seed, dtype=dtype)
    dy = random_input(shape, seed + 1, dtype=dtype)
    assert_matches_reference(x, dy, cancelling_terms=True, depth_radius=depth_radius, bias=bias, alpha=alpha,
                             beta=beta, relu=relu)


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
    assert_matches_reference(x, dy, depth_radius=2, bias=1.0, alpha=1.0, beta=0.75)


def test_large_tensor_uses_all_tiles():
    """Enough pixels for several threads and a ragged last tile."""
    x = random_input((3, 17, 19, 24), seed=8, dtype=np.float32)
    dy = random_input(x.shape, seed=9, dtype=np.float32)
    assert_matches_reference(x, dy, depth_radius=4, bias=1.0, alpha=0.01, beta=0.75)


def test_non_contiguous_input_is_accepted():
    x = random_input((2, 3, 4, 10), seed=10)
    view = x[:, ::-1, :, :]
    np.testing.assert_allclose(_core.forward(view, 2), reference_forward(view, depth_radius=2), rtol=1e-12)


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((2, 3, 4)), ValueError, "4-D"),
    (np.zeros((1, 2, 3, 4), dtype=np.int32), TypeError, "float16, bfloat16, float32 or float64"),
])
def test_core_rejects_bad_input(bad, error, message):
    with pytest.raises(error, match=message):
        _core.forward(bad)


def test_core_rejects_negative_radius_and_mismatched_dy():
    x = random_input((1, 2, 2, 3), seed=11)
    with pytest.raises(ValueError, match="depth_radius"):
        _core.forward(x, depth_radius=-1)
    with pytest.raises(ValueError, match="same shape"):
        _core.backward(x, x[:, :1])
    with pytest.raises(TypeError, match="same dtype"):
        _core.backward(x, x.astype(np.float32))


@pytest.mark.parametrize("bad_radius", [True, False, np.True_, 2.0, "2", None])
def test_core_rejects_a_radius_that_is_not_an_int(bad_radius):
    x = random_input((1, 2, 2, 3), seed=11)
    with pytest.raises(TypeError, match="depth_radius must be an int"):
        _core.forward(x, depth_radius=bad_radius)
    with pytest.raises(TypeError, match="depth_radius must be an int"):
        _core.backward(x, x, depth_radius=bad_radius)


def test_core_takes_numpy_integers_for_the_radius():
    x = random_input((1, 2, 2, 7), seed=11)
    np.testing.assert_array_equal(_core.forward(x, depth_radius=np.int64(2)), _core.forward(x, depth_radius=2))


@pytest.mark.parametrize("bad_relu", [None, 1, 0, "yes"])
def test_core_rejects_a_relu_that_is_not_a_bool(bad_relu):
    x = random_input((1, 2, 2, 3), seed=11)
    with pytest.raises(TypeError, match="relu must be a bool"):
        _core.forward(x, relu=bad_relu)
    with pytest.raises(TypeError, match="relu must be a bool"):
        _core.backward(x, x, relu=bad_relu)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
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
    assert_matches_reference(x, dy, depth_radius=depth_radius, bias=1.0, alpha=0.5, beta=beta)


# ---- padding lanes, degenerate norms, extreme magnitudes ------------------------------------

def test_gradient_has_no_nan_from_the_padding_lanes():
    """The issue's reproducer: stock tf.nn.lrn gives [-0.177, 0.354]."""
    x = np.array([[[[2.0, 0.0]]]], np.float32)
    dx = _core.backward(x, np.ones_like(x), depth_radius=1, bias=0.0, alpha=1.0, beta=0.75, relu=False)
    np.testing.assert_allclose(dx, [[[[-0.1767767, 0.3535534]]]], rtol=1e-5)


# C on both sides of every vector width (4, 8 and 16 lanes of float32 or float64).
PADDING_CHANNELS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33]


@pytest.mark.parametrize("bias", [0.0, -0.5])
@pytest.mark.parametrize("beta", [0.5, 0.75, 1.0, 0.3])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("channels", PADDING_CHANNELS)
def test_padding_lanes_stay_zero_whatever_the_norm(channels, dtype, beta, bias):
    """bias <= 0 with relu off makes N 0 or negative past the last channels; the lanes there
    pad the backward's windows and must not bring NaN into the real channels."""
    x = random_input((2, 1, 3, channels), seed=channels, dtype=np.float64)
    x = (np.sign(x) * (1 + np.abs(x))).astype(dtype)  # |x| >= 1: every real channel's N >= 0.5
    if channels > 1:
        x[..., -1] = 0  # a zero last channel, as in the reproducer; its N is still > 0 at bias 0
    dy = random_input(x.shape, seed=channels + 1, dtype=dtype)
    params = dict(depth_radius=1, bias=bias, alpha=1.0, beta=beta, relu=False)
    assert_close_to_reference(_core.forward(x, **params), reference_forward(x, **params), dtype)
    # At C = 1 with bias 0 and beta 1/2, y = sign(x) and dx's two terms cancel exactly.
    assert_close_to_reference(_core.backward(x, dy, **params), reference_backward(x, dy, **params), dtype,
                              backward=True, scale=gradient_term_scale(x, dy, **params))
    if bias == 0.0:  # every norm that a non-zero channel sees is positive: no NaN at all
        assert np.isfinite(_core.backward(x, dy, **params)[x != 0]).all()


@pytest.mark.parametrize("beta", [0.5, 0.75, 1.0, 0.3])
@pytest.mark.parametrize("relu", [True, False])
def test_huge_norms_do_not_underflow(beta, relu):
    """N ~ 1e38: 1/N is subnormal, N^(-beta) is not, and the result must be right."""
    x = np.zeros((1, 1, 2, 19), np.float32)
    x[..., 1] = 1e19
    x[..., 7] = 3e18
    x[0, 0, 1, 12] = 1.5e19
    dy = np.ones_like(x)
    params = dict(depth_radius=1, bias=1.0, alpha=1.0, beta=beta, relu=relu)
    y = _core.forward(x, **params)
    assert_close_to_reference(y, reference_forward(x, **params), np.float32)
    if beta == 0.75:
        assert y[0, 0, 0, 1] == pytest.approx(3.1622777e-10, rel=1e-6)
    # Around a lone huge value dx's two terms cancel almost exactly (y ~ constant there).
    assert_close_to_reference(_core.backward(x, dy, **params), reference_backward(x, dy, **params), np.float32,
                              backward=True, scale=gradient_term_scale(x, dy, **params))


@pytest.mark.parametrize("beta", [0.5, 0.75, 0.3])
def test_tiny_norms_are_exact(beta):
    """bias 0 and tiny inputs make N subnormal, where the hardware 1/sqrt estimate reads 0."""
    x = random_input((1, 1, 3, 21), seed=14, dtype=np.float32) * np.float32(1e-21)
    dy = random_input(x.shape, seed=15, dtype=np.float32)
    assert_matches_reference(x, dy, depth_radius=2, bias=0.0, alpha=1.0, beta=beta, relu=False)


@pytest.mark.parametrize("channels", [8, 16, 21, 64])
@pytest.mark.parametrize("beta", [0.5, 0.75, 1.0, 0.3])
@pytest.mark.parametrize("scale, bias, alpha",
                         [(1e20, 1.0, 1.0), (1e-21, 0.0, 1.0), (1e-3, 0.0, 1e-36), (1e20, 2.0, 0.0)],
                         ids=["sum-overflows", "squares-subnormal", "alpha-times-sum-subnormal", "alpha-zero-sum-overflows"])
def test_norms_float_cannot_hold_are_redone_in_double(scale, bias, alpha, beta, channels):
    """Where float's N is wrong though y and dx are normal numbers: its sum of squares
    overflowed (y ~ 4e-11, not 0; with alpha 0, 0 * inf made N NaN where it is bias), or its
    squares or alpha * sum went subnormal and lost their low bits (errors ~1e-3). Such pixels
    are redone in double at every ISA level, whether or not the reciprocal-sqrt estimate
    happens to fail on them too, and whether or not a padding lane (C = 21: the lanes past C
    have N = bias) flags the row anyway."""
    x = random_input((2, 1, 3, channels), seed=channels, dtype=np.float32, away_from_zero=True) * np.float32(scale)
    dy = random_input(x.shape, seed=channels + 1, dtype=np.float32)
    assert_matches_reference(x, dy, cancelling_terms=True, depth_radius=2, bias=bias, alpha=alpha, beta=beta,
                             relu=False)


@pytest.mark.parametrize("channels", [8, 16, 21, 64])
@pytest.mark.parametrize("beta", [0.75, 1.0])
@pytest.mark.parametrize("scale, alpha", [(1e-16, 1.0), (1e-13, 1e-6)])
def test_gradient_terms_float_cannot_hold_are_redone_in_double(scale, alpha, beta, channels):
    """Bias 0 and norms just above the floor of the test above (N ~ 1e-32): the backward's
    t = dy r N^(-beta-1) (~1e40) overflows float, while dx, r times the difference of two such
    terms, is ~1e23. Float once gave -inf there; the pixel is redone in double. Whole rows of
    such inputs, so that no channel below the floor flags the row anyway."""
    x = random_input((2, 1, 3, channels), seed=channels, dtype=np.float32, away_from_zero=True) * np.float32(scale)
    dy = random_input(x.shape, seed=channels + 1, dtype=np.float32)
    params = dict(depth_radius=2, bias=0.0, alpha=alpha, beta=beta, relu=False)
    assert np.isfinite(reference_backward(x, dy, **params)).all()
    assert np.isfinite(_core.backward(x, dy, **params)).all()
    assert_matches_reference(x, dy, cancelling_terms=True, **params)


def alike_magnitudes(rng, shape, scale):
    """Random signs, every |value| within 10% of scale: no small element hides a large one's error."""
    return np.sign(rng.standard_normal(shape)) * scale * (1 + 0.1 * rng.random(shape))


@pytest.mark.parametrize("channels", [11, 16, 64])
def test_gradient_window_float_cannot_hold_is_redone_in_double(channels):
    """Each t = dy r N^(-beta-1) is finite (~1e38) but a window of eleven of them is not, while
    dx ~ -5e25 is (bias 0, beta 1, every |x| ~ 4.4e-14 and |dy| ~ 1 within 10%). Float once
    gave -inf."""
    rng = np.random.default_rng(channels)
    shape = (2, 1, 3, channels)
    x = alike_magnitudes(rng, shape, 4.4e-14).astype(np.float32)
    dy = alike_magnitudes(rng, shape, 1.0).astype(np.float32)
    params = dict(depth_radius=5, bias=0.0, alpha=1.0, beta=1.0, relu=False)
    assert np.isfinite(reference_backward(x, dy, **params)).all()
    assert np.isfinite(_core.backward(x, dy, **params)).all()
    assert_matches_reference(x, dy, cancelling_terms=True, **params)


@pytest.mark.parametrize("pooled", [False, True], ids=["lrn_relu", "lrn_relu_max_pool"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_subnormal_outputs_are_rounded_not_flushed(dtype, pooled):
    """alpha 0, bias 4, beta 1: y = x / 4 and dx = dy / 4 exactly, before rounding to the dtype.
    x and dy run through the dtype's subnormals and the normal numbers above them, both signs,
    ties included: every output must be its value rounded to nearest even, bit for bit, and a
    subnormal never a zero (AVX512-BF16's conversion takes subnormal floats for zeros). With
    pooled, a 1 x 1 window, so that the pool passes every pixel on."""
    step = float(float_info(dtype).smallest_subnormal)
    span = min(8 * round(normal_range(dtype)[0] / step), 2**20)  # 16-bit: up to 8 x the least normal
    magnitudes = step * (1 + np.arange(48 * 37, dtype=np.float64) * 3 % span)
    signs = np.where(np.arange(magnitudes.size) % 3 == 0, -1.0, 1.0)
    x = (magnitudes * signs).astype(dtype).reshape(1, 6, 8, 37)
    dy = x[:, ::-1].copy()
    params = dict(depth_radius=2, bias=4.0, alpha=0.0, beta=1.0, relu=False)
    if pooled:
        window = dict(ksize=(1, 1), strides=(1, 1), padding="VALID")
        y = _core.forward_max_pool(x, **params, **window)
        dx = _core.backward_max_pool(x, dy, **params, **window)
    else:
        y, dx = _core.forward(x, **params), _core.backward(x, dy, **params)
    bits = np.dtype(f"u{np.dtype(dtype).itemsize}")
    for got, exact in ((y, x.astype(np.float64) / 4), (dx, dy.astype(np.float64) / 4)):
        expected = exact.astype(dtype)  # rounded to nearest even
        subnormal = (expected != 0) & (np.abs(exact) < normal_range(dtype)[0])
        assert np.count_nonzero(subnormal) > got.size // 10  # what the test is about
        mismatched = got.view(bits) != expected.view(bits)
        assert not mismatched.any(), f"{np.count_nonzero(mismatched)} outputs misrounded, e.g. " \
            f"{got[mismatched][:3]} for {expected[mismatched][:3]}"


@pytest.mark.parametrize("channels", [16, 64, 192])
def test_gradient_with_a_subnormal_two_alpha_beta_runs_in_double(channels):
    """alpha = 1e-40 (subnormal in float, as 2 alpha beta is), bias 0: alpha * sum is a normal
    number (~5e-21, the whole norm), but the backward's factor 2 alpha beta kept only 16 bits
    in float, and dx, where its two terms cancel in part, was off by ~1e-5 of itself."""
    rng = np.random.default_rng(channels)
    shape = (2, 1, 3, channels)
    x = alike_magnitudes(rng, shape, 3e9).astype(np.float32)
    dy = random_input(shape, seed=channels + 1, dtype=np.float32)
    assert_matches_reference(x, dy, cancelling_terms=True, depth_radius=2, bias=0.0, alpha=1e-40, beta=0.3,
                             relu=False)


@pytest.mark.parametrize("channels", [8, 21, 64])
@pytest.mark.parametrize("beta", [1.5, 2.0, 3.0])
def test_powers_float_cannot_hold_are_redone_in_double(beta, channels):
    """Norms N ~ 2^(134/beta), every channel alike (|x| within 10% of each other): N^(-beta) ~
    2^-134 is subnormal in float, with 15 bits left, while y = r N^(-beta) is a normal number
    (beta 1.5: |x| ~ 1e13, y ~ 1e-27). Float once gave errors of ~1e-5 there. (The backward at
    these N is redone in double already: N > 2^40 or less.)"""
    rng = np.random.default_rng(channels)
    scale = np.sqrt(2.0 ** (134 / beta) / 5)
    x = alike_magnitudes(rng, (2, 1, 3, channels), scale).astype(np.float32)
    dy = random_input(x.shape, seed=channels + 1, dtype=np.float32)
    assert_matches_reference(x, dy, cancelling_terms=True, depth_radius=2, bias=1.0, alpha=1.0, beta=beta, relu=False)


def float_info(dtype):
    """np.finfo of a storage dtype, bfloat16 included."""
    if dtype == BFLOAT16:
        import ml_dtypes  # (BFLOAT16 is set only where it is installed)
        return ml_dtypes.finfo(dtype)
    return np.finfo(dtype)


def normal_range(dtype):
    """The least and greatest normal numbers of a storage dtype."""
    info = float_info(dtype)
    return float(info.tiny), float(info.max)


@pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.float16)] + [BFLOAT16] * (BFLOAT16 is not None),
                         ids=str)
def test_random_extreme_magnitudes_are_right_wherever_the_answer_is_a_normal_number(dtype):
    """Random magnitudes (|x| from 1e-25 to 1e25, dy from 1e-10 to 1e10), biases (0 to 1e10),
    alphas (1e-40 to 1e5), betas and radii: wherever the float64 reference is 0 or a normal
    number of the storage type, the kernels agree with it to that type's tolerance. (Where
    dx's two terms overflow it themselves, their cancellation is not judged.) This search, in
    float32, found the defects the tests above pin down."""
    least, greatest = normal_range(dtype)
    rng = np.random.default_rng(2026)
    for trial in range(400):
        channels = int(rng.choice([1, 3, 8, 9, 16, 21, 64]))
        shape = (1, 2, 2, channels)
        scale = 10.0 ** rng.uniform(-25, 25)
        if rng.random() < 0.3:
            x = alike_magnitudes(rng, shape, scale)
        else:
            x = rng.standard_normal(shape) * scale
        with np.errstate(over="ignore"):  # float16 inputs beyond its range are inf, as they would be
            x = x.astype(np.float32).astype(dtype)
            dy = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-10, 10)).astype(np.float32).astype(dtype)
        alpha = 10.0 ** rng.uniform(-40, 5) if rng.random() < 0.7 else float(rng.choice([1.0, 1e-4]))
        params = {key: np.float32(value).item() for key, value in dict(
            bias=rng.choice([0.0, 1e-30, 1e-10, 1.0, 2.0, 1e10]), alpha=alpha,
            beta=rng.choice([0.5, 0.75, 1.0, 0.3, 1.5, 2.0])).items()}
        params.update(depth_radius=int(rng.choice([0, 1, 2, 4, 5, 9])), relu=bool(rng.random() < 0.5))
        with np.errstate(all="ignore"):
            y_reference, dx_reference = reference_forward(x, **params), reference_backward(x, dy, **params)
            term_scale = gradient_term_scale(x, dy, **params)
        for name, actual, reference, backward in (("y", _core.forward(x, **params), y_reference, False),
                                                  ("dx", _core.backward(x, dy, **params), dx_reference, True)):
            magnitude = np.abs(reference)
            judged = np.isfinite(reference) & ((magnitude == 0) | ((magnitude >= least) & (magnitude <= greatest)))
            if not judged.any():
                continue
            scale_of_terms = None
            if backward:
                scale_of_terms = max(float(magnitude[judged].max()), term_scale)
                if scale_of_terms > greatest:
                    continue
            assert_close_to_reference(actual[judged], reference[judged], dtype, backward=backward,
                                      scale=scale_of_terms, what=f"{name}, trial {trial}: x ~ {scale:.3g}, {params}")


def test_readme_overflow_example():
    """README's example: a lone 1e20, whose square overflows float, gives 1e20 (1 + 1e40)^-0.75."""
    x = np.zeros((1, 1, 1, 64), np.float32)
    x[..., 10] = 1e20
    y = _core.forward(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.75)
    assert y[..., 10] == pytest.approx(1e-10, rel=1e-6)


@pytest.mark.parametrize("beta", [0.5, 0.75])
@pytest.mark.parametrize("depth_radius", [2, 4, 5])
def test_compiled_window_widths_at_every_channel_count(depth_radius, beta):
    """The radii with kernels of their own (2, 4, 5: on AVX2 float32 their windows are summed
    in registers from each vector's neighbours) at every channel count up to past three
    vectors and AlexNet's, with and without ReLU, in place and not; and, with bias 0, pixels
    of inputs ~1e-21 whose norms only the redo in double gets right."""
    for channels in list(range(1, 27)) + [37, 64, 65, 192]:
        x = random_input((2, 1, 3, channels), seed=channels, dtype=np.float32, away_from_zero=True)
        dy = random_input(x.shape, seed=channels + 1, dtype=np.float32)
        for relu in (True, False):
            params = dict(depth_radius=depth_radius, bias=1.0, alpha=0.5, beta=beta, relu=relu)
            assert_matches_reference(x, dy, cancelling_terms=True, **params)
            in_place = x.copy()
            assert _core.forward(in_place, out=in_place, **params) is in_place
            np.testing.assert_array_equal(in_place, _core.forward(x, **params))
        tiny = x.copy()
        tiny[1] *= np.float32(1e-21)
        params = dict(depth_radius=depth_radius, bias=0.0, alpha=1.0, beta=beta, relu=False)
        assert_matches_reference(tiny, dy, cancelling_terms=True, **params)
        expected = reference_forward(tiny, **params)
        assert _core.forward(tiny, out=tiny, **params) is tiny  # in place, and redone in double
        assert_close_to_reference(tiny, expected, np.float32)


# ---- byte order, aliasing and overlap --------------------------------------------------------

@pytest.mark.parametrize("dtype", [">f4", ">f8", ">f2"])
def test_non_native_byte_order_is_converted(dtype):
    x = random_input((2, 2, 3, 11), seed=16, dtype=np.dtype(dtype).newbyteorder("="))
    dy = random_input(x.shape, seed=17, dtype=x.dtype)
    swapped_x, swapped_dy = x.astype(dtype), dy.astype(dtype)
    np.testing.assert_array_equal(_core.forward(swapped_x, 3), _core.forward(x, 3))
    np.testing.assert_array_equal(_core.backward(swapped_x, swapped_dy, 3), _core.backward(x, dy, 3))


def test_non_native_out_is_rejected():
    x = random_input((1, 2, 3, 5), seed=18, dtype=np.float32)
    with pytest.raises(TypeError, match="native byte order"):
        _core.forward(x, out=np.empty(x.shape, ">f4"))


@pytest.mark.parametrize("bad_out, error", [
    (np.empty((1, 2, 3, 6), np.float32), ValueError),        # shape
    (np.empty((1, 2, 3, 5), np.float64), TypeError),         # dtype
    (np.empty((1, 2, 5, 3), np.float32).transpose(0, 1, 3, 2), ValueError),  # not C-contiguous
    ([[[[0.0] * 5] * 3] * 2], TypeError),                     # not an array
])
def test_bad_out_is_rejected(bad_out, error):
    x = random_input((1, 2, 3, 5), seed=18, dtype=np.float32)
    with pytest.raises(error, match="out"):
        _core.forward(x, out=bad_out)


def test_read_only_out_is_rejected():
    x = random_input((1, 2, 3, 5), seed=18, dtype=np.float32)
    out = np.empty_like(x)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _core.forward(x, out=out)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_exact_aliasing_computes_in_place(dtype):
    """y may be x, and dx may be x or dy: the kernels read each block before writing it."""
    shape = (3, 7, 9, 37)  # several threads' worth, C not a multiple of any vector width
    params = dict(depth_radius=4, bias=1.0, alpha=0.3, beta=0.75)
    x = random_input(shape, seed=19, dtype=dtype)
    dy = random_input(shape, seed=20, dtype=dtype)
    y_expected, dx_expected = _core.forward(x, **params), _core.backward(x, dy, **params)

    buffer = x.copy()
    assert _core.forward(buffer, out=buffer, **params) is buffer
    np.testing.assert_array_equal(buffer, y_expected)

    into_dy = dy.copy()
    assert _core.backward(x, into_dy, out=into_dy, **params) is into_dy
    np.testing.assert_array_equal(into_dy, dx_expected)

    into_x = x.copy()
    assert _core.backward(into_x, dy, out=into_x, **params) is into_x
    np.testing.assert_array_equal(into_x, dx_expected)


# Inputs whose every pixel's backward is redone in double: (scale of x, bias, alpha, dtypes).
REDONE_IN_DOUBLE = {
    "sum-overflows": (1e20, 1.0, 1.0, ["float32", "bfloat16"]),  # the sum of squares is inf in float
    "tiny": (1e-16, 0.0, 1.0, ["float32", "bfloat16"]),  # subnormal squares
    # 2 alpha beta subnormal (bias 2, so that dx is not dy where N is about bias)
    "factor-subnormal": (1.0, 2.0, 1e-39, ["float32", "float16", "bfloat16"]),
}


@pytest.mark.parametrize("case, dtype", [(case, dtype) for case, (*_, dtypes) in REDONE_IN_DOUBLE.items()
                                          for dtype in FLOAT_DTYPES if str(dtype) in dtypes], ids=str)
@pytest.mark.parametrize("channels", [37, 64, 192])
def test_exact_aliasing_with_pixels_redone_in_double(case, dtype, channels):
    """dx into dy or x where every pixel is redone in double, which reads the pixel's dy again
    after its dx was written (the one-pass backward keeps dy aside where dx is dy)."""
    scale, bias, alpha, _ = REDONE_IN_DOUBLE[case]
    x = (random_input((3, 5, 7, channels), seed=22, dtype=np.float64) * scale).astype(dtype)
    dy = random_input(x.shape, seed=23, dtype=dtype)
    params = dict(depth_radius=4, bias=bias, alpha=alpha, beta=0.75)
    dx_expected = _core.backward(x, dy, **params)
    assert np.isfinite(dx_expected.astype(np.float64)).all() and np.abs(dx_expected.astype(np.float64)).max() > 0
    into_dy = dy.copy()
    np.testing.assert_array_equal(_core.backward(x, into_dy, out=into_dy, **params), dx_expected)
    into_x = x.copy()
    np.testing.assert_array_equal(_core.backward(into_x, dy, out=into_x, **params), dx_expected)


@pytest.mark.parametrize("shift", [1, -1, 5])
def test_partly_overlapping_out_gives_the_right_answer(shift):
    """out a view of x's memory shifted by `shift` pixels: computed through a temporary."""
    shape = (2, 6, 7, 19)
    params = dict(depth_radius=3, bias=1.0, alpha=0.4, beta=0.75)
    pixels, channels = int(np.prod(shape[:-1])), shape[-1]
    memory = random_input((pixels + abs(shift), channels), seed=21, dtype=np.float32)
    x_at, out_at = (0, shift) if shift > 0 else (-shift, 0)
    x = memory[x_at:x_at + pixels].reshape(shape)
    out = memory[out_at:out_at + pixels].reshape(shape)
    dy = random_input(shape, seed=22, dtype=np.float32)
    original_x = x.copy()
    assert _core.forward(x, out=out, **params) is out
    np.testing.assert_array_equal(out, _core.forward(original_x, **params))

    memory[x_at:x_at + pixels] = original_x.reshape(pixels, channels)
    _core.backward(x, dy, out=out, **params)
    np.testing.assert_array_equal(out, _core.backward(original_x, dy, **params))


def test_out_partly_overlapping_dy_gives_the_right_answer():
    shape = (2, 5, 5, 8)
    params = dict(depth_radius=2, bias=1.0, alpha=0.4, beta=0.75)
    x = random_input(shape, seed=23, dtype=np.float32)
    memory = random_input((np.prod(shape) + 3,), seed=24, dtype=np.float32)
    dy, out = memory[:-3].reshape(shape), memory[3:].reshape(shape)
    expected = _core.backward(x, dy.copy(), **params)
    _core.backward(x, dy, out=out, **params)
    np.testing.assert_array_equal(out, expected)


# ---- threads ---------------------------------------------------------------------------------

def test_results_do_not_depend_on_the_thread_count():
    x = random_input((4, 9, 11, 40), seed=25, dtype=np.float32)
    dy = random_input(x.shape, seed=26, dtype=np.float32)
    default = _core.get_num_threads()
    try:
        assert _core.set_num_threads(1) == 1
        one = _core.forward(x, 4), _core.backward(x, dy, 4)
        assert _core.set_num_threads(3) == 3
        three = _core.forward(x, 4), _core.backward(x, dy, 4)
    finally:
        _core.set_num_threads(0)
    assert _core.get_num_threads() == default
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)


def test_calls_from_several_python_threads_give_the_serial_results():
    """The door releases the GIL, so Python threads (a data loader's, say) call the kernels at
    once: one gets the pool, the others run alone, all while another thread resizes the pool.
    The images are large enough for the calls to overlap: with the pool's guard against a
    second caller taken out (thread_pool.cc, run_mutex_), this test crashed or failed."""
    params = dict(depth_radius=4, bias=1.0, alpha=0.001 / 9, beta=0.75)
    pool = dict(ksize=(3, 3), strides=(2, 2), padding="VALID")
    inputs = [random_input((4, 27, 27, 64 + 32 * (i % 3)), seed=30 + i, dtype=np.float32) for i in range(6)]

    def all_four(x):
        y = _core.forward(x, **params)
        pooled = _core.forward_max_pool(x, **params, **pool)
        return y, _core.backward(x, y, **params), pooled, _core.backward_max_pool(x, pooled, **params, **pool)

    expected = [all_four(x) for x in inputs]
    stop = threading.Event()

    def resize():
        n = 0
        while not stop.is_set():
            _core.set_num_threads(n % 3)  # the default (0), one thread, two
            n += 1

    resizer = threading.Thread(target=resize)
    resizer.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as executor:
            for _ in range(5):
                for got, want in zip(executor.map(all_four, inputs), expected):
                    for a, b in zip(got, want):
                        np.testing.assert_array_equal(a, b)
    finally:
        stop.set()
        resizer.join()
        _core.set_num_threads(0)


def test_default_thread_count_follows_cpu_affinity():
    import os

    assert _core.get_num_threads() == len(os.sched_getaffinity(0))


def test_the_isa_variable_lowers_the_level_and_never_raises_it():
    """ALEXOPS_CPU_ISA names a level built: at or below the CPU's, that level runs; above it, or
    unknown, the CPU's own (a level the CPU lacks would die on its first instruction), and
    stderr says so: a misspelt level must not pass silently for the one meant."""
    import os
    built = [level.strip() for level in _core.cpu_isas_built().split(",")]
    assert built[0] == "baseline" and _core.cpu_isa() in built

    def level_with(asked):
        env = {name: value for name, value in os.environ.items() if name != "ALEXOPS_CPU_ISA"}
        if asked is not None:
            env["ALEXOPS_CPU_ISA"] = asked
        result = run_fresh("import alexops._core as c; print(c.cpu_isa())", env=env)
        return result.stdout.strip(), result.stderr

    widest, _ = level_with(None)  # (this process's own level may have been lowered)
    for asked in built + ["avx512bf16", "no-such-level", "AVX2", ""]:
        runnable = asked in built[:built.index(widest) + 1]
        level, stderr = level_with(asked)
        assert level == (asked if runnable else widest), f"ALEXOPS_CPU_ISA={asked!r}"
        warned = f"ALEXOPS_CPU_ISA={asked} is" in stderr
        assert warned == (not runnable and asked != ""), f"ALEXOPS_CPU_ISA={asked!r}: stderr {stderr!r}"
