"""Out of memory is an error, not a crash: under an address-space limit (RLIMIT_AS) too small
for the kernels' scratch rows, the TF ops raise ResourceExhaustedError and alexops._core
(through alexops.numpy for lrn_relu_max_pool) raises MemoryError, and the process goes on
working once memory is back.

Each door runs in a fresh process. malloc's mmap threshold is pinned so that every large
block is mapped when asked for and unmapped when freed: what the limit allows is then the
same on every run."""
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and mallopt are Linux's")

PRELUDE = textwrap.dedent("""
    import ctypes, resource
    import numpy as np

    M_MMAP_THRESHOLD = -3
    ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 64 * 1024)

    def address_space():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)

    def limited(headroom, call):
        '''call() with only `headroom` bytes of address space to spare; returns the exception
        it raised, or None.'''
        resource.setrlimit(resource.RLIMIT_AS, (address_space() + headroom, hard))
        try:
            call()
        except Exception as error:
            return error
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        return None

    # 4 pixels of 4M channels (16 MiB a row, 64 MiB a tensor): room for the output
    # but not for a scratch row, larger than any free space left inside malloc's heaps.
    shape = (1, 1, 4, 1 << 22)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    OUTPUT = x.nbytes
    params = dict(depth_radius=2, bias=1.0, alpha=1e-3, beta=0.75)
    # lrn_relu_max_pool over the same rows: its row cache alone is a whole input row.
    pool = dict(params, ksize=(1, 2), strides=1)
    dpooled = rng.standard_normal((1, 1, 3, 1 << 22)).astype(np.float32)
""")

CORE = PRELUDE + textwrap.dedent("""
    from alexops import _core
    import alexops.numpy as anp
    small = x[:, :, :2, :64].copy()
    expected_y = _core.forward(small, **params)  # threads started, code paged in
    expected_pooled = anp.lrn_relu_max_pool(small, **pool)
    out = np.empty_like(x)
    pooled = np.empty_like(dpooled)
    for name, call in [("forward", lambda: _core.forward(x, out=out, **params)),
                       ("backward", lambda: _core.backward(x, dy, out=out, **params)),
                       ("pool forward", lambda: anp.lrn_relu_max_pool(x, out=pooled, **pool)),
                       ("pool backward", lambda: anp.lrn_relu_max_pool_grad(x, dpooled, out=out, **pool))]:
        error = limited(1 << 20, call)
        assert isinstance(error, MemoryError), (name, repr(error))
        assert "out of memory" in str(error), str(error)
    # Usable again, big and small.
    np.testing.assert_array_equal(_core.forward(small, **params), expected_y)
    np.testing.assert_array_equal(anp.lrn_relu_max_pool(small, **pool), expected_pooled)
    assert np.isfinite(_core.backward(x, dy, out=out, **params)).all()
    assert np.isfinite(anp.lrn_relu_max_pool_grad(x, dpooled, out=out, **pool)).all()
    print("core: MemoryError, then fine")
""")

TENSORFLOW = PRELUDE + textwrap.dedent("""
    import tensorflow as tf
    import alexops

    xt, dyt, dpt = tf.constant(x), tf.constant(dy), tf.constant(dpooled)

    def gradient(t, dy):
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = alexops.lrn_relu(t, **params)
        return tape.gradient(y, t, output_gradients=dy)

    small, small_dy = xt[:, :, :2, :64], dyt[:, :, :2, :64]
    expected = alexops.lrn_relu(small, **params).numpy(), gradient(small, small_dy).numpy()
    for name, call in [("forward", lambda: alexops.lrn_relu(xt, **params)),
                       ("gradient", lambda: alexops.ops.lrn_relu_grad(xt, dyt, **params)),
                       ("pool forward", lambda: alexops.lrn_relu_max_pool(xt, **pool)),
                       ("pool gradient", lambda: alexops.ops.lrn_relu_max_pool_grad(xt, dpt, **pool))]:
        # Room for TensorFlow's output tensor, not for the scratch rows.
        error = limited(OUTPUT + (1 << 20), call)
        assert isinstance(error, tf.errors.ResourceExhaustedError), (name, repr(error))
        assert "out of memory" in str(error), str(error)
    np.testing.assert_array_equal(alexops.lrn_relu(small, **params).numpy(), expected[0])
    np.testing.assert_array_equal(gradient(small, small_dy).numpy(), expected[1])
    assert np.isfinite(gradient(xt, dyt).numpy()).all()
    assert np.isfinite(alexops.ops.lrn_relu_max_pool_grad(xt, dpt, **pool).numpy()).all()
    print("tensorflow: ResourceExhaustedError, then fine")
""")


@pytest.mark.parametrize("script", [CORE, TENSORFLOW], ids=["core", "tensorflow"])
def test_out_of_memory_raises_and_the_process_goes_on(script):
    # With its oneDNN optimisations on (TensorFlow's default on Intel CPUs with AVX-512), TF
    # allocates CPU tensors from a pool that keeps freed memory, so the output may take none
    # of the headroom and the scratch rows fit: the limit then tests nothing. Off, each output
    # is mapped when allocated, as the headroom assumes, on every CPU.
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    assert "then fine" in result.stdout
