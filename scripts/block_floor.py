"""What holds the fused block back on this CPU: memory or arithmetic (issue 13).

For AlexNet's two LRN shapes (float32, batch 64, AlexNet's LRN, 3x3/2 VALID pool), times in
random interleaved order and prints medians of:
  - a copy of x into a preallocated array, split over two threads (memory's floor for the
    bytes lrn_relu moves);
  - alexops.numpy.lrn_relu into a preallocated y;
  - alexops.numpy.lrn_relu_max_pool into a preallocated pooled tensor (it moves x in and
    a quarter of x out, so at memory's floor it would be well under the copy);
  - with TensorFlow installed, eager calls of alexops.lrn_relu_max_pool and of the pair it
    replaces (alexops.lrn_relu, then tf.nn.max_pool2d), which allocate as users' calls do;
  - with --backward, also the pieces of the two ways' forward+backward, each a tf.function as
    in the harness and in a training step (a graph lets TensorFlow run the pair's max-pool
    and its gradient as oneDNN's, with a workspace; an eager MaxPoolGrad is another kernel):
    lrn_relu, its forward+backward, lrn_relu_grad alone, the pair's forward and
    forward+backward; lrn_relu_max_pool, lrn_relu_max_pool_grad alone, and their
    forward+backward.
Then, with --backward, a line per shape of:
  - pair / fused, forward and forward+backward (as the harness's block rows);
  - what the pair's max-pool costs, forward+backward (the pair's less lrn_relu's);
  - lrn_relu_max_pool_grad / (lrn_relu_max_pool + lrn_relu_grad): the pooled gradient
    recomputes the forward (LRN and windows), then does lrn_relu_grad's work from the norms it
    kept, so near 1 it says the fused forward+backward costs two fused forwards and one
    lrn_relu_grad;
  - the pair's forward+backward / (lrn_relu_max_pool + lrn_relu_grad): the most the fused way
    could gain, storing nothing between the passes, with a gradient no costlier than
    lrn_relu_grad (which computes every norm from x too), as if the windows' search and
    routing were free.

    python scripts/block_floor.py [--rounds 40] [--backward]
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


def calls(shape, rng, backward):
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
        if backward:
            raise SystemExit("block_floor.py --backward times TensorFlow graphs: install TensorFlow")
        return fns
    tf.config.threading.set_intra_op_parallelism_threads(2)
    xt = tf.constant(x)
    forwards = {  # each forward once, for the eager calls and the graph pieces alike
        "lrn_relu": lambda x: alexops.lrn_relu(x, **LRN),
        "pair": lambda x: tf.nn.max_pool2d(alexops.lrn_relu(x, **LRN), 3, 2, "VALID"),
        "lrn_relu_max_pool": lambda x: alexops.lrn_relu_max_pool(x, **LRN),
    }
    fns["tf eager lrn_relu_max_pool"] = lambda: forwards["lrn_relu_max_pool"](xt)
    fns["tf eager lrn_relu + max_pool2d"] = lambda: forwards["pair"](xt)
    if backward:
        fns.update(graph_pieces(tf, alexops, forwards, xt, rng))
    return fns


def graph_pieces(tf, alexops, forwards, x, rng):
    """The pieces of both ways' forward+backward, each a tf.function called on x (module doc)."""
    lrn, pair, fused = forwards["lrn_relu"], forwards["pair"], forwards["lrn_relu_max_pool"]

    def forward_backward(f, upstream):
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = f(x)
            # out too, as a training step needs it: else the graph would drop the forward of the
            # alexops ops, whose gradients read x, not the forward's output.
            return out, tape.gradient(out, x, output_gradients=upstream)
        return run

    dy = tf.constant(rng.standard_normal(x.shape, dtype=np.float32))
    dpooled = tf.constant(rng.standard_normal(fused(x).shape, dtype=np.float32))
    pieces = {
        "lrn_relu": lrn,
        "lrn_relu fwd+bwd": forward_backward(lrn, dy),
        "lrn_relu_grad": lambda x: alexops.ops.lrn_relu_grad(x, dy, **LRN),
        "pair": pair,
        "pair fwd+bwd": forward_backward(pair, dpooled),
        "lrn_relu_max_pool": fused,
        "lrn_relu_max_pool_grad": lambda x: alexops.ops.lrn_relu_max_pool_grad(x, dpooled, **LRN),
        "lrn_relu_max_pool fwd+bwd": forward_backward(fused, dpooled),
    }
    functions = {name: tf.function(f) for name, f in pieces.items()}
    return {f"graph {name}": (lambda f=f: f(x)) for name, f in functions.items()}


def backward_summary(ms):
    """The ratios the module doc names, from the pieces' medians (ms)."""
    def g(name):
        return ms[f"graph {name}"]
    pooling = g("pair fwd+bwd") - g("lrn_relu fwd+bwd")
    recompute = g("lrn_relu_max_pool_grad") / (g("lrn_relu_max_pool") + g("lrn_relu_grad"))
    # The most the fused way could reach if its gradient cost no more than lrn_relu_grad, which
    # also computes every norm, with the windows' search and routing free.
    ceiling = g("pair fwd+bwd") / (g("lrn_relu_max_pool") + g("lrn_relu_grad"))
    return (f"  pair / fused: forward {g('pair') / g('lrn_relu_max_pool'):.2f}x, forward+backward "
            f"{g('pair fwd+bwd') / g('lrn_relu_max_pool fwd+bwd'):.2f}x; the pair's max-pool forward+backward "
            f"{pooling:.2f} ms; lrn_relu_max_pool_grad / (lrn_relu_max_pool + lrn_relu_grad) {recompute:.2f}; "
            f"pair fwd+bwd / (lrn_relu_max_pool + lrn_relu_grad) {ceiling:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--backward", action="store_true",
                        help="also time the pieces of both ways' forward+backward (tf.function)")
    args = parser.parse_args()
    anp.set_num_threads(2)
    rng = np.random.default_rng(0)
    print(f"block floor: {describe_cpu()}, 2 threads, float32, "
          f"{args.rounds} interleaved rounds, medians")
    for name, shape in SHAPES.items():
        fns = calls(shape, rng, args.backward)
        times = {k: [] for k in fns}
        for fn in fns.values():
            fn()  # warm-up
        for _ in range(args.rounds):
            for k in rng.permutation(list(fns)):
                start = time.perf_counter()
                fns[k]()
                times[k].append(time.perf_counter() - start)
        ms = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
        print(f"{name} {list(shape)}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items()))
        if args.backward:
            print(backward_summary(ms))


if __name__ == "__main__":
    main()
