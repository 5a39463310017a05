"""Frequency-domain solve of the diffusion problem under a potentiostatic tip."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._operator import DiffusionSystem
from ._threads import ROW_BLOCKS, THREADED_FROM, RowBlocks, one_blas_thread, threads
from ._tip import tip_profile

__all__ = ["solve_frequency", "tip_rhs", "tip_terms", "CONDITIONS"]

CONDITIONS = ("potentiostatic", "butler_volmer", "galvanostatic")


def tip_rhs(system: DiffusionSystem, tip_xy, *, profile: str, width: float, average: bool = False):
    """Surface-condition terms ``(diag, b)`` of a potentiostatic tip at ``tip_xy`` for unit C0 (see
    :func:`tip_terms`)."""
    return tip_terms(system, tip_xy, profile=profile, width=width, average=average)


AVERAGE_POINTS = 4  # midpoints per axis for the cell averages of the tip profile


def contact_profile(system: DiffusionSystem, tip_xy, profile: str, width: float, average: bool = False):
    """Tip profile ``f`` at every surface contact and the mask where the tip condition applies.

    With ``average`` the bulk cells' contacts take the profile averaged over their top face
    (``AVERAGE_POINTS`` x ``AVERAGE_POINTS`` midpoints) instead of its value at the face centre, slab
    contacts its average along their strip (``AVERAGE_POINTS`` midpoints; they are ``delta`` thin). The
    mask stays that of the centres.

    Raises
    ------
    ValueError
        The tip is outside the surface (the bulk cell centres plus half an end cell on each side).
    """
    xy = system.top_xy
    bulk = xy[system.top_index < system.n_bulk]
    for a in (0, 1):
        u = np.unique(bulk[:, a])
        if u.size > 1:
            lo, hi = u[0] - 0.5 * (u[1] - u[0]), u[-1] + 0.5 * (u[-1] - u[-2])
            if not lo * (1 + 1e-9) - 1e-18 <= tip_xy[a] <= hi * (1 + 1e-9) + 1e-18:
                raise ValueError(f"tip position: {'xy'[a]} = {tip_xy[a]:g} m is outside the surface "
                                 f"[{lo:g}, {hi:g}] m")
    f, mask = tip_profile(np.hypot(xy[:, 0] - tip_xy[0], xy[:, 1] - tip_xy[1]), profile, width)
    if average:
        bulk = system.top_index < system.n_bulk
        box = system.boxes[system.top_index[bulk]]
        g = (np.arange(AVERAGE_POINTS) + 0.5) / AVERAGE_POINTS
        x = box[:, :1] + (box[:, 1:2] - box[:, :1]) * g[None, :]
        y = box[:, 2:3] + (box[:, 3:4] - box[:, 2:3]) * g[None, :]
        r = np.hypot(x[:, :, None] - tip_xy[0], y[:, None, :] - tip_xy[1])
        f = f.copy()
        f[bulk] = tip_profile(r, profile, width)[0].mean(axis=(1, 2))
        if system.slab_tangent is not None and not bulk.all():  # slabs: along their strips' length
            u = system.top_index[~bulk]
            t = system.slab_tangent[u - system.n_bulk]
            s = (system.boxes[u, 1] - system.boxes[u, 0])[:, None] * (g - 0.5)[None, :]
            px = xy[~bulk, 0, None] + s * t[:, 0, None]
            py = xy[~bulk, 1, None] + s * t[:, 1, None]
            f[~bulk] = tip_profile(np.hypot(px - tip_xy[0], py - tip_xy[1]), profile, width)[0].mean(axis=1)
    return f, mask


def tip_terms(system: DiffusionSystem, tip_xy, *, profile: str, width: float, condition: str = "potentiostatic",
              kappa: float | None = None, average: bool = False):
    """Surface-condition terms of a tip at ``tip_xy`` for unit amplitude (PHYSICS.md sec. 2).

    Parameters
    ----------
    system : DiffusionSystem
    tip_xy : (float, float)
        Tip position on the surface (m).
    profile, width
        Field profile and its width (m), as in :func:`tip_profile`.
    condition : {"potentiostatic", "butler_volmer", "galvanostatic"}
        ``c = C0 f`` (Dirichlet, unit C0); linearised Butler-Volmer
        ``-D dc/dz = kappa (C0 f - c)`` (Robin, unit C0); or a prescribed
        inward flux density ``q0 f`` (Neumann, unit q0 in mol m^-2 s^-1).
    kappa : float
        Surface rate constant (m/s), ``j0 |dU/dc| / (R T)``; required for ``butler_volmer``.
    average : bool
        Give each bulk surface cell the profile averaged over its top face rather than the value at its
        centre: the finite-volume data for a tip that is not at a cell centre (the centre value misses
        the profile's curvature across the cell: 2 % in the cells around a tip on a corner of 8 nm cells,
        Lorentzian of 20 nm). Pair it with the in-cell reconstruction of :meth:`DiffusionSystem.weights`:
        the point under such a tip sees the profile's peak, which no cell's mean carries (7 % there).

    Returns
    -------
    diag : ndarray
        Conductances (m^3/s) to add to the diagonal of K.
    b : ndarray
        Right-hand side (mol/s per unit amplitude).

    Notes
    -----
    The Robin condition is the series of the surface resistance ``1 / (kappa A)`` and the half
    cell under it, so ``kappa -> inf`` gives the potentiostatic terms exactly.

    With rotated grains (``system.top_cross``) the flux through the surface has a cross part
    ``A (D_zx dc/dx + D_zy dc/dy)``. Under a potentiostatic tip ``dc/dx`` at the surface is the profile's,
    so it goes into ``b`` exactly; without it the top cells converged at first order only (validation
    ``transport_tensor`` case 3, a static tip on one LiCoO2 grain with its c axis 40 degrees from z: 3.9e-2
    off finite elements at 1 nm cells; 4.1e-3 with it, order 2.27).
    For Butler-Volmer, ``b`` takes the share ``kappa A / (g + kappa A)`` of it that the tip's value has in
    the surface value (the cells' own lateral gradient there is left out); galvanostatic sets the whole
    normal flux and adds none.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"tip condition: got {condition!r}; allowed {', '.join(CONDITIONS)}")
    f, mask = contact_profile(system, tip_xy, profile, width, average)
    diag = np.zeros(system.n)
    b = np.zeros(system.n)
    if condition == "galvanostatic":
        np.add.at(b, system.top_index, np.where(mask, system.top_area * f, 0.0))
        return diag, b
    g = np.where(mask, system.top_conductance, 0.0)
    w = 1.0  # the share of the tip's value in the surface value (1: potentiostatic)
    if condition == "butler_volmer":
        if kappa is None or not (np.isfinite(kappa) and kappa > 0):
            raise ValueError(f"kappa: got {kappa!r}; the Butler-Volmer condition needs a positive rate (m/s)")
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(g > 0, kappa * system.top_area / (g + kappa * system.top_area), 0.0)
            g = np.where(g > 0, 1.0 / (1.0 / np.maximum(g, 1e-300) + 1.0 / (kappa * system.top_area)), 0.0)
    np.add.at(diag, system.top_index, g)
    np.add.at(b, system.top_index, g * f)
    if system.top_cross is not None:
        np.add.at(b, system.top_index, -w * _cross_outflow(system, tip_xy, profile, width, mask, average))
    return diag, b


