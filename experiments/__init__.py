"""Figure experiments, registered so that `collapse-jax reproduce` runs them all.

Each experiment module defines `EXPERIMENT = Experiment(name, description, run)` where
`run(out_dir, mode, progress) -> (curves, figure_paths)` (mode: "full", "quick", "smoke" or "paper": the
papers' own sizes, for accelerators): it simulates through `collapse_jax.simulate`
(summaries are kept under `out_dir/<name>/`), plots the figure, and returns the per-curve comparisons.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import os
import time
from collections.abc import Callable

from collapse_jax.cli import REPRODUCE_MODES, check_jobs, reproduce_mode
from collapse_jax.summary import DEFAULT_K
from experiments import common
from experiments.common import report_markdown


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    run: Callable
    module: str = ""  # the module under experiments/ that defines it (set by the registry)


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


def _module_of(name: str) -> str:
    """The module of a registered experiment name (`he-golden-ratio` -> `he_golden_ratio`)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}")
    return REGISTRY[name].module


def source_hash(name: str) -> str:
    """A short hash of what makes an experiment's figure: the syntax trees of its module and of
    `experiments/common.py` (docstrings, comments and formatting left out, so a reformat or a reworded
    docstring keeps figures current; any change to the code makes them stale)."""
    import hashlib

    def tree(path: str) -> str:
        with open(path) as stream:
            parsed = ast.parse(stream.read())
        for node in ast.walk(parsed):  # drop docstrings
            body = getattr(node, "body", None)
            first = body[0] if isinstance(body, list) and body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
        return ast.dump(parsed)

    here = os.path.dirname(__file__)
    text = tree(os.path.join(here, f"{_module_of(name)}.py")) + tree(os.path.join(here, "common.py"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def stamp(name: str, mode: str) -> dict:
    """What a figure records of how it was made: toolkit and JAX versions, source hash, mode."""
    import importlib.metadata

    import jax

    try:
        version = importlib.metadata.version("collapse-jax")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"collapse_jax": version, "jax": jax.__version__, "source_hash": source_hash(name), "mode": mode}


def _deferred_run(module: str) -> Callable:
    """The module's `EXPERIMENT.run`, imported on the first call."""

    def run(*args, **kwargs):
        return importlib.import_module(f"experiments.{module}").EXPERIMENT.run(*args, **kwargs)

    return run


def _registry() -> dict[str, Experiment]:
    return {
        name: Experiment(name, description, _deferred_run(module), module)
        for module in MODULES
        for name, description in [_listing(module)]
    }


REGISTRY = _registry()


MANIFEST = "manifest.json"


def _read_manifest(out: str) -> dict:
    """`out/manifest.json` as a dict (empty when missing or unreadable)."""
    import json

    try:
        with open(os.path.join(out, MANIFEST)) as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return {}


def _record_in_manifest(out: str, name: str, made: dict, curves: list) -> None:
    """Add one experiment's stamp and verdict counts to `out/manifest.json` (kept for the others)."""
    import json

    path = os.path.join(out, MANIFEST)
    manifest = _read_manifest(out)
    statuses = [c.verdict["status"] for c in curves]
    manifest[name] = {**made, "curves": len(curves), **{s: statuses.count(s) for s in sorted(set(statuses))}}
    with open(path, "w") as stream:
        json.dump(manifest, stream, indent=1, sort_keys=True)
        stream.write("\n")


MODES = REPRODUCE_MODES


def _mode(mode: str | None, quick: bool, smoke: bool) -> str:
    """`mode`, or the one the older `quick`/`smoke` flags ask for ("full" without either): the command
    line's rule (`collapse_jax.cli.reproduce_mode`), and an unknown mode refused."""
    mode = reproduce_mode(mode, quick, smoke)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    return mode


def _run_experiment(name: str, out: str, mode: str, resume: bool, verbose: bool) -> tuple:
    """Run one experiment in this process: `(curves, figure paths, manifest entry)`; the entry (stamp,
    chains per run, seconds) is recorded by the caller."""
    start = time.perf_counter()
    if verbose:
        print(f"[{name}] running ({mode}) ...", flush=True)
    common.RESUME["on"] = resume
    made = stamp(name, mode)
    common.STAMP.update(made, name=name)
    try:
        curves, paths = REGISTRY[name].run(os.path.join(out, name), mode=mode, progress=verbose)
        chains = sorted(common.STAMP.get("chains", ()))
    finally:
        common.RESUME["on"] = False
        common.STAMP.clear()
    if chains:  # the manifest records the chains per run and the time the figure took
        made["chains"] = chains[0] if chains[0] == chains[-1] else [chains[0], chains[-1]]
    made["seconds"] = round(time.perf_counter() - start)
    return curves, paths, made


def _run_in_worker(name: str, out: str, mode: str, resume: bool, verbose: bool, cache_dir: str | None) -> tuple:
    """`_run_experiment` in a worker process of `reproduce(jobs > 1)`: the worker turns on the parent's
    compilation cache (XLA flags come with the environment)."""
    if cache_dir:
        from collapse_jax.parallel import enable_compilation_cache

        enable_compilation_cache(cache_dir)
    return _run_experiment(name, out, mode, resume, verbose)


def _longest_first(names: list, out: str, mode: str) -> list:
    """`names` in the order a pool of workers should start them: the longest first, by the seconds each
    took in this mode when `out/manifest.json` last recorded it (never recorded: first, in the given order)."""
    manifest = _read_manifest(out)

    def seconds(name):
        entry = manifest.get(name, {})
        return entry.get("seconds") if entry.get("mode") == mode and isinstance(entry.get("seconds"), int) else None

    known = sorted((n for n in names if seconds(n) is not None), key=seconds, reverse=True)
    return [n for n in names if seconds(n) is None] + known


def _run_all(names: list, out: str, mode: str, resume: bool, verbose: bool, jobs: int):
    """Yield `(name, (curves, paths, made))` as experiments finish: in this process one after another
    (jobs = 1), or in `jobs` worker processes, longest first (each worker a fresh Python: JAX programs are
    not shared between processes, only the on-disk compilation cache). An experiment that raises stops
    the others from starting; those running finish and are recorded before the error is raised."""
    if jobs == 1 or len(names) == 1:
        for name in names:
            yield name, _run_experiment(name, out, mode, resume, verbose)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import jax

    cache_dir = jax.config.jax_compilation_cache_dir
    context = multiprocessing.get_context("spawn")  # JAX's threads do not survive a fork
    with ProcessPoolExecutor(max_workers=min(jobs, len(names)), mp_context=context) as pool:
        running = {
            pool.submit(_run_in_worker, name, out, mode, resume, verbose, cache_dir): name
            for name in _longest_first(names, out, mode)
        }
        error = None
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    error = error or future.exception()
                    for other in running:
                        other.cancel()
                    continue
                yield name, future.result()
        if error is not None:
            raise error


def reproduce(
    names=None,
    *,
    out: str,
    mode: str | None = None,
    quick: bool = False,
    smoke: bool = False,
    verbose: bool = True,
    resume: bool = False,
    jobs: int = 1,
) -> list:
    """Run experiments (default: all), write figures and `out/report.md`; return the failed curves.
    `mode`: one of `MODES` (default "full"; `quick=True` and `smoke=True` are older spellings of
    mode="quick" and mode="smoke"). `resume`: read back the runs whose summary under `out` has exactly
    their configuration (`experiments.common.finished_summary`) instead of running them. `jobs`: how many
    experiments run at once, each in its own process (on a 2-core CPU, two make quick mode about a fifth
    faster and full mode no faster, as its runs already use both cores; the figures, reports and
    manifest are the same)."""
    names = list(names or REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown experiment(s) {', '.join(unknown)}; `collapse-jax list` shows: {', '.join(REGISTRY)}"
        )
    mode = _mode(mode, quick, smoke)
    check_jobs(jobs)
    os.makedirs(out, exist_ok=True)
    results = {}
    for name, (new_curves, paths, made) in _run_all(names, out, mode, resume, verbose, jobs):
        results[name] = new_curves, paths
        repeated = common.repeated_curves(new_curves)
        unique = [c for i, c in enumerate(new_curves) if i not in repeated]
        _record_in_manifest(out, name, made, unique)
        if verbose:
            bad = sum(c.verdict["status"] == "fail" for c in unique)
            print(
                f"[{name}] {len(unique)} curves, {bad} failed, {made['seconds']:.0f} s; figures: {', '.join(paths)}",
                flush=True,
            )
    curves = [c for name in names for c in results[name][0]]  # the report in the order asked
    figures = {name: results[name][1] for name in names}
    report = report_markdown(curves, figures, out, DEFAULT_K)
    with open(os.path.join(out, "report.md"), "w") as stream:
        stream.write(report)
    if verbose:
        print(f"wrote {os.path.join(out, 'report.md')}")
    return [c for c in curves if c.verdict["status"] == "fail"]
