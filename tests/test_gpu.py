"""The CUDA kernels through CuPy (and TensorFlow's GPU kernels where TF sees a GPU).

Marked `gpu`: skipped cleanly where there is no CUDA device, CuPy, or CUDA build.
Correctness runs through alexops._core's raw-pointer entry points so that every dtype,
bfloat16 included, is tested whatever CuPy supports, with outputs poisoned beforehand.
"""
import numpy as np
import pytest

from alexops.reference import lrn_relu_grad_reference, lrn_relu_reference
from helpers import (ALEXNET, BFLOAT16, FLOAT_DTYPES, SHAPE_AND_PARAMS, as_float32_attrs,
                     assert_close_to_reference, case_id, random_input)

pytestmark = pytest.mark.gpu


def cupy():
    import cupy as cp

    return cp


def to_device_bits(array):
    """Device copy of `array`'s bytes (as uint8), so any dtype works whatever CuPy supports."""
    return cupy().asarray(np.ascontiguousarray(array).view(np.uint8))


def poisoned_like(array):
    """A device buffer of `array`'s size filled with 0xFF bytes: NaN in every float dtype."""
    return cupy().full(array.nbytes, 0xFF, dtype=np.uint8)


def from_device_bits(device, like):
    return cupy().asnumpy(device).view(like.dtype).reshape(like.shape)


def fused_forward(x, in_place=False, relu=True, **params):
    from alexops import _core

    cp = cupy()
    x_dev = to_device_bits(x)
    y_dev = x_dev if in_place else poisoned_like(x)
    channels = x.shape[-1]
    _core.forward_cuda(x_dev.data.ptr, y_dev.data.ptr, x.size // channels if channels else 0, channels,
                       x.dtype.name, relu=relu, stream=cp.cuda.get_current_stream().ptr, **params)
    return from_device_bits(y_dev, x)


def fused_backward(x, dy, relu=True, **params):
    from alexops import _core

    cp = cupy()
    x_dev, dy_dev, dx_dev = to_device_bits(x), to_device_bits(dy), poisoned_like(x)
    channels = x.shape[-1]
    _core.backward_cuda(x_dev.data.ptr, dy_dev.data.ptr, dx_dev.data.ptr, x.size // channels, channels,
                        x.dtype.name, relu=relu, stream=cp.cuda.get_current_stream().ptr, **params)
    return from_device_bits(dx_dev, x)


GPU_CASES = SHAPE_AND_PARAMS + [
    ((2, 7, 9, 96), dict(depth_radius=16, bias=1.0, alpha=0.05, beta=0.75)),   # many tiles, R > 7
    ((1, 3, 5, 3000), dict(depth_radius=2, bias=1.0, alpha=0.01, beta=0.5)),   # > 48 KiB shared memory
]


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("case", GPU_CASES, ids=case_id)
def test_cuda_matches_reference_and_writes_every_element(case, dtype, relu):
    shape, params = case
    seed = np.random.SeedSequence().entropy % 2**31  # fresh inputs each run
    x = random_input(shape, seed, dtype=dtype)
    dy = random_input(shape, seed + 1, dtype=dtype)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    y = fused_forward(x, relu=relu, **params)
    dx = fused_backward(x, dy, relu=relu, **params)
    # The reference is finite here, so a NaN left from the poison would fail the comparison.
    assert_close_to_reference(y, lrn_relu_reference(x64, relu=relu, **params), dtype, what=f"seed {seed}")
    assert_close_to_reference(dx, lrn_relu_grad_reference(x64, dy64, relu=relu, **params), dtype,
                              backward=True, what=f"seed {seed}")


def test_cuda_in_place_forward():
    x = random_input((3, 5, 5, 64), seed=51, dtype=np.float32)
    assert_close_to_reference(fused_forward(x, in_place=True, **ALEXNET), lrn_relu_reference(x, **ALEXNET),
                              np.float32)


def test_cuda_no_cancellation_when_magnitudes_mix():
    x = np.full((1, 1, 2, 64), 1e-4, np.float32)
    x[..., :10] = 1e4
    params = dict(depth_radius=2, bias=1.0, alpha=1.0, beta=0.75)
    assert_close_to_reference(fused_forward(x, **params), lrn_relu_reference(x.astype(np.float64), **params),
                              np.float32)


def test_cuda_zero_size_and_nan():
    assert fused_forward(np.zeros((0, 3, 3, 8), np.float32), **ALEXNET).shape == (0, 3, 3, 8)
    x = random_input((1, 2, 2, 12), seed=52, dtype=np.float32)
    x[0, 0, 0, 3] = np.nan
    np.testing.assert_allclose(fused_forward(x, **ALEXNET), lrn_relu_reference(x, **ALEXNET), rtol=1e-5,
                               atol=1e-6, equal_nan=True)


def test_cupy_api_on_a_side_stream():
    import alexops.cupy as acp

    cp = cupy()
    x = random_input((2, 6, 6, 32), seed=53, dtype=np.float32)
    dy = random_input(x.shape, seed=54, dtype=np.float32)
    with cp.cuda.Stream(non_blocking=True):
        y = acp.lrn_relu(cp.asarray(x), **ALEXNET)
        dx = acp.lrn_relu_grad(cp.asarray(x), cp.asarray(dy), **ALEXNET)
        y_host, dx_host = cp.asnumpy(y), cp.asnumpy(dx)
    assert isinstance(y, cp.ndarray) and y.dtype == np.float32
    assert_close_to_reference(y_host, lrn_relu_reference(x, **ALEXNET), np.float32)
    assert_close_to_reference(dx_host, lrn_relu_grad_reference(x, dy, **ALEXNET), np.float32, backward=True)


def test_cupy_api_rejects_bad_input():
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
    with pytest.raises(ValueError, match="same shape"):
        acp.lrn_relu_grad(x, x[:1])
    with pytest.raises(TypeError, match="cupy.ndarray"):
        acp.lrn_relu(np.zeros((1, 1, 1, 1), np.float32))


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
    ref_y = lrn_relu_reference(x64, **as_float32_attrs(ALEXNET))
    ref_dx = lrn_relu_grad_reference(x64, dy64, **as_float32_attrs(ALEXNET))
    np.testing.assert_allclose(cupy_backend.to_float64(y, dtype), ref_y, rtol=rtol, atol=rtol * np.abs(ref_y).max())
    np.testing.assert_allclose(cupy_backend.to_float64(dx, dtype), ref_dx, rtol=rtol, atol=rtol * np.abs(ref_dx).max())


def test_tensorflow_gpu_kernels():
    tf = pytest.importorskip("tensorflow")
    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("TensorFlow sees no GPU")
    import alexops

    params = as_float32_attrs(ALEXNET)
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
        x64, dy64 = xd.astype(np.float64), dyd.astype(np.float64)
        assert_close_to_reference(y.numpy(), lrn_relu_reference(x64, **params), dtype)
        assert_close_to_reference(dx.numpy(), lrn_relu_grad_reference(x64, dy64, **params), dtype, backward=True)
