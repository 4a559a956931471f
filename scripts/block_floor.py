"""What holds the fused block's forward back on this CPU: memory or arithmetic (issue 13).

For AlexNet's two LRN shapes (float32, batch 64, AlexNet's LRN, 3x3/2 VALID pool), times in
random interleaved order and prints medians of:
  - a copy of x into a preallocated array, split over two threads (memory's floor for the
    bytes lrn_relu moves);
  - alexops.numpy.lrn_relu into a preallocated y;
  - alexops.numpy.lrn_relu_max_pool into a preallocated pooled tensor (it moves x in and
    a quarter of x out, so at memory's floor it would be well under the copy);
  - with TensorFlow installed, eager calls of alexops.lrn_relu_max_pool and of the pair it
    replaces (alexops.lrn_relu, then tf.nn.max_pool2d), which allocate as users' calls do.

    python scripts/block_floor.py [--rounds 40]
"""
import argparse
import threading
import time

import numpy as np

import alexops.numpy as anp
from alexops.bench.compare import describe_cpu

LRN = dict(depth_radius=4, bias=1.0, alpha=0.001 / 9, beta=0.75)
SHAPES = {"lrn1": (64, 56, 56, 64), "lrn2": (64, 27, 27, 192)}


def two_thread_copy(src, dst):
    half = src.shape[0] // 2
    other = threading.Thread(target=np.copyto, args=(dst[:half], src[:half]))
    other.start()
    np.copyto(dst[half:], src[half:])
    other.join()


def calls(shape, rng):
    x = rng.standard_normal(shape, dtype=np.float32)
    y = np.empty_like(x)
    pooled = np.empty_like(anp.lrn_relu_max_pool(x, **LRN))
    fns = {
        "copy of x (2 threads)": lambda: two_thread_copy(x, y),
        "lrn_relu into y": lambda: anp.lrn_relu(x, out=y, **LRN),
        "lrn_relu_max_pool into pooled": lambda: anp.lrn_relu_max_pool(x, out=pooled, **LRN),
    }
    try:
        import tensorflow as tf

        import alexops
    except ImportError:
        return fns
    tf.config.threading.set_intra_op_parallelism_threads(2)
    xt = tf.constant(x)
    fns["tf eager lrn_relu_max_pool"] = lambda: alexops.lrn_relu_max_pool(xt, **LRN)
    fns["tf eager lrn_relu + max_pool2d"] = lambda: tf.nn.max_pool2d(alexops.lrn_relu(xt, **LRN), 3, 2, "VALID")
    return fns


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    anp.set_num_threads(2)
    rng = np.random.default_rng(0)
    print(f"block floor: {describe_cpu()}, 2 threads, float32, "
          f"{args.rounds} interleaved rounds, medians")
    for name, shape in SHAPES.items():
        fns = calls(shape, rng)
        times = {k: [] for k in fns}
        for fn in fns.values():
            fn()  # warm-up
        for _ in range(args.rounds):
            for k in rng.permutation(list(fns)):
                start = time.perf_counter()
                fns[k]()
                times[k].append(time.perf_counter() - start)
        print(f"{name} {list(shape)}: " + ", ".join(f"{k} {np.median(v) * 1e3:.2f} ms" for k, v in times.items()))


if __name__ == "__main__":
    main()
