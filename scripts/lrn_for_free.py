"""Is the fused op as cheap as the ReLU it replaces?  (issue 14's "LRN for free" benchmark)

Two comparisons per AlexNet LRN shape, side by side in one process:

* TensorFlow: alexops.lrn_relu against tf.nn.relu on the same tensor (forward), and its
  forward+backward against tf.nn.relu + ReluGrad. Both sides allocate their outputs.
* Preallocated: alexops.numpy.lrn_relu / lrn_relu_grad writing into an existing array,
  against a ReLU pair that also writes into existing arrays, split over the same threads
  (np.maximum forward, np.multiply(dy, x > 0) backward, each image in turn). No allocator on either side.
  In float16 and bfloat16 only the fused side is timed (NumPy's 16-bit ReLU is a slow scalar loop;
  compare those per element with float32 instead).

The calls are interleaved in a new random order every round, over two inputs each (so one
input's cache state does not favour whoever runs next), and the medians are printed.

With float32 and a 16-bit dtype, it then times the fused op in every dtype named side by side
(interleaved, same shape), for the target "16-bit no slower per element than float32".

    python scripts/lrn_for_free.py [--dtype float32,float16,bfloat16] [--rounds 30] [--batch 64]
"""
import argparse
import concurrent.futures
import random
import statistics
import time

import numpy as np
import tensorflow as tf

import alexops
import alexops.numpy as anp
from alexops import _core
from alexops.alexnet import LRN_PARAMS
from alexops.bench.compare import describe_cpu

SHAPES = {"lrn1": (56, 56, 64), "lrn2": (27, 27, 192)}


