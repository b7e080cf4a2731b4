"""Labelled results: sweeps and runs as xarray Datasets (collapse_jax.labelled), equal to the files."""

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

xr = pytest.importorskip("xarray")

from collapse_jax.labelled import _cell_series, axis_coordinate, variable_name  # noqa: E402
from collapse_jax.results import load_run, load_sweep  # noqa: E402
from collapse_jax.simulate import simulate  # noqa: E402
from collapse_jax.sweep import run_sweep  # noqa: E402

# a string axis (programs), an int axis that changes the number of generations (programs), a float axis
# (traced: shared programs): 8 cells in 4 programs; one metric keeps compilation short
SPEC = {
    "setting": "regression",
    "name": "labelled",
    "fixed": {"chains": 4, "dim": 2, "samples": 6, "metrics": ["excess_risk"]},
    "axes": {"policy": ["replace", "accumulate"], "generations": [1, 2], "noise_var": [0.5, 2.0]},
}
RUN = {"generations": 2, "chains": 4, "dim": 2, "samples": 6, "metrics": ["excess_risk"]}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("labelled") / "sweep")
    run_sweep(SPEC, out, progress=False)
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("labelled") / "run")
    simulate("regression", RUN, out=out, save_chains=True)
    return out


def _manifest(out):
    with open(os.path.join(out, "manifest.json")) as stream:
        return json.load(stream)


def _cell(out, cell_id):
    with open(os.path.join(out, "cells", cell_id + ".json")) as stream:
        summary = json.load(stream)
    with np.load(os.path.join(out, "cells", cell_id + ".npz")) as data:
        return summary, {key: data[key] for key in data.files}


def _floats(values):
    return np.asarray([np.nan if v is None else v for v in values], float)


def test_axes_and_generation_are_the_dimensions_in_spec_order(sweep_dir):
    ds = load_sweep(sweep_dir).to_xarray()
    assert ds["excess_risk"].dims == ("policy", "generations", "noise_var", "generation")
    assert ds["excess_risk_verdict"].dims == ds["finished"].dims == ("policy", "generations", "noise_var")
    assert ds["policy"].values.tolist() == ["replace", "accumulate"]
    assert ds["generations"].dtype == np.int64 and ds["generations"].values.tolist() == [1, 2]
    assert ds["noise_var"].dtype == np.float64 and ds["noise_var"].values.tolist() == [0.5, 2.0]
    assert ds["generation"].values.tolist() == [0, 1, 2]
    assert bool(ds["finished"].all()) and ds.attrs["cells_finished"] == ds.attrs["cells_total"] == 8
    assert json.loads(ds.attrs["missing_cells"]) == []
    assert json.loads(ds.attrs["spec"])["axes"] == SPEC["axes"]
    config = json.loads(ds.attrs["config"])
    assert config["dim"] == 2 and config["chains"] == 4 and "policy" not in config
    assert ds.attrs["setting"] == "regression" and ds.attrs["jax_version"]


def test_values_equal_every_cells_files_exactly(sweep_dir):
    ds = load_sweep(sweep_dir).to_xarray()
    for entry in _manifest(sweep_dir)["cells"]:
        summary, arrays = _cell(sweep_dir, entry["id"])
        at = dict(zip(SPEC["axes"], entry["index"]))
        cell = ds.isel(at)
        assert cell["cell_id"].item() == entry["id"]
        g = len(arrays["generations"])
        for key, values in arrays.items():
            if key == "generations" or key.endswith(".chains"):
                continue
            metric, statistic = key.split(".", 1)
            got = cell[variable_name(metric, statistic)].values
            np.testing.assert_array_equal(got[:g], values, err_msg=key)
            assert np.isnan(got[g:]).all(), key  # past this cell's G
        for metric, block in summary["metrics"].items():
            np.testing.assert_array_equal(cell[f"{metric}_nan_chains"].values[:g], block["nonfinite"]["nan"])
            np.testing.assert_array_equal(cell[f"{metric}_posinf_chains"].values[:g], block["nonfinite"]["+inf"])
            assert cell[f"{metric}_verdict"].item() == block["comparison"]["status"]
            assert cell[f"{metric}_theory_kind"].item() == (block["theory_kind"] or "")


