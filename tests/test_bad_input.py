"""Bad input gets a clear error that names the argument, or a documented result; no crash."""

import numpy as np
import pytest
import tensorflow as tf

import alexops
from alexops.reference import lrn_relu_grad_reference, lrn_relu_reference
from helpers import random_input, run_fresh, value_and_gradient

raw_ops = alexops._loader.op_library()


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5, 6), ()])
def test_wrong_rank_is_rejected(shape):
    with pytest.raises(ValueError, match="x must be 4-D"):
        alexops.lrn_relu(tf.zeros(shape))


def test_wrong_rank_behind_unknown_shape_is_rejected_at_run_time():
    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def f(t):
        return alexops.lrn_relu(t)

    with pytest.raises(tf.errors.InvalidArgumentError, match="x must be 4-D"):
        f(tf.zeros([3, 4, 5]))


@pytest.mark.parametrize("dtype", [tf.int32, tf.int64, tf.uint8])
def test_integer_dtypes_are_rejected(dtype):
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64"):
        alexops.lrn_relu(tf.zeros([1, 2, 2, 3], dtype))


def _sparse_and_ragged(shape):
    dense = tf.ones(shape)
    return {"sparse": tf.sparse.from_dense(dense), "ragged": tf.RaggedTensor.from_tensor(dense)}


@pytest.mark.parametrize("kind", ["sparse", "ragged"])
def test_sparse_and_ragged_tensors_are_rejected_with_a_type_error(kind):
    bad = _sparse_and_ragged([1, 5, 5, 3])[kind]
    dense = tf.ones([1, 5, 5, 3])
    for call in (lambda: alexops.lrn_relu(bad), lambda: alexops.lrn_relu_max_pool(bad),
                 lambda: alexops.ops.lrn_relu_grad(bad, dense), lambda: alexops.ops.lrn_relu_max_pool_grad(bad, dense)):
        with pytest.raises(TypeError, match="x must be a dense tensor"):
            call()
    with pytest.raises(TypeError, match="dy must be a dense tensor"):
        alexops.ops.lrn_relu_grad(dense, bad)
    with pytest.raises(TypeError, match="dpooled must be a dense tensor"):
        alexops.ops.lrn_relu_max_pool_grad(dense, _sparse_and_ragged([1, 2, 2, 3])[kind])


def test_masked_arrays_are_refused_not_stripped_of_their_masks():
    """np.asarray and tf.convert_to_tensor drop a mask: the masked entries, whatever they hold,
    entered their neighbours' norms."""
    x = np.ma.masked_array(np.ones((1, 2, 2, 3), np.float32), mask=np.zeros((1, 2, 2, 3), bool))
    x[0, 0, 0, 1] = np.ma.masked
    dense = np.ones((1, 2, 2, 3), np.float32)
    pooled = np.ones((1, 1, 1, 3), np.float32)
    pool = dict(ksize=2, strides=2)
    for door in (alexops.numpy, alexops.ops):
        for call, what in ((lambda: door.lrn_relu(x), "x"), (lambda: door.lrn_relu_grad(x, dense), "x"),
                           (lambda: door.lrn_relu_grad(dense, x), "dy"),
                           (lambda: door.lrn_relu_max_pool(x, **pool), "x"),
                           (lambda: door.lrn_relu_max_pool_grad(x, pooled, **pool), "x"),
                           (lambda: door.lrn_relu_max_pool_grad(dense, x[:, :1, :1], **pool), "dpooled")):
            with pytest.raises(TypeError, match=f"{what} is a masked array.*filled"):
                call()
    # Its data, passed on purpose, is an ordinary array.
    np.testing.assert_array_equal(alexops.numpy.lrn_relu(x.data), alexops.numpy.lrn_relu(dense))


def test_negative_depth_radius_is_rejected():
    with pytest.raises(ValueError, match="depth_radius must be >= 0, got -1"):
        alexops.lrn_relu(tf.zeros([1, 2, 2, 3]), depth_radius=-1)
    # The raw op enforces it too.
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="depth_radius"):
        raw_ops.alex_ops_lrn_relu(tf.zeros([1, 2, 2, 3]), depth_radius=-1)


