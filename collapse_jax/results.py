"""Reading sweeps back: NumPy arrays indexed by the sweep's axes, and a plotting helper.

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
    an object array of `shape`.
    """

    out: str
    setting: str
    axes: dict
    generations: np.ndarray
    finished: np.ndarray
    arrays: dict  # (metric, statistic) -> array
    summaries: np.ndarray

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
    return SweepResults(out, manifest["spec"]["setting"], axes, np.arange(length), finished, arrays, summaries)


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
