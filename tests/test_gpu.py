"""The CUDA kernels through CuPy (and TensorFlow's GPU kernels where TF sees a GPU).

Marked `gpu`: skipped cleanly where there is no CUDA device, CuPy, or CUDA build.
Correctness runs through alexops._core's raw-pointer entry points, on both kernels (the
register kernel and the tiled one, forced by name), so that every dtype, bfloat16
included, is tested whatever CuPy supports, with outputs poisoned beforehand.
"""
import os
import re

import numpy as np
import pytest

from helpers import (ALEXNET, BFLOAT16, FLOAT_DTYPES, as_float32_attrs, assert_close_to_reference, random_input,
                     reference_backward, reference_forward, run_fresh)

KERNELS = ("registers", "tiled")


def cupy():
    import cupy as cp

    return cp


def core():
    from alexops import _core

    return _core


def to_device_bits(array):
    """Device copy of `array`'s bytes (as uint8), so any dtype works whatever CuPy supports."""
    return cupy().asarray(np.ascontiguousarray(array).view(np.uint8))


def poisoned_like(array):
    """A device buffer of `array`'s size filled with 0xFF bytes: NaN in every float dtype."""
    return cupy().full(array.nbytes, 0xFF, dtype=np.uint8)


def from_device_bits(device, like):
    return cupy().asnumpy(device).view(like.dtype).reshape(like.shape)


