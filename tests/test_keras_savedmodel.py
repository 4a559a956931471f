"""The Keras layer (config round trip, .keras save/load) and SavedModel reload in a fresh process."""
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf

import alexops
from alexops.layers import LRNReLU
from helpers import ALEXNET, random_input


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
    subprocess.run([sys.executable, "-c", script], check=True)
