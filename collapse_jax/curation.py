"""Curation of synthetic points by a reward (Ferbach, Bertrand, Bose & Gidel 2024), an engine feature any
setting with a reward gets: the parameters `curation` and `best_of`, the checks of their combinations, and
`curated`, which turns a setting and a `Reward` into the curated setting (a best-of-K verifier, or the
tilted law). JAX is imported inside `curated` only."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from collapse_jax.options import CURATIONS, REWARD_METRIC
from collapse_jax.parameters import Parameter

if TYPE_CHECKING:
    from collapse_jax.types import Reward, Setting


# the engine's curation by a reward (Ferbach et al. 2024), for settings with a reward (SettingDefinition.rewards);
# the setting gives the help of `reward` (its forms)
CURATION = Parameter(
    "curation",
    str,
    "best",
    "with --reward: best (best-of-K keeps the highest reward), bradley-terry (best-of-K keeps candidate j "
    "with probability e^r_j / sum_i e^r_i) or tilted (the K -> infinity limit: draws from the model's law "
    "times e^r, renormalised; leave --best-of at 1)",
    choices=CURATIONS,
)


REWARD_BEST_OF = Parameter(
    "best_of",
    int,
    1,
    "K: with --reward, each synthetic point is picked among K candidates (1: no curation)",
    low=1,
    high=1024,
)


def complete_curation(config: dict, overrides: dict) -> dict:
    """With a reward, its metric `expected_reward` is recorded unless --metrics says otherwise."""
    if config["reward"] != "none" and "metrics" not in overrides and REWARD_METRIC not in config["metrics"]:
        config = {**config, "metrics": tuple(config["metrics"]) + (REWARD_METRIC,)}
    return config


def check_curation(config: dict) -> None:
    """The combinations of `reward`, `curation` and `best_of` the engine runs (ValueError otherwise)."""
    if config["reward"] == "none":
        if config["curation"] != "best" or config["best_of"] != 1:
            raise ValueError("curation (--curation) and best_of (--best-of) need a reward (--reward)")
        if REWARD_METRIC in config["metrics"]:
            raise ValueError(f"metrics (--metrics): {REWARD_METRIC} needs a reward (--reward)")
        return
    if config["best_of"] > 1 and config["method"] != "samples":  # best-of-K compares drawn candidates
        raise ValueError(
            f"method (--method) must be 'samples' with best_of (--best-of) = {config['best_of']} "
            "(the candidates are drawn points); curation tilted runs on either path"
        )


def curated(setting: Setting, reward: Reward, config: dict) -> Setting:
    """`setting` with its synthetic points curated by `reward` as `config` says (`curation`, `best_of`):
    best-of-K through a verifier that keeps every candidate and scores it by the reward, or the tilted law
    (K -> infinity); with `expected_reward` among the metrics, E r under each model is recorded."""
    import jax.numpy as jnp

    from collapse_jax.types import Verifier

    if config["curation"] == "tilted":
        if reward.tilt is None:
            raise ValueError(f"curation (--curation) tilted: this reward's tilted law has no form in {setting.name}")
        setting = setting._replace(tilt=reward.tilt)
    elif config["best_of"] > 1:
        verifier = Verifier(keep_probability=lambda points: jnp.ones(points.shape[:1]), score=reward.score)
        setting = setting._replace(verifier=verifier)
    if REWARD_METRIC not in config["metrics"]:
        return setting
    metrics, truth_metrics = setting.metrics, setting.truth_metrics
    expected_truth = reward.expected_truth or reward.expected
    if setting.random_metrics:

        def with_reward(key, params, true):
            return {**metrics(key, params, true), REWARD_METRIC: reward.expected(params)}

        def truth_with_reward(key, true):
            return {**truth_metrics(key, true), REWARD_METRIC: expected_truth(true)}
    else:

        def with_reward(params, true):
            return {**metrics(params, true), REWARD_METRIC: reward.expected(params)}

        def truth_with_reward(true):
            return {**truth_metrics(true), REWARD_METRIC: expected_truth(true)}

    return setting._replace(metrics=with_reward, truth_metrics=None if truth_metrics is None else truth_with_reward)


def parse_reward(text: str, size: int, scalar: Callable[[float], np.ndarray], forms: str) -> np.ndarray | None:
    """A `--reward` string: "none" (None) or "linear:" followed by one number A (`scalar(A)` gives the
    `(size,)` coefficients) or `size` comma-separated coefficients; finite, at most 1e4 in size (e^r is
    taken in float32 through logits). Raises ValueError naming reward (--reward) and `forms`."""
    if text == "none":
        return None
    error = f"reward (--reward) must be none or {forms}; got {text!r}"
    if not text.startswith("linear:"):
        raise ValueError(error)
    try:
        values = [float(part) for part in text[len("linear:") :].split(",")]
    except ValueError:
        raise ValueError(error) from None
    if len(values) not in (1, size) or not all(math.isfinite(v) and abs(v) <= 1e4 for v in values):
        raise ValueError(f"{error} (one number, or {size} numbers, each finite with |a| <= 1e4)")
    return scalar(values[0]) if len(values) == 1 else np.asarray(values, np.float64)
