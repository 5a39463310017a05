"""Band excitation: spectra, ground truth, each artefact on its own, and the USID file pyUSID reads."""

import numpy as np
import pytest

from esmsim.mechanics import hertz_contact
from esmsim.probe import Cantilever, fit_sho
from esmsim.probe._band import K_BOLTZMANN, Artefacts, BandExcitation, band_excitation, contact_stiffness_map

CL = Cantilever(spring_constant=3.0, free_resonance=80e3, quality_factor=100.0, invols=50e-9)
BAND = BandExcitation(bandwidth=40e3, bins=64)
K_FLAT = 330.0


def field(nx=24, ny=20, seed=0):
    rng = np.random.default_rng(seed)
    x = np.arange(nx)[:, None]
    y = np.arange(ny)[None, :]
    resp = (5e-12 + 3e-12 * np.sin(2 * np.pi * x / nx) * np.cos(2 * np.pi * y / ny)) * np.exp(-0.6j)
    resp = resp * (1 + 0.01 * rng.standard_normal((nx, ny)))
    h = 1e-9 * np.cos(2 * np.pi * x / nx) + 0 * y
    return resp, h


def run(art=Artefacts(), seed=0, **kw):
    resp, h = field()
    k_local = K_FLAT * (1 + 0.05 * np.sin(np.arange(resp.shape[0]))[:, None] + 0 * h)
    return band_excitation(resp, K_FLAT, k_local, h, cantilever=CL, band=BAND, artefacts=art, bias_ac=2.0,
                           seed=seed, **kw), resp


def test_clean_spectra_are_the_sho_of_the_li_response():
    be, resp = run()
    f0 = CL.resonance(K_FLAT)
    assert be["center"] == pytest.approx(f0)
    np.testing.assert_allclose(be["frequency"][[0, -1]], [f0 - 20e3, f0 + 20e3])
    # truth: quasi-static detector signal u * V_ac * k*/(k* + k_c) / InvOLS = -A exp(i phi)
    s = resp * 2.0 * K_FLAT / (K_FLAT + CL.spring_constant) / CL.invols
    np.testing.assert_allclose(be["truth"]["amplitude"], np.abs(s), rtol=1e-12)
    np.testing.assert_allclose(-be["truth"]["amplitude"] * np.exp(1j * be["truth"]["phase"]), s, rtol=1e-12)
    # no artefacts: recorded == clean, and the fit returns the truth (float32 round-off)
    np.testing.assert_array_equal(be["recorded"], be["clean"])
    fit = be["fit"]
    np.testing.assert_allclose(fit["Amplitude [V]"], be["truth"]["amplitude"], rtol=1e-5)
    np.testing.assert_allclose(fit["Frequency [Hz]"], f0, rtol=1e-7)
    np.testing.assert_allclose(fit["Quality Factor"], 100.0, rtol=1e-5)
    np.testing.assert_allclose(fit["Phase [rad]"], be["truth"]["phase"], atol=1e-5)
    # at resonance |H| = A Q
    H = be["clean"]
    assert np.all(np.abs(H).max(-1) <= be["truth"]["amplitude"] * 100 * (1 + 1e-12))


def test_detector_noise_has_the_stated_density():
    n_d = 200e-15  # m/sqrt(Hz)
    be, _ = run(Artefacts(detector_noise=n_d))
    noise = be["recorded"] - be["clean"]
    df = BAND.bandwidth / (BAND.bins - 1)
    expected = (n_d / CL.invols) ** 2 * df
    # 24 x 20 x 64 = 30720 complex samples: the variance estimate is good to ~1 %; 4 % is 4 sigma
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(expected, rel=0.04)
    assert abs(np.mean(noise)) < 4 * np.sqrt(expected / noise.size)


def test_thermal_noise_peaks_at_resonance_with_equipartition_level():
    be, _ = run(Artefacts(thermal_noise=True, temperature=300.0))
    noise = be["recorded"] - be["clean"]
    f0 = CL.resonance(K_FLAT)
    kmod = CL.modal_stiffness(K_FLAT)
    df = BAND.bandwidth / (BAND.bins - 1)
    f = be["frequency"]
    g2 = 1 / ((1 - (f / f0) ** 2) ** 2 + (f / (f0 * 100)) ** 2)
    expected = 4 * K_BOLTZMANN * 300 / (kmod * 2 * np.pi * f0 * 100) * g2 * df / CL.invols ** 2
    measured = np.mean(np.abs(noise) ** 2, axis=(0, 1))
    # 480 samples per bin: +-9 % per bin (2 sigma); the whole band within 3 %
    assert np.sum(measured) == pytest.approx(np.sum(expected), rel=0.03)
    assert abs(np.argmax(measured) - np.argmax(expected)) <= 1  # f0 sits between the two central bins


