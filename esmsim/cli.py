"""The ``esmsim`` command.

    esmsim demo [--out DIR]            run the built-in demo (figure + dataset)
    esmsim run CONFIG [--out DIR]      run a simulation described by a TOML file
    esmsim validate [--fast] [--out DIR]  run the validation cases, write a report
    esmsim microstructure RECIPE [--out DIR]  build a film, write its ground truth and a PNG
    esmsim sweep SPEC --out STORE [--workers N] [--scheduler ADDRESS | --local-cluster N]
                                       run a parameter sweep into a result store (resumable)
    esmsim materials [NAME]            list parameter sets with units and sources
    esmsim compare SIMULATED MEASURED [--out DIR] [--channel NAME] [--simulated-var NAME]
                                       register a measured map onto a simulated one, write figure + metrics

User mistakes (bad config, unknown key, wrong unit) print one line naming the
field and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources

from ._errors import EsmsimError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="esmsim", description="Simulate electrochemical strain microscopy of cathodes.")
    p.add_argument("--version", action="version", version=f"esmsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the built-in demo and write a figure and a dataset")
    d.add_argument("--out", default=None, help="output folder (default: esmsim-demo)")
    d.add_argument("--workers", type=int, default=None, help="worker processes (default: one per CPU)")
    r = sub.add_parser("run", help="run a simulation described by a TOML config")
    r.add_argument("config", help="path to the TOML config")
    r.add_argument("--out", default=None, help="output folder (default: [output] directory of the config)")
    r.add_argument("--workers", type=int, default=None, help="worker processes")
    r.add_argument("--scheduler", default=None, help="Dask scheduler address: run the map on that cluster")
    v = sub.add_parser("validate", help="run the validation cases against closed-form results")
    v.add_argument("--fast", action="store_true", help="only the fast subset (as in CI)")
    v.add_argument("--out", default="esmsim-validation", help="report folder (default: esmsim-validation)")
    v.add_argument("--case", action="append", default=None, help="run only this case (repeatable)")
    ms = sub.add_parser("microstructure", help="build a recipe's microstructure and write its ground truth and a PNG")
    ms.add_argument("recipe", help="recipe or config TOML (its [microstructure] and [material] sections are used)")
    ms.add_argument("--out", default=None, help="output folder (default: [output] directory of the recipe)")
    sw = sub.add_parser("sweep", help="run a parameter sweep (TOML spec) into a result store; reruns resume")
    sw.add_argument("spec", help="sweep spec TOML: [base] config and [[axis]] tables (docs/sweep.md)")
    sw.add_argument("--out", required=True, help="result store folder (runs/, sweep.nc); finished runs are skipped")
    sw.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per CPU)")
    where = sw.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="Dask scheduler address: run the points on that cluster")
    where.add_argument("--local-cluster", type=int, default=None, metavar="N",
                       help="start a Dask LocalCluster of N single-threaded workers and run there")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    cp = sub.add_parser("compare", help="register a measured map onto a simulated one; write a figure and metrics")
    cp.add_argument("simulated", help="esmsim NetCDF (.nc) or any measured file (.ibw, .gwy, .h5, ...)")
    cp.add_argument("measured", help="measured file, or an esmsim NetCDF (a synthetic measurement)")
    cp.add_argument("--out", default="esmsim-compare", help="output folder (default: esmsim-compare)")
    cp.add_argument("--channel", default=None, help="variable of MEASURED (default: the simulated variable's name "
                                                    "if present, else its first amplitude channel)")
    cp.add_argument("--simulated-var", default="amplitude", help="variable of SIMULATED (default: amplitude)")
    cp.add_argument("--no-register", action="store_true", help="only resample about the common centre")
    m = sub.add_parser("materials", help="list the material parameter sets")
    m.add_argument("name", nargs="?", default=None)
    return p


def _run_config(config, out, workers, scheduler=None) -> int:
    import numpy as np

    from .simulation import run

    res = run(config, out_dir=out, workers=workers, progress=sys.stderr.isatty(), scheduler=scheduler)
    ds = res.dataset
    if "D_fit" in ds:
        D, truth = ds["D_fit"].values, ds["D_single_crystal"].values
        ok = np.isfinite(D)
        print(f"esmsim: relaxation at {D.size} tip positions x {ds.sizes['time']} times in {res.seconds:.1f} s; "
              f"D_fit {np.nanmin(D) if ok.any() else np.nan:.3g} .. {np.nanmax(D) if ok.any() else np.nan:.3g} m^2/s "
              f"({int((~ok).sum())} outside the calibration range); single-crystal truth "
              f"{np.nanmin(truth):.3g} .. {np.nanmax(truth):.3g} m^2/s")
    elif "off_field" in ds:
        rem = ds["remanent"].values * 1e12
        print(f"esmsim: voltage loops at {rem.size} tip positions x {ds.sizes['step']} steps in {res.seconds:.1f} s; "
              f"remanent response {np.nanmin(rem):.3g} .. {np.nanmax(rem):.3g} pm, threshold "
              f"{np.nanmin(ds['threshold_voltage'].values):.3g} .. {np.nanmax(ds['threshold_voltage'].values):.3g} V")
    else:
        _amplitude_summary(ds, res.seconds)
    for what, path in (("dataset", res.netcdf), ("USID", res.usid), ("images", res.gwy), ("images", res.ibw),
                       ("figure", res.figure)):
        if path is not None:
            print(f"esmsim: wrote {what:<7} {path}")
    return 0


def _amplitude_summary(ds, seconds):
    import numpy as np

    amp = ds["amplitude"].values * 1e12
    if "point" in ds.dims:
        print(f"esmsim: spectroscopy at {amp.shape[0]} points x {amp.shape[1]} frequencies in {seconds:.1f} s; "
              f"amplitude {amp.min():.3g} .. {amp.max():.3g} pm/V")
    else:
        print(f"esmsim: map of {amp.shape[1]} x {amp.shape[0]} tip positions in {seconds:.1f} s; "
              f"amplitude {amp.min():.3g} .. {amp.max():.3g} pm/V (median {float(np.median(amp)):.3g})")
    if "sho_frequency" in ds:
        f0 = ds["sho_frequency"].values / 1e3
        print(f"esmsim: band excitation around {ds.attrs['band_center_Hz'] / 1e3:.4g} kHz; fitted f0 "
              f"{np.nanmin(f0):.4g} .. {np.nanmax(f0):.4g} kHz, Q median "
              f"{float(np.nanmedian(ds['sho_quality'].values)):.3g}")


def main(argv=None) -> int:
    """Entry point of the ``esmsim`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from .config import parse_config, tomllib

            text = resources.files("esmsim").joinpath("data/demo.toml").read_text(encoding="utf-8")
            cfg = parse_config(tomllib.loads(text))
            return _run_config(cfg, args.out if args.out else cfg["output"]["directory"], args.workers)
        if args.command == "run":
            from .config import load_config

            return _run_config(load_config(args.config), args.out, args.workers, args.scheduler)
        if args.command == "validate":
            try:
                from esmsim_validation import run_validation
            except ImportError:  # running from a source checkout without installing
                try:
                    from validation import run_validation
                except ImportError:
                    raise EsmsimError("validate: the validation cases are not installed; reinstall esmsim "
                                      "(pip install .) or run `python -m validation` in a source checkout") from None
            return run_validation(out_dir=args.out, fast=args.fast, cases=args.case)
        if args.command == "microstructure":
            from .config import load_config
            from .simulation import write_microstructure

            nc, png = write_microstructure(load_config(args.recipe), out_dir=args.out)
            print(f"esmsim: wrote ground truth {nc}")
            print(f"esmsim: wrote figure       {png}")
            return 0
        if args.command == "sweep":
            from .sweep import run_sweep

            summary = run_sweep(args.spec, args.out, workers=args.workers, scheduler=args.scheduler,
                                local_cluster=args.local_cluster, progress=not args.no_progress)
            print(summary)
            return 1 if summary.failed else 0
        if args.command == "compare":
            from .compare import compare

            res = compare(args.simulated, args.measured, simulated_var=args.simulated_var, channel=args.channel,
                          out_dir=args.out, register=not args.no_register)
            print(res.table())
            for kind, path in res.files.items():
                print(f"esmsim: wrote {kind:6s} {path}")
            return 0
        if args.command == "materials":
            from .materials import MATERIALS, get_material

            for mat in ([get_material(args.name)] if args.name else MATERIALS.values()):
                print(mat.table())
            return 0
    except EsmsimError as exc:
        print(f"esmsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("esmsim: interrupted", file=sys.stderr)
        return 130
    return 1  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
