"""Labelled results: a sweep or a run as an `xarray.Dataset`.

`load_sweep(out).to_xarray()` and `load_run(out).to_xarray()` call `sweep_to_xarray` and
`run_to_xarray`. xarray is an optional dependency (`pip install "collapse-jax[xarray]"`); it is imported
when a dataset is built, never when `collapse_jax` is imported.

A dataset has the same layout for a sweep and a run (a run has no sweep axes):

- dimensions: the sweep's axes in the spec's order, then `generation` (0..G_max);
- coordinates: one per axis (its values), `generation`, and for a sweep `cell_id` over the axes;
- attributes: `str` or numbers only, so that `to_netcdf` writes them; dicts and lists are JSON text
  (`config`, `spec`, `metrics`, `missing_cells`, ...).

Variables of a metric `m` (e.g. `m = "trace_ratio"`); `axes` is the sweep's shape, `()` for a run:

| variable | shape | value |
|---|---|---|
| `m` | `axes + (G_max + 1,)` | chain mean (over the chains whose value is finite) |
| `m_se`, `m_std` | same | standard error of the mean, standard deviation over chains |
| `m_q5`, `m_q50`, `m_q95` | same | quantiles over chains (level 0.05 -> `q5`, 0.025 -> `q2p5`) |
| `m_finite_chains`, `m_nonfinite_chains` | same | chains whose value is finite / not |
| `m_nan_chains`, `m_posinf_chains`, `m_neginf_chains` | same | non-finite chains by kind |
| `m_theory` | same | closed-form prediction of the mean: NaN where none, +-inf where infinite |
| `m_theory_std`, `m_theory_q5`, ... | same | where some prediction gives them |
| `m_theory_kind` | `axes` | "exact", "asymptotic", ...; "" where no prediction |
| `m_verdict` | `axes` | simulation against theory: "pass", "fail", "no theory", ... |
| `m_max_z` | `axes` | largest abs(mean - theory) in standard errors; NaN if none compared |
| `m_chains` | `(chain, generation)` | a run saved with chains: every chain's value |
| `finished` | `axes` | a sweep: whether the cell is finished |

Every variable carries the attributes `metric`, `statistic` (as in `SweepResults.get`: "mean", "se",
"q0.05", "theory", ...) and `long_name`; quantiles also `quantile` (the level). Per-generation values are
float64, counts included, so that a cell that is missing, or has fewer generations than the longest, is
NaN there.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

INSTALL_HINT = (
    'to_xarray() needs xarray: pip install "collapse-jax[xarray]" (in a checkout: pip install -e ".[xarray]")'
)

# per-generation statistics, in the order their variables appear (quantiles by level after "std")
_ORDER = (
    "mean",
    "se",
    "std",
    "q",
    "finite_chains",
    "nonfinite_chains",
    "nan_chains",
    "posinf_chains",
    "neginf_chains",
    "theory",
    "theory_std",
    "theory_q",
    "theory_kind",
    "verdict",
    "max_z",
    "chains",
)
_NONFINITE = (("nan", "nan_chains"), ("+inf", "posinf_chains"), ("-inf", "neginf_chains"))
_DESCRIPTIONS = {
    "mean": "chain mean",
    "se": "standard error of the chain mean",
    "std": "standard deviation over chains",
    "finite_chains": "chains with a finite value",
    "nonfinite_chains": "chains with a non-finite value",
    "nan_chains": "chains at NaN",
    "posinf_chains": "chains at +inf",
    "neginf_chains": "chains at -inf",
    "theory": "closed-form prediction of the mean",
    "theory_std": "closed-form prediction of the standard deviation over chains",
    "theory_kind": "kind of the prediction",
    "verdict": "simulation against theory",
    "max_z": "largest |mean - theory| in standard errors",
    "chains": "per-chain value",
}


def require_xarray():
    """The `xarray` module; ImportError with the install command when it is not installed."""
    try:
        import xarray
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return xarray


def quantile_suffix(level: float | str) -> str:
    """The name part of a quantile level: 0.05 -> "q5", 0.5 -> "q50", 0.025 -> "q2p5"."""
    percent = round(float(level) * 100, 6)
    return "q" + f"{percent:g}".replace(".", "p").replace("-", "m")


def variable_name(metric: str, statistic: str) -> str:
    """The dataset variable of one metric's statistic: ("w2_sq", "mean") -> "w2_sq", ("w2_sq", "se") ->
    "w2_sq_se", ("w2_sq", "q0.05") -> "w2_sq_q5", ("w2_sq", "theory_q0.95") -> "w2_sq_theory_q95"."""
    if statistic == "mean":
        return metric
    for prefix in ("theory_q", "q"):
        if statistic.startswith(prefix):
            try:
                return f"{metric}_{prefix[:-1]}{quantile_suffix(statistic[len(prefix) :])}"
            except ValueError:
                break
    return f"{metric}_{statistic}"


def _rank(statistic: str) -> tuple:
    for prefix in ("theory_q", "q"):
        if statistic.startswith(prefix):
            try:
                return (_ORDER.index(prefix), float(statistic[len(prefix) :]))
            except ValueError:
                break
    return (_ORDER.index(statistic) if statistic in _ORDER else len(_ORDER), 0.0)


def _attrs(metric: str, statistic: str) -> dict:
    attrs = {"metric": metric, "statistic": statistic}
    for prefix, what in (("theory_q", "closed-form prediction of the quantile"), ("q", "quantile over chains")):
        if statistic.startswith(prefix) and statistic not in _DESCRIPTIONS:
            try:
                attrs["quantile"] = float(statistic[len(prefix) :])
                attrs["long_name"] = f"{metric}: {what} {attrs['quantile']:g}"
                return attrs
            except ValueError:
                break
    attrs["long_name"] = f"{metric}: {_DESCRIPTIONS.get(statistic, statistic)}"
    return attrs


def _floats(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], np.float64)


def _cell_series(arrays: dict, summary: dict):
    """One cell's (or run's) values: yields (metric, statistic, value), the value a 1-D array over its
    generations, or a str / float for the per-cell statistics (theory_kind, verdict, max_z). `arrays`:
    {(metric, statistic): 1-D array} as in the NPZ of a sweep cell; `summary`: its JSON summary."""
    entries = summary.get("metrics") or {}
    for (metric, statistic), values in arrays.items():
        values = np.asarray(values, np.float64)
        if statistic == "theory":  # NaN in the NPZ where the prediction is infinite: restore the infinity
            infinite = (entries.get(metric) or {}).get("theory_infinite") or []
            values = values.copy()
            for g, kind in enumerate(infinite[: len(values)]):
                if kind in ("+inf", "-inf"):
                    values[g] = math.inf if kind == "+inf" else -math.inf
        yield metric, statistic, values
    for metric, entry in entries.items():
        for kind, statistic in _NONFINITE:
            counts = (entry.get("nonfinite") or {}).get(kind)
            if counts is not None:
                yield metric, statistic, _floats(counts)
        if entry.get("theory_std") is not None:
            yield metric, "theory_std", _floats(entry["theory_std"])
        for level, values in (entry.get("theory_quantiles") or {}).items():
            yield metric, f"theory_q{level}", _floats(values)
        comparison = entry.get("comparison") or {}
        yield metric, "theory_kind", entry.get("theory_kind") or ""
        yield metric, "verdict", comparison.get("status") or ""
        z = comparison.get("max_z")
        yield metric, "max_z", math.nan if z is None else float(z)


class _Table:
    """Variables over `shape` (per cell) or `shape + (length,)` (per generation), filled cell by cell;
    NaN ("" for text) where nothing was put."""

    def __init__(self, shape: tuple, length: int):
        self.shape, self.length = shape, length
        self.values: dict = {}  # (metric, statistic) -> array
        self.metrics: list = []

    def put(self, index: tuple, metric: str, statistic: str, value) -> None:
        if metric not in self.metrics:
            self.metrics.append(metric)
        key = (metric, statistic)
        if isinstance(value, np.ndarray):
            if key not in self.values:
                self.values[key] = np.full(self.shape + (self.length,), np.nan)
            self.values[key][index + (slice(0, len(value)),)] = value
        else:
            if key not in self.values:
                self.values[key] = (
                    np.full(self.shape, "", object) if isinstance(value, str) else np.full(self.shape, np.nan)
                )
            self.values[key][index] = value

    def variables(self, dims: tuple) -> dict:
        """{name: (dims, array, attrs)}, grouped by metric (in order of appearance), statistics in a
        fixed order."""
        out = {}
        for metric, statistic in sorted(self.values, key=lambda k: (self.metrics.index(k[0]), _rank(k[1]))):
            array = self.values[(metric, statistic)]
            if array.dtype == object:
                array = array.astype(str)
            name = variable_name(metric, statistic)
            if name in out:
                raise ValueError(f"two statistics would both be named {name!r} ({metric!r}, {statistic!r})")
            out[name] = (dims[: array.ndim], array, _attrs(metric, statistic))
        return out


def axis_coordinate(values: list) -> np.ndarray:
    """The coordinate of one sweep axis: bool, int64, float64 (ints and floats mixed) or str values.
    Lists (a list-valued parameter such as `metrics`) become comma-separated strings; anything else
    that is not all numbers or all strings becomes its JSON text."""
    if all(isinstance(v, bool) for v in values):
        return np.asarray(values, bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, np.float64)
    texts = []
    for v in values:
        if isinstance(v, str):
            texts.append(v)
        elif isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
            texts.append(",".join(v))
        else:
            texts.append(json.dumps(v))
    return np.asarray(texts, str)


def _json(value) -> str:
    return json.dumps(value, sort_keys=False, default=str)


def _shared(values: list) -> str:
    """One text for a field the cells may disagree on: the value, or the distinct values joined by ", "."""
    distinct = []
    for value in values:
        text = "" if value is None else str(value)
        if text not in distinct:
            distinct.append(text)
    return ", ".join(distinct)


def _check_names(coords: dict, variables: dict) -> None:
    clash = sorted(set(coords) & set(variables))
    if clash:
        raise ValueError(f"to_xarray: {', '.join(clash)} would be both a coordinate and a variable")


def sweep_to_xarray(results):
    """A loaded sweep as an `xarray.Dataset` (what `load_sweep(out).to_xarray()` returns).

    Dimensions: the spec's axes in the spec's order, then `generation` (0..G_max, the longest cell's G).
    Per-generation variables have shape `results.shape + (G_max + 1,)`; per-cell variables
    (`<metric>_theory_kind`, `<metric>_verdict`, `<metric>_max_z`, `finished`) have shape `results.shape`
    (naming: see the module docstring). Values are the cells' files': the NPZ arrays (`<metric>`,
    `_se`, `_std`, `_q*`, `_finite_chains`, `_nonfinite_chains`, `_theory`) exactly as stored, except
    that an infinite prediction is +-inf rather than NaN; and from each cell's JSON the non-finite counts
    by kind, the prediction's standard deviation and quantiles where it gives them, and the verdict.

    A partial sweep is not an error: an unfinished cell is NaN ("" in the text variables), `finished` is
    False there, and the attributes `cells_finished`, `cells_total` and `missing_cells` (JSON: a list of
    `{"id", "values"}`) say which; `bool(ds.finished.all())` tells whether the sweep is complete. A cell
    with fewer generations than the longest is NaN past its own G.

    Axis coordinates are bool, int64, float64 (an axis mixing ints and floats) or str; a list-valued axis
    (such as `metrics`) is comma-separated text (`axis_coordinate`).

    Attributes: `schema`, `path`, `setting`, `sweep_name`, `description`, `spec` (JSON), `config` (JSON:
    the parameters every finished cell shares, defaults included, axes left out), `metrics` (JSON list),
    `jax_version`, `git_commit`, `device` (the value every cell shares, or the distinct values joined by
    ", "; "" where unknown), `cells_total`, `cells_finished`, `missing_cells`.

    Args:
      results: a `collapse_jax.results.SweepResults`, from `load_sweep(out)`.

    Returns:
      An `xarray.Dataset`.

    Raises:
      ImportError: xarray is not installed (the message gives the install command).
    """
    xr = require_xarray()
    manifest = results.manifest
    axes = results.axes
    shape = results.shape
    length = len(results.generations)
    table = _Table(shape, length)
    ids = np.full(shape, "", object)
    missing, summaries = [], []
    for entry in manifest.get("cells", []):
        index = tuple(entry["index"])
        ids[index] = entry["id"]
        if not results.finished[index]:
            missing.append({"id": entry["id"], "values": entry.get("values", {})})
    for index in np.ndindex(*shape):
        summary = results.summaries[index]
        if not results.finished[index] or summary is None:
            continue
        summaries.append(summary)
        cell_length = len(summary.get("generations") or []) or length
        arrays = {key: array[index][:cell_length] for key, array in results.arrays.items()}
        for metric, statistic, value in _cell_series(arrays, summary):
            table.put(index, metric, statistic, value)
    dims = tuple(axes) + ("generation",)
    coords = {name: (name, axis_coordinate(values)) for name, values in axes.items()}
    coords["generation"] = ("generation", np.asarray(results.generations, np.int64), {"long_name": "generation"})
    coords["cell_id"] = (tuple(axes), ids.astype(str), {"long_name": "cell id (file cells/<id>.json, .npz)"})
    variables = table.variables(dims)
    variables["finished"] = (tuple(axes), results.finished.copy(), {"long_name": "cell finished"})
    _check_names(coords, variables)
    spec = manifest.get("spec", {})
    configs = [s.get("config") or {} for s in summaries]
    common = {}
    if configs:
        common = {
            key: value
            for key, value in configs[0].items()
            if key not in axes and all(c.get(key, object()) == value for c in configs[1:])
        }
    attrs = {
        "schema": manifest.get("schema", ""),
        "path": os.path.abspath(results.out),
        "setting": results.setting,
        "sweep_name": spec.get("name", ""),
        "description": spec.get("description", ""),
        "spec": _json(spec),
        "config": _json(common),
        "metrics": _json(table.metrics),
        "jax_version": _shared([s.get("jax_version") for s in summaries]),
        "git_commit": _shared([s.get("git_commit") for s in summaries]),
        "device": _shared([s.get("device") for s in summaries]),
        "cells_total": int(np.prod(shape, dtype=np.int64)),
        "cells_finished": int(results.finished.sum()),
        "missing_cells": _json(missing),
    }
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def run_to_xarray(run, *, chains: bool = True):
    """A loaded run as an `xarray.Dataset` (what `load_run(out).to_xarray()` returns).

    Dimension `generation` (0..G); per-generation variables have shape `(G + 1,)` and are named as for a
    sweep (`<metric>`, `<metric>_se`, `<metric>_q5`, `<metric>_theory`, ...; see the module docstring);
    `<metric>_theory_kind`, `<metric>_verdict` and `<metric>_max_z` are 0-d. Values are those of
    `summary.json` (null as NaN; an infinite prediction as +-inf).

    Attributes: `schema`, `path`, `setting`, `config` (JSON), `metrics` (JSON list), `seed`,
    `num_chains`, `quantile_chains`, `jax_version`, `git_commit`, `device`, `num_devices`, `created`,
    `notes` (JSON list).

    Args:
      run: a `collapse_jax.results.RunResults`, from `load_run(out)`.
      chains: with a `chains.npz` beside the summary (a run with `save_chains`), add `<metric>_chains`,
        every chain's value, shape `(num_chains, G + 1)`, dimensions `(chain, generation)`.

    Returns:
      An `xarray.Dataset`.

    Raises:
      ImportError: xarray is not installed (the message gives the install command).
    """
    xr = require_xarray()
    summary = run.summary
    table = _Table((), len(run.generations))
    for metric, statistic, value in _cell_series(run.arrays, summary):
        table.put((), metric, statistic, value)
    coords = {"generation": ("generation", np.asarray(run.generations, np.int64), {"long_name": "generation"})}
    variables = table.variables(("generation",))
    if chains and run.chains:
        for metric, values in run.chains.items():
            values = np.asarray(values)
            variables[variable_name(metric, "chains")] = (("chain", "generation"), values, _attrs(metric, "chains"))
            coords.setdefault("chain", ("chain", np.arange(values.shape[0], dtype=np.int64)))
            if metric not in table.metrics:
                table.metrics.append(metric)
        order = {metric: rank for rank, metric in enumerate(table.metrics)}
        variables = dict(
            sorted(variables.items(), key=lambda item: (order[item[1][2]["metric"]], _rank(item[1][2]["statistic"])))
        )
    _check_names(coords, variables)
    attrs = {
        "schema": summary.get("schema", ""),
        "path": os.path.abspath(run.out),
        "setting": run.setting,
        "config": _json(run.config),
        "metrics": _json(table.metrics),
        "seed": summary.get("seed", ""),
        "num_chains": summary.get("num_chains", ""),
        "quantile_chains": summary.get("quantile_chains", ""),
        "jax_version": _shared([summary.get("jax_version")]),
        "git_commit": _shared([summary.get("git_commit")]),
        "device": _shared([summary.get("device")]),
        "num_devices": summary.get("num_devices", ""),
        "created": summary.get("created", ""),
        "notes": _json(summary.get("notes") or []),
    }
    attrs = {key: "" if value is None else value for key, value in attrs.items()}
    return xr.Dataset(variables, coords=coords, attrs=attrs)
