"""Readers of measured SPM files: the real files in ../shared/data, esmsim's own files, broken files.

Expected values come from the data README (shapes, channels, scan sizes) and from
reading the files independently here with igor2, gwyfile and h5py directly.
"""

import doctest
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from esmsim._errors import EsmsimError, ParameterError
from esmsim.io import ReaderError, phase_to_radians, read_gwy_channels, read_measurement, write_gwy, write_usid
from esmsim.io import _readers

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def data_dir():
    if not DATA.is_dir():
        pytest.skip(f"real measured files not available: no folder {DATA} (a checkout without ../shared/data)")
    return DATA


@pytest.fixture(scope="module")
def real(data_dir):
    """Every real file, read once."""
    return {p.name: read_measurement(p) for p in sorted(data_dir.iterdir()) if p.suffix != ".md"}


# name: (kind, {channel: units}, (ny, nx), scan size m, drive frequency Hz, drive amplitude V)
EXPECTED = {
    "scan_0001.ibw": ("ibw", {"HeightRetrace": "m", "Amplitude1Retrace": "m", "Amplitude2Retrace": "m",
                              "Phase1Retrace": "deg", "Phase2Retrace": "deg", "FrequencyRetrace": "Hz"},
                      (256, 256), 5e-6, 374.07e3, 3.0),
    "IgorIBWReader_ImageStack_BTFO_DSO.ibw": ("ibw", {"HeightRetrace": "m", "AmplitudeRetrace": "m",
                                                      "DeflectionRetrace": "m", "PhaseRetrace": "deg"},
                                              (256, 256), 2e-6, 380.74e3, 1.0),
    "PTO_110_Virgin0001.gwy": ("gwy", {"HeightRetrace": "m", "AmplitudeRetrace": "m", "DeflectionRetrace": "m",
                                       "PhaseRetrace": "deg"}, (256, 256), 10e-6, 434.32e3, 2.0),
    "SingFreqPFM_0003.h5": ("usid", {"HeightRetrace": "m", "AmplitudeRetrace": "m", "DeflectionRetrace": "m",
                                     "PhaseRetrace": "deg"}, (128, 128), None, None, None),
}


