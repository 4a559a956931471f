"""The TensorFlow backend of `python -m alexops.compare`: op level (stock, stock under XLA,
fused; a copy and a ReLU as yardsticks) and model level (the write-up's AlexNet).

On a CPU each call is timed with the host clock. On a GPU each timed step is several calls
back to back and one sync, so the GPU stays busy and the host's dispatch is reported apart.
"""
import concurrent.futures
import itertools
import os

import numpy as np
import tensorflow as tf

import alexops
from alexops import alexnet
from alexops.alexnet import LRN_PARAMS, POOL_PARAMS
from alexops.bench import agreement, report
from alexops.bench.timing import time_host

# Share of non-zero entries in the dy that reaches LRN in AlexNet: the gradient coming back
# through a 3x3/2 max-pool is about 15% non-zero. Stock LRNGrad skips zero entries.
SPARSE_DY_DENSITY = 0.15
# Input sets to rotate among: on a GPU together several times the L2 cache.
INPUT_SETS = 3
# Calls per timed step on a GPU (see the module's docstring).
GPU_CALLS_PER_STEP = 10


def _normal(shape, seed, dtype):
    """Standard normal values from `seed`, the same in every run and process: stateless, since a
    seeded tf.random op in eager mode gives what the random ops run before it decide."""
    return tf.cast(tf.random.stateless_normal(shape, seed=[seed, 0]), dtype)


def _forward_backward(forward, jit_compile=False):
    """A tf.function returning y and dx (both, so neither pass can be pruned)."""
    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = forward(x)
        return y, tape.gradient(y, x, output_gradients=dy)

    return step


def _pair(forward, forward_backward):
    """(forward, forward_backward) steps taking an input set (x, dy)."""
    return (lambda batch: forward(batch[0])), (lambda batch: forward_backward(*batch))


