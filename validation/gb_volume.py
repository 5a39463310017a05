"""Grain-boundary slabs in voxel volumes: inclined 3-D boundaries (issue 4, items 1 and 7).

A LiCoO2 bicrystal (both c axes along z, turned 30 deg about it: the grains have the same D tensor and
are isotropic in-plane) with the boundary plane through the volume's centre; a Lorentzian tip (d = 20 nm)
on the plane's surface trace and one 6 nm beside it; 350 kHz, delta = 0.5 nm, D_gb = 2e4 D_ab. The
voxel engine (:func:`esmsim.probe.volume_response`) puts a slab unknown on every face between the
grains, x, y and z (:func:`esmsim.transport.assemble_tensor`). Checked:

- rotation invariance: a vertical boundary along y and the same boundary turned by 26.6 and 45 deg
  about z are one physical problem (the grains are isotropic in-plane and the tip is round), so the
  response on the boundary must not depend on the turn; the staircase of the turned ones has 1.34 and
  1.41 times the boundary's area. Within 1 % (measured 0.07 %); the columnar map engine the same;
- voxel-size invariance at fixed delta * D_gb: h = 8, 4 and 2 nm within 3 % for boundaries steep and
  inclined in z (the tip on the trace). A plane dipping 34 deg (full run) lies on its vertical faces as
  the steep ones do (item 8 below): on its trace, 6 nm beside it and 6 nm over it, all at 3 %.
- the full run also takes a periodic 10-grain 3-D Voronoi polycrystal (four tips, whole film) at 3 %
  (measured 0.09, 0.81, 0.28, 0.54 %; 3.6 % at a tip 2 nm from a triple line before item 6 below), and 32
  random tips on each of three such films, which do not pass yet (4 of 96 over 3 %, max 3.90 %; 5 and
  4.26 % before item 11, 7 and 4.65 % before item 10, 9 and 4.62 % before the layer pieces, 10 and 4.75 %
  before item 9, 18 before item 8; docs/transport.md).

What the inclined planes need (measured with the tip on the trace, 8/4/2 nm):

1. the slabs of a steep plane on its vertical faces only, storing ``1 / (|n_x| + |n_y|)`` of their area
   (the plane's Li at the depth where the plane is), horizontal faces as junctions without storage or
   path: with the whole staircase (storage ``w`` on every face) a 45 deg plane gave 10.6, 11.2 and
   11.6 pm/V, half its Li a whole voxel layer too deep; now 14.88, 14.85 and 14.85;
2. the unresolved bulk layer's exchange through the true area ``w A``: the 45 deg turned vertical
   boundary came out 2.8 % above the one along y without it (both engines), 0.1 % with it;
3. slabs and their bulk layers as strips along the plane's trace, on the exact boundary segments of the
   tessellation's section at their depth: with boxes on the staircase faces 4.7, 7.9 and 17.2 pm/V
   for a plane at 26.6 deg;
4. z cells that end on the voxel layers and are not merged into coarse cells there unless a flat plane's
   horizontal slab needs the room: the 2 nm run had one 2 nm cell per layer below the first (-3.5 %).
5. the faces on the two sides of a voxel interface joined by the trace they share, not through the
   horizontal junctions: a tip 6 nm beside the oblique plane read 2.8 % apart (its slab network conducted
   10-12 % less than the plane), 0.28 % with them.
6. the same links wherever a steep plane's faces change columns across an interface (a triple line that
   moves with depth), not only where the plane has junctions of its own: the 3-D polycrystal's tip 2 nm
   from a triple line read 7.83, 8.11, 7.99 pm/V at 8/4/2 nm (3.6 %), then 7.98, 8.07, 8.13 (1.8 %; 7.97,
   8.06, 8.12 with item 7).
7. a flat plane's horizontal faces keep their place in the staircase, their Li goes to the mechanics at
   the plane's depth under each face: the 34 deg plane's tip beside the trace 13.7 % -> 8.1 %.
8. with the sections, planes dipping 2 deg or more on their vertical faces, as the steep ones (item 1):
   the staircase stores and conducts right only on average over a voxel layer, and the graded z cells
   resolve the top layer's vertical faces. The 34 deg plane read 8.69, 8.81, 8.85 pm/V on its trace
   (its response 30 % low: continuous across 45 deg it is not, 10.2 pm/V at 45.6 deg where 44.4 deg reads
   14.9) and 8.1 and 7.8 % apart 6 nm either side; now 12.88, 12.87, 12.86 pm/V and 0.2, 0.4 %. The 96
   random tips: 18 -> 11 over 3 %, max 8.7 -> 4.9 %.
9. surface cells that a trace cuts hold both grains (``cut_columns``: D_zz from the area-weighted mean of
   the grains' sqrt(D_zz); the mechanics places each grain's share of the cell's Li on its side,
   ``surface_root``): the 96 random tips 10 -> 9 over 3 %, max 4.75 -> 4.62 %, median 0.96 -> 0.93 %.
10. facets that a voxel layer's labels lack (a facet that ends inside the layer) get faces of their own from
   the sections, linked to the pair's faces above and below: a facet dipping 68 deg that ends 12.7 nm deep
   had no path below 8 nm at 8 nm voxels, and the tip on its trace read 19.90, 19.17, 19.02 pm/V; now
   19.72, 19.16, 19.01. The 96 random tips 7 -> 5 over 3 %, max 4.65 -> 4.26 %.
11. faces whose grain pair has no facet at their z cell's centre (the labels, taken at the voxel layer's
   centre, have the pair; the facet ended above the z cell or begins below it) take the facet's mean trace
   length over the cell instead of their whole weight (``_gone_scale``): each pair's slab area by depth
   against the exact facet areas (:func:`facet_areas`) 4.4 -> 3.5 % at 8 nm (seed 4); tips 28 and 4 (seed
   4) 4.26 -> 1.89 % and 3.81 -> 1.30 %. The 96 random tips 5 -> 4 over 3 %, max 4.26 -> 3.90 %.
"""

