"""Shared pieces of the validation cases: result records, figures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CaseResult:
    """One checked quantity of a validation case.

    ``line()`` gives ``case: PASS|FAIL measured vs expected (tolerance)``.
    """

    case: str
    passed: bool
    measured: str
    expected: str
    tolerance: str
    figure: Path | None = None

    def line(self) -> str:
        return f"{self.case}: {'PASS' if self.passed else 'FAIL'} {self.measured} vs {self.expected} ({self.tolerance})"


def new_figure(ncols=2, width=11.0, height=4.0):
    """A matplotlib Figure (no pyplot state, no screen)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, ncols)


def save(fig, out_dir, name) -> Path:
    from esmsim.io import atomic_path

    path = Path(out_dir) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