def test_every_real_file_is_read_and_checked(real):
    assert set(real) == set(EXPECTED) | {"BEPS_PTO_50x50.h5"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_image_files_open_with_channels_units_and_scan_size(real, name):
    fmt, channels, shape, scan, drive_f, drive_v = EXPECTED[name]
    ds = real[name]
    assert ds.attrs["format"] == fmt and ds.attrs["source_file"].endswith(name)
    assert list(ds.data_vars) == list(channels)
    for ch, units in channels.items():
        assert ds[ch].dims == ("y", "x") and ds[ch].shape == shape
        assert ds[ch].attrs["units"] == units
        assert np.isfinite(ds[ch].values).all()
    for axis in ("x", "y"):
        c = ds[axis].values
        assert ds[axis].attrs["units"] == "m" and c[0] == 0 and np.all(np.diff(c) > 0)
    if scan is not None:
        assert ds.attrs["scan_size_x"] == pytest.approx(scan, rel=1e-9)
        assert ds.attrs["scan_size_y"] == pytest.approx(scan, rel=1e-9)
        # Asylum: the scan size spans first to last pixel centre (Igor's delta is ScanSize / (N - 1))
        assert ds["x"].values[-1] == pytest.approx(scan, rel=1e-6)
    if drive_f is not None:
        assert ds.attrs["drive_frequency"] == pytest.approx(drive_f, rel=1e-4)
        assert ds.attrs["drive_amplitude"] == drive_v
        assert ds.attrs["invols"] > 1e-9 and ds.attrs["spring_constant"] > 0
    # phase is in degrees as the file says (Asylum's -90 .. 270 deg)
    phase = ds["PhaseRetrace" if "PhaseRetrace" in ds else "Phase1Retrace"].values
    assert -90.5 < phase.min() < -80 and 260 < phase.max() < 270.5


def test_asylum_metadata_from_the_note(real):
    ds = real["scan_0001.ibw"]
    assert ds.attrs["drive_frequency"] == 3.7407e5 and ds.attrs["drive_amplitude"] == 3
    assert ds.attrs["invols"] == 1.2266e-07 and ds.attrs["spring_constant"] == 3.0542
    assert ds.attrs["imaging_mode"] == "PFM Mode"
    meta = ds.attrs["instrument_metadata"]
    assert meta["ScanPoints"] == "256" and meta["ScanLines"] == "256" and meta["UserCalcUnit"] == "°"
    assert ds["FrequencyRetrace"].values.min() > 3.3e5  # Hz, around the drive
    gwy = real["PTO_110_Virgin0001.gwy"]  # Gwyddion keeps the Asylum note as /N/meta
    assert gwy.attrs["invols"] == 1e-7 and gwy.attrs["spring_constant"] == 1.0


def test_ibw_data_are_the_waves_layers_with_x_the_fast_axis(data_dir, real):
    from igor2 import binarywave

    wave = binarywave.load(str(data_dir / "scan_0001.ibw"))["wave"]
    ds = real["scan_0001.ibw"]
    for k, ch in enumerate(EXPECTED["scan_0001.ibw"][1]):
        np.testing.assert_array_equal(ds[ch].values, wave["wData"][:, :, k].T)
    assert ds["x"].values[1] == pytest.approx(wave["wave_header"]["sfA"][0], rel=1e-12)


def test_garbled_asylum_labels_are_repaired_from_the_vocabulary(data_dir, monkeypatch):
    for garbled, name in [("Phase1Retracece", "Phase1Retrace"), ("Phase2Retraceace", "Phase2Retrace"),
                          ("HeightRetraceace", "HeightRetrace"), ("PhaseRetracerace", "PhaseRetrace"),
                          ("Amplitude1Retrace", "Amplitude1Retrace"), ("ZSensorTracee", "ZSensorTrace"),
                          ("NapPhaseRetracee", "NapPhaseRetrace"), ("UserIn0Retraceace", "UserIn0Retrace"),
                          ("Mystery", "Mystery")]:
        assert _readers._repair_asylum_label(garbled) == name
    # without the raw labels (cut at their NUL) the vocabulary gives the same names
    monkeypatch.setattr(_readers, "_ibw_raw_labels", lambda *a: None)
    for name in ("scan_0001.ibw", "IgorIBWReader_ImageStack_BTFO_DSO.ibw"):
        assert list(read_measurement(data_dir / name).data_vars) == list(EXPECTED[name][1])


def test_gwy_data_as_gwyddion_and_read_gwy_channels_give_them(data_dir, real):
    ds = real["PTO_110_Virgin0001.gwy"]
    ch = read_gwy_channels(data_dir / "PTO_110_Virgin0001.gwy")
    for title, (arr, unit, xreal, yreal) in ch.items():
        np.testing.assert_array_equal(ds[title].values, arr)
        assert ds[title].attrs["units"] == unit
        assert ds["x"].values[1] * ds.sizes["x"] == pytest.approx(xreal, rel=1e-12)


def test_usid_channels_are_placed_by_position_indices(data_dir, real):
    import h5py

    ds = real["SingFreqPFM_0003.h5"]
    assert ds.attrs["position_order"] == "row-major (x fastest)"
    with h5py.File(data_dir / "SingFreqPFM_0003.h5") as h5:
        for k, ch in enumerate(EXPECTED["SingFreqPFM_0003.h5"][1]):
            g = h5[f"Measurement_000/Channel_{k:03d}"]
            ix, iy = g["Position_Indices"][()].T
            np.testing.assert_array_equal(ds[ch].values[iy, ix], g["Raw_Data"][()][:, 0])
        xv = h5["Measurement_000/Channel_000/Position_Values"][()]
    assert ds["x"].values[1] == pytest.approx(xv[1, 0], rel=1e-6)
    assert ds.attrs["scan_size_x"] == pytest.approx(128 * xv[1, 0], rel=1e-6)
    assert ds.attrs["instrument_metadata"]["sample_name"] == "PZT"


def test_nsid_spectroscopy_dims_from_its_dimension_scales(data_dir, real):
    import h5py

    ds = real["BEPS_PTO_50x50.h5"]
    assert ds.attrs["format"] == "nsid" and list(ds.data_vars) == ["Piezoresponse"]
    da = ds["Piezoresponse"]
    assert da.dims == ("y", "x", "voltage") and da.shape == (50, 50, 64) and da.attrs["units"] == "a.u."
    assert ds["voltage"].attrs["units"] == "V"
    assert ds["voltage"].values.min() == pytest.approx(-8.5) and ds["voltage"].values.max() == pytest.approx(8.5)
    assert ds["x"].attrs["units"] == "m" and ds["x"].values[-1] == pytest.approx(2e-6)
    # no stated scan size: pixel count times pitch (Gwyddion's xreal convention)
    assert ds.attrs["scan_size_x"] == pytest.approx(50 * 2e-6 / 49, rel=1e-12)
    with h5py.File(data_dir / "BEPS_PTO_50x50.h5") as h5:
        raw = h5["Channel_000/generic/generic"][()]  # (X, Y, Voltage)
        np.testing.assert_array_equal(ds["voltage"].values, h5["Channel_000/generic/Voltage"][()])
    np.testing.assert_array_equal(da.values, raw.transpose(1, 0, 2))


# ------------------------------------------------------------------------------------ broken files

@pytest.mark.parametrize("name,keep", [("scan_0001.ibw", 0.5), ("scan_0001.ibw", 1e-4),
                                       ("IgorIBWReader_ImageStack_BTFO_DSO.ibw", 0.9),
                                       ("PTO_110_Virgin0001.gwy", 0.5), ("PTO_110_Virgin0001.gwy", 1e-4),
                                       ("SingFreqPFM_0003.h5", 0.5), ("BEPS_PTO_50x50.h5", 0.95)])
def test_truncated_real_files_raise_reader_error(data_dir, tmp_path, name, keep):
    raw = (data_dir / name).read_bytes()
    bad = tmp_path / name
    bad.write_bytes(raw[:max(int(len(raw) * keep), 2)])
    with pytest.raises(ReaderError, match="truncated") as err:
        read_measurement(bad)
    assert str(bad) in str(err.value) and isinstance(err.value, EsmsimError)


@pytest.mark.parametrize("suffix,expected", [(".ibw", "Igor binary wave"), (".gwy", "Gwyddion"), (".h5", "HDF5"),
                                             (".tif", "TIFF"), (".npy", "numpy")])
def test_files_not_of_their_format_raise_reader_error(tmp_path, suffix, expected):
    bad = tmp_path / f"notes{suffix}"
    bad.write_bytes(b"This is a text file, not a measurement.\n" * 10)
    with pytest.raises(ReaderError, match=expected):
        read_measurement(bad)


def test_hdf5_without_data_raises_reader_error(tmp_path):
    import h5py

    with h5py.File(tmp_path / "empty.h5", "w") as h5:
        h5.create_dataset("numbers", data=np.arange(4))
    with pytest.raises(ReaderError, match="neither a USID main dataset nor an NSID"):
        read_measurement(tmp_path / "empty.h5")
    with pytest.raises(ReaderError, match="no USID main dataset"):
        read_measurement(tmp_path / "empty.h5", kind="usid")


def test_kind_and_pixel_size_are_checked(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 4)))
    with pytest.raises(ParameterError, match="did you mean 'gwy'") as err:
        read_measurement(tmp_path / "a.npy", kind="gwyy")
    assert err.value.field == "kind"
    (tmp_path / "a.xyz").write_bytes(b"")
    with pytest.raises(ParameterError, match="extension '.xyz'"):
        read_measurement(tmp_path / "a.xyz")
    for bad in (-1e-9, 0.0, np.nan, (1e-9, 2e-9, 3e-9)):
        with pytest.raises(ParameterError, match="pixel_size"):
            read_measurement(tmp_path / "a.npy", pixel_size=bad)
    with pytest.raises(ParameterError, match="carry their own scale"):
        read_measurement(tmp_path / "a.ibw", pixel_size=1e-9)
    with pytest.raises(FileNotFoundError):
        read_measurement(tmp_path / "missing.gwy")


