"""Keras 3 layers over alexops.lrn_relu and alexops.lrn_relu_max_pool."""
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


@keras.saving.register_keras_serializable(package="alexops")
class LRNReLUMaxPool(keras.layers.Layer):
    """max_pool2d(LRN(relu(x))) over NHWC input, AlexNet's block in one op: the arguments of
    tf.nn.lrn, then the max-pool's ksize, strides (an int or a pair) and padding."""

    def __init__(self, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3, strides=2, padding="VALID",
                 **kwargs):
        _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
        ksize, strides, padding = _validate.check_pool_arguments(ksize, strides, padding)
        super().__init__(**kwargs)
        self.depth_radius = depth_radius
        self.bias = bias
        self.alpha = alpha
        self.beta = beta
        self.relu = relu
        self.ksize = ksize
        self.strides = strides
        self.padding = padding
        self.supports_jit = False  # as LRNReLU: custom ops have no XLA kernel

    def call(self, inputs):
        return ops.lrn_relu_max_pool(inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha,
                                     beta=self.beta, relu=self.relu, ksize=self.ksize, strides=self.strides,
                                     padding=self.padding)

    def compute_output_shape(self, input_shape):
        sizes = []
        for size, k, s in zip(input_shape[1:3], self.ksize, self.strides):
            if size is None:
                sizes.append(None)
            elif self.padding == "SAME":
                sizes.append(-(-size // s))
            else:
                sizes.append(max(0, int((size - k + s) / s)))
        return (input_shape[0], *sizes, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias, "alpha": self.alpha,
                "beta": self.beta, "relu": self.relu, "ksize": list(self.ksize), "strides": list(self.strides),
                "padding": self.padding}
