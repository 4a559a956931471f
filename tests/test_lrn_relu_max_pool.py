"""AlexNet's block in one op, alexops.lrn_relu_max_pool, through TensorFlow: the TF door against
the NumPy door and the float64 reference of the composite (max_pool2d(lrn(relu(x)))), against
stock TensorFlow, numerical gradients, ties, NaN, bad input, the Keras layer and saved models.
The kernels' own cases against the reference, without TF, are in tests/test_core_max_pool.py."""
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import alexops
import alexops.numpy as anp
from alexops.layers import LRNReLUMaxPool
from helpers import (ALEXNET, assert_close_to_reference, assert_saved_model_differentiates_in_a_fresh_process,
                     pool_reference, random_input, run_fresh, value_and_gradient)


def test_alexnet_shapes_and_the_tf_door_agree_with_the_numpy_door():
    for shape in ((2, 55, 55, 64), (2, 27, 27, 192)):
        x = random_input(shape, seed=shape[-1], dtype=np.float32)
        pooled = anp.lrn_relu_max_pool(x, **ALEXNET)
        dpooled = random_input(pooled.shape, seed=1, dtype=np.float32)
        y, dx = fused_block(x, dpooled, **ALEXNET)
        np.testing.assert_array_equal(y, pooled)
        np.testing.assert_array_equal(dx, anp.lrn_relu_max_pool_grad(x, dpooled, **ALEXNET))
        ref_pooled, ref_dx = pool_reference(x, dpooled, np.float32, **ALEXNET)
        assert_close_to_reference(pooled, ref_pooled, np.float32)
        assert_close_to_reference(dx, ref_dx, np.float32, backward=True)


def stock_block(x, dpooled, relu=True, ksize=3, strides=2, padding="VALID", **lrn):
    return value_and_gradient(
        lambda t: tf.nn.max_pool2d(tf.nn.lrn(tf.nn.relu(t) if relu else t, **lrn), ksize, strides, padding), x, dpooled)


def fused_block(x, dpooled, **params):
    return value_and_gradient(lambda t: alexops.lrn_relu_max_pool(t, **params), x, dpooled)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("ksize, strides, padding", [(3, 2, "VALID"), (3, 2, "SAME"), (2, 1, "SAME"), ((3, 2), (1, 2), "VALID")])
