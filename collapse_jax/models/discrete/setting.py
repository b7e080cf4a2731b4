"""The discrete setting: its parameter table and builder (JAX is imported inside the builder)."""

from __future__ import annotations

import numpy as np

from collapse_jax.curation import parse_reward
from collapse_jax.options import (
    CATEGORICAL_METRICS,
    REWARD_METRIC,
)
from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
    check_model_size,
    load_array,
    prefixed_number,
)


def zipf_probabilities(beta: float, categories: int) -> np.ndarray:
    """Zipf's law `(K,)` (float64): p_i ~ i^-beta over i = 1..K."""
    weights = np.arange(1, categories + 1, dtype=np.float64) ** -beta
    return weights / weights.sum()


def parse_law(text: str, values: dict) -> np.ndarray:
    """The probability vector `(K,)` (float64 NumPy, K = `categories`) of a `--law` string: zipf:BETA
    (p_i ~ i^-BETA), uniform, or file:PATH (K non-negative numbers summing to 1, .npy or text). Raises
    ValueError."""
    where = "law (--law)"
    categories = values["categories"]
    if text == "uniform":
        return np.full(categories, 1.0 / categories)
    if text.startswith("zipf:"):
        return zipf_probabilities(
            prefixed_number(text, "zipf:", "BETA", 10, where, "zipf:BETA, uniform or file:PATH"), categories
        )
    if text.startswith("file:"):
        values = load_array(text[len("file:") :], where).astype(np.float64)
        if values.shape != (categories,):
            raise ValueError(
                f"{where}: the file must hold a ({categories},) vector (--categories), got shape {values.shape}"
            )
        if not np.isfinite(values).all() or np.any(values < 0):
            raise ValueError(f"{where}: probabilities must be finite and >= 0")
        if abs(values.sum() - 1.0) > 1e-6:
            raise ValueError(f"{where}: probabilities must sum to 1 (within 1e-6), got sum {values.sum():.9g}")
        return values / values.sum()
    raise ValueError(f"{where} must be zipf:BETA, uniform or file:PATH; got {text!r}")


def parse_groups(text: str, values: dict) -> tuple[tuple[str, int, int], ...]:
    """`((name, first, last), ...)` of a `--groups` string "NAME:FIRST-LAST,..." (1-based inclusive
    category indices; disjoint ranges; names of letters, digits, '_' and '-'). Raises ValueError."""
    import re

    where = "groups (--groups)"
    categories = values["categories"]
    groups, taken = [], set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        match = re.fullmatch(r"([A-Za-z0-9_\-]+):(\d+)-(\d+)", part)
        if not match:
            raise ValueError(f"{where} must be NAME:FIRST-LAST[,NAME:FIRST-LAST...]; got {part!r}")
        name, first, last = match.group(1), int(match.group(2)), int(match.group(3))
        if not 1 <= first <= last <= categories:
            raise ValueError(
                f"{where}: {name} needs 1 <= FIRST <= LAST <= categories = {categories}, got {first}-{last}"
            )
        if name in {g[0] for g in groups}:
            raise ValueError(f"{where}: group name {name!r} appears twice")
        span = set(range(first, last + 1))
        if span & taken:
            raise ValueError(f"{where}: group {name!r} overlaps another group (groups must be disjoint)")
        taken |= span
        groups.append((name, first, last))
    return tuple(groups)


def categorical_metric_names(values, base_names):
    groups = values["groups"]
    return (
        tuple(base_names) + tuple(f"group_mass.{g[0]}" for g in groups) + tuple(f"group_extinct.{g[0]}" for g in groups)
    )


def allowed(values):
    rewarded = (REWARD_METRIC,) if values["reward"] is not None else ()
    return set(categorical_metric_names(values, CATEGORICAL_METRICS)) | set(rewarded)


def reward_values(text, values):
    """r(i) `(K,)` of a `--reward` string (None for none)."""
    k = values["categories"]
    return parse_reward(text, k, lambda value: value * np.arange(k) / (k - 1), "linear:A or linear:r_1,...,r_K")