from __future__ import annotations

import numpy as np

from esmsim.materials import get_material
from esmsim.microstructure import bicrystal, columnar_seeded
from esmsim.probe import MapSettings
from esmsim.probe._scan import _z_widths, grain_diffusivities
from esmsim.probe._volume import volume_response

from ._common import CaseResult, new_figure, save

FREQ = 350e3
SIZE = (96e-9, 96e-9, 48e-9)
EULER = np.radians([[0.0, 0.0, 0.0], [30.0, 0.0, 0.0]])
Y_TIP = 45e-9
OFFSET = 6e-9


def material():
    return get_material("LiCoO2").replace(gb_width=0.5e-9, gb_enhancement=2e4)


def settings():
    return MapSettings(frequency=FREQ, tip_profile="lorentzian", tip_width=20e-9)


def _plane(normal, depth=None):
    """Unit normal, a point of the plane, and the tips: on its surface trace at y = Y_TIP and OFFSET beside."""
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    p = np.array(SIZE) / 2 + 0.3e-9
    if depth is not None:
        p[2] = depth
    x0 = p[0] - (n[1] * (Y_TIP - p[1]) - n[2] * p[2]) / n[0]
    return n, p, [(x0, Y_TIP), (x0 + OFFSET, Y_TIP)]


def volume(normal, h, depth=None, mirror=False):
    """|u| (m/V) at the two tips of the bicrystal with the given boundary normal, voxels of h (m); with
    ``mirror`` a third, OFFSET beside the trace the other way."""
    n, p, tips = _plane(normal, depth)
    if mirror:
        tips = tips + [(2 * tips[0][0] - tips[1][0], Y_TIP)]
    ms = bicrystal(SIZE, spacing=h, normal=tuple(n), point=p, euler_angles=EULER)
    return np.abs(volume_response(ms, material(), settings(), tips))


def columnar(normal, h):
    """|u| (m/V) at the two tips from the columnar map engine's operator (vertical planes)."""
    from .gb_resolved import columnar_system, point_response

    mat, st = material(), settings()
    n, p, tips = _plane(normal)
    seeds = np.stack([p[:2] - 30e-9 * n[:2], p[:2] + 30e-9 * n[:2]])
    ms = columnar_seeded(seeds, SIZE[:2], spacing=h, thickness=SIZE[2], euler_angles=EULER)
    s, shape = columnar_system(ms, mat, _z_widths(ms, mat, st, grain_diffusivities(ms, mat)), FREQ)
    pref = (1 + mat["nu"]) / np.pi * mat.beta_isotropic / mat.dU_dc
    return np.abs([pref * point_response(s, t, st.tip_width, cell_shape=shape) for t in tips])


POLY_TIPS = [(40e-9, 50e-9), (61.3e-9, 22.1e-9), (15.2e-9, 77.7e-9), (80e-9, 80e-9)]


def polycrystal_film(h, seed=4):
    """The fixed periodic 10-grain 3-D Voronoi volume (seeds drawn with ``seed``, orientations with rng 7)
    in voxels of h (m)."""
    from esmsim.microstructure import random_quaternions
    from esmsim.microstructure._voxel import _tessellated

    seeds = np.random.default_rng(seed).uniform(0, 1, (10, 3)) * np.array(SIZE)
    return _tessellated(seeds, None, tuple(int(round(v / h)) for v in SIZE), (h, h, h),
                        random_quaternions(10, rng=7), True, {})


