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
