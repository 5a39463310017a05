"""Tensor Vegard coefficients at surface points: real-space reciprocity with the Boussinesq solution.

PHYSICS.md sec. 3: ``u_out(x) = -Int c(xi) beta : sigma^B(xi - x) dV`` with sigma^B the stress of a unit
inward normal point force at the surface point x (Johnson, *Contact Mechanics*, eq. 3.49). For cells on
which c and beta are constant, each cell contributes ``W : beta c`` with ``W = -Int_box sigma^B dV``.

The trace of W is the Mindlin kernel, ``tr W = (1 + nu)/pi Int z / R^3 dV``, which
:func:`~esmsim.mechanics.box_kernel` integrates exactly; only the deviatoric part of W is integrated
numerically: the midpoint rule on boxes at least ``far`` times their size from the point, tensor
Gauss-Legendre (2 x 2 x 2) on boxes at least ``ratio`` times their size away, boxes nearer split in
halves along their long axes (flat boxes in-plane only), down to ``depth`` levels (the last level
with 3 x 3 x 3 points).
The integrand is singular like 1/R^2 at the point, which is integrable; the box under the tip is
refined towards it. Tested against the Fourier reciprocity path and the real-space formula on a smooth
field.
"""

from __future__ import annotations

import numpy as np

from ._halfspace import box_kernel

__all__ = ["boussinesq_stress", "tensor_box_weights", "deviator"]


def deviator(T):
    """Deviatoric part ``T - trace(T)/3 I`` of 3 x 3 tensors (last two axes)."""
    T = np.asarray(T)
    return T - (np.trace(T, axis1=-2, axis2=-1) / 3.0)[..., None, None] * np.eye(3)


def boussinesq_stress(x, y, z, nu):
    """Stress (3, 3, ...) at (x, y, z) (m, z into the body) of a unit inward normal force at the origin
    (N/m^2 per N)."""
    x, y, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float), np.asarray(z, float))
    r2 = x * x + y * y
    r = np.sqrt(r2)
    R = np.sqrt(r2 + z * z)
    with np.errstate(invalid="ignore", divide="ignore"):
        # (1/r^2)(1 - z/R) = 1/(R (R + z)), finite on the axis
        g = 1.0 / (R * (R + z))
        srr = ((1 - 2 * nu) * g - 3 * z * r2 / R ** 5) / (2 * np.pi)
        stt = -(1 - 2 * nu) * (g - z / R ** 3) / (2 * np.pi)
        szz = -3 * z ** 3 / (2 * np.pi * R ** 5)
        srz_r = -3 * z ** 2 / (2 * np.pi * R ** 5)  # tau_rz / r
        on_axis = r == 0
        co = np.where(on_axis, 1.0, x / np.where(on_axis, 1.0, r))
        si = np.where(on_axis, 0.0, y / np.where(on_axis, 1.0, r))
    S = np.empty((3, 3) + x.shape)
    S[0, 0] = srr * co ** 2 + stt * si ** 2
    S[1, 1] = srr * si ** 2 + stt * co ** 2
    S[0, 1] = S[1, 0] = (srr - stt) * co * si
    S[0, 2] = S[2, 0] = srz_r * x
    S[1, 2] = S[2, 1] = srz_r * y
    S[2, 2] = szz
    return S


_G1 = np.polynomial.legendre.leggauss(1)
_G2 = np.polynomial.legendre.leggauss(2)
_G3 = np.polynomial.legendre.leggauss(3)


def _gauss(boxes, point, nu, rule):
    """-Int sigma^B over each box (n, 3, 3) by a tensor Gauss rule."""
    g, w = rule
    x0, x1, y0, y1, z0, z1 = (boxes[:, i][:, None] for i in range(6))
    hx, hy, hz = (x1 - x0) / 2, (y1 - y0) / 2, (z1 - z0) / 2
    X = (x0 + x1) / 2 + hx * g[None, :] - point[0]
    Y = (y0 + y1) / 2 + hy * g[None, :] - point[1]
    Z = (z0 + z1) / 2 + hz * g[None, :]
    XX = X[:, :, None, None]
    YY = Y[:, None, :, None]
    ZZ = Z[:, None, None, :]
    S = boussinesq_stress(XX, YY, ZZ, nu)  # (3, 3, n, q, q, q)
    W = (w[:, None, None] * w[None, :, None] * w[None, None, :])
    vol = (hx * hy * hz)[:, 0]
    return -np.einsum("ijnabc,abc->nij", S, W) * vol[:, None, None]