def test_matches_stock_tensorflow(ksize, strides, padding, dtype):
    params = dict(ALEXNET, alpha=0.01, ksize=ksize, strides=strides, padding=padding)
    x = random_input((2, 11, 9, 16), seed=3, dtype=dtype)
    ours = alexops.lrn_relu_max_pool(x, **params).numpy()
    dpooled = random_input(ours.shape, seed=4, dtype=dtype)
    ours_pooled, ours_dx = fused_block(x, dpooled, **params)
    stock_pooled, stock_dx = stock_block(x, dpooled, **params)
    if dtype == np.float16:
        # Stock's half LRN rounds differently from ours, so a near-tie in a window may route
        # the gradient to another pixel: the float64 reference judges the half gradient
        # (test_every_dtype_and_power); here the pooled values.
        np.testing.assert_allclose(ours_pooled.astype(np.float64), stock_pooled.astype(np.float64), rtol=4e-3,
                                   atol=4e-3)
        return
    np.testing.assert_allclose(ours_pooled, stock_pooled, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_dx, stock_dx, rtol=1e-4, atol=1e-5 * np.abs(stock_dx).max())


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_numerical_gradient_in_float64(padding, relu):
    """Away from ties: distinct values, with a margin between neighbours."""
    rng = np.random.default_rng(9)
    x = rng.permutation(np.linspace(0.2, 2.0, 2 * 5 * 5 * 6)).reshape(2, 5, 5, 6) * rng.choice([-1, 1], (2, 5, 5, 6))
    if relu:
        x = np.abs(x)
    params = dict(depth_radius=1, bias=1.0, alpha=0.1, beta=0.75, relu=relu, ksize=3, strides=2, padding=padding)
    theoretical, numerical = tf.test.compute_gradient(lambda t: alexops.lrn_relu_max_pool(t, **params),
                                                      [tf.constant(x)], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("door", ["numpy", "tf"])
def test_ties_go_to_the_first_maximum_in_row_major_order(door):
    """A window of equal values sends its gradient to its top-left member (TensorFlow's rule)."""
    x = np.ones((1, 5, 5, 4), np.float32)  # relu off, bias 1: every y equal
    params = dict(depth_radius=1, bias=1.0, alpha=0.5, beta=0.75, relu=False, ksize=3, strides=2, padding="VALID")
    dpooled = np.ones((1, 2, 2, 4), np.float32)
    if door == "numpy":
        dx = anp.lrn_relu_max_pool_grad(x, dpooled, **params)
    else:
        dx = fused_block(x, dpooled, **params)[1]
    routed = dx[0, :, :, 0] != 0
    expected = np.zeros((5, 5), bool)
    expected[[0, 0, 2, 2], [0, 2, 0, 2]] = True  # the windows' top-left corners
    np.testing.assert_array_equal(routed, expected)
    stock_dx = stock_block(x, dpooled, **params)[1]
    np.testing.assert_array_equal(dx != 0, stock_dx != 0)  # routed where stock routes it
    # The values against the float64 composite: dx is here a difference of terms 10x its size,
    # so float32 computed in another order (stock's, which differs with oneDNN on or off) can
    # differ from it by more than 1e-6 of itself.
    assert_close_to_reference(dx, pool_reference(x, dpooled, np.float32, **params)[1], np.float32, backward=True)


@pytest.mark.parametrize("door", ["numpy", "tf"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_the_gradient_goes_where_tensorflows_cpu_max_pool_gradient_sends_it(door, dtype):
    """TensorFlow's CPU max-pool gradient takes a window's first element whatever its value,
    and moves on only to a later one strictly greater. So a NaN in a window's first place
    keeps the gradient (the forward's max skips it), a later NaN never takes it, and a window
    of nothing but NaN, or of nothing but the dtype's lowest value, sends it to its first
    element. The oracle is the composite with our LRN, alexops.lrn_relu then tf.nn.max_pool2d
    (stock's LRN does its own NaN arithmetic: see the README). With relu off, one channel,
    R = 0, alpha = 0 and beta = 0, y = x exactly."""
    lowest = np.finfo(dtype).min
    windows = {  # 3x3 windows, row-major
        "NaN first": [np.nan, 5, 7, 1, 2, 3, 4, 0, 6],
        "NaN in the middle": [3, 1, 7, 1, np.nan, 3, 4, 0, 6],
        "all NaN": [np.nan] * 9,
        "NaN, then the lowest": [np.nan] + [lowest] * 8,
        "all the lowest": [lowest] * 9,
    }
    x = np.stack([np.array(w, dtype).reshape(3, 3, 1) for w in windows.values()])
    lrn = dict(depth_radius=0, bias=1.0, alpha=0.0, beta=0.0, relu=False)
    pool = dict(ksize=3, strides=2, padding="VALID")
    dpooled = np.full((len(windows), 1, 1, 1), 2, dtype)
    if door == "numpy":
        pooled, dx = anp.lrn_relu_max_pool(x, **lrn, **pool), anp.lrn_relu_max_pool_grad(x, dpooled, **lrn, **pool)
    else:
        pooled, dx = fused_block(x, dpooled, **lrn, **pool)
    pair_pooled, pair_dx = value_and_gradient(
        lambda t: tf.nn.max_pool2d(alexops.lrn_relu(t, **lrn), pool["ksize"], pool["strides"], pool["padding"]),
        x, dpooled)
    np.testing.assert_array_equal(pooled.ravel(), [7, 7, lowest, lowest, lowest])
    # (Windows of nothing above the lowest value: tf.nn.max_pool2d gives the lowest value, as
    # we do, except through oneDNN in the 16-bit types, -inf; see the README.)
    np.testing.assert_array_equal(pair_pooled[:2], pooled[:2])
    for i, name in enumerate(windows):
        np.testing.assert_array_equal(dx[i].ravel(), pair_dx[i].ravel(), err_msg=name)
    # Spelled out: 2 where a number took the gradient; NaN where a NaN did (its LRN's
    # gradient), and at a NaN input (whose LRN's gradient is NaN whatever its dy).
    first, middle, _, nan_then_lowest, all_lowest = (dx[i].ravel() for i in range(len(windows)))
    assert np.isnan(first[0]) and not first[1:].any()
    assert middle[2] == 2 and np.isnan(middle[4]) and np.count_nonzero(np.delete(middle, [2, 4])) == 0
    assert np.isnan(nan_then_lowest[0]) and not nan_then_lowest[1:].any()
    assert all_lowest[0] == 2 and not all_lowest[1:].any()
    _, ref_dx = pool_reference(x, dpooled, dtype, **lrn, **pool)
    np.testing.assert_array_equal(dx, ref_dx.astype(dtype))


def test_nan_and_inf_follow_the_composite():
    """LRN spreads a NaN over its channel window (as the formula has it; stock TensorFlow's CPU
    LRN spreads it over the whole pixel, its band-matrix product multiplying NaN by 0); the
    max-pool skips NaN, as tf.nn.max_pool2d does on a CPU; +Inf is NaN in its own channel and
    0 in its neighbours."""
    x = random_input((1, 7, 7, 8), seed=11, dtype=np.float32)
    x[0, 1, 1, 2] = np.nan
    x[0, 4, 4, 5] = np.inf
    x[0, 5, 2, :] = np.nan  # a whole pixel of NaN
    params = dict(depth_radius=1, bias=1.0, alpha=0.5, beta=0.75, ksize=3, strides=2, padding="VALID")
    pooled = anp.lrn_relu_max_pool(x, **params)
    dpooled = random_input(pooled.shape, seed=12, dtype=np.float32)
    ref_pooled, ref_dx = pool_reference(x, dpooled, np.float32, **params)
    assert_close_to_reference(pooled, ref_pooled, np.float32)
    assert_close_to_reference(anp.lrn_relu_max_pool_grad(x, dpooled, **params), ref_dx, np.float32, backward=True)
    assert np.isfinite(pooled).all()  # every window has a value that is not NaN
    # A window of nothing but NaN: the dtype's lowest value, as tf.nn.max_pool2d gives.
    all_nan = np.full((1, 3, 3, 2), np.nan, np.float32)
    np.testing.assert_array_equal(anp.lrn_relu_max_pool(all_nan), tf.nn.max_pool2d(all_nan, 3, 2, "VALID").numpy())


# ---- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(ksize=0), ValueError, "ksize must be >= 1"),
    (dict(ksize=2**63, padding="SAME"), ValueError, r"ksize must be < 2\*\*63"),
    (dict(strides=(1, 2**64)), ValueError, r"strides must be < 2\*\*63"),
    (dict(strides=(1, 0)), ValueError, "strides must be >= 1"),
    (dict(ksize=(3, 3, 3)), TypeError, "ksize must be an int or a pair"),
    (dict(ksize=[1, 3, 3, 2]), ValueError, "batch or depth"),
    (dict(strides=[2, 2, 2, 1]), ValueError, "batch or depth"),
    (dict(strides=[1, 0, 2, 1]), ValueError, "strides must be >= 1"),
    (dict(ksize=2.5), TypeError, "ksize"),
    (dict(padding="valid"), ValueError, "padding must be 'VALID' or 'SAME'"),
    (dict(depth_radius=-1), ValueError, "depth_radius"),
])
@pytest.mark.parametrize("door", ["numpy", "tf"])
def test_bad_arguments(door, kwargs, error, match):
    x = np.zeros((1, 5, 5, 3), np.float32)
    with pytest.raises(error, match=match):
        if door == "numpy":
            anp.lrn_relu_max_pool(x, **kwargs)
        else:
            alexops.lrn_relu_max_pool(x, **kwargs)


@pytest.mark.parametrize("ksize, strides, pair", [([1, 3, 3, 1], [1, 2, 2, 1], (3, 2)), ([3], [2], (3, 2)),
                                                  ((1, 2, 3, 1), (1, 1, 2, 1), ((2, 3), (1, 2)))])
def test_tf_style_window_lists(ksize, strides, pair):
    """ksize and strides as tf.nn.max_pool2d also takes them (the write-up's code passes
    [1, 3, 3, 1] and [1, 2, 2, 1]): the same result as the ints, and as the composite."""
    x = random_input((2, 9, 8, 5), seed=21, dtype=np.float32)
    params = dict(depth_radius=2, alpha=0.1, beta=0.75)
    same = anp.lrn_relu_max_pool(x, ksize=pair[0], strides=pair[1], **params)
    np.testing.assert_array_equal(anp.lrn_relu_max_pool(x, ksize=ksize, strides=strides, **params), same)
    pooled = alexops.lrn_relu_max_pool(x, ksize=ksize, strides=strides, **params).numpy()
    np.testing.assert_array_equal(pooled, same)
    composite = tf.nn.max_pool2d(tf.nn.lrn(tf.nn.relu(x), **params), ksize, strides, "VALID").numpy()
    np.testing.assert_allclose(pooled, composite, rtol=1e-5, atol=1e-6)
    layer = LRNReLUMaxPool(ksize=ksize, strides=strides, **params)
    np.testing.assert_array_equal(layer(x).numpy(), same)
    assert layer.get_config()["ksize"] == list(pair[0] if isinstance(pair[0], tuple) else (pair[0],) * 2)


def test_wrong_rank_is_rejected_at_build_and_run_time():
    with pytest.raises(ValueError, match="4-D"):
        alexops.lrn_relu_max_pool(tf.zeros([5, 5, 3]))
    with pytest.raises(ValueError, match="4-D"):
        anp.lrn_relu_max_pool(np.zeros((5, 5, 3), np.float32))

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def f(t):
        return alexops.lrn_relu_max_pool(t)

    with pytest.raises(tf.errors.InvalidArgumentError, match="x must be 4-D"):
        f(tf.zeros([5, 5, 3]))


def test_negative_output_size_is_an_error():
    """VALID with an image shorter than the window by more than a stride, as tf.nn.max_pool2d."""
    x = np.zeros((1, 1, 1, 3), np.float32)
    with pytest.raises(ValueError, match="negative"):
        anp.lrn_relu_max_pool(x, ksize=5, strides=2)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="negative"):
        alexops.lrn_relu_max_pool(tf.constant(x), ksize=5, strides=2)


