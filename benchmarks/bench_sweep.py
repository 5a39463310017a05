"""Benchmark of parameter sweeps (issue 8): parallel efficiency of the local pool, overhead of the Dask path.

20 runs (a 16 x 16 single-frequency map of an 80 nm film, a few seconds each; D_gb/D_ab from 1e2 to 1e4)
swept three times into fresh stores:

- candidate: the local process pool with 2 workers;
- baseline: the same pool with 1 worker;
- the Dask path: a ``distributed.LocalCluster`` of 2 single-threaded workers (started inside the timing).

Parallel efficiency = T(1 worker) / (2 T(2 workers)). Per-run overhead of a path = (wall time x workers -
the runs' own time from their provenance) / runs: what the sweep adds per run (pool or cluster start,
pickling, writing the store, assembling sweep.nc), spread over the runs.

Run from the repository root:  python benchmarks/bench_sweep.py          (about 3 minutes on 2 cores)
                               python benchmarks/bench_sweep.py --quick  (4 tiny runs: checks it works)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, report  # noqa: E402

from esmsim.sweep import run_sweep  # noqa: E402


def spec(n: int, quick: bool) -> dict:
    size, pixels = (["40 nm", "40 nm"], [4, 4]) if quick else (["80 nm", "80 nm"], [16, 16])
    return {"base": {"simulation": {"name": "bench", "seed": 2},
                     "microstructure": {"size": size, "thickness": "60 nm", "grain_size": "40 nm"},
                     "scan": {"pixels": pixels}},
            "axis": [{"field": "material.gb_enhancement", "logspace": {"start": 1e2, "stop": 1e4, "num": n}}]}


def run_seconds(store: Path) -> float:
    """The runs' own time (inside esmsim.simulation.run and its file write), from their provenance."""
    return sum(json.loads(p.read_text())["seconds"] for p in store.glob("runs/*.json"))


def sweep(sp, store, **kw):
    summary = run_sweep(sp, store, progress=False, **kw)
    assert summary.succeeded == summary.points and not summary.failed, str(summary)
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 tiny runs: check the benchmark works, no numbers")
    args = ap.parse_args(argv)
    n = 4 if args.quick else 20
    sp = spec(n, args.quick)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        warm = spec(1, True)  # imports and first-call costs out of the timings
        warm["axis"][0] = {"field": "material.gb_enhancement", "values": [1e3]}
        sweep(warm, tmp / "warm", workers=1)
        _, base = measure("local pool, 1 worker", sweep, sp, tmp / "one", workers=1)
        _, cand = measure("local pool, 2 workers", sweep, sp, tmp / "two", workers=2)
        _, dask = measure("Dask LocalCluster, 2 workers", sweep, sp, tmp / "dask", local_cluster=2)
        busy = {k: run_seconds(tmp / k) for k in ("one", "two", "dask")}
    per_run = {k: busy[k] / n for k in busy}
    overhead = {"one": (base.seconds - busy["one"]) / n, "two": (cand.seconds * 2 - busy["two"]) / n,
                "dask": (dask.seconds * 2 - busy["dask"]) / n}
    report("sweep quick" if args.quick else f"sweep {n} runs 1 vs 2 workers", cand, base, {
        "runs": n,
        "mean run time inside esmsim.simulation.run, 1 / 2 workers / Dask (s)":
            f"{per_run['one']:.2f} / {per_run['two']:.2f} / {per_run['dask']:.2f}",
        "parallel efficiency, 2 local workers": f"{base.seconds / (2 * cand.seconds):.2f}",
        "Dask LocalCluster(2) wall time (s), cluster start included": f"{dask.seconds:.2f}",
        "per-run overhead (wall x workers - run time) / runs, local 1 / local 2 / Dask 2 (s)":
            f"{overhead['one']:.3f} / {overhead['two']:.3f} / {overhead['dask']:.3f}",
    })


if __name__ == "__main__":
    main()