def _cross_outflow(system, tip_xy, profile, width, mask, average):
    """Outflow ``A (D_zx df/dx + D_zy df/dy)`` (m^3/s per unit amplitude) through each top contact's face:
    the cross part of the flux through a surface whose value ``f`` the tip sets (rotated grains). The
    gradient is the difference of ``f`` across the face, on its centre line (or averaged over
    ``AVERAGE_POINTS`` lines with ``average``); zero where the condition does not apply at the contact or
    at either edge (a disk's rim)."""
    out = np.zeros(system.top_index.size)
    on = np.flatnonzero(mask & np.any(system.top_cross != 0, axis=1))
    if not on.size:
        return out
    box = system.boxes[system.top_index[on]]
    g = (np.arange(AVERAGE_POINTS) + 0.5) / AVERAGE_POINTS if average else np.array([0.5])
    for a in (0, 1):
        lo, hi = box[:, 2 * a], box[:, 2 * a + 1]
        o = 2 - 2 * a  # the other lateral axis' box columns
        t = box[:, o:o + 1] + (box[:, o + 1:o + 2] - box[:, o:o + 1]) * g[None, :]  # lines across the face
        ends = []
        for e in (lo, hi):
            x, y = (e[:, None], t) if a == 0 else (t, e[:, None])
            ends.append(tip_profile(np.hypot(x - tip_xy[0], y - tip_xy[1]), profile, width))
        ok = ends[0][1].all(axis=1) & ends[1][1].all(axis=1)
        df = np.where(ok, (ends[1][0] - ends[0][0]).mean(axis=1) / (hi - lo), 0.0)
        out[on] += system.top_cross[on, a] * df
    return out


