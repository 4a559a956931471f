"""AlexNet with stock and fused LRN: shapes, shared weights, same outputs and gradients."""
import numpy as np
import pytest
import tensorflow as tf

from alexops import alexnet


@pytest.fixture(scope="module")
def small_images():
    return tf.random.normal([2, 99, 99, 3], seed=1)


def test_pool5_shape_at_full_size():
    model = alexnet.AlexNet()
    out = model(tf.zeros([1, 224, 224, 3]), lrn="stock")
    assert out.shape == (1, 6, 6, 256)


@pytest.mark.parametrize("include_classifier", [False, True])
def test_fused_and_stock_agree_with_shared_weights(small_images, include_classifier):
    model = alexnet.AlexNet(include_classifier=include_classifier, init="he") if not include_classifier else None
    if include_classifier:
        # fc6 expects pool5 of a 224x224 input.
        model = alexnet.AlexNet(include_classifier=True, init="he")
        images = tf.random.normal([1, 224, 224, 3], seed=2)
    else:
        images = small_images
    results = {}
    for lrn in ("stock", "fused"):
        with tf.GradientTape() as tape:
            out = model(images, lrn=lrn)
            loss = tf.nn.l2_loss(out)
        results[lrn] = (out, tape.gradient(loss, model.variables_list))
    out_stock, grads_stock = results["stock"]
    out_fused, grads_fused = results["fused"]
    assert out_stock.shape == out_fused.shape
    np.testing.assert_allclose(out_fused.numpy(), out_stock.numpy(), rtol=1e-4,
                               atol=1e-5 * np.abs(out_stock.numpy()).max())
    assert len(grads_stock) == len(model.variables_list) == (16 if include_classifier else 10)
    for g_fused, g_stock in zip(grads_fused, grads_stock):
        scale = np.abs(g_stock.numpy()).max()
        assert scale > 0
        np.testing.assert_allclose(g_fused.numpy(), g_stock.numpy(), rtol=1e-3, atol=1e-4 * scale)


def test_lrn_variant_is_validated(small_images):
    with pytest.raises(ValueError, match="lrn must be"):
        alexnet.AlexNet()(small_images, lrn="other")


def test_writeup_init_activations_grow(small_images):
    summary = alexnet.activation_summary(alexnet.AlexNet(init="writeup"), small_images)
    assert summary["pool5"] > 10 * summary["conv1"]
