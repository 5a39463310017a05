"""Run a whole simulation from a validated :class:`~esmsim.config.Config`.

microstructure -> transport (per tip position) -> mechanics -> ESM map ->
labelled dataset with ground truth -> NetCDF file and PNG figure.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import __version__
from ._errors import ParameterError
from .config import SAVED_SUFFIXES, Config
from .materials import Material
from .microstructure import (BOUNDARY_CLASSES, boundary_mask, ColumnarMicrostructure, Microstructure, add_cracks, add_pores,
                             bicrystal, boundary_table, columnar_film, columnar_laguerre, columnar_seeded,
                             columnar_voronoi, laguerre, voronoi)
from .probe import Cantilever, MapResult, MapSettings, ScanGrid, single_frequency_map
from .probe._cantilever import SHO_FIELDS
from .probe._band import Artefacts, BandExcitation, band_excitation, contact_stiffness_map
from .probe._scan import grain_diffusivities

__all__ = ["build_microstructure", "build_topography", "map_settings", "map_dataset", "run", "RunOutput",
           "write_microstructure", "instrument", "band_dataset", "scan_grid"]


def build_microstructure(config: Config):
    """The microstructure the config describes (seeded by ``simulation.seed``).

    A :class:`~esmsim.microstructure.ColumnarMicrostructure` for a plain columnar film; a
    :class:`~esmsim.microstructure.Microstructure` (voxel volume) for the 3-D generators and for
    columnar films with tilted or partial columns, pores or cracks. Each step draws from its own
    random stream, so adding pores does not change the grains.
    """
    m = config["microstructure"]
    seed = config["simulation"]["seed"]
    if m["file"] is not None and Path(m["file"]).suffix in SAVED_SUFFIXES:
        from .io import load_microstructure

        return load_microstructure(m["file"])
    texture = dict(texture=m["texture"], fibre_axis=m["fibre_axis"], fibre_spread=m["fibre_spread"])
    hz = m["spacing_z"] or m["spacing"]
    gen = m["generator"]
    if gen in ("voronoi", "laguerre"):
        size3 = (*m["size"], m["thickness"])
        spacing3 = (m["spacing"], m["spacing"], hz)
        if gen == "voronoi":
            ms = voronoi(size3, spacing=spacing3, grain_size=m["grain_size"], periodic=m["periodic"], rng=seed,
                         **texture)
        else:
            ms = laguerre(size3, spacing=spacing3, grain_size=m["grain_size"], grain_size_sigma=m["grain_size_sigma"],
                          periodic=m["periodic"], rng=seed, **texture)
    elif gen == "bicrystal":
        ms = bicrystal((*m["size"], m["thickness"]), spacing=(m["spacing"], m["spacing"], hz),
                       normal=m["boundary_normal"], euler_angles=m["euler_angles"], texture=m["texture"], rng=seed)
    else:
        common = dict(spacing=m["spacing"], thickness=m["thickness"], periodic=m["periodic"], rng=seed, **texture)
        if gen == "columnar_seeds":
            ms = columnar_seeded(np.array(m["seeds"]), m["size"], euler_angles=m["euler_angles"], **common)
        elif gen == "columnar_laguerre":
            ms = columnar_laguerre(m["size"], grain_size=m["grain_size"], grain_size_sigma=m["grain_size_sigma"],
                                   **common)
        else:
            ms = columnar_voronoi(m["size"], grain_size=m["grain_size"], **common)
        if m["column_tilt"] or m["partial_grain_fraction"] or m["pore_fraction"] or m["crack_fraction"]:
            ms = columnar_film(ms, spacing_z=hz, tilt=m["column_tilt"], tilt_azimuth=m["column_tilt_azimuth"],
                               partial_fraction=m["partial_grain_fraction"], rng=np.random.default_rng([seed, 2]))
    if m["pore_fraction"]:
        ms = add_pores(ms, volume_fraction=m["pore_fraction"], radius=m["pore_radius"],
                       radius_sigma=m["pore_radius_sigma"], rng=np.random.default_rng([seed, 3]))
    if m["crack_fraction"]:
        ms = add_cracks(ms, opening=m["crack_opening"], fraction=m["crack_fraction"],
                        rng=np.random.default_rng([seed, 4]))
    return ms


def build_topography(config: Config, ms: ColumnarMicrostructure) -> np.ndarray:
    """Surface height map (m, shape of the labels) of the config's film.

    Seeded by ``simulation.seed`` on a stream separate from the microstructure's.
    """
    from .microstructure import topography

    m = config["microstructure"]
    return topography(ms, grain_height_rms=m["grain_height_rms"], groove_depth=m["groove_depth"],
                      groove_width=m["groove_width"], rng=np.random.default_rng([config["simulation"]["seed"], 1]))


def write_microstructure(config: Config, *, out_dir=None) -> tuple[Path, Path]:
    """Build the config's microstructure and write its ground truth (NetCDF) and a PNG; returns both paths."""
    from .io import microstructure_figure, save_microstructure

    out = Path(out_dir if out_dir is not None else config["output"]["directory"])
    ms = build_microstructure(config)
    height = build_topography(config, ms)
    name = config["simulation"]["name"]
    nc = save_microstructure(ms, out / f"{name}_microstructure.nc", symmetry=config.material().symmetry, height=height)
    png = microstructure_figure(ms, height, out / f"{name}_microstructure.png", title=name)
    return nc, png