def polycrystal(h, seed=4, tips=None):
    """|u| (m/V) at ``tips`` (default POLY_TIPS) of :func:`polycrystal_film` built with voxels of h (m), solved
    on the whole film (windows of volumes have no far field, and their edges round to whole voxels)."""
    from dataclasses import replace

    return np.abs(volume_response(polycrystal_film(h, seed), material(), replace(settings(), window=1e-6),
                                  POLY_TIPS if tips is None else tips))


def facet_areas(seed, depths, dz=0.25e-9, pixel=0.5e-9):
    """Exact area (m^2) of each grain pair's facet between consecutive ``depths`` (m) in
    :func:`polycrystal_film` (seed ``seed``), independent of the voxels: every ``dz`` of depth the section's
    power diagram is labelled on ``pixel`` squares, each pixel-neighbour pair's exact edge found
    (``boundary_segment``, every edge once), and its length over the plane's ``|n_xy|`` (the plane's area per
    depth) summed at the midpoints. Returns ``{(g1, g2): areas}`` with ``g1 < g2``."""
    from esmsim.microstructure._tessellation import power_tree

    ms = polycrystal_film(2e-9, seed)
    extent = np.asarray(SIZE[:2])
    n = np.round(extent / pixel).astype(int)
    x, y = np.meshgrid((np.arange(n[0]) + 0.5) * pixel, (np.arange(n[1]) + 0.5) * pixel, indexing="ij")
    depths = np.asarray(depths, float)
    out = {}
    for z in np.arange(depths[0] + 0.5 * dz, depths[-1], dz):
        sec = ms.section(z)
        tree = power_tree(sec.seeds, sec.weights, ms.extent[:2], ms.periodic)
        lab = tree.query(np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], -1))[1].reshape(x.shape)
        points, pairs = [], []
        for ax in (0, 1):  # the film is periodic: the last pixel's neighbour is the first
            other = np.roll(lab, -1, axis=ax)
            i, j = np.nonzero(lab != other)
            points.append(np.stack([(i + 0.5 + 0.5 * (ax == 0)) * pixel, (j + 0.5 + 0.5 * (ax == 1)) * pixel], -1))
            pairs.append(np.sort(np.stack([lab[i, j], other[i, j]], -1), axis=1))
        points, pairs = np.concatenate(points), np.concatenate(pairs)
        centre, _, length = sec.boundary_segment(pairs[:, 0], pairs[:, 1], points)
        ok = length > 0
        grid = np.round(extent / 1e-11).astype(np.int64)  # each edge once: its centre to 0.01 nm, wrapped
        where = np.round(np.mod(centre[ok], extent) / 1e-11).astype(np.int64) % grid
        first = np.unique(np.concatenate([pairs[ok], where], 1), axis=0, return_index=True)[1]
        b = np.searchsorted(depths, z) - 1
        pq, c = pairs[ok][first], centre[ok][first]
        nrm = ms.boundary_normal(pq[:, 0], pq[:, 1], np.column_stack([c, np.full(len(c), z)]))
        for (p, q), area in zip(pq, length[ok][first] * dz / np.hypot(nrm[:, 0], nrm[:, 1])):
            out.setdefault((int(p), int(q)), np.zeros(depths.size - 1))[b] += area
    return out


def surface_distance(seed, tips):
    """Distance (m) from each tip to the nearest boundary trace on the surface (z = 0, exact) of
    :func:`polycrystal`'s film."""
    t = np.asarray(tips)
    return polycrystal_film(2e-9, seed).section(0.0).boundary_distance(t[:, 0], t[:, 1])


TURNS = {"0": (1.0, 0.0, 0.0), "26.6": (1.0, 0.5, 0.0), "45": (1.0, 1.0, 0.0)}
INCLINED = {"steep 26.6 deg in-plane": (1.0, 0.5, 0.0), "45 deg in z": (1.0, 0.0, 1.0),
            "oblique (1, 0.5, 1)": (1.0, 0.5, 1.0)}
FLAT = {"flat (0.6, 0.3, 1), 34 deg dip": ((0.6, 0.3, 1.0), 10e-9)}


