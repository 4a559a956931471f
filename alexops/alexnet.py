"""AlexNet as in the original TensorFlow benchmark write-up, NHWC, with a switchable LRN.

Five conv layers (LRN after conv1 and conv2), overlapping 3x3/2 max-pools, ReLU everywhere;
224x224x3 input, batch 64; pool5 is [batch, 6, 6, 256]. Optionally the full 8-layer network
(fc6 4096, fc7 4096 with dropout, fc8 1000).

`lrn="stock"` runs tf.nn.relu then tf.nn.lrn (then the 3x3/2 max-pool); `lrn="fused"` runs
alexops.lrn_relu then the max-pool; `lrn="fused_pool"` runs AlexNet's whole ReLU + LRN +
max-pool block as one op, alexops.lrn_relu_max_pool. One AlexNet object holds one set of
weights, so every variant runs with the same weights.

`LRN_PARAMS` is the write-up's LRN, in TensorFlow's convention (alpha not divided by 2R+1);
the benchmarks and tests take it from here. Importing this module does not import
TensorFlow (the CuPy benchmark needs LRN_PARAMS on machines without it); the model does.

Weights: `init="writeup"` is the write-up's truncated normal with stddev 0.1 (biases 0).
Its activations grow about 2-3x per conv layer on unit-variance input (see
`activation_summary`); `init="he"` (truncated normal with stddev sqrt(2 / fan_in)) keeps
them near unit scale. `seed` (any int64) fixes them: on one kind of device, the same seed gives
the same weights in every process and dtype (rounded from float32's), whatever random ops
ran before.
"""
import alexops
from alexops import _validate

