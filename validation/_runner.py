"""Run validation cases and write a Markdown report with their figures."""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from ._common import CaseResult


def run_validation(out_dir="esmsim-validation", *, fast: bool = False, cases=None, stream=sys.stdout) -> int:
    """Run the cases, print one line per check, write ``report.md``; return 0 if all pass, else 1."""
    from . import CASES, load
    from esmsim import __version__
    from esmsim._errors import ParameterError
    from esmsim.io import atomic_path

    names = list(CASES) if not cases else list(cases)
    for n in names:
        if n not in CASES:
            raise ParameterError("validate --case", f"unknown case {n!r}; available: {', '.join(CASES)}")
    if fast and not cases:
        names = [n for n in names if CASES[n][1]]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: list[CaseResult] = []
    timings = {}
    for n in names:
        t0 = time.perf_counter()
        try:
            res = load(n).run(out, fast=fast)
        except Exception as exc:  # a crashing case is a failed case, reported, and the rest still run
            res = [CaseResult(n, False, f"error: {type(exc).__name__}: {exc}", "a result", "-")]
            traceback.print_exc()
        timings[n] = time.perf_counter() - t0
        for r in res:
            print(r.line(), file=stream, flush=True)
        results.extend(res)
    n_pass = sum(r.passed for r in results)
    lines = ["# esmsim validation report", "",
             f"esmsim {__version__}; {'fast subset' if fast else 'all cases'}; "
             f"{n_pass}/{len(results)} checks passed.", "", "| check | result | measured | expected | tolerance |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.case} | {'PASS' if r.passed else '**FAIL**'} | {r.measured} | {r.expected} | {r.tolerance} |")
    lines += ["", "## Figures", ""]
    seen = set()
    for r in results:
        if r.figure is not None and r.figure not in seen:
            seen.add(r.figure)
            lines += [f"![{r.figure.stem}]({r.figure.name})", ""]
    lines += ["## Timings", ""] + [f"- {n}: {t:.1f} s" for n, t in timings.items()]
    report = out / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"validation: {n_pass}/{len(results)} checks passed; report {report}", file=stream)
    return 0 if n_pass == len(results) else 1
