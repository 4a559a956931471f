"""python -m alexops.compare: what the fused ReLU+LRN buys over stock tf.nn.lrn, measured.

Op level: the two AlexNet LRN shapes, forward and forward+backward, stock (relu + tf.nn.lrn
in a tf.function), stock under XLA, and fused, beside two yardsticks: a copy of the same
bytes and a plain ReLU (and ReluGrad), the cheapest thing that can be done to the tensor.
Block level: AlexNet's whole ReLU + LRN + 3x3/2 max-pool on the same shapes: stock, stock
under XLA, the fused LRN then tf.nn.max_pool2d, and alexops.lrn_relu_max_pool.
With --backend cupy (a GPU, no TensorFlow): fused vs ReLU + cuDNN LRN, with the same
yardsticks, timed with CUDA events.
Model level: the write-up's AlexNet benchmark (forward to pool5, and forward-backward of
l2_loss(pool5) w.r.t. every weight), stock vs fused vs fused_pool, same weights and inputs.
Implementations are checked for agreement before anything is timed.
"""
import argparse
import os
import platform
import sys

from alexops import _validate, alexnet
from alexops.bench import agreement, oplevel, report


def _dtype_list(text):
    dtypes = list(dict.fromkeys(d.strip() for d in text.split(",") if d.strip()))  # each once, in order
    unknown = [d for d in dtypes if d not in _validate.FLOAT_DTYPE_NAMES]
    if not dtypes or unknown:
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(_validate.FLOAT_DTYPE_NAMES)}, got {text!r}")
    return dtypes


def _count(least):
    """An argparse type: an int of at least `least` (a batch or step count of 0 would time
    nothing, or the default, and a negative one is no count)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    return parse


def _label_dtype(rows, dtype, several):
    """Record each row's dtype; with several dtypes in one run, name it too."""
    for r in rows:
        r["dtype"] = dtype
        if several:
            r["name"] = f"{r['name']} {dtype}"
    return rows


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m alexops.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="TF device: cpu, gpu, or a name like /GPU:1 (default: GPU if TF sees one)")
    p.add_argument("--backend", choices=("tf", "cupy"), default="tf")
    p.add_argument("--batch", type=_count(1), default=None, help="batch size (default 64; 8 with --quick)")
    p.add_argument("--steps", type=_count(1), default=None, help="timed steps (default depends on device, printed)")
    p.add_argument("--burn-in", type=_count(0), default=None, help="untimed steps first (default printed)")
    p.add_argument("--dtype", type=_dtype_list, default=["float32"],
                   help=f"{_validate.FLOAT_DTYPES_TEXT}, or several separated by commas, which the op level then "
                        "runs side by side in one process (the model level uses the first)")
    p.add_argument("--what", choices=("op", "block", "model", "all"), default="all",
                   help="op: the LRN alone; block: AlexNet's ReLU + LRN + max-pool; model: AlexNet; all of them")
    p.add_argument("--full-model", action="store_true", help="the 8-layer AlexNet (fc6-fc8) at model level")
    p.add_argument("--init", choices=("writeup", "he"), default="writeup",
                   help="weights: the write-up's truncated normal stddev 0.1, or He scaling")
    p.add_argument("--json", metavar="PATH", help="write all results as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG chart of times, floors and speed-ups (needs matplotlib)")
    p.add_argument("--quick", action="store_true", help="tiny settings, a smoke run")
    return p.parse_args(argv)


def choose_settings(args, on_gpu):
    """Defaults sized for a ~2 minute run on a 2-core CPU, the write-up's 10 + 100 on a GPU."""
    if args.quick:
        steps = dict(op_steps=3, op_burn_in=1, model_steps=2, model_burn_in=1)
    elif on_gpu:
        steps = dict(op_steps=100, op_burn_in=10, model_steps=100, model_burn_in=10)
    else:
        steps = dict(op_steps=20, op_burn_in=3, model_steps=10, model_burn_in=2)
    if args.steps is not None:
        steps.update(op_steps=args.steps, model_steps=args.steps)
    if args.burn_in is not None:
        steps.update(op_burn_in=args.burn_in, model_burn_in=args.burn_in)
    batch = args.batch if args.batch is not None else (8 if args.quick else 64)
    image_size = 224
    if args.quick:  # the smallest image the classifier takes (its fc6 needs pool5 6x6), or a small one
        image_size = alexnet.CLASSIFIER_IMAGE_SIZES[0] if args.full_model else 99
    return dict(steps, batch=batch, dtype=",".join(args.dtype), op_shapes=oplevel.OP_SHAPES,
                full_model=args.full_model, init=args.init, image_size=image_size)


