"""Regression setting: OLS chains against the exact theory (fixed and fresh design), with the power to
reject near-miss formulas; ridge and the minimum-norm interpolator; validation."""

import numpy as np
import pytest

from collapse_jax.simulate import simulate
from tests.helpers import z_scores

CHAINS = 10_000
BASE = {"dim": 10, "samples": 16, "generations": 12, "chains": CHAINS, "noise_var": 2.0, "seed": 5}


def run(**overrides):
    return simulate("regression", {**BASE, **overrides})["metrics"]["excess_risk"]


def max_z(entry, theory) -> float:
    mean, se = np.asarray(entry["mean"], float), np.asarray(entry["se"], float)
    z = np.abs(mean[1:] - theory[1:]) / se[1:]
    return float(np.max(z))


def ols_replace(k, d, t, s2):
    return k * s2 * d / (t - d - 1)


@pytest.mark.statistical
@pytest.mark.parametrize("policy, design", [("replace", "fixed"), ("replace", "fresh"), ("accumulate", "fixed"),
                                            ("accumulate", "fresh")])
def test_ols_matches_theory_and_rejects_near_misses(policy, design):
    entry = run(policy=policy, design=design)
    assert entry["theory_kind"] == "exact"
    assert np.nanmax(np.abs(z_scores(entry))) <= 5.0
    k = np.arange(BASE["generations"] + 1)
    d, t, s2 = BASE["dim"], BASE["samples"], BASE["noise_var"]
    if policy == "replace":
        wrong = k * s2 * d / (t - d)  # E (X^T X)^-1 taken as I / (T - d): off by 20 % here
    elif design == "fixed":  # the fresh-design formula applied to a fixed design, and vice versa
        wrong = np.concatenate([[0], np.cumsum(s2 * d / (k[1:] * (k[1:] * t - d - 1)))])
    else:
        wrong = np.concatenate([[0], np.cumsum(s2 * d / (t - d - 1) / k[1:] ** 2)])
    assert max_z(entry, wrong) > 5.0


def test_ridge_shrinks_and_min_norm_interpolates():
    ols = run(policy="replace", design="fixed", chains=2000)
    ridge = run(policy="replace", design="fixed", chains=2000, ridge=0.5)
    assert ridge["theory_kind"] is None and "ridge" in ridge["theory_note"]
    assert ridge["mean"][-1] < ols["mean"][-1]
    # d > T: the minimum-norm interpolator; bias (1 - T/d) ||w*||^2 at generation 1 plus noise
    over = run(dim=40, samples=10, policy="accumulate", design="fixed", chains=2000, noise_var=0.0)
    assert over["nonfinite_chains"][-1] == 0
    assert abs(over["mean"][1] - (1 - 10 / 40)) < 5 * over["se"][1]


def test_regression_validation():
    with pytest.raises(ValueError, match="noise_var"):
        simulate("regression", {"noise_var": -1.0})
    with pytest.raises(ValueError, match="design"):
        simulate("regression", {"design": "random"})
    with pytest.raises(ValueError, match="real_fraction"):
        simulate("regression", {"design": "fixed", "real_fraction": 0.5})
    with pytest.raises(ValueError, match="sufficient"):
        simulate("regression", {"method": "sufficient", "policy": "accumulate-subsample"})