def test_sel_of_one_cell_is_its_stored_means(sweep_dir):
    results = load_sweep(sweep_dir)
    ds = results.to_xarray()
    one = ds.sel(policy="accumulate", generations=2, noise_var=2.0)
    summary = results.summaries[1, 1, 1]
    assert summary["cell"]["values"] == {"policy": "accumulate", "generations": 2, "noise_var": 2.0}
    for metric, block in summary["metrics"].items():
        np.testing.assert_array_equal(one[metric].values, _floats(block["mean"]))
        np.testing.assert_array_equal(one[f"{metric}_se"].values, _floats(block["se"]))
        np.testing.assert_array_equal(
            one[metric].values, results.get(metric, policy="accumulate", generations=2, noise_var=2.0)
        )
    short = ds["excess_risk"].sel(generations=1)
    assert np.isnan(short.sel(generation=2)).all() and np.isfinite(short.sel(generation=1)).all()


def test_theory_variables_where_the_setting_has_theory(sweep_dir):
    ds = load_sweep(sweep_dir).to_xarray()
    theory = ds["excess_risk_theory"]
    assert theory.attrs["statistic"] == "theory" and theory.attrs["metric"] == "excess_risk"
    # replace, OLS, d = 2, T = 6: E[excess risk at generation k] = k sigma^2 d / (T - d - 1)
    expected = np.array([0.0, 1.0, 2.0]) * 2.0 * 2 / 3
    np.testing.assert_allclose(theory.sel(policy="replace", generations=2, noise_var=2.0), expected, rtol=1e-6)
    assert set(ds["excess_risk_theory_kind"].values.ravel()) - {""}


def test_netcdf_round_trip(sweep_dir, tmp_path):
    ds = load_sweep(sweep_dir).to_xarray()
    path = tmp_path / "sweep.nc"
    ds.to_netcdf(path, engine="scipy")
    with xr.open_dataset(path, engine="scipy") as back:
        back = back.load()
    assert set(back.data_vars) == set(ds.data_vars)
    assert back["excess_risk"].dims == ds["excess_risk"].dims
    for name in list(ds.data_vars) + list(ds.coords):
        a, b = ds[name].values, back[name].values
        if a.dtype.kind in "UO":
            assert b.astype(str).tolist() == a.astype(str).tolist(), name
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)
    assert back.attrs == ds.attrs
    assert back["excess_risk_q5"].attrs["quantile"] == 0.05
    np.testing.assert_array_equal(
        back["excess_risk"].sel(policy="replace", generations=2, noise_var=0.5),
        ds["excess_risk"].sel(policy="replace", generations=2, noise_var=0.5),
    )


def test_plot_draws_one_line_per_axis_value(sweep_dir):
    import matplotlib

    matplotlib.use("Agg")
    ds = load_sweep(sweep_dir).to_xarray()
    lines = ds["excess_risk"].sel(generations=2, noise_var=0.5).plot.line(x="generation", hue="policy")
    assert len(lines) == 2
    import matplotlib.pyplot as plt

    plt.close("all")


def test_a_partial_sweep_is_nan_where_cells_are_missing(sweep_dir, tmp_path):
    out = str(tmp_path / "partial")
    shutil.copytree(sweep_dir, out)
    victim = _manifest(out)["cells"][5]
    os.unlink(os.path.join(out, "cells", victim["id"] + ".json"))
    full, ds = load_sweep(sweep_dir).to_xarray(), load_sweep(out).to_xarray()
    at = dict(zip(SPEC["axes"], victim["index"]))
    assert not ds["finished"].isel(at) and int(ds["finished"].sum()) == 7
    assert ds.attrs["cells_finished"] == 7 and ds.attrs["cells_total"] == 8
    assert json.loads(ds.attrs["missing_cells"]) == [{"id": victim["id"], "values": victim["values"]}]
    assert np.isnan(ds["excess_risk"].isel(at)).all() and np.isnan(ds["excess_risk_theory"].isel(at)).all()
    assert ds["excess_risk_verdict"].isel(at).item() == ""
    assert ds["cell_id"].isel(at).item() == victim["id"]
    others = ds["excess_risk"].where(ds["finished"])
    xr.testing.assert_equal(others, full["excess_risk"].where(ds["finished"]))


