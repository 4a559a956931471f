"""Timing for the harness: burn-in, timed steps interleaved across implementations,
progress lines, and the summary numbers of each.

Two clocks:
- time_host: the host clock around each call (CPU work), or around several calls and a
  sync (GPU work through TensorFlow).
- time_cuda_events: CUDA events around K back-to-back launches, divided by K, so the GPU
  is kept busy and what is measured is the kernels, not the Python that issues them; the
  host time to issue one call is reported beside it.
Both take the implementations step by step in turn, in a new random order each step
(A, B, C, then C, A, B, ...), so a shared machine's slow spells fall on all of them alike,
and no implementation always runs right after the same other one: a call that follows a
big one pays for what that one left behind (freed memory, evicted caches), and a fixed
order would charge that to one implementation only. They rotate among input sets.
"""
import dataclasses
import random
import statistics
import time

# The order's seed: the same run order from run to run.
ORDER_SEED = 2012


@dataclasses.dataclass
class Stats:
    """Per-step times in milliseconds, with the write-up's mean +/- sd and robust extras.
    dispatch_ms: the host's time to issue one call, where the device's time is measured
    apart from it (CUDA events)."""

    times_ms: list
    dispatch_ms: float = None

    @property
    def mean(self):
        return statistics.fmean(self.times_ms)

    @property
    def sd(self):
        return statistics.stdev(self.times_ms) if len(self.times_ms) > 1 else 0.0

    @property
    def median(self):
        return statistics.median(self.times_ms)

    @property
    def min(self):
        return min(self.times_ms)

    @property
    def max(self):
        return max(self.times_ms)

    def as_dict(self):
        return {"median_ms": self.median, "mean_ms": self.mean, "sd_ms": self.sd, "min_ms": self.min,
                "max_ms": self.max, "dispatch_ms": self.dispatch_ms, "times_ms": list(self.times_ms)}


def _progress(log, label, step, steps, times_ms):
    if log and (step % 10 == 0 or step == steps):
        recent = ", ".join(f"{name} {statistics.fmean(t[-10:]):.3f}" for name, t in times_ms.items())
        log(f"  {label}: step {step}/{steps}, ms (last 10): {recent}")


def _shuffled_orders(run_steps):
    """Yields, step after step, run_steps' items in a new random order."""
    rng = random.Random(ORDER_SEED)
    order = list(run_steps.items())
    while True:
        rng.shuffle(order)
        yield order


def time_host(run_steps, steps, burn_in, label="", log=print, inputs=(None,), sync=None, calls_per_step=1):
    """run_steps: {name: run_step(inputs[i])}. Host clock around each step of
    `calls_per_step` calls (rotating among the inputs), divided by calls_per_step; `sync`
    (if given) waits for the device before the clock is read. With a device and several
    calls per step, the device stays busy while the host issues the next call, and the
    host's time to issue one is reported as the dispatch. Returns {name: Stats}."""
    for i in range(burn_in):
        for run_step in run_steps.values():
            run_step(inputs[i % len(inputs)])
    if sync:
        sync()
    times_ms = {name: [] for name in run_steps}
    dispatch_ms = {name: [] for name in run_steps}
    call = 0
    orders = _shuffled_orders(run_steps)
    for step in range(1, steps + 1):
        for name, run_step in next(orders):
            start = time.perf_counter()
            for _ in range(calls_per_step):
                run_step(inputs[call % len(inputs)])
                call += 1
            issued = time.perf_counter()
            if sync:
                sync()
            times_ms[name].append((time.perf_counter() - start) * 1e3 / calls_per_step)
            dispatch_ms[name].append((issued - start) * 1e3 / calls_per_step)
        _progress(log, label, step, steps, times_ms)
    measured_apart = sync is not None and calls_per_step > 1
    return {name: Stats(t, statistics.median(dispatch_ms[name]) if measured_apart else None)
            for name, t in times_ms.items()}


def time_cuda_events(run_steps, steps, burn_in, label="", log=print, inputs=(None,), launches_per_step=20):
    """run_steps: {name: run_step(inputs[i])}, each a sequence of GPU launches on CuPy's
    current stream. Each step records an event, issues `launches_per_step` calls back to
    back (rotating among the input sets, which together should exceed the L2 cache),
    records another, and keeps the elapsed time over launches_per_step: the device's time
    per call. The host's time to issue the calls, per call, is the dispatch. Returns
    {name: Stats}."""
    import cupy

    stream = cupy.cuda.get_current_stream()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    for i in range(burn_in):
        for run_step in run_steps.values():
            run_step(inputs[i % len(inputs)])
    stream.synchronize()
    times_ms = {name: [] for name in run_steps}
    dispatch_ms = {name: [] for name in run_steps}
    call = 0
    orders = _shuffled_orders(run_steps)
    for step in range(1, steps + 1):
        for name, run_step in next(orders):
            start.record(stream)
            host_start = time.perf_counter()
            for _ in range(launches_per_step):
                run_step(inputs[call % len(inputs)])
                call += 1
            host_ms = (time.perf_counter() - host_start) * 1e3
            end.record(stream)
            end.synchronize()
            times_ms[name].append(cupy.cuda.get_elapsed_time(start, end) / launches_per_step)
            dispatch_ms[name].append(host_ms / launches_per_step)
        _progress(log, label, step, steps, times_ms)
    return {name: Stats(t, statistics.median(dispatch_ms[name])) for name, t in times_ms.items()}