def reward(values):
    if values["reward"] is None:
        return None
    from collapse_jax.models.discrete.model import category_reward

    return category_reward(values["reward"])


def check(config):
    law = config["law"]
    if not 1 <= config["tail_rank"] < config["categories"]:
        raise ValueError(
            f"tail_rank (--tail-rank) must be in [1, categories - 1 = {config['categories'] - 1}], "
            f"got {config['tail_rank']}"
        )
    bad = [m for m in config["metrics"] if m not in allowed(config)]
    if bad:
        raise ValueError(
            f"metrics (--metrics): unknown {', '.join(bad)}; allowed: {', '.join(sorted(allowed(config)))}"
        )
    if config["smoothing"] > 0 and "kl_to_original" in config["metrics"] and (law == 0).any():
        raise ValueError(
            "metrics (--metrics): kl_to_original is infinite with smoothing > 0 and a law with "
            "zero-probability categories; drop it or set smoothing (--smoothing) to 0"
        )
    check_model_size(config, "discrete")


def complete(config, overrides):
    if "tail_rank" not in overrides:
        config = {**config, "tail_rank": max(1, min(config["tail_rank"], config["categories"] - 1))}
    if "metrics" not in overrides:
        config = {**config, "metrics": categorical_metric_names(config, CATEGORICAL_METRICS)}
    return config


def build(config):
    from collapse_jax.models.discrete.model import (
        alias_table,
        categorical_metrics,
        law_metrics,
        make_categorical,
        sample_alias,
        true_law,
    )
    from collapse_jax.types import Setting

    k = config["categories"]
    law, groups = config["law"], config["groups"]
    truth = true_law(law, tail_rank=config["tail_rank"], groups=[(g[1], g[2]) for g in groups])
    table = alias_table(law)
    names = tuple(config["metrics"])
    group_names = tuple(g[0] for g in groups)
    setting = Setting(
        "discrete",
        make_categorical(k, smoothing=config["smoothing"]),
        truth,
        lambda params, true: categorical_metrics(params, true, names, group_names),
        sample_real=lambda key, n: sample_alias(key, table, n),
        truth_metrics=lambda true: law_metrics(true.probabilities, true, names, group_names),
    )
    return setting


DEFINITION = SettingDefinition(
    samples_only_reason="counts are drawn point by point",
    name="discrete",
    description="recursive fitting of a categorical law by its empirical frequencies (Wright-Fisher drift "
    "under replace): the tails and minorities vanish first",
    parameters=(
        Parameter(
            "law",
            str,
            "zipf:1.5",
            "true law: zipf:BETA (p_i ~ i^-BETA), uniform or file:PATH (K probabilities)",
            parse=parse_law,
        ),
        Parameter("categories", int, 1000, "K, number of categories", low=2, high=10**6),
        Parameter("smoothing", float, 0.0, "add-k (Lidstone) pseudo-count per category", low=0, high=1e6),
        Parameter(
            "tail_rank",
            int,
            10,
            "r: tail_mass is the mass of the categories of rank > r in the true law "
            "(default 10, or K - 1 when K <= 10)",
            low=1,
            high=10**6,
        ),
        Parameter(
            "groups",
            str,
            "",
            "groups of categories, NAME:FIRST-LAST,... (1-based indices; metrics group_mass.NAME, group_extinct.NAME)",
            parse=parse_groups,
        ),
        Parameter(
            "metrics",
            "list",
            CATEGORICAL_METRICS,
            "metrics to record (default: all, with group_mass.NAME and group_extinct.NAME for each group)",
        ),
    ),
    build=build,
    check=check,
    complete=complete,
    tempers=True,
    reward=reward,
    reward_parse=reward_values,
    reward_help="r(i), a reward on the categories that curates the synthetic points (Ferbach et al. "
    "2024): none, linear:A (r(i) = A (i - 1) / (K - 1), category i = 1..K) or linear:r_1,...,r_K; with "
    f"--best-of K or --curation tilted (q e^r / Z); records {REWARD_METRIC} = sum_i q_i r(i)",
)
