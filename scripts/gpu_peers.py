"""The compiler peers of issue 12, timed on this card beside our fused kernel: relu + LRN
(AlexNet's parameters, NHWC, float32, batch 64) through torch.compile and jax.jit, forward
and forward+backward, on both AlexNet shapes. Run by scripts/gpu_check.sh after the
benchmark; any peer that is not installed is skipped.

Method (the issue's): median of RUNS event-timed calls, rotating among input sets that
together exceed the L2 cache. Each call is queued behind a short device sleep so that the
events time the device's work, not the host's launch latency; every implementation is timed
the same way, ours too (raw _core calls on torch's buffers and stream).

    python scripts/gpu_peers.py [--runs 50] [--json FILE]
"""
import argparse
import json
import statistics
import time

import numpy as np

from alexops import _loader
from alexops.alexnet import LRN_PARAMS

SHAPES = [(64, 56, 56, 64), (64, 27, 27, 192)]
ROTATION_BYTES = 256 << 20
R, BIAS, ALPHA, BETA = (LRN_PARAMS[k] for k in ("depth_radius", "bias", "alpha", "beta"))


def relu_lrn_numpy(x):
    """float64 reference on the host: what every peer must agree with."""
    r = np.maximum(x.astype(np.float64), 0.0)
    padded = np.pad(r * r, [(0, 0)] * 3 + [(R, R)])
    window = sum(padded[..., i:i + r.shape[-1]] for i in range(2 * R + 1))
    return r / (BIAS + ALPHA * window) ** BETA


def torch_peer():
    import torch
    import torch.nn.functional as F

    def relu_lrn(x):
        r = torch.relu(x)
        window = F.pad(r * r, (R, R)).unfold(-1, 2 * R + 1, 1).sum(-1)
        return r * torch.pow(BIAS + ALPHA * window, -BETA)

    compiled = torch.compile(relu_lrn, dynamic=False)

    def forward(x, dy):
        return compiled(x)

    def forward_backward(x, dy):
        x = x.detach().requires_grad_(True)
        y = compiled(x)
        (dx,) = torch.autograd.grad(y, x, dy)
        return y, dx

    return forward, forward_backward


def jax_peer():
    import jax
    import jax.numpy as jnp
    from jax import lax

    def relu_lrn(x):
        r = jnp.maximum(x, 0)
        window = lax.reduce_window(r * r, 0.0, lax.add, (1, 1, 1, 2 * R + 1), (1, 1, 1, 1),
                                   ((0, 0), (0, 0), (0, 0), (R, R)))
        return r * (BIAS + ALPHA * window) ** -BETA

    forward = jax.jit(lambda x, dy: relu_lrn(x))

    @jax.jit
    def forward_backward(x, dy):
        y, pullback = jax.vjp(relu_lrn, x)
        return y, pullback(dy)[0]

    return forward, forward_backward


def alexops_peer():
    import torch

    core = _loader.core()
    params = dict(LRN_PARAMS, relu=True)

    def forward(x, dy, y=None):
        y = torch.empty_like(x) if y is None else y
        stream = torch.cuda.current_stream().cuda_stream
        core.forward_cuda(x.data_ptr(), y.data_ptr(), x.numel() // x.shape[-1], x.shape[-1], "float32",
                          stream=stream, **params)
        return y

    def forward_backward(x, dy):
        y = forward(x, dy)
        dx = torch.empty_like(x)
        core.backward_cuda(x.data_ptr(), dy.data_ptr(), dx.data_ptr(), x.numel() // x.shape[-1], x.shape[-1],
                           "float32", stream=torch.cuda.current_stream().cuda_stream, **params)
        return y, dx

    return forward, forward_backward


def time_torch_side(fn, sets, runs):
    import torch

    for x, dy in sets[:3]:
        fn(x, dy)  # compile and warm up
    torch.cuda.synchronize()
    times = []
    for i in range(runs):
        x, dy = sets[i % len(sets)]
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(1_000_000)  # keeps the device busy while the host queues the call
        start.record()
        fn(x, dy)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def time_jax(fn, sets, runs):
    """JAX runs on its own streams, so events cannot bracket it: time each call (already
    compiled, inputs on the device) with a host clock around block_until_ready."""
    import jax

    for x, dy in sets[:3]:
        jax.block_until_ready(fn(x, dy))
    times = []
    for i in range(runs):
        x, dy = sets[i % len(sets)]
        start = time.perf_counter()
        jax.block_until_ready(fn(x, dy))
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("gpu_peers: no PyTorch here, so no peers timed (the script times on torch's buffers)")
        return

    results, lines = [], []
    for shape in SHAPES:
        nbytes = 2 * 4 * int(np.prod(shape))
        count = max(3, -(-ROTATION_BYTES // nbytes))
        gen = torch.Generator(device="cuda").manual_seed(0)
        sets = [(torch.randn(shape, device="cuda", generator=gen), torch.randn(shape, device="cuda", generator=gen))
                for _ in range(count)]
        reference = relu_lrn_numpy(sets[0][0][:2].cpu().numpy())
        peers = [("alexops", alexops_peer), ("torch.compile", torch_peer), ("jax.jit", jax_peer)]
        for name, make in peers:
            try:
                forward, forward_backward = make()
                if name == "jax.jit":
                    import jax.numpy as jnp
                    peer_sets = [(jnp.asarray(x.cpu().numpy()), jnp.asarray(dy.cpu().numpy())) for x, dy in sets]
                    timer = time_jax
                    first = np.asarray(forward(*peer_sets[0]))
                    how = "host clock"
                else:
                    peer_sets, timer = sets, time_torch_side
                    first = forward(*sets[0]).cpu().numpy()
                    how = "events"
                error = float(np.linalg.norm(first[:2] - reference) / np.linalg.norm(reference))
                row = dict(shape=list(shape), peer=name, timing=how, rel_error=error,
                           forward_ms=timer(forward, peer_sets, args.runs),
                           forward_backward_ms=timer(forward_backward, peer_sets, args.runs))
            except Exception as exc:  # a peer that is missing or fails is reported, not fatal
                row = dict(shape=list(shape), peer=name, error=f"{type(exc).__name__}: {exc}"[:300])
            results.append(row)
            if "error" in row:
                lines.append(f"{str(shape):18} {name:14} skipped: {row['error']}")
            else:
                lines.append(f"{str(shape):18} {name:14} fwd {row['forward_ms']:7.3f} ms  fwd+bwd "
                             f"{row['forward_backward_ms']:7.3f} ms  ({row['timing']}; rel. error {error:.1e})")
        del sets
    print(f"relu + LRN peers, float32, median of {args.runs} calls, rotating inputs ({torch.cuda.get_device_name()})")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