def map_settings(config: Config) -> MapSettings:
    """The :class:`~esmsim.probe.MapSettings` of a config."""
    n, s, t = config["numerics"], config["scan"], config["tip"]
    return MapSettings(frequency=config["excitation"]["frequency"], tip_profile=t["profile"], tip_width=t["width"],
                       pixels=s["pixels"], window=s["window"], bottom=s["bottom"], z_growth=n["z_growth"],
                       z_first=n["z_first"], vegard=config["mechanics"]["vegard"],
                       contact_radius=t["contact_radius"], lateral=config["mechanics"]["lateral"])


def scan_grid(config: Config) -> ScanGrid:
    """The :class:`~esmsim.probe.ScanGrid` of a config."""
    s = config["scan"]
    return ScanGrid(pixels=s["pixels"], size=s["size"], center=s["center"], rotation=s["rotation"], tips=s["tips"])


def instrument(config: Config) -> tuple[Cantilever, BandExcitation, Artefacts]:
    """The cantilever, drive band and artefacts a config describes."""
    c, b, a = config["cantilever"], config["band_excitation"], config["artefacts"]
    return (Cantilever(spring_constant=c["spring_constant"], free_resonance=c["free_resonance"],
                       quality_factor=c["quality_factor"], invols=c["invols"], mode=c["mode"]),
            BandExcitation(center=b["center"], bandwidth=b["bandwidth"], bins=b["bins"]),
            Artefacts(**{k: a[k] for k in a}))


def band_dataset(ds, be: dict, cantilever: Cantilever, band: BandExcitation, artefacts: Artefacts, *,
                 k_clean: float, contact_radius):
    """Add band-excitation spectra, SHO truth and fits (:func:`~esmsim.probe._band.band_excitation`) to a map dataset.

    Dimensions ``y, x, frequency``; spectra in detector volts, split into real and imaginary parts.
    """
    from dataclasses import asdict

    yx, yxf = ("y", "x"), ("y", "x", "frequency")
    ds = ds.assign_coords(frequency=("frequency", be["frequency"], {"units": "Hz", "long_name": "drive bin"}))

    def spec(name, z, what):
        ds[f"{name}_real"] = (yxf, z.real.transpose(1, 0, 2), {"units": "V", "long_name": f"Re of {what}"})
        ds[f"{name}_imag"] = (yxf, z.imag.transpose(1, 0, 2), {"units": "V", "long_name": f"Im of {what}"})

    spec("be", be["recorded"], "band-excitation detector signal as recorded (with artefacts)")
    spec("be_clean", be["clean"], "band-excitation detector signal without artefacts (ground truth)")
    t = be["truth"]
    units = {"amplitude": "V", "frequency": "Hz", "quality": "1", "phase": "rad"}
    for key, u in units.items():
        ds[f"sho_{key}_true"] = (yx, np.asarray(t[key], float).T, {
            "units": u, "long_name": f"SHO {key} of the clean spectra (ground truth; BGlib convention)"})
    passes = [("", be)] + ([("_retrace", be["retrace"])] if "retrace" in be else [])
    for sfx, rec in passes:
        what = "retrace" if sfx else "recorded"
        if sfx:
            spec("be_retrace", rec["recorded"], "band-excitation detector signal of the retrace (with artefacts)")
            ds["height_retrace"] = (yx, rec["height"].T, {"units": "m", "long_name": "height channel, retrace"})
        if rec["fit"] is not None:
            for key, field in zip((*units, "r2"), SHO_FIELDS):
                ds[f"sho_{key}{sfx}"] = (yx, rec["fit"][field].astype(float).T, {
                    "units": units.get(key, "1"), "long_name": f"SHO fit of the {what} spectra: {field}"})
        ds[f"contact_stiffness{sfx}"] = (yx, rec["k_recorded"].T, {
            "units": "N/m", "long_name": f"contact stiffness k* as recorded ({what})"})
    ds["contact_radius"] = (yx, np.asarray(contact_radius, float).T, {
        "units": "m", "long_name": "Hertz contact radius with the local surface curvature"})
    ds["height"] = (yx, be["height"].T, {"units": "m", "long_name": "height channel as recorded (tip on the surface)"})
    ds["line_gain"] = (("y",), be["line_gain"], {"long_name": "response gain of each scan line (artefact)"})
    ds.attrs.update({
        "title": "synthetic band-excitation ESM map (esmsim)",
        "sho_convention": "H(f) = A exp(i phi) f0^2 / (f^2 - i f f0 / Q - f0^2) (BGlib): |H(f0)| = A Q, "
                          "H(0) = -A exp(i phi) = the quasi-static detector signal",
        "band_center_Hz": be["center"], "contact_stiffness_flat_N_per_m": float(k_clean),
        "electrostatic_offset_V": [float(np.real(be["electrostatic"])), float(np.imag(be["electrostatic"]))],
        "cantilever": asdict(cantilever), "band_excitation": asdict(band), "artefacts": asdict(artefacts),
    })
    return ds


