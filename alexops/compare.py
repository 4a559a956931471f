"""python -m alexops.compare: what the fused ReLU+LRN buys over stock tf.nn.lrn, measured.

Op level: the two AlexNet LRN shapes, forward and forward+backward, stock (relu + tf.nn.lrn
in a tf.function), stock under XLA, and fused; with --backend cupy (a GPU, no TensorFlow):
fused vs ReLU + cuDNN LRN, beside a device copy of the same bytes.
Model level: the write-up's AlexNet benchmark (forward to pool5, and forward-backward of
l2_loss(pool5) w.r.t. every weight), stock vs fused, same weights and inputs.
Implementations are checked for agreement before anything is timed.
"""
import argparse
import json
import os
import platform
import sys

import numpy as np

OP_SHAPES = {"lrn1": (56, 56, 64), "lrn2": (27, 27, 192)}  # [rows, cols, depth] after conv1, conv2
STOCK_IMPLS = ("stock", "relu+cudnn")


DTYPES = ("float16", "bfloat16", "float32", "float64")


def _dtype_list(text):
    dtypes = [d.strip() for d in text.split(",") if d.strip()]
    unknown = [d for d in dtypes if d not in DTYPES]
    if not dtypes or unknown:
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(DTYPES)}, got {text!r}")
    return dtypes


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
    p.add_argument("--batch", type=int, default=None, help="batch size (default 64; 8 with --quick)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default depends on device, printed)")
    p.add_argument("--burn-in", type=int, default=None, help="untimed steps first (default printed)")
    p.add_argument("--dtype", type=_dtype_list, default=["float32"],
                   help="float16, bfloat16, float32 or float64, or several separated by commas, which the op "
                        "level then runs side by side in one process (the model level uses the first)")
    p.add_argument("--what", choices=("op", "model", "all"), default="all")
    p.add_argument("--full-model", action="store_true", help="the 8-layer AlexNet (fc6-fc8) at model level")
    p.add_argument("--init", choices=("writeup", "he"), default="writeup",
                   help="weights: the write-up's truncated normal stddev 0.1, or He scaling")
    p.add_argument("--json", metavar="PATH", help="write all results as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG chart of times and speed-ups (needs matplotlib)")
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
    batch = args.batch or (8 if args.quick else 64)
    return dict(steps, batch=batch, dtype=",".join(args.dtype), op_shapes=OP_SHAPES, full_model=args.full_model,
                init=args.init, image_size=224 if not args.quick else 99)


def describe_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _format_ms(value):
    return f"{value:9.3f}" if value < 100 else f"{value:9.1f}"


def add_speedups(rows):
    """speed-up = stock median / this median, within each (level, name, pass)."""
    baseline = {(r["level"], r["name"], r["pass"]): r["stats"].median for r in rows if r["impl"] in STOCK_IMPLS}
    for r in rows:
        stock = baseline.get((r["level"], r["name"], r["pass"]))
        r["speedup_vs_stock"] = stock / r["stats"].median if stock else None


def format_table(rows):
    header = (f"{'level':5} {'what':16} {'pass':17} {'impl':10} {'median ms':>9} {'mean +/- sd ms':>19} "
              f"{'min':>9} {'max':>9} {'GB/s':>7} {'% floor':>7} {'speed-up':>8}")
    lines = [header, "-" * len(header)]
    for r in rows:
        s = r["stats"]
        gbps = f"{r['gb_per_s']:7.1f}" if "gb_per_s" in r else f"{'':7}"
        floor = f"{r['pct_of_floor']:6.0f}%" if "pct_of_floor" in r else f"{'':7}"
        speedup = f"{r['speedup_vs_stock']:7.2f}x" if r.get("speedup_vs_stock") else f"{'':8}"
        lines.append(f"{r['level']:5} {r['name']:16} {r['pass']:17} {r['impl']:10} {_format_ms(s.median)} "
                     f"{s.mean:10.3f} +/- {s.sd:6.3f} {_format_ms(s.min)} {_format_ms(s.max)} {gbps} {floor} {speedup}")
    return "\n".join(lines)


def write_json(path, machine, settings, rows):
    results = []
    for r in rows:
        entry = {k: v for k, v in r.items() if k != "stats"}
        entry.update(r["stats"].as_dict())
        results.append(entry)
    with open(path, "w") as f:
        json.dump({"machine": machine, "settings": {k: v for k, v in settings.items()}, "results": results}, f,
                  indent=1)


