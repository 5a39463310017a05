"""Score a simple grain-boundary detector on synthetic band-excitation images against the ground truth.

    esmsim sweep examples/training_set.toml --out training_store
    python examples/score_gb_detector.py training_store --csv scores.csv

For every image of ``STORE/sweep.nc`` (by default ``sho_amplitude``: the SHO amplitude fitted to the
recorded, noisy band-excitation spectra, in V) a detector marks boundary pixels, and they are
compared with the ground truth ``boundary_mask`` carried onto the tip grid (as in
``plot_gb_contrast.py``: a tip is a boundary tip when a boundary voxel centre is within half a tip
pitch; the mask completed from ``grain_labels`` where it misses grain 0's side and the periodic seam;
on a periodic film distances wrap around). With a tolerance of ``t`` pixels (default 1):

    precision = (detected pixels within t of a true boundary pixel) / (detected pixels)
    recall    = (true boundary pixels within t of a detected pixel) / (true boundary pixels)
    F1        = 2 precision recall / (precision + recall)

(Euclidean distances between pixel centres; an empty detection has precision 0.) The table has one
row per image (its sweep fields, the counts, the scores, and ``chance_f1``: the F1 of a detector that
marks every pixel, which is what the density of boundaries alone gives) and a pooled row ``all``
(counts summed over the images). It is printed and, with ``--csv``, written.

Detectors (``--method``):

- ``sato`` (default): the bright-ridge filter ``skimage.filters.sato`` (sigma 1 px) on the log of the
  image, thresholded at Otsu's level;
- ``meijering``: the same with ``skimage.filters.meijering``;
- ``threshold``: Otsu's threshold on the log of the image itself;
- ``watershed``: ``esmsim.microstructure.segment_grains(boundaries="bright")`` and the inner boundaries
  of its grains;
- ``truth``: the ground truth itself (a check of the scorer: F1 = 1).

Non-finite or non-positive pixels (an SHO fit that failed on a very noisy spectrum) are set to the
image's median, and the image is clipped to its 1st-99th percentiles before any detector sees it.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # the sibling example holds the ground-truth helpers
    sys.path.insert(0, _HERE)
from plot_gb_contrast import boundaries_on_tips, distance_to, is_periodic  # noqa: E402

METHODS = ("sato", "meijering", "threshold", "watershed", "truth")


def clean(image) -> np.ndarray:
    """The image with non-finite and non-positive pixels set to its median, clipped to its 1st-99th percentiles."""
    img = np.asarray(image, float)
    ok = np.isfinite(img) & (img > 0)
    if not ok.any():
        raise ValueError("image: no finite positive pixel")
    img = np.where(ok, img, np.median(img[ok]))
    lo, hi = np.percentile(img, [1, 99])
    return np.clip(img, lo, hi)


def detect(image, *, method: str = "sato", spacing: float, wrap: bool = False) -> np.ndarray:
    """Boundary pixels of an image whose boundaries are bright.

    Parameters
    ----------
    image : array_like, shape (rows, cols)
        E.g. the fitted SHO amplitude (V) or the ESM amplitude (m/V); positive.
    method : {"sato", "meijering", "threshold", "watershed"}
        See the module docstring.
    spacing : float
        Pixel size in m (the watershed's smallest grain is 4 pixels across).
    wrap : bool
        The image is periodic (ridge filters wrap around).

    Returns
    -------
    ndarray of bool, shape (rows, cols)
    """
    from skimage.filters import meijering, sato, threshold_otsu

    img = clean(image)
    z = np.log(img)
    if method in ("sato", "meijering"):
        ridge = (sato if method == "sato" else meijering)(z, sigmas=(1,), black_ridges=False,
                                                          mode="wrap" if wrap else "reflect")
        return ridge > threshold_otsu(ridge)
    if method == "threshold":
        return z > threshold_otsu(z)
    if method == "watershed":
        from skimage.segmentation import find_boundaries

        from esmsim.microstructure import segment_grains

        labels = segment_grains(img, spacing=spacing, boundaries="bright", min_grain_size=4 * spacing)
        return find_boundaries(labels, mode="inner", connectivity=1)
    raise ValueError(f"method: got {method!r}; allowed: {', '.join(METHODS)}")


def match(predicted, truth, *, tolerance: float = 1.0, wrap: bool = False) -> dict:
    """Counts of a boundary detection against the truth with a tolerance in pixels.

    Returns a dict: ``n_true``, ``n_detected``, ``detected_matched`` (detected pixels within
    ``tolerance`` of a true one), ``true_matched`` (true pixels within ``tolerance`` of a detected one).
    """
    pred, true = np.asarray(predicted, bool), np.asarray(truth, bool)
    if pred.shape != true.shape:
        raise ValueError(f"predicted: got shape {pred.shape}; expected the truth's {true.shape}")
    tol = tolerance * (1 + 1e-9)
    d_true = distance_to(true, 1.0, wrap=wrap) if true.any() else np.full(true.shape, np.inf)
    d_pred = distance_to(pred, 1.0, wrap=wrap) if pred.any() else np.full(pred.shape, np.inf)
    return {"n_true": int(true.sum()), "n_detected": int(pred.sum()),
            "detected_matched": int((pred & (d_true <= tol)).sum()), "true_matched": int((true & (d_pred <= tol)).sum())}


def scores(counts: dict) -> dict:
    """Precision, recall and F1 from :func:`match`'s counts (0 where undefined)."""
    p = counts["detected_matched"] / counts["n_detected"] if counts["n_detected"] else 0.0
    r = counts["true_matched"] / counts["n_true"] if counts["n_true"] else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r > 0 else 0.0}