def test_a_global_pool_through_tf_matches_stock():
    """The largest window TF's attributes allow (int32), beside tf.nn.max_pool2d's composite."""
    params = dict(ALEXNET, alpha=0.01, ksize=2**31 - 1, strides=1, padding="SAME")
    x = random_input((2, 6, 5, 16), seed=7, dtype=np.float32)
    dpooled = random_input((2, 6, 5, 16), seed=8, dtype=np.float32)
    ours_pooled, ours_dx = fused_block(x, dpooled, **params)
    # The composite with a window just wide enough to cover the whole image from every output
    # (2 * size - 1, SAME, stride 1): the same result. TF's oneDNN max-pool (on by default on
    # Intel CPUs with AVX-512) cannot create a primitive for a window of 2^31 - 1, and a
    # failed primitive there broke later oneDNN convolutions in the same process.
    stock_pooled, stock_dx = stock_block(x, dpooled, **dict(params, ksize=(2 * 6 - 1, 2 * 5 - 1)))
    np.testing.assert_allclose(ours_pooled, stock_pooled, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_dx, stock_dx, rtol=1e-4, atol=1e-5 * np.abs(stock_dx).max())


def test_dpooled_of_the_wrong_shape_is_rejected_at_build_and_run_time():
    x = tf.zeros([1, 7, 7, 3])
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        alexops.ops.lrn_relu_max_pool_grad(x, tf.zeros([1, 2, 2, 3]))  # the pooled shape is [1, 3, 3, 3]
    with pytest.raises(ValueError, match="dpooled must have the pooled output's shape"):
        anp.lrn_relu_max_pool_grad(np.zeros((1, 7, 7, 3), np.float32), np.zeros((1, 2, 2, 3), np.float32))

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)] * 2)
    def grad(a, b):
        return alexops.ops.lrn_relu_max_pool_grad(a, b)

    with pytest.raises(tf.errors.InvalidArgumentError, match="dpooled must have the pooled shape"):
        grad(x, tf.zeros([1, 2, 2, 3]))


