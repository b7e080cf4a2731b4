"""Reading results back: sweeps as NumPy arrays indexed by the sweep's axes, single runs (`simulate`'s
`summary.json`), a plotting helper, and both as labelled `xarray.Dataset`s (`to_xarray`, see
`collapse_jax.labelled`).

Files are read with `json` and `np.load(..., allow_pickle=False)`: nothing in a results file is
ever executed.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os

import numpy as np

STATISTICS = ("mean", "se", "std", "theory", "finite_chains", "nonfinite_chains", "q0.05", "q0.5", "q0.95")


@dataclasses.dataclass
class SweepResults:
    """A sweep loaded into arrays.

    axes: {name: values} in the spec's order; `shape` is their lengths. Every statistic array has
    shape `shape + (G_max + 1,)` (generations last, NaN past a cell's own G and for unfinished cells).
    finished: bool array of `shape`. summaries: the cells' JSON summaries (None where unfinished),
    an object array of `shape`. manifest: the folder's manifest as read when loading.
    """

    out: str
    setting: str
    axes: dict
    generations: np.ndarray
    finished: np.ndarray
    arrays: dict  # (metric, statistic) -> array
    summaries: np.ndarray
    manifest: dict  # the folder's manifest.json, as read when loading (spec, schema, cells and their ids)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())

    @property
    def metrics(self) -> list[str]:
        return sorted({metric for metric, _ in self.arrays})

    def get(self, metric: str, statistic: str = "mean", **where) -> np.ndarray:
        """The array of one statistic, optionally fixing axes by value: `get("trace_ratio", dim=10)`."""
        if (metric, statistic) not in self.arrays:
            raise ValueError(f"metric/statistic must be one of {sorted(self.arrays)}; got {(metric, statistic)!r}")
        array = self.arrays[(metric, statistic)]
        index = []
        for name, values in self.axes.items():
            if name in where:
                if where[name] not in values:
                    raise ValueError(f"{name} must be one of {values}; got {where[name]!r}")
                index.append(values.index(where[name]))
            else:
                index.append(slice(None))
        unknown = set(where) - set(self.axes)
        if unknown:
            raise ValueError(f"where: {sorted(unknown)} are not axes of this sweep ({', '.join(self.axes)})")
        return array[tuple(index)]

    def to_xarray(self):
        """The sweep as an `xarray.Dataset`: dimensions the axes (spec order) then `generation`, variables
        `<metric>`, `<metric>_se`, `<metric>_q5`, `<metric>_theory`, ... of shape `shape + (G_max + 1,)`;
        unfinished cells NaN (see `collapse_jax.labelled.sweep_to_xarray`).

        Raises:
          ImportError: xarray is not installed (`pip install "collapse-jax[xarray]"`).
        """
        from collapse_jax.labelled import sweep_to_xarray

        return sweep_to_xarray(self)


def load_sweep(out: str) -> SweepResults:
    """Load every finished cell of the sweep in `out` (unfinished cells are NaN, `finished` False)."""
    with open(os.path.join(out, "manifest.json")) as stream:
        manifest = json.load(stream)
    axes = manifest["axes"]
    shape = tuple(len(v) for v in axes.values())
    loaded = {}
    for entry in manifest["cells"]:
        path = os.path.join(out, "cells", entry["id"])
        if not os.path.exists(path + ".json"):
            continue
        try:
            with open(path + ".json") as stream:
                summary = json.load(stream)
        except ValueError:
            continue
        with np.load(path + ".npz", allow_pickle=False) as data:
            loaded[tuple(entry["index"])] = (summary, {key: data[key] for key in data.files})
    length = max((len(d["generations"]) for _, d in loaded.values()), default=0)
    finished = np.zeros(shape, bool)
    summaries = np.empty(shape, object)
    arrays: dict = {}
    for index, (summary, data) in loaded.items():
        finished[index] = True
        summaries[index] = summary
        for key, values in data.items():
            if "." not in key or key.endswith(".chains"):
                continue
            metric, statistic = key.split(".", 1)
            target = arrays.setdefault((metric, statistic), np.full(shape + (length,), np.nan))
            target[index + (slice(0, len(values)),)] = values
    return SweepResults(
        out, manifest["spec"]["setting"], axes, np.arange(length), finished, arrays, summaries, manifest
    )


@dataclasses.dataclass
class RunResults:
    """One run read back from the folder `simulate` wrote (`summary.json`, and `chains.npz` if the run
    saved its chains).

    generations: `(G + 1,)`, 0..G. arrays: {(metric, statistic): array of shape `(G + 1,)`}, with the
    statistics of a sweep cell's NPZ ("mean", "se", "std", "finite_chains", "nonfinite_chains", "theory",
    "q0.05", "q0.5", "q0.95"), NaN where the summary has null. chains: {metric: `(num_chains, G + 1)`}
    or None. summary: the whole `summary.json`; config: its resolved parameters.
    """

    out: str
    setting: str
    config: dict
    generations: np.ndarray
    arrays: dict  # (metric, statistic) -> array
    summary: dict
    chains: dict | None = None

    @property
    def metrics(self) -> list[str]:
        return list(self.summary["metrics"])

    def get(self, metric: str, statistic: str = "mean") -> np.ndarray:
        """One statistic over generations, shape `(G + 1,)`: `get("trace_ratio", "se")`."""
        if (metric, statistic) not in self.arrays:
            raise ValueError(f"metric/statistic must be one of {sorted(self.arrays)}; got {(metric, statistic)!r}")
        return self.arrays[(metric, statistic)]

    def to_xarray(self, *, chains: bool = True):
        """The run as an `xarray.Dataset` over `generation`, named as for a sweep (`<metric>`,
        `<metric>_se`, `<metric>_theory`, ..., shape `(G + 1,)`); see
        `collapse_jax.labelled.run_to_xarray`.

        Args:
          chains: include `<metric>_chains`, shape `(num_chains, G + 1)`, where the run saved its chains.

        Raises:
          ImportError: xarray is not installed (`pip install "collapse-jax[xarray]"`).
        """
        from collapse_jax.labelled import run_to_xarray

        return run_to_xarray(self, chains=chains)


def _floats(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], np.float64)


def load_run(out: str) -> RunResults:
    """Load the results of one run: `summary.json` and, if the run saved its chains, `chains.npz`.

    Args:
      out: the folder given to `simulate(..., out=out)` or `collapse-jax simulate ... --out DIR`, or the
        path of its `summary.json`.

    Returns:
      A `RunResults`: arrays of shape `(G + 1,)` by `(metric, statistic)`, the summary, the config, and
      `.to_xarray()`.

    Raises:
      ValueError: there is no `summary.json` there (for a sweep's folder, the message names `load_sweep`),
        or its schema is not a run summary's.
    """
    from collapse_jax.summary import load_summary

    path = os.fspath(out)
    folder = os.path.dirname(path) if os.path.basename(path) == "summary.json" else path
    summary_path = os.path.join(folder, "summary.json")
    if not os.path.exists(summary_path):
        if os.path.exists(os.path.join(folder, "manifest.json")):
            raise ValueError(f"out: {folder} holds a sweep (manifest.json), not a run: use load_sweep")
        raise ValueError(f"out: no summary.json in {folder}; not the output folder of a run")
    summary = load_summary(summary_path)
    arrays = {}
    for metric, entry in summary["metrics"].items():
        for statistic in ("mean", "se", "std", "finite_chains", "nonfinite_chains", "theory"):
            arrays[(metric, statistic)] = _floats(entry[statistic])
        for level, values in (entry.get("quantiles") or {}).items():
            arrays[(metric, f"q{level}")] = _floats(values)
    chains = None
    chains_path = os.path.join(folder, "chains.npz")
    if os.path.exists(chains_path):
        with np.load(chains_path, allow_pickle=False) as data:
            chains = {key: data[key] for key in data.files if key != "generations"}
    generations = np.asarray(summary["generations"], np.int64)
    return RunResults(folder, summary["setting"], summary["config"], generations, arrays, summary, chains)


def plot_sweep(
    results: SweepResults,
    metric: str,
    x: str = "generation",
    *,
    generation: int = -1,
    where: dict | None = None,
    ax=None,
    theory: bool = True,
    band: bool = True,
    log_y: bool = False,
):
    """Draw a metric against the generation or any axis: the chain mean with its 95% band (mean +- 1.96
    SE), and the closed-form prediction as a dashed line where one exists.

    Args:
      x: "generation", or an axis name (then the value at `generation` is drawn against that axis).
      where: fix other axes by value; every remaining axis gives one line per combination.
      ax: a matplotlib Axes (default: a new figure's).
    Returns the Axes.
    """
    import matplotlib.pyplot as plt

    where = dict(where or {})
    if x != "generation" and x not in results.axes:
        raise ValueError(f"x must be 'generation' or one of {', '.join(results.axes)}; got {x!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    mean, se, pred = (results.get(metric, s, **where) for s in ("mean", "se", "theory"))
    free = [name for name in results.axes if name not in where]
    if x != "generation":
        order = free.index(x)
        mean, se, pred = (np.moveaxis(a[..., generation], order, -1) for a in (mean, se, pred))
        free.remove(x)
        xs = np.asarray(results.axes[x], float)
    else:
        xs = results.generations
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    combos = list(itertools.product(*(range(len(results.axes[n])) for n in free)))
    for number, combo in enumerate(combos):
        m, s, t = mean[combo], se[combo], pred[combo]
        if np.all(np.isnan(m)):
            continue
        color = colors[number % len(colors)]
        label = ", ".join(f"{n}={results.axes[n][i]}" for n, i in zip(free, combo)) or metric
        ax.plot(xs, m, color=color, label=label, lw=1.5)
        if band:
            ax.fill_between(xs, m - 1.96 * s, m + 1.96 * s, color=color, alpha=0.25, lw=0)
        if theory and np.any(np.isfinite(t)):
            ax.plot(xs, t, color=color, ls="--", lw=1.2)
    ax.set_xlabel(x)
    ax.set_ylabel(metric + ("" if x == "generation" else f" at generation {results.generations[generation]}"))
    if log_y:
        ax.set_yscale("log")
    if x != "generation" and len(xs) > 2 and xs.min() > 0 and xs.max() / xs.min() > 20:
        ax.set_xscale("log")
    if combos and len(combos) <= 12:
        ax.legend(fontsize=7, title="dashed: theory" if theory else None, title_fontsize=7)
    return ax
