"""Benchmark of maps of voxel volumes: tiles of tips on shared windows against one window per tip.

The equiaxed example volume (microstructures/equiaxed_polycrystal.toml: 400 x 400 x 200 nm, 5 nm voxels,
~150 Laguerre grains, LiCoO2 with s = 1e4 boundary slabs, 350 kHz, d = 10 nm), a 16 x 16 block of the
default 64 x 64 map's tips in the middle of the film, serial, one process.

- candidate: the map engine's volume path (``VolumeWindows.solve_tile``, what ``single_frequency_map``
  runs per tile of 8 x 8 tips, the default ``numerics.tile``): each block of ``SHARED x SHARED`` tips
  shares one window (their columns plus 4 d each side), one assembly and one block solve; with
  ``SHARED`` = 4 (the default) and 8;
- baseline: :func:`esmsim.probe.volume_response`, one window centred on each tip, assembled and solved
  per tip (the naive loop; what the map did before the tiles).

Volumes have no far-field split, so the two differ by where the windows end: reported as the largest
relative difference over the block.

Run from the repository root:  python benchmarks/bench_volume_map.py   (about 3 minutes)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, report  # noqa: E402

from esmsim.config import load_config  # noqa: E402
from esmsim.probe._scan import map_pixels  # noqa: E402
from esmsim.probe._volume import VolumeWindows, volume_response  # noqa: E402
from esmsim.simulation import build_microstructure, map_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def tiled(win, ix, iy, tile):
    out = np.empty((ix.size, iy.size), complex)
    for a in range(0, ix.size, tile):
        for b in range(0, iy.size, tile):
            out[a:a + tile, b:b + tile] = win.solve_tile(ix[a:a + tile], iy[b:b + tile])
    return out


def main():
    cfg = load_config(ROOT / "microstructures" / "equiaxed_polycrystal.toml")
    ms, mat, st = build_microstructure(cfg), cfg.material(), map_settings(cfg)
    ix, iy = map_pixels(ms.shape, (64, 64))
    ix, iy = ix[24:40], iy[24:40]
    xv, yv = ms.pixel_centers()
    X, Y = np.meshgrid(xv[ix], yv[iy], indexing="ij")
    win = VolumeWindows(ms, mat, st)
    tiles4, cand4 = measure("4 x 4 tips per shared window", tiled, win, ix, iy, 8)
    win.SHARED = 8
    tiles8, cand8 = measure("8 x 8 tips per shared window", tiled, win, ix, iy, 8)
    one, base = measure("one window per tip (volume_response)", lambda: volume_response(
        ms, mat, st, np.stack([X.ravel(), Y.ravel()], -1)).reshape(X.shape))
    amp = np.abs(one)
    extra = {"volume": f"{ms.shape} voxels of {ms.spacing[0] * 1e9:g} nm, {ms.n_grains} grains",
             "tips": f"{ix.size} x {iy.size}", "frequency_Hz": st.frequency,
             "amplitude_pm_per_V": f"{amp.min() * 1e12:.2f} .. {amp.max() * 1e12:.2f}"}
    for name, m, vals in (("8x8", cand8, tiles8), ("4x4", cand4, tiles4)):
        d = np.abs(vals / one - 1)
        extra[f"{name} per window: seconds per tip"] = f"{m.seconds / one.size:.3f}"
        extra[f"{name} per window: max / median relative difference from one window per tip"] = (
            f"{d.max():.2e} / {np.median(d):.2e}")
    extra["baseline seconds per tip"] = f"{base.seconds / one.size:.3f}"
    report("volume map 8x8 per window", cand8, base, {})
    report("volume map 4x4 per window", cand4, base, extra)


if __name__ == "__main__":
    main()