def _response_vars(dims, resp, names=("response_real", "response_imag", "amplitude", "phase"),
                   long_names=("Re of outward surface displacement per volt",
                               "Im of outward surface displacement per volt",
                               "ESM amplitude |u3| per volt", "ESM phase relative to the bias")) -> dict:
    """A complex response (m/V) as dataset variables: real and imaginary parts, amplitude, phase (deg)."""
    values = (resp.real, resp.imag, np.abs(resp), np.degrees(np.angle(resp)))
    units = ("m/V", "m/V", "m/V", "deg")
    return {n: (dims, v, {"units": u, "long_name": ln}) for n, v, u, ln in zip(names, values, units, long_names)}


def _voxel_index(ms, P) -> np.ndarray:
    """Indices (..., 2) of the voxel column under film positions ``P`` (..., 2) in m."""
    return np.minimum((np.asarray(P) / np.array(ms.spacing[:2])).astype(int), np.array(ms.shape[:2]) - 1)


def map_dataset(ms: ColumnarMicrostructure, material: Material, settings: MapSettings, result: MapResult,
                *, attrs: dict | None = None):
    """Labelled dataset of a map with its ground truth.

    Dimensions ``y, x`` (tip positions), ``y_voxel, x_voxel`` (microstructure
    pixels) and ``grain``. All values SI (m, m/V, rad, m^2/s) except ``phase``
    (degrees, as instruments report it).
    """
    import xarray as xr
    from .io import SIGN_CONVENTION

    xv, yv = ms.pixel_centers()
    P = result.tip_positions(ms)
    X, Y = P[..., 0], P[..., 1]
    vox = _voxel_index(ms, P)
    tip_grain = ms.labels[vox[..., 0], vox[..., 1]]
    sx, sy = result.scan_axes(ms)
    Dg = grain_diffusivities(ms, material)
    incl = ms.c_axis_inclination
    resp = result.response.T  # (y, x)
    yx = ("y", "x")
    bt = boundary_table(ms, material.symmetry)
    b_dims = ("boundary",)
    ds = xr.Dataset(
        {
            **_response_vars(yx, resp),
            "grain_id": (yx, tip_grain.T, {"long_name": "grain under the tip (ground truth)"}),
            "boundary_distance": (yx, ms.boundary_distance(X, Y).T,
                                  {"units": "m", "long_name": "distance from the tip to the nearest grain boundary"}),
            "c_axis_inclination": (yx, incl[tip_grain].T,
                                   {"units": "rad", "long_name": "angle of the grain's c axis to the surface normal"}),
            "D_zz": (yx, Dg[tip_grain, 2].T, {"units": "m^2/s", "long_name": "out-of-plane bulk diffusivity n.D.n"}),
            "grain_labels": (("y_voxel", "x_voxel"), ms.labels.T, {"long_name": "grain id of each column"}),
            "boundary_mask": (("y_voxel", "x_voxel"),
                              boundary_mask(ms.labels, periodic=ms.periodic).T,
                              {"long_name": "1 on pixels next to a grain boundary"}),
            "quaternion": (("grain", "quaternion_component"), ms.quaternions,
                           {"long_name": "crystal->sample rotation, scalar-first (w, x, y, z)"}),
            "euler_bunge": (("grain", "euler_angle"), ms.euler_bunge, {"units": "rad", "long_name": "Bunge ZXZ angles"}),
            "boundary_grains": (("boundary", "side"), bt["grains"], {"long_name": "grain pair of each boundary"}),
            "boundary_misorientation": (b_dims, bt["misorientation"],
                                        {"units": "rad", "long_name": f"disorientation angle ({material.symmetry} symmetry)"}),
            "boundary_class": (b_dims, bt["class"],
                               {"flag_values": list(BOUNDARY_CLASSES), "flag_meanings": " ".join(BOUNDARY_CLASSES.values()),
                                "long_name": "boundary class (low angle < 15 deg; twin within 5 deg)"}),
            "boundary_area": (b_dims, bt["area"], {"units": "m^2", "long_name": "boundary area through the film"}),
        },
        coords={
            "x": ("x", sx, {"units": "m", "long_name": "image x (scan frame)"}),
            "y": ("y", sy, {"units": "m", "long_name": "image y (scan frame)"}),
            "x_film": (yx, X.T, {"units": "m", "long_name": "tip x on the film"}),
            "y_film": (yx, Y.T, {"units": "m", "long_name": "tip y on the film"}),
            "x_voxel": ("x_voxel", xv, {"units": "m"}),
            "y_voxel": ("y_voxel", yv, {"units": "m"}),
            "grain": ("grain", np.arange(ms.n_grains)),
        },
    )
    if result.lateral is not None:  # in-plane displacement, scan axes
        for k, a in enumerate("xy"):
            ds.update(_response_vars(yx, result.lateral[..., k].T,
                                     tuple(f"lateral_{a}_{q}" for q in ("real", "imag", "amplitude", "phase")),
                                     (f"Re of in-plane u_{a} per volt", f"Im of in-plane u_{a} per volt",
                                      f"in-plane |u_{a}| per volt (scan axes)", f"phase of u_{a}")))
    if ms.seeds is not None:  # films from labels (segmented scans) have no Voronoi seeds
        ds["seed_position"] = (("grain", "xy"), ms.seeds, {"units": "m", "long_name": "Voronoi seed"})
    ds.attrs.update({
        "title": "synthetic single-frequency ESM map (esmsim)",
        "esmsim_version": __version__,
        "sign_convention": SIGN_CONVENTION,
        "frequency_Hz": settings.frequency,
        "tip_profile": settings.tip_profile,
        "tip_width_m": settings.tip_width,
        "material": material.name,
        "material_parameters": {k: {"value": p.value, "unit": p.unit, "source": p.source}
                                for k, p in material.parameters.items()},
        "microstructure_recipe": ms.recipe,
        "n_factorisations": result.n_solves,
        "wall_time_s": result.seconds,
        "host": platform.node(),
        "model": "columnar film; two-point FV diffusion with diagonal sample-frame D per grain; boundary slabs "
                 "(delta, D_gb) as network unknowns; potentiostatic tip; isotropic Vegard beta=trace/3 in an "
                 "isotropic half-space (Mindlin), u3 at the tip point",
    })
    if attrs:
        ds.attrs.update(attrs)
    return ds