def test_out_that_overlaps_x_goes_through_a_temporary():
    x = random_input((1, 7, 7, 8), seed=13, dtype=np.float32)
    dpooled = random_input((1, 3, 3, 8), seed=14, dtype=np.float32)
    expected = anp.lrn_relu_max_pool_grad(x, dpooled)
    into_x = x.copy()
    assert anp.lrn_relu_max_pool_grad(into_x, dpooled, out=into_x) is into_x
    np.testing.assert_array_equal(into_x, expected)


# ---- Keras, SavedModel, AlexNet -----------------------------------------------------------

def block_model():
    inputs = keras.Input((9, 9, 8))
    hidden = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    outputs = LRNReLUMaxPool(name="block", **ALEXNET)(hidden)
    return keras.Model(inputs, outputs)


def test_layer_config_round_trips_and_validates():
    layer = LRNReLUMaxPool(depth_radius=3, bias=2.0, alpha=0.1, beta=0.6, relu=False, ksize=(3, 2), strides=1,
                           padding="SAME", name="b")
    clone = LRNReLUMaxPool.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.compute_output_shape((None, 9, 8, 4)) == (None, 9, 8, 4)
    with pytest.raises(ValueError):
        LRNReLUMaxPool(ksize=0)
    with pytest.raises(ValueError):
        LRNReLUMaxPool(padding="FULL")
    # Padding in any case, as Keras's own pooling layers take it; kept as TensorFlow names it.
    lower = LRNReLUMaxPool(padding="same")
    assert lower.padding == "SAME" and lower.get_config()["padding"] == "SAME"
    x = random_input((1, 6, 5, 3), seed=22, dtype=np.float32)
    np.testing.assert_array_equal(lower(x).numpy(), LRNReLUMaxPool(padding="SAME")(x).numpy())


