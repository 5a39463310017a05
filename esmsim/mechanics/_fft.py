"""Surface displacement of a laterally periodic half-space by FFT (isotropic Vegard eigenstrain).

PHYSICS.md sec. 3: over the surface, ``u3~(k) = 2 (1 + nu) Int_0^inf beta c~(k, z) exp(-|k| z) dz``.

The concentration is piecewise constant on cells (uniform pixels ``hx x hy`` in x and y, any layer
edges in z). For such a field on a periodic domain the displacement at the pixel centres is a
discrete circular convolution ``u = W (*) (beta c)`` with one 2-D kernel ``W_p`` per layer, whose DFT is

    W~_p(q) = 2 (1 + nu) Sum_(m, n) G_p(|k_(q + m N)|) sinc(kx hx / 2) sinc(ky hy / 2),
    G_p(k) = (exp(-k z0) - exp(-k z1)) / k,

the sum running over the aliases ``k + 2 pi (m / hx, n / hy)`` of each DFT wavevector (the phases of
the pixel-centre sampling cancel exactly). Aliases decay like ``exp(-2 pi m z0 / h)``: deep layers need
none or a few, and each layer takes as many as reach 1e-10 of the kernel, up to ``aliases``. For the
shallow layers, where the alias sum converges only algebraically, the truncation is repaired in real
space: the kernel at the ``near`` pixel offsets around each pixel is replaced by the exact box integral
of the Mindlin kernel (:func:`~esmsim.mechanics.box_kernel`, with the 3 x 3 nearest periodic images
and the far images' continuum sum). What remains is the truncated aliases' content farther than
``near`` pixels, measured in the tests against the direct quadrature.
"""

from __future__ import annotations

import numpy as np

from .._errors import ParameterError
from ._halfspace import box_kernel
from ._points import deviator

__all__ = ["SurfaceKernel", "surface_displacement_fft"]


