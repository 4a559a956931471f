"""Timing and statistics for the harness: burn-in, timed steps, progress, summary numbers."""
import dataclasses
import statistics
import time


@dataclasses.dataclass
class Stats:
    """Per-step times in milliseconds, with the write-up's mean +/- sd and robust extras."""

    times_ms: list

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
                "max_ms": self.max, "times_ms": list(self.times_ms)}


def _progress(label, step, steps, times_ms, log):
    if log and (step % 10 == 0 or step == steps):
        recent = times_ms[-10:]
        log(f"  {label}: step {step}/{steps}, {statistics.fmean(recent):.2f} ms/batch (last {len(recent)})")


def time_host_interleaved(run_steps, steps, burn_in, label="", log=print, inputs=(None,), sync=None):
    """Times several implementations in turn, step by step (A, B, C, A, B, C, ...), so that a
    shared machine's slow spells fall on all of them alike. run_steps: {name: run_step}.
    Returns {name: Stats}."""
    for i in range(burn_in):
        for run_step in run_steps.values():
            run_step(inputs[i % len(inputs)])
    if sync:
        sync()
    times_ms = {name: [] for name in run_steps}
    for step in range(1, steps + 1):
        for name, run_step in run_steps.items():
            start = time.perf_counter()
            run_step(inputs[step % len(inputs)])
            if sync:
                sync()
            times_ms[name].append((time.perf_counter() - start) * 1e3)
        if log and (step % 10 == 0 or step == steps):
            recent = ", ".join(f"{name} {statistics.fmean(t[-10:]):.2f}" for name, t in times_ms.items())
            log(f"  {label}: step {step}/{steps}, ms/batch (last 10): {recent}")
    return {name: Stats(t) for name, t in times_ms.items()}


def time_host(run_step, steps, burn_in, label="", log=print, inputs=(None,), sync=None):
    """Times run_step(inputs[i % len(inputs)]) with a host clock; `sync` (if given) waits for
    the device before each clock read, so asynchronous work is counted."""
    for i in range(burn_in):
        run_step(inputs[i % len(inputs)])
    if sync:
        sync()
    times_ms = []
    for step in range(1, steps + 1):
        start = time.perf_counter()
        run_step(inputs[step % len(inputs)])
        if sync:
            sync()
        times_ms.append((time.perf_counter() - start) * 1e3)
        _progress(label, step, steps, times_ms, log)
    return Stats(times_ms)


def time_cuda_events(run_step, steps, burn_in, label="", log=print, inputs=(None,)):
    """Times run_step(inputs[...]) on CuPy's current stream with CUDA events, rotating among
    the input sets so that repeated runs do not simply hit in L2."""
    import cupy

    stream = cupy.cuda.get_current_stream()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    for i in range(burn_in):
        run_step(inputs[i % len(inputs)])
    stream.synchronize()
    times_ms = []
    for step in range(1, steps + 1):
        start.record(stream)
        run_step(inputs[step % len(inputs)])
        end.record(stream)
        end.synchronize()
        times_ms.append(cupy.cuda.get_elapsed_time(start, end))
        _progress(label, step, steps, times_ms, log)
    return Stats(times_ms)
