"""Benchmark of the microstructure generator (issue 3).

Candidate: a 256 x 256 x 64 voxel Laguerre polycrystal with ~500 grains (lognormal sizes, sigma 0.3,
periodic in x and y), generated with all its ground truth: the tessellation fit and labels, boundary
table (pairs, disorientations, classes, areas), grain table, surface labels, c-axis map, boundary mask,
exact distance-to-boundary map, triple junctions, topography.

Baselines, on the same seeds and weights:
1. the per-voxel nearest-seed loop (a Python loop over voxels, each taking the power argmin over all
   seeds with numpy): timed on a random sample of voxels and extrapolated to the whole grid (the full
   loop would take minutes); its labels must equal the candidate's on the sample;
2. vectorised brute force: the power of every voxel to every seed in numpy chunks (full grid).
The labelling alone is compared with the baselines (they do not compute the rest of the ground
truth); the candidate's total time including the ground truth is reported beside it.

Run from the repository root:  python benchmarks/bench_microstructure.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, report  # noqa: E402

from esmsim.microstructure import ground_truth, laguerre, power_labels, topography  # noqa: E402

SIZE = (256e-9, 256e-9, 64e-9)
H = 1e-9
SHAPE = (256, 256, 64)


def generate():
    ms = laguerre(SIZE, spacing=H, grain_size=23e-9, grain_size_sigma=0.3, rng=2)
    gt = ground_truth(ms, "trigonal")
    gt["topography"] = topography(ms, rng=1)
    return ms, gt


def _power(points, seeds, weights):
    L = np.array(SIZE[:2])
    d = points[:, None, :] - seeds[None, :, :]
    d[..., :2] -= L * np.round(d[..., :2] / L)
    return (d ** 2).sum(-1) - weights[None, :]


def per_voxel_loop(ijk, seeds, weights):
    out = np.empty(len(ijk), np.int32)
    for n, (i, j, k) in enumerate(ijk):
        p = (np.array([i, j, k]) + 0.5) * H
        out[n] = int(np.argmin(_power(p[None, :], seeds, weights)[0]))
    return out


def brute_force(seeds, weights, chunk=8192):
    axes = [(np.arange(n) + 0.5) * H for n in SHAPE]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    out = np.empty(len(pts), np.int32)
    for a in range(0, len(pts), chunk):
        out[a:a + chunk] = _power(pts[a:a + chunk], seeds, weights).argmin(1)
    return out.reshape(SHAPE)


def main():
    generate()  # warm-up (imports, caches)
    (ms, gt), cand = measure("laguerre + all ground truth", generate)
    t0 = time.perf_counter()
    lab = power_labels(ms.seeds, ms.weights, ms.shape, ms.spacing, ms.periodic)
    t_label = time.perf_counter() - t0
    assert np.array_equal(lab, ms.labels)

    rng = np.random.default_rng(0)
    sample = 20_000
    flat = rng.choice(np.prod(SHAPE), sample, replace=False)
    ijk = np.column_stack(np.unravel_index(flat, SHAPE))
    loop, base = measure("per-voxel nearest-seed loop (sampled)", per_voxel_loop, ijk, ms.seeds, ms.weights)
    agree = float(np.mean(loop == ms.labels[tuple(ijk.T)]))
    base.seconds *= np.prod(SHAPE) / sample
    base.name = f"per-voxel nearest-seed loop ({sample} voxels timed, scaled to {np.prod(SHAPE)})"
    extra = {
        "grains": ms.n_grains, "voxels": int(np.prod(SHAPE)),
        "candidate labelling only (s)": round(t_label, 3),
        "labels agree with the per-voxel loop on the sample": agree,
        "ratio per-voxel loop / candidate labelling": round(base.seconds / t_label, 1),
        "mean equivalent diameter / target": round(float(gt["grain_equivalent_diameter"].mean() / 23e-9), 4),
        "sigma ln d / target": round(float(np.std(np.log(gt["grain_equivalent_diameter"])) / 0.3), 4),
        "candidate max RSS (MB)": round(cand.max_rss_mb),
    }
    bf, bfm = measure("vectorised brute force (numpy, full grid)", brute_force, ms.seeds, ms.weights)
    extra["brute force labels agree (fraction)"] = float(np.mean(bf == ms.labels))
    extra["ratio brute force / candidate labelling"] = round(bfm.seconds / t_label, 1)
    extra["brute force (s)"] = round(bfm.seconds, 2)
    report("microstructure 256x256x64 laguerre 500 grains", cand, base, extra)


if __name__ == "__main__":
    main()
