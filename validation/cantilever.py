"""Contact resonance of the cantilever and the band-excitation SHO (PHYSICS.md sec. 4).

1. The contact-mode equation x^3 (1 + cos x cosh x) + 3 (k*/k_c)(sin x cosh x - cos x sinh x) = 0 that
   esmsim solves, against an independent engine: a Hermite-cubic Euler-Bernoulli finite-element beam,
   clamped, with a spring on its tip deflection; modes 1 and 2 over k*/k_c = 1e-2 ... 1e4, within 1e-6 at
   80 elements, with the FEM's observed convergence order near 4 (Hermite cubics: eigenvalue error O(h^4)).
2. The SHO fit: spectra built in BGlib's convention from known (A, f0, Q, phi) and fitted back to float32
   round-off (1e-5).
"""

from __future__ import annotations

import numpy as np

from esmsim.probe import contact_wavenumber, fit_sho, sho_response

from ._common import CaseResult, new_figure, save


def beam_fem_wavenumbers(alpha, n_el=60, n_modes=2):
    """Wavenumbers x of a clamped Euler-Bernoulli beam (EI = L = rho A = 1) with an end spring k* L^3/EI
    = 3 alpha, from Hermite-cubic finite elements (consistent mass); eigenvalues are x^4."""
    from scipy.linalg import eigh

    h = 1.0 / n_el
    ke = np.array([[12, 6 * h, -12, 6 * h], [6 * h, 4 * h * h, -6 * h, 2 * h * h],
                   [-12, -6 * h, 12, -6 * h], [6 * h, 2 * h * h, -6 * h, 4 * h * h]]) / h ** 3
    me = np.array([[156, 22 * h, 54, -13 * h], [22 * h, 4 * h * h, 13 * h, -3 * h * h],
                   [54, 13 * h, 156, -22 * h], [-13 * h, -3 * h * h, -22 * h, 4 * h * h]]) * h / 420
    n = 2 * (n_el + 1)
    K, M = np.zeros((n, n)), np.zeros((n, n))
    for e in range(n_el):
        s = slice(2 * e, 2 * e + 4)
        K[s, s] += ke
        M[s, s] += me
    K[-2, -2] += 3 * alpha  # spring on the tip deflection
    K, M = K[2:, 2:], M[2:, 2:]  # clamped: w(0) = w'(0) = 0
    return eigh(K, M, eigvals_only=True)[:n_modes] ** 0.25


def run(out_dir, fast: bool = True) -> list[CaseResult]:
    alphas = np.geomspace(1e-2, 1e4, 13)
    ours = np.array([[contact_wavenumber(a, m) for m in (1, 2)] for a in alphas])
    levels = (20, 40, 80)
    fem = {n: np.array([beam_fem_wavenumbers(a, n) for a in alphas]) for n in levels}
    err = {n: np.abs(fem[n] / ours - 1).max() for n in levels}
    order = np.log2(err[20] / err[40])

    rng = np.random.default_rng(0)
    f = np.linspace(315e3, 355e3, 64)
    A, f0 = rng.uniform(0.5, 2, 200) * 1e-3, rng.uniform(328e3, 342e3, 200)
    Q, phi = rng.uniform(50, 300, 200), rng.uniform(-3, 3, 200)
    fit = fit_sho(f, sho_response(f, A[:, None], f0[:, None], Q[:, None], phi[:, None]))
    sho_err = max(np.abs(fit["Amplitude [V]"] / A - 1).max(), np.abs(fit["Frequency [Hz]"] / f0 - 1).max(),
                  np.abs(fit["Quality Factor"] / Q - 1).max(),
                  np.abs(np.angle(np.exp(1j * (fit["Phase [rad]"] - phi)))).max())

    fig, (a1, a2) = new_figure()
    for m, mk in ((0, "o"), (1, "s")):
        a1.plot(alphas, ours[:, m], "k-", lw=0.8)
        a1.plot(alphas, fem[80][:, m], mk, ms=4, label=f"mode {m + 1}: beam FEM (80 elements)")
    a1.set(xscale="log", xlabel="k* / k_c", ylabel="x = kappa L", title="contact modes: equation (line) vs FEM")
    a1.legend(fontsize=8)
    a2.loglog(levels, [err[n] for n in levels], "o-")
    a2.set(xlabel="elements", ylabel="max relative difference", title=f"FEM convergence (order {order:.1f})")
    path = save(fig, out_dir, "cantilever")
    return [
        CaseResult("cantilever_contact_modes[fem]", err[80] <= 1e-6,
                   f"max rel. difference {err[80]:.1e} (modes 1-2, k*/k_c 1e-2 - 1e4)", "Hermite beam FEM", "1e-6",
                   path),
        CaseResult("cantilever_contact_modes[order]", 3.5 < order < 4.5, f"FEM order {order:.2f}", "4", "3.5 - 4.5",
                   path),
        CaseResult("sho_fit[round_trip]", sho_err <= 1e-5, f"max error {sho_err:.1e}", "BGlib SHO parameters",
                   "1e-5 (float32)", path),
    ]