def score_store(store, *, method: str = "sato", image: str = "sho_amplitude", tolerance: float = 1.0) -> list[dict]:
    """Run the detector on every image of ``STORE/sweep.nc`` and score it; the last row pools all images.

    Returns
    -------
    list of dict
        One row per point (``point``, ``run``, each sweep field in SI units, ``n_true``, ``n_detected``,
        ``precision``, ``recall``, ``f1``, ``chance_f1``), then the row ``point = "all"``.
    """
    from esmsim.io import read_netcdf

    if method not in METHODS:
        raise ValueError(f"method: got {method!r}; allowed: {', '.join(METHODS)}")
    store = Path(store)
    ds = read_netcdf(store / "sweep.nc")
    if image not in ds:
        raise KeyError(f"{image!r} is not in {store / 'sweep.nc'}; variables: {', '.join(ds.data_vars)}")
    fields = list(ds.attrs.get("sweep_fields", []))
    rows, total, total_chance = [], None, None
    for i in range(ds.sizes["point"]):
        point = ds.isel(point=i)
        run = str(point["run"].values)
        truth, pitch, wraps = boundaries_on_tips(point, periodic=is_periodic(store, run))
        img = np.asarray(point[image].values, float)
        pred = truth.copy() if method == "truth" else detect(img, method=method, spacing=max(pitch), wrap=wraps)
        counts = match(pred, truth, tolerance=tolerance, wrap=wraps)
        chance = match(np.ones_like(truth), truth, tolerance=tolerance, wrap=wraps)
        row = {"point": int(point["point"].values), "run": run}
        for f in fields:
            if f in point.coords and point[f].ndim == 0:
                row[f] = point[f].values.item()
        rows.append({**row, **counts, **scores(counts), "chance_f1": scores(chance)["f1"]})
        total = counts if total is None else {k: total[k] + v for k, v in counts.items()}
        total_chance = chance if total_chance is None else {k: total_chance[k] + v for k, v in chance.items()}
    rows.append({"point": "all", "run": "", **{f: "" for f in fields if f in rows[0]}, **total, **scores(total),
                 "chance_f1": scores(total_chance)["f1"]})
    return rows


def format_table(rows: list[dict]) -> str:
    fields = [k for k in rows[0] if k not in ("point", "run", "n_true", "n_detected", "detected_matched",
                                               "true_matched", "precision", "recall", "f1", "chance_f1")]
    short = {"simulation.seed": "seed", "microstructure.grain_size": "grain (nm)",
             "material.gb_enhancement": "Dgb/Dab", "artefacts.detector_noise": "noise (fm/rtHz)"}
    scale = {"microstructure.grain_size": 1e9, "artefacts.detector_noise": 1e15}
    head = [f"{'point':>5}"] + [f"{short.get(f, f):>15}" for f in fields] + \
        [f"{'true':>5} {'found':>5} {'precision':>9} {'recall':>6} {'F1':>5} {'chance F1':>9}"]
    lines = [" ".join(head)]
    for r in rows:
        cells = [f"{r['point']!s:>5}"]
        for f in fields:
            v = r[f]
            if isinstance(v, int):
                cells.append(f"{v:>15d}")
            elif isinstance(v, float):
                cells.append(f"{v * scale.get(f, 1):>15.4g}")
            else:
                cells.append(f"{v!s:>15}")
        cells.append(f"{r['n_true']:>5} {r['n_detected']:>5} {r['precision']:>9.3f} {r['recall']:>6.3f} "
                     f"{r['f1']:>5.3f} {r['chance_f1']:>9.3f}")
        lines.append(" ".join(cells))
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    """Command line: ``score_gb_detector.py STORE [--method M] [--image VAR] [--tolerance PX] [--csv FILE]``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("store", help="sweep store (esmsim sweep ... --out STORE)")
    p.add_argument("--method", default="sato", choices=METHODS, help="detector (default sato)")
    p.add_argument("--image", default="sho_amplitude",
                   help="image variable (default sho_amplitude: fitted to the noisy spectra; sho_amplitude_true is "
                        "the clean ground truth, amplitude the Li response in m/V)")
    p.add_argument("--tolerance", type=float, default=1.0, help="matching tolerance in pixels (default 1)")
    p.add_argument("--csv", default=None, help="also write the table to this CSV file")
    args = p.parse_args(argv)
    rows = score_store(args.store, method=args.method, image=args.image, tolerance=args.tolerance)
    print(f"detector {args.method} on {args.image}, tolerance {args.tolerance:g} px")
    print(format_table(rows))
    if args.csv:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(args.csv, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {args.csv}")
    return rows


if __name__ == "__main__":
    main()
