"""Figure experiments, registered so that `collapse-jax reproduce` runs them all.

Each experiment module defines `EXPERIMENT = Experiment(name, description, run)` where
`run(out_dir, mode, progress) -> (curves, figure_paths)` (mode: "full", "quick" or "smoke"): it simulates through `collapse_jax.simulate`
(summaries are kept under `out_dir/<name>/`), plots the figure, and returns the per-curve comparisons.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable

from experiments.common import report_markdown
from collapse_jax.summary import DEFAULT_K


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    run: Callable


def _registry() -> dict[str, Experiment]:
    from experiments import (dey_donoho_pathway, discrete_zipf, dohmatob_regression, dohmatob_strong_collapse,
                             feng_verification, gerstgrasser_regression, kazdan_gaussian, kazdan_kde,
                             kazdan_regression, neural_eigen, neural_lm, neural_regression, shumailov_gaussian,
                             shumailov_gmm, tale_of_tails)

    return {e.name: e for e in (shumailov_gaussian.EXPERIMENT, kazdan_gaussian.EXPERIMENT,
                                gerstgrasser_regression.EXPERIMENT, kazdan_regression.EXPERIMENT,
                                dohmatob_regression.EXPERIMENT, dey_donoho_pathway.EXPERIMENT,
                                discrete_zipf.EXPERIMENT, tale_of_tails.EXPERIMENT, kazdan_kde.EXPERIMENT,
                                shumailov_gmm.EXPERIMENT, feng_verification.EXPERIMENT,
                                dohmatob_strong_collapse.EXPERIMENT, neural_regression.EXPERIMENT,
                                neural_eigen.EXPERIMENT, neural_lm.EXPERIMENT)}


REGISTRY = _registry()


def reproduce(names=None, *, out: str, quick: bool = False, smoke: bool = False, verbose: bool = True) -> list:
    """Run experiments (default: all), write figures and `out/report.md`; return the failed curves."""
    names = list(names or REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown experiment(s) {', '.join(unknown)}; `collapse-jax list` shows: {', '.join(REGISTRY)}")
    os.makedirs(out, exist_ok=True)
    mode = "smoke" if smoke else "quick" if quick else "full"
    curves, figures = [], {}
    for name in names:
        start = time.perf_counter()
        if verbose:
            print(f"[{name}] running ({mode}) ...", flush=True)
        new_curves, paths = REGISTRY[name].run(os.path.join(out, name), mode=mode, progress=verbose)
        curves += new_curves
        figures[name] = paths
        if verbose:
            bad = sum(c.verdict["status"] == "fail" for c in new_curves)
            print(f"[{name}] {len(new_curves)} curves, {bad} failed, {time.perf_counter() - start:.0f} s; "
                  f"figures: {', '.join(paths)}", flush=True)
    report = report_markdown(curves, figures, out, DEFAULT_K)
    with open(os.path.join(out, "report.md"), "w") as stream:
        stream.write(report)
    if verbose:
        print(f"wrote {os.path.join(out, 'report.md')}")
    return [c for c in curves if c.verdict["status"] == "fail"]
