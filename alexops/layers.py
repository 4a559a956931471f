"""Keras 3 layers over alexops.lrn_relu and alexops.lrn_relu_max_pool. They run TensorFlow ops,
so they need Keras's TensorFlow backend; under another backend they refuse to be made."""
import keras

from alexops import _validate, ops


def _check_tensorflow_backend(layer_name):
    """NotImplementedError (as Keras's own TensorFlow-only TFSMLayer raises) unless Keras runs
    TensorFlow: under JAX a jitted step hands the op tracers it cannot take, and the error then
    named neither the backend nor the layer; eager calls returned TensorFlow tensors."""
    backend = keras.config.backend()
    if backend != "tensorflow":
        raise NotImplementedError(
            f"alexops.layers.{layer_name} runs TensorFlow ops, so it needs Keras's TensorFlow backend, but "
            f"this Keras runs the {backend!r} backend: set KERAS_BACKEND=tensorflow before Keras is imported "
            f"(alexops.numpy runs the same kernels on NumPy arrays without TensorFlow)")


class _LRNLayer(keras.layers.Layer):
    """What both layers share: tf.nn.lrn's arguments (checked, stored, in the config) and no XLA."""

    def __init__(self, depth_radius, bias, alpha, beta, relu, **kwargs):
        _check_tensorflow_backend(type(self).__name__)
        _validate.check_lrn_arguments(depth_radius, bias, alpha, beta, relu)
        super().__init__(**kwargs)
        self.depth_radius = depth_radius
        self.bias = bias
        self.alpha = alpha
        self.beta = beta
        self.relu = relu
        # Keras turns on XLA by itself on GPU machines; custom ops have no XLA kernel.
        self.supports_jit = False
        # NHWC only: Keras then refuses another rank when the layer is called, symbolic
        # inputs included, with its own message (as its pooling layers do).
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _lrn_arguments(self):
        return {"depth_radius": self.depth_radius, "bias": self.bias, "alpha": self.alpha, "beta": self.beta,
                "relu": self.relu}

    def get_config(self):
        return {**super().get_config(), **self._lrn_arguments()}

    def _check_nhwc(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"{type(self).__name__} takes 4-D NHWC input [batch, rows, cols, depth], got shape "
                             f"{tuple(input_shape)}")


@keras.saving.register_keras_serializable(package="alexops")
class LRNReLU(_LRNLayer):
    """y = LRN(relu(x)) over the channel axis of NHWC input; arguments as tf.nn.lrn."""

    def __init__(self, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, **kwargs):
        super().__init__(depth_radius, bias, alpha, beta, relu, **kwargs)

    def call(self, inputs):
        return ops.lrn_relu(inputs, **self._lrn_arguments())

    def compute_output_shape(self, input_shape):
        self._check_nhwc(input_shape)
        return input_shape


@keras.saving.register_keras_serializable(package="alexops")
class LRNReLUMaxPool(_LRNLayer):
    """max_pool2d(LRN(relu(x))) over NHWC input, AlexNet's block in one op: the arguments of
    tf.nn.lrn, then the max-pool's ksize, strides (as alexops.lrn_relu_max_pool takes them) and
    padding ("valid" or "same" in any case, as Keras's pooling layers take it)."""

    def __init__(self, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, relu=True, ksize=3, strides=2, padding="VALID",
                 **kwargs):
        if isinstance(padding, str):
            padding = padding.upper()
        ksize, strides, padding = _validate.check_pool_arguments(ksize, strides, padding)
        super().__init__(depth_radius, bias, alpha, beta, relu, **kwargs)
        self.ksize = ksize
        self.strides = strides
        self.padding = padding

    def call(self, inputs):
        return ops.lrn_relu_max_pool(inputs, **self._lrn_arguments(), ksize=self.ksize, strides=self.strides,
                                     padding=self.padding)

    def compute_output_shape(self, input_shape):
        self._check_nhwc(input_shape)
        sizes = []
        for size, k, s in zip(input_shape[1:3], self.ksize, self.strides):
            if size is None:
                sizes.append(None)
            elif self.padding == "SAME":
                sizes.append(-(-size // s))
            else:  # (size - k + s) / s truncated as TensorFlow does, in exact integers (0 where the op refuses)
                sizes.append(max(0, size - k + s) // s)
        return (input_shape[0], *sizes, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "ksize": list(self.ksize), "strides": list(self.strides),
                "padding": self.padding}
