"""Two builds of alexops side by side through TensorFlow: each op's median time, A then B.

The kernel A/B (scripts/cpu_kernel_bench.cc) runs the kernels on memory of its own; this runs
them as users do, on TensorFlow's tensors (which lie in 4 KiB pages, where NumPy's large arrays
get huge pages, and stream more slowly: scripts/page_stream_bench.cc). A and B are directories
that hold a built `alexops` package (a checkout after `cmake --build`, or a git worktree built
the same way). Each round runs one process per build, in turn, A first in odd rounds; each
process times lrn_relu and lrn_relu_max_pool, forward and forward+backward, on the harness's two
LRN shapes (float32, batch 64, 2 threads, 3 input sets), interleaved, and prints medians. The
summary is the median over rounds of B/A per row.

    python scripts/tf_op_ab.py --a /tmp/old --b . [--rounds 3] [--steps 30]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

BATCH = 64


def measure(steps):
    """{row: median ms} for this process's alexops, timed as the harness times (time_host: the
    rows in a new random order each step, rotating among the input sets)."""
    import numpy as np
    import tensorflow as tf

    import alexops
    from alexops.alexnet import LRN_PARAMS, POOL_PARAMS
    from alexops.bench.oplevel import OP_SHAPES, pooled_shape
    from alexops.bench.timing import time_host
    from alexops.bench.tf_backend import _forward_backward  # the harness's forward+backward step

    tf.config.threading.set_intra_op_parallelism_threads(2)
    medians = {}
    for name, (height, width, channels) in OP_SHAPES.items():  # the harness's shapes
        shape = (BATCH, height, width, channels)
        rng = np.random.default_rng(0)
        inputs = [tuple(tf.constant(rng.standard_normal(s, dtype=np.float32)) for s in (shape, shape, pooled_shape(shape)))
                  for _ in range(3)]  # (x, dy, dpooled)

        def lrn(x):
            return alexops.lrn_relu(x, **LRN_PARAMS)

        def block(x):
            return alexops.lrn_relu_max_pool(x, **LRN_PARAMS, **POOL_PARAMS)

        lrn_forward, block_forward = tf.function(lrn), tf.function(block)
        lrn_step, block_step = _forward_backward(lrn), _forward_backward(block)
        calls = {"lrn_relu forward": lambda batch: lrn_forward(batch[0]),
                 "lrn_relu fwd+bwd": lambda batch: lrn_step(batch[0], batch[1]),
                 "lrn_relu_max_pool forward": lambda batch: block_forward(batch[0]),
                 "lrn_relu_max_pool fwd+bwd": lambda batch: block_step(batch[0], batch[2])}
        stats = time_host(calls, steps, 3, log=None, inputs=inputs)
        medians.update({f"{name} {row}": s.median for row, s in stats.items()})
    return medians


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", help="directory holding build A's alexops package")
    parser.add_argument("--b", help="directory holding build B's alexops package")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # (a child process)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.steps)))
        return
    if not (args.a and args.b):
        parser.error("--a and --b are required")
    ratios = {}
    for round_ in range(args.rounds):
        results = {}
        for label in ("AB" if round_ % 2 == 0 else "BA"):
            root = os.path.abspath(args.a if label == "A" else args.b)
            env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2")
            # Run from outside both trees, so that only PYTHONPATH decides which alexops loads.
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", "--steps", str(args.steps)],
                                 env=env, cwd="/", check=True, capture_output=True, text=True).stdout
            results[label] = json.loads(out.strip().splitlines()[-1])
        for row, a in results["A"].items():
            b = results["B"][row]
            ratios.setdefault(row, []).append(b / a)
            print(f"round {round_ + 1} {row}: A {a:.3f} ms, B {b:.3f} ms, B/A {b / a:.3f}", flush=True)
    for row, r in ratios.items():
        print(f"{row}: B/A median {statistics.median(r):.3f} (rounds: {', '.join(f'{v:.3f}' for v in r)})")


if __name__ == "__main__":
    main()
