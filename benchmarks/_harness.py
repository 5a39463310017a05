"""Timing and peak-memory harness: run a candidate and its named baseline in one process, report the ratio."""

from __future__ import annotations

import json
import platform
import resource
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Measurement:
    name: str
    seconds: float
    peak_python_mb: float  # tracemalloc peak (Python-level allocations, includes numpy buffers)
    max_rss_mb: float  # process high-water mark, including children (process pools)
    traced_seconds: float | None = None  # time of the run under tracemalloc when ``seconds`` is untraced
    warm_seconds: float | None = None  # a second untraced run in the same process (``measure_split``)


def measure(name, fn, *args, **kwargs):
    """Run ``fn`` once; return (result, Measurement)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return out, Measurement(name, dt, peak / 2**20, rss / 1024)


def measure_split(name, make, fn, **kwargs):
    """Time ``fn(*make(), **kwargs)`` without tracemalloc twice (cold: the first run in the process; warm:
    the second), then take its peak memory in a third run under tracemalloc, each on fresh arguments from
    ``make()`` (built outside the measurements), and return (result of the cold run, Measurement with the
    cold time, the traced run's peak, the warm time as ``warm_seconds`` and the traced time as
    ``traced_seconds``).

    tracemalloc slows each allocation by an amount that grows with how far into its function it is made
    (CPython 3.11 looks up the line of every traced allocation by scanning the code's line table): on this
    machine a 10-element ``np.empty`` costs 0.7 us traced in a short loop and 57 us after 3000 lines. Code
    that makes many small arrays in long functions therefore runs several times slower traced (the volume
    engine's section lookups: 0.23 s untraced, 0.98 s traced) while numpy's large-array work does not,
    so its time is taken untraced. The cold run pays the first-call costs (lazy imports, and the first
    touch of memory the process has not used before: glibc returns large freed blocks to the system
    until its thresholds adapt); the warm one is what each later solve of a sweep in the same process
    costs."""
    times, outs = [], []
    for _ in range(2):
        args = make()
        t0 = time.perf_counter()
        outs.append(fn(*args, **kwargs))
        times.append(time.perf_counter() - t0)
        del args
    out = outs[0]
    del outs
    _, traced = measure(name, fn, *make(), **kwargs)
    return out, Measurement(name, times[0], traced.peak_python_mb, traced.max_rss_mb, traced.seconds, times[1])


def report(title, candidate: Measurement, baseline: Measurement, extra: dict, out_dir="benchmarks/results"):
    """Print and save (JSON) a candidate-vs-baseline comparison."""
    ratio = baseline.seconds / candidate.seconds
    lines = [f"## {title}", f"host: {platform.node()} ({platform.processor() or platform.machine()})",
             f"candidate: {candidate.name}: {candidate.seconds:.2f} s, python peak {candidate.peak_python_mb:.0f} MB",
             f"baseline:  {baseline.name}: {baseline.seconds:.2f} s, python peak {baseline.peak_python_mb:.0f} MB",
             f"speed-up (baseline / candidate): {ratio:.1f}x"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    print("\n".join(lines))
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    data = dict(title=title, candidate=asdict(candidate), baseline=asdict(baseline), speedup=ratio, **extra)
    (path / f"{title.replace(' ', '_')}.json").write_text(json.dumps(data, indent=2, default=str))
    return ratio
