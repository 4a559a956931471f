"""The three doors (TensorFlow, NumPy, CuPy) take the same arguments and raise the same
exceptions for the same mistakes; the package's top level holds what users import."""
import inspect
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import alexops
import alexops.cupy
import alexops.numpy
import alexops.ops
from helpers import (ALEXNET, FLOAT_DTYPES, assert_close_to_reference, random_input, reference_backward,
                     reference_forward, run_fresh)

DOORS = {"tf": alexops.ops, "numpy": alexops.numpy, "cupy": alexops.cupy}


def parameters(function, leave_out=("name", "out")):
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values() if p.name not in leave_out]


@pytest.mark.parametrize("function", ["lrn_relu", "lrn_relu_grad"])
def test_doors_take_the_same_arguments_and_defaults(function):
    expected = parameters(getattr(alexops.ops, function))
    for door in (alexops.numpy, alexops.cupy):
        assert parameters(getattr(door, function)) == expected, door.__name__
    assert parameters(alexops.lrn_relu) == parameters(alexops.ops.lrn_relu)
    # ... and they are tf.nn.lrn's, plus relu.
    lrn = [(p.name, p.default) for p in inspect.signature(tf.nn.lrn).parameters.values() if p.name != "name"]
    assert parameters(alexops.ops.lrn_relu)[:len(lrn)] == [("x", inspect.Parameter.empty)] + lrn[1:]


def test_cupy_door_without_cupy_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy now raises ImportError
    with pytest.raises(ModuleNotFoundError, match="alexops.cupy needs CuPy"):
        alexops.cupy.lrn_relu(np.zeros((1, 2, 2, 3), np.float32))


def numpy_call(x, **kwargs):
    return alexops.numpy.lrn_relu(x, **kwargs)


def tf_call(x, **kwargs):
    return alexops.lrn_relu(tf.constant(x), **kwargs)


MISTAKES = [
    ("rank", np.zeros((2, 3, 4), np.float32), {}, ValueError),
    ("integer dtype", np.zeros((1, 2, 2, 3), np.int32), {}, TypeError),
    ("negative radius", np.zeros((1, 2, 2, 3), np.float32), dict(depth_radius=-1), ValueError),
    ("bool radius", np.zeros((1, 2, 2, 3), np.float32), dict(depth_radius=True), TypeError),
    ("float radius", np.zeros((1, 2, 2, 3), np.float32), dict(depth_radius=2.0), TypeError),
    ("radius past int64", np.zeros((1, 2, 2, 3), np.float32), dict(depth_radius=2**63), ValueError),
    ("relu None", np.zeros((1, 2, 2, 3), np.float32), dict(relu=None), TypeError),
    ("bias a string", np.zeros((1, 2, 2, 3), np.float32), dict(bias="1"), TypeError),
]


@pytest.mark.parametrize("what, x, kwargs, error", MISTAKES, ids=[m[0] for m in MISTAKES])
@pytest.mark.parametrize("call", [numpy_call, tf_call], ids=["numpy", "tf"])
def test_the_same_mistake_raises_the_same_exception(call, what, x, kwargs, error):
    with pytest.raises(error):
        call(x, **kwargs)


def test_mismatched_dy_raises_the_same_exceptions():
    x = np.zeros((1, 2, 2, 3), np.float32)
    for grad in (alexops.numpy.lrn_relu_grad, lambda a, b: alexops.ops.lrn_relu_grad(tf.constant(a), tf.constant(b))):
        with pytest.raises(ValueError, match="same shape"):
            grad(x, x[:, :1])
        with pytest.raises(TypeError, match="same dtype"):
            grad(x, x.astype(np.float64))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_numpy_door_matches_the_reference_and_the_tf_door(dtype):
    x = random_input((2, 3, 4, 21), seed=61, dtype=dtype)
    dy = random_input(x.shape, seed=62, dtype=dtype)
    y = alexops.numpy.lrn_relu(x, **ALEXNET)
    dx = alexops.numpy.lrn_relu_grad(x, dy, **ALEXNET)
    assert_close_to_reference(y, reference_forward(x, **ALEXNET), dtype)
    assert_close_to_reference(dx, reference_backward(x, dy, **ALEXNET), dtype, backward=True)
    np.testing.assert_array_equal(y, alexops.lrn_relu(tf.constant(x), **ALEXNET).numpy())
    out = np.empty_like(x)
    assert alexops.numpy.lrn_relu(x, out=out, **ALEXNET) is out
    np.testing.assert_array_equal(out, y)