def tensor_box_weights(boxes, point, nu: float, *, ratio: float = 3.0, far: float = 8.0,
                       depth: int = 6) -> np.ndarray:
    """Weights ``W`` (n, 3, 3) such that ``u_out = sum_boxes W : beta c`` at the surface point.

    Parameters
    ----------
    boxes : ndarray, shape (n, 6)
        ``(x0, x1, y0, y1, z0, z1)`` in m, ``0 <= z0 < z1``.
    point : (float, float)
        Surface point (m).
    nu : float
        Poisson's ratio.
    ratio, far, depth
        Refinement: boxes closer than ``ratio`` times their largest side are split, up to ``depth`` levels;
        boxes farther than ``far`` times it take one point (relative error ~ (size / distance)^2 / 4 of
        a box whose share is itself ~ (size / distance)^2).

    Returns
    -------
    ndarray, shape (n, 3, 3)
        Symmetric weights in m (volume / length^2 x stress per force); ``trace`` equals
        ``(1 + nu)/pi * box_kernel`` exactly.
    """
    b = np.asarray(boxes, float)
    n = len(b)
    W = np.zeros((n, 3, 3))
    owner = np.arange(n)
    cur = b
    p = np.asarray(point, float)
    for level in range(depth + 1):
        if not len(cur):
            break
        size = np.max(cur[:, 1::2] - cur[:, ::2], axis=1)
        dx = np.maximum(np.maximum(cur[:, 0] - p[0], p[0] - cur[:, 1]), 0.0)
        dy = np.maximum(np.maximum(cur[:, 2] - p[1], p[1] - cur[:, 3]), 0.0)
        dist = np.sqrt(dx ** 2 + dy ** 2 + cur[:, 4] ** 2)
        one = dist >= far * size
        done = ((dist >= ratio * size) | (level == depth)) & ~one
        if np.any(one):
            np.add.at(W, owner[one], _gauss(cur[one], p, nu, _G1))
        if np.any(done):
            rule = _G2 if level < depth else _G3
            np.add.at(W, owner[done], _gauss(cur[done], p, nu, rule))
        done |= one
        split = ~done
        if not np.any(split):
            break
        cur, owner = _split(cur[split], owner[split])
    tr = np.trace(W, axis1=1, axis2=2)
    exact = (1 + nu) / np.pi * box_kernel(b, (float(p[0]), float(p[1])))
    return W + ((exact - tr) / 3.0)[:, None, None] * np.eye(3)


def _split(b, owner):
    """Each box halved along every axis at least half as long as its longest (flat boxes split in-plane
    only): its 2, 4 or 8 parts, shape (m, 6), and the owner of each part."""
    ext = b[:, 1::2] - b[:, ::2]
    cut = ext >= 0.5 * ext.max(axis=1, keepdims=True)
    out, owners = [], []
    for pattern in np.unique(cut, axis=0):
        mine = np.all(cut == pattern, axis=1)
        sel = b[mine]
        owners.append(np.repeat(owner[mine], 2 ** int(pattern.sum())))
        parts = [sel]
        for a in np.flatnonzero(pattern):
            new = []
            for q in parts:
                mid = 0.5 * (q[:, 2 * a] + q[:, 2 * a + 1])
                lo, hi = q.copy(), q.copy()
                lo[:, 2 * a + 1] = mid
                hi[:, 2 * a] = mid
                new += [lo, hi]
            parts = new
        out.append(np.stack(parts, 1).reshape(-1, 6))
    return np.concatenate(out), np.concatenate(owners)