def write_plot(path, rows, title):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise SystemExit(f"--plot needs matplotlib (pip install matplotlib): {error}")
    groups = sorted({(r["level"], r["name"], r["pass"]) for r in rows}, key=lambda g: (g[0] != "op", g))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    fig, (ax_time, ax_speed) = plt.subplots(2, 1, figsize=(max(8, 1.6 * len(groups)), 8))
    width = 0.8 / len(impls)
    for i, impl in enumerate(impls):
        times, speedups = [], []
        for g in groups:
            match = [r for r in rows if (r["level"], r["name"], r["pass"]) == g and r["impl"] == impl]
            times.append(match[0]["stats"].median if match else 0)
            speedups.append((match[0].get("speedup_vs_stock") or 0) if match else 0)
        positions = np.arange(len(groups)) + i * width
        ax_time.bar(positions, times, width, label=impl)
        ax_speed.bar(positions, speedups, width, label=impl)
    labels = [f"{lvl} {name}\n{pass_name}" for lvl, name, pass_name in groups]
    for ax in (ax_time, ax_speed):
        ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, labels, fontsize=8)
        ax.legend()
    ax_time.set_ylabel("median ms per batch")
    ax_time.set_yscale("log")
    ax_speed.set_ylabel("speed-up over stock")
    ax_speed.axhline(1.0, color="gray", linewidth=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _log(message):
    print(message, flush=True)


def run_tf(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from alexops import _bench_tf as bench

    tf.get_logger().setLevel("ERROR")  # retracing notices: agreement runs on a slice first

    if args.device == "auto":
        device = bench.default_device()
    elif args.device.lower() in ("cpu", "gpu"):
        device = f"/{args.device.upper()}:0"
    else:
        device = args.device
    on_gpu = "GPU" in device.upper()
    if on_gpu and not tf.config.list_physical_devices("GPU"):
        raise SystemExit(f"--device {args.device}: TensorFlow sees no GPU")
    settings = choose_settings(args, on_gpu)
    settings["device"] = device
    machine = {"device": bench.describe_device(device) or describe_cpu(), "tensorflow": tf.__version__,
               "threads": os.cpu_count(), "python": platform.python_version()}
    several = len(args.dtype) > 1
    rows = []
    try:
        if args.what in ("op", "all"):
            for dtype in args.dtype:
                _log(f"op level on {device} ({machine['device']}), {dtype}, batch {settings['batch']}: "
                     f"{settings['op_steps']} timed steps after {settings['op_burn_in']} burn-in")
                rows += _label_dtype(bench.run_op_level(dict(settings, dtype=getattr(tf, dtype)), _log), dtype,
                                     several)
        if args.what in ("model", "all"):
            dtype = args.dtype[0]
            _log(f"model level: AlexNet {'8-layer' if args.full_model else 'to pool5'}, {dtype}, batch "
                 f"{settings['batch']}, {settings['image_size']}x{settings['image_size']}x3, {settings['model_steps']} "
                 f"timed steps after {settings['model_burn_in']} burn-in (the write-up: 100 after 10; set "
                 "--steps/--burn-in)")
            rows += _label_dtype(bench.run_model_level(dict(settings, dtype=getattr(tf, dtype)), _log), dtype, False)
    except bench.AgreementError as error:
        raise SystemExit(f"error: {error}")
    return machine, settings, rows


def run_cupy(args):
    from alexops import _bench_cupy as bench

    if args.what == "model":
        raise SystemExit("--backend cupy times the op only; the model level needs --backend tf")
    settings = choose_settings(args, on_gpu=True)
    machine = {"device": bench.describe_device(), "backend": "cupy"}
    _log(f"op level (CuPy) on {machine['device']}, {settings['dtype']}, batch {settings['batch']}: "
         f"median of {settings['op_steps']} CUDA-event-timed runs after {settings['op_burn_in']} warm-up, "
         f"rotating among {bench.INPUT_SETS} input sets")
    rows = []
    try:
        for dtype in args.dtype:
            rows += _label_dtype(bench.run_op_level(dict(settings, dtype=dtype), _log), dtype, len(args.dtype) > 1)
    except bench.AgreementError as error:
        raise SystemExit(f"error: {error}")
    return machine, settings, rows


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    machine, settings, rows = run_cupy(args) if args.backend == "cupy" else run_tf(args)
    add_speedups(rows)
    if args.json:
        write_json(args.json, machine, settings, rows)
    if args.plot:
        write_plot(args.plot, rows, f"alexops vs stock LRN on {machine['device']}")
    _log(f"\nalexops.compare on {machine['device']} ({settings['dtype']}, batch {settings['batch']}); "
         "per batch; GB/s counts the fused op's least traffic (2 tensors forward, 5 forward+backward); "
         "% floor = copy-floor time / time; speed-up = stock median / median")
    _log(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