VOLUME_MODEL = ("voxel volume; full-tensor FV diffusion R diag(D) R^T per voxel's grain, one window per tile of tips;"
                " boundary slabs (delta, D_gb) on the faces between grains, placed on the tessellation's sections; "
                "pores and cracks without Li or flux; potentiostatic tip; isotropic Vegard beta=trace/3 (or the "
                "grain's tensor with vegard='tensor') in an isotropic half-space (Mindlin), u3 at the tip point; "
                "ground truth of the surface layer (voxel layer 0)")


def _sampler(ms, result: MapResult):
    """A function giving a voxel field (nx_vox, ny_vox) at the map's tips: the voxels of a voxel-centred map,
    bilinear interpolation for a scan off the voxel centres."""
    if result.positions is None:
        return lambda field: np.asarray(field)[np.ix_(result.ix, result.iy)]
    from .probe._scan import _voxel_stencil

    ix, iy, _, interp = _voxel_stencil(ms, result.positions)
    return lambda field: interp(np.asarray(field)[np.ix_(ix, iy)])


@dataclass(frozen=True)
class RunOutput:
    """What :func:`run` produced."""

    dataset: object
    netcdf: Path
    figure: Path | None
    seconds: float
    usid: Path | None = None
    gwy: Path | None = None
    ibw: Path | None = None


