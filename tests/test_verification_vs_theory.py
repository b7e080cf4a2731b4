"""Simulated verification and mixture chains against theory.verification and theory.mixture:
every exact prediction within 5 standard errors (fixed seeds), with power checks and the convergence of
the asymptotic ridge limit."""

import numpy as np
import pytest

from collapse_jax.simulate import simulate
from tests.helpers import z_scores
from theory import mixture, verification

VERIFICATION_CASES = [
    dict(
        verifier="oracle",
        keep_correct=0.9,
        keep_wrong=0.3,
        label_noise=0.6,
        verified_budget="prune",
        samples=200,
        dim=20,
    ),
    dict(verifier="oracle", keep_correct=1.0, keep_wrong=0.2, label_noise=0.3, real_fraction=0.25, samples=100, dim=20),
    dict(verifier="oracle", keep_correct=1.0, keep_wrong=0.0, label_noise=0.45, best_of=3, samples=100, dim=20),
    dict(label_noise=0.2, samples=60, dim=30),
    dict(generator="fitted", generations=1, samples=40, dim=20),
]


@pytest.mark.parametrize(
    "config", [c if i in (0, 3) else pytest.param(c, marks=pytest.mark.slow) for i, c in enumerate(VERIFICATION_CASES)]
)
def test_verification_chain_matches_theory(config):
    summary = simulate("verification", dict(config, chains=3000, seed=11))
    checked = 0
    for name in ("accuracy", "kept_fraction", "p_star"):
        entry = summary["metrics"][name]
        assert entry["theory_kind"] == "exact", (name, entry["theory_note"])
        mean, theory, se = (np.asarray(entry[k], float) for k in ("mean", "theory", "se"))
        exact = se == 0  # a deterministic value (e.g. kept fraction 1/K, generation 0) must match outright
        np.testing.assert_allclose(mean[exact], theory[exact], rtol=1e-5, err_msg=name)
        z = z_scores(entry)[~exact]
        assert np.all(np.abs(z) < 5), (name, z)
        checked += 1
    assert checked == 3


def test_verification_comparison_rejects_a_verifier_blind_theory():
    """Power: the same simulation against the accuracy a verifier-blind formula predicts (p* = 1 - eps,
    i.e. keep probabilities 1 and 1) is off by many standard errors."""
    config = VERIFICATION_CASES[0]
    entry = simulate("verification", dict(config, chains=3000, seed=11))["metrics"]["accuracy"]
    blind = verification.accuracy_mean_classifier(
        dim=20, mean_norm=1.0, samples=200, label_noise=0.6, verified_budget="prune"
    )
    z = (entry["mean"][2] - float(blind)) / entry["se"][2]
    assert abs(z) > 5


@pytest.mark.parametrize(
    "config",
    [
        dict(dim=10, samples=40, synthetic_fraction=0.3, noise_var=0.0, chains=20_000),
        pytest.param(
            dict(dim=20, samples=60, synthetic_fraction=0.5, model="projection:5", noise_var=0.5, shift=2.0),
            marks=pytest.mark.slow,
        ),
    ],
)
def test_mixture_matches_the_exact_theory(config):
    entry = simulate("mixture", dict(dict(chains=4000, seed=5), **config))["metrics"]["test_error"]
    assert entry["theory_kind"] == "exact", entry["theory_note"]
    z = z_scores(entry)
    assert np.nanmax(np.abs(z)) < 5, z
    # power: theory.md C.2's approximation (4% low here; noise-free labels make the synthetic term
    # visible) or the N -> infinity limit is rejected at this small N
    if "model" in config:
        wrong = mixture.projection_limit(20, 5, 0.5, 2.0)
    else:
        wrong = mixture.ols_mixture_error(10, 40, 12, 0.0, 1.0)
    assert abs(entry["mean"][2] - float(wrong)) > 5 * entry["se"][2]


@pytest.mark.slow
def test_ridge_mixture_converges_to_its_infinite_data_limit():
    """The ridge prediction is the N -> infinity limit (asymptotic): the simulated gap to it is many
    standard errors at N = 100 and shrinks about like 1/N."""
    gaps = {}
    for n in (100, 1000):
        entry = simulate(
            "mixture", dict(dim=10, samples=n, synthetic_fraction=0.3, model="ridge:0.5", chains=2000, seed=2)
        )["metrics"]["test_error"]
        assert entry["theory_kind"] == "asymptotic"
        gaps[n] = (entry["mean"][2] - entry["theory"][2], entry["se"][2])
    assert gaps[100][0] > 5 * gaps[100][1]
    assert abs(gaps[1000][0]) < gaps[100][0] / 5 + 5 * gaps[1000][1]
