"""TensorFlow benchmarks for `python -m alexops.compare`: op level and model level.

Every benchmark checks agreement between the implementations first and raises
AgreementError on a mismatch, so a wrong answer is never timed.
"""
import concurrent.futures
import os

import numpy as np
import tensorflow as tf

import alexops
from alexops import alexnet
from alexops import _agreement
from alexops._agreement import AgreementError  # noqa: F401  (compare catches it here)
from alexops.reference import lrn_relu_grad_reference, lrn_relu_reference
from alexops.timing import time_host, time_host_interleaved

LRN = alexnet.LRN_PARAMS


def check_agreement(what, expected, actual, dtype):
    """Tensors (or nests of them) to NumPy, then the shared check."""
    def as_numpy(nest):
        return [np.asarray(tf.cast(t, tf.float64)) for t in tf.nest.flatten(nest)]

    _agreement.check_agreement(what, as_numpy(expected), as_numpy(actual), tf.as_dtype(dtype).name)


def _sync_for(device):
    return tf.test.experimental.sync_devices if "GPU" in device.upper() else None


def _forward_backward(forward, jit_compile=False):
    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = forward(x)
        return y, tape.gradient(y, x, output_gradients=dy)

    return step


def op_implementations(device, dtype):
    """{impl: (forward step, forward+backward step)}; the XLA variant where it compiles."""
    def stock(x):
        return tf.nn.lrn(tf.nn.relu(x), **LRN)

    def fused(x):
        return alexops.lrn_relu(x, **LRN)

    impls = {
        "stock": (tf.function(stock, reduce_retracing=True), _forward_backward(stock)),
        "stock+xla": (tf.function(stock, jit_compile=True, reduce_retracing=True),
                      _forward_backward(stock, jit_compile=True)),
        "fused": (tf.function(fused, reduce_retracing=True), _forward_backward(fused)),
    }
    return impls


def copy_floor_ms(shape, dtype, device, repeats=15):
    """Median time of one device copy of a tensor of `shape` into a preallocated buffer: it
    moves 2 tensors' worth of bytes, so it is the forward's floor. On the CPU it is one large
    np.copyto (one thread), the floor the speed targets are stated against."""
    if "GPU" in device.upper():
        with tf.device(device):
            x = tf.cast(tf.random.normal(shape, dtype=tf.float32), dtype)
            stats = time_host(lambda _: tf.raw_ops.DeepCopy(x=x), repeats, 3, log=None,
                              sync=tf.test.experimental.sync_devices)
        return stats.median
    src = np.ones(shape, dtype=tf.as_dtype(dtype).as_numpy_dtype)
    dst = np.empty_like(src)
    return time_host(lambda _: np.copyto(dst, src), repeats, 3, log=None).median


def threaded_copy_ms(shape, dtype, threads, repeats=15):
    """The same copy split over `threads` threads (np.copyto releases the GIL): the floor
    for an op that uses every core, which one np.copyto can understate."""
    src = np.ones(shape, dtype=tf.as_dtype(dtype).as_numpy_dtype).reshape(-1)
    dst = np.empty_like(src)
    bounds = np.linspace(0, src.size, threads + 1).astype(int)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        def copy(_):
            list(pool.map(lambda i: np.copyto(dst[bounds[i]:bounds[i + 1]], src[bounds[i]:bounds[i + 1]]),
                          range(threads)))
        return time_host(copy, repeats, 3, log=None).median


# Share of non-zero entries in the dy that reaches LRN in AlexNet: the gradient coming back
# through a 3x3/2 max-pool is about 15% non-zero. Stock LRNGrad skips zero entries.
SPARSE_DY_DENSITY = 0.15
_UNSUPPORTED = (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.NotFoundError,
                tf.errors.InternalError, TypeError)


def _check_against_reference(what, impl_fns, x, dy, dtype):
    """Output and gradient on the first two images against the float64 NumPy reference."""
    forward, forward_backward = impl_fns
    x64 = tf.cast(x[:2], tf.float64).numpy()
    dy64 = tf.cast(dy[:2], tf.float64).numpy()
    params = {k: (float(np.float32(v)) if isinstance(v, float) else v) for k, v in LRN.items()}
    reference = (lrn_relu_reference(x64, **params), lrn_relu_grad_reference(x64, dy64, **params))
    check_agreement(f"{what} forward vs the float64 reference", reference[0], forward(x[:2]), dtype)
    check_agreement(f"{what} forward+backward vs the float64 reference", reference,
                    forward_backward(x[:2], dy[:2]), dtype)