def run(config: Config, *, out_dir=None, workers: int | None = None, progress: bool = False,
        scheduler: str | None = None) -> RunOutput:
    """Run the simulation a config describes and write its dataset (and figure).

    Parameters
    ----------
    config : Config
    out_dir : path, optional
        Output folder; default ``config["output"]["directory"]``.
    workers : int, optional
        Worker processes; default from the config (0: one per CPU).
    progress : bool
        Show a progress bar.
    scheduler : str, optional
        Dask scheduler address (default ``config["numerics"]["scheduler"]``): the map's tiles run there.

    Returns
    -------
    RunOutput
    """
    from .io import band_figure, map_figure, write_netcdf

    t0 = time.perf_counter()
    out = Path(out_dir if out_dir is not None else config["output"]["directory"])
    ms = build_microstructure(config)
    volume = False
    if isinstance(ms, Microstructure):
        try:
            ms = ms.as_columnar()
        except ParameterError:  # grains that change with depth, pores or cracks: the volume engine
            volume = True
    mode = config["excitation"]["mode"]
    if volume and mode not in ("single_frequency", "band_excitation", "frequency_spectroscopy",
                               "relaxation_spectroscopy"):
        raise ParameterError("excitation.mode", f"got {mode!r}, which takes columnar films; a voxel volume (grains "
                                                f"that change with depth, pores or cracks) is mapped with "
                                                f"'single_frequency' or 'band_excitation' or probed with "
                                                f"'frequency_spectroscopy' or 'relaxation_spectroscopy'")
    material = config.material()
    settings = map_settings(config)
    w = workers if workers is not None else (config["numerics"]["workers"] or None)
    if config["excitation"]["mode"] == "frequency_spectroscopy":
        return _spectroscopy_run(config, ms, material, settings, out, w, t0)
    if config["excitation"]["mode"] == "relaxation_spectroscopy":
        return _relaxation_run(config, ms, material, settings, out, w, t0, progress)
    if config["excitation"]["mode"] == "voltage_spectroscopy":
        return _voltage_run(config, ms, material, settings, out, w, t0, progress)
    height = build_topography(config, ms)
    band_mode = config["excitation"]["mode"] == "band_excitation"
    if band_mode:
        from .mechanics import hertz_contact

        cantilever, band, artefacts = instrument(config)
        tip = config["tip"]
        flat = hertz_contact(tip["force"], tip["radius"], material["E"], material["nu"])
        center = band.center if band.center is not None else float(cantilever.resonance(flat.stiffness))
        settings = replace(settings, frequency=center)
    address = scheduler if scheduler is not None else config["numerics"]["scheduler"]
    if address:
        try:
            from distributed import Client
        except ImportError:
            raise ParameterError("numerics.scheduler", "running on a Dask cluster needs distributed: "
                                                       "pip install 'esmsim[cluster]'") from None
        with Client(address) as client:
            result = single_frequency_map(ms, material, settings, tile=config["numerics"]["tile"],
                                          progress=progress, scan=scan_grid(config), client=client,
                                          engine=config["numerics"]["engine"])
    else:
        result = single_frequency_map(ms, material, settings, workers=w, tile=config["numerics"]["tile"],
                                      progress=progress, scan=scan_grid(config), engine=config["numerics"]["engine"])
    ds = map_dataset(ms.surface() if volume else ms, material, settings, result, attrs={
        **({"model": VOLUME_MODEL} if volume else {}), "config": config.source,
        "config_si": json.loads(json.dumps(config.values)),
        "seed": config["simulation"]["seed"], "bias_amplitude_V": config["excitation"]["amplitude"]})
    ds["topography"] = (("y_voxel", "x_voxel"), height.T,
                        {"units": "m", "long_name": "surface height, positive out of the sample (ground truth)"})
    name = config["simulation"]["name"]
    usid = None
    if band_mode:
        radius, k_local = contact_stiffness_map(height, ms.spacing[0], tip["radius"], tip["force"], material["E"],
                                                material["nu"], curvature=True, periodic=ms.periodic)
        at_tips = _sampler(ms, result)
        sx = result.scan_axes(ms)[0]
        step = sx[1] - sx[0] if sx.size > 1 else ms.spacing[0]
        be = band_excitation(result.response, float(flat.stiffness), at_tips(k_local), at_tips(height),
                             cantilever=cantilever,
                             band=band, artefacts=artefacts, bias_ac=config["excitation"]["amplitude"],
                             bias_dc=config["excitation"]["dc_bias"], pixel_size=step,
                             line_rate=config["scan"]["line_rate"], periodic=ms.periodic,
                             seed=config["simulation"]["seed"], retrace=config["scan"]["retrace"])
        ds = band_dataset(ds, be, cantilever, band, artefacts, k_clean=float(flat.stiffness),
                          contact_radius=at_tips(radius) if artefacts.topography_crosstalk
                          else np.full(result.response.shape, float(flat.radius)))
        if config["output"]["usid"]:
            from .io import write_usid

            usid = write_usid(ds, out / f"{name}_be.h5")
    nc = write_netcdf(ds, out / f"{name}.nc")
    gwy = None
    if config["output"]["gwy"]:
        from .io import write_gwy

        gwy = write_gwy(ds, out / f"{name}.gwy")
    ibw = None
    if config["output"]["ibw"]:
        from .io import write_ibw

        ibw = write_ibw(ds, out / f"{name}.ibw")
    fig = None
    if config["output"]["figure"]:
        title = (f"{name}: {material.name}, {'band centre' if band_mode else 'f ='} {settings.frequency / 1e3:.4g} kHz, "
                 f"D_gb/D = {material['gb_enhancement']:g}, d = {settings.tip_width * 1e9:g} nm")
        fig = (band_figure if band_mode else map_figure)(ds, out / f"{name}.png", title=title)
    return RunOutput(ds, nc, fig, time.perf_counter() - t0, usid, gwy, ibw)