def solve_frequency(system: DiffusionSystem, omegas, diag, b, *, method: str = "auto",
                    rtol: float = 1e-10, direct_below: int = 40_000, high: str = "zline",
                    ordering: str = "MMD_AT_PLUS_A", info: dict | None = None) -> np.ndarray:
    """Solve ``(i omega V + K + diag) c = b`` for each angular frequency.

    ``method="direct"`` factorises with SuperLU (minimum-degree ordering of
    A + A^T, no pivoting) and reuses the factors for all columns of ``b``. ``method="amg"`` uses GMRES preconditioned with
    smoothed-aggregation AMG of the real shifted operator ``K + omega V``
    (pyamg), whose iteration count stays bounded over decades of omega.
    ``method="zline"`` uses GMRES preconditioned by the exact solve of every z line (the tridiagonal part
    of the matrix: unknowns are numbered along z within each column and slab), which is nearly exact
    when the diffusion length is thinner than a column, as at ESM frequencies; ``"auto"`` picks direct
    below ``direct_below`` unknowns, z lines where ``omega`` exceeds 100 times the median lateral rate ``g / V`` of
    the bulk cells (:func:`_zline_omega`, from every bulk row or, beyond 131 072 of them, from 65 536 to
    131 072 rows evenly spaced; measured crossover between 1 and 10 kHz for 5 nm columns of LiCoO2), AMG
    otherwise. Iterations on the 1.49 M-unknown polycrystal with slabs of
    ``benchmarks/bench_transport.py``: AMG-GMRES 45, 60, 57, 56 at 1 Hz, 1 kHz, 350 kHz, 1 MHz; z-line
    COCG 35 and 22 at 350 kHz and 1 MHz (it needs thousands below ~10 kHz, where ``"auto"`` takes AMG).
    ``method="split"`` factorises the operator without the bulk cells' lateral links (the z lines and the
    boundary slabs with their links to the bulk: a sparse LU with little fill) and runs block COCG on the
    whole operator with it as the preconditioner (:func:`split_solve`); where ``omega`` outweighs the
    lateral rates it converges in a few iterations for all right-hand sides at once (the map engine's
    solver at ESM frequencies: 0.09 s to factorise a 115 000-unknown window whose full LU takes 27 s).

    Parameters
    ----------
    system : DiffusionSystem
    omegas : float or array_like
        Angular frequencies (rad/s); 0 gives the static solution.
    diag : ndarray
        Extra diagonal conductances from the surface condition (m^3/s).
    b : ndarray, shape (n,) or (n, m)
        Right-hand side(s).
    rtol : float
        Relative residual of the iterative methods (per right-hand side).
    direct_below : int
        Size under which ``"auto"`` factorises. A whole periodic volume with boundary slabs fills its LU
        far more than a window of columns: 28 000 unknowns took 660 s to factorise and 0.1 s with z lines
        (residual 9e-11), so :func:`~esmsim.probe.volume_response` lowers it.
    high : {"zline", "split"}
        What ``"auto"`` takes where ``omega`` exceeds 100 times the lateral rate. Volumes with boundary
        slabs take ``"split"``: the slabs' links across columns lie outside the z lines (z-line COCG needed
        42 steps on a 4 x 4-tip window of the equiaxed example, split 3).
    ordering : str
        SuperLU column ordering of the LU in ``"direct"`` and ``"split"`` (:func:`symmetric_lu`).
    info : dict, optional
        Filled with ``"method"`` (the method used at each frequency) and ``"iterations"`` (per frequency:
        Krylov iterations, the most over the right-hand sides; 0 for ``"direct"``).

    Returns
    -------
    ndarray, complex, shape (n_omega, n) or (n_omega, n, m)
        Complex concentration amplitudes ``c`` with ``delta_c = Re[c exp(i omega t)]``.
    """
    if method not in ("auto", "direct", "amg", "zline", "split"):
        raise ValueError(f"method: got {method!r}; allowed 'auto', 'direct', 'amg', 'zline', 'split'")
    if high not in ("zline", "split"):
        raise ValueError(f"high: got {high!r}; allowed 'zline', 'split'")
    auto = method == "auto"
    omegas = np.atleast_1d(np.asarray(omegas, dtype=float))
    check_surface_layer(system, diag, omegas.max())
    b = np.asarray(b, dtype=complex)
    diag = np.asarray(diag, float)
    out = []
    if info is not None:
        info.update(method=[], iterations=[])
    for w in omegas:
        if auto:
            method = "direct" if system.n < direct_below else (
                high if w >= 100 * _zline_omega(system) else "amg")
        counts = [0]
        if method == "zline":  # no copy of the matrix: A = K + diag(d) applied as such
            d = diag + 1j * w * system.volume
            cols = b.reshape(system.n, -1)
            out.append(_zline_solve(system.K, d, cols, rtol=rtol, counts=counts).reshape(b.shape))
        elif method == "split":
            cols = b.reshape(system.n, -1)
            out.append(split_solve(system.K, system.n_bulk, diag + 1j * w * system.volume, cols,
                                   rtol=rtol, counts=counts, ordering=ordering).reshape(b.shape))
        else:
            A = (system.K + sp.diags(diag + 1j * w * system.volume)).tocsr()
            if method == "direct":
                out.append(symmetric_lu(A, ordering).solve(b))
            else:
                shifted = system.K + sp.diags(diag + w * system.volume)
                cols = b.reshape(system.n, -1)
                sol = np.stack([_amg_solve(A, shifted, cols[:, j], rtol=rtol, counts=counts)
                                for j in range(cols.shape[1])], -1)
                out.append(sol.reshape(b.shape))
        if info is not None:
            info["method"].append(method)
            info["iterations"].append(max(counts))
    return np.asarray(out)


