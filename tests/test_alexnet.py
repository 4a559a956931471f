"""AlexNet with stock and fused LRN: shapes, shared weights, same outputs and gradients."""
import numpy as np
import pytest
import tensorflow as tf

from alexops import alexnet
from helpers import random_input


@pytest.fixture(scope="module")
def small_images():
    # NumPy's: a seeded TensorFlow random op in eager mode gives what the ops run before it decide.
    return tf.constant(random_input([2, 99, 99, 3], seed=1, dtype=np.float32))


def test_pool5_shape_at_full_size():
    model = alexnet.AlexNet()
    out = model(tf.zeros([1, 224, 224, 3]), lrn="stock")
    assert out.shape == (1, 6, 6, 256)


def test_a_seed_gives_the_same_weights_whatever_ran_before_and_in_every_dtype():
    """AlexNet(seed=0) drew its weights with seeded tf.random ops, whose values in eager mode
    depend on the random ops run before them: two such models in one process differed."""
    first = alexnet.AlexNet(include_classifier=True, seed=0)
    tf.random.normal([7])  # any random op between the two
    again = alexnet.AlexNet(include_classifier=True, seed=0)
    other = alexnet.AlexNet(include_classifier=True, seed=1)
    halves = alexnet.AlexNet(include_classifier=True, seed=0, dtype="float16")
    for name, weight in first.weights.items():
        np.testing.assert_array_equal(again.weights[name].numpy(), weight.numpy(), err_msg=name)
        np.testing.assert_array_equal(halves.weights[name].numpy(), weight.numpy().astype(np.float16), err_msg=name)
        if name.endswith("/w"):
            assert not np.array_equal(other.weights[name].numpy(), weight.numpy()), name
    # Each layer its own draw, not one shared stream cut up.
    assert not np.array_equal(first.weights["conv4/w"].numpy()[:, :, :256], first.weights["conv5/w"].numpy())


def test_a_bad_seed_dtype_or_dropout_rate_is_refused_when_the_model_is_made():
    """Each used to pass the constructor (or fail in it with TensorFlow's conversion message),
    to fail later inside a convolution, a random op or (dropout_rate) a training call."""
    for seed, error in ((1.5, TypeError), (None, TypeError), ("3", TypeError), (True, TypeError), (2**70, ValueError)):
        with pytest.raises(error, match="seed must be"):
            alexnet.AlexNet(seed=seed)
    for dtype in ("int32", "complex64"):
        with pytest.raises(TypeError, match=f"dtype must be float16, bfloat16, float32 or float64, got {dtype}"):
            alexnet.AlexNet(dtype=dtype)
    for rate, error in ((1.0, ValueError), (-0.1, ValueError), (float("nan"), ValueError), (None, TypeError),
                        ("0.5", TypeError), (True, TypeError)):
        with pytest.raises(error, match="dropout_rate must be"):
            alexnet.AlexNet(include_classifier=True, dropout_rate=rate)
    alexnet.AlexNet(seed=-1, dropout_rate=0)  # any int64 will do, and any rate in [0, 1)
    alexnet.AlexNet(seed=np.int64(2**40))


@pytest.mark.parametrize("include_classifier", [False, True])
def test_fused_and_stock_agree_with_shared_weights(small_images, include_classifier):
    """Outputs against stock's; gradients against stock's taken on fused's pooling routes
    (STOCK_ROUTED_LIKE_ALEXOPS): against stock's own, a near tie that the two LRNs round
    differently routes a window's gradient to another pixel, which in one image of 1x224x224
    moved conv1's weight gradient by 0.33 where its largest is 53 (the images depended on the
    random ops run before this test)."""
    model = alexnet.AlexNet(include_classifier=include_classifier, init="he")
    if include_classifier:  # fc6 expects pool5 of a 224x224 input
        images = tf.constant(random_input([1, 224, 224, 3], seed=2, dtype=np.float32))
    else:
        images = small_images
    results = {}
    for lrn in ("stock", "fused", alexnet.STOCK_ROUTED_LIKE_ALEXOPS):
        with tf.GradientTape() as tape:
            out = model(images, lrn=lrn)
            loss = tf.nn.l2_loss(out)
        results[lrn] = (out, tape.gradient(loss, model.variables_list))
    out_stock, _ = results["stock"]
    out_fused, grads_fused = results["fused"]
    out_routed, grads_routed = results[alexnet.STOCK_ROUTED_LIKE_ALEXOPS]
    assert out_stock.shape == out_fused.shape
    np.testing.assert_allclose(out_fused.numpy(), out_stock.numpy(), rtol=1e-4,
                               atol=1e-5 * np.abs(out_stock.numpy()).max())
    np.testing.assert_array_equal(out_routed.numpy(), out_fused.numpy())  # the same values, so the same routes
    assert len(grads_fused) == len(model.variables_list) == (16 if include_classifier else 10)
    for g_fused, g_routed in zip(grads_fused, grads_routed):
        scale = np.abs(g_routed.numpy()).max()
        assert scale > 0
        np.testing.assert_allclose(g_fused.numpy(), g_routed.numpy(), rtol=1e-4, atol=1e-5 * scale)


def test_lrn_variant_is_validated(small_images):
    with pytest.raises(ValueError, match="lrn must be"):
        alexnet.AlexNet()(small_images, lrn="other")


def test_writeup_init_activations_grow(small_images):
    summary = alexnet.activation_summary(alexnet.AlexNet(init="writeup"), small_images)
    assert summary["pool5"] > 10 * summary["conv1"]


def test_images_too_small_for_pool5_are_refused_before_tensorflow_crashes():
    """TensorFlow's CPU max-pool kills the process (SIGFPE) on a 1x1 input under a 3x3 VALID
    window, which is what pool5 got from 32x32 images; 57 is the least side that fits."""
    assert alexnet.MIN_IMAGE_SIZE == 57 and alexnet._conv5_size(57) == 3 and alexnet._conv5_size(56) == 2
    model = alexnet.AlexNet()
    for lrn in alexnet.VARIANTS:
        with pytest.raises(ValueError, match="at least 57x57"):
            model(tf.zeros([1, 32, 56, 3]), lrn=lrn)
        assert model(tf.zeros([1, 57, 60, 3]), lrn=lrn).shape == (1, 1, 1, 256)
    with pytest.raises(ValueError, match=r"NHWC images"):
        model(tf.zeros([224, 224, 3]))
    unknown_sides = tf.function(lambda images: model(images, lrn="stock"),
                                input_signature=[tf.TensorSpec([None, None, None, 3])])
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 57x57"):
        unknown_sides(tf.zeros([1, 32, 32, 3]))
    assert unknown_sides(tf.zeros([1, 64, 64, 3])).shape == (1, 1, 1, 256)


def test_classifier_refuses_images_whose_pool5_is_not_6x6_instead_of_merging_the_batch():
    """With pool5 reshaped to [-1, 9216], nine 99x99 images (pool5 2x2x256 each) made one row."""
    assert alexnet.CLASSIFIER_IMAGE_SIZES == list(range(217, 249))
    model = alexnet.AlexNet(include_classifier=True)
    with pytest.raises(ValueError, match="217 to 248"):
        model(tf.zeros([9, 99, 99, 3]))
    unknown_sides = tf.function(model, input_signature=[tf.TensorSpec([None, None, None, 3])])
    with pytest.raises(tf.errors.InvalidArgumentError, match="size-incompatible"):
        unknown_sides(tf.zeros([9, 99, 99, 3]))
    assert unknown_sides(tf.zeros([2, 217, 248, 3])).shape == (2, 1000)
