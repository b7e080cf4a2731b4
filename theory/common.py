"""Shared types for closed-form predictions."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Prediction(NamedTuple):
    """A prediction over generations 0..G.

    mean: `(G + 1,)` the predicted expectation of the metric (unconditional, over the real data too).
    kind: "exact" | "asymptotic" | "bound".
    log_relative_variance: `(G + 1,)` or None; log(1 + Var/E^2) of the heavy-tailed factor of the metric
      (the covariance scale). Where it is large, a sample mean over chains does not estimate the
      expectation (see `checkable`).
    quantiles: {level: `(G + 1,)`} or None; predicted quantiles of the metric's law.
    quantile_kind: kind of the quantile prediction.
    note: source and assumptions, one line.
    std: `(G + 1,)` or None; the predicted standard deviation of one chain's value (e.g. sqrt(t(1 - t))
      for an indicator of probability t). The comparison then uses the larger of the chains' standard
      error and std / sqrt(chains), so a rare event that no chain happened to show is not judged on a
      standard error of zero.
    """

    mean: np.ndarray
    kind: str
    log_relative_variance: np.ndarray | None = None
    quantiles: dict | None = None
    quantile_kind: str | None = None
    note: str = ""
    std: np.ndarray | None = None


class NoTheory(NamedTuple):
    """No closed form for this metric and configuration, and why."""

    reason: str


# The values of the simulation's chain options that the theory modules know (the simulation's names, repeated
# here because `theory` never imports `collapse_jax`). A value outside them (a pool rule added later, say
# "sliding-window") is one no formula here was derived for: `unmodelled` turns it into NoTheory.
POLICIES = ("replace", "accumulate", "accumulate-subsample")
REAL_SOURCES = ("fresh", "original")
REAL_DRAWS = ("fixed", "mixture")
METHODS = ("samples", "sufficient")  # both draw the same law (sufficient statistics are exact)
CURATIONS = ("best", "bradley-terry", "tilted")
VERIFIED_BUDGETS = ("refill", "prune", "weight")


def unmodelled(**options) -> NoTheory | None:
    """NoTheory naming the first option whose value a theory does not model, else None.

    Each keyword is `name=(value, modelled values)`, e.g. `unmodelled(policy=(policy, ("replace",)))`.
    """
    for name, (value, modelled) in options.items():
        if value not in modelled:
            known = ", ".join(repr(v) for v in modelled)
            return NoTheory(f"{name} {value!r}: not derived (this theory models {name} {known} only)")
    return None


def typed(value, parse_text, *context):
    """An option's typed value. The simulation passes every option parsed (a `(kind, value)` pair such as
    `("power", 1.5)`, an array, numbers, or None for "none"), and that is returned as it is; a string (the
    command line's form, for a call by hand) is read by `parse_text(value, *context)`."""
    return parse_text(value, *context) if isinstance(value, str) else value


def checkable(log_relative_variance, num_chains: int):
    """Whether a mean over `num_chains` chains estimates the expectation of a log-normal-like metric.

    A product of k scaled chi-squares is close to log-normal with log-variance s^2 = log(1 + Var/E^2);
    the sample mean of C such draws is dominated by rare large draws until C >> exp(s^2). We call the
    mean checkable when exp(s^2) <= C^(1/4), i.e. s^2 <= log(C) / 4 (C = 10^4: s^2 <= 2.3).
    """
    if log_relative_variance is None:
        return None
    return np.asarray(log_relative_variance) <= np.log(num_chains) / 4.0


def integer_at_least(value, name: str, minimum: int = 0) -> int:
    """`value` as an int, or ValueError naming `name` if it is not a whole number >= `minimum`."""
    if isinstance(value, bool) or int(value) != value or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def nonnegative(value, name: str) -> float:
    """`value` as a float, or ValueError naming `name` if it is not finite and >= 0."""
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def probability(value, name: str) -> float:
    """`value` as a float, or ValueError naming `name` if it is outside [0, 1]."""
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    return value


def real_count(samples: int, real_fraction: float) -> int:
    """r = floor(alpha M + 1/2): the real points per generation k >= 2 with a fixed real share."""
    return int(math.floor(real_fraction * samples + 0.5))
