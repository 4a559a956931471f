"""NumPy float64 reference: the truth the kernels and the harness are checked against.

Written for clarity, not speed: each window is summed directly (no prefix sums), in float64.
"""
import numpy as np


def _window_sums(values, depth_radius):
    """out[..., c] = sum(values[..., j] for |j - c| <= depth_radius), clipped at the edges."""
    channels = values.shape[-1]
    out = np.empty_like(values)
    for c in range(channels):
        lo, hi = max(0, c - depth_radius), min(channels, c + depth_radius + 1)
        out[..., c] = values[..., lo:hi].sum(axis=-1)
    return out


def _relu(x, relu):
    return np.where(x < 0, 0.0, x) if relu else x  # NaN passes through, as in tf.nn.relu


def lrn_relu_reference(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True):
    """y = tf.nn.lrn(tf.nn.relu(x)) over the last axis, in float64."""
    r = _relu(np.asarray(x, dtype=np.float64), relu)
    norm = bias + alpha * _window_sums(r * r, depth_radius)
    with np.errstate(all="ignore"):
        return r * norm ** -beta


def lrn_relu_grad_reference(x, dy, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True):
    """dL/dx given dy = dL/dy, in float64 (formula of LRN_MATH.md)."""
    r = _relu(np.asarray(x, dtype=np.float64), relu)
    g = np.asarray(dy, dtype=np.float64)
    norm = bias + alpha * _window_sums(r * r, depth_radius)
    with np.errstate(all="ignore"):
        scale = norm ** -beta
        t = g * r * scale / norm
        d_r = g * scale - 2.0 * alpha * beta * r * _window_sums(t, depth_radius)
        return np.where(r > 0, d_r, 0.0) if relu else d_r
