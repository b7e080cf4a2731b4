"""`summary.json` (schema collapse-jax/summary/1), `chains.npz`, and simulation-vs-theory comparison.

A summary holds, per metric and generation: the chain mean and its standard error (over finite chain
values), quantiles, the closed-form prediction where one exists with its kind, whether the mean is
checkable against it (heavy tails), and the count of chains whose value was not finite. Non-finite
numbers are written as null.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import subprocess
import tempfile

import numpy as np

SCHEMA = "collapse-jax/summary/1"
DEFAULT_K = 5.0


def _json_list(values) -> list:
    return [float(v) if v is not None and math.isfinite(float(v)) else None for v in np.asarray(values, float).ravel()]


def git_commit(path: str | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path or os.path.dirname(__file__), capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def metric_entry(moments, quantiles, prediction, num_chains: int) -> dict:
    """One metric's block. `prediction` is a theory Prediction, a NoTheory, or None."""
    from theory.common import NoTheory, checkable

    entry = {
        "mean": _json_list(moments.finite_mean()),
        "se": _json_list(moments.standard_error),
        "std": _json_list(moments.std),
        "quantiles": {level: _json_list(q) for level, q in (quantiles or {}).items()},
        "theory": [None] * len(moments.count),
        "theory_kind": None,
        "theory_note": None,
        "theory_std": None,
        "checkable": None,
        "theory_quantiles": None,
        "theory_quantile_kind": None,
        "finite_chains": [int(c) for c in moments.count],
        "nonfinite_chains": [int(c) for c in moments.nonfinite],
        "nonfinite": {
            "nan": [int(c) for c in moments.nan],
            "+inf": [int(c) for c in moments.posinf],
            "-inf": [int(c) for c in moments.neginf],
        },
    }
    if isinstance(prediction, NoTheory):
        entry["theory_note"] = prediction.reason
    elif prediction is not None:
        entry["theory"] = _json_list(prediction.mean)
        entry["theory_kind"] = prediction.kind
        entry["theory_note"] = prediction.note
        if prediction.std is not None:
            entry["theory_std"] = _json_list(prediction.std)
        mask = checkable(prediction.log_relative_variance, num_chains)
        entry["checkable"] = [True] * len(moments.count) if mask is None else [bool(b) for b in mask]
        if prediction.quantiles is not None:
            entry["theory_quantiles"] = {level: _json_list(q) for level, q in prediction.quantiles.items()}
            entry["theory_quantile_kind"] = prediction.quantile_kind
    return entry


def build_summary(setting: str, config: dict, result, predictions: dict) -> dict:
    """The summary dict of a finished run (`result` is a `RunResult`)."""
    import jax

    return {
        "schema": SCHEMA,
        "setting": setting,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "seed": config["seed"],
        "num_chains": result.num_chains,
        "jax_version": jax.__version__,
        "device": result.device,
        "num_devices": result.num_devices,
        "chunk_size": result.chunk_size,
        "quantile_chains": result.quantile_chains,
        "git_commit": git_commit(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "timing": {"compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds},
        "generations": [int(g) for g in result.generations],
        "metrics": {
            name: metric_entry(moments, result.quantiles.get(name), predictions.get(name), result.num_chains)
            for name, moments in result.moments.items()
        },
    }


def write_atomic(path: str, write) -> None:
    """Write a file through a temporary sibling and an atomic rename: never half-written."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_summary(summary: dict, path: str) -> None:
    text = json.dumps(summary, indent=1, allow_nan=False)
    write_atomic(path, lambda stream: stream.write(text.encode()))


def write_chains(chains: dict, generations, path: str) -> None:
    arrays = {name: np.asarray(values) for name, values in chains.items()}
    arrays["generations"] = np.asarray(generations)
    write_atomic(path, lambda stream: np.savez(stream, **arrays))


def load_summary(path: str) -> dict:
    with open(path) as stream:
        summary = json.load(stream)
    if summary.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema must be {SCHEMA!r}, got {summary.get('schema')!r}")
    return summary


def compare(entry: dict, k: float = DEFAULT_K) -> dict:
    """Largest |simulation - theory| in standard errors over the checkable generations of one metric.

    Generations whose theory or mean is not finite, or whose chains were not all finite (e.g. a
    determinant that underflows float32), are skipped and counted; but a finite theory beside a mean or
    standard error that overflowed while every chain is finite (a run that diverged) makes the status "fail". The standard error is floored at 1e-6 max(1, |theory|), so a quantity that is exact up
    to rounding (generation 0, the truth itself; a bias that vanishes for OLS) is held to float32 rounding;
    where the theory gives a per-chain standard deviation, the standard error it implies is a floor too. Returns {"status": "pass"|"fail"|"no theory"|"not checkable",
    "max_z", "at_generation", "compared", "skipped", "not_checkable"}.
    """
    theory = entry.get("theory") or []
    if entry.get("theory_kind") is None or not any(t is not None for t in theory):
        return {"status": "no theory", "max_z": None, "at_generation": None, "compared": 0, "skipped": 0, "not_checkable": 0}
    checkable = entry.get("checkable") or [True] * len(theory)
    null_se = [None] * len(theory)
    if entry.get("theory_std") is not None and entry.get("finite_chains") is not None:
        null_se = [None if s is None else s / math.sqrt(max(n, 1)) for s, n in zip(entry["theory_std"], entry["finite_chains"])]
    worst, at, compared, skipped, unchecked, diverged = 0.0, None, 0, 0, 0, 0
    for g, (mean, se, t, ok, bad) in enumerate(zip(entry["mean"], entry["se"], theory, checkable, entry["nonfinite_chains"])):
        if t is None or mean is None or se is None or bad:
            skipped += 1
            diverged += t is not None and ok and not bad  # a statistic overflowed though every chain is finite
            continue
        if not ok:
            unchecked += 1
            continue
        scale = max(se, 1e-6 * max(1.0, abs(t)))  # a floor for float32 rounding where the chains barely vary
        if null_se[g] is not None:
            scale = max(scale, null_se[g])  # the standard error the theory implies (rare events)
        z = abs(mean - t) / scale
        compared += 1
        if z >= worst:
            worst, at = z, g
    if diverged:
        status = "fail"
    elif compared == 0:
        status = "not checkable" if unchecked else "no theory"
    elif entry["theory_kind"] == "exact":
        status = "pass" if worst <= k else "fail"
    else:
        status = "pass" if worst <= k else "deviates (asymptotic)"
    return {"status": status, "max_z": worst if compared else None, "at_generation": at, "compared": compared, "skipped": skipped, "not_checkable": unchecked}
