"""Where the write-up's AlexNet spends its time, op by op, under TensorFlow's profiler.

The harness (`python -m alexops.compare --what model`) gives each variant's whole step; this
splits the steps into TensorFlow's ops, so that the convolutions' share, which the LRN variants
do not change, can be told apart from the LRN block's. Each capture wraps `--steps` steps of one
variant in `tf.profiler.experimental` (the variants in turn, `--captures` times), and the table
gives each op's time per step, one column per capture. Times are the ops' own, as the profiler
records them on TensorFlow's executor threads; ops that run side by side overlap, so a
column's sum can exceed the step's wall time (forward-backward: conv filter and input
gradients run together). oneDNN fuses each convolution with its bias (and in stock with its
ReLU), and the fused op keeps the name of the last op it took in: stock's `Relu` to `Relu_4` are
conv1 to conv5, while fused_pool's `BiasAdd` and `BiasAdd_1` are conv1 and conv2, and its
`Relu` to `Relu_2` conv3 to conv5.

    python scripts/model_op_profile.py [--variants stock,fused_pool] [--backward] [--steps 5] [--captures 3]
"""
import argparse
import collections
import glob
import os
import re
import tempfile

OP_SPAN = re.compile(r"^[^:]+:[^:]+$")  # "node:OpType"; not "ExecutorState::Process"


def capture_ops(trace_dir):
    """{op name: total ms} from the one capture under trace_dir: the events on TensorFlow's
    executor threads, whose names are "node:OpType"."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (path,) = glob.glob(os.path.join(trace_dir, "plugins", "profile", "*", "*.xplane.pb"))
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    totals = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "?")
                if OP_SPAN.match(name):  # an op's own span (the executor's spans hold several)
                    totals[name] += event.duration_ps / 1e9
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="stock,fused_pool", help="AlexNet lrn= variants, comma-separated")
    parser.add_argument("--backward", action="store_true", help="forward-backward steps (default: forward)")
    parser.add_argument("--steps", type=int, default=5, help="steps per capture")
    parser.add_argument("--captures", type=int, default=3, help="captures per variant")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--min-ms", type=float, default=0.3, help="leave out ops under this in every capture")
    args = parser.parse_args()

    import tensorflow as tf

    from alexops.alexnet import IMAGE_SHAPE, AlexNet
    from alexops.bench.tf_backend import model_steps  # the harness's steps

    model = AlexNet()
    images = tf.random.normal([args.batch, *IMAGE_SHAPE], seed=1)
    pass_name = "forward+backward" if args.backward else "forward"

    def run(step):  # one step, its results brought back (so it has finished)
        tf.nest.map_structure(lambda t: t.numpy(), step(images))

    steps = {lrn: model_steps(model, lrn)[pass_name] for lrn in args.variants.split(",")}
    for step in steps.values():  # trace and warm up outside the captures
        for _ in range(2):
            run(step)
    columns = {}
    with tempfile.TemporaryDirectory() as root:
        for capture in range(args.captures):
            for lrn, step in steps.items():
                trace_dir = os.path.join(root, f"{lrn}_{capture}")
                tf.profiler.experimental.start(trace_dir)
                for _ in range(args.steps):
                    run(step)
                tf.profiler.experimental.stop()
                columns[f"{lrn} {capture + 1}"] = {op: ms / args.steps for op, ms in capture_ops(trace_dir).items()}
    peak = {op: max(c.get(op, 0.0) for c in columns.values()) for op in set().union(*columns.values())}
    ops = sorted((op for op in peak if peak[op] >= args.min_ms), key=lambda op: -peak[op])
    width = max([len(op) for op in ops] + [20])
    print(f"ms per {pass_name} step, batch {args.batch}, {args.steps} steps a capture")
    print(f"{'op':{width}s}" + "".join(f"{name:>14s}" for name in columns))
    for op in ops:
        print(f"{op:{width}s}" + "".join(f"{c.get(op, 0.0):14.2f}" for c in columns.values()))
    print(f"{'sum of the ops':{width}s}" + "".join(f"{sum(c.values()):14.2f}" for c in columns.values()))


if __name__ == "__main__":
    main()