class SurfaceKernel:
    """Per-layer Fourier kernels of the outward surface displacement for one periodic grid.

    Build once per grid and apply to any number of concentration fields (real or complex, with
    optional trailing batch axes, e.g. times or frequencies).

    Parameters
    ----------
    shape : (int, int)
        Pixels ``(nx, ny)`` of one period.
    spacing : (float, float)
        Pixel size ``(hx, hy)`` in m.
    dz : array_like
        Layer thicknesses (m) from the surface down.
    nu : float
        Poisson's ratio of the half-space, in (-1, 0.5).
    aliases : int
        Largest alias order per axis in the Fourier sum (shallow layers).
    near : int
        Half-width (pixels) of the exact real-space correction around each pixel.
    film_thickness : float, optional
        Thickness H (m) of a film bonded to a rigid substrate (u = 0 at z = H): the limit of a substrate
        much stiffer than the film. The layers must lie within the film. Default: a half-space.
        The film's kernel is the half-space kernel plus the (smooth) difference of the two, from the
        exact Fourier-space solution of the film (:func:`_factors`); at k = 0 it is the laterally
        constrained film, ``u_out = t (e_zz + nu / (1 - nu) (e_xx + e_yy))``.
    """

    def __init__(self, shape, spacing, dz, *, nu: float, aliases: int = 3, near: int = 4,
                 film_thickness: float | None = None):
        nx, ny = (int(n) for n in shape)
        hx, hy = (float(h) for h in spacing)
        dz = np.asarray(dz, dtype=float).ravel()
        if nx < 1 or ny < 1:
            raise ParameterError("shape", f"got {shape}; need positive pixel counts")
        if not (hx > 0 and hy > 0 and np.isfinite(hx) and np.isfinite(hy)):
            raise ParameterError("spacing", f"got {spacing}; pixel sizes must be positive and finite (m)")
        if dz.size == 0 or not np.all(np.isfinite(dz)) or np.any(dz <= 0):
            raise ParameterError("dz", "layer thicknesses must be a non-empty array of positive numbers (m)")
        if not -1.0 < nu < 0.5:
            raise ParameterError("nu", f"got {nu!r}; Poisson's ratio must lie in (-1, 0.5)")
        if aliases < 0 or near < 0:
            raise ParameterError("aliases/near", f"got {aliases}, {near}; must be >= 0")
        self.shape, self.spacing, self.nu = (nx, ny), (hx, hy), float(nu)
        self.z_edges = np.concatenate([[0.0], np.cumsum(dz)])
        if film_thickness is not None:
            film_thickness = float(film_thickness)
            if not (np.isfinite(film_thickness) and film_thickness >= self.z_edges[-1] * (1 - 1e-12)):
                raise ParameterError("film_thickness", f"got {film_thickness!r} m; must be finite and at least the "
                                                       f"depth of the layers ({self.z_edges[-1]:g} m)")
        self.film = film_thickness
        qx = np.fft.fftfreq(nx) * nx  # integer DFT indices, in [-n/2, n/2)
        qy = np.fft.rfftfreq(ny) * ny
        nzl = dz.size
        kern = np.zeros((nzl, nx, qy.size))
        h = max(hx, hy)
        self.alias_orders = np.zeros(nzl, int)
        self._truncated = np.zeros(nzl, bool)
        self._qx, self._qy = qx, qy
        for p in range(nzl):
            z0, z1 = self.z_edges[p], self.z_edges[p + 1]
            M, self._truncated[p] = _alias_order(z0, h, aliases)
            self.alias_orders[p] = M
            for _, _, _, k, weight in _alias_waves(qx, qy, self.shape, self.spacing, M):
                kern[p] += _layer_factor(k, z0, z1) * weight
        kern *= 2 * (1 + self.nu)
        if near > 0:
            kern = kern + self._near_correction(kern, int(near))
        if self.film is not None:
            kern = kern + self._film_correction(aliases)
        self._kernel = kern  # rfft2 layout: (nz, nx, ny // 2 + 1)

    def _film_correction(self, cap):
        """Per-layer DFT of (film - half-space) kernels for an isotropic eigenstrain (smooth: images at 2H - z)."""
        nx, ny = self.shape
        hx, hy = self.spacing
        H = self.film
        corr = np.zeros((self.z_edges.size - 1, nx, self._qy.size), complex)
        for p in range(corr.shape[0]):
            z0, z1 = self.z_edges[p], self.z_edges[p + 1]
            M, _ = _alias_order(2 * H - z1, max(hx, hy), cap)
            for _, kx, ky, k, weight in _alias_waves(self._qx, self._qy, self.shape, self.spacing, M):
                film = _factors(kx, ky, self.nu, H)[2]
                # the half-space factors' trace is 2 (1 + nu) for exp(-kz) and 0 for kz exp(-kz) at every k
                half = (2 * (1 + self.nu), 0.0, 0.0, 0.0)
                for j, b in enumerate(_basis(k, z0, z1, H)):
                    corr[p] += (film[j][:3].sum(0) - half[j]) * b * weight
        return corr

    def _near_correction(self, kern, near):
        """DFT of (exact - truncated) kernel values at the pixel offsets within ``near`` of each pixel."""
        nx, ny = self.shape
        hx, hy = self.spacing
        Lx, Ly = nx * hx, ny * hy
        W_M = np.fft.irfft2(kern, s=(nx, ny), axes=(1, 2))  # real-space kernels of the truncated sums
        ox = np.arange(-min(near, nx // 2), min(near, (nx - 1) // 2) + 1)
        oy = np.arange(-min(near, ny // 2), min(near, (ny - 1) // 2) + 1)
        OX, OY = np.meshgrid(ox, oy, indexing="ij")
        NEAR_IMG = 3
        img = np.array([(i, j) for i in range(-NEAR_IMG, NEAR_IMG + 1) for j in range(-NEAR_IMG, NEAR_IMG + 1)], float)
        # source boxes at offset (ox, oy) and its 7 x 7 images; evaluation point at the origin pixel centre
        cx = (OX.ravel()[:, None] + img[None, :, 0] * nx) * hx
        cy = (OY.ravel()[:, None] + img[None, :, 1] * ny) * hy
        # images from 4 to FAR periods away as point columns (R >= 3.5 L >> pixel), the rest as a continuum
        FAR = 16
        i = np.arange(-FAR, FAR + 1)
        FI, FJ = np.meshgrid(i, i, indexing="ij")
        ring = (np.abs(FI) > NEAR_IMG) | (np.abs(FJ) > NEAR_IMG)
        px = OX.ravel()[:, None] * hx + FI[ring][None, :] * Lx
        py = OY.ravel()[:, None] * hy + FJ[ring][None, :] * Ly
        R2 = px ** 2 + py ** 2
        a, b = (FAR + 0.5) * Lx, (FAR + 0.5) * Ly
        far = 4 * np.hypot(a, b) / (a * b)  # Int of r^-3 over the plane outside the (2 FAR + 1)^2 periods
        corr = np.zeros(kern.shape, complex)
        # only layers whose alias sum was cut short need it (shallow ones: z0 << L)
        for p in np.flatnonzero(self._truncated):
            z0, z1 = self.z_edges[p], self.z_edges[p + 1]
            boxes = np.stack([cx - hx / 2, cx + hx / 2, cy - hy / 2, cy + hy / 2,
                              np.full_like(cx, z0), np.full_like(cx, z1)], -1).reshape(-1, 6)
            exact = box_kernel(boxes, (0.0, 0.0)).reshape(cx.shape).sum(1)
            exact += hx * hy * (1 / np.sqrt(R2 + z0 ** 2) - 1 / np.sqrt(R2 + z1 ** 2)).sum(1)
            exact += hx * hy * 0.5 * (z1 ** 2 - z0 ** 2) * far / (Lx * Ly)
            exact *= (1 + self.nu) / np.pi
            # convolution kernel W(j - j'): the source at offset o from the evaluation pixel sits at index -o
            sel = ((-OX) % nx, (-OY) % ny)
            delta = np.zeros((nx, ny))
            delta[sel] = exact.reshape(OX.shape) - W_M[p][sel]
            corr[p] = np.fft.rfft2(delta)
            # the k = 0 term (a laterally uniform layer: the infinite plate) is exact in the alias sum; the
            # near values' sum carries the images' approximations (1e-7 - 3e-6 of the plate measured), so
            # the correction leaves it alone
            corr[p][0, 0] = 0.0
        return corr

    def displacement(self, c, beta=1.0) -> np.ndarray:
        """Outward surface displacement at the pixel centres (m).

        Parameters
        ----------
        c : ndarray, shape (nx, ny, nz) or (nx, ny, nz, ...)
            Concentration change per cell (mol/m^3), real or complex.
        beta : float or ndarray broadcastable to ``c``
            Isotropic Vegard coefficient (m^3/mol), per cell if an array.

        Returns
        -------
        ndarray, shape (nx, ny) or (nx, ny, ...)
            ``u3``, positive out of the sample; real for real input.
        """
        c = np.asarray(c)
        nx, ny = self.shape
        nz = self._kernel.shape[0]
        if c.shape[:3] != (nx, ny, nz):
            raise ParameterError("c", f"shape {c.shape} does not start with the kernel's grid {(nx, ny, nz)}")
        e = c * np.asarray(beta) if np.ndim(beta) else c * float(beta)
        kern = self._kernel.reshape(self._kernel.shape + (1,) * (c.ndim - 3))
        if np.iscomplexobj(e):
            return self._apply(e.real, kern) + 1j * self._apply(e.imag, kern)
        return self._apply(e, kern)

    def displacement_vector(self, c, beta, aliases: int = 2) -> np.ndarray:
        """Surface displacement vector ``(u_x, u_y, u_out)`` at the pixel centres (m) for a tensor Vegard
        coefficient, by reciprocity with the Boussinesq (normal) and Cerruti (tangential) solutions.

        ``u_n(x) = Int sigma^(n)(xi - x) : beta c(xi) dV`` with ``sigma^(n)`` the stress of a unit surface
        force along n (PHYSICS.md sec. 3). Over the surface, for a wavevector k (angle theta) the stress of
        a unit force is ``(alpha(theta) + gamma(theta) |k| z) exp(-|k| z)`` (derived for this module from
        the Navier equations with the three surface tractions; the factors are in :func:`_stress_factors`),
        so each layer needs the two integrals of ``exp(-k z)`` and ``k z exp(-k z)``. The isotropic part
        of ``beta`` goes through the exact (near-corrected) kernel of :meth:`displacement`; the
        deviatoric part and the in-plane components through alias sums of order ``aliases`` (the
        mean-of-partial-sums weighting), without a real-space near correction.

        Parameters
        ----------
        c : ndarray, shape (nx, ny, nz)
            Concentration change (mol/m^3), real or complex.
        beta : ndarray, shape (3, 3) or (nx, ny, nz, 3, 3), or (index, tensors)
            Sample-frame Vegard tensor (m^3/mol): one for all cells, one per cell, or per-grain tensors
            ``tensors`` (n, 3, 3) with an integer ``index`` array (nx, ny, nz) naming each cell's grain.
        aliases : int
            Alias order of the tensor sums in the shallow layers.

        Returns
        -------
        ndarray, shape (3, nx, ny)
            ``u_x``, ``u_y`` (sample axes) and ``u_out`` (positive out of the sample).
        """
        c = np.asarray(c)
        nx, ny = self.shape
        nz = self._kernel.shape[0]
        if c.shape != (nx, ny, nz):
            raise ParameterError("c", f"shape {c.shape}; the tensor path takes one field of the kernel's grid "
                                      f"{(nx, ny, nz)}")
        layer_beta = _layer_tensors(beta, c.shape)
        if np.iscomplexobj(c):
            return self._apply_tensor(c.real, layer_beta, aliases) + 1j * self._apply_tensor(c.imag, layer_beta,
                                                                                             aliases)
        return self._apply_tensor(c.astype(float), layer_beta, aliases)

    def _apply_tensor(self, c, layer_beta, cap):
        nx, ny = self.shape
        hx, hy = self.spacing
        qx, qy = self._qx, self._qy
        h = max(hx, hy)
        out = np.zeros((3, nx, qy.size), complex)
        iso = np.zeros((nx, qy.size), complex)
        base = {}  # angular factors of the m = 0 alias, shared by all layers
        for p in range(self._kernel.shape[0]):
            z0, z1 = self.z_edges[p], self.z_edges[p + 1]
            e = c[:, :, p, None, None] * layer_beta(p)  # (nx, ny, 3, 3)
            tr = np.trace(e, axis1=-2, axis2=-1)
            iso += np.fft.rfft2(tr / 3.0) * self._kernel[p]
            dev = deviator(e)
            comp = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
            E_full = np.stack([np.fft.rfft2(e[..., i, j]) for i, j in comp])
            E_dev = np.stack([np.fft.rfft2(dev[..., i, j]) for i, j in comp])
            M, _ = _alias_order(z0, h, cap)
            if self.film is not None:  # the film's long-wavelength part needs at least the m = 0 alias
                M = max(M, _alias_order(2 * self.film - z1, h, cap)[0])
            for key, kx, ky, k, weight in _alias_waves(qx, qy, self.shape, self.spacing, M):
                if key in base:
                    fac = base[key]
                else:
                    fac = _factors(kx, ky, self.nu, self.film)
                    if key == (0, 0):
                        base[key] = fac
                basis = [b * weight for b in _basis(k, z0, z1, self.film)]
                for n in range(3):
                    E = E_dev if n == 2 else E_full
                    for coef, b in zip(fac[n], basis):
                        out[n] += np.einsum("c...,c...->...", coef, E) * b
        out[2] += iso
        return np.fft.irfft2(out, s=(nx, ny), axes=(1, 2))

    def _apply(self, e, kern):
        nx, ny = self.shape
        acc = None
        for p in range(kern.shape[0]):  # layer by layer: one 2-D FFT each, no (nz, nx, ny) complex copy
            term = np.fft.rfft2(e[:, :, p], axes=(0, 1)) * kern[p]
            acc = term if acc is None else acc + term
        return np.fft.irfft2(acc, s=(nx, ny), axes=(0, 1))


def _alias_waves(qx, qy, shape, spacing, M):
    """Every alias pair of the DFT grid up to order M: ``(key, kx, ky, |k|, weight)`` with the pixel sinc
    factors and alias weights in ``weight`` (arrays broadcast to (nx, ny // 2 + 1)); ``key`` names the pair."""
    (nx, ny), (hx, hy) = shape, spacing
    for ax, wx in _aliases(qx, nx, M):
        sx = wx * np.sinc(ax / nx)
        kx = 2 * np.pi * ax[:, None] / (nx * hx)
        for ay, wy in _aliases(qy, ny, M):
            ky = 2 * np.pi * ay[None, :] / (ny * hy)
            yield (int(ax[0]), int(ay[0])), kx, ky, np.hypot(kx, ky), sx[:, None] * (wy * np.sinc(ay / ny))[None, :]


def _alias_order(z0, h, cap):
    """Alias order per axis so that exp(-pi (2 M + 1) z0 / h) < 1e-10 (the first alias has |k| >= pi / h),
    capped; and whether the cap cut the sum short."""
    need = np.inf if z0 == 0 else max(0, int(np.ceil((23.0 * h / (np.pi * z0) - 1) / 2)))
    return int(min(cap, need)), bool(need > cap)


def _aliases(q, n, M):
    """Alias-shifted DFT indices ``a = q + m n`` with their weights.

    The sinc factors alternate in sign from one alias to the next, so the partial sums over ``|m| <= M``
    oscillate; the next aliases at half weight (the mean of two consecutive partial sums) converge much
    faster. The weights depend on ``|a|`` only (1 below ``(M + 1/2) n``, 1/2 up to ``(M + 3/2) n``), which
    keeps the Nyquist bin of an even n symmetric, so that real fields stay real.
    """
    out = []
    for m in range(-M - 2, M + 3):
        a = q + m * n
        w = np.where(np.abs(a) < (M + 0.5) * n, 1.0, np.where(np.abs(a) < (M + 1.5) * n, 0.5, 0.0))
        if np.any(w):
            out.append((a, w))
    return out


def _stress_factors(kx, ky, nu):
    """Kernel factors of the three outputs (u_x, u_y, u_out) for wavevectors (kx, ky).

    For a unit surface force f (acting on the body) the stress under the surface mode ``exp(i k.x)`` is,
    in the frame with k along x' (derived here from the Navier equations and the tractions
    ``sigma_iz(0) = -f_i``, z into the body):

        alpha: xx = 2i fx - fz, yy = 2 nu (i fx - fz), zz = -fz, xy = i fy, xz = -fx, yz = -fy
        gamma: xx = fz - i fx,  zz = i fx - fz,  xz = fx + i fz  (others 0)

    (its trace for fz = 1 is ``-2 (1 + nu)``: the Mindlin kernel). Rotated to the sample frame and
    conjugated (``u(k) = Int conj(S(k)) : e(k) dz``), returned per output as ``(a, g)`` of shape
    (6, ...) over the components (xx, yy, zz, xy, xz, yz) with the factor 2 of the off-diagonal pairs;
    ``u_out = -u_z``. At k = 0 the direction is undefined: the factors are averaged over directions
    (the odd, imaginary part vanishes; the even part is the limit of a large disk).
    """
    kx, ky = np.broadcast_arrays(kx, ky)
    k = np.hypot(kx, ky)
    zero = k == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        cth = np.where(zero, 1.0, kx / k)
        sth = np.where(zero, 0.0, ky / k)
    res = [_factors_at(cth, sth, f, nu) for f in ((1, 0, 0), (0, 1, 0), (0, 0, 1))]
    if np.any(zero):
        th = np.arange(8) * np.pi / 4
        avg = [_factors_at(np.cos(th), np.sin(th), f, nu) for f in ((1, 0, 0), (0, 1, 0), (0, 0, 1))]
        for n in range(3):
            for part in range(2):
                res[n][part][:, zero] = avg[n][part].real.mean(axis=1)[:, None]
    res[2] = (-res[2][0], -res[2][1])  # u_out = -u_z
    return res


def _factors(kx, ky, nu, H):
    """Per output (u_x, u_y, u_out): coefficient arrays (6, ...) of the layer integrals of :func:`_basis`.

    Half-space (``H is None``): ``[a, g]`` of :func:`_stress_factors` (integrals of exp(-kz) and
    kz exp(-kz)). Film of thickness H on a rigid substrate: four arrays, for exp(-kz), kz exp(-kz),
    exp(k(z - H)) and kz exp(k(z - H)). The film's general solution for a mode along x' (derived for
    this module from the Navier equations; kappa = 3 - 4 nu) has the families
    ``u = (1, 0, i) e-``, ``(t, 0, i (kappa + t)) e-``, ``(1, 0, -i) e+``, ``(t, 0, i (kappa - t)) e+`` with
    ``t = k z``, and ``u_y = e-, e+``; the four P-SV amplitudes solve ``sigma_xz = -f_x``,
    ``sigma_zz = -f_z`` at z = 0 and ``u = 0`` at z = H, the SH ones ``sigma_yz = -f_y`` and ``u_y(H) = 0``.
    At k = 0 the constrained film: ``u_out = e_zz + nu/(1 - nu) (e_xx + e_yy)``, ``u_x = -2 e_xz``,
    ``u_y = -2 e_yz`` per unit thickness.
    """
    if H is None:
        return _stress_factors(kx, ky, nu)
    kx, ky = np.broadcast_arrays(np.asarray(kx, float), np.asarray(ky, float))
    k = np.hypot(kx, ky)
    small = k * H < 1e-6
    with np.errstate(invalid="ignore", divide="ignore"):
        cth = np.where(k == 0, 1.0, kx / np.where(k == 0, 1.0, k))
        sth = np.where(k == 0, 0.0, ky / np.where(k == 0, 1.0, k))
    kH = np.where(small, 1.0, k * H)  # placeholder where the k = 0 limit is used
    e = np.exp(-kH)
    kap = 3 - 4 * nu
    # P-SV matrix: rows sigma_xz(0), sigma_zz(0), u_x(H), u_z(H); columns a-, b-, a+, b+
    A = np.zeros(k.shape + (4, 4), complex)
    A[..., 0, :] = np.stack([np.full_like(e, -2.0), np.full_like(e, -2 * (1 - 2 * nu)), 2 * e,
                             2 * (2 * nu - 1) * e], -1)
    A[..., 1, :] = np.stack([np.full_like(e, -2.0), np.full_like(e, -2 * (2 - 2 * nu)), -2 * e,
                             -2 * (2 * nu - 2) * e], -1) * 1j
    A[..., 2, :] = np.stack([e, kH * e, np.ones_like(e), kH], -1)
    A[..., 3, :] = np.stack([e, (kap + kH) * e, -np.ones_like(e), kap - kH], -1) * 1j
    res = []
    for f in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
        fx, fy, fz = f
        f0 = cth * fx + sth * fy
        f1 = -sth * fx + cth * fy
        rhs = np.stack([-f0, np.full_like(f0, -float(fz)), np.zeros_like(f0), np.zeros_like(f0)], -1).astype(complex)
        v = np.linalg.solve(A, rhs[..., None])[..., 0]
        v1, v2, v3, v4 = (v[..., j] for j in range(4))
        sm = f1 / (1 + e ** 2)
        sp_ = -e * sm
        z = np.zeros(k.shape, complex)
        # local-frame coefficients of [e-, t e-, e+, t e+]; each a 3 x 3 tensor
        loc = [np.array([[2j * v1 - 4j * nu * v2, 1j * sm, -2 * v1 - 2 * (1 - 2 * nu) * v2],
                         [1j * sm, -4j * nu * v2, -sm + z],
                         [-2 * v1 - 2 * (1 - 2 * nu) * v2, -sm + z, -2j * v1 - 2j * (2 - 2 * nu) * v2]]),
               np.array([[2j * v2, z, -2 * v2], [z, z, z], [-2 * v2, z, -2j * v2]]),
               np.array([[2j * v3 + 4j * nu * v4, 1j * sp_, 2 * v3 + 2 * (2 * nu - 1) * v4],
                         [1j * sp_, 4j * nu * v4, sp_ + z],
                         [2 * v3 + 2 * (2 * nu - 1) * v4, sp_ + z, -2j * v3 - 2j * (2 * nu - 2) * v4]]),
               np.array([[2j * v4, z, 2 * v4], [z, z, z], [2 * v4, z, -2j * v4]])]
        out = [_pack(_rotate(cth, sth, t)) for t in loc]
        if np.any(small):  # k = 0 (and kH < 1e-6): the laterally constrained film, all in the e- integral
            lim = np.zeros(6)
            if fz:
                lim[:3] = [-nu / (1 - nu), -nu / (1 - nu), -1.0]  # u_z; u_out = -u_z below
            else:
                lim[4 if fx else 5] = -2.0  # packed (xz, yz) components carry the factor 2: u = -2 e_xz
            for j in range(4):
                out[j][:, small] = (lim[:, None] if j == 0 else 0.0)
        res.append(out)
    res[2] = [-a for a in res[2]]
    return res


def _rotate(cth, sth, t):
    """Sample-frame ``R t R^T`` (conjugated) of a local-frame tensor field ``t`` (3, 3, ...)."""
    one, nil = np.ones(cth.shape), np.zeros(cth.shape)
    R = np.array([[cth, -sth, nil], [sth, cth, nil], [nil, nil, one]])
    return np.einsum("ik...,kl...,jl...->ij...", R, t, R).conj()


def _pack(T):
    """Components (xx, yy, zz, 2 xy, 2 xz, 2 yz) of a symmetric tensor field."""
    return np.stack([T[0, 0], T[1, 1], T[2, 2], 2 * T[0, 1], 2 * T[0, 2], 2 * T[1, 2]])


def _basis(k, z0, z1, H):
    """Layer integrals of exp(-kz), kz exp(-kz) (and for a film exp(k(z - H)), kz exp(k(z - H))) (m)."""
    out = [_layer_factor(k, z0, z1), _layer_factor1(k, z0, z1)]
    if H is None:
        return out
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ez0, ez1 = np.exp(k * (z0 - H)), np.exp(k * (z1 - H))
        i0 = (ez1 - ez0) / k
        i1 = ((k * z1 - 1) * ez1 - (k * z0 - 1) * ez0) / k
    small = k * H < 1e-3
    out.append(np.where(k == 0, z1 - z0, i0))
    out.append(np.where(small, k * (z1 ** 2 - z0 ** 2) / 2, i1))
    return out


def _factors_at(cth, sth, f, nu):
    fx, fy, fz = f
    f0 = cth * fx + sth * fy  # force components in the frame of k
    f1 = -sth * fx + cth * fy
    f2 = np.full(cth.shape, float(fz))
    z = np.zeros(cth.shape, complex)
    a = np.array([[2j * f0 - f2, 1j * f1, -f0 + z],
                  [1j * f1, 2 * nu * (1j * f0 - f2), -f1 + z],
                  [-f0 + z, -f1 + z, -f2 + z]])
    g = np.array([[f2 - 1j * f0, z, f0 + 1j * f2],
                  [z, z, z],
                  [f0 + 1j * f2, z, 1j * f0 - f2]])
    return _pack(_rotate(cth, sth, a)), _pack(_rotate(cth, sth, g))


def _layer_tensors(beta, shape):
    """``f(p) -> (nx, ny, 3, 3)`` Vegard tensors of layer p from the accepted forms of ``beta``."""
    if isinstance(beta, tuple):
        index, tensors = np.asarray(beta[0]), np.asarray(beta[1], float)
        if index.shape != shape or tensors.ndim != 3 or tensors.shape[1:] != (3, 3):
            raise ParameterError("beta", "(index, tensors) needs an index array of the field's shape and "
                                         "tensors of shape (n, 3, 3)")
        return lambda p: tensors[index[:, :, p]]
    b = np.asarray(beta, float)
    if b.shape == (3, 3):
        return lambda p: b
    if b.shape == shape + (3, 3):
        return lambda p: b[:, :, p]
    raise ParameterError("beta", f"shape {b.shape}; allowed (3, 3), {shape + (3, 3)} or (index, tensors)")


def _layer_factor1(k, z0, z1):
    """``Int_z0^z1 k z exp(-k z) dz`` (m); ``k (z1^2 - z0^2) / 2`` as k -> 0."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        val = ((1 + k * z0) * np.exp(-k * z0) - (1 + k * z1) * np.exp(-k * z1)) / k
    small = k * z1 < 1e-3
    return np.where(small, k * (z1 ** 2 - z0 ** 2) / 2 * (1 - 2 * k * (z1 ** 3 - z0 ** 3) / (3 * (z1 ** 2 - z0 ** 2))
                                                       if z1 > z0 else 0.0), val)


def _layer_factor(k, z0, z1):
    """``Int_z0^z1 exp(-k z) dz`` (m), stable at k -> 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.exp(-k * z0) * -np.expm1(-k * (z1 - z0)) / k
    return np.where(k == 0, z1 - z0, val)


def surface_displacement_fft(c, spacing, dz, *, beta, nu: float, **kwargs) -> np.ndarray:
    """Outward surface displacement (m) of a laterally periodic concentration field, by FFT.

    One-shot form of :class:`SurfaceKernel` (build the kernel once when applying it to many fields).

    Parameters
    ----------
    c : ndarray, shape (nx, ny, nz[, ...])
        Concentration change per cell (mol/m^3), real or complex.
    spacing : (float, float)
        Pixel size (m).
    dz : array_like
        Layer thicknesses (m) from the surface down.
    beta : float or ndarray
        Isotropic Vegard coefficient (m^3/mol).
    nu : float
        Poisson's ratio.
    """
    c = np.asarray(c)
    return SurfaceKernel(c.shape[:2], spacing, dz, nu=nu, **kwargs).displacement(c, beta)