def test_electrostatic_offset_enters_through_the_resonance():
    art = Artefacts(electrostatic=2e-12, electrostatic_phase=0.3, contact_potential=0.4)
    be, resp = run(art, bias_dc=1.5)
    es = 2e-12 * np.exp(0.3j) * (1.5 - 0.4) * 2.0 / CL.invols
    assert be["electrostatic"] == pytest.approx(es)
    fit = be["fit"]
    s_fit = -fit["Amplitude [V]"] * np.exp(1j * fit["Phase [rad]"])
    s_clean = -be["truth"]["amplitude"] * np.exp(1j * be["truth"]["phase"])
    np.testing.assert_allclose(s_fit - s_clean, es, rtol=2e-4 * np.abs(s_clean).max() / abs(es))


def test_topography_crosstalk_moves_f0_with_contact_stiffness():
    be0, _ = run()
    be1, _ = run(Artefacts(topography_crosstalk=True))
    assert np.ptp(be0["fit"]["Frequency [Hz]"]) < 1.0
    k = K_FLAT * (1 + 0.05 * np.sin(np.arange(24)))[:, None] * np.ones((1, 20))
    np.testing.assert_allclose(be1["fit"]["Frequency [Hz]"], CL.resonance(k), rtol=1e-6)


def test_line_gain_and_offsets_are_per_line_and_drift_shifts_the_sampling():
    be, resp = run(Artefacts(line_gain=0.05, line_offset=0.5e-9))
    gain = be["line_gain"]
    assert gain.shape == (20,) and np.std(gain) > 0.01
    ratio = be["fit"]["Amplitude [V]"] / be["truth"]["amplitude"]
    np.testing.assert_allclose(ratio, np.broadcast_to(np.abs(gain)[None, :], ratio.shape), rtol=1e-5)
    dh = be["height"] - field()[1]
    np.testing.assert_allclose(dh, np.broadcast_to(dh[:1], dh.shape), atol=1e-20)  # constant along each line
    # drift of exactly one pixel per line in x: line j is sampled j pixels further along x
    be, resp = run(Artefacts(drift=(1.0 * 5e-9, 0.0)), pixel_size=5e-9, line_rate=1.0)
    dx, dy = be["drift"]
    assert dx[0, 3] == pytest.approx(3.0) and dx[6, 3] == pytest.approx(3.125)
    s = resp * 2.0 * K_FLAT / (K_FLAT + CL.spring_constant) / CL.invols
    fit = be["fit"]
    s_rec = -fit["Amplitude [V]"] * np.exp(1j * fit["Phase [rad]"])
    j = 5
    # trace pixel (i, j) is recorded at t = j + i/(2 nx) seconds: it samples x = i + j + i/(2 nx) (periodic);
    # compare against linear interpolation of the clean signal at that position
    xs = np.arange(24) + j + np.arange(24) / 48
    i0 = np.floor(xs).astype(int)
    w = xs - i0
    expect = (1 - w) * s[i0 % 24, j] + w * s[(i0 + 1) % 24, j]
    np.testing.assert_allclose(s_rec[:, j], expect, rtol=1e-4)


def test_retrace_has_its_own_noise_and_drift_but_the_lines_tip_state():
    art = Artefacts(detector_noise=1e-13, line_gain=0.05, line_offset=1e-10, drift=(1e-9, 0.0))
    be, _ = run(art, retrace=True, pixel_size=5e-9)
    tr, rt = be, be["retrace"]
    assert not np.array_equal(tr["recorded"], rt["recorded"])
    # the retrace of line j runs backwards in the second half of the line period
    np.testing.assert_allclose(rt["drift"][0][:, 2], 0.2 * (2 + 0.5 + 0.5 * (23 - np.arange(24)) / 24))
    np.testing.assert_allclose(tr["drift"][0][:, 2], 0.2 * (2 + 0.5 * np.arange(24) / 24))
    # same tip state: without drift both passes carry the same height offset on each line
    still, _ = run(Artefacts(line_offset=1e-10), retrace=True)
    np.testing.assert_array_equal(still["retrace"]["height"], still["height"])
    # without retrace the trace is bit-identical to a run that asked for it (same random stream order)
    solo, _ = run(art, pixel_size=5e-9)
    np.testing.assert_array_equal(solo["recorded"], tr["recorded"])


def test_artefacts_are_reproducible_bit_for_bit():
    art = Artefacts(detector_noise=1e-13, thermal_noise=True, line_gain=0.02, line_offset=1e-10)
    a, _ = run(art, seed=3)
    b, _ = run(art, seed=3)
    c, _ = run(art, seed=4)
    np.testing.assert_array_equal(a["recorded"], b["recorded"])
    np.testing.assert_array_equal(a["height"], b["height"])
    assert not np.array_equal(a["recorded"], c["recorded"])