def test_missing_optional_package_says_how_to_install(tmp_path, monkeypatch):
    for mod in ("igor2", "igor2.binarywave", "gwyfile", "tifffile"):
        monkeypatch.setitem(sys.modules, mod, None)
    for name in ("a.ibw", "a.gwy", "a.tif"):
        (tmp_path / name).write_bytes(b"\x05\x00" + bytes(100))
        with pytest.raises(ImportError, match=r'pip install "esmsim\[io\]"'):
            read_measurement(tmp_path / name)


# ----------------------------------------------------------------------------- esmsim's own files

def synthetic_map(ny=5, nx=7, nf=16, retrace=False, seed=0):
    """A dataset with the variables esmsim.simulation.run gives a band-excitation map (random values)."""
    rng = np.random.default_rng(seed)
    yx, yxf = ("y", "x"), ("y", "x", "frequency")
    ds = xr.Dataset(coords={"x": ("x", (np.arange(nx) + 0.5) * 12e-9, {"units": "m"}),
                            "y": ("y", (np.arange(ny) + 0.5) * 10e-9, {"units": "m"}),
                            "frequency": ("frequency", np.linspace(300e3, 340e3, nf), {"units": "Hz"})})
    for v in ["be", "be_clean"] + (["be_retrace"] if retrace else []):
        for part in ("real", "imag"):
            ds[f"{v}_{part}"] = (yxf, rng.standard_normal((ny, nx, nf)))
    for sfx in [""] + (["_retrace"] if retrace else []):
        for k in ("amplitude", "frequency", "quality", "phase", "r2"):
            ds[f"sho_{k}{sfx}"] = (yx, rng.random((ny, nx)))
    ds["height"] = (yx, 1e-9 * rng.random((ny, nx)))
    ds["amplitude"] = (yx, 1e-12 * rng.random((ny, nx)))
    ds["phase"] = (yx, rng.uniform(-180, 180, (ny, nx)))
    ds["grain_id"] = (yx, rng.integers(0, 5, (ny, nx)))
    ds.attrs.update({"cantilever": {"spring_constant": 3.0, "invols": 50e-9}, "bias_amplitude_V": 2.0,
                     "band_center_Hz": 320e3})
    return ds