def test_numpy_door_takes_what_np_asarray_takes():
    """Nested lists (float64 arrays, as np.asarray makes them) work like arrays, in every call."""
    x = random_input((1, 3, 3, 5), seed=63, dtype=np.float64)
    pool = dict(ksize=2, strides=1)
    np.testing.assert_array_equal(alexops.numpy.lrn_relu(x.tolist()), alexops.numpy.lrn_relu(x))
    np.testing.assert_array_equal(alexops.numpy.lrn_relu_grad(x.tolist(), x.tolist()),
                                  alexops.numpy.lrn_relu_grad(x, x))
    pooled = alexops.numpy.lrn_relu_max_pool(x.tolist(), **pool)
    np.testing.assert_array_equal(pooled, alexops.numpy.lrn_relu_max_pool(x, **pool))
    np.testing.assert_array_equal(alexops.numpy.lrn_relu_max_pool_grad(x.tolist(), pooled.tolist(), **pool),
                                  alexops.numpy.lrn_relu_max_pool_grad(x, pooled, **pool))


def test_numpy_door_thread_count():
    default = alexops.numpy.get_num_threads()
    try:
        assert alexops.numpy.set_num_threads(1) == 1
        assert alexops.numpy.get_num_threads() == 1
        with pytest.raises(TypeError):
            alexops.numpy.set_num_threads(1.5)
        # Past ALEXOPS_NUM_THREADS's cap: the pool used to start threads one by one until the system refused.
        for too_many in (65537, 10**6, 2**31, 2**70):
            with pytest.raises(ValueError, match="n must be at most 65536"):
                alexops.numpy.set_num_threads(too_many)
        assert alexops.numpy.get_num_threads() == 1
        assert alexops.numpy.set_num_threads(np.int64(1)) == 1
    finally:
        alexops.numpy.set_num_threads(0)
    assert alexops.numpy.get_num_threads() == default
    alexops.numpy.set_num_threads(1)
    assert alexops.numpy.set_num_threads(-2**70) == default  # any n < 1 restores the default


def test_numpy_door_threads_from_the_environment():
    """ALEXOPS_NUM_THREADS sizes the pool; a value that is not a whole positive count is
    refused out loud (not half-read: "3x" is not 3) and the default is kept."""
    script = "import alexops.numpy; print(alexops.numpy.get_num_threads())"
    env = {key: value for key, value in os.environ.items() if key != "ALEXOPS_NUM_THREADS"}
    default = run_fresh(script, env=env)
    assert default.stderr.count("ALEXOPS_NUM_THREADS") == 0
    chosen = run_fresh(script, env={**env, "ALEXOPS_NUM_THREADS": "3"})
    assert chosen.stdout.split() == ["3"] and "ALEXOPS_NUM_THREADS" not in chosen.stderr
    for bad in ("3x", "0", "-2", "many", "1e3", "99999999"):
        refused = run_fresh(script, env={**env, "ALEXOPS_NUM_THREADS": bad})
        assert refused.stdout.split() == default.stdout.split(), bad
        assert f"ALEXOPS_NUM_THREADS={bad} is not a whole number" in refused.stderr, bad


def test_the_top_level_holds_what_users_import():
    package = Path(alexops.__file__).parent
    public = {p.stem for p in package.glob("*.py") if not p.name.startswith("_")} | {
        p.name for p in package.iterdir() if p.is_dir() and not p.name.startswith("_")}
    # compare.py is the `python -m alexops.compare` entry point, a few lines into alexops.bench.
    assert public == {"ops", "layers", "numpy", "cupy", "alexnet", "reference", "bench", "compare"}
    assert "cudnn" not in " ".join(dir(alexops.cupy))  # the baseline is the benchmark's, not the API's


def test_the_top_level_namespace_is_only_the_api():
    # No stray module names (alexops.sys); a star import gives the ops, not the submodules,
    # and imports no TensorFlow.
    script = ("import sys, alexops\n"
              "print(sorted(n for n in dir(alexops) if not n.startswith('_')))\n"
              "namespace = {}\n"
              "exec('from alexops import *', namespace)\n"
              "print(sorted(n for n in namespace if n != '__builtins__'))\n"
              "print('tensorflow' in sys.modules)\n")
    names, star, tensorflow_loaded = run_fresh(script).stdout.splitlines()
    assert names == str(["lrn_relu", "lrn_relu_max_pool", "register_ops"])
    assert star == str(["__version__", "lrn_relu", "lrn_relu_max_pool", "register_ops"])
    assert tensorflow_loaded == "False"
