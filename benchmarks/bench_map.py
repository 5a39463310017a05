"""Benchmark of the issue-6 map: 128 x 128 single-frequency map at 350 kHz of a 3-D LiCoO2 columnar film
(about 100 nm grains over 256 nm x 256 nm, 2 nm voxels so every pixel is a voxel centre, D_gb/D_ab = 1e4).

Candidate: the map engine (tiles of 8 x 8 tips sharing the split-operator LU with block COCG, the tip's
box from the window solve plus the far-field part of the whole film, two processes).
Baselines, measured on a few pixels and extrapolated to all 16 384:
1. the full domain at every pixel (the whole film, ~0.8 M unknowns, one tip each) with `solve_frequency`'s
   own choice of solver (z-line COCG at this size and frequency) and the exact Mindlin box quadrature;
2. the same full-domain solve with the split solver (what the engine's solver alone would give without
   windows), to separate the solver's gain from the window's.
The map and the full domain must agree within the 1 % window tolerance at the sampled pixels.

Run from the repository root:  python benchmarks/bench_map.py [WINDOW_M]   (about 5 minutes on 2 cores)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Measurement, measure, report  # noqa: E402

from esmsim.materials import get_material  # noqa: E402
from esmsim.mechanics._halfspace import box_kernel  # noqa: E402
from esmsim.microstructure import columnar_voronoi  # noqa: E402
from esmsim.probe import MapSettings, single_frequency_map  # noqa: E402
from esmsim.probe._scan import _Window  # noqa: E402
from esmsim.transport import solve_frequency, tip_rhs  # noqa: E402


def full_domain(ms, mat, st, pixels, method):
    """One tip at a time on the whole periodic film (one period; kernel on that period), u in m/V."""
    w = _Window(ms, mat, st)
    h = ms.spacing[0]
    omega = 2 * np.pi * st.frequency
    _, s = w._film_system(omega)  # the whole periodic film, boundaries across the wrap included
    out = []
    for i, j in pixels:
        tip = ((i + 0.5) * h, (j + 0.5) * h)
        c = solve_frequency(s, omega, *tip_rhs(s, tip, profile=st.tip_profile, width=st.tip_width),
                            method=method)[0]
        out.append(w.pref * (s.weights(box_kernel, tip) @ c + s.extra_weights(box_kernel, tip) @ (s.extra_map @ c)))
    return np.array(out), s.n


def main():
    ms = columnar_voronoi((256e-9, 256e-9), spacing=2e-9, thickness=100e-9, grain_size=100e-9, rng=1)
    mat = get_material("LiCoO2", gb_enhancement=1e4)
    window = float(sys.argv[1]) if len(sys.argv) > 1 else None  # default: max(4 d, 4 L_max)
    st = MapSettings(frequency=350e3, pixels=(128, 128), window=window)
    res, m_map = measure("engine map 128x128, 2 processes", lambda: single_frequency_map(ms, mat, st, workers=2))
    # pixels near the middle of the film (the full domain is periodic, the map is too): boundaries and interiors
    pix = [(64, 64), (20, 100), (100, 30)]
    ref, m_full = measure("full domain, solve_frequency auto (z-line COCG), 3 pixels",
                          lambda: full_domain(ms, mat, st, pix, "auto"))
    ref_s, m_split = measure("full domain, split solver, 3 pixels", lambda: full_domain(ms, mat, st, pix, "split"))
    a = np.array([res.response[i, j] for i, j in pix])
    n_pix = res.response.size
    ext = Measurement("full domain at every pixel (z-line COCG), extrapolated", m_full.seconds / len(pix) * n_pix,
                      m_full.peak_python_mb, m_full.max_rss_mb)
    extra = {"pixels per second": f"{n_pix / m_map.seconds:.0f}",
             "factorisations (tiles)": res.n_solves,
             "full-domain unknowns": ref[1],
             "map vs full domain (sampled pixels)": np.round(np.abs(a / ref[0] - 1), 5).tolist(),
             "full domain split vs z-line": float(np.max(np.abs(ref_s[0] / ref[0] - 1))),
             "full domain per pixel, z-line / split (s)": f"{m_full.seconds / len(pix):.1f} / "
                                                         f"{m_split.seconds / len(pix):.1f}",
             "amplitude range pm/V": f"{np.abs(res.response).min() * 1e12:.3g}..{np.abs(res.response).max() * 1e12:.3g}"}
    report("map 128x128 350 kHz", m_map, ext, extra)


if __name__ == "__main__":
    main()
