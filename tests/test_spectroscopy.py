"""Frequency spectroscopy at chosen tip positions against the homogeneous half-space closed form."""

import numpy as np
import pytest

from esmsim._errors import ParameterError
from esmsim.analytic import halfspace_lorentzian_u3
from esmsim.materials import get_material
from esmsim.microstructure import columnar_seeded
from esmsim.probe import MapSettings, frequency_spectroscopy, pixel_response


def test_single_grain_spectrum_follows_the_halfspace_law():
    # one isotropic grain, 100 nm thick: at 1 kHz - 1 MHz the diffusion length (<= 1 nm) and the tip
    # field (window 4 d) stay far from the bottom and the window sides, so the homogeneous half-space
    # closed form u3 = (1 + nu) beta C0 d F(omega d^2 / D) applies. Measured -0.7 % / -0.3 deg with the
    # map engine's default grids (z_first = 0.125, growth 1.3, 5 nm columns for d = 10 nm); 1.5 % / 1 deg
    # leaves room for the discretisation, which the halfspace validation case refines separately.
    mat = get_material("LiCoO2").replace(D_c_over_D_ab=1.0)
    ms = columnar_seeded([[60e-9, 60e-9]], (120e-9, 120e-9), spacing=5e-9, thickness=100e-9, periodic=True,
                         euler_angles=[[0.0, 0.0, 0.0]])
    f = np.array([1e3, 3e4, 1e6])
    st = MapSettings(frequency=1e5, tip_width=10e-9, window=40e-9)  # the automatic one would span D_gb's reach
    u = frequency_spectroscopy(ms, mat, st, [(12, 12), (5, 20)], f, workers=2)
    assert u.shape == (2, 3)
    np.testing.assert_allclose(u[0], u[1], rtol=1e-9)  # one grain, periodic: every pixel is the same
    ref = np.array([halfspace_lorentzian_u3(frequency=fk, D=mat.D_reference, width=10e-9, C0=1 / mat.dU_dc,
                                            beta=mat.beta_isotropic, nu=mat["nu"]) for fk in f])
    np.testing.assert_allclose(np.abs(u[0]), np.abs(ref), rtol=0.015)
    np.testing.assert_allclose(np.angle(u[0] / ref), 0, atol=np.radians(1))
    # the same problem as a map pixel at that frequency, solved to the iterative solvers' rtol (1e-10 on the
    # residual): 1.3e-9 apart measured (rel=1e-12 passed only through approx's default abs=1e-12)
    assert u[0, 2] == pytest.approx(pixel_response(ms, mat, MapSettings(frequency=1e6, window=40e-9), 12, 12),
                                    rel=1e-8)


def test_points_and_frequencies_keep_their_places():
    # one window engine per frequency serves all points (its far field is one film solve per frequency):
    # each entry must still be that point's map pixel at that frequency, in its row and column; a
    # bicrystal with a fast boundary makes every (point, frequency) value different
    mat = get_material("LiCoO2").replace(gb_enhancement=100.0)
    ms = columnar_seeded([[20e-9, 40e-9], [60e-9, 40e-9]], (80e-9, 80e-9), spacing=5e-9, thickness=40e-9,
                         periodic=True, euler_angles=[[0.0, 0.0, 0.0], [0.4, 1.2, 0.3]])
    st = MapSettings(frequency=1e5, tip_width=10e-9)
    pts, f = [(3, 8), (8, 8), (12, 5)], np.array([2e5, 1e6])
    u = frequency_spectroscopy(ms, mat, st, pts, f, workers=2)
    ref = np.array([[pixel_response(ms, mat, MapSettings(frequency=fk, tip_width=10e-9), i, j) for fk in f]
                    for i, j in pts])
    assert np.unique(np.round(np.abs(ref) / np.abs(ref).max(), 3)).size == ref.size  # all distinct
    # spectroscopy solves each window directly ("auto"), the map pixel by split COCG to the map's residual
    # (SOLVER_RTOL, one iteration): measured 2.7e-4 apart here, 8.2e-4 on the map benchmark's film
    np.testing.assert_allclose(u, ref, rtol=1e-3)


def test_points_are_checked():
    ms = columnar_seeded([[20e-9, 20e-9]], (40e-9, 40e-9), spacing=5e-9, thickness=40e-9, periodic=True)
    with pytest.raises(ParameterError, match="points"):
        frequency_spectroscopy(ms, get_material("LiCoO2"), MapSettings(frequency=1e5), [(8, 0)], [1e5])
    with pytest.raises(ParameterError, match="frequencies"):
        frequency_spectroscopy(ms, get_material("LiCoO2"), MapSettings(frequency=1e5), [(1, 1)], [-1.0])


def test_spectroscopy_from_a_config(tmp_path):
    from esmsim._errors import ConfigError
    from esmsim.config import parse_config
    from esmsim.io import read_netcdf
    from esmsim.simulation import run

    base = {"simulation": {"seed": 4},
            "microstructure": {"size": ["60 nm", "60 nm"], "thickness": "50 nm", "grain_size": "30 nm"},
            "excitation": {"mode": "frequency_spectroscopy"},
            "spectroscopy": {"points": [["12 nm", "31 nm"], ["40 nm", "8 nm"]], "f_min": "10 kHz",
                             "f_max": "1 MHz", "n": 3},
            "numerics": {"workers": 1}, "output": {"directory": str(tmp_path)}}
    out = run(parse_config(base))
    ds = read_netcdf(out.netcdf)
    assert ds["amplitude"].dims == ("point", "frequency") and ds["amplitude"].shape == (2, 3)
    np.testing.assert_allclose(ds["x"].values, [12.5e-9, 42.5e-9])  # nearest voxel centres
    ms_pts = [(2, 6), (8, 1)]
    from esmsim.simulation import build_microstructure, map_settings

    cfg = parse_config(base)
    direct = frequency_spectroscopy(build_microstructure(cfg), cfg.material(), map_settings(cfg), ms_pts,
                                    ds["frequency"].values, workers=1)
    np.testing.assert_allclose(ds["response_real"].values + 1j * ds["response_imag"].values, direct, rtol=1e-12)
    assert out.figure.exists()
    bad = {**base, "spectroscopy": {"points": [["80 nm", "10 nm"]]}}
    with pytest.raises(ConfigError, match=r"spectroscopy.points\[0\]"):
        parse_config(bad)
    with pytest.raises(ConfigError, match="spectroscopy.points"):
        parse_config({**base, "spectroscopy": {}})