def test_x_and_dy_of_different_shapes_are_rejected():
    x, dy = tf.zeros([1, 2, 2, 3]), tf.zeros([1, 2, 2, 4])
    with pytest.raises(ValueError, match="x and dy must have the same shape"):
        alexops.ops.lrn_relu_grad(x, dy)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        raw_ops.alex_ops_lrn_relu_grad(x, dy)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)] * 2)
    def grad(a, b):
        return raw_ops.alex_ops_lrn_relu_grad(a, b)

    with pytest.raises(tf.errors.InvalidArgumentError, match="x and dy must have the same shape"):
        grad(x, dy)


@pytest.mark.parametrize("shape", [(0, 5, 5, 7), (2, 0, 5, 7), (2, 5, 5, 0)])
@pytest.mark.parametrize("dtype", [tf.float16, tf.float32, tf.float64])
def test_zero_size_tensors_give_empty_results(shape, dtype):
    x = tf.zeros(shape, dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = alexops.lrn_relu(x)
    dx = tape.gradient(y, x, output_gradients=tf.ones(shape, dtype))
    assert y.shape == shape and dx.shape == shape and y.dtype == dtype
    assert alexops._core.forward(np.zeros(shape)).shape == shape


def test_nan_and_inf_propagate_as_in_the_reference():
    x = random_input((1, 2, 2, 12), seed=31, dtype=np.float32)
    x[0, 0, 0, 3] = np.nan
    x[0, 1, 1, 8] = np.inf
    x[0, 1, 0, 5] = -np.inf  # ReLU makes it 0
    dy = random_input(x.shape, seed=32, dtype=np.float32)
    params = dict(depth_radius=2, bias=1.0, alpha=0.5, beta=0.75)
    y, dx = value_and_gradient(lambda t: alexops.lrn_relu(t, **params), x, dy)
    expected = lrn_relu_reference(x, **params)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(dx, lrn_relu_grad_reference(x, dy, **params), rtol=1e-4, atol=1e-5,
                               equal_nan=True)
    # The documented result: NaN spreads over its window; +Inf is NaN in place (Inf * 0).
    assert np.isnan(y[0, 0, 0, 1:6]).all()
    assert np.isnan(y[0, 1, 1, 8])
    assert np.isfinite(y[0, 1, 0]).all()


def test_import_does_not_load_tensorflow():
    code = "import sys, alexops; assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    run_fresh(code)


def test_version_mismatch_error_names_both_versions_and_the_fix(monkeypatch):
    from alexops import _loader

    monkeypatch.setattr(_loader.build_info(), "TF_VERSION", "2.9.0")
    _loader.op_library.cache_clear()
    try:
        with pytest.raises(ImportError) as info:
            _loader.op_library()
    finally:
        monkeypatch.undo()
        _loader.op_library.cache_clear()
    message = str(info.value)
    assert "2.9.0" in message and tf.__version__ in message and "pip install" in message
    _loader.op_library()  # loads again with the real build info


def test_version_comparison_is_numeric():
    from alexops._loader import _release

    assert _release("2.10.0") > _release("2.9.3")
    assert _release("2.21.0rc1") == (2, 21, 0)


@pytest.mark.parametrize("bad_relu", [None, 1, "no"])
def test_relu_must_be_a_bool(bad_relu):
    """relu=None would otherwise reach TensorFlow's op wrapper, which reads None as 'default'."""
    x = tf.zeros([1, 2, 2, 3])
    with pytest.raises(TypeError, match="relu must be a bool"):
        alexops.lrn_relu(x, relu=bad_relu)
    with pytest.raises(TypeError, match="relu must be a bool"):
        alexops.ops.lrn_relu_grad(x, x, relu=bad_relu)


@pytest.mark.parametrize("bad_radius", [True, 2.0, None])
def test_depth_radius_must_be_an_int(bad_radius):
    with pytest.raises(TypeError, match="depth_radius must be an int"):
        alexops.lrn_relu(tf.zeros([1, 2, 2, 3]), depth_radius=bad_radius)


def test_numpy_bool_relu_is_accepted():
    x = tf.constant(random_input((1, 2, 2, 5), seed=33, dtype=np.float32))
    np.testing.assert_array_equal(alexops.lrn_relu(x, relu=np.False_).numpy(), alexops.lrn_relu(x, relu=False).numpy())
