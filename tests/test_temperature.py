"""Sampling temperature (`temperature`, Marchi et al. 2024) as an engine feature: the synthetic points are
drawn from `Estimator.temper(params, tau)`; the exact Gaussian recursions (our derivation) against
simulation with power against the untempered theory, the infinite-sample boundary, one program across
temperatures, and clear errors."""

import numpy as np
import pytest

import theory
from collapse_jax.settings import get_setting
from collapse_jax.simulate import simulate
from collapse_jax.summary import compare

K = 5.0
METRICS = "mean_error_sq,trace_ratio,log_det_ratio"


def _checked(summary):
    compared = 0
    for name, entry in summary["metrics"].items():
        verdict = compare(entry, K)
        if entry["theory_kind"] is None:
            continue
        assert verdict["status"] == "pass", (name, verdict)
        compared += verdict["compared"]
    return compared


@pytest.mark.statistical
@pytest.mark.parametrize(
    "case",
    [
        dict(dim=2, samples=20, policy="replace", temperature=1.15, metrics=METRICS),
        dict(dim=1, samples=20, policy="replace", temperature=0.85, metrics=METRICS + ",w2_sq", method="sufficient"),
        dict(dim=2, samples=20, policy="accumulate", temperature=1.3, real_fraction=0.3, metrics=METRICS),
    ],
    ids=["replace-hot", "replace-cold-sufficient-1d", "accumulate-real"],
)
def test_tempered_chain_matches_its_theory_and_not_the_untempered_one(case):
    summary = simulate("gaussian", dict(case, ddof=1, generations=12, chains=6000, seed=7))
    assert _checked(summary) >= 2 * 13
    entry = summary["metrics"]["trace_ratio"]
    mean, se = np.asarray(entry["mean"], float), np.asarray(entry["se"], float)
    plain = {k: v for k, v in case.items() if k not in ("temperature", "metrics", "method")}
    untempered = theory.gaussian.predict("trace_ratio", ddof=1, generations=12, **plain).mean
    assert np.max(np.abs(mean - untempered)[1:] / se[1:]) > 2 * K  # power: tau ignored is rejected


def test_temperature_one_is_the_untempered_chain_and_a_sweep_is_one_program():
    definition = get_setting("gaussian")
    base = dict(dim=2, samples=10, generations=4)
    keys = {definition.program_key(definition.resolve(dict(base, temperature=t))) for t in (0.5, 0.9, 2.0)}
    assert len(keys) == 1
    assert definition.program_key(definition.resolve(dict(base, temperature=1.0))) not in keys
    assert definition.program_key(definition.resolve(base)) == definition.program_key(
        definition.resolve(dict(base, temperature=1.0))
    )
    plain = simulate("gaussian", dict(base, chains=100))["metrics"]
    hot = simulate("gaussian", dict(base, chains=100, temperature=1.0))["metrics"]
    for name in plain:
        np.testing.assert_array_equal(hot[name]["mean"], plain[name]["mean"])


def test_real_points_are_not_tempered():
    """Generation 1 is fitted on real points: its covariance does not see tau; generation 2 does (tau^1)."""
    summary = simulate("gaussian", dict(dim=1, samples=4000, generations=2, chains=400, temperature=3.0, seed=1))
    trace = summary["metrics"]["trace_ratio"]["mean"]
    assert trace[1] == pytest.approx(1.0, abs=0.02)
    assert trace[2] == pytest.approx(3.0, rel=0.02)


def test_boundary_of_the_infinite_sample_limit_and_the_finite_fixed_point():
    # (1 - alpha) tau = 1 is the boundary; below it alpha t0 / (1 - (1 - alpha) tau)
    assert theory.gaussian.tempered_variance_limit(1.2, real_fraction=0.5) == pytest.approx(0.5 / 0.4)
    assert np.isinf(theory.gaussian.tempered_variance_limit(2.5, real_fraction=0.5))
    assert theory.gaussian.tempered_variance_limit(0.9, real_fraction=0.0) == 0.0
    # the finite-M fixed point is the recursion's limit, and approaches the infinite-sample one as M grows
    e, s = theory.gaussian.first_moments(
        samples=50, ddof=1, policy="replace", num_generations=3000, real_fraction=0.5, temperature=1.2
    )
    limit = theory.gaussian.tempered_replace_limit(1.2, samples=50, real_fraction=0.5, ddof=1)
    np.testing.assert_allclose([e[-1], s[-1]], limit, rtol=1e-9)
    gaps = [
        abs(theory.gaussian.tempered_replace_limit(1.2, samples=m, real_fraction=0.5, ddof=1)[1] - 1.25)
        for m in (50, 500, 5000)
    ]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3
    assert theory.gaussian.tempered_replace_limit(2.5, samples=50, real_fraction=0.5, ddof=1) == (np.inf, np.inf)
    with pytest.raises(ValueError, match="real_fraction"):
        theory.gaussian.tempered_replace_limit(0.9, samples=50, real_fraction=0.0, ddof=1)


@pytest.mark.parametrize("value", [0.0, -1.0, 1e-4, 101.0])
def test_bad_temperatures_are_refused(value):
    with pytest.raises(ValueError, match=r"temperature \(--temperature\) must be"):
        get_setting("gaussian").resolve(dict(temperature=value))


def test_settings_without_a_tempered_sampler_have_no_temperature():
    with pytest.raises(ValueError, match="unknown parameter"):
        get_setting("regression").resolve(dict(temperature=0.5))


def test_other_settings_report_no_theory_at_a_temperature():
    """Only the Gaussian theory derives tempered sampling: the bigram's first-token support (Wright-Fisher
    at tau = 1) is withheld when the language model samples at another temperature."""
    config = dict(
        task="lm", model="bigram", policy="replace", generations=3, samples=64, vocab=8, zipf=1.2, real_fraction=0.0
    )
    assert isinstance(theory.PREDICTORS["neural"]("first_token_support", **config), theory.Prediction)
    withheld = theory.PREDICTORS["neural"]("first_token_support", **config, temperature=0.7)
    assert isinstance(withheld, theory.NoTheory) and "temperature" in withheld.reason


@pytest.mark.slow  # 10^5 points per generation: a large-sample check of a limit
@pytest.mark.parametrize("temperature", [0.8, 1.25])
def test_discrete_law_approaches_its_infinite_sample_limit(temperature):
    """The empirical law sampled at temperature tau: its entropy tends to that of p^(tau^-(k-1)) as M grows
    (a limit, held to its convergence: the gap at M = 10^5 is below 0.01 nats and below the gap at 10^3),
    and the limit is rejected for the untempered chain."""
    base = dict(law="zipf:1.2", categories=50, generations=6, chains=50, seed=2, metrics="entropy")
    p = theory.discrete.parse_law("zipf:1.2", 50)
    limit = theory.discrete.entropy(theory.discrete.tempered_law_limit(p, temperature, 6))
    gaps = {}
    for samples in (1000, 100_000):
        summary = simulate("discrete", dict(base, samples=samples, temperature=temperature))
        entry = summary["metrics"]["entropy"]
        assert entry["theory_kind"] is None and "temperature" in entry["theory_note"]
        gaps[samples] = np.max(np.abs(np.asarray(entry["mean"], float) - limit))
    assert gaps[100_000] < 0.01 and gaps[100_000] < gaps[1000]
    untempered = simulate("discrete", dict(base, samples=100_000))["metrics"]["entropy"]["mean"]
    assert np.max(np.abs(np.asarray(untempered, float) - limit)) > 0.3