def interleaved_medians(calls, rounds):
    """Median milliseconds of each call, the calls run in a fresh random order each round."""
    times = {name: [] for name in calls}
    for call in calls.values():  # warm up: tracing, first-touch of the outputs
        call()
    for _ in range(rounds):
        order = list(calls.items())
        random.shuffle(order)
        for name, call in order:
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def split_over_threads(pool, threads, function, *arrays):
    """function(*slices) on `threads` slices of the batch at once (NumPy's ufuncs release the GIL)."""
    batch = arrays[0].shape[0]
    bounds = [batch * i // threads for i in range(threads + 1)]
    futures = [pool.submit(function, *(a[lo:hi] for a in arrays)) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
    for future in futures:
        future.result()


def relu_into(x, y):
    np.maximum(x, 0, out=y)


def relu_grad_into(x, dy, dx):
    for image in range(x.shape[0]):  # image by image, so the x > 0 mask stays in cache
        np.multiply(dy[image], x[image] > 0, out=dx[image])


def fused_functions():
    """tf.functions of the fused op: forward, and forward with its gradient given dy."""
    @tf.function
    def fused_pair(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = alexops.lrn_relu(x, **LRN_PARAMS)
        return out, tape.gradient(out, x, dy)

    return tf.function(lambda x: alexops.lrn_relu(x, **LRN_PARAMS)), fused_pair


def measure(name, batch, dtype, rounds, pool, threads):
    shape = (batch,) + SHAPES[name]
    xs = [tf.cast(tf.random.stateless_normal(shape, seed=(i, 1)), dtype) for i in range(2)]
    dys = [tf.cast(tf.random.stateless_normal(shape, seed=(i, 2)), dtype) for i in range(2)]
    x_arrays, dy_arrays = [x.numpy() for x in xs], [dy.numpy() for dy in dys]
    y, dx = np.empty_like(x_arrays[0]), np.empty_like(x_arrays[0])
    turn = [0]

    def pick(items):
        turn[0] += 1
        return items[turn[0] % len(items)]

    relu = tf.function(tf.nn.relu)
    relu_pair = tf.function(lambda x, dy: (tf.nn.relu(x), tf.raw_ops.ReluGrad(gradients=dy, features=x)))
    fused, fused_pair = fused_functions()

    def relu_pair_into():
        x, dy = pick(x_arrays), pick(dy_arrays)
        split_over_threads(pool, threads, relu_into, x, y)
        split_over_threads(pool, threads, relu_grad_into, x, dy, dx)

    def fused_pair_into():
        x, dy = pick(x_arrays), pick(dy_arrays)
        anp.lrn_relu(x, **LRN_PARAMS, out=y)
        anp.lrn_relu_grad(x, dy, **LRN_PARAMS, out=dx)

    calls = {
        "tf relu": lambda: relu(pick(xs)),
        "tf fused": lambda: fused(pick(xs)),
        "tf relu+ReluGrad": lambda: relu_pair(pick(xs), pick(dys)),
        "tf fused fwd+bwd": lambda: fused_pair(pick(xs), pick(dys)),
        "into relu": lambda: split_over_threads(pool, threads, relu_into, pick(x_arrays), y),
        "into fused": lambda: anp.lrn_relu(pick(x_arrays), **LRN_PARAMS, out=y),
        "into relu pair": relu_pair_into,
        "into fused fwd+bwd": fused_pair_into,
    }
    sixteen_bit = dtype in ("float16", "bfloat16")
    if sixteen_bit:  # NumPy's 16-bit ufuncs are scalar loops: no yardstick
        del calls["into relu"], calls["into relu pair"]
    m = interleaved_medians(calls, rounds)
    ratios = [("TF forward", m["tf fused"] / m["tf relu"], 1.15),
              ("TF fwd+bwd", m["tf fused fwd+bwd"] / m["tf relu+ReluGrad"], 1.25),
              ] + ([] if sixteen_bit else [
              ("preallocated forward", m["into fused"] / m["into relu"], 1.25),
              ("preallocated fwd+bwd", m["into fused fwd+bwd"] / m["into relu pair"], 1.25)])
    print(f"{name} {dtype} {list(shape)}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in m.items()))
    for what, ratio, target in ratios:
        print(f"  {what:22s} {ratio:5.2f}x the ReLU (target <= {target:.2f}x): {'met' if ratio <= target else 'NOT met'}")
    return m


def measure_per_element(name, batch, dtypes, rounds):
    """The fused op in each dtype on the same shape, interleaved in one set of rounds: the
    target "16-bit no slower per element than float32", through TensorFlow and preallocated."""
    shape = (batch,) + SHAPES[name]
    calls = {}
    for dtype in dtypes:
        xs = [tf.cast(tf.random.stateless_normal(shape, seed=(i, 1)), dtype) for i in range(2)]
        dys = [tf.cast(tf.random.stateless_normal(shape, seed=(i, 2)), dtype) for i in range(2)]
        x_arrays, dy_arrays = [x.numpy() for x in xs], [dy.numpy() for dy in dys]
        y, dx = np.empty_like(x_arrays[0]), np.empty_like(x_arrays[0])
        fused, fused_pair = fused_functions()
        def into_pair(x_arrays=x_arrays, dy_arrays=dy_arrays, y=y, dx=dx):
            x, dy = random.choice(x_arrays), random.choice(dy_arrays)
            anp.lrn_relu(x, **LRN_PARAMS, out=y)
            anp.lrn_relu_grad(x, dy, **LRN_PARAMS, out=dx)

        calls[("TF forward", dtype)] = lambda xs=xs, fused=fused: fused(random.choice(xs))
        calls[("TF fwd+bwd", dtype)] = lambda xs=xs, dys=dys, f=fused_pair: f(random.choice(xs), random.choice(dys))
        calls[("preallocated forward", dtype)] = (
            lambda x_arrays=x_arrays, y=y: anp.lrn_relu(random.choice(x_arrays), **LRN_PARAMS, out=y))
        calls[("preallocated fwd+bwd", dtype)] = into_pair
    m = interleaved_medians(calls, rounds)
    print(f"{name} {list(shape)}, the fused op per dtype, interleaved (target: 16-bit <= float32):")
    for what in dict.fromkeys(what for what, _ in calls):
        times = ", ".join(f"{dtype} {m[(what, dtype)]:.2f} ms" for dtype in dtypes)
        verdicts = ", ".join(
            f"{dtype} {m[(what, dtype)] / m[(what, 'float32')]:.2f}x "
            f"{'met' if m[(what, dtype)] <= m[(what, 'float32')] else 'NOT met'}"
            for dtype in dtypes if dtype != "float32")
        print(f"  {what:22s} {times}; {verdicts}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", default="float32", help="comma-separated: float32,float16,bfloat16")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    threads = _core.get_num_threads()
    print(f"LRN for free: {describe_cpu()}, CPU kernels {_core.cpu_isa()}, {threads} threads, "
          f"tensorflow {tf.__version__}, {args.rounds} interleaved rounds, medians")
    dtypes = args.dtype.split(",")
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for dtype in dtypes:
            for name in SHAPES:
                measure(name, args.batch, dtype, args.rounds, pool, threads)
    if "float32" in dtypes and len(dtypes) > 1:
        for name in SHAPES:
            measure_per_element(name, args.batch, dtypes, args.rounds)


if __name__ == "__main__":
    main()