def pixels_and_channels(x):
    channels = x.shape[-1]
    return (x.size // channels if channels else 0), channels


def fused_forward(x, kernel="auto", out=None, **params):
    """y on the GPU; out: None (a poisoned buffer), or "x" to write over x's own buffer."""
    cp = cupy()
    x_dev = to_device_bits(x)
    y_dev = x_dev if out == "x" else poisoned_like(x)
    core().forward_cuda(x_dev.data.ptr, y_dev.data.ptr, *pixels_and_channels(x), x.dtype.name,
                        stream=cp.cuda.get_current_stream().ptr, kernel=kernel, **params)
    return from_device_bits(y_dev, x)


def fused_backward(x, dy, kernel="auto", out=None, **params):
    """dx on the GPU; out: None (a poisoned buffer), "x" or "dy" to write over that buffer."""
    cp = cupy()
    x_dev, dy_dev = to_device_bits(x), to_device_bits(dy)
    dx_dev = {"x": x_dev, "dy": dy_dev}.get(out) if out else poisoned_like(x)
    core().backward_cuda(x_dev.data.ptr, dy_dev.data.ptr, dx_dev.data.ptr, *pixels_and_channels(x), x.dtype.name,
                         stream=cp.cuda.get_current_stream().ptr, kernel=kernel, **params)
    return from_device_bits(dx_dev, x)


def takes_registers(dtype, channels, depth_radius):
    return core().cuda_kernel_for(np.dtype(dtype).name, channels, depth_radius) == "registers"


def check_both_passes(x, dy, kernel, **params):
    """Forward and backward on `kernel` against the float64 reference (finite here, so a
    NaN left from the poison fails the comparison)."""
    dtype = x.dtype
    assert_close_to_reference(fused_forward(x, kernel, **params), reference_forward(x, **params), dtype)
    assert_close_to_reference(fused_backward(x, dy, kernel, **params), reference_backward(x, dy, **params), dtype,
                              backward=True)


CHANNELS = [1, 3, 64, 65, 192, 1000]
RADII = [0, 1, 4, 8, 9, 17]


@pytest.mark.gpu
@pytest.mark.parametrize("radius", RADII)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("kernel", KERNELS)
def test_both_kernels_match_the_reference(kernel, dtype, channels, radius):
    """126 pixels (2 x 7 x 9): a partial last tile, and a partial last group of warps."""
    params = dict(depth_radius=radius, bias=1.0, alpha=0.05, beta=0.75, relu=(channels + radius) % 2 == 0)
    x = random_input((2, 7, 9, channels), seed=channels * 31 + radius, dtype=dtype)
    dy = random_input(x.shape, seed=channels * 31 + radius + 1, dtype=dtype)
    if kernel == "registers" and not takes_registers(dtype, channels, radius):
        with pytest.raises(ValueError, match="register kernel does not take"):
            fused_forward(x, kernel, **params)
        return
    check_both_passes(x, dy, kernel, **params)


@pytest.mark.gpu
@pytest.mark.parametrize("beta", [0.5, 0.75, 1.0, 0.3])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("kernel", KERNELS)
def test_every_form_of_the_power(kernel, dtype, beta):
    for channels, relu in ((64, True), (192, False)):
        x = random_input((3, 5, 7, channels), seed=int(beta * 100) + channels, dtype=dtype)
        dy = random_input(x.shape, seed=int(beta * 100) + channels + 1, dtype=dtype)
        check_both_passes(x, dy, kernel, depth_radius=4, bias=1.0, alpha=0.001 / 9 * 50, beta=beta, relu=relu)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("kernel", KERNELS)
def test_aliasing(kernel, dtype):
    """y may be x; dx may be dy or x: each thread reads what it writes before writing it."""
    x = random_input((3, 11, 13, 64), seed=71, dtype=dtype)
    dy = random_input(x.shape, seed=72, dtype=dtype)
    expected_y = fused_forward(x, kernel, **ALEXNET)
    expected_dx = fused_backward(x, dy, kernel, **ALEXNET)
    np.testing.assert_array_equal(fused_forward(x, kernel, out="x", **ALEXNET), expected_y)
    np.testing.assert_array_equal(fused_backward(x, dy, kernel, out="dy", **ALEXNET), expected_dx)
    np.testing.assert_array_equal(fused_backward(x, dy, kernel, out="x", **ALEXNET), expected_dx)


@pytest.mark.gpu
@pytest.mark.parametrize("kernel", KERNELS)
def test_no_cancellation_when_magnitudes_mix(kernel):
    x = np.full((1, 1, 2, 64), 1e-4, np.float32)
    x[..., :10] = 1e4
    x[..., 30:33] = 1e4
    dy = random_input(x.shape, seed=73, dtype=np.float32)
    check_both_passes(x, dy, kernel, depth_radius=2, bias=1.0, alpha=1.0, beta=0.75)


@pytest.mark.gpu
@pytest.mark.parametrize("kernel", KERNELS)
def test_zero_size_nan_and_inf(kernel):
    assert fused_forward(np.zeros((0, 3, 3, 8), np.float32), "auto", **ALEXNET).shape == (0, 3, 3, 8)
    x = random_input((2, 1, 3, 64), seed=74, dtype=np.float32)
    x[0, 0, 0, 3] = np.nan
    x[0, 0, 1, 20] = np.inf
    x[1, 0, 2, 30] = -np.inf
    dy = random_input(x.shape, seed=75, dtype=np.float32)
    params = dict(depth_radius=4, bias=1.0, alpha=0.5, beta=0.75)
    assert_close_to_reference(fused_forward(x, kernel, **params), reference_forward(x, **params), np.float32)
    assert_close_to_reference(fused_backward(x, dy, kernel, **params), reference_backward(x, dy, **params),
                              np.float32, backward=True)


def test_cuda_entry_points_default_like_the_cpu_ones():
    """No GPU needed: relu defaults to True and stream to 0, as the CPU entry points' relu does
    (the first run on a card found the GPU tests calling them without relu)."""
    if not getattr(core(), "cuda_available", lambda: False)():
        pytest.skip("built without CUDA")
    for entry_point in (core().forward_cuda, core().backward_cuda):
        signature = entry_point.__doc__.splitlines()[0]
        assert re.search(r"\brelu: [^,]*= True\b", signature), signature
        assert re.search(r"\bstream: [^,]*= 0\b", signature), signature


def test_alexnet_shapes_take_the_register_kernel():
    """No GPU needed: the choice is made on the host."""
    if not getattr(core(), "cuda_available", lambda: False)():
        pytest.skip("built without CUDA")
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        for channels in (64, 192):
            assert core().cuda_kernel_for(dtype, channels, ALEXNET["depth_radius"]) == "registers", (dtype, channels)
        assert core().cuda_kernel_for(dtype, 65, 4) == "tiled"
        assert core().cuda_kernel_for(dtype, 64, 9) == "tiled"


# ---- the CuPy door -----------------------------------------------------------------------

@pytest.mark.gpu
def test_cupy_door_on_a_side_stream_with_out():
    import alexops.cupy as acp

    cp = cupy()
    x = random_input((2, 6, 6, 32), seed=53, dtype=np.float32)
    dy = random_input(x.shape, seed=54, dtype=np.float32)
    with cp.cuda.Stream(non_blocking=True):
        y = acp.lrn_relu(cp.asarray(x), **ALEXNET)
        dx = acp.lrn_relu_grad(cp.asarray(x), cp.asarray(dy), **ALEXNET)
        out = cp.empty_like(y)
        assert acp.lrn_relu(cp.asarray(x), out=out, **ALEXNET) is out
        y_host, dx_host, out_host = cp.asnumpy(y), cp.asnumpy(dx), cp.asnumpy(out)
    assert isinstance(y, cp.ndarray) and y.dtype == np.float32
    assert_close_to_reference(y_host, reference_forward(x, **ALEXNET), np.float32)
    assert_close_to_reference(dx_host, reference_backward(x, dy, **ALEXNET), np.float32, backward=True)
    np.testing.assert_array_equal(out_host, y_host)


@pytest.mark.gpu
def test_cupy_door_partly_overlapping_out():
    import alexops.cupy as acp

    cp = cupy()
    shape = (2, 5, 5, 64)
    memory = cp.asarray(random_input((int(np.prod(shape)) + 64,), seed=76, dtype=np.float32))
    x, out = memory[:-64].reshape(shape), memory[64:].reshape(shape)
    expected = acp.lrn_relu(x.copy(), **ALEXNET)
    acp.lrn_relu(x, out=out, **ALEXNET)
    np.testing.assert_array_equal(cp.asnumpy(out), cp.asnumpy(expected))


@pytest.mark.gpu
def test_cupy_door_rejects_bad_input_as_the_others_do():
    import alexops.cupy as acp

    cp = cupy()
    x = cp.zeros((2, 4, 4, 8), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        acp.lrn_relu(x.transpose(0, 2, 1, 3))
    with pytest.raises(ValueError, match="4-D"):
        acp.lrn_relu(x[0])
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
        acp.lrn_relu(x.astype(np.int32))
    with pytest.raises(ValueError, match="depth_radius"):
        acp.lrn_relu(x, depth_radius=-2)
    with pytest.raises(TypeError, match="relu must be a bool"):
        acp.lrn_relu(x, relu=None)
    with pytest.raises(ValueError, match="same shape"):
        acp.lrn_relu_grad(x, x[:1])
    with pytest.raises(TypeError, match="cupy.ndarray"):
        acp.lrn_relu(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="too many for the GPU kernel"):  # a user error, not an internal one
        acp.lrn_relu_grad(cp.zeros((1, 1, 1, 20000), np.float32), cp.zeros((1, 1, 1, 20000), np.float32))


# ---- the benchmark's baseline, and TensorFlow's GPU kernels -------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_cudnn_baseline_matches_reference(dtype):
    """The benchmark's stock baseline: proves the alpha mapping (cuDNN alpha = TF alpha *
    (2R+1)), the NHWC descriptor and the ReLU kernels on 16-bit storage."""
    from alexops.bench import cudnn, cupy_backend

    if not cudnn.available():
        pytest.skip("built without cuDNN")
    cp = cupy()
    x = random_input((2, 5, 5, 64), seed=55, dtype=np.float32)
    dy = random_input(x.shape, seed=56, dtype=np.float32)
    x_dev = cupy_backend.from_float32(cp.asarray(x), dtype)
    dy_dev = cupy_backend.from_float32(cp.asarray(dy), dtype)
    r, y, d_r, dx = (cp.empty_like(x_dev) for _ in range(4))
    stock = cudnn.ReluCudnn(dtype, ALEXNET, *cupy_backend.relu_kernels(dtype))
    stream = cp.cuda.get_current_stream()
    stock.forward(x_dev, r, y, stream)
    stock.backward(x_dev, r, y, dy_dev, d_r, dx, stream)
    x64, dy64 = cupy_backend.to_float64(x_dev, dtype), cupy_backend.to_float64(dy_dev, dtype)
    rtol = {"float32": 1e-5, "float64": 1e-5, "float16": 4e-3}[dtype]
    ref_y, ref_dx = reference_forward(x64, **ALEXNET), reference_backward(x64, dy64, **ALEXNET)
    np.testing.assert_allclose(cupy_backend.to_float64(y, dtype), ref_y, rtol=rtol, atol=rtol * np.abs(ref_y).max())
    np.testing.assert_allclose(cupy_backend.to_float64(dx, dtype), ref_dx, rtol=rtol, atol=rtol * np.abs(ref_dx).max())


@pytest.mark.gpu
def test_tensorflow_gpu_kernels():
    tf = pytest.importorskip("tensorflow")
    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("TensorFlow sees no GPU")
    import alexops

    x = random_input((2, 5, 5, 64), seed=57, dtype=np.float32)
    dy = random_input(x.shape, seed=58, dtype=np.float32)
    for dtype in (np.float16, BFLOAT16, np.float32, np.float64):
        if dtype is None:
            continue
        xd, dyd = x.astype(dtype), dy.astype(dtype)
        with tf.device("/GPU:0"):
            xt = tf.constant(xd)
            with tf.GradientTape() as tape:
                tape.watch(xt)
                y = alexops.lrn_relu(xt, **ALEXNET)
            dx = tape.gradient(y, xt, output_gradients=tf.constant(dyd))
        assert "GPU" in y.device
        assert_close_to_reference(y.numpy(), reference_forward(xd, **as_float32_attrs(ALEXNET)), dtype)
        assert_close_to_reference(dx.numpy(), reference_backward(xd, dyd, **ALEXNET), dtype, backward=True)


# ---- lrn_relu_max_pool on the GPU ----------------------------------------------------------

POOL_CASES = [  # (shape, depth_radius, ksize, strides, padding)
    ((2, 13, 13, 64), 4, 3, 2, "VALID"),    # AlexNet-like
    ((2, 9, 11, 192), 4, 3, 2, "SAME"),
    ((1, 7, 6, 13), 9, 2, 1, "SAME"),       # odd C, R > 8
    ((3, 5, 5, 3), 1, 5, 3, "VALID"),
    ((1, 2, 3, 8), 0, 3, 2, "SAME"),         # an image smaller than the window
    ((2, 6, 5, 16), 2, 2**40, 1, "SAME"),   # a global pool: sizes past int32 reach the kernel small
    ((1, 5, 7, 8), 1, 2**62, 2**62, "SAME"),
    ((1, 5, 7, 8), 1, 2, 2**62, "VALID"),   # one window per axis
    ((1, 56, 56, 64), 4, 3, 2, "VALID"),    # AlexNet's rows, whole
    ((2, 27, 27, 192), 4, 3, 2, "VALID"),   # (version 1 refuses float64's backward here: too wide)
]


def pool_on_gpu(x, dpooled, depth_radius, ksize, strides, padding):
    """(pooled, dx) through the raw CUDA entry points, outputs poisoned beforehand."""
    cp = cupy()
    pooled_shape = tuple(core().pooled_shape(x.shape, (ksize, ksize), (strides, strides), padding))
    x_dev, dp_dev = to_device_bits(x), to_device_bits(dpooled)
    pooled_dev = cp.full(int(np.prod(pooled_shape)) * x.dtype.itemsize, 0xFF, np.uint8)
    dx_dev = poisoned_like(x)
    common = dict(depth_radius=depth_radius, bias=1.0, alpha=0.1, beta=0.75, relu=True, ksize=(ksize, ksize),
                  strides=(strides, strides), padding=padding, stream=cp.cuda.get_current_stream().ptr)
    core().forward_max_pool_cuda(x_dev.data.ptr, pooled_dev.data.ptr, x.shape, x.dtype.name, **common)
    core().backward_max_pool_cuda(x_dev.data.ptr, dp_dev.data.ptr, dx_dev.data.ptr, x.shape, x.dtype.name, **common)
    pooled = cp.asnumpy(pooled_dev).view(x.dtype).reshape(pooled_shape)
    return pooled, from_device_bits(dx_dev, x)


@pytest.mark.gpu
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "x".join(map(str, c[0])) + f"-R{c[1]}-k{c[2]}s{c[3]}{c[4]}")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_max_pool_block_matches_the_cpu_kernel_and_the_reference(dtype, case):
    from alexops import numpy as anp
    from alexops.reference import lrn_relu_max_pool_grad_reference, lrn_relu_max_pool_reference

    shape, radius, ksize, strides, padding = case
    params = dict(depth_radius=radius, bias=1.0, alpha=0.1, beta=0.75, ksize=ksize, strides=strides, padding=padding)
    x = random_input(shape, seed=sum(shape) + radius, dtype=dtype)
    cpu_pooled = anp.lrn_relu_max_pool(x, **params)
    dpooled = random_input(cpu_pooled.shape, seed=radius, dtype=dtype)
    pooled, dx = pool_on_gpu(x, dpooled, radius, ksize, strides, padding)
    storage = BFLOAT16.type if dtype == BFLOAT16 else np.dtype(dtype).type
    reference = as_float32_attrs(params)
    x64 = x.astype(np.float64)
    assert_close_to_reference(pooled, lrn_relu_max_pool_reference(x64, storage=storage, **reference), dtype)
    assert_close_to_reference(dx, lrn_relu_max_pool_grad_reference(x64, dpooled, storage=storage, **reference), dtype,
                              backward=True)
    np.testing.assert_allclose(pooled.astype(np.float64), cpu_pooled.astype(np.float64), rtol=1e-2, atol=1e-3)
    # dx is not compared with the CPU kernel's: where a window's two largest LRN outputs round to
    # the same 16-bit value on one device and not on the other, the two send its gradient to
    # different pixels (the CPU's bfloat16 dx at [2, 27, 27, 192] differs so from the reference's
    # at 16 of 279,936 elements; on the H200 of 2026-11-28 the CUDA kernel's matched it).


@pytest.mark.gpu
def test_max_pool_gradient_is_the_same_in_every_band(tmp_path):
    """Version 2's backward takes bands of output rows (ALEXOPS_CUDA_POOL_BAND_ROWS, read once
    per process): they change which block computes what, not the arithmetic. At AlexNet's lrn1
    rows, a batch of 20 takes bands of 2 by default (the tests above get bands of 1); bands of
    1, 3 and 4 (the default at batch 64) must give the same bits."""
    def gradient(band_rows):
        out = tmp_path / f"dx-{band_rows}.npy"
        env = {key: value for key, value in os.environ.items() if key != "ALEXOPS_CUDA_POOL_BAND_ROWS"}
        if band_rows != "default":
            env["ALEXOPS_CUDA_POOL_BAND_ROWS"] = band_rows
        run_fresh(f"""
            import cupy as cp
            import numpy as np
            import alexops.cupy as acp
            from alexops.alexnet import LRN_PARAMS

            rng = np.random.default_rng(85)
            x = cp.asarray(rng.standard_normal((20, 56, 56, 64)).astype(np.float32))
            dpooled = cp.asarray(rng.standard_normal((20, 27, 27, 64)).astype(np.float32))
            np.save({str(out)!r}, cp.asnumpy(acp.lrn_relu_max_pool_grad(x, dpooled, **LRN_PARAMS)))
            """, env=env)
        return np.load(out)

    by_default = gradient("default")
    assert np.isfinite(by_default).all() and np.count_nonzero(by_default) > by_default.size // 10
    for band_rows in ("1", "3", "4"):
        np.testing.assert_array_equal(gradient(band_rows), by_default, err_msg=f"bands of {band_rows}")


@pytest.mark.gpu
def test_max_pool_block_through_the_cupy_door():
    import alexops.cupy as acp
    from alexops import numpy as anp

    cp = cupy()
    x = random_input((2, 13, 13, 64), seed=81, dtype=np.float32)
    pooled = acp.lrn_relu_max_pool(cp.asarray(x), **ALEXNET)
    dpooled = random_input(pooled.shape, seed=82, dtype=np.float32)
    dx = acp.lrn_relu_max_pool_grad(cp.asarray(x), cp.asarray(dpooled), **ALEXNET)
    np.testing.assert_allclose(cp.asnumpy(pooled), anp.lrn_relu_max_pool(x, **ALEXNET), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cp.asnumpy(dx), anp.lrn_relu_max_pool_grad(x, dpooled, **ALEXNET), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="pooled shape"):
        acp.lrn_relu_max_pool_grad(cp.asarray(x), cp.zeros((2, 5, 5, 64), np.float32))
    with pytest.raises(ValueError, match="too wide"):  # a user error, not an internal one
        acp.lrn_relu_max_pool(cp.zeros((1, 3, 4000, 64), np.float32))