def test_esmsim_gwy_file_reads_back_identical(tmp_path):
    ds = synthetic_map()
    write_gwy(ds, tmp_path / "map.gwy")
    back = read_measurement(tmp_path / "map.gwy")
    np.testing.assert_array_equal(back["Height"].values, ds["height"].values)
    np.testing.assert_array_equal(back["ESM amplitude (truth)"].values, ds["amplitude"].values)
    np.testing.assert_array_equal(back["ESM phase (truth)"].values, ds["phase"].values)
    np.testing.assert_array_equal(back["Grain id (truth)"].values, ds["grain_id"].values)
    np.testing.assert_allclose(back["BE phase (SHO fit)"].values, np.degrees(ds["sho_phase"].values), rtol=1e-15)
    assert back["BE phase (SHO fit)"].attrs["units"] == "deg" and back["Height"].attrs["units"] == "m"
    for axis in ("x", "y"):
        np.testing.assert_allclose(back[axis].values, ds[axis].values - ds[axis].values[0], rtol=1e-12, atol=1e-22)
        assert back.attrs[f"{axis}_offset"] == pytest.approx(float(ds[axis][0]), rel=1e-12)
    assert back.attrs["scan_size_x"] == pytest.approx(7 * 12e-9) and back.attrs["scan_size_y"] == pytest.approx(50e-9)
    for title, (arr, unit, *_) in read_gwy_channels(tmp_path / "map.gwy").items():
        np.testing.assert_array_equal(back[title].values, arr)