def describe_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _log(message):
    print(message, flush=True)


def _run_op_level(backend, settings, machine, dtypes, what):
    rows = []
    for dtype in dtypes:
        for level, run in (("op", oplevel.run_op_level), ("block", oplevel.run_block_level)):
            if what not in (level, "all"):
                continue
            _log(f"{level} level ({backend.name}) on {machine['device']}, {dtype}, batch {settings['batch']}: "
                 f"{settings['op_steps']} timed steps after {settings['op_burn_in']} burn-in")
            rows += _label_dtype(run(backend, dict(settings, dtype=dtype), _log), dtype, len(dtypes) > 1)
    return rows


def resolve_device(text, tf, default_device):
    """--device as "/CPU:i" or "/GPU:i", one that TensorFlow has. (TensorFlow's soft placement
    would run ops asked for on a device it lacks, say /GPU:7 or a TPU, on another one, and the
    rows would be labelled with the wrong device.)"""
    if text == "auto":
        return default_device()
    try:
        spec = tf.DeviceSpec.from_string(f"/{text}:0" if text.lower() in ("cpu", "gpu") else text)
    except ValueError as error:
        raise SystemExit(f"--device {text}: not a device name ({error}); expected cpu, gpu, or one like /GPU:1")
    kind = (spec.device_type or "").upper()
    if kind not in ("CPU", "GPU"):
        raise SystemExit(f"--device {text}: expected cpu, gpu, or one like /GPU:1")
    count, index = len(tf.config.list_logical_devices(kind)), spec.device_index or 0
    if count == 0:
        raise SystemExit(f"--device {text}: TensorFlow sees no {kind}")
    if index >= count:
        raise SystemExit(f"--device {text}: TensorFlow sees {count} {kind} device(s), /{kind}:0 to /{kind}:{count - 1}")
    return f"/{kind}:{index}"


def run_tf(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from alexops.bench import tf_backend

    tf.get_logger().setLevel("ERROR")  # retracing notices: agreement runs on a slice first
    device = resolve_device(args.device, tf, tf_backend.default_device)
    on_gpu = device.startswith("/GPU")
    settings = dict(choose_settings(args, on_gpu), device=device)
    backend = tf_backend.TensorFlowBackend(device)
    from alexops import _loader

    machine = {"device": backend.description() or describe_cpu(), "tensorflow": tf.__version__,
               "threads": backend.threads, "python": platform.python_version(),
               "build": _loader.build_summary()}
    rows = []
    if args.what in ("op", "block", "all"):
        rows += _run_op_level(backend, settings, machine, args.dtype, args.what)
    if args.what in ("model", "all"):
        dtype = args.dtype[0]
        _log(f"model level: AlexNet {'8-layer' if args.full_model else 'to pool5'}, {dtype}, batch "
             f"{settings['batch']}, {settings['image_size']}x{settings['image_size']}x3, {settings['model_steps']} "
             f"timed steps after {settings['model_burn_in']} burn-in (the write-up: 100 after 10; set "
             "--steps/--burn-in)")
        rows += _label_dtype(tf_backend.run_model_level(dict(settings, dtype=dtype), _log), dtype, False)
    return machine, settings, rows


def run_cupy(args):
    from alexops.bench import cupy_backend

    if args.what == "model":
        raise SystemExit("--backend cupy times the op and the block; the model level needs --backend tf")
    settings = choose_settings(args, on_gpu=True)
    backend = cupy_backend.CupyBackend()
    machine = {"device": backend.description(), "backend": "cupy", "python": platform.python_version()}
    _log(f"CuPy: each step is {cupy_backend.LAUNCHES_PER_STEP} launches between two CUDA events, rotating among "
         f"input sets of at least {cupy_backend.ROTATION_BYTES >> 20} MB together")
    return machine, settings, _run_op_level(backend, settings, machine, args.dtype, args.what)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report.check_output_paths(args.json, args.plot)
    try:
        machine, settings, rows = run_cupy(args) if args.backend == "cupy" else run_tf(args)
    except agreement.AgreementError as error:
        raise SystemExit(f"error: {error}")
    report.add_derived(rows)
    if args.json:
        report.write_json(args.json, machine, settings, rows)
    if args.plot:
        report.write_plot(args.plot, rows, f"alexops vs stock LRN on {machine['device']}")
    _log(f"\nalexops.compare on {machine['device']} ({settings['dtype']}, batch {settings['batch']}"
         + (f"; {machine['build']}" if machine.get("build") else "") + f"); {report.LEGEND}")
    _log(report.format_table(rows))
    return 0
