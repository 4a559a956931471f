"""alexops.lrn_relu_max_pool's CPU kernels through the NumPy door (alexops.numpy), against the
float64 reference of the composite, max_pool2d(lrn(relu(x))): every window, stride and
padding, channel count, radius, dtype and power, and the pixels float gets wrong. No
TensorFlow, so that these run wherever the kernels build (scripts/aarch64_check.sh runs them
on AArch64); tests/test_lrn_relu_max_pool.py has the TF door, stock TF and Keras."""
import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import alexops.numpy as anp
from alexops.reference import (lrn_relu_max_pool_grad_reference, lrn_relu_max_pool_reference, max_pool_grad_reference,
                               max_pool_reference, pooled_size)
from helpers import FLOAT_DTYPES, assert_close_to_reference, pool_reference, random_input, reference_backward

POOLS = list(itertools.product([1, 2, 3, 5], [1, 2, 3], ["VALID", "SAME"]))
CHANNELS = [1, 3, 64, 65, 192]
RADII = [0, 1, 4, 9]
# Odd sizes, and images smaller than the window (which SAME pools and VALID may leave empty).
IMAGES = [(7, 9), (5, 5), (2, 3), (1, 1), (11, 6)]


def check_numpy_door(x, seed, **params):
    dtype = x.dtype
    pooled = anp.lrn_relu_max_pool(x, **params)
    ref_pooled, _ = pool_reference(x, None, dtype, **params)
    assert pooled.shape == ref_pooled.shape and pooled.dtype == dtype
    dpooled = random_input(pooled.shape, seed, dtype=dtype)
    _, ref_dx = pool_reference(x, dpooled, dtype, **params)
    dx = anp.lrn_relu_max_pool_grad(x, dpooled, **params)
    assert dx.shape == x.shape and dx.dtype == dtype
    assert_close_to_reference(pooled, ref_pooled, dtype)
    assert_close_to_reference(dx, ref_dx, dtype, backward=True)


@pytest.mark.parametrize("ksize, strides, padding", POOLS)
def test_every_pool_geometry_matches_the_reference(ksize, strides, padding):
    """Each geometry with a rotating choice of channels, radius, relu, dtype and image size."""
    index = POOLS.index((ksize, strides, padding))
    rows, cols = IMAGES[index % len(IMAGES)]
    channels = CHANNELS[index % len(CHANNELS)]
    dtype = FLOAT_DTYPES[index % len(FLOAT_DTYPES)]
    params = dict(depth_radius=RADII[index % len(RADII)], bias=1.0, alpha=0.3, beta=0.75, relu=index % 2 == 0,
                  ksize=ksize, strides=strides, padding=padding)
    x = random_input((2, rows, cols, channels), seed=index, dtype=dtype)
    if min(pooled_size(rows, ksize, strides, padding), pooled_size(cols, ksize, strides, padding)) < 0:
        with pytest.raises(ValueError, match="negative"):  # as tf.nn.max_pool2d refuses it
            anp.lrn_relu_max_pool(x, **params)
        return
    check_numpy_door(x, index + 100, **params)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 12), st.integers(1, 12), st.integers(1, 40)),
    ksize=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    strides=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    padding=st.sampled_from(["VALID", "SAME"]),
    depth_radius=st.integers(0, 12),
    alpha=st.sampled_from([0.1, 0.3, 1.0]),
    beta=st.sampled_from([0.5, 0.75, 1.0, 0.3]),
    relu=st.booleans(),
    dtype=st.sampled_from(FLOAT_DTYPES),
    seed=st.integers(0, 2**31),
)
def test_random_geometries_and_shapes(shape, ksize, strides, padding, depth_radius, alpha, beta, relu, dtype, seed):
    """Drawn windows, strides, paddings, image sizes, channel counts and radii together (the
    tests above vary a few at a time). The pooled output must be within a unit of the
    reference's, and exactly the max of lrn_relu's own output; the gradient must go where that
    output's first maxima are. (Where two of a window's LRN values are within a unit, the
    kernel's rounding, not the float64 reference's, picks the place: bfloat16's powers come
    from an unrefined estimate, so a drawn case met such a window once in a few thousand.)"""
    _, rows, cols, _ = shape
    assume(min(pooled_size(rows, ksize[0], strides[0], padding), pooled_size(cols, ksize[1], strides[1], padding)) >= 0)
    x = random_input(shape, seed, dtype=dtype)
    lrn = dict(depth_radius=depth_radius, bias=1.0, alpha=alpha, beta=beta, relu=relu)
    pool = dict(ksize=ksize, strides=strides, padding=padding)
    pooled = anp.lrn_relu_max_pool(x, **lrn, **pool)
    ref_pooled, _ = pool_reference(x, None, dtype, **lrn, **pool)
    assert pooled.shape == ref_pooled.shape and pooled.dtype == dtype
    assert_close_to_reference(pooled, ref_pooled, dtype)
    y = anp.lrn_relu(x, **lrn).astype(np.float64)  # the LRN output as the kernels round it
    np.testing.assert_array_equal(pooled.astype(np.float64), max_pool_reference(y, **pool, storage=dtype))
    dpooled = random_input(pooled.shape, seed + 1, dtype=dtype)
    dy = max_pool_grad_reference(y, dpooled, **pool).astype(dtype)
    dx = anp.lrn_relu_max_pool_grad(x, dpooled, **lrn, **pool)
    assert dx.shape == x.shape and dx.dtype == dtype
    assert_close_to_reference(dx, reference_backward(x, dy, **lrn), dtype, backward=True)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("radius", RADII)
