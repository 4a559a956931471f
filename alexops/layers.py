"""Keras 3 layer over alexops.lrn_relu."""
import keras

from alexops import _validate, ops


@keras.saving.register_keras_serializable(package="alexops")
class LRNReLU(keras.layers.Layer):
    """y = LRN(relu(x)) over the channel axis of NHWC input; arguments as tf.nn.lrn."""

    def __init__(self, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, **kwargs):
        _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
        super().__init__(**kwargs)
        self.depth_radius = depth_radius
        self.bias = bias
        self.alpha = alpha
        self.beta = beta
        self.relu = relu
        # Keras turns on XLA by itself on GPU machines; custom ops have no XLA kernel.
        self.supports_jit = False

    def call(self, inputs):
        return ops.lrn_relu(inputs, depth_radius=self.depth_radius, bias=self.bias,
                            alpha=self.alpha, beta=self.beta, relu=self.relu)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias,
                "alpha": self.alpha, "beta": self.beta, "relu": self.relu}
