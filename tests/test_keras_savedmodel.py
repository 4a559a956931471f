"""The Keras layer (config round trip, .keras save/load) and SavedModel reload in a fresh process."""
import os
import shutil
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import alexops
from alexops.layers import LRNReLU
from helpers import ALEXNET, assert_saved_model_differentiates_in_a_fresh_process, random_input, run_fresh


def small_model():
    inputs = keras.Input((6, 6, 8))
    hidden = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    outputs = LRNReLU(name="lrn", **ALEXNET)(hidden)
    return keras.Model(inputs, outputs)


def test_layer_config_round_trips():
    layer = LRNReLU(depth_radius=3, bias=2.0, alpha=0.1, beta=0.6, relu=False, name="n")
    clone = LRNReLU.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.supports_jit is False


def test_layer_matches_op_and_trains():
    model = small_model()
    x = random_input((2, 6, 6, 8), seed=41, dtype=np.float32)
    hidden = model.layers[1](x)
    np.testing.assert_array_equal(model(x).numpy(), alexops.lrn_relu(hidden, **ALEXNET).numpy())
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, np.zeros_like(x), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_keras_file_round_trip(tmp_path):
    model = small_model()
    x = random_input((2, 6, 6, 8), seed=42, dtype=np.float32)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_saved_model_reloads_in_a_fresh_process(tmp_path):
    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 6], tf.float32)])
        def __call__(self, x):
            return alexops.lrn_relu(x, depth_radius=2, alpha=0.5, beta=0.75)

    x = random_input((2, 4, 4, 6), seed=43, dtype=np.float32)
    expected = Module()(x).numpy()
    tf.saved_model.save(Module(), str(tmp_path / "sm"))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", expected)
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        import alexops
        module = tf.saved_model.load({str(tmp_path / 'sm')!r})
        y = module(tf.constant(np.load({str(tmp_path / 'x.npy')!r}))).numpy()
        np.testing.assert_array_equal(y, np.load({str(tmp_path / 'expected.npy')!r}))
    """)
    run_fresh(script)


def test_reloaded_saved_model_can_be_differentiated(tmp_path):
    """import tensorflow, import alexops, load, GradientTape: the gradient must be registered."""
    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 6], tf.float32)])
        def __call__(self, x):
            return alexops.lrn_relu(x, depth_radius=2, alpha=0.5, beta=0.75)

    x = random_input((2, 4, 4, 6), seed=44, dtype=np.float32)
    assert_saved_model_differentiates_in_a_fresh_process(Module(), x, tmp_path)


def saved_keras_file(tmp_path):
    model = small_model()
    x = random_input((2, 6, 6, 8), seed=45, dtype=np.float32)
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model(x).numpy())
    return path


LOAD_AND_CHECK = """
    model = keras.models.load_model({path!r})
    x = np.load({x!r})
    np.testing.assert_allclose(model(x).numpy(), np.load({y!r}), rtol=1e-6)
"""


def test_keras_file_loads_after_import_keras_then_alexops(tmp_path):
    path = saved_keras_file(tmp_path)
    names = dict(path=str(path), x=str(tmp_path / "x.npy"), y=str(tmp_path / "y.npy"))
    run_fresh("import numpy as np\nimport keras, alexops\n" + textwrap.dedent(LOAD_AND_CHECK).format(**names))


def test_keras_file_loads_after_register_ops(tmp_path):
    """alexops imported before Keras: register_ops() registers the layer too."""
    path = saved_keras_file(tmp_path)
    names = dict(path=str(path), x=str(tmp_path / "x.npy"), y=str(tmp_path / "y.npy"))
    run_fresh("import numpy as np\nimport alexops\nalexops.register_ops()\nimport keras\n" +
              textwrap.dedent(LOAD_AND_CHECK).format(**names))


@pytest.mark.parametrize("arguments, error", [
    (dict(depth_radius=-1), ValueError),
    (dict(depth_radius=2.5), TypeError),
    (dict(depth_radius=True), TypeError),
    (dict(relu=None), TypeError),
    (dict(beta="0.75"), TypeError),
])
def test_layer_rejects_bad_arguments_in_its_constructor(arguments, error):
    with pytest.raises(error):
        LRNReLU(**arguments)


@pytest.mark.parametrize("backend", ["jax", "torch", "numpy"])
@pytest.mark.parametrize("layer_class", [LRNReLU, alexops.layers.LRNReLUMaxPool])
def test_layers_refuse_to_be_made_under_another_keras_backend(layer_class, backend, monkeypatch):
    """Under JAX, fit() used to fail inside a jitted step with "'str' object has no attribute
    '_error_repr'", naming neither the backend nor the layer."""
    monkeypatch.setattr(keras.config, "backend", lambda: backend)
    with pytest.raises(NotImplementedError, match=f"needs Keras's TensorFlow backend.*{backend!r}.*KERAS_BACKEND"):
        layer_class()
    monkeypatch.undo()
    assert layer_class().compute_output_shape((2, 9, 9, 4))[-1] == 4


@pytest.mark.parametrize("layer_class", [LRNReLU, alexops.layers.LRNReLUMaxPool])
def test_layers_refuse_input_that_is_not_4d_nhwc(layer_class):
    """A 3-D symbolic input used to build LRNReLU's model (the op only refused it when run) and
    to raise an IndexError from LRNReLUMaxPool's compute_output_shape."""
    with pytest.raises(ValueError, match="expected ndim=4, found ndim=3"):
        layer_class()(keras.Input((8, 4)))
    with pytest.raises(ValueError, match="expected ndim=4, found ndim=5"):
        layer_class()(np.zeros((1, 2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="takes 4-D NHWC input"):
        layer_class().compute_output_shape((2, 8, 4))
    assert layer_class()(keras.Input((9, 9, 4))).shape in ((None, 9, 9, 4), (None, 4, 4, 4))


def test_import_after_tensorflow_survives_a_missing_op_library(tmp_path):
    """A build without the op library (ALEXOPS_TF=off): `import alexops` after TensorFlow
    warns once and the NumPy door works; the TF API raises the loader's error when used."""
    package = tmp_path / "alexops"
    shutil.copytree(Path(alexops.__file__).parent, package,
                    ignore=shutil.ignore_patterns("_alexops_ops*.so", "__pycache__"))
    result = run_fresh("""
        import warnings
        import numpy as np
        import tensorflow as tf
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import alexops
        assert alexops.__file__.startswith(%r), alexops.__file__
        messages = [str(w.message) for w in caught if "alexops" in str(w.message)]
        assert len(messages) == 1, messages
        assert "not registered" in messages[0] and "_alexops_ops.so is missing" in messages[0], messages[0]
        assert alexops._core.forward(np.ones((1, 1, 1, 3))).shape == (1, 1, 1, 3)
        try:
            alexops.lrn_relu(tf.ones([1, 1, 1, 3]))
        except ImportError as error:
            assert "Rebuild alexops" in str(error), str(error)
        else:
            raise AssertionError("lrn_relu ran without its op library")
        print("ok")
    """ % str(package), cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert "ok" in result.stdout
