"""Full-tensor finite-volume diffusion operator on voxel volumes (rotated anisotropic grains, pores, cracks).

Each face between cells P (low side) and Q (high side) along axis ``a``
carries the Fickian flux ``F = -A (D grad c) . e_a``:

* the normal part ``D_aa dc/dx_a`` by the two-point difference with the
  harmonic average of the two half-cell conductances (exact for piecewise
  constant ``D_aa`` in 1-D);
* the cross parts ``D_ab dc/dx_b`` (b != a) with the arithmetic mean of the
  two cells' ``D_ab`` and the mean of the two cells' centred gradients along
  ``b`` (one-sided next to a wall or a void, zero with no neighbour).

The fluxes are linear in c, so ``K = (E_P - E_Q)^T F`` (outflow per cell) is
a sparse matrix with a 19-point stencil; it is conservative (each face flux
leaves one cell and enters the other) and reduces to the symmetric two-point
operator when the tensors are diagonal. With the cross terms it is not
symmetric, so solvers must not assume symmetry.

Void cells (pores, cracks) stay in the unknown vector with the equation
``c = 0`` and no storage: no face connects them, which is a no-flux free
surface for the material around them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..microstructure._grid import Grid
from ._operator import DiffusionSystem

__all__ = ["assemble_tensor", "grain_tensors"]


def grain_tensors(rotations: np.ndarray, principal) -> np.ndarray:
    """Sample-frame tensors ``R diag(d) R^T`` per grain, shape (n, 3, 3) (m^2/s)."""
    d = np.broadcast_to(np.asarray(principal, float), (len(rotations), 3))
    return np.einsum("gik,gk,gjk->gij", rotations, d, rotations)


def _cell_gradient(idx, active, centres, axis, periodic):
    """Sparse operator (n x n) of the cell-centred derivative along ``axis`` (1/m)."""
    n_a = idx.shape[axis]
    x = centres[axis]
    rows, cols, vals = [], [], []
    plus = np.roll(idx, -1, axis=axis)
    minus = np.roll(idx, 1, axis=axis)
    pos = np.arange(n_a)
    shape = [1, 1, 1]
    shape[axis] = -1
    pos = np.broadcast_to(pos.reshape(shape), idx.shape)
    L = x[-1] - x[0] + 0.5 * (x[1] - x[0] + x[-1] - x[-2]) if n_a > 1 else 1.0
    xp = np.broadcast_to(np.roll(x, -1).reshape(shape), idx.shape).copy()
    xm = np.broadcast_to(np.roll(x, 1).reshape(shape), idx.shape).copy()
    xc = np.broadcast_to(x.reshape(shape), idx.shape)
    has_p = np.roll(active, -1, axis=axis) & active
    has_m = np.roll(active, 1, axis=axis) & active
    if periodic:
        xp = np.where(pos == n_a - 1, xp + L, xp)
        xm = np.where(pos == 0, xm - L, xm)
    else:
        has_p &= pos < n_a - 1
        has_m &= pos > 0
    if n_a == 1:
        has_p[:] = False
        has_m[:] = False
    both = has_p & has_m
    only_p = has_p & ~has_m
    only_m = has_m & ~has_p
    for sel, a, b, xa, xb in ((both, plus, minus, xp, xm), (only_p, plus, idx, xp, xc), (only_m, idx, minus, xc, xm)):
        inv = 1.0 / (xa[sel] - xb[sel])
        r = idx[sel]
        rows += [r, r]
        cols += [a[sel], b[sel]]
        vals += [inv, -inv]
    n = idx.size
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def assemble_tensor(grid: Grid, D: np.ndarray, *, active: np.ndarray | None = None,
                    periodic: tuple[bool, bool] = (False, False), bottom: str = "blocking",
                    sinks: tuple[str, ...] = ()) -> DiffusionSystem:
    """Assemble the full-tensor finite-volume operator of ``V dc/dt = -K c + b``.

    Parameters
    ----------
    grid : Grid
        The cells; z = ``grid.origin[2]`` is the sample surface.
    D : ndarray, shape (nx, ny, nz, 3, 3)
        Symmetric sample-frame diffusivity tensor per cell (m^2/s), positive definite in material cells.
    active : ndarray of bool, shape (nx, ny, nz), optional
        Material cells; False marks void (pores, cracks). Default all.
    periodic : (bool, bool)
        Periodic in x and y; otherwise the sides are no-flux.
    bottom : {"blocking", "reservoir"}
        Bottom of the film: no flux, or held at delta_c = 0.
    sinks : tuple of {"x-", "x+", "y-", "y+"}
        Lateral sides held at delta_c = 0 (a far field standing in for infinity in validation
        problems); the other non-periodic sides are no-flux.

    Returns
    -------
    DiffusionSystem
        ``K`` is not symmetric when the tensors have off-diagonal terms. ``top_conductance`` is the
        two-point conductance ``A D_zz / (h_z / 2)`` of each surface cell (0 for void).
    """
    shape = grid.shape
    D = np.asarray(D, dtype=float)
    if D.shape != shape + (3, 3):
        raise ValueError(f"D: shape {D.shape} does not match grid {shape} + (3, 3)")
    if bottom not in ("blocking", "reservoir"):
        raise ValueError(f"bottom: got {bottom!r}; allowed 'blocking' or 'reservoir'")
    active = np.ones(shape, bool) if active is None else np.asarray(active, bool)
    if active.shape != shape:
        raise ValueError(f"active: shape {active.shape} does not match grid {shape}")
    diagD = np.stack([D[..., 0, 0], D[..., 1, 1], D[..., 2, 2]], -1)
    if not np.all(np.isfinite(D)) or np.any(diagD[active] <= 0):
        raise ValueError("D: diffusivities must be finite, with positive diagonal in every material cell")
    n = int(np.prod(shape))
    idx = np.arange(n).reshape(shape)
    h = (grid.dx, grid.dy, grid.dz)
    centres = [grid.centers(a) for a in range(3)]
    widths = [np.broadcast_to(h[a].reshape([-1 if k == a else 1 for k in range(3)]), shape) for a in range(3)]
    per = (periodic[0], periodic[1], False)
    grads = [_cell_gradient(idx, active, centres, b, per[b]) for b in range(3)]

    F_rows, F_cols, F_vals = [], [], []
    P_all, Q_all = [], []
    face0 = 0
    cross_mats = []
    for a in range(3):
        n_a = shape[a]
        lo = np.arange(n_a if per[a] else n_a - 1)
        if n_a == 1 and not per[a]:
            continue
        hi = (lo + 1) % n_a
        P = np.take(idx, lo, axis=a)
        Q = np.take(idx, hi, axis=a)
        ok = np.take(active, lo, axis=a) & np.take(active, hi, axis=a)
        P, Q = P[ok], Q[ok]
        pf, qf = np.unravel_index(P, shape), np.unravel_index(Q, shape)
        b_axes = [b for b in range(3) if b != a]
        area = widths[b_axes[0]][pf] * widths[b_axes[1]][pf]
        res = 0.5 * widths[a][pf] / diagD[pf + (a,)] + 0.5 * widths[a][qf] / diagD[qf + (a,)]
        g = area / res
        nf = len(P)
        fr = face0 + np.arange(nf)
        # normal part: F = -g (c_Q - c_P)
        F_rows += [fr, fr]
        F_cols += [Q, P]
        F_vals += [-g, g]
        for b in b_axes:
            Dab = 0.5 * (D[pf + (a, b)] + D[qf + (a, b)])
            if not np.any(Dab):
                continue
            # F += -A Dab * 0.5 (G_b[P] + G_b[Q]) c
            coef = sp.diags(-area * Dab * 0.5)
            sel = sp.csr_matrix((np.ones(nf), (np.arange(nf), P)), shape=(nf, n)) + \
                sp.csr_matrix((np.ones(nf), (np.arange(nf), Q)), shape=(nf, n))
            cross_mats.append((face0, nf, coef @ (sel @ grads[b])))
        P_all.append(P)
        Q_all.append(Q)
        face0 += nf
    P_all, Q_all = np.concatenate(P_all), np.concatenate(Q_all)
    n_faces = face0
    F = sp.csr_matrix((np.concatenate(F_vals), (np.concatenate(F_rows), np.concatenate(F_cols))),
                      shape=(n_faces, n))
    for f0, nf, M in cross_mats:
        pad = sp.vstack([sp.csr_matrix((f0, n)), M, sp.csr_matrix((n_faces - f0 - nf, n))])
        F = F + pad
    div = sp.csr_matrix((np.concatenate([np.ones(n_faces), -np.ones(n_faces)]),
                         (np.concatenate([P_all, Q_all]), np.tile(np.arange(n_faces), 2))), shape=(n, n_faces))
    K = (div @ F).tocsr()
    hz = grid.dz
    top_area = np.outer(grid.dx, grid.dy)
    diag = np.where(~active.ravel(), 1.0, 0.0)  # void rows: c = 0
    if bottom == "reservoir":
        g_bot = np.where(active[:, :, -1], top_area * diagD[:, :, -1, 2] / (0.5 * hz[-1]), 0.0)
        diag[idx[:, :, -1].ravel()] += g_bot.ravel()
    for side in sinks:
        if side not in ("x-", "x+", "y-", "y+") or per["xy".index(side[0])]:
            raise ValueError(f"sinks: got {side!r}; allowed 'x-', 'x+', 'y-', 'y+' on non-periodic sides")
        a = "xy".index(side[0])
        end = 0 if side[1] == "-" else -1
        b = 1 - a
        face = np.take(widths[b], end, axis=a) * np.take(widths[2], end, axis=a)
        half = 0.5 * np.take(widths[a], end, axis=a)
        g_side = np.where(np.take(active, end, axis=a), face * np.take(diagD[..., a], end, axis=a) / half, 0.0)
        np.add.at(diag, np.take(idx, end, axis=a).ravel(), g_side.ravel())
    K = (K + sp.diags(diag)).tocsr()
    K.eliminate_zeros()
    volume = np.where(active, grid.volumes(), 0.0).ravel()
    xe, ye, ze = grid.edges(0), grid.edges(1), grid.edges(2)
    X0, Y0, Z0 = np.meshgrid(xe[:-1], ye[:-1], ze[:-1], indexing="ij")
    X1, Y1, Z1 = np.meshgrid(xe[1:], ye[1:], ze[1:], indexing="ij")
    boxes = np.stack([X0.ravel(), X1.ravel(), Y0.ravel(), Y1.ravel(), Z0.ravel(), Z1.ravel()], -1)
    top_index = idx[:, :, 0].ravel()
    top_xy = np.stack(np.meshgrid(centres[0], centres[1], indexing="ij"), -1).reshape(-1, 2)
    top_g = np.where(active[:, :, 0], top_area * diagD[:, :, 0, 2] / (0.5 * hz[0]), 0.0).ravel()
    top_a = np.where(active[:, :, 0], top_area, 0.0).ravel()
    return DiffusionSystem(K, volume, top_index, top_xy, top_g, boxes, n, top_a)
