"""Discrete and tails simulations against the exact theory: chain means within 5 standard errors at
every generation (fixed seeds, 10^4 chains), and the same check rejects near-miss formulas (power)."""

import numpy as np
import pytest

import theory
from collapse_jax.simulate import simulate
from collapse_jax.summary import compare
from tests.helpers import z_scores

pytestmark = pytest.mark.statistical
K = 5.0
CHAINS = 10_000

CASES = [
    dict(
        law="zipf:1.5",
        categories=200,
        samples=50,
        policy="replace",
        generations=20,
        groups="head:1-5,minority:150-200",
        tail_rank=20,
    ),
    dict(law="zipf:1.5", categories=200, samples=50, policy="accumulate", generations=20, tail_rank=20),
    dict(
        law="zipf:1",
        categories=10,
        samples=50,
        policy="replace",
        generations=20,
        real_fraction=0.3,
        real_draw="mixture",
        metrics="l2_risk,gini_simpson,tail_mass",
    ),
    dict(
        law="zipf:1",
        categories=10,
        samples=50,
        policy="accumulate",
        generations=20,
        real_fraction=0.3,
        real_draw="mixture",
        metrics="l2_risk,gini_simpson,tail_mass",
    ),
    dict(
        law="uniform",
        categories=10,
        samples=40,
        policy="replace",
        generations=20,
        real_fraction=0.25,
        metrics="l2_risk,gini_simpson",
    ),
    dict(
        law="uniform",
        categories=10,
        samples=40,
        policy="accumulate",
        generations=20,
        real_fraction=0.25,
        metrics="l2_risk,gini_simpson",
    ),
]


def _id(case):
    return "-".join(f"{k}={v}" for k, v in case.items() if k not in ("metrics", "groups"))


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_discrete_means_match_theory(case):
    summary = simulate("discrete", dict(case, chains=CHAINS, seed=11))
    compared = 0
    for name, entry in summary["metrics"].items():
        verdict = compare(entry, K)
        if entry["theory_kind"] is None:
            assert name in ("entropy", "tv_distance", "kl_to_original"), (name, entry["theory_note"])
            continue
        assert verdict["status"] == "pass", (name, verdict)
        compared += verdict["compared"]
    assert compared >= case["generations"]


def test_wrong_generation_indexing_is_rejected():
    """F.2's recursion starts from a real-data fit E_0; reading its index t as our model t (one generation
    off) is caught by the same 5-SE check."""
    config = dict(CASES[3], chains=CHAINS, seed=11)
    summary = simulate("discrete", config)
    entry = summary["metrics"]["l2_risk"]
    assert compare(entry, K)["status"] == "pass"
    shifted = dict(entry, theory=[entry["theory"][0]] + entry["theory"][2:] + [entry["theory"][-1]])
    assert compare(shifted, K)["status"] == "fail"
    # (the fixed-count recursion differs from the mixture one only in O(1/M^2) terms: not a near miss
    # that 10^4 chains can tell apart, so it is not claimed here)


@pytest.mark.slow
def test_tails_memoriser_matches_the_exact_sums():
    """Generation 1 with a rank-30 cut law (exact sum), and generations 2-4 of the empirical chain after it
    (exact Wright-Fisher expectation), at several training sizes and with real draws mixed in."""
    summary = simulate(
        "tails",
        dict(
            law="zipf:2",
            categories=3000,
            samples=200,
            generations=4,
            chains=4000,
            generator="cut:30",
            train_sizes="10,100,1000",
            train_real_fraction=0.2,
            fixed_synthetic=50,
            seed=3,
        ),
    )
    for name, entry in summary["metrics"].items():
        verdict = compare(entry, K)
        assert entry["theory_kind"] == "exact" and verdict["status"] == "pass", (name, verdict)
        assert verdict["compared"] == 5
    # power: without the 50 fixed synthetic draws the prediction is off by many SE at T = 10
    wrong = theory.PREDICTORS["tails"]("test_error.10", **dict(summary["config"], fixed_synthetic=0))
    entry = summary["metrics"]["test_error.10"]
    assert np.nanmax(np.abs(z_scores(dict(entry, theory=[float(v) for v in np.asarray(wrong.mean)])))) > 10