@pytest.mark.parametrize("ksize, strides, padding", [(3, 2, "VALID"), (3, 2, "SAME"), ((5, 2), (1, 3), "VALID"),
                                                     (7, 2**31 - 1, "VALID"), (2**31 - 1, 1, "SAME")])
def test_layer_output_shape_is_the_ops(ksize, strides, padding):
    layer = LRNReLUMaxPool(ksize=ksize, strides=strides, padding=padding)
    x = np.zeros((2, 9, 7, 4), np.float32)
    assert layer.compute_output_shape((None, 9, 7, 4)) == (None,) + layer(x).shape[1:]
    assert layer.compute_output_shape((None, None, 7, 4))[1] is None


def test_layer_trains_and_round_trips_through_a_keras_file(tmp_path):
    model = block_model()
    x = random_input((2, 9, 9, 8), seed=15, dtype=np.float32)
    assert model(x).shape == (2, 4, 4, 8)
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, np.zeros((2, 4, 4, 8), np.float32), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model(x).numpy())
    script = textwrap.dedent(f"""
        import numpy as np
        import keras, alexops
        model = keras.models.load_model({str(tmp_path / 'm.keras')!r})
        np.testing.assert_allclose(model(np.load({str(tmp_path / 'x.npy')!r})).numpy(),
                                   np.load({str(tmp_path / 'y.npy')!r}), rtol=1e-6)
    """)
    run_fresh(script)


def test_saved_model_reloads_and_differentiates_in_a_fresh_process(tmp_path):
    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 9, 9, 6], tf.float32)])
        def __call__(self, x):
            return alexops.lrn_relu_max_pool(x, depth_radius=2, alpha=0.5, beta=0.75, padding="SAME")

    x = random_input((2, 9, 9, 6), seed=16, dtype=np.float32)
    assert_saved_model_differentiates_in_a_fresh_process(Module(), x, tmp_path)


def test_alexnet_fused_pool_agrees_with_stock_and_fused():
    """Gradients against stock's on the alexops routes (as tests/test_alexnet.py explains: at a
    near tie, stock's own may route a window's gradient to another pixel)."""
    from alexops import alexnet

    model = alexnet.AlexNet(init="he")
    images = tf.constant(random_input([2, 99, 99, 3], seed=1, dtype=np.float32))
    results = {}
    for lrn in alexnet.VARIANTS + (alexnet.STOCK_ROUTED_LIKE_ALEXOPS,):
        with tf.GradientTape() as tape:
            out = model(images, lrn=lrn)
            loss = tf.nn.l2_loss(out)
        results[lrn] = out.numpy(), [g.numpy() for g in tape.gradient(loss, model.variables_list)]
    stock_out = results["stock"][0]
    routed_grads = results[alexnet.STOCK_ROUTED_LIKE_ALEXOPS][1]
    for lrn in ("fused", "fused_pool"):
        out, grads = results[lrn]
        np.testing.assert_allclose(out, stock_out, rtol=1e-4, atol=1e-5 * np.abs(stock_out).max())
        for g, expected in zip(grads, routed_grads):
            np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_array_equal(results["fused_pool"][0], results["fused"][0])
