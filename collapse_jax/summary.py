"""`summary.json` (schema collapse-jax/summary/1), `chains.npz`, and simulation-vs-theory comparison.

A summary holds, per metric and generation: the chain mean and its standard error (over finite chain
values), quantiles, the closed-form prediction where one exists with its kind, whether the mean is
checkable against it (heavy tails), and the count of chains whose value was not finite. Non-finite
numbers are written as null; an infinite theory value is named in `theory_infinite`, and the infinities a
metric takes exactly by definition in `exact_infinities` (see `compare` for how they are judged).
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


# Values a metric takes exactly, by its definition, and when: a chain at one of them is counted and
# named but is not a failure where no theory value says otherwise (see `compare`). NaN is never here.
EXACT_INFINITIES = {
    "log_det_ratio": {"-inf": "singular fitted covariance: log det = -inf"},
    "kl_divergence": {"+inf": "singular (or float-collapsed) fitted covariance: KL(truth || model) = +inf"},
    "kl_to_original": {"+inf": "model mass where the truth has none: KL = +inf"},
}
_KINDS = ("nan", "+inf", "-inf")
_SHOWN = {"nan": "NaN"}


def _json_list(values) -> list:
    return [float(v) if v is not None and math.isfinite(float(v)) else None for v in np.asarray(values, float).ravel()]


def _infinities(values) -> list:
    """Per value: "+inf", "-inf" or None (finite or NaN)."""
    return [None if not math.isinf(v) else "+inf" if v > 0 else "-inf" for v in np.asarray(values, float).ravel()]


def git_commit(path: str | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path or os.path.dirname(__file__),
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def metric_entry(moments, quantiles, prediction, num_chains: int, name: str | None = None) -> dict:
    """One metric's block. `prediction` is a theory Prediction, a NoTheory, or None; `name` picks the
    metric's `EXACT_INFINITIES`."""
    from theory.common import NoTheory, checkable

    entry = {
        "mean": _json_list(moments.finite_mean()),
        "se": _json_list(moments.standard_error),
        "std": _json_list(moments.std),
        "quantiles": {level: _json_list(q) for level, q in (quantiles or {}).items()},
        "theory": [None] * len(moments.count),
        "theory_infinite": [None] * len(moments.count),
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
        "exact_infinities": dict(EXACT_INFINITIES.get(name, {})),
    }
    if isinstance(prediction, NoTheory):
        entry["theory_note"] = prediction.reason
    elif prediction is not None:
        entry["theory"] = _json_list(prediction.mean)
        entry["theory_infinite"] = _infinities(prediction.mean)
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

    metrics = {
        name: metric_entry(moments, result.quantiles.get(name), predictions.get(name), result.num_chains, name)
        for name, moments in result.moments.items()
    }
    for entry in metrics.values():
        entry["comparison"] = compare(entry)
    from collapse_jax.settings import SETTINGS

    notes = list(SETTINGS[setting].notes(config)) if setting in SETTINGS else []
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
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "timing": {"compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds},
        "generations": [int(g) for g in result.generations],
        "metrics": metrics,
        "notes": notes,
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


def _nonfinite_scan(entry: dict, theory: list, has_theory: bool) -> dict:
    """Which non-finite chains are exempt (a value the theory or the metric's definition gives exactly)
    and which are not; see `compare`."""
    n = len(entry["mean"])
    nonfinite_chains = entry.get("nonfinite_chains") or [0] * n
    counts = entry.get("nonfinite") or {"nan": nonfinite_chains, "+inf": [0] * n, "-inf": [0] * n}
    theory_infinite = (entry.get("theory_infinite") if has_theory else None) or [None] * n
    declared = entry.get("exact_infinities") or {}
    first, most, kinds, where_theory, exempt_counts = None, 0, [], False, {}
    for g in range(n):
        t = theory[g] if has_theory and g < len(theory) else None
        infinite = theory_infinite[g]
        if infinite is not None:  # the theory value is this infinity: chains at it are exact
            reason = f"theory {infinite}" + (f"; {declared[infinite]}" if infinite in declared else "")
            exempt = {infinite: reason}
        elif t is None:  # no theory value here: only the metric's own exact infinities are exempt
            exempt = declared
        else:  # a finite theory value: every non-finite chain is wrong
            exempt = {}
        bad = 0
        for kind in _KINDS:
            count = int(counts[kind][g] or 0)
            if not count:
                continue
            if kind in exempt:
                record = exempt_counts.setdefault(kind, {"chains_max": 0, "from_generation": g, "reason": exempt[kind]})
                record["chains_max"] = max(record["chains_max"], count)
                if infinite is not None:
                    record["reason"] = exempt[kind]
            else:
                bad += count
                if kind not in kinds:
                    kinds.append(kind)
        if bad:
            first = g if first is None else first
            most = max(most, bad)
            where_theory |= t is not None or infinite is not None
    finite = entry.get("finite_chains")
    chains = max(int(a) + int(b) for a, b in zip(finite, nonfinite_chains)) if finite else None
    return {
        "nonfinite_from_generation": first,
        "nonfinite_chains_max": most,
        "nonfinite_kinds": [k for k in _KINDS if k in kinds],
        "nonfinite_where_theory": where_theory,
        "chains": chains,
        "legitimate_infinite": exempt_counts,
    }


def _of_chains(count: int, chains) -> str:
    return f"{count} of {chains}" if chains is not None else str(count)


def verdict_text(verdict: dict, *, with_z: bool = True) -> str:
    """A `compare` result as one line, every non-finite chain counted (e.g. "fail: 20 of 20 chains
    non-finite from generation 2 (NaN)"); `with_z=False` leaves out the "max z SE" part."""
    status, parts = verdict["status"], []
    overflow_at = verdict.get("overflow_at_generation")
    chains = verdict.get("chains")
    span = None
    if verdict.get("nonfinite_chains_max"):
        kinds = ", ".join(_SHOWN.get(kind, kind) for kind in verdict.get("nonfinite_kinds", ()))
        span = (
            f"{_of_chains(verdict['nonfinite_chains_max'], chains)} chains non-finite from generation "
            f"{verdict['nonfinite_from_generation']}" + (f" ({kinds})" if kinds else "")
        )
    z = None
    if with_z and verdict.get("max_z") is not None:
        z = f"max {verdict['max_z']:.2f} SE over {verdict['compared']} generations"
    if status == "fail" and span and verdict.get("nonfinite_where_theory"):
        head = f"fail: {span}"
        if z:
            parts.append(z)
    else:
        head = status + (f" ({z})" if z else "")
        if span:
            parts.append(span)
    if overflow_at is not None:
        parts.append(f"mean or SE overflowed at generation {overflow_at} with every chain finite")
    for kind, record in (verdict.get("legitimate_infinite") or {}).items():
        parts.append(
            f"{kind} at {_of_chains(record['chains_max'], chains)} chains from generation "
            f"{record['from_generation']}, exact ({record['reason']})"
        )
    return "; ".join([head] + parts)


def compare(entry: dict, k: float = DEFAULT_K) -> dict:
    """Largest |simulation - theory| in standard errors over the checkable generations of one metric,
    and whether any chain went non-finite where it should not have.

    Non-finite chains. A chain value is exempt only where it is the exact value: the same infinity as
    the theory value at that generation (`theory_infinite`, e.g. log_det_ratio = -inf for a singular
    fit), or, at a generation without a theory value, one of the metric's `exact_infinities` (e.g.
    kl_divergence = +inf for a singular covariance). NaN is never exempt. Any other non-finite chain at
    a generation with a theory value (finite or infinite) makes the status "fail"; at generations
    without one it is counted and reported in "message" (status "no theory" stays). The counts:
    `nonfinite_from_generation` is the first generation with a non-exempt non-finite chain,
    `nonfinite_chains_max` the most such chains at any one generation (non-finite chains rarely recover,
    so this is the extent of the damage), `nonfinite_kinds` their kinds ("nan", "+inf", "-inf"), `chains`
    the number of chains; exempt ones are named in `legitimate_infinite` ({kind: {"chains_max",
    "from_generation", "reason"}}).

    Comparison. Generations whose theory or mean is not finite, or whose chains were not all finite, are
    skipped (the mean over the finite chains is not the metric's mean) and counted; a finite theory beside
    a mean or standard error that overflowed while every chain is finite (a run that diverged) makes the
    status "fail". The standard error is floored at 1e-6 max(1, |theory|), so a quantity that is exact up
    to rounding (generation 0, the truth itself; a bias that vanishes for OLS) is held to float32 rounding;
    where the theory gives a per-chain standard deviation, the standard error it implies is a floor too.

    Returns {"status": "pass"|"fail"|"deviates (asymptotic)"|"no theory"|"not checkable", "max_z",
    "at_generation", "compared", "skipped", "not_checkable", "nonfinite_from_generation",
    "nonfinite_chains_max", "nonfinite_kinds", "nonfinite_where_theory", "chains", "legitimate_infinite",
    "overflow_at_generation", "message"}, "message" being the one-line verdict ("fail: 20 of 20 chains non-finite from
    generation 2 (NaN)", "no theory; 37 of 100 chains non-finite from generation 5 (NaN)", ...).
    """
    theory = entry.get("theory") or []
    theory_infinite = entry.get("theory_infinite") or [None] * len(theory)
    has_theory = entry.get("theory_kind") is not None and any(
        t is not None or i is not None for t, i in zip(theory, theory_infinite)
    )
    scan = _nonfinite_scan(entry, theory, has_theory)
    worst, at, compared, skipped, unchecked, overflow_at = 0.0, None, 0, 0, 0, None
    if has_theory:
        checkable = entry.get("checkable") or [True] * len(theory)
        null_se = [None] * len(theory)
        if entry.get("theory_std") is not None and entry.get("finite_chains") is not None:
            null_se = [
                None if s is None else s / math.sqrt(max(n, 1))
                for s, n in zip(entry["theory_std"], entry["finite_chains"])
            ]
        for g, (mean, se, t, ok, bad) in enumerate(
            zip(entry["mean"], entry["se"], theory, checkable, entry["nonfinite_chains"])
        ):
            if t is None or mean is None or se is None or bad:
                skipped += 1
                if t is not None and ok and not bad and overflow_at is None:
                    overflow_at = g  # a statistic overflowed though every chain is finite
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
    if overflow_at is not None or scan["nonfinite_where_theory"]:
        status = "fail"
    elif compared == 0:
        status = "not checkable" if unchecked else "no theory"
    elif entry["theory_kind"] == "exact":
        status = "pass" if worst <= k else "fail"
    else:
        status = "pass" if worst <= k else "deviates (asymptotic)"
    verdict = {
        "status": status,
        "max_z": worst if compared else None,
        "at_generation": at,
        "compared": compared,
        "skipped": skipped,
        "not_checkable": unchecked,
        **scan,
        "overflow_at_generation": overflow_at,
    }
    verdict["message"] = verdict_text(verdict)
    return verdict