def run_op_level(settings, log):
    device, dtype = settings["device"], settings["dtype"]
    rows = []
    for name, (height, width, channels) in settings["op_shapes"].items():
        shape = [settings["batch"], height, width, channels]
        with tf.device(device):
            inputs = [(tf.cast(tf.random.normal(shape, seed=i), dtype),
                       tf.cast(tf.random.normal(shape, seed=100 + i), dtype)) for i in range(3)]
            sparse_inputs = [(x, dy * tf.cast(tf.random.uniform(shape, seed=200 + i) < SPARSE_DY_DENSITY, dtype))
                             for i, (x, dy) in enumerate(inputs)]
            impls = op_implementations(device, dtype)
            x, dy = inputs[0]
            # Agreement first: every implementation against the reference, then fused
            # against stock on the whole batch. Stock TF has no LRN for some dtypes and
            # devices (bfloat16 and float64 on a CPU, XLA in half): those are left out.
            for impl, fns in list(impls.items()):
                try:
                    _check_against_reference(f"{impl} on {name} {shape}", fns, x, dy, dtype)
                except _UNSUPPORTED as error:
                    if impl == "fused":
                        raise
                    log(f"  {impl}: not timed, no {tf.as_dtype(dtype).name} LRN on {device} ({type(error).__name__})")
                    impls.pop(impl)
            if "stock" in impls:
                check_agreement(f"fused vs stock forward+backward on {name} {shape}", impls["stock"][1](x, dy),
                                impls["fused"][1](x, dy), dtype)
            copy_ms = copy_floor_ms(shape, dtype, device)
            if "GPU" not in device.upper():
                threads = os.cpu_count() or 1
                log(f"  copy of {name} ({int(np.prod(shape)) * tf.as_dtype(dtype).size / 1e6:.1f} MB): np.copyto "
                    f"{copy_ms:.2f} ms; split over {threads} threads {threaded_copy_ms(shape, dtype, threads):.2f} ms")
            sync = _sync_for(device)
            passes = (("forward", lambda xy, f: f[0](xy[0]), inputs, 2),
                      ("forward+backward", lambda xy, f: f[1](*xy), inputs, 5),
                      ("fwd+bwd sparse dy", lambda xy, f: f[1](*xy), sparse_inputs, 5))
            for pass_name, run, pass_inputs, tensors in passes:
                steps = {impl: (lambda xy, fns=fns: run(xy, fns)) for impl, fns in impls.items()}
                stats = time_host_interleaved(steps, settings["op_steps"], settings["op_burn_in"],
                                              f"op {name} {pass_name}", log, pass_inputs, sync)
                for impl in impls:
                    rows.append(_op_row(name, shape, pass_name, impl, stats[impl], dtype, tensors, copy_ms))
    return rows


def _op_row(name, shape, pass_name, impl, stats, dtype, tensors, copy_ms):
    tensor_bytes = int(np.prod(shape)) * tf.as_dtype(dtype).size
    floor_ms = copy_ms * tensors / 2
    return {"level": "op", "name": name, "shape": shape, "pass": pass_name, "impl": impl,
            "stats": stats, "bytes_moved": tensor_bytes * tensors, "floor_ms": floor_ms,
            "gb_per_s": tensor_bytes * tensors / (stats.median * 1e-3) / 1e9,
            "pct_of_floor": 100.0 * floor_ms / stats.median}


def run_model_level(settings, log):
    device, dtype = settings["device"], settings["dtype"]
    batch = settings["batch"]
    with tf.device(device):
        model = alexnet.AlexNet(include_classifier=settings["full_model"], init=settings["init"], dtype=dtype)
        image_shape = [batch, settings["image_size"], settings["image_size"], 3]
        images = [tf.cast(tf.random.normal(image_shape, seed=i), dtype) for i in range(2)]
        summary = alexnet.activation_summary(model, images[0])
        log("  activation RMS (init=%s): %s" % (settings["init"], ", ".join(f"{k} {v:.3g}" for k, v in summary.items())))
        steps = {}
        for lrn in ("stock", "fused"):
            forward = tf.function(lambda im, lrn=lrn: model(im, lrn=lrn))

            @tf.function
            def forward_backward(im, lrn=lrn):
                with tf.GradientTape() as tape:
                    loss = tf.nn.l2_loss(model(im, lrn=lrn))
                return tape.gradient(loss, model.variables_list)

            steps[lrn] = {"forward": forward, "forward+backward": forward_backward}
        for pass_name in ("forward", "forward+backward"):
            check_agreement(f"AlexNet {pass_name} fused vs stock", steps["stock"][pass_name](images[0]),
                            steps["fused"][pass_name](images[0]), dtype)
        rows = []
        sync = _sync_for(device)
        out_name = "fc8" if settings["full_model"] else "pool5"
        for pass_name in ("forward", "forward+backward"):
            stats = time_host_interleaved({lrn: steps[lrn][pass_name] for lrn in ("stock", "fused")},
                                          settings["model_steps"], settings["model_burn_in"],
                                          f"model {pass_name}", log, images, sync)
            for lrn in ("stock", "fused"):
                rows.append({"level": "model", "name": f"alexnet to {out_name}", "shape": image_shape,
                             "pass": pass_name, "impl": lrn, "stats": stats[lrn]})
    return rows


def describe_device(device):
    if "GPU" in device.upper():
        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        return details.get("device_name", "GPU")
    return None


def default_device():
    return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"