# The LRN of the AlexNet write-up: depth_radius 4, bias 1, alpha 0.001/9, beta 0.75.
LRN_PARAMS = dict(depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
IMAGE_SHAPE = (224, 224, 3)

# name: (kernel height, kernel width, in channels, out channels, stride)
CONV_LAYERS = {
    "conv1": (11, 11, 3, 64, 4),
    "conv2": (5, 5, 64, 192, 1),
    "conv3": (3, 3, 192, 384, 1),
    "conv4": (3, 3, 384, 256, 1),
    "conv5": (3, 3, 256, 256, 1),
}
FC_LAYERS = {"fc6": (6 * 6 * 256, 4096), "fc7": (4096, 4096), "fc8": (4096, 1000)}


def _tf():
    import tensorflow as tf

    return tf


def _initial(shape, init, seed, dtype):
    """A layer's weights: a truncated normal drawn from `seed` = [model's seed, layer index].
    Stateless, so that AlexNet(seed=s) gives the same weights every time, whatever random ops
    ran before it (a seeded tf.random op in eager mode does not); drawn in float32 and rounded,
    so that one seed gives one network in every dtype."""
    tf = _tf()
    fan_in = 1
    for size in shape[:-1]:
        fan_in *= size
    if init == "writeup":
        stddev = 0.1
    elif init == "he":
        stddev = (2.0 / fan_in) ** 0.5
    else:
        raise ValueError(f"init must be 'writeup' or 'he', got {init!r}")
    return tf.cast(tf.random.stateless_truncated_normal(shape, seed=seed, stddev=stddev), dtype)


VARIANTS = ("stock", "fused", "fused_pool")
# Not timed: stock's LRN computed in float32 and rounded to the model's dtype, what stock would
# give in a dtype its kernels lack (bfloat16 and float64 on CPU): the harness's accuracy
# yardstick there.
STOCK_IN_FLOAT32 = "stock_in_float32"
# Not timed: STOCK_IN_FLOAT32 with its forward values replaced by alexops.lrn_relu's (exactly),
# so that its max-pools route every gradient as the alexops variants' do, while its LRN gradient
# is stock's. At a near tie in a pool window, two LRNs that round differently send the window's
# gradient to different pixels; with a batch of one that moved a weight gradient by up to 0.4%
# of its largest magnitude. Against this one the harness checks the alexops variants' gradients
# without that noise.
STOCK_ROUTED_LIKE_ALEXOPS = "stock_routed_like_alexops"
# The overlapping max-pool after every LRN (and after conv5).
POOL_PARAMS = dict(ksize=3, strides=2, padding="VALID")


def _max_pool(x):
    return _tf().nn.max_pool2d(x, **POOL_PARAMS)


def _pooled(size):
    """One axis through a VALID max-pool of POOL_PARAMS (0 where the window does not fit)."""
    return max(0, (size - POOL_PARAMS["ksize"]) // POOL_PARAMS["strides"] + 1)


def _conv5_size(image_size):
    """conv5's size along one image axis: the convolutions are SAME, so only conv1's stride and
    pool1 and pool2 shrink it."""
    size = -(-image_size // CONV_LAYERS["conv1"][4])
    return _pooled(_pooled(size))


# The smallest image side the network takes: pool5's window must fit in conv5 (57). Below it
# TensorFlow's CPU max-pool (oneDNN) does not give an empty output: it fails, or with a 1x1
# input kills the process with SIGFPE. So the model refuses such images itself.
MIN_IMAGE_SIZE = next(n for n in range(1, 1024) if _conv5_size(n) >= POOL_PARAMS["ksize"])
# The image sides for which pool5 is 6x6, as fc6 needs (217 to 248).
CLASSIFIER_IMAGE_SIZES = [n for n in range(1, 1024) if _pooled(_conv5_size(n)) == 6]


def _stock_in_float32(x):
    """relu then tf.nn.lrn, in float32 (TensorFlow's CPU LRN has no bfloat16 or float64
    kernel), rounded to x's dtype."""
    tf = _tf()
    return tf.cast(tf.nn.lrn(tf.nn.relu(tf.cast(x, tf.float32)), **LRN_PARAMS), x.dtype)


def relu_lrn_pool(x, lrn):
    """The ReLU + LRN + max-pool after conv1 and conv2: (pooled, the LRN's output or None)."""
    if lrn == "fused_pool":
        return alexops.lrn_relu_max_pool(x, **LRN_PARAMS, **POOL_PARAMS), None
    if lrn == "fused":
        y = alexops.lrn_relu(x, **LRN_PARAMS)
    elif lrn == "stock":
        tf = _tf()
        y = tf.nn.lrn(tf.nn.relu(x), **LRN_PARAMS)
    elif lrn == STOCK_IN_FLOAT32:
        y = _stock_in_float32(x)
    elif lrn == STOCK_ROUTED_LIKE_ALEXOPS:
        tf = _tf()
        stock = _stock_in_float32(x)
        # alexops' values + exactly 0 forward; backward, stock's LRN gradient alone.
        y = tf.stop_gradient(alexops.lrn_relu(x, **LRN_PARAMS)) + (stock - tf.stop_gradient(stock))
    else:
        raise ValueError(f"lrn must be one of {', '.join(VARIANTS)}, got {lrn!r}")
    return _max_pool(y), y


class AlexNet:
    """Weights (tf.Variables in `weights`) plus the forward pass; call with lrn= one of VARIANTS."""

    def __init__(self, include_classifier=False, init="writeup", seed=0, dtype="float32", dropout_rate=0.5):
        tf = _tf()
        dtype = tf.as_dtype(dtype)
        _validate.check_dtype(dtype.name, "dtype")
        seed = _validate.int_at_least(seed, -_validate.INT64_MAX - 1, "seed")  # a stateless seed is an int64
        # (tf.nn.dropout would refuse a bad rate only when a training call reaches it.)
        _validate.check_real(dropout_rate, "dropout_rate")
        if not 0 <= dropout_rate < 1:
            raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
        self.include_classifier = include_classifier
        self.dropout_rate = dropout_rate
        self.weights = {}
        layers = dict(CONV_LAYERS)
        shapes = {name: (kh, kw, cin, cout) for name, (kh, kw, cin, cout, _) in layers.items()}
        if include_classifier:
            shapes.update(FC_LAYERS)
        for index, (name, shape) in enumerate(shapes.items()):
            self.weights[name + "/w"] = tf.Variable(_initial(shape, init, [seed, index], dtype), name=name + "_w")
            self.weights[name + "/b"] = tf.Variable(tf.zeros([shape[-1]], dtype), name=name + "_b")

    def _conv(self, x, name):
        tf = _tf()
        stride = CONV_LAYERS[name][4]
        y = tf.nn.conv2d(x, self.weights[name + "/w"], strides=stride, padding="SAME")
        return tf.nn.bias_add(y, self.weights[name + "/b"])

    def _check_images(self, images):
        """images, refused where their static shape is wrong; where rows or cols are not known
        until run time, with an assertion that runs before the first op."""
        tf = _tf()
        images = tf.convert_to_tensor(images)
        if images.shape.rank is not None and images.shape.rank != 4:
            raise ValueError(f"AlexNet takes NHWC images [batch, rows, cols, 3], got shape {tuple(images.shape)}")
        sizes = images.shape[1:3] if images.shape.rank == 4 else [None, None]
        for size in sizes:
            if size is not None and size < MIN_IMAGE_SIZE:
                raise ValueError(f"AlexNet needs images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} (pool5's 3x3 "
                                 f"window must fit in conv5), got {tuple(images.shape)}")
            if size is not None and self.include_classifier and size not in CLASSIFIER_IMAGE_SIZES:
                raise ValueError(f"AlexNet's classifier needs pool5 of 6x6x256: image sides "
                                 f"{CLASSIFIER_IMAGE_SIZES[0]} to {CLASSIFIER_IMAGE_SIZES[-1]} (224 in the "
                                 f"write-up), got {tuple(images.shape)}")
        if None in sizes:
            check = tf.debugging.assert_greater_equal(
                tf.shape(images)[1:3], MIN_IMAGE_SIZE,
                message=f"AlexNet needs images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} (rows, cols)")
            with tf.control_dependencies([check]):
                images = tf.identity(images)
        return images

    def __call__(self, images, lrn="fused", training=False, return_activations=False):
        tf = _tf()
        images = self._check_images(images)
        acts = {}
        acts["conv1"] = self._conv(images, "conv1")
        acts["pool1"], lrn1 = relu_lrn_pool(acts["conv1"], lrn)
        acts["conv2"] = self._conv(acts["pool1"], "conv2")
        acts["pool2"], lrn2 = relu_lrn_pool(acts["conv2"], lrn)
        acts["conv3"] = tf.nn.relu(self._conv(acts["pool2"], "conv3"))
        acts["conv4"] = tf.nn.relu(self._conv(acts["conv3"], "conv4"))
        acts["conv5"] = tf.nn.relu(self._conv(acts["conv4"], "conv5"))
        acts["pool5"] = out = _max_pool(acts["conv5"])
        for name, y in (("lrn1", lrn1), ("lrn2", lrn2)):
            if y is not None:
                acts[name] = y
        if self.include_classifier:
            # [batch, -1]: where pool5 is not 6x6 (sizes known only at run time), fc6's matmul
            # then refuses it, instead of the batch changing size.
            out = tf.reshape(out, [tf.shape(out)[0], -1])
            for name in ("fc6", "fc7"):
                out = tf.nn.relu(tf.matmul(out, self.weights[name + "/w"]) + self.weights[name + "/b"])
                if training:
                    out = tf.nn.dropout(out, rate=self.dropout_rate)
            acts["fc8"] = out = tf.matmul(out, self.weights["fc8/w"]) + self.weights["fc8/b"]
        return (out, acts) if return_activations else out

    @property
    def variables_list(self):
        return list(self.weights.values())


def activation_summary(model, images, lrn="stock"):
    """{layer: root-mean-square activation} for one forward pass."""
    tf = _tf()
    _, acts = model(images, lrn=lrn, return_activations=True)
    return {name: float(tf.sqrt(tf.reduce_mean(tf.square(tf.cast(a, tf.float32))))) for name, a in acts.items()}