def _spectroscopy_run(config, ms, material, settings, out, workers, t0) -> RunOutput:
    """``excitation.mode = "frequency_spectroscopy"``: the response over frequency at the config's points."""
    import xarray as xr

    from .io import SIGN_CONVENTION, spectroscopy_figure, write_netcdf
    from .probe import frequency_spectroscopy

    sp = config["spectroscopy"]
    pts = _voxel_index(ms, sp["points"])
    f = np.geomspace(sp["f_min"], sp["f_max"], sp["n"])
    u = frequency_spectroscopy(ms, material, settings, pts, f, workers=workers)
    volume = isinstance(ms, Microstructure)
    surf = ms.surface() if volume else ms  # the ground truth at the surface under each tip
    xv, yv = surf.pixel_centers()
    X, Y = xv[pts[:, 0]], yv[pts[:, 1]]
    grain = surf.labels[pts[:, 0], pts[:, 1]]
    Dg = grain_diffusivities(surf, material)
    pf = ("point", "frequency")
    ds = xr.Dataset(
        {
            **_response_vars(pf, u),
            "grain_id": ("point", grain, {"long_name": "grain under the tip (ground truth)"}),
            "boundary_distance": ("point", surf.boundary_distance(X, Y), {"units": "m", "long_name":
                                                                         "distance to the nearest boundary"}),
            "c_axis_inclination": ("point", surf.c_axis_inclination[grain], {"units": "rad"}),
            "D_zz": ("point", Dg[grain, 2], {"units": "m^2/s", "long_name": "out-of-plane bulk diffusivity"}),
        },
        coords={"frequency": ("frequency", f, {"units": "Hz"}), "point": np.arange(len(pts)),
                "x": ("point", X, {"units": "m", "long_name": "tip x (nearest voxel centre)"}),
                "y": ("point", Y, {"units": "m", "long_name": "tip y (nearest voxel centre)"})},
    )
    ds.attrs.update({"title": "synthetic ESM frequency spectroscopy (esmsim)", "esmsim_version": __version__,
                     "sign_convention": SIGN_CONVENTION, "material": material.name, "config": config.source,
                     "config_si": json.loads(json.dumps(config.values)), "seed": config["simulation"]["seed"],
                     "tip_profile": settings.tip_profile, "tip_width_m": settings.tip_width,
                     "host": platform.node(), **({"model": VOLUME_MODEL} if volume else {})})
    name = config["simulation"]["name"]
    nc = write_netcdf(ds, out / f"{name}.nc")
    fig = spectroscopy_figure(ds, out / f"{name}.png", title=f"{name}: {material.name}, "
                              f"D_gb/D = {material['gb_enhancement']:g}") if config["output"]["figure"] else None
    return RunOutput(ds, nc, fig, time.perf_counter() - t0)


