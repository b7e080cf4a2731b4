"""Figure experiments, registered so that `collapse-jax reproduce` runs them all.

Each experiment module defines `EXPERIMENT = Experiment(name, description, run)` where
`run(out_dir, mode, progress) -> (curves, figure_paths)` (mode: "full", "quick" or "smoke"): it simulates through `collapse_jax.simulate`
(summaries are kept under `out_dir/<name>/`), plots the figure, and returns the per-curve comparisons.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import os
import time
from collections.abc import Callable

from collapse_jax.summary import DEFAULT_K
from experiments.common import report_markdown


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    run: Callable


MODULES = (
    "shumailov_gaussian",
    "kazdan_gaussian",
    "gerstgrasser_regression",
    "kazdan_regression",
    "dohmatob_regression",
    "dey_donoho_pathway",
    "dey_donoho_logistic",
    "discrete_zipf",
    "tale_of_tails",
    "kazdan_kde",
    "shumailov_gmm",
    "feng_verification",
    "dohmatob_strong_collapse",
    "neural_regression",
    "neural_eigen",
    "neural_lm",
    "he_golden_ratio",
    "marchi_heat_death",
    "khelifa_diffusion",
    "ferbach_curation",
)  # in the order `collapse-jax list` shows them


def _listing(module: str) -> tuple[str, str]:
    """(name, description) of an experiment module, read from the literals of its `NAME` and `EXPERIMENT`
    assignments without importing it (its imports load JAX and matplotlib)."""
    with open(os.path.join(os.path.dirname(__file__), f"{module}.py")) as stream:
        tree = ast.parse(stream.read())
    values = {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    name, description = values["EXPERIMENT"].args[:2]
    name = values[name.id] if isinstance(name, ast.Name) else name
    return ast.literal_eval(name), ast.literal_eval(description)


def _deferred_run(module: str) -> Callable:
    """The module's `EXPERIMENT.run`, imported on the first call."""

    def run(*args, **kwargs):
        return importlib.import_module(f"experiments.{module}").EXPERIMENT.run(*args, **kwargs)

    return run


def _registry() -> dict[str, Experiment]:
    return {
        name: Experiment(name, description, _deferred_run(module))
        for module in MODULES
        for name, description in [_listing(module)]
    }


REGISTRY = _registry()


def reproduce(
    names=None, *, out: str, quick: bool = False, smoke: bool = False, verbose: bool = True, resume: bool = False
) -> list:
    """Run experiments (default: all), write figures and `out/report.md`; return the failed curves.
    `resume`: read back the runs whose summary under `out` has exactly their configuration
    (`experiments.common.finished_summary`) instead of running them."""
    names = list(names or REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown experiment(s) {', '.join(unknown)}; `collapse-jax list` shows: {', '.join(REGISTRY)}"
        )
    os.makedirs(out, exist_ok=True)
    mode = "smoke" if smoke else "quick" if quick else "full"
    curves, figures = [], {}
    for name in names:
        start = time.perf_counter()
        if verbose:
            print(f"[{name}] running ({mode}) ...", flush=True)
        from experiments import common

        common.RESUME["on"] = resume
        try:
            new_curves, paths = REGISTRY[name].run(os.path.join(out, name), mode=mode, progress=verbose)
        finally:
            common.RESUME["on"] = False
        curves += new_curves
        figures[name] = paths
        if verbose:
            repeated = common.repeated_curves(new_curves)
            unique = [c for i, c in enumerate(new_curves) if i not in repeated]
            bad = sum(c.verdict["status"] == "fail" for c in unique)
            print(
                f"[{name}] {len(unique)} curves, {bad} failed, {time.perf_counter() - start:.0f} s; "
                f"figures: {', '.join(paths)}",
                flush=True,
            )
    report = report_markdown(curves, figures, out, DEFAULT_K)
    with open(os.path.join(out, "report.md"), "w") as stream:
        stream.write(report)
    if verbose:
        print(f"wrote {os.path.join(out, 'report.md')}")
    return [c for c in curves if c.verdict["status"] == "fail"]