@pytest.mark.parametrize("channels", CHANNELS)
def test_every_channel_count_and_radius(channels, radius, relu):
    x = random_input((2, 9, 7, channels), seed=channels + radius, dtype=np.float32)
    check_numpy_door(x, channels * radius, depth_radius=radius, bias=1.0, alpha=0.2, beta=0.75, relu=relu)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("beta", [0.5, 0.75, 1.0, 0.3])
def test_every_dtype_and_power(dtype, beta):
    x = random_input((2, 13, 13, 24), seed=int(beta * 10), dtype=dtype)
    check_numpy_door(x, 7, depth_radius=2, bias=1.0, alpha=0.5, beta=beta, ksize=3, strides=2, padding="SAME")


@pytest.mark.parametrize("channels", [21, 64])
@pytest.mark.parametrize("beta", [0.5, 0.75])
@pytest.mark.parametrize("scale, bias", [(1e18, 1.0), (1e20, 1.0), (1e-21, 0.0), (1e-16, 0.0)],
                         ids=["huge", "overflowing", "tiny", "gradient-terms-overflow"])
def test_pixels_that_float_gets_wrong_are_redone_in_double(scale, bias, beta, channels):
    """Huge norms (N ~ 1e37: the backward's N^(-beta-1) underflows in float), norms whose sum
    of squares overflows float (N ~ 1e40), subnormal ones (bias 0, tiny x), and norms just
    above those (bias 0, x ~ 1e-16), whose backward terms dy r N^(-beta-1) overflow float at
    beta 0.75 though dx is ~1e23 (its backward takes the norms from the forward). The CPU kernels
    redo such pixels in double; the block's backward takes its norms from its own forward pass
    over the rows, which must flag the same pixels. C = 64 fills whole vectors at every ISA
    level, so no padding lane (whose N is the bias) flags the row instead."""
    x = random_input((2, 7, 9, channels), seed=21, dtype=np.float32) * np.float32(scale)
    check_numpy_door(x, 22, depth_radius=2, bias=bias, alpha=1.0, beta=beta, relu=False)


def test_every_window_and_stride_against_the_reference_including_sizes_beyond_the_image():
    """Windows and strides from 1 to far beyond the image (a SAME global pool, a stride that
    leaves one window), both paddings, in float64 against the reference. The kernels work on
    the smallest equivalent sizes (pooling.h); huge requested sizes once made them allocate by
    the window ("out of memory") or overflow into a wrongly shaped result."""
    rng = np.random.default_rng(1)
    checked = 0
    for rows, cols in [(1, 1), (2, 3), (5, 7), (6, 4)]:
        x = rng.standard_normal((1, rows, cols, 3))
        for kh, kw, sh, sw, padding in itertools.product([1, 2, 3, 6, 8, 2**40], [1, 3, 7, 2**62],
                                                         [1, 2, 5, 2**40], [1, 4, 2**62], ["VALID", "SAME"]):
            params = dict(depth_radius=1, ksize=(kh, kw), strides=(sh, sw), padding=padding)
            if padding == "VALID" and min(pooled_size(rows, kh, sh, padding), pooled_size(cols, kw, sw, padding)) < 0:
                with pytest.raises(ValueError, match="negative"):
                    anp.lrn_relu_max_pool(x, **params)
                continue
            pooled, ref_pooled = anp.lrn_relu_max_pool(x, **params), lrn_relu_max_pool_reference(x, **params)
            assert pooled.shape == ref_pooled.shape, params
            np.testing.assert_allclose(pooled, ref_pooled, rtol=1e-12, atol=1e-12, err_msg=str(params))
            dpooled = rng.standard_normal(pooled.shape)
            np.testing.assert_allclose(anp.lrn_relu_max_pool_grad(x, dpooled, **params),
                                       lrn_relu_max_pool_grad_reference(x, dpooled, **params), rtol=1e-10,
                                       atol=1e-12, err_msg=str(params))
            checked += pooled.size > 0
    assert checked > 1000  # most of them pool something
