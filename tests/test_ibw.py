"""Asylum-style Igor binary waves (write_ibw): read back by igor2 and read_measurement, a real esmsim run.

igor2 (an independent reader of PTN003) is the reference for the layout; the real Asylum files in
../shared/data are the reference for the header checksum and the WaveHeader5 layout.
"""

import doctest
import struct
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from esmsim._errors import ParameterError
from esmsim.io import read_measurement, write_ibw
from esmsim.io import _ibw
from esmsim.io._gwy import GWY_CHANNELS

binarywave = pytest.importorskip("igor2.binarywave", reason="igor2 is in the test and io extras")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL = ("scan_0001.ibw", "IgorIBWReader_ImageStack_BTFO_DSO.ibw")


def header_word_sum(raw: bytes) -> int:
    """16-bit sum of the BinHeader5 + WaveHeader5 words (PTN003: zero for a valid file)."""
    return int(np.frombuffer(raw[:384], dtype="<u2").astype(np.int64).sum()) % 65536


def image_dict(ny=5, nx=7, seed=0):
    rng = np.random.default_rng(seed)
    return {"HeightRetrace": 1e-9 * rng.standard_normal((ny, nx)),
            "PhaseRetrace": rng.uniform(-90, 270, (ny, nx)),
            "FrequencyRetrace": 3.3e5 + 1e3 * rng.standard_normal((ny, nx))}


# ------------------------------------------------------------------------------ layout, igor2

def test_igor2_reads_the_data_labels_scaling_and_note(tmp_path):
    img = image_dict()
    p = write_ibw(img, tmp_path / "scan0001.ibw", scan_size=(60e-9, 40e-9),
                  note={"DriveFrequency": 3.3e5, "InvOLS": 5e-8, "SpringConstant": 3.0, "ImagingMode": "PFM Mode"})
    d = binarywave.load(str(p))
    assert d["version"] == 5
    w, h = d["wave"], d["wave"]["wave_header"]
    assert h["type"] == 2 and h["bname"] == b"scan0001" and h["npnts"] == 5 * 7 * 3
    assert list(h["nDim"]) == [7, 5, 3, 0]  # (x fast, y slow, channel), as Asylum
    np.testing.assert_array_equal(h["sfA"], [60e-9 / 6, 40e-9 / 4, 1, 1])
    np.testing.assert_array_equal(h["sfB"], [0, 0, 0, 0])
    assert [b"".join(u) for u in h["dimUnits"]] == [b"m", b"m", b"", b""]
    assert b"".join(h["dataUnits"]) == b""  # the layers have different units
    assert w["wData"].dtype == np.float32 and w["wData"].shape == (7, 5, 3)
    for k, arr in enumerate(img.values()):
        np.testing.assert_array_equal(w["wData"][:, :, k], arr.T.astype(np.float32))
    assert [lab.rstrip(b"\0") for lab in w["labels"][2]] == [b"", *(k.encode() for k in img)]
    assert w["labels"][:2] == [[], []] and w["labels"][3] == []
    note = dict(line.split(": ", 1) for line in w["note"].decode("latin-1").split("\r") if line)
    assert note["ScanSize"] == "6e-08" and note["FastScanSize"] == "6e-08" and note["SlowScanSize"] == "4e-08"
    assert note["ScanPoints"] == "7" and note["ScanLines"] == "5"
    assert note["DriveFrequency"] == "330000.0" and note["InvOLS"] == "5e-08" and note["ImagingMode"] == "PFM Mode"
    assert note["HeightRetraceUnit"] == "m" and note["PhaseRetraceUnit"] == "deg"
    assert w["note"].endswith(b"\r")
    # the section sizes add up to the file
    bh = w["bin_header"]
    assert bh["wfmSize"] == 320 + 4 * 105
    assert p.stat().st_size == 64 + bh["wfmSize"] + bh["noteSize"] + bh["dimLabelsSize"].sum()


def test_header_checksum_and_layout_match_the_real_asylum_files(tmp_path):
    if not DATA.is_dir():
        pytest.skip(f"real measured files not available: no folder {DATA}")
    ours = write_ibw(image_dict(), tmp_path / "a.ibw", scan_size=1e-6).read_bytes()
    assert header_word_sum(ours) == 0
    for name in REAL:
        raw = (DATA / name).read_bytes()
        assert header_word_sum(raw) == 0  # Igor's own files: the same rule
        # our checksum of the real header (its checksum field zeroed) is the one Igor stored
        zeroed = raw[:2] + b"\0\0" + raw[4:384]
        assert _ibw._checksum(zeroed) == struct.unpack("<h", raw[2:4])[0]
        # our WaveHeader5 layout unpacks the real header to igor2's values
        wh = _ibw._WAVE_HEADER.unpack(raw[64:384])
        ref = binarywave.load(str(DATA / name))["wave"]["wave_header"]
        assert wh[3] == ref["npnts"] and wh[4] == ref["type"] and wh[8].rstrip(b"\0") == ref["bname"]
        assert list(wh[11:15]) == list(ref["nDim"]) and list(wh[15:19]) == list(ref["sfA"])
        bh = _ibw._BIN_HEADER.unpack(raw[:64])
        assert bh[0] == 5 and bh[2] == 320 + 4 * ref["npnts"]