@pytest.mark.parametrize("retrace", [False, True])
def test_esmsim_usid_file_reads_back_identical(tmp_path, retrace):
    ds = synthetic_map(retrace=retrace)
    write_usid(ds, tmp_path / "be.h5")
    back = read_measurement(tmp_path / "be.h5")
    assert back.attrs["format"] == "usid" and back.attrs["position_order"] == "row-major (x fastest)"
    pre = "Channel_000_" if retrace else ""
    raw = back[f"{pre}Raw_Data"]
    assert raw.dims == ("y", "x", "frequency") and raw.dtype == np.complex64 and raw.attrs["units"] == "V"
    np.testing.assert_array_equal(raw.values, (ds["be_real"] + 1j * ds["be_imag"]).values.astype(np.complex64))
    np.testing.assert_array_equal(back["Raw_Data_Clean"].values,
                                  (ds["be_clean_real"] + 1j * ds["be_clean_imag"]).values.astype(np.complex64))
    np.testing.assert_allclose(back["frequency"].values, ds["frequency"].values, rtol=1e-7)
    np.testing.assert_allclose(back["x"].values, ds["x"].values - ds["x"].values[0], rtol=1e-6, atol=1e-15)
    np.testing.assert_array_equal(back[f"{pre}Fit_Amplitude"].values, ds["sho_amplitude"].values.astype(np.float32))
    assert back[f"{pre}Fit_Phase"].attrs["units"] == "rad" and back[f"{pre}Fit_Frequency"].attrs["units"] == "Hz"
    assert back.attrs["invols"] == 50e-9 and back.attrs["spring_constant"] == 3.0
    assert back.attrs["drive_amplitude"] == 2.0 and back.attrs["drive_frequency"] == 320e3
    if retrace:
        np.testing.assert_array_equal(back["Channel_001_Raw_Data"].values,
                                      (ds["be_retrace_real"] + 1j * ds["be_retrace_imag"]).values.astype(np.complex64))


def write_usid_image(path, image, order, x0=2e-6, dx=20e-9, dy=30e-9, drop=()):
    """A minimal USID file (pycroscopy image-translator layout) of one channel, pixels in ``order``."""
    import h5py

    ny, nx = image.shape
    iy, ix = np.mgrid[0:ny, 0:nx]
    if order == "row-major":
        ix, iy = ix.ravel(), iy.ravel()
    elif order == "column-major":
        ix, iy = ix.T.ravel(), iy.T.ravel()
    else:
        perm = np.random.default_rng(1).permutation(nx * ny)
        ix, iy = ix.ravel()[perm], iy.ravel()[perm]
    keep = np.ones(ix.size, bool)
    keep[list(drop)] = False
    ix, iy = ix[keep], iy[keep]
    with h5py.File(path, "w") as h5:
        g = h5.create_group("Measurement_000/Channel_000")
        anc = {}
        for name, data, units in (("Position_Indices", np.stack([ix, iy], 1).astype(np.uint32), ["m", "m"]),
                                  ("Position_Values", np.stack([x0 + dx * ix, dy * iy], 1), ["m", "m"])):
            anc[name] = g.create_dataset(name, data=data)
            anc[name].attrs["labels"] = np.array([b"X", b"Y"])
            anc[name].attrs["units"] = np.array([u.encode() for u in units])
        for name, data in (("Spectroscopic_Indices", np.zeros((1, 1), np.uint32)),
                           ("Spectroscopic_Values", np.zeros((1, 1), np.float32))):
            anc[name] = g.create_dataset(name, data=data)
            anc[name].attrs["labels"] = np.array([b"ZSensorTrace"])
            anc[name].attrs["units"] = np.array([b"m"])
        main = g.create_dataset("Raw_Data", data=image[iy, ix][:, None])
        main.attrs["quantity"], main.attrs["units"] = "ZSensorTrace", "m"
        for name, d in anc.items():
            main.attrs[name] = d.ref


def test_usid_position_orderings_give_the_same_image(tmp_path):
    image = np.random.default_rng(0).standard_normal((6, 9))  # not square: a transposition would show
    got = {}
    for order in ("row-major", "column-major", "scattered"):
        write_usid_image(tmp_path / f"{order}.h5", image, order)
        got[order] = read_measurement(tmp_path / f"{order}.h5")
        np.testing.assert_array_equal(got[order]["ZSensorTrace"].values, image)
        np.testing.assert_allclose(got[order]["x"].values, 20e-9 * np.arange(9), rtol=1e-12)
        np.testing.assert_allclose(got[order]["y"].values, 30e-9 * np.arange(6), rtol=1e-12)
        assert got[order].attrs["x_offset"] == 2e-6
    assert got["row-major"].attrs["position_order"] == "row-major (x fastest)"
    assert got["column-major"].attrs["position_order"] == "column-major (y fastest)"
    # an aborted scan: the missing pixels are NaN
    write_usid_image(tmp_path / "partial.h5", image, "row-major", drop=range(50, 54))
    part = read_measurement(tmp_path / "partial.h5")["ZSensorTrace"].values
    assert np.isnan(part.ravel()[50:54]).all() and np.array_equal(part.ravel()[:50], image.ravel()[:50])


