"""Benchmark of the surface displacement (issue 5).

1. FFT path: the outward displacement over the whole surface of a 256 x 256 x 64 concentration field
   (2 nm pixels, graded layers to 200 nm), complex (a frequency-domain field). Kernel build and
   application timed separately (a kernel is built once per grid and reused for every field).
   Baseline: the direct quadrature (exact box integrals of the Mindlin kernel, every cell of the field,
   one surface point at a time), timed on a sample of points and scaled to all 65 536 pixels.
2. Per tip position in a map: the displacement quadrature of one window (what the map engine does per
   tip) against the transport solve of the same window (assembly + factorisation + solve), on the
   default demo film.

Run from the repository root:  python benchmarks/bench_mechanics.py   (about a minute)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, report  # noqa: E402

from esmsim.mechanics import SurfaceKernel, box_kernel  # noqa: E402
from esmsim.microstructure import graded_widths  # noqa: E402

N, H = 256, 2e-9
NU, BETA = 0.2, -2.46e-7


def field():
    dz = graded_widths(0.2e-9, 1.15, 200e-9, max_width=10e-9)[:64]
    x = (np.arange(N) + 0.5) * H
    X, Y = np.meshgrid(x, x, indexing="ij")
    z = np.cumsum(dz) - dz / 2
    rng = np.random.default_rng(0)
    c = np.exp(-((X - 256e-9) ** 2 + (Y - 256e-9) ** 2)[..., None] / (30e-9) ** 2 - (1 + 1j) * z / 20e-9)
    return c + 0.01 * rng.normal(size=c.shape), dz


def fft_path(c, dz):
    t0 = time.perf_counter()
    K = SurfaceKernel((N, N), (H, H), dz, nu=NU)
    t1 = time.perf_counter()
    u = K.displacement(c, BETA)
    return u, t1 - t0, time.perf_counter() - t1


def direct_points(c, dz, points):
    ze = np.concatenate([[0.0], np.cumsum(dz)])
    e = np.arange(N + 1) * H
    X0, Y0, Z0 = np.meshgrid(e[:-1], e[:-1], ze[:-1], indexing="ij")
    boxes = np.stack([X0.ravel(), X0.ravel() + H, Y0.ravel(), Y0.ravel() + H, Z0.ravel(),
                      np.broadcast_to(ze[1:], X0.shape).ravel()], -1)
    return np.array([(1 + NU) / np.pi * BETA * (box_kernel(boxes, p) @ c.ravel()) for p in points])


def per_tip(n_tips=8, vegard="isotropic"):
    """Seconds per tip of the displacement quadrature and of the whole window solve (demo film, one tip
    per window: the naive path, where the quadrature is not shared between tips of a tile)."""
    from dataclasses import replace

    from importlib import resources

    import esmsim.probe._scan as scan
    from esmsim.config import parse_config, tomllib
    from esmsim.simulation import build_microstructure, map_settings

    cfg = parse_config(tomllib.loads(resources.files("esmsim").joinpath("data/demo.toml").read_text()))
    ms, mat = build_microstructure(cfg), cfg.material()
    st = replace(map_settings(cfg), vegard=vegard)
    spent = [0.0]
    originals = {name: getattr(scan, name) for name in ("box_kernel", "tensor_box_weights")}

    def timer(fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            spent[0] += time.perf_counter() - t0
            return out
        return timed

    for name, fn in originals.items():
        setattr(scan, name, timer(fn))
    try:
        t0 = time.perf_counter()
        for k in range(n_tips):
            scan._Window(ms, mat, st).solve(5 + 7 * k, 9 + 5 * k)  # fresh window: no cached weights
        total = time.perf_counter() - t0
    finally:
        for name, fn in originals.items():
            setattr(scan, name, fn)
    return spent[0] / n_tips, (total - spent[0]) / n_tips


def main():
    c, dz = field()
    (u, t_kernel, t_apply), m_fft = measure("FFT path (kernel build + apply)", fft_path, c, dz)
    pts = [((i + 0.5) * H, (j + 0.5) * H) for i, j in ((128, 128), (10, 200), (255, 0), (64, 64))]
    ud, m_dir = measure(f"direct quadrature, {len(pts)} points", direct_points, c, dz, pts)
    per_point = m_dir.seconds / len(pts)
    # the direct sum is not periodic: compare at the centre, where the images of a field localised there
    # are negligible, and report the whole-surface time
    err = abs(u[128, 128] - ud[0]) / abs(ud[0])
    m_all = type(m_dir)(f"direct quadrature, all {N * N} pixels (scaled from {len(pts)})", per_point * N * N,
                        m_dir.peak_python_mb, m_dir.max_rss_mb)
    report("mechanics FFT 256x256x64", m_fft, m_all,
           {"kernel build (s)": f"{t_kernel:.3f}", "apply to one complex field (s)": f"{t_apply:.3f}",
            "direct per point (s)": f"{per_point:.3f}",
            "FFT vs direct at the centre (relative)": f"{err:.1e}",
            "speed-up of one application vs direct (all pixels)": f"{per_point * N * N / t_apply:.0f}x"})
    for vegard in ("isotropic", "tensor"):
        mech, rest = per_tip(vegard=vegard)
        print(f"per tip (demo film, one window per tip, vegard = {vegard}): displacement quadrature "
              f"{mech * 1e3:.1f} ms, transport (window set-up, assembly, factorisation, solve) {rest * 1e3:.1f} ms: "
              f"ratio {rest / mech:.1f}x")


if __name__ == "__main__":
    main()