def test_long_units_go_to_the_extended_units_section(tmp_path):
    da = xr.DataArray(np.ones((3, 4)), dims=("y", "x"), attrs={"units": "m^2/s"})
    w = binarywave.load(str(write_ibw({"D_zz": da}, tmp_path / "d.ibw", scan_size=(3e-8, 2e-8))))["wave"]
    assert b"".join(w["wave_header"]["dataUnits"]) == b"" and w["data_units"] == b"m^2/s"
    assert w["bin_header"]["dataEUnitsSize"] == 5


@settings(max_examples=25)
@given(ny=st.integers(1, 6), nx=st.integers(1, 6), n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_any_stack_of_images_round_trips_through_igor2(tmp_path_factory, ny, nx, n, seed):
    rng = np.random.default_rng(seed)
    img = {f"ch{k}": rng.standard_normal((ny, nx)) * 10.0 ** rng.integers(-12, 6) for k in range(n)}
    p = write_ibw(img, tmp_path_factory.mktemp("h") / "w.ibw", scan_size=(1e-6, 2e-6))
    raw = p.read_bytes()
    w = binarywave.load(str(p))["wave"]
    assert header_word_sum(raw) == 0
    assert w["wData"].shape == (nx, ny, n)
    for k, arr in enumerate(img.values()):
        np.testing.assert_array_equal(w["wData"][:, :, k], arr.T.astype(np.float32))


# ------------------------------------------------------------------- read_measurement (the vendor reader)

def test_read_measurement_gives_the_channels_units_scan_size_and_metadata(tmp_path):
    img = image_dict()
    p = write_ibw(img, tmp_path / "img.ibw", scan_size=(60e-9, 40e-9),
                  note={"DriveFrequency": 3.3e5, "DriveAmplitude": 2.0, "InvOLS": 5e-8, "SpringConstant": 3.0})
    ds = read_measurement(p)
    assert list(ds.data_vars) == list(img)
    for name, arr in img.items():
        assert ds[name].dims == ("y", "x")
        np.testing.assert_array_equal(ds[name].values, arr.astype(np.float32))
    assert {k: ds[k].attrs["units"] for k in img} == {"HeightRetrace": "m", "PhaseRetrace": "deg",
                                                       "FrequencyRetrace": "Hz"}
    np.testing.assert_allclose(ds["x"].values, np.arange(7) * 10e-9, rtol=1e-15)
    np.testing.assert_allclose(ds["y"].values, np.arange(5) * 10e-9, rtol=1e-15)
    assert ds["x"].attrs["units"] == "m"
    assert ds.attrs["scan_size_x"] == 60e-9 and ds.attrs["scan_size_y"] == 40e-9
    assert (ds.attrs["drive_frequency"], ds.attrs["drive_amplitude"]) == (3.3e5, 2.0)
    assert (ds.attrs["invols"], ds.attrs["spring_constant"]) == (5e-8, 3.0)


def test_single_channel_takes_its_unit_from_the_wave(tmp_path):
    da = xr.DataArray(np.arange(12.0).reshape(3, 4), dims=("y", "x"), attrs={"units": "V"})
    ds = read_measurement(write_ibw({"sho_amplitude": da}, tmp_path / "a.ibw", scan_size=3e-8))
    assert ds["sho_amplitude"].attrs["units"] == "V"
    assert ds.attrs["scan_size_x"] == 3e-8 and ds.attrs["scan_size_y"] == 3e-8


def test_nan_pixels_stay_nan(tmp_path):
    a = np.ones((4, 4))
    a[1, 2] = np.nan
    ds = read_measurement(write_ibw({"HeightTrace": a}, tmp_path / "n.ibw", scan_size=1e-7))
    assert np.isnan(ds["HeightTrace"].values[1, 2]) and np.isfinite(ds["HeightTrace"].values).sum() == 15


# ------------------------------------------------------------------------ a real esmsim run

@pytest.fixture(scope="module")
def be_map(tmp_path_factory):
    """A tiny band-excitation map (8 x 6 pixels, 16 bins): ~2 s."""
    from esmsim.config import parse_config
    from esmsim.simulation import run as run_sim

    cfg = parse_config({
        "simulation": {"name": "tiny", "seed": 3},
        "microstructure": {"generator": "columnar_voronoi", "size": ["40 nm", "30 nm"], "spacing": "5 nm",
                           "thickness": "20 nm", "grain_size": "20 nm"},
        "excitation": {"mode": "band_excitation"},
        "band_excitation": {"bins": 16},
        "scan": {"pixels": [8, 6], "window": "20 nm"},
        "numerics": {"workers": 1},
        "output": {"directory": str(tmp_path_factory.mktemp("be")), "figure": False},
    })
    return run_sim(cfg).dataset


def test_band_excitation_map_round_trips(be_map, tmp_path):
    ds = be_map
    p = write_ibw(ds, tmp_path / "tiny.ibw")
    expected = [(var, unit, scale) for var, _, unit, scale in GWY_CHANNELS if var in ds]
    assert len(expected) == 9  # the channels write_gwy writes
    # igor2: the stack, its scaling (pixel pitch, first pixel centre) and the note
    w = binarywave.load(str(p))["wave"]
    h = w["wave_header"]
    x, y = ds["x"].values, ds["y"].values
    assert list(h["nDim"]) == [8, 6, 9, 0]
    assert h["sfA"][0] == pytest.approx(x[1] - x[0], rel=1e-12) and h["sfB"][0] == x[0] and h["sfB"][1] == y[0]
    assert [lab.rstrip(b"\0").decode() for lab in w["labels"][2][1:]] == [v for v, _, _ in expected]
    for k, (var, _, scale) in enumerate(expected):
        np.testing.assert_array_equal(w["wData"][:, :, k], (ds[var].values * scale).T.astype(np.float32))
    # read_measurement: same channels and values, coordinates, scan size and instrument metadata
    back = read_measurement(p)
    assert list(back.data_vars) == [v for v, _, _ in expected]
    for var, _, scale in expected:
        np.testing.assert_array_equal(back[var].values, (ds[var].values * scale).astype(np.float32))
    np.testing.assert_allclose(back["sho_phase"].values, np.degrees(ds["sho_phase"].values), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(back["x"].values + back.attrs["x_offset"], x, rtol=1e-12)
    np.testing.assert_allclose(back["y"].values + back.attrs["y_offset"], y, rtol=1e-12)
    assert back.attrs["scan_size_x"] == pytest.approx(x[-1] - x[0], rel=1e-12)  # Asylum: first to last centre
    assert back.attrs["scan_size_y"] == pytest.approx(y[-1] - y[0], rel=1e-12)
    assert back.attrs["drive_frequency"] == ds.attrs["band_center_Hz"]
    assert back.attrs["drive_amplitude"] == ds.attrs["bias_amplitude_V"]
    assert back.attrs["invols"] == ds.attrs["cantilever"]["invols"]
    assert back.attrs["spring_constant"] == ds.attrs["cantilever"]["spring_constant"]
    meta = back.attrs["instrument_metadata"]
    assert meta["Seed"] == "3" and meta["esmsimVersion"] == ds.attrs["esmsim_version"]
    assert meta["ScanPoints"] == "8" and meta["ScanLines"] == "6" and meta["Material"] == ds.attrs["material"]
    # each layer's unit is in the note (read_measurement takes units from Asylum channel names only)
    assert {v: meta[f"{v}Unit"] for v, _, _ in expected} == {v: u for v, u, _ in expected}


def test_map_channels_under_asylum_names_get_their_units(be_map, tmp_path):
    names = {"height": "HeightTrace", "sho_phase": "PhaseTrace", "sho_frequency": "FrequencyTrace",
             "sho_phase_retrace": "PhaseRetrace"}
    ds = be_map.assign(sho_phase_retrace=be_map["sho_phase"])  # a variable in rad outside the gwy table
    back = read_measurement(write_ibw(ds, tmp_path / "asylum.ibw", channels=names))
    assert list(back.data_vars) == list(names.values())
    assert [back[v].attrs["units"] for v in names.values()] == ["m", "deg", "Hz", "deg"]
    np.testing.assert_array_equal(back["PhaseRetrace"].values, back["PhaseTrace"].values)  # rad -> deg too
    with pytest.raises(ParameterError, match="Asylum channel in 'm'.*'V'"):
        write_ibw(be_map, tmp_path / "bad.ibw", channels={"sho_amplitude": "AmplitudeTrace"})


# ----------------------------------------------------------------------------------- errors

GOOD = np.zeros((3, 4))


@pytest.mark.parametrize("data, kw, field, match", [
    ({}, {"scan_size": 1e-6}, "data", "empty"),
    ({"a": np.zeros(4)}, {"scan_size": 1e-6}, "data['a']", r"shape \(4,\).*2-D"),
    ({"a": np.zeros((2, 3, 4))}, {"scan_size": 1e-6}, "data['a']", "2-D"),
    ({"a": np.zeros((0, 4))}, {"scan_size": 1e-6}, "data['a']", "no pixels"),
    ({"a": np.zeros((3, 4), complex)}, {"scan_size": 1e-6}, "data['a']", "complex"),
    ({"a": np.array([["x"]])}, {"scan_size": 1e-6}, "data['a']", "real numbers"),
    ({"a": GOOD, "b": np.zeros((4, 3))}, {"scan_size": 1e-6}, "data['b']", r"shape \(4, 3\).*\(3, 4\)"),
    ({"a": GOOD}, {}, "scan_size", "required"),
    ({"a": GOOD}, {"scan_size": (1e-6, float("nan"))}, "scan_size", "finite"),
    ({"a": GOOD}, {"scan_size": float("inf")}, "scan_size", "finite"),
    ({"a": GOOD}, {"scan_size": (0.0, 1e-6)}, "scan_size", "positive"),
    ({"a": GOOD}, {"scan_size": (1e-6, 1e-6, 1e-6)}, "scan_size", r"\(sx, sy\)"),
    ({"a": GOOD}, {"scan_size": "big"}, "scan_size", "length in m"),
    ({"a": GOOD}, {"scan_size": 1e-6, "channels": ["b"]}, "channels", "no channel 'b'"),
    ({"a": GOOD}, {"scan_size": 1e-6, "channels": {"a": "x" * 32}}, "channels", "1 to 31 bytes"),
    ({"a": GOOD, "b": GOOD}, {"scan_size": 1e-6, "channels": {"a": "c", "b": "c"}}, "channels", "repeated"),
    ({"a": GOOD}, {"scan_size": 1e-6, "note": {"Scan:Size": 1}}, "note", "without ':'"),
    ({"a": GOOD}, {"scan_size": 1e-6, "note": {"Title": "a\rb"}}, "note", "CR"),
    ({"a": GOOD}, {"scan_size": 1e-6, "note": {"Title": "\u2603"}}, "note", "Latin-1"),
    ({"a": np.full((3, 4), 1e39)}, {"scan_size": 1e-6}, "data", "single precision"),
    ({"a": xr.DataArray(GOOD, attrs={"units": "\u03a9"})}, {"scan_size": 1e-6}, "data", "unit .* Latin-1"),
    (GOOD, {"scan_size": 1e-6}, "data", "ndarray"),
])
def test_bad_input_is_refused_naming_the_field(tmp_path, data, kw, field, match):
    with pytest.raises(ParameterError, match=match) as e:
        write_ibw(data, tmp_path / "x.ibw", **kw)
    assert e.value.field == field
    assert not list(tmp_path.iterdir())  # nothing written, nothing half-written


def test_bad_datasets_are_refused(tmp_path):
    ds = xr.Dataset({"amplitude": (("y", "x"), np.ones((3, 4)))},
                    coords={"x": ("x", np.arange(4) * 5e-9, {"units": "m"}), "y": ("y", np.arange(3) * 5e-9)})
    with pytest.raises(ParameterError, match="only with a dict") as e:
        write_ibw(ds, tmp_path / "x.ibw", scan_size=1e-6)
    assert e.value.field == "scan_size"
    with pytest.raises(ParameterError, match="did you mean 'amplitude'"):
        write_ibw(ds, tmp_path / "x.ibw", channels=["amplitud"])
    with pytest.raises(ParameterError, match="no image channel") as e:
        write_ibw(ds.rename(amplitude="signal"), tmp_path / "x.ibw")
    assert e.value.field == "channels"
    uneven = ds.assign_coords(x=("x", np.array([0, 1, 2, 4]) * 5e-9, {"units": "m"}))
    with pytest.raises(ParameterError, match="evenly spaced") as e:
        write_ibw(uneven, tmp_path / "x.ibw")
    assert e.value.field == "dataset.x"
    assert not list(tmp_path.iterdir())


def test_a_failed_write_leaves_the_old_file(tmp_path):
    p = write_ibw({"a": GOOD}, tmp_path / "x.ibw", scan_size=1e-6)
    before = p.read_bytes()
    with pytest.raises(ParameterError):
        write_ibw({"a": np.zeros(3)}, p, scan_size=1e-6)
    assert p.read_bytes() == before and [q.name for q in tmp_path.iterdir()] == ["x.ibw"]


def test_docstring_example_runs():
    assert doctest.testmod(_ibw, raise_on_error=False).failed == 0