def _relaxation_run(config, ms, material, settings, out, workers, t0, progress) -> RunOutput:
    """``excitation.mode = "relaxation_spectroscopy"``: relaxation curves after a DC pulse over the scan
    pixels (or at ``relaxation.points``), the fitted local D and its single-crystal ground truth."""
    import xarray as xr

    from .io import relaxation_figure
    from .probe import (RelaxationPulse, fit_relaxation, relaxation_calibration, relaxation_spectroscopy,
                        single_crystal_curves)

    rx = config["relaxation"]
    pulse = RelaxationPulse(voltage=rx["voltage"], duration=rx["duration"],
                            times=np.geomspace(rx["t_min"], rx["t_max"], rx["n"]), after=rx["after"])
    on_points = rx["points"] is not None
    if on_points:
        res = relaxation_spectroscopy(ms, material, settings, pulse, points=_voxel_index(ms, rx["points"]),
                                      workers=workers)
    else:
        res = relaxation_spectroscopy(ms, material, settings, pulse, pixels=config["scan"]["pixels"],
                                      workers=workers, tile=4, progress=progress)
    volume = isinstance(ms, Microstructure)
    surf = ms.surface() if volume else ms  # the ground truth at the surface under each tip
    dims, tr, grain, truth, coords = _tip_frame(surf, material, res.ix, res.iy, on_points)
    cal = relaxation_calibration(ms, material, settings, pulse,
                                 D=np.geomspace(material.D_reference / 30, 10 * material.D_reference, rx["calibration"]),
                                 workers=workers)
    D_fit, amp, resid = fit_relaxation(res.u, cal)
    grains = np.unique(grain)
    D_sc = np.full(ms.n_grains, np.nan)
    D_sc[grains] = fit_relaxation(single_crystal_curves(surf, material, settings, pulse, grains, workers=workers),
                                  cal)[0]
    dt = dims + ("time",)
    fit_curve = amp[..., None] * cal.curve(D_fit)
    data = {
        "relaxation_u": (dt, tr(res.u), {"units": "m", "long_name": "outward surface displacement after the pulse"}),
        "fit_curve": (dt, tr(fit_curve), {"units": "m", "long_name": "matched reference curve (fit)"}),
        "u_end_of_pulse": (dims, tr(res.u_end), {"units": "m", "long_name": "displacement at the end of the pulse"}),
        "injected": (dims, tr(res.injected), {"units": "mol", "long_name": "Li added by the pulse"}),
        "D_fit": (dims, tr(D_fit), {"units": "m^2/s", "long_name": "apparent diffusivity from the decay shape "
                                                                   "(NaN: outside the calibration range)"}),
        "fit_amplitude": (dims, tr(amp), {"long_name": "scale of the matched reference curve"}),
        "fit_residual": (dims, tr(resid), {"long_name": "relative residual of the match"}),
        "D_single_crystal": (dims, tr(D_sc[grain]), {"units": "m^2/s", "long_name": "ground truth: the fit of a "
                             "single crystal of the grain under the tip (no boundaries)"}),
        "calibration_curves": (("calibration", "time"), cal.curves,
                               {"units": "m", "long_name": "homogeneous isotropic reference films"}),
        **truth,
    }
    coords.update({"time": ("time", pulse.times, {"units": "s", "long_name": "time after the end of the pulse"}),
                   "calibration_D": ("calibration", cal.D, {"units": "m^2/s"})})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(_provenance(config, material, settings))
    ds.attrs.update({"title": "synthetic ESM relaxation spectroscopy (esmsim)",
                     "pulse_voltage_V": pulse.voltage, "pulse_duration_s": pulse.duration, "after_pulse": pulse.after,
                     "n_factorised_windows": res.n_solves, "wall_time_s": res.seconds,
                     "model": ("voxel volume (the volume engine's windows, full tensors, boundary slabs on the "
                               "tessellation's planes); " if volume else "") +
                              "potentiostatic pulse, then open circuit or grounded tip; time-domain windows (no "
                              "sub-grid boundary layers) reduced by rational Krylov projection; isotropic Vegard "
                              "(trace/3), Mindlin; D_fit from the decay shape against homogeneous isotropic "
                              "(columnar) films"})
    return _write_run(config, ds, out, relaxation_figure, t0, f"{material.name}, {pulse.voltage:g} V for "
                      f"{pulse.duration * 1e3:g} ms, D_gb/D = {material['gb_enhancement']:g}")


def _tip_frame(ms, material, ix, iy, on_points):
    """Dimensions, a (x, y) -> (y, x) transposer, the grain under each tip, the ground-truth variables at
    the tips and on the voxels, and the coordinates of point or map spectroscopy datasets."""
    xv, yv = ms.pixel_centers()
    if on_points:
        X, Y, grain = xv[ix], yv[iy], ms.labels[ix, iy]
        dims, tr = ("point",), (lambda a: a)
        coords = {"point": np.arange(len(X)), "x": ("point", X, {"units": "m"}), "y": ("point", Y, {"units": "m"})}
    else:
        X, Y = np.meshgrid(xv[ix], yv[iy], indexing="ij")
        grain = ms.labels[np.ix_(ix, iy)]
        dims, tr = ("y", "x"), (lambda a: np.swapaxes(a, 0, 1))
        coords = {"x": ("x", xv[ix], {"units": "m"}), "y": ("y", yv[iy], {"units": "m"})}
    coords.update({"x_voxel": ("x_voxel", xv, {"units": "m"}), "y_voxel": ("y_voxel", yv, {"units": "m"})})
    Dg = grain_diffusivities(ms, material)
    truth = {
        "D_zz": (dims, tr(Dg[grain, 2]), {"units": "m^2/s", "long_name": "out-of-plane bulk diffusivity n.D.n"}),
        "D_in_plane": (dims, tr(np.sqrt(Dg[grain, 0] * Dg[grain, 1])),
                       {"units": "m^2/s", "long_name": "sqrt(D_xx D_yy) of the grain under the tip"}),
        "grain_id": (dims, tr(grain), {"long_name": "grain under the tip (ground truth)"}),
        "boundary_distance": (dims, tr(ms.boundary_distance(X, Y)),
                              {"units": "m", "long_name": "distance from the tip to the nearest grain boundary"}),
        "c_axis_inclination": (dims, tr(ms.c_axis_inclination[grain]),
                               {"units": "rad", "long_name": "angle of the grain's c axis to the surface normal"}),
        "grain_labels": (("y_voxel", "x_voxel"), ms.labels.T, {"long_name": "grain id of each column"}),
        "boundary_mask": (("y_voxel", "x_voxel"),
                          boundary_mask(ms.labels, periodic=ms.periodic).T,
                          {"long_name": "1 on pixels next to a grain boundary"}),
    }
    return dims, tr, grain, truth, coords


