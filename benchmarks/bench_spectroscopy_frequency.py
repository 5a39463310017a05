"""Benchmark of frequency spectroscopy: one window engine per frequency against one per (point, frequency).

A 320 nm x 320 nm periodic columnar LiCoO2 film (5 nm columns, 40 nm grains, D_gb/D_ab = 1e4), tips at
8 pixels, 7 frequencies from 1 kHz to 1 MHz, one process. The map engine's window at each frequency
adds the far field, whose whole-film response is one film solve per window engine. The candidate
(``frequency_spectroscopy``) builds one engine per frequency for all points; the baseline builds one per
(point, frequency) task, as the function did before. Both give the same numbers (reported).

Run from the repository root:  python benchmarks/bench_spectroscopy_frequency.py   (about 3 minutes)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, report  # noqa: E402

from esmsim.materials import get_material  # noqa: E402
from esmsim.microstructure import columnar_voronoi  # noqa: E402
from esmsim.probe import MapSettings, frequency_spectroscopy  # noqa: E402
from esmsim.probe._spectroscopy import _freq_task  # noqa: E402


def main():
    mat = get_material("LiCoO2")
    ms = columnar_voronoi((320e-9, 320e-9), spacing=5e-9, thickness=100e-9, grain_size=40e-9, rng=3)
    st = MapSettings(frequency=1e5, tip_width=10e-9)
    pts = np.random.default_rng(4).integers(0, 64, (8, 2))
    f = np.geomspace(1e3, 1e6, 7)
    new, m1 = measure("one window engine per frequency", frequency_spectroscopy, ms, mat, st, pts, f, workers=1)

    def per_task():
        return np.array([[_freq_task((ms, mat, st, fk, [p]))[0] for fk in f] for p in pts])

    old, m0 = measure("one window engine per (point, frequency)", per_task)
    diff = float(np.abs(new - old).max() / np.abs(old).max())
    report("frequency spectroscopy, 8 points x 7 frequencies", m1, m0,
           {"film_pixels": "64 x 64", "max_rel_difference": diff})


if __name__ == "__main__":
    main()
