"""Parameter sweeps: spec expansion, validation before running, local and Dask runners, store, resume.

Each run is a 4 x 4 single-frequency map of a 40 nm film (about a second); the runners' results are
compared with each other and with a direct :func:`esmsim.simulation.run` bit for bit.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import xarray as xr

from esmsim._errors import ConfigError
from esmsim.config import parse_config, tomllib
from esmsim.io import read_netcdf
from esmsim.sweep import expand, load_spec, points_from_configs, run_hash, run_sweep

BASE = """
[base.simulation]
name = "tiny"
seed = 4
[base.microstructure]
size = ["40 nm", "40 nm"]
thickness = "40 nm"
grain_size = "20 nm"
[base.scan]
pixels = [4, 4]
"""

SPEC = BASE + """
[[axis]]
field = "material.gb_enhancement"
values = [1e2, 1e4]
[[axis]]
field = "tip.width"
values = ["5 nm", "10 nm"]
"""

BASE_DICT = tomllib.loads(BASE)["base"]


def _spec(*axes, **top):
    return {"base": json.loads(json.dumps(BASE_DICT)), "axis": list(axes), **top}


def _cli(*args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "esmsim", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, **kw)


# ------------------------------------------------------------------------------------------------ spec


def test_product_order_values_and_si():
    points = expand(tomllib.loads(SPEC))
    assert [p.index for p in points] == [0, 1, 2, 3]
    # product: the last axis varies fastest
    assert [(p.values["material.gb_enhancement"], p.values["tip.width"]) for p in points] == [
        (1e2, "5 nm"), (1e2, "10 nm"), (1e4, "5 nm"), (1e4, "10 nm")]
    assert [p.si["tip.width"] for p in points] == pytest.approx([5e-9, 10e-9, 5e-9, 10e-9], rel=1e-12)
    # the field lands where the config keeps it, and the parsed config has it in SI
    assert points[2].config.source["material"]["overrides"] == {"gb_enhancement": 1e4}
    assert points[2].config.material()["gb_enhancement"] == 1e4
    assert points[1].config["tip"]["width"] == pytest.approx(10e-9, rel=1e-12)
    assert len({p.key for p in points}) == 4


def test_zip_linspace_and_integer_fields():
    spec = _spec({"field": "excitation.frequency", "linspace": {"start": "100 kHz", "stop": "300 kHz", "num": 3}},
                 {"field": "numerics.tile", "linspace": {"start": 4, "stop": 8, "num": 3}},
                 {"field": "simulation.seed", "values": [1, 2, 3]}, combine="zip")
    points = expand(spec)
    assert [p.si["excitation.frequency"] for p in points] == pytest.approx([1e5, 2e5, 3e5], rel=1e-12)
    assert [p.config["numerics"]["tile"] for p in points] == [4, 6, 8]
    assert all(isinstance(p.values["numerics.tile"], int) for p in points)
    assert [p.config["simulation"]["seed"] for p in points] == [1, 2, 3]


def test_logspace_takes_values_not_exponents_and_units():
    spec = _spec({"field": "excitation.frequency", "logspace": {"start": "1 kHz", "stop": 1e6, "num": 4}},
                 {"field": "material.overrides.D_ab", "logspace": {"start": "1e-15 m^2/s", "stop": 1e-13, "num": 3}})
    points = expand(spec)
    assert len(points) == 12
    f = sorted({p.si["excitation.frequency"] for p in points})
    np.testing.assert_allclose(f, [1e3, 1e4, 1e5, 1e6], rtol=1e-12)
    d = sorted({p.config.material()["D_ab"] for p in points})
    np.testing.assert_allclose(d, [1e-15, 1e-14, 1e-13], rtol=1e-12)


def test_random_and_latin_hypercube_reproducible_with_seed():
    lhs = {"latin_hypercube": {"num": 8, "fields": {
        "material.gb_enhancement": {"low": 1e2, "high": 1e4, "log": True},
        "tip.width": {"low": "5 nm", "high": "20 nm"}}}}
    rnd = {"field": "excitation.frequency", "random": {"low": "100 kHz", "high": "1 MHz", "num": 2, "log": True}}

    def draw(seed):
        return [(p.si["material.gb_enhancement"], p.si["tip.width"], p.si["excitation.frequency"])
                for p in expand(_spec(lhs, rnd, seed=seed))]

    a, b, c = draw(1), draw(1), draw(2)
    assert a == b and a != c and len(a) == 16
    g = np.array([x[0] for x in a[::2]])
    w = np.array([x[1] for x in a[::2]])
    # Latin hypercube: one sample in each of the 8 strata of every field (in log space for a log field)
    assert sorted(np.floor((np.log(g) - np.log(1e2)) / np.log(1e2) * 8).astype(int)) == list(range(8))
    assert sorted(np.floor((w - 5e-9) / 15e-9 * 8).astype(int)) == list(range(8))
    f = np.array([x[2] for x in a[:2]])
    assert np.all((f >= 1e5) & (f <= 1e6))


def test_base_from_a_file_relative_to_the_spec(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "film.toml").write_text(BASE.replace("base.", ""))
    (tmp_path / "spec.toml").write_text('base = "cfg/film.toml"\n[[axis]]\nfield = "tip.width"\n'
                                        'values = ["5 nm", "8 nm"]\n')
    spec = load_spec(tmp_path / "spec.toml")
    assert spec.base["microstructure"]["size"] == ["40 nm", "40 nm"]
    assert [p.config["microstructure"]["size"] for p in expand(spec)] == [(40e-9, 40e-9)] * 2


def test_hash_is_of_the_si_config_not_its_spelling():
    a = parse_config({**BASE_DICT, "material": {"overrides": {"D_ab": "1e-14 m^2/s"}}})
    b = parse_config({**BASE_DICT, "material": {"overrides": {"D_ab": 1e-14}},
                      "output": {"directory": "elsewhere", "figure": False}, "numerics": {"workers": 3}})
    c = parse_config({**BASE_DICT, "material": {"overrides": {"D_ab": 2e-14}}})
    assert run_hash(a) == run_hash(b) != run_hash(c)
    assert len(run_hash(a)) == 64


def test_list_of_configs_takes_the_differing_fields_as_coordinates():
    cfgs = [{**BASE_DICT, "tip": {"width": w}} for w in ("5 nm", "7 nm")]
    points = points_from_configs(cfgs)
    assert [p.values for p in points] == [{"tip.width": "5 nm"}, {"tip.width": "7 nm"}]
    assert points[1].si["tip.width"] == pytest.approx(7e-9, rel=1e-12)


def test_docstring_examples():
    import doctest

    import esmsim.sweep
    import esmsim.sweep._spec

    for mod in (esmsim.sweep, esmsim.sweep._spec):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, mod.__name__


@pytest.mark.parametrize("change,field,words", [
    (dict(axis=[{"field": "tip.widht", "values": ["5 nm"]}]), "axis[0].field", ["did you mean 'tip.width'"]),
    (dict(axis=[{"field": "material.gb_enhancment", "values": [1.0]}]), "axis[0].field",
     ["'material.gb_enhancement'"]),
    (dict(axis=[{"field": "tip.width", "values": []}]), "axis[0].values", ["empty", "tip.width"]),
    (dict(axis=[{"field": "tip.width", "values": ["5 nm", "10 nm"]},
                {"field": "tip.radius", "values": ["20 nm"]}], combine="zip"), "combine",
     ["equal length", "axis[0] (tip.width) 2", "axis[1] (tip.radius) 1"]),
    (dict(axis=[{"field": "tip.width", "values": ["5 nm", "10 kHz"]}]), "tip.width",
     ["'10 kHz'", "expected a length", "sweep point 1"]),
    (dict(axis=[{"field": "material.gb_enhancement", "values": [10.0, -1.0]}]),
     "material.overrides.gb_enhancement", ["got -1", "allowed range", "sweep point 1"]),
    (dict(axis=[{"field": "tip.width", "values": ["5 nm"], "linspace": {"start": 1, "stop": 2, "num": 2}}]),
     "axis[0]", ["values and linspace", "exactly one"]),
    (dict(axis=[{"field": "tip.profile", "linspace": {"start": 1, "stop": 2, "num": 2}}]),
     "axis[0].linspace.start", ["choice field", "values = [...]"]),
    (dict(axis=[{"field": "tip.width", "linspace": {"start": "5 nm", "stop": "9 nm"}}]),
     "axis[0].linspace", ["missing num"]),
    (dict(axis=[{"field": "tip.width", "logspace": {"start": 0, "stop": "9 nm", "num": 3}}]),
     "axis[0].logspace", ["positive"]),
    (dict(axis=[{"field": "numerics.tile", "linspace": {"start": 4, "stop": 8, "num": 4}}]),
     "axis[0].linspace", ["integer field"]),
    (dict(axis=[{"field": "tip.width", "values": ["5 nm", "5e-9 m"]}]), "axis", ["same simulation"]),
    (dict(axis=[{"field": "tip.width", "values": ["5 nm"]}, {"field": "tip.width", "values": ["6 nm"]}]),
     "axis[1]", ["axis[0] sets too"]),
    (dict(axis=[]), "axis", ["expected [[axis]]"]),
    (dict(axes=[{"field": "tip.width", "values": ["5 nm"]}]), "axes", ["did you mean 'axis'"]),
    (dict(axis=[{"field": "tip.width", "values": ["5 nm"]}], combine="outer"), "combine", ["product, zip"]),
])
def test_malformed_specs_fail_before_anything_runs(tmp_path, change, field, words):
    spec = {"base": json.loads(json.dumps(BASE_DICT)), **change}
    with pytest.raises(ConfigError) as info:
        run_sweep(spec, tmp_path / "store", progress=False)
    assert info.value.field == field, str(info.value)
    for w in words:
        assert w in str(info.value), str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "store").exists()


def test_cli_malformed_spec_is_one_line_exit_2(tmp_path):
    (tmp_path / "s.toml").write_text(BASE + '[[axis]]\nfield = "tip.widht"\nvalues = ["5 nm"]\n')
    p = _cli("sweep", "s.toml", "--out", "st", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [p.stderr.strip()]
    assert p.stderr.startswith("esmsim: error: axis[0].field: 'tip.widht' is not a config field; did you mean")
    assert not (tmp_path / "st").exists()


# ------------------------------------------------------------------------------------------------ runs


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 4-point sweep, uninterrupted, on 2 local processes."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "spec.toml").write_text(SPEC)
    summary = run_sweep(root / "spec.toml", root / "store", workers=2, progress=False)
    return root, summary, read_netcdf(root / "store" / "sweep.nc")


def _assert_same_sweep(a, b):
    xr.testing.assert_identical(a, b)
    assert a.attrs == b.attrs
    for name in a.data_vars:  # bit for bit
        assert a[name].values.tobytes() == b[name].values.tobytes(), name


def test_local_sweep_store_and_dataset(reference):
    root, summary, ds = reference
    assert (summary.succeeded, summary.failed, summary.skipped) == (4, [], 0)
    assert summary.dataset == root / "store" / "sweep.nc"
    assert "4 ran (4 ok, 0 failed), 0 skipped" in str(summary)
    points = expand(load_spec(root / "spec.toml"))
    np.testing.assert_array_equal(ds["point"], [0, 1, 2, 3])
    assert list(ds["run"].values) == [p.key for p in points]
    np.testing.assert_allclose(ds["material.gb_enhancement"], [1e2, 1e2, 1e4, 1e4], rtol=1e-12)
    np.testing.assert_allclose(ds["tip.width"], [5e-9, 10e-9, 5e-9, 10e-9], rtol=1e-12)
    assert ds["amplitude"].dims == ("point", "y", "x") and ds["amplitude"].shape == (4, 4, 4)
    assert ds["amplitude"].attrs["units"] == "m/V"
    assert ds["grain_labels"].dims == ("point", "y_voxel", "x_voxel")
    assert ds["x"].dims == ("x",)  # the same scan in every run: one shared coordinate
    assert ds["frequency_Hz"].dims == ("point",) and "wall_time_s" not in ds
    np.testing.assert_allclose(ds["amplitude_mean"], ds["amplitude"].mean(("y", "x")), rtol=1e-12)
    # the sweep changes the physics: faster boundaries, larger response (D_gb/D = 1e4 vs 1e2)
    assert float(ds["amplitude_mean"][2]) > 1.5 * float(ds["amplitude_mean"][0])
    # each point's map is what a direct run of its config gives
    from esmsim.simulation import run

    direct = run(points[3].config, out_dir=root / "direct", workers=1)
    np.testing.assert_array_equal(ds["response_real"][3].values, direct.dataset["response_real"].values)
    # provenance
    prov = json.loads((root / "store" / "runs" / f"{points[3].key}.json").read_text())
    assert prov["status"] == "ok" and prov["error"] is None and prov["seconds"] > 0
    assert prov["values"] == {"material.gb_enhancement": 1e4, "tip.width": "10 nm"}
    assert prov["config"]["tip"]["width"] == "10 nm"
    assert prov["config_si"]["tip"]["width"] == pytest.approx(1e-8, rel=1e-12)
    assert prov["seed"] == 4 and prov["esmsim_version"] and prov["host"]
    run_ds = read_netcdf(root / "store" / "runs" / f"{points[3].key}.nc")
    assert run_ds.attrs["config"]["tip"]["width"] == "10 nm"
    manifest = json.loads((root / "store" / "sweep.json").read_text())
    assert [q["key"] for q in manifest["points"]] == [p.key for p in points]
    assert not list((root / "store").rglob("*.tmp"))


def test_resume_skips_finished_points_and_gives_the_same_dataset(reference, tmp_path):
    root, _, ds = reference
    store = tmp_path / "store"
    shutil.copytree(root / "store", store)
    keys = list(ds["run"].values)
    for k in keys[1:3]:  # as if the sweep had stopped with points 1 and 2 unfinished
        (store / "runs" / f"{k}.nc").unlink()
    (store / "sweep.nc").unlink()
    summary = run_sweep(root / "spec.toml", store, workers=2, progress=False)
    assert (summary.succeeded, summary.skipped, summary.failed) == (2, 2, [])
    _assert_same_sweep(read_netcdf(store / "sweep.nc"), ds)
    again = run_sweep(root / "spec.toml", store, workers=2, progress=False)
    assert (again.succeeded, again.skipped) == (0, 4)
    _assert_same_sweep(read_netcdf(store / "sweep.nc"), ds)


def test_failing_point_is_reported_and_the_rest_complete(tmp_path):
    # a scan larger than a non-periodic film passes validation and raises when the run places its tips
    (tmp_path / "s.toml").write_text(BASE.replace('grain_size = "20 nm"', 'grain_size = "20 nm"\nperiodic = false')
                                     + '[[axis]]\nfield = "scan.size"\nvalues = ["auto", ["80 nm", "80 nm"]]\n')
    p = _cli("sweep", "s.toml", "--out", "st", "--workers", "2", "--no-progress", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    out = p.stdout
    assert "2 ran (1 ok, 1 failed)" in out
    assert "failed point 1 (scan.size = ['80 nm', '80 nm']): ParameterError: scan.size: the scan" in out
    points = expand(load_spec(tmp_path / "s.toml"))
    prov = json.loads((tmp_path / "st" / "runs" / f"{points[1].key}.json").read_text())
    assert prov["status"] == "failed" and "ParameterError" in prov["error"] and "Traceback" in prov["traceback"]
    assert not (tmp_path / "st" / "runs" / f"{points[1].key}.nc").exists()
    ds = read_netcdf(tmp_path / "st" / "sweep.nc")
    assert list(ds["point"].values) == [0] and ds.attrs["failed_points"] == [1]
    assert ds["scan.size"].dims == ("point", "scan.size.component")
    assert np.isnan(ds["scan.size"].values).all()  # "auto" (None in SI: the whole film) is NaN


def test_interrupted_cli_sweep_resumes_to_the_uninterrupted_store(reference, tmp_path):
    root, _, ds = reference
    shutil.copy(root / "spec.toml", tmp_path / "spec.toml")
    # a shell's background job starts with SIGINT ignored, and Python keeps an inherited SIG_IGN: give the
    # sweep the default disposition so it sees Ctrl-C as a user would (the test failed when run from `cmd &`)
    proc = subprocess.Popen([sys.executable, "-m", "esmsim", "sweep", "spec.toml", "--out", "st", "--workers", "1",
                             "--no-progress"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list((tmp_path / "st" / "runs").glob("*.nc")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    n_done = len(list((tmp_path / "st" / "runs").glob("*.nc")))
    assert 1 <= n_done < 4
    assert not (tmp_path / "st" / "sweep.nc").exists()
    p = _cli("sweep", "spec.toml", "--out", "st", "--workers", "2", "--no-progress", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert f"{n_done} skipped" in p.stdout
    _assert_same_sweep(read_netcdf(tmp_path / "st" / "sweep.nc"), ds)
    assert not list((tmp_path / "st").rglob("*.tmp"))


def _dies_first(config, scratch):
    """Stands in for run_point in forked pool workers: the first call kills its process, later ones fail fast."""
    marker = os.environ["ESMSIM_TEST_MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return {"status": "failed", "netcdf": None, "error": "ran again", "traceback": None, "warnings": [],
            "host": None, "pid": os.getpid(), "started": None, "seconds": 0.0}


@pytest.mark.parametrize("retries,reason", [(1, "ran again"), (0, "the worker process died (1 try;")])
def test_a_dead_local_worker_is_retried(tmp_path, monkeypatch, retries, reason):
    import multiprocessing

    import esmsim.sweep._runner as runner

    if multiprocessing.get_start_method() != "fork":
        pytest.skip("the stand-in reaches the workers by fork")
    monkeypatch.setenv("ESMSIM_TEST_MARKER", str(tmp_path / "died"))
    monkeypatch.setattr(runner, "run_point", _dies_first)
    spec = _spec({"field": "tip.width", "values": ["5 nm"]})
    summary = run_sweep(spec, tmp_path / "store", workers=1, retries=retries, progress=False)
    assert (tmp_path / "died").exists()
    assert len(summary.failed) == 1 and summary.failed[0][1].startswith(reason), summary.failed


# ------------------------------------------------------------------------------------------------ Dask


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="Dask distributed comes with the test extra")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  host="127.0.0.1") as c:
        yield c


def test_dask_local_cluster_gives_the_local_result(reference, tmp_path):
    pytest.importorskip("distributed", reason="Dask distributed comes with the test extra")
    root, _, ds = reference
    summary = run_sweep(root / "spec.toml", tmp_path / "store", local_cluster=2, progress=False)
    assert (summary.succeeded, summary.failed, summary.skipped) == (4, [], 0)
    _assert_same_sweep(read_netcdf(tmp_path / "store" / "sweep.nc"), ds)
    prov = json.loads(next((tmp_path / "store" / "runs").glob("*.json")).read_text())
    assert prov["runner"] == "dask LocalCluster(2)" and prov["pid"] != os.getpid()


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    pytest.importorskip("distributed", reason="Dask distributed comes with the test extra")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), pytest.raises(ConfigError) as info:
        run_sweep(tomllib.loads(SPEC), tmp_path / "store", scheduler="tcp://127.0.0.1:9", progress=False)
    assert info.value.field == "scheduler" and "tcp://127.0.0.1:9" in str(info.value)


def test_a_worker_killed_during_a_dask_sweep_loses_nothing(cluster, tmp_path):
    from distributed import Client

    spec = tomllib.loads(SPEC.replace("seed = 4", "seed = 5"))  # other runs than the other tests'
    store = tmp_path / "store"
    box = {}

    def sweep():
        try:
            box["summary"] = run_sweep(spec, store, scheduler=cluster.scheduler_address, progress=False)
        except BaseException as exc:  # pragma: no cover - reported below
            box["error"] = exc

    with Client(cluster) as client:
        pids = client.run(os.getpid)
        thread = threading.Thread(target=sweep)
        thread.start()
        deadline = time.monotonic() + 120
        while not list(store.glob("runs/*.nc")) and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        n_at_kill = len(list(store.glob("runs/*.nc")))
        busy = {addr: keys for addr, keys in client.processing().items() if keys}
        victim = sorted(busy)[0]
        os.kill(pids[victim], signal.SIGKILL)  # the worker process dies with a point on it
        thread.join(300)
    assert not thread.is_alive() and "error" not in box, box.get("error")
    assert n_at_kill < 4 and busy[victim][0].startswith("esmsim-run-")
    summary = box["summary"]
    assert (summary.succeeded, summary.failed) == (4, [])
    assert len(list(store.glob("runs/*.nc"))) == 4
    assert json.loads(next(store.glob("runs/*.json")).read_text())["runner"] == cluster.scheduler_address
    lost = busy[victim][0].removeprefix("esmsim-run-")
    assert json.loads((store / "runs" / f"{lost}.json").read_text())["pid"] != pids[victim]  # run again elsewhere
    assert read_netcdf(store / "sweep.nc").sizes["point"] == 4


def test_summary_lists_runs_that_warned(tmp_path):
    # warnings raised inside a run are kept in its provenance and named in the summary the CLI prints
    from esmsim.sweep import SweepSummary

    class P:
        key = "abc"

        def describe(self):
            return "point 3 (material.gb_enhancement = 100)"

    s = SweepSummary(tmp_path, None, 4, 4, [], 0, 1.0, [(P(), ["ResolutionWarning: z cells too coarse"])])
    assert "warning point 3 (material.gb_enhancement = 100): ResolutionWarning: z cells too coarse" in str(s)


def test_assembly_holds_one_run_in_memory(tmp_path):
    """sweep.nc of 6 runs of 24 MB each (a float64 and an int32 map; 144 MB stacked): the runs are read
    one at a time and the stacked variables are written run by run, so the assembly's peak (Python
    allocations) stays near one run (measured 1.6 runs: the amplitude summary reads one map while the
    next is written); stacking in memory needs all six and their stacks (~12 runs). The file has every
    run in its place, and a variable whose type differs between runs takes their common type."""
    import tracemalloc

    from esmsim.io import write_netcdf
    from esmsim.sweep import Point, Store, assemble

    store = Store(tmp_path / "st")
    n, shape = 6, (1000, 2000)
    points = []
    for k in range(n):
        key = f"run{k}"
        ds = xr.Dataset({"amplitude": (("y", "x"), np.full(shape, float(k)), {"units": "m/V"}),
                         "label": (("y", "x"), np.full(shape, k, np.int32))},
                        coords={"x": np.arange(shape[1]), "y": np.arange(shape[0])},
                        attrs={"frequency_Hz": 1e5 * (k + 1), "config": {"k": k}})
        write_netcdf(ds, store.nc(key))
        points.append(Point(k, {"tip.width": f"{k + 1} nm"}, {"tip.width": (k + 1) * 1e-9}, None, key))
    run_bytes = (8 + 4) * np.prod(shape)
    tracemalloc.start()
    path = assemble(points, store)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2.5 * run_bytes, f"peak {peak / 2**20:.0f} MB for runs of {run_bytes / 2**20:.0f} MB"
    with xr.open_dataset(path, engine="h5netcdf") as out:
        assert out["amplitude"].dims == ("point", "y", "x") and out["amplitude"].shape == (n, *shape)
        assert out.attrs["not_stacked"] == "json:[]"
        for k in (0, 3, 5):
            assert np.all(out["amplitude"][k].values == k) and np.all(out["label"][k].values == k)
        assert out["label"].dtype == np.int32 and out["amplitude"].attrs["units"] == "m/V"
    # a variable whose type differs between runs takes their common type (int32 and float64: float64)
    write_netcdf(read_netcdf(store.nc("run5")).assign(label=lambda d: d["label"].astype(float) + 0.5),
                 store.nc("run5"))
    with xr.open_dataset(assemble(points, store), engine="h5netcdf") as out:
        assert out["label"].dtype == np.float64
        assert float(out["label"][0, 0, 0]) == 0.0 and float(out["label"][5, 0, 0]) == 5.5
        np.testing.assert_allclose(out["frequency_Hz"], 1e5 * np.arange(1, n + 1))
        np.testing.assert_allclose(out["amplitude_mean"], np.arange(n))
        np.testing.assert_allclose(out["tip.width"], np.arange(1, n + 1) * 1e-9)