def run(out_dir, fast: bool = True) -> list[CaseResult]:
    hs = [8e-9, 4e-9, 2e-9]
    out = []
    # rotation invariance (4 nm voxels): the tip on the boundary
    h_rot = 4e-9
    vol_rot = {k: volume(v, h_rot)[0] for k, v in TURNS.items()}
    col_rot = {k: columnar(v, h_rot)[0] for k, v in TURNS.items()}
    for name, res in (("volume", vol_rot), ("columnar", col_rot)):
        vals = np.array(list(res.values()))
        spread = vals.max() / vals.min() - 1
        out.append(CaseResult(f"gb_rotation_invariance[{name}]", spread <= 0.01,
                              ", ".join(f"{k} deg {v * 1e12:.2f}" for k, v in res.items()) + f" pm/V, spread {spread:.2%}",
                              "equal", "1 %"))
    cases = dict(list(INCLINED.items())[1:2]) if fast else INCLINED
    curves = {}
    for name, normal in cases.items():
        amps = np.array([volume(normal, h) for h in hs])  # (h, tip)
        curves[name] = amps
        on = amps[:, 0].max() / amps[:, 0].min() - 1
        beside = amps[:, 1].max() / amps[:, 1].min() - 1
        out.append(CaseResult(f"gb_volume_voxel_invariance[{name}]", on <= 0.03,
                              f"h = 8, 4, 2 nm, tip on the trace: {', '.join(f'{v * 1e12:.2f}' for v in amps[:, 0])} "
                              f"pm/V, spread {on:.2%} (tip {OFFSET * 1e9:g} nm beside: {beside:.2%})",
                              "equal", "3 %"))
    if not fast:
        for name, (normal, depth) in FLAT.items():
            amps = np.array([volume(normal, h, depth, mirror=True) for h in hs])
            curves[name] = amps
            spread = amps.max(0) / amps.min(0) - 1
            # the plane lies on its vertical faces (item 8); as a staircase the tips beside the trace (the side
            # the plane dips away from) and over the plane 3.6 nm deep read 8.1 and 7.8 % apart
            on = ", ".join(f"{v * 1e12:.2f}" for v in amps[:, 0])
            out.append(CaseResult(f"gb_volume_voxel_invariance[{name}]", spread.max() <= 0.03,
                                  f"h = 8, 4, 2 nm: tip on the trace {on} pm/V, spread {spread[0]:.2%}; "
                                  f"{OFFSET * 1e9:g} nm beside it {spread[1]:.2%}, over the plane {spread[2]:.2%}",
                                  "equal", "3 %"))
    if not fast:
        amps = np.array([polycrystal(h) for h in hs])
        curves["3-D polycrystal, tip 2"] = amps[:, 1:2]
        spread = amps.max(0) / amps.min(0) - 1
        out.append(CaseResult("gb_volume_voxel_invariance[3-D polycrystal]", spread.max() <= 0.03,
                              f"h = 8, 4, 2 nm, whole film: spread per tip {', '.join(f'{v:.1%}' for v in spread)}",
                              "equal", "3 %"))
        # 32 random tips on each of three films (seeds 4, 5, 6): sub-voxel features (boundary segments and
        # grain slivers thinner than 8 nm, planes dipping near or under 45 deg) near a tip differ between the
        # voxel sizes
        from .gb_resolved import random_tips, spread_check

        tips = random_tips(32, 100, SIZE[:2])
        amps = np.concatenate([np.array([polycrystal(h, seed, tips) for h in hs]) for seed in (4, 5, 6)], 1)
        dist = np.concatenate([surface_distance(seed, tips) for seed in (4, 5, 6)])
        out.append(spread_check("gb_volume_voxel_invariance[3-D polycrystals, random tips]", amps, distance=dist))
    fig, (a1, a2) = new_figure()
    x = np.arange(len(TURNS))
    a1.bar(x - 0.2, np.array(list(vol_rot.values())) * 1e12, 0.4, label="volume engine")
    a1.bar(x + 0.2, np.array(list(col_rot.values())) * 1e12, 0.4, label="columnar engine")
    a1.set_xticks(x, [f"{k} deg" for k in TURNS])
    a1.set(ylabel="|u3| / V (pm/V)", title="vertical boundary turned about z, tip on it")
    a1.legend()
    for name, amps in curves.items():
        a2.plot(np.array(hs) * 1e9, amps[:, 0] * 1e12, "o-", label=name)
    a2.set(xlabel="voxel h (nm)", ylabel="|u3| / V (pm/V)", title="tip on the trace, fixed delta D_gb")
    a2.legend(fontsize=7)
    path = save(fig, out_dir, "gb_volume")
    return [CaseResult(r.case, r.passed, r.measured, r.expected, r.tolerance, path) for r in out]
