"""Numerical gradients of the TensorFlow op, in float64."""
import numpy as np
import pytest
import tensorflow as tf

import alexops
from helpers import random_input

CASES = [
    ((1, 2, 2, 7), dict(depth_radius=2, bias=1.0, alpha=0.5, beta=0.75)),
    ((2, 1, 2, 5), dict(depth_radius=0, bias=2.0, alpha=1.0, beta=0.5)),
    ((1, 2, 1, 4), dict(depth_radius=6, bias=1.0, alpha=0.3, beta=1.0)),
    ((1, 1, 3, 9), dict(depth_radius=3, bias=1.5, alpha=0.25, beta=0.3)),
    ((1, 1, 1, 1), dict(depth_radius=1, bias=1.0, alpha=2.0, beta=2.0)),
    ((2, 2, 2, 12), dict(depth_radius=4, bias=1.0, alpha=0.001 / 9, beta=0.75)),
]


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("shape, params", CASES)
def test_numerical_gradient(shape, params, relu):
    # |x| >= 0.1 keeps the finite differences away from the ReLU kink at 0.
    x = random_input(shape, seed=sum(shape), away_from_zero=True)
    x.flat[0] = abs(x.flat[0])  # at least one element passes the ReLU
    x = tf.constant(x)
    theoretical, numerical = tf.test.compute_gradient(
        lambda t: alexops.lrn_relu(t, relu=relu, **params), [x], delta=1e-6)
    assert theoretical[0].shape == numerical[0].shape == (x.shape.num_elements(),) * 2
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-7, rtol=1e-6)
    # The Jacobian is not trivially zero: the test can fail.
    assert np.abs(theoretical[0]).max() > 1e-3


def test_gradient_is_zero_where_relu_clips():
    x = tf.constant([[[[-1.0, 0.0, 2.0, -3.0]]]], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = alexops.lrn_relu(x, depth_radius=1)
    dx = tape.gradient(y, x).numpy().ravel()
    assert dx[0] == 0.0 and dx[1] == 0.0 and dx[3] == 0.0 and dx[2] != 0.0


@pytest.mark.parametrize("op", ["lrn_relu", "lrn_relu_max_pool"])
def test_second_derivatives_are_refused_as_for_tf_nn_lrn(op):
    """As the README says: no gradient of the gradient op, a LookupError naming it (stock
    tf.nn.lrn's LRNGrad has none either), never a silent zero."""
    x = tf.constant(random_input((1, 4, 4, 5), seed=9))
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            loss = tf.reduce_sum(getattr(alexops, op)(x) ** 2)
        first = tf.reduce_sum(inner.gradient(loss, x))
    with pytest.raises(LookupError, match="AlexOps>LrnRelu"):
        outer.gradient(first, x)
