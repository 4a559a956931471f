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


# ---- ReLU + LRN + max-pool --------------------------------------------------------------

def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def pooled_size(size, window, stride, padding):
    """TensorFlow's max-pool output size along one axis, in exact integers: SAME ceil(size /
    stride); VALID (size - window + stride) / stride with C's truncation, negative where
    TensorFlow refuses the shape."""
    if padding == "SAME":
        return -(-size // stride)
    numerator = size - window + stride
    return numerator // stride if numerator >= 0 else -(-numerator // stride)


def pool_windows(rows, cols, ksize=3, strides=2, padding="VALID"):
    """[(oh, ow, row slice, col slice)] of TensorFlow's max-pool windows, clipped to the image
    (padding takes no part in the max)."""
    (kh, kw), (sh, sw) = _pair(ksize), _pair(strides)
    sizes = []
    for size, k, s in ((rows, kh, sh), (cols, kw, sw)):
        out = pooled_size(size, k, s, padding)
        sizes.append((out, max(0, (out - 1) * s + k - size) // 2 if padding == "SAME" else 0))
    (out_rows, top), (out_cols, left) = sizes
    return out_rows, out_cols, [
        (oh, ow, slice(max(0, oh * sh - top), min(rows, oh * sh - top + kh)),
         slice(max(0, ow * sw - left), min(cols, ow * sw - left + kw)))
        for oh in range(out_rows) for ow in range(out_cols)]


def _lowest(dtype):
    """The dtype's lowest finite value: where TensorFlow's max-pool starts."""
    try:
        return float(np.finfo(dtype).min)
    except ValueError:  # bfloat16 (ml_dtypes) is not one of NumPy's own
        import ml_dtypes

        return float(ml_dtypes.finfo(dtype).min)


def _window_max(window, lowest):
    """The max over axis 1 of [n, k, c] as tf.nn.max_pool2d computes it on a CPU: starting from
    `lowest`, NaN skipped (never greater); a window of nothing but NaN gives `lowest`."""
    best = np.full((window.shape[0], window.shape[2]), lowest)
    for i in range(window.shape[1]):
        with np.errstate(invalid="ignore"):
            best = np.where(window[:, i] > best, window[:, i], best)
    return best


def _gradient_place(window):
    """The index over axis 1 of [n, k, c] that TensorFlow's CPU max-pool gradient sends a
    window's gradient to: the window's first element whatever its value, replaced by each
    later one strictly greater than the current. So ties go to the first; a NaN in the first
    place keeps the gradient (nothing is greater than NaN), while a later NaN never takes it;
    and a window of nothing but NaN (or of the lowest value) sends it to its first element."""
    best = window[:, 0].copy()
    where = np.zeros(best.shape, dtype=np.int64)
    for i in range(1, window.shape[1]):
        with np.errstate(invalid="ignore"):
            greater = window[:, i] > best
        best = np.where(greater, window[:, i], best)
        where = np.where(greater, i, where)
    return where


def max_pool_reference(y, ksize=3, strides=2, padding="VALID", storage=np.float64):
    """tf.nn.max_pool2d(y, ksize, strides, padding) of NHWC y as TensorFlow computes it on a
    CPU, in float64: each window's max starts from `storage`'s lowest value (_window_max)."""
    y = np.asarray(y, dtype=np.float64)
    n, rows, cols, channels = y.shape
    out_rows, out_cols, windows = pool_windows(rows, cols, ksize, strides, padding)
    pooled = np.empty((n, out_rows, out_cols, channels))
    for oh, ow, r, c in windows:
        pooled[:, oh, ow] = _window_max(y[:, r, c].reshape(n, -1, channels), _lowest(storage))
    return pooled


def max_pool_grad_reference(y, dpooled, ksize=3, strides=2, padding="VALID"):
    """dL/dy of tf.nn.max_pool2d(y, ...) given dpooled, in float64: each entry to its window's
    place as TensorFlow's CPU max-pool gradient picks it (_gradient_place: the first maximum in
    row-major order)."""
    y = np.asarray(y, dtype=np.float64)
    dpooled = np.asarray(dpooled, dtype=np.float64)
    n, rows, cols, channels = y.shape
    _, _, windows = pool_windows(rows, cols, ksize, strides, padding)
    dy = np.zeros_like(y)
    batch, channel = np.meshgrid(np.arange(n), np.arange(channels), indexing="ij")
    for oh, ow, r, c in windows:
        where = _gradient_place(y[:, r, c].reshape(n, -1, channels))
        width = c.stop - c.start
        np.add.at(dy, (batch, r.start + where // width, c.start + where % width, channel), dpooled[:, oh, ow])
    return dy


def lrn_relu_max_pool_reference(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3, strides=2,
                                padding="VALID", storage=np.float64):
    """tf.nn.max_pool2d(tf.nn.lrn(tf.nn.relu(x)), ksize, strides, padding) in float64, with the
    LRN output rounded to `storage` first (the dtype the composite stores it in)."""
    y = lrn_relu_reference(x, depth_radius, bias, alpha, beta, relu).astype(storage).astype(np.float64)
    return max_pool_reference(y, ksize, strides, padding, storage)


def lrn_relu_max_pool_grad_reference(x, dpooled, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3,
                                     strides=2, padding="VALID", storage=np.float64):
    """dL/dx given dpooled: max_pool_grad_reference, then the LRN's gradient, in float64 (LRN
    output rounded to `storage` first, as for the forward, and so is the routed gradient)."""
    y = lrn_relu_reference(x, depth_radius, bias, alpha, beta, relu).astype(storage).astype(np.float64)
    dy = max_pool_grad_reference(y, dpooled, ksize, strides, padding)
    return lrn_relu_grad_reference(x, dy.astype(storage).astype(np.float64), depth_radius, bias, alpha, beta, relu)