@one_blas_thread
def symmetric_lu(A, ordering: str = "MMD_AT_PLUS_A"):
    """Sparse LU of ``K + diag(d)``: K a symmetric M-matrix, d real >= 0 or ``i omega V``.

    The matrix is symmetric (complex symmetric) and diagonally dominant, so no pivoting is needed and the
    symmetric minimum-degree ordering is kept (3-5x less time than partial pivoting). ``ordering``: SuperLU's
    column ordering; the minimum-degree one is slow on volumes' operators (19-point stencils, slab links
    across columns), where ``"COLAMD"`` factorised a one-tip window in 0.05 s against 0.7-5 s.
    """
    return spla.splu(sp.csc_matrix(A), permc_spec=ordering, diag_pivot_thresh=0.0,
                     options={"SymmetricMode": True})


def _lateral_bulk(K, n_bulk):
    """Rows and mask of the stored entries of the CSR matrix ``K`` (in ``K.data`` order) that link two bulk
    cells of different z lines (bulk unknowns are numbered along z within each column, so z neighbours
    differ by one). Works on the CSR arrays: a COO copy of a 1.5 M-unknown complex matrix is 260 MB."""
    it = K.indices.dtype
    rows = np.repeat(np.arange(K.shape[0], dtype=it), np.diff(K.indptr))
    return rows, (rows < n_bulk) & (K.indices < n_bulk) & (np.abs(rows - K.indices) > 1)