# ---------------------------------------------------------------------------------- TIFF and numpy

def test_tiff_and_numpy_images_in_pixels_or_metres(tmp_path):
    import tifffile

    img = np.arange(12.0).reshape(3, 4)
    tifffile.imwrite(tmp_path / "a.tif", img.astype(np.float32))
    ds = read_measurement(tmp_path / "a.tif")
    np.testing.assert_array_equal(ds["image"].values, img[::-1])  # TIFF row 0 is the top
    assert ds["x"].attrs["units"] == "px" and "scan_size_x" not in ds.attrs and ds["image"].attrs["units"] == ""
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([img, 2 * img]).astype(np.float32), photometric="minisblack")
    ds = read_measurement(tmp_path / "stack.tif", pixel_size=(2e-9, 5e-9))
    assert list(ds.data_vars) == ["channel_0", "channel_1"]
    np.testing.assert_array_equal(ds["channel_1"].values, 2 * img[::-1])
    assert ds["x"].values[-1] == pytest.approx(15e-9) and ds["y"].attrs["units"] == "m"
    assert ds.attrs["scan_size_x"] == pytest.approx(20e-9) and ds.attrs["scan_size_y"] == pytest.approx(6e-9)

    np.save(tmp_path / "a.npy", img)
    ds = read_measurement(tmp_path / "a.npy", pixel_size=1e-8)
    np.testing.assert_array_equal(ds["image"].values, img)  # numpy: row index = y index
    np.savez(tmp_path / "b.npz", height=img, phase=-img, bias=np.float64(2.0))
    ds = read_measurement(tmp_path / "b.npz")
    assert list(ds.data_vars) == ["height", "phase"] and ds.attrs["bias"] == 2.0
    assert ds["x"].attrs["units"] == "px"
    np.savez(tmp_path / "c.npz", a=img, b=np.zeros((2, 2)))
    with pytest.raises(ReaderError, match="shape"):
        read_measurement(tmp_path / "c.npz")


def test_phase_to_radians_keeps_what_the_file_says_until_asked(real):
    ph = real["PTO_110_Virgin0001.gwy"]["PhaseRetrace"]
    rad = phase_to_radians(ph)
    assert rad.attrs["units"] == "rad" and ph.attrs["units"] == "deg"
    np.testing.assert_allclose(rad.values, np.deg2rad(ph.values), rtol=1e-15)
    assert rad.dims == ph.dims and np.array_equal(rad["x"], ph["x"])
    np.testing.assert_array_equal(phase_to_radians(rad).values, rad.values)
    np.testing.assert_allclose(phase_to_radians(np.array([90.0]), units="°"), [np.pi / 2])
    with pytest.raises(ParameterError, match="units='deg'"):
        phase_to_radians(np.array([1.0]))
    with pytest.raises(ParameterError, match="expected 'deg' or 'rad'"):
        phase_to_radians(xr.DataArray([1.0], attrs={"units": "m"}))


def test_read_dataset_saves_to_netcdf(real, tmp_path):
    from esmsim.io import read_netcdf, write_netcdf

    ds = real["scan_0001.ibw"]
    back = read_netcdf(write_netcdf(ds, tmp_path / "scan.nc"))
    np.testing.assert_array_equal(back["Phase1Retrace"].values, ds["Phase1Retrace"].values)
    assert back.attrs["instrument_metadata"]["DriveFrequency"] == "3.7407e+05"


def test_docstring_examples():
    assert doctest.testmod(_readers, raise_on_error=False).failed == 0


def test_copy_of_real_file_under_other_name_reads_with_kind(data_dir, tmp_path):
    shutil.copy(data_dir / "SingFreqPFM_0003.h5", tmp_path / "pfm.dat")
    ds = read_measurement(tmp_path / "pfm.dat", kind="hdf5")
    assert ds.attrs["format"] == "usid" and ds["PhaseRetrace"].shape == (128, 128)