def test_contact_stiffness_follows_surface_curvature():
    # a spherical cap of radius Rs: lap(h) = -2/Rs exactly, also after Gaussian smoothing (a quadratic keeps
    # its second derivatives), so 1/R = 1/R_tip + 1/Rs at every interior pixel
    sp, Rt, Rs = 1e-9, 20e-9, 60e-9
    x = (np.arange(200) - 99.5) * sp  # edges (mode "nearest") bend the quadratic within 4 sigma = 40 px
    X, Y = np.meshgrid(x, x, indexing="ij")
    h = -(X ** 2 + Y ** 2) / (2 * Rs)
    a, k = contact_stiffness_map(h, sp, Rt, 20e-9, 150e9, 0.3, periodic=False)
    ref = hertz_contact(20e-9, 1 / (1 / Rt + 1 / Rs), 150e9, 0.3)
    inner = (slice(90, 110), slice(90, 110))
    np.testing.assert_allclose(k[inner], ref.stiffness, rtol=1e-6)
    np.testing.assert_allclose(a[inner], ref.radius, rtol=1e-6)
    a0, k0 = contact_stiffness_map(h, sp, Rt, 20e-9, 150e9, 0.3, curvature=False)
    assert np.all(k0 == hertz_contact(20e-9, Rt, 150e9, 0.3).stiffness)


def test_band_needs_sane_width():
    from esmsim._errors import ParameterError

    with pytest.raises(ParameterError, match="band_excitation.bins"):
        BandExcitation(bins=4)
    with pytest.raises(ParameterError, match="band_excitation.bandwidth"):
        BandExcitation(bandwidth=1e6).frequencies(3e5)
    # a band set by hand that does not contain the contact resonance cannot be fitted: refused up front
    f0 = CL.resonance(K_FLAT)
    resp, h = field()
    with pytest.raises(ParameterError, match="band_excitation.center.*misses the contact resonance"):
        band_excitation(resp, K_FLAT, np.full(resp.shape, K_FLAT), h, cantilever=CL,
                        band=BandExcitation(center=f0 + 50e3, bandwidth=40e3), artefacts=Artefacts(), bias_ac=1.0)


def test_fit_of_recorded_noisy_spectra_tracks_truth():
    be, _ = run(Artefacts(detector_noise=50e-15))
    fit = be["fit"]
    rel = fit["Amplitude [V]"] / be["truth"]["amplitude"] - 1
    # peak SNR ~ A Q / sigma ~ 1e-4 * 100 / 1.8e-5 ~ 500: amplitude errors well below 2 %
    assert np.max(np.abs(rel)) < 0.02
    assert fit["R2 Criterion"].min() > 0.99
    assert fit_sho(be["frequency"], be["clean"]).shape == (24, 20)


@pytest.fixture(scope="module")
def be_run(tmp_path_factory):
    from esmsim.config import parse_config
    from esmsim.simulation import run as run_sim

    out = tmp_path_factory.mktemp("be")
    cfg = parse_config({
        "simulation": {"name": "tiny", "seed": 2},
        "microstructure": {"generator": "columnar_voronoi", "size": ["60 nm", "50 nm"], "spacing": "5 nm",
                           "thickness": "60 nm", "grain_size": "30 nm"},
        "material": {"overrides": {"gb_enhancement": 1e4}},
        "excitation": {"mode": "band_excitation"},
        "band_excitation": {"bins": 32},
        "artefacts": {"detector_noise": "100 fm/Hz**0.5", "topography_crosstalk": True, "line_gain": 0.01},
        "scan": {"pixels": [12, 10], "retrace": True},
        "numerics": {"workers": 1},
        "output": {"directory": str(out), "gwy": True, "ibw": True},
    })
    return run_sim(cfg)


def test_end_to_end_band_excitation_dataset(be_run):
    from esmsim.io import read_netcdf

    ds = read_netcdf(be_run.netcdf)
    assert ds["be_real"].dims == ("y", "x", "frequency") and ds["be_real"].shape == (10, 12, 32)
    assert ds["frequency"].attrs["units"] == "Hz"
    # the band is centred on the flat-surface contact resonance and the Li response was solved there
    f0 = ds.attrs["band_center_Hz"]
    assert ds.attrs["frequency_Hz"] == pytest.approx(f0)
    assert np.all(ds["sho_frequency_true"].values == f0)
    # truth amplitude is the Li response through the contact spring and the InvOLS, per volt of 1 V drive
    cl = ds.attrs["cantilever"]
    k = ds.attrs["contact_stiffness_flat_N_per_m"]
    np.testing.assert_allclose(ds["sho_amplitude_true"].values,
                               ds["amplitude"].values * k / (k + cl["spring_constant"]) / cl["invols"], rtol=1e-12)
    # recorded fit: crosstalk moves f0 by the local stiffness; amplitudes close to truth x line gain
    np.testing.assert_allclose(ds["sho_frequency"].values, be_run.dataset["sho_frequency"].values)
    assert np.ptp(ds["sho_frequency"].values) > 0
    ratio = ds["sho_amplitude"].values / ds["sho_amplitude_true"].values / ds["line_gain"].values[:, None]
    assert np.median(np.abs(ratio - 1)) < 0.05
    assert be_run.figure.exists() and be_run.figure.stat().st_size > 10000