@one_blas_thread
def split_solve(K, n_bulk: int, d, B, *, rtol: float = 1e-10, maxiter: int = 200,
                counts: list | None = None, ordering: str = "MMD_AT_PLUS_A") -> np.ndarray:
    """Solve ``(K + diag(d)) X = B`` by block COCG preconditioned with the exact LU of the split operator.

    The split operator ``P`` is ``K + diag(d)`` without the links between bulk cells of different z lines
    (their conductances stay in the diagonal): z lines, boundary slabs and the slabs' links to the bulk.
    Its LU has little fill (no 3-D separators). ``A - P`` is the lateral bulk coupling, small against
    ``omega V`` at ESM frequencies, so COCG (``A`` is complex symmetric, and so is ``P``) needs a few
    iterations; every column of ``B`` runs at once (one triangular solve and one sparse product with a
    block per iteration).

    Parameters
    ----------
    K : sparse matrix, shape (n, n)
        Conductance matrix (m^3/s), unknowns numbered as in :class:`~esmsim.transport.DiffusionSystem`.
    n_bulk : int
        Number of bulk-cell unknowns (the first ones).
    d : ndarray, complex, shape (n,)
        Diagonal to add (surface conductances plus ``i omega V``), m^3/s.
    B : ndarray, shape (n, m)
        Right-hand sides.
    rtol : float
        Relative residual per column.
    counts : list, optional
        The number of iterations taken is appended to it.
    ordering : str
        Column ordering of the split operator's LU (:func:`symmetric_lu`).

    Returns
    -------
    ndarray, complex, shape (n, m)

    Raises
    ------
    RuntimeError
        No convergence in ``maxiter`` iterations (the lateral coupling is too strong: use ``"direct"``).
    """
    K = sp.csr_matrix(K)
    P = K.copy()
    P.data[_lateral_bulk(K, n_bulk)[1]] = 0
    P.eliminate_zeros()
    lu = symmetric_lu(P + sp.diags(d), ordering)
    return _cocg(_shifted(K, d), np.asarray(B, complex).reshape(K.shape[0], -1), lu.solve,
                 rtol=rtol, maxiter=maxiter, name="split", fallback="direct", counts=counts)


def amg_hierarchy(S, **kwargs):
    """``pyamg.smoothed_aggregation_solver(S, **kwargs)``, the same bit for bit on every call.

    pyamg estimates spectral radii (the prolongation smoother's weight) by Arnoldi or Lanczos from a random
    start drawn from numpy's global legacy generator: the hierarchy, and every solve preconditioned by it,
    then changed in the 13th-15th digit from call to call, and each setup moved the user's global random
    stream. The setup here draws that start from a fixed seed and puts the global state back."""
    import pyamg  # core dependency; imported lazily to keep ``import esmsim`` fast

    state = np.random.get_state()
    try:
        np.random.seed(AMG_SEED)
        return pyamg.smoothed_aggregation_solver(S, **kwargs)
    finally:
        np.random.set_state(state)


#: Seed of the start vectors of pyamg's spectral-radius estimates (:func:`amg_hierarchy`).
AMG_SEED = 20261129


def _amg_solve(A, shifted_real, b, *, rtol=1e-10, maxiter=400, counts=None):
    """GMRES on the complex system, preconditioned by AMG of the real shifted operator K + omega V
    (the number of inner iterations appended to ``counts`` when given)."""
    S = shifted_real.tocsr()
    if np.iscomplexobj(S.data):  # complex boundary-layer links: precondition with the real part
        S = sp.csr_matrix((S.data.real.copy(), S.indices.copy(), S.indptr.copy()), shape=S.shape)
    ml = amg_hierarchy(S, max_coarse=500)
    P = ml.aspreconditioner(cycle="V")

    def apply(x):
        return P.matvec(np.ascontiguousarray(x.real)) + 1j * P.matvec(np.ascontiguousarray(x.imag))

    M = spla.LinearOperator(A.shape, matvec=apply, dtype=complex)
    steps = []
    x, info = spla.gmres(A, b, M=M, rtol=rtol, atol=0.0, restart=60, maxiter=maxiter,
                         callback=steps.append, callback_type="pr_norm")
    if counts is not None:
        counts.append(len(steps))
    if info != 0:
        raise RuntimeError(f"AMG-GMRES did not converge to rtol={rtol:g} in {maxiter} restarts (info={info})")
    return x


def check_surface_layer(system: DiffusionSystem, diag, omega: float) -> None:
    """Warn when the first cell under the tip is thicker than the diffusion length sqrt(D_zz / omega).

    From the surface contacts that carry the tip condition: the cell depth is ``h = V / A`` and
    ``D_zz = g h / (2 A)`` from the half-cell conductance ``g``.
    """
    import warnings

    from .._errors import ResolutionWarning

    if omega <= 0 or system.top_area is None:
        return
    on = (np.asarray(diag)[system.top_index] > 0) & (system.top_area > 0) & (system.top_index < system.n_bulk)
    if not np.any(on):
        return
    idx, area, g = system.top_index[on], system.top_area[on], system.top_conductance[on].real
    h = system.volume[idx] / area
    L = np.sqrt(g * h / (2 * area) / omega)
    worst = np.argmax(h / L)
    if h[worst] > L[worst]:
        warnings.warn(f"first z cell {h[worst]:.3g} m is thicker than the diffusion length sqrt(D_zz/omega) = "
                      f"{L[worst]:.3g} m under the tip: the surface layer is not resolved and the response "
                      f"is wrong; use first cells of ~L/8 (graded_widths)", ResolutionWarning, stacklevel=3)


