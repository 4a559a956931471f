"""The NumPy reference itself, against an independent per-element loop and known values."""
import numpy as np
import pytest

from alexops.reference import lrn_relu_grad_reference, lrn_relu_reference
from helpers import random_input


def naive_lrn(x, depth_radius, bias, alpha, beta, relu):
    x = np.maximum(x, 0) if relu else x
    y = np.empty_like(x)
    channels = x.shape[-1]
    for index in np.ndindex(x.shape[:-1]):
        for c in range(channels):
            window = x[index][max(0, c - depth_radius): c + depth_radius + 1]
            y[index + (c,)] = x[index + (c,)] / (bias + alpha * np.sum(window**2)) ** beta
    return y


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("depth_radius", [0, 1, 3, 10])
def test_reference_matches_naive_loop(depth_radius, relu):
    x = random_input((2, 2, 3, 7), seed=depth_radius)
    expected = naive_lrn(x, depth_radius, 1.3, 0.4, 0.6, relu)
    np.testing.assert_allclose(lrn_relu_reference(x, depth_radius, 1.3, 0.4, 0.6, relu), expected, rtol=1e-14)


def test_reference_known_value():
    x = np.zeros((1, 1, 1, 3))
    x[..., 1] = 2.0
    y = lrn_relu_reference(x, depth_radius=1, bias=1.0, alpha=1.0, beta=0.5)
    np.testing.assert_allclose(y[0, 0, 0], [0.0, 2.0 / np.sqrt(5.0), 0.0])


def test_reference_gradient_by_finite_differences():
    x = random_input((1, 2, 2, 6), seed=3, away_from_zero=True)
    dy = random_input(x.shape, seed=4)
    params = dict(depth_radius=2, bias=1.0, alpha=0.8, beta=0.75)
    grad = lrn_relu_grad_reference(x, dy, **params)
    step = 1e-6
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        numeric = np.sum(dy * (lrn_relu_reference(plus, **params) - lrn_relu_reference(minus, **params))) / (2 * step)
        assert abs(numeric - grad[index]) < 1e-7, index
