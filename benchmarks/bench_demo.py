"""Benchmark of the demo (`esmsim demo`'s map).

1. The whole demo map (64 x 64 tips, default engine: tiles of 8 x 8 tips sharing one factorisation,
   single-grain windows solved once per grain, one process per CPU): wall time and peak memory.
2. Engine vs the naive loop on the same 16 x 16 block of tips near boundaries, both serial so the
   ratio measures the algorithm, not the core count: the naive loop assembles and factorises one window
   per tip (what a straightforward per-pixel solve does); the engine factorises once per 8 x 8 tile.
   The two must agree within the window truncation tolerance (1 %).

Run from the repository root:  python benchmarks/bench_demo.py
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, report  # noqa: E402

from esmsim.config import parse_config, tomllib  # noqa: E402
from esmsim.probe._scan import _Window  # noqa: E402
from esmsim.simulation import build_microstructure, map_settings  # noqa: E402
from esmsim.probe import single_frequency_map  # noqa: E402


def main():
    cfg = parse_config(tomllib.loads(resources.files("esmsim").joinpath("data/demo.toml").read_text()))
    ms, mat, st = build_microstructure(cfg), cfg.material(), map_settings(cfg)

    # 2. algorithm ratio on a block of tips (serial)
    win = _Window(ms, mat, st)
    ix, iy = np.arange(16, 32), np.arange(24, 40)
    naive, m_naive = measure("naive loop (one factorisation per tip)",
                             lambda: np.array([[win.solve(i, j) for j in iy] for i in ix]))
    tiled, m_tiled = measure("engine (8 x 8 tiles, one factorisation each)",
                             lambda: np.block([[win.solve_tile(ix[a:a + 8], iy[b:b + 8]) for b in (0, 8)] for a in (0, 8)]))
    diff = float(np.max(np.abs(tiled / naive - 1)))
    report("demo block 16x16 serial", m_tiled, m_naive, {"max relative difference": f"{diff:.2e}", "tips": ix.size * iy.size})

    # 1. the whole demo map, parallel, against the naive loop extrapolated from the block (per-tip cost)
    res, m_map = measure(f"demo map 64x64, {os.cpu_count()} processes",
                         lambda: single_frequency_map(ms, mat, st, workers=None, tile=cfg["numerics"]["tile"]))
    per_tip = m_naive.seconds / (ix.size * iy.size)
    est = type(m_map)("naive loop, serial, extrapolated from the block", per_tip * res.response.size,
                      m_naive.peak_python_mb, m_naive.max_rss_mb)
    report("demo map 64x64", m_map, est, {"factorisations": res.n_solves,
                                          "amplitude range pm/V": f"{np.abs(res.response).min() * 1e12:.3g}"
                                                                  f"..{np.abs(res.response).max() * 1e12:.3g}"})


if __name__ == "__main__":
    main()