def test_load_run_to_xarray(run_dir, sweep_dir, tmp_path):
    run = load_run(run_dir)
    assert load_run(os.path.join(run_dir, "summary.json")).config == run.config
    ds = run.to_xarray()
    with open(os.path.join(run_dir, "summary.json")) as stream:
        summary = json.load(stream)
    assert ds["excess_risk"].dims == ("generation",) and ds["generation"].values.tolist() == [0, 1, 2]
    for metric, block in summary["metrics"].items():
        np.testing.assert_array_equal(ds[metric].values, _floats(block["mean"]))
        np.testing.assert_array_equal(ds[f"{metric}_std"].values, _floats(block["std"]))
        np.testing.assert_array_equal(ds[f"{metric}_q95"].values, _floats(block["quantiles"]["0.95"]))
        np.testing.assert_array_equal(ds[f"{metric}_finite_chains"].values, block["finite_chains"])
        np.testing.assert_array_equal(ds[f"{metric}_theory"].values, _floats(block["theory"]))
        assert ds[f"{metric}_verdict"].item() == block["comparison"]["status"]
    with np.load(os.path.join(run_dir, "chains.npz")) as chains:
        np.testing.assert_array_equal(ds["excess_risk_chains"].values, chains["excess_risk"])
    assert ds["excess_risk_chains"].dims == ("chain", "generation") and ds.sizes["chain"] == 4
    assert "excess_risk_chains" not in run.to_xarray(chains=False)
    assert json.loads(ds.attrs["config"]) == summary["config"]
    assert ds.attrs["git_commit"] == (summary["git_commit"] or "") and ds.attrs["seed"] == summary["seed"]
    np.testing.assert_allclose(ds["excess_risk_theory"][2], 2 * 1.0 * 2 / 3, rtol=1e-6)  # sigma^2 = 1
    path = tmp_path / "run.nc"
    ds.to_netcdf(path, engine="scipy")
    with xr.open_dataset(path, engine="scipy") as back:
        np.testing.assert_array_equal(back["excess_risk_chains"].values, ds["excess_risk_chains"].values)
        assert back.attrs == ds.attrs
    with pytest.raises(ValueError, match="load_sweep"):
        load_run(sweep_dir)
    with pytest.raises(ValueError, match="summary.json"):
        load_run(str(tmp_path))


def test_missing_xarray_says_how_to_install_it(sweep_dir, run_dir, monkeypatch):
    results, run = load_sweep(sweep_dir), load_run(run_dir)
    monkeypatch.setitem(sys.modules, "xarray", None)
    for loaded in (results, run):
        with pytest.raises(ImportError, match=r'to_xarray\(\) needs xarray: pip install "collapse-jax\[xarray\]"'):
            loaded.to_xarray()


def test_loaders_import_no_xarray_or_jax():
    code = (
        "import sys, collapse_jax; collapse_jax.load_run; collapse_jax.load_sweep; import collapse_jax.labelled; "
        "print(sorted(m for m in ('xarray', 'jax', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "[]"


def test_axis_coordinates_of_every_value_type():
    assert axis_coordinate([True, False]).dtype == bool
    assert axis_coordinate([1, 3]).dtype == np.int64
    assert axis_coordinate([1, 2.5]).tolist() == [1.0, 2.5]
    assert axis_coordinate(["replace", "accumulate"]).tolist() == ["replace", "accumulate"]
    assert axis_coordinate([["a", "b"], ["c"]]).tolist() == ["a,b", "c"]
    assert axis_coordinate(["auto", 3]).tolist() == ["auto", "3"]


def test_names_and_infinite_predictions():
    assert variable_name("w2_sq", "mean") == "w2_sq"
    assert variable_name("w2_sq", "q0.05") == "w2_sq_q5"
    assert variable_name("w2_sq", "q0.025") == "w2_sq_q2p5"
    assert variable_name("w2_sq", "theory_q0.95") == "w2_sq_theory_q95"
    assert variable_name("w2_sq", "nonfinite_chains") == "w2_sq_nonfinite_chains"
    summary = {"metrics": {"log_det_ratio": {"theory_infinite": [None, "-inf"], "theory_kind": "exact"}}}
    series = {(m, s): v for m, s, v in _cell_series({("log_det_ratio", "theory"): np.array([0.0, np.nan])}, summary)}
    assert series[("log_det_ratio", "theory")].tolist() == [0.0, -math.inf]
    assert series[("log_det_ratio", "theory_kind")] == "exact"