class TensorFlowBackend:
    name = "tf"
    unsupported = (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.NotFoundError,
                   tf.errors.InternalError, TypeError)

    def __init__(self, device):
        self.device = device
        self.on_gpu = "GPU" in device.upper()
        self.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    def description(self):
        if self.on_gpu:
            details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
            return details.get("device_name", "GPU")
        return None

    def inputs(self, shape, dtype):
        with tf.device(self.device):
            return [(_normal(shape, i, dtype), _normal(shape, 100 + i, dtype)) for i in range(INPUT_SETS)]

    def passes(self, inputs):
        sparse = []
        for i, (x, dy) in enumerate(inputs):
            kept = tf.random.stateless_uniform(dy.shape, seed=[200 + i, 0]) < SPARSE_DY_DENSITY
            sparse.append((x, dy * tf.cast(kept, dy.dtype)))
        return [("forward", 2, inputs, 0), ("forward+backward", 5, inputs, 1), ("fwd+bwd sparse dy", 5, sparse, 1)]

    def implementations(self, dtype):
        def stock(x):
            return tf.nn.lrn(tf.nn.relu(x), **LRN_PARAMS)

        def fused(x):
            return alexops.lrn_relu(x, **LRN_PARAMS)

        return {
            "stock": _pair(tf.function(stock, reduce_retracing=True), _forward_backward(stock)),
            "stock+xla": _pair(tf.function(stock, jit_compile=True, reduce_retracing=True),
                               _forward_backward(stock, jit_compile=True)),
            "fused": _pair(tf.function(fused, reduce_retracing=True), _forward_backward(fused)),
        }

    def block_inputs(self, shape, pooled_shape, dtype):
        with tf.device(self.device):
            return [(_normal(shape, i, dtype), _normal(pooled_shape, 100 + i, dtype)) for i in range(INPUT_SETS)]

    def block_implementations(self, dtype):
        """AlexNet's ReLU + LRN + max-pool: stock, stock under XLA, the fused LRN followed by
        tf.nn.max_pool2d, and the fused block."""
        def stock(x):
            return tf.nn.max_pool2d(tf.nn.lrn(tf.nn.relu(x), **LRN_PARAMS), **POOL_PARAMS)

        def fused_then_pool(x):
            return tf.nn.max_pool2d(alexops.lrn_relu(x, **LRN_PARAMS), **POOL_PARAMS)

        def fused_pool(x):
            return alexops.lrn_relu_max_pool(x, **LRN_PARAMS, **POOL_PARAMS)

        impls = {}
        for name, block, xla in (("stock", stock, False), ("stock+xla", stock, True),
                                 ("fused+pool", fused_then_pool, False), ("fused_pool", fused_pool, False)):
            impls[name] = _pair(tf.function(block, jit_compile=xla, reduce_retracing=True),
                                _forward_backward(block, jit_compile=xla))
        return impls

    def yardsticks(self, shape, dtype):
        """relu: tf.nn.relu (2 tensors), and relu + ReluGrad (5). copy: the same bytes moved
        by a copy into a preallocated buffer: on a CPU split over as many threads as the
        kernels use (one np.copyto alone runs on one core), on a GPU a device copy."""
        relu_forward = tf.function(tf.nn.relu, reduce_retracing=True)

        @tf.function(reduce_retracing=True)
        def relu_forward_backward(x, dy):
            return tf.nn.relu(x), tf.raw_ops.ReluGrad(gradients=dy, features=x)

        return {"copy": (self._copy_step(shape, dtype, 2), self._copy_step(shape, dtype, 5)),
                "relu": _pair(relu_forward, relu_forward_backward)}

    def _copy_step(self, shape, dtype, tensors):
        """A step that copies tensors/2 tensors' worth of bytes (reads as many as it writes),
        rotating among its own sources so that each copy starts cold."""
        n_bytes = int(np.prod(shape)) * tf.as_dtype(dtype).size * tensors // 2
        if self.on_gpu:
            with tf.device(self.device):
                sources = itertools.cycle([tf.random.uniform([n_bytes // 4]) for _ in range(INPUT_SETS)])
            deep_copy = tf.function(lambda t: tf.raw_ops.DeepCopy(x=t))
            return lambda batch: deep_copy(next(sources))
        sources = itertools.cycle([np.ones(n_bytes, np.uint8) for _ in range(INPUT_SETS)])
        destination = np.empty(n_bytes, np.uint8)
        bounds = np.linspace(0, n_bytes, self.threads + 1).astype(int)
        pool = concurrent.futures.ThreadPoolExecutor(self.threads)  # np.copyto releases the GIL

        def copy(batch):
            source = next(sources)
            list(pool.map(lambda i: np.copyto(destination[bounds[i]:bounds[i + 1]], source[bounds[i]:bounds[i + 1]]),
                          range(self.threads)))

        return copy

    def head(self, batch, n):
        return tuple(t[:n] for t in batch)

    def x_and_dy(self, batch):
        return batch

    def to_numpy(self, results, dtype=None):
        return [np.asarray(tf.cast(t, tf.float64)) for t in tf.nest.flatten(list(results))]

    def time(self, steps, settings, label, log, inputs):
        sync = tf.test.experimental.sync_devices if self.on_gpu else None
        return time_host(steps, settings["op_steps"], settings["op_burn_in"], label, log, inputs, sync,
                         GPU_CALLS_PER_STEP if self.on_gpu else 1)


def model_steps(model, lrn):
    """The write-up's two steps of `model` with lrn=`lrn`, as tf.functions: "forward" (to its
    output) and "forward+backward" (the gradients of l2_loss(output) for every weight and bias)."""
    @tf.function
    def forward_backward(images):
        with tf.GradientTape() as tape:
            loss = tf.nn.l2_loss(model(images, lrn=lrn))
        return tape.gradient(loss, model.variables_list)

    return {"forward": tf.function(lambda images: model(images, lrn=lrn)), "forward+backward": forward_backward}


def check_model_agreement(model, steps, variants, images, backend):
    """Each variant's steps (`steps`, of `model`) against stock's, with the same weights and
    images: AgreementError where one is off.

    The outputs must agree with stock in float32 (the images in the model's dtype, then cast)
    to float32's tolerance, the weights' gradients to 1e-3 of their largest magnitude. The
    gradients pass back through three max-pools, whose routing flips at a near tie where two
    LRNs round differently: with a batch of one such a flip moved a weight gradient by 4e-3. So
    in float32 and float64 the alexops variants' gradients are checked against stock's taken on
    their own routes, in the model's dtype (alexnet.STOCK_ROUTED_LIKE_ALEXOPS; in float32 they
    agree to about 4e-7 at any batch); stock's own gradients are not checked there. In float16
    and bfloat16 the convolutions' own rounding puts every variant's gradients, stock's too,
    some percent away from float32's (float16 about 4%, bfloat16 about 12% at --quick's size),
    far more than a flip: there they are checked against stock in float32, and a variant may be
    as far as 1.5 times stock in that dtype is (stock's LRN computed in float32 and rounded,
    where TensorFlow has no such LRN)."""
    dtype = model.weights["conv1/w"].dtype
    if dtype == tf.float32:
        stock_steps, float32_images = steps.get("stock") or model_steps(model, "stock"), images
    else:
        reference = alexnet.AlexNet(include_classifier=model.include_classifier, dtype=tf.float32)
        for name, weight in model.weights.items():
            reference.weights[name].assign(tf.cast(weight, tf.float32))
        stock_steps, float32_images = model_steps(reference, "stock"), tf.cast(images, tf.float32)
    sixteen_bit = dtype in (tf.float16, tf.bfloat16)
    yardstick = "stock" if "stock" in variants else alexnet.STOCK_IN_FLOAT32
    for pass_name in ("forward", "forward+backward"):
        routed = pass_name != "forward" and not sixteen_bit
        if routed:
            reference_steps, reference_images = model_steps(model, alexnet.STOCK_ROUTED_LIKE_ALEXOPS), images
            reference_name = f"stock routed like alexops in {dtype.name}"
        else:
            reference_steps, reference_images, reference_name = stock_steps, float32_images, "stock in float32"
        expected = backend.to_numpy([reference_steps[pass_name](reference_images)])
        results = {}  # each variant's, run once (stock's float16 forward-backward is slow on a CPU)
        tolerance = max(agreement.TOLERANCE[dtype.name], agreement.TOLERANCE["float32"])  # against float32
        if pass_name != "forward":
            tolerance = max(1e-3, tolerance)
            if sixteen_bit:
                own_steps = steps[yardstick] if yardstick in steps else model_steps(model, yardstick)
                results[yardstick] = backend.to_numpy([own_steps[pass_name](images)])
                stock_distance = agreement.max_relative_difference(expected, results[yardstick])
                if not np.isfinite(stock_distance):  # no bound to give: refuse, as for any NaN or Inf
                    raise agreement.AgreementError(
                        f"AlexNet {pass_name} {yardstick} in {dtype.name}: NaN or Inf where stock in float32 is "
                        "finite; refusing to time it (float16's range overflowed? the write-up's init grows "
                        "activations 2-3x a layer; try --init he)")
                tolerance = max(tolerance, 1.5 * stock_distance)
        for lrn in variants:
            if lrn == "stock" and (routed or dtype == tf.float32):
                continue  # the reference itself, or (routed) TensorFlow's own routes
            if lrn not in results:
                results[lrn] = backend.to_numpy([steps[lrn][pass_name](images)])
            agreement.check_agreement(f"AlexNet {pass_name} {lrn} in {dtype.name} vs {reference_name}",
                                      expected, results[lrn], dtype.name, tolerance)


def run_model_level(settings, log):
    """The write-up's benchmark: forward to pool5, and forward-backward of l2_loss(pool5)
    with respect to every weight and bias, stock vs fused, same weights and inputs."""
    device, dtype = settings["device"], settings["dtype"]
    on_gpu = "GPU" in device.upper()
    batch = settings["batch"]
    with tf.device(device):
        model = alexnet.AlexNet(include_classifier=settings["full_model"], init=settings["init"], dtype=dtype)
        image_shape = [batch, settings["image_size"], settings["image_size"], 3]
        images = [_normal(image_shape, i, dtype) for i in range(2)]
        variants = list(alexnet.VARIANTS)
        steps = {lrn: model_steps(model, lrn) for lrn in variants}
        backend = TensorFlowBackend(device)
        try:
            steps["stock"]["forward"](images[0])
        except backend.unsupported as error:
            log(f"  stock: not timed, no {tf.as_dtype(dtype).name} LRN here ({type(error).__name__})")
            variants.remove("stock")
        summary = alexnet.activation_summary(model, images[0], lrn=variants[0])
        log("  activation RMS (init=%s): %s" % (settings["init"], ", ".join(f"{k} {v:.3g}" for k, v in summary.items())))
        check_model_agreement(model, steps, variants, images[0], backend)
        rows = []
        sync = tf.test.experimental.sync_devices if on_gpu else None
        out_name = "fc8" if settings["full_model"] else "pool5"
        for pass_name in ("forward", "forward+backward"):
            stats = time_host({lrn: steps[lrn][pass_name] for lrn in variants}, settings["model_steps"],
                              settings["model_burn_in"], f"model {pass_name}", log, images, sync)
            rows += [report.model_row(f"alexnet to {out_name}", image_shape, pass_name, lrn, stats[lrn])
                     for lrn in variants]
    return rows


def default_device():
    return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