def _provenance(config, material, settings) -> dict:
    from .io import SIGN_CONVENTION

    return {"esmsim_version": __version__, "sign_convention": SIGN_CONVENTION, "material": material.name,
            "material_parameters": {k: {"value": p.value, "unit": p.unit, "source": p.source}
                                    for k, p in material.parameters.items()},
            "config": config.source, "config_si": json.loads(json.dumps(config.values)),
            "seed": config["simulation"]["seed"], "tip_profile": settings.tip_profile,
            "tip_width_m": settings.tip_width, "host": platform.node()}


def _voltage_run(config, ms, material, settings, out, workers, t0, progress) -> RunOutput:
    """``excitation.mode = "voltage_spectroscopy"``: hysteresis loops under a DC staircase with the
    nonlinear Butler-Volmer tip, at ``voltage.points`` or over the scan pixels, with loop metrics."""
    import xarray as xr

    from .io import loop_figure
    from .probe import VoltageSweep, loop_metrics, voltage_spectroscopy

    vs = config["voltage"]
    sweep = VoltageSweep(amplitude=vs["amplitude"], steps=vs["steps"], cycles=vs["cycles"], step_time=vs["step_time"],
                         off_time=vs["off_time"], j0=vs["j0"], alpha_a=vs["alpha_a"], alpha_c=vs["alpha_c"],
                         temperature=vs["temperature"], f_min=vs["f_min"])
    on_points = vs["points"] is not None
    if on_points:
        volts, loops, ix, iy = voltage_spectroscopy(ms, material, settings, sweep,
                                                    points=_voxel_index(ms, vs["points"]), workers=workers)
    else:
        volts, loops, ix, iy = voltage_spectroscopy(ms, material, settings, sweep, pixels=config["scan"]["pixels"],
                                                    workers=workers, progress=progress)
    dims, tr, grain, truth, coords = _tip_frame(ms, material, ix, iy, on_points)
    ds_ = dims + ("step",)
    met = loop_metrics(volts, loops[..., 1, :])
    data = {
        "on_field": (ds_, tr(loops[..., 0, :]), {"units": "m", "long_name": "outward displacement at the end of "
                                                                            "each DC step (bias on)"}),
        "off_field": (ds_, tr(loops[..., 1, :]), {"units": "m", "long_name": "outward displacement after each "
                                                                              "step's 0 V read (remanent)"}),
        "li_added": (ds_, tr(loops[..., 2, :]), {"units": "mol", "long_name": "Li added under the tip"}),
        "threshold_voltage": (dims, tr(met["threshold"]), {"units": "V", "long_name": "first rising-branch bias "
                              "where the off-field loop exceeds 10 % of its largest magnitude"}),
        "remanent": (dims, tr(met["remanent"]), {"units": "m", "long_name": "off-field response at 0 V after "
                     "+V_max minus after -V_max"}),
        "loop_area": (dims, tr(met["area"]), {"units": "V m", "long_name": "signed area of the off-field loop"}),
        **truth,
    }
    coords["dc_bias"] = ("step", volts, {"units": "V", "long_name": "DC bias of each on step"})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(_provenance(config, material, settings))
    ds.attrs.update({"title": "synthetic ESM voltage spectroscopy (esmsim)", "j0_A_per_m2": sweep.j0,
                     "step_time_s": sweep.step_time, "off_time_s": sweep.off_time, "wall_time_s": time.perf_counter() - t0,
                     "model": "triangular DC staircase with 0 V reads; nonlinear Butler-Volmer on the tip's surface "
                              "cells (linear OCV slope), no flux elsewhere; bulk reduced by block rational Krylov "
                              "projection, Radau IIA in time; isotropic Vegard (trace/3), Mindlin"})
    return _write_run(config, ds, out, loop_figure, t0, f"{material.name}, +-{sweep.amplitude:g} V, "
                      f"j0 = {sweep.j0:g} A/m², D_gb/D = {material['gb_enhancement']:g}")


def _write_run(config, ds, out, figure, t0, title) -> RunOutput:
    """Write a spectroscopy dataset (NetCDF) and, when the config asks, its figure."""
    from .io import write_netcdf

    name = config["simulation"]["name"]
    nc = write_netcdf(ds, out / f"{name}.nc")
    fig = figure(ds, out / f"{name}.png", title=f"{name}: {title}") if config["output"]["figure"] else None
    return RunOutput(ds, nc, fig, time.perf_counter() - t0)