def _zline_omega(system: DiffusionSystem) -> float:
    """The median lateral rate ``g / V`` (1/s) of the bulk cells' x and y links (off-diagonal entries
    outside the z-line band): where ``omega V`` outweighs it, the z lines carry the system."""
    K = sp.csr_matrix(system.K)
    nb = min(system.n_bulk, K.shape[0])
    # every bulk row up to 2^17 of them; beyond, every stride-th (at least 2^16 rows: the median of all the
    # 19 M entries of a 1 M-cell volume took 0.5 s and 0.4 GB to choose the method)
    rows = np.arange(0, nb, max(1, nb // (1 << 16)))
    sub = K[rows]
    r = np.repeat(rows, np.diff(sub.indptr))
    lateral = (sub.indices < nb) & (np.abs(r - sub.indices) > 1)
    if not np.any(lateral):
        return 0.0
    return float(np.median(np.abs(sub.data[lateral]) / np.maximum(system.volume[r[lateral]], 1e-300)))


def _zline_solve(K, d, B, *, rtol=1e-10, maxiter=3000, counts=None, blocks=None, workers=None):
    """COCG with the tridiagonal part of A (the z lines) solved exactly as the preconditioner, for the
    right-hand sides ``B`` (n, m) at once.

    ``A = K + diag + i omega V`` is complex symmetric (``K`` is symmetric, also with the complex
    boundary-layer links), and so is its tridiagonal part: the conjugate orthogonal conjugate gradient
    method then needs one product and one line solve per iteration and five vectors of memory per
    right-hand side (GMRES kept ~45 Krylov vectors, 1 GB on a 1.5 M-unknown system).

    Systems of :data:`~esmsim.transport._threads.THREADED_FROM` unknowns or more are cut into ``blocks``
    blocks of rows (default :data:`~esmsim.transport._threads.ROW_BLOCKS`) at ends of z lines; each
    block's product, line solves and share of the vector work run in ``workers`` threads (default
    :func:`~esmsim.transport._threads.threads`; scipy's sparse product, LAPACK and numpy release the GIL).
    The blocks decide the numbers (the inner products' partial sums), the threads do not: the same
    iterates bit for bit on any number of cores.
    """
    from scipy.linalg import lapack

    n = K.shape[0]
    if blocks is None:
        blocks = ROW_BLOCKS if n >= THREADED_FROM else 1
    # factorise the tridiagonal part once (LAPACK gttrf), then two triangular sweeps per iteration
    # (gttrs): 23 ms against 41 ms for a banded solve that refactorises, on 1.5 M unknowns. Each block
    # by itself: the cuts are where the tridiagonal part couples nothing, so the factors are the same
    off = np.asarray(K.diagonal(1), complex)
    main = np.asarray(K.diagonal() + d, complex)
    rows = RowBlocks(_line_cuts(off, blocks), threads(n) if workers is None else workers)
    factors = []
    for s in rows.slices:
        *f, info = lapack.zgttrf(off[s.start:s.stop - 1].copy(), main[s], off[s.start:s.stop - 1].copy(),
                                 overwrite_dl=1, overwrite_d=1, overwrite_du=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"z-line preconditioner: zero pivot at unknown {s.start + info - 1}; "
                                        "use method='amg'")
        factors.append(f)
    del off, main  # (main factorised in place, block by block; the factors hold copies of off)

    def precondition(R):
        X = R.copy()

        def lines(j):  # in place where LAPACK can (one right-hand side: a contiguous block)
            X[rows.slices[j]] = lapack.zgttrs(*factors[j], X[rows.slices[j]], overwrite_b=1)[0]
        rows.run(lines)
        return X

    with rows:
        return _cocg(_shifted(K, d, rows), np.asarray(B, complex).reshape(n, -1), precondition,
                     rtol=rtol, maxiter=maxiter, name="z-line", fallback="amg", counts=counts, rows=rows)


def _line_cuts(off, parts: int) -> list:
    """Row cuts ``[0, ..., n]`` into at most ``parts`` blocks of about equal size, each cut at a row that
    the tridiagonal part does not couple to the one before (``off[i - 1] == 0``, the end of a z line)."""
    n = off.size + 1
    free = np.flatnonzero(off == 0) + 1  # rows that start a new line
    cuts = [0]
    for p in range(1, parts):
        j = np.searchsorted(free, p * n // parts)
        if j < free.size and cuts[-1] < free[j] < n:
            cuts.append(int(free[j]))
    return cuts + [n]


def _shifted(K, d, rows=None):
    """``X -> (K + diag(d)) X`` for a block, without a copy of the matrix (one temporary per product);
    with :class:`~esmsim.transport._threads.RowBlocks` ``rows`` each block of rows by itself (views of the
    matrix's arrays)."""
    if rows is None or len(rows.slices) == 1:
        def apply(X):
            Q = K @ X
            Q += d[:, None] * X
            return Q
        return apply
    K = sp.csr_matrix(K)
    parts = []
    for s in rows.slices:
        # views of K's arrays, set as such: the constructor copies a view of less than half its array
        part = sp.csr_matrix((s.stop - s.start, K.shape[1]), dtype=K.dtype)
        part.indptr = K.indptr[s.start:s.stop + 1] - K.indptr[s.start]
        part.indices = K.indices[K.indptr[s.start]:K.indptr[s.stop]]
        part.data = K.data[K.indptr[s.start]:K.indptr[s.stop]]
        parts.append(part)

    def apply(X):
        Q = np.empty_like(X)

        def product(j):
            s = rows.slices[j]
            Q[s] = parts[j] @ X
            Q[s] += d[s, None] * X[s]
        rows.run(product)
        return Q
    return apply


def _cocg(apply, B, precondition, *, rtol, maxiter, name, fallback, counts=None, rows=None):
    """Preconditioned conjugate orthogonal CG for complex symmetric A (unconjugated inner products), every
    column of ``B`` (n, m) at once; each column stops at its own relative residual ``rtol`` and all-zero
    columns give zero. The iterations taken are appended to ``counts`` when given.

    ``apply(X)`` is ``A @ X`` for a block, ``precondition(R)`` the preconditioner applied to a block;
    ``rows`` (:class:`~esmsim.transport._threads.RowBlocks`, default one block) the blocks of rows in
    which the vector work runs."""
    rows = RowBlocks([0, B.shape[0]]) if rows is None else rows
    X = np.zeros_like(B)
    scale = np.linalg.norm(B, axis=0)
    idx = np.flatnonzero(scale > 0)  # the columns still running; the rest of X is final
    if not idx.size:
        return X
    R = B[:, idx]
    Xa = np.zeros_like(R)
    stop = rtol * scale[idx]
    Z = precondition(R)
    Pk = Z.copy()
    rz = rows.dot(R, Z)

    def update(j):  # the new iterate and residual
        s = rows.slices[j]
        Xa[s] += alpha * Pk[s]
        R[s] -= alpha * Q[s]

    def direction(j):
        s = rows.slices[j]
        Pk[s] *= beta
        Pk[s] += Z[s]

    for it in range(maxiter):
        Q = apply(Pk)
        alpha = rz / rows.dot(Pk, Q)
        rows.run(update)
        done = rows.norm(R) <= stop
        if done.any():
            X[:, idx[done]] = Xa[:, done]
            keep = ~done
            idx, Xa, R, Pk, rz, stop = idx[keep], Xa[:, keep], R[:, keep], Pk[:, keep], rz[keep], stop[keep]
            if not idx.size:
                if counts is not None:
                    counts.append(it + 1)
                return X
        Z = precondition(R)
        rz_new = rows.dot(R, Z)
        beta = rz_new / rz
        rows.run(direction)
        rz = rz_new
    raise RuntimeError(f"{name} COCG did not converge to rtol={rtol:g} in {maxiter} iterations "
                       f"({idx.size} of {B.shape[1]} columns left); use method='{fallback}'")