def test_usid_file_is_read_by_pyusid(be_run):
    h5py = pytest.importorskip("h5py")
    usid = pytest.importorskip("pyUSID", reason="pyUSID is in the test extra: pip install '.[test]'")
    ds = be_run.dataset
    with h5py.File(be_run.usid, "r") as h5:
        ch = h5["Measurement_000/Channel_000"]
        for name in ("Raw_Data", "Raw_Data_Clean", "Raw_Data-SHO_Fit_000/Fit", "Raw_Data-SHO_Truth_000/Truth"):
            assert usid.hdf_utils.check_if_main(ch[name], verbose=True), name
        main = usid.USIDataset(ch["Raw_Data"])
        assert main.pos_dim_labels == ["X", "Y"] and main.spec_dim_labels == ["Frequency"]
        nd = main.get_n_dim_form()
        assert nd.shape == (12, 10, 32)  # (X, Y, Frequency)
        raw = ds["be_real"].values + 1j * ds["be_imag"].values  # (y, x, f)
        np.testing.assert_allclose(nd, raw.transpose(1, 0, 2).astype(np.complex64))
        np.testing.assert_allclose(main.get_spec_values("Frequency"), ds["frequency"].values, rtol=1e-6)
        np.testing.assert_allclose(main.get_pos_values("X"), ds["x"].values, rtol=1e-6)
        truth = ch["Raw_Data-SHO_Truth_000/Truth"][()]
        assert truth.dtype.names == ("Amplitude [V]", "Frequency [Hz]", "Quality Factor", "Phase [rad]", "R2 Criterion")
        np.testing.assert_allclose(truth["Amplitude [V]"][:, 0], ds["sho_amplitude_true"].values.ravel(), rtol=1e-6)
        np.testing.assert_allclose(truth["Phase [rad]"][:, 0], ds["sho_phase_true"].values.ravel(), atol=1e-6)
        assert h5["Measurement_000"].attrs["grid_num_rows"] == 10
        # the retrace is its own channel with its own fit
        rt = h5["Measurement_000/Channel_001"]
        assert usid.hdf_utils.check_if_main(rt["Raw_Data"]) and usid.hdf_utils.check_if_main(rt["Raw_Data-SHO_Fit_000/Fit"])
        back = usid.USIDataset(rt["Raw_Data"]).get_n_dim_form()
        raw_rt = ds["be_retrace_real"].values + 1j * ds["be_retrace_imag"].values
        np.testing.assert_allclose(back, raw_rt.transpose(1, 0, 2).astype(np.complex64))
        assert not np.allclose(back, nd)


def test_gwyddion_images_round_trip(be_run):
    pytest.importorskip("gwyfile", reason="gwyfile is in the test and io extras")
    from esmsim.io import read_gwy_channels

    ds = be_run.dataset
    ch = read_gwy_channels(be_run.gwy)
    height, unit, xreal, yreal = ch["Height"]
    assert unit == "m" and xreal == pytest.approx(60e-9) and yreal == pytest.approx(50e-9)
    np.testing.assert_array_equal(height, ds["height"].values)
    phase, unit, *_ = ch["BE phase (SHO fit)"]
    assert unit == "deg"
    np.testing.assert_allclose(phase, np.degrees(ds["sho_phase"].values))
    np.testing.assert_array_equal(ch["Grain id (truth)"][0], ds["grain_id"].values)


def test_asylum_ibw_from_a_run_reads_back(be_run):
    # output.ibw: the vendor-format reader (igor2 through read_measurement) gets the run's channels, pixel
    # pitch and instrument metadata back; units of esmsim-named layers come from the note's "<label>Unit"
    pytest.importorskip("igor2", reason="igor2 is in the test and io extras")
    from esmsim.io import read_measurement

    ds = be_run.dataset
    m = read_measurement(be_run.ibw)
    np.testing.assert_array_equal(m["height"].values, ds["height"].values.astype(np.float32))
    assert m["height"].attrs["units"] == "m"
    np.testing.assert_allclose(np.diff(m["x"].values), np.diff(ds["x"].values), rtol=1e-6)
    assert m.attrs["drive_frequency"] == pytest.approx(ds.attrs["band_center_Hz"])
