"""Weighted real and synthetic data (`real_weight`, He, Xu & Cheng 2025): the engine's weights, the exact
Gaussian recursion (our derivation) against simulation with power against the unweighted formula, the
stationary limits, the optimum, one program across weights, and clear errors."""

import math

import numpy as np
import pytest

import theory
from collapse_jax.settings import get_setting
from collapse_jax.simulate import simulate
from collapse_jax.summary import compare
from tests.helpers import z_scores

K = 5.0
COMMON = dict(dim=2, samples=20, ddof=1, real_fraction=0.5, generations=15, metrics="mean_error_sq,trace_ratio")


@pytest.mark.statistical
@pytest.mark.parametrize("method", ["samples", "sufficient"])
@pytest.mark.parametrize("policy", ["replace", "accumulate"])
def test_weighted_chain_matches_its_recursion_and_not_the_unweighted_one(policy, method):
    """Means within 5 SE of the weighted recursion at every generation, on both exact paths (the sufficient
    one weighs each part's drawn statistics); the equal-weight recursion (what a theory that ignored the
    weights would predict) is rejected by the same chains."""
    weight = 0.85
    config = dict(COMMON, policy=policy, real_weight=weight, chains=6000, seed=11, method=method)
    summary = simulate("gaussian", config)
    for name, entry in summary["metrics"].items():
        verdict = compare(entry, K)
        assert verdict["status"] == "pass", (name, verdict)
        assert verdict["compared"] == COMMON["generations"] + 1
    e_plain, s_plain = theory.gaussian.first_moments(
        samples=20, ddof=1, policy=policy, num_generations=15, real_fraction=0.5, trace0=2.0
    )
    entry = summary["metrics"]["mean_error_sq"]
    mean, se = np.asarray(entry["mean"], float), np.asarray(entry["se"], float)
    assert np.nanmax(np.abs(mean - e_plain)[1:] / se[1:]) > 2 * K  # power: the unweighted formula fails


def test_equal_weights_are_the_unweighted_chain():
    """w = r/M gives every point weight 1: the same draws and fits as no weighting, and the same theory."""
    base = dict(COMMON, policy="accumulate", chains=200, seed=3)
    plain = simulate("gaussian", base)["metrics"]
    weighted = simulate("gaussian", dict(base, real_weight=0.5))["metrics"]
    for name in plain:
        np.testing.assert_allclose(weighted[name]["mean"], plain[name]["mean"], rtol=1e-5)
    for policy in ("replace", "accumulate"):
        args = dict(samples=20, ddof=1, policy=policy, num_generations=15, real_fraction=0.5)
        for a, b in zip(theory.gaussian.first_moments(**args), theory.gaussian.first_moments(**args, real_weight=0.5)):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_stationary_limits_and_the_golden_ratio():
    # He, Xu & Cheng: w* solves w^2 + k w - k = 0; 1/phi for equal counts; it minimises the known-variance limit
    assert theory.gaussian.optimal_real_weight(50, 50) == pytest.approx((math.sqrt(5) - 1) / 2, rel=1e-12)
    grid = np.linspace(0.01, 0.99, 9801)
    for real, synthetic in ((25, 75), (50, 50), (75, 25)):
        limit = theory.gaussian.weighted_mean_error_limit(grid, real=real, synthetic=synthetic)
        best = grid[np.argmin(limit)]
        assert best == pytest.approx(theory.gaussian.optimal_real_weight(real, synthetic), abs=2e-4)
    # the refitted-covariance fixed point is the recursion's limit
    e, s = theory.gaussian.first_moments(
        samples=40, ddof=1, policy="replace", num_generations=400, real_fraction=0.5, real_weight=0.6
    )
    limit = theory.gaussian.weighted_replace_limit(0.6, samples=40, real=20, ddof=1)
    np.testing.assert_allclose([e[-1], s[-1]], limit, rtol=1e-10)
    assert all(np.isnan(theory.gaussian.weighted_replace_limit(0.0, samples=40, real=20, ddof=1)))
    # with the covariance refitted the optimum moves slightly off the golden ratio (our derivation)
    exact = theory.gaussian.optimal_real_weight_refitted(samples=100, real=50, ddof=1)
    errors = [theory.gaussian.weighted_replace_limit(w, samples=100, real=50, ddof=1)[0] for w in grid]
    assert exact == pytest.approx(grid[int(np.argmin(errors))], abs=2e-4)
    assert 1e-4 < exact - theory.gaussian.optimal_real_weight(50, 50) < 0.01


def test_a_sweep_over_weights_is_one_program():
    definition = get_setting("gaussian")
    keys = {definition.program_key(definition.resolve(dict(COMMON, real_weight=w))) for w in (0.0, 0.3, 0.618, 1.0)}
    assert len(keys) == 1
    assert definition.program_key(definition.resolve(COMMON)) not in keys
    assert "real_weight" in definition.traced_for(definition.resolve(dict(COMMON, real_weight=0.3)))


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_extreme_weights_drop_one_part(weight):
    """w = 1: the fit sees only the real points (mean error t0 / r after generation 1); w = 0: the real points
    carry no weight. Buffer pools (accumulate-subsample) keep the weighted points first."""
    for policy in ("replace", "accumulate-subsample"):
        summary = simulate("gaussian", dict(COMMON, policy=policy, real_weight=weight, chains=3000, seed=5))
        entry = summary["metrics"]["mean_error_sq"]
        assert np.all(np.isfinite(np.asarray(entry["mean"], float)))
        if policy == "replace":
            assert np.nanmax(np.abs(z_scores(entry))) <= K
        if weight == 1.0 and policy == "replace":
            np.testing.assert_allclose(entry["theory"][2:], 2.0 / 10, rtol=1e-12)


def test_other_settings_get_no_theory_and_run():
    summary = simulate(
        "regression",
        dict(dim=3, samples=20, design="fresh", real_fraction=0.25, real_weight=0.7, generations=4, chains=64),
    )
    entry = summary["metrics"]["excess_risk"]
    assert entry["theory_kind"] is None and "real_weight" in entry["theory_note"]
    assert np.all(np.isfinite(np.asarray(entry["mean"], float)))


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(real_weight=0.5), "real_weight needs real and synthetic points"),
        (dict(real_weight=0.5, real_fraction=1.0), "real_weight needs real and synthetic points"),
        (dict(real_weight=1.5, real_fraction=0.5), r"real_weight \(--real-weight\) must be"),
        (dict(real_weight=-0.5, real_fraction=0.5), r"real_weight \(--real-weight\) must be"),
        (dict(real_weight=0.5, real_fraction=0.5, real_draw="mixture"), "real_weight needs real_draw='fixed'"),
    ],
)
def test_bad_weights_are_refused_before_compiling(overrides, match):
    with pytest.raises(ValueError, match=match):
        get_setting("gaussian").resolve(dict(samples=20, **overrides))


def test_auto_method_takes_the_weighted_sufficient_path_with_a_static_sample_size():
    definition = get_setting("gaussian")
    config = definition.resolve(dict(samples=20, real_fraction=0.5, real_weight=0.6, method="auto"))
    assert config["method"] == "sufficient"
    assert "samples" not in definition.traced_for(config)  # 0 < round(alpha M) < M is checked before compiling
    with pytest.raises(ValueError, match="real_weight needs real and synthetic points"):
        definition.resolve(dict(samples=1, real_fraction=0.5, real_weight=0.6, method="sufficient"))


@pytest.mark.statistical
def test_weighted_regression_statistics_equal_the_weighted_points_in_law():
    """Fresh-design OLS with weighted real points: the sufficient path (weighed Wishart statistics) and the
    sample path agree within 5 SE at every generation; the unweighted chain does not (power)."""
    base = dict(dim=3, samples=20, design="fresh", real_fraction=0.25, generations=6, chains=6000)
    runs = {
        name: simulate("regression", dict(base, **extra))["metrics"]["excess_risk"]
        for name, extra in (
            ("samples", dict(real_weight=0.9, method="samples", seed=1)),
            ("sufficient", dict(real_weight=0.9, method="sufficient", seed=2)),
            ("unweighted", dict(method="sufficient", seed=3)),
        )
    }

    def z(a, b):
        mean = np.asarray(a["mean"], float)[1:] - np.asarray(b["mean"], float)[1:]
        return mean / np.hypot(np.asarray(a["se"], float)[1:], np.asarray(b["se"], float)[1:])

    assert np.max(np.abs(z(runs["samples"], runs["sufficient"]))) <= K
    assert np.max(np.abs(z(runs["samples"], runs["unweighted"]))) > 2 * K


def test_weighted_sufficient_path_is_refused_for_a_model_without_weighable_statistics():
    from collapse_jax.chain import validate_spec
    from collapse_jax.models.gaussian.model import make_gaussian
    from collapse_jax.settings import chain_spec

    config = get_setting("gaussian").resolve(dict(samples=20, real_fraction=0.5, real_weight=0.6, method="sufficient"))
    unweighable = make_gaussian()._replace(name="unweighable", weigh_statistics=None)
    with pytest.raises(ValueError, match="unweighable cannot weigh statistics"):
        validate_spec(chain_spec(config), unweighable)


def test_models_that_count_whole_points_refuse_weights_before_compiling():
    """An empirical law's counts are integers: fractional weights would be truncated, so they are refused."""
    from collapse_jax.simulate import prepare

    with pytest.raises(ValueError, match="real_weight needs fractional point weights"):
        prepare("discrete", dict(samples=20, real_fraction=0.5, real_weight=0.6, chains=4, generations=2))


def test_weighted_ols_limit_is_the_unified_expression_with_the_golden_optimum():
    weights = np.linspace(0.05, 1.0, 2000)
    limit = theory.regression.weighted_ols_limit(weights, real=50, synthetic=50, dim=5, noise_var=2.0)
    unified = theory.gaussian.weighted_mean_error_limit(weights, real=50, synthetic=50, trace0=10.0)
    np.testing.assert_allclose(limit, unified, rtol=1e-12)  # sigma^2 d in place of tr Sigma_0
    assert abs(weights[np.argmin(limit)] - theory.gaussian.optimal_real_weight(50, 50)) < 1e-3
    with pytest.raises(ValueError, match="real_weight"):
        theory.regression.weighted_ols_limit(0.0, real=5, synthetic=5, dim=2)


@pytest.mark.slow
@pytest.mark.statistical
def test_weighted_ols_approaches_the_papers_limit_as_m_grows():
    """Weighted OLS with a fresh design has no finite-M closed form: the simulated stationary excess risk
    exceeds He, Xu & Cheng's limit by a relative O(d/M), and the gap closes as M grows (measured over the
    last 10 generations, well past the (1 - w)^2 = 0.15 per generation relaxation)."""
    weight, dim = 0.618, 4
    gaps = {}
    for samples in (24, 200):
        real = samples // 2
        summary = simulate(
            "regression",
            dict(
                dim=dim,
                samples=samples,
                design="fresh",
                real_fraction=0.5,
                real_weight=weight,
                generations=30,
                chains=4000,
                seed=5,
                metrics="excess_risk",
            ),
        )
        entry = summary["metrics"]["excess_risk"]
        assert entry["theory_kind"] is None  # no exact theory claimed
        mean, se = np.mean(entry["mean"][-10:]), np.max(entry["se"][-10:])
        limit = theory.regression.weighted_ols_limit(weight, real=real, synthetic=samples - real, dim=dim)
        gaps[samples] = ((mean - limit) / limit, se / limit)
    (gap_small, se_small), (gap_large, se_large) = gaps[24], gaps[200]
    assert gap_small > 0.1 and gap_small - 3 * se_small > gap_large  # the finite-M excess is real and closes
    assert abs(gap_large) < 0.05 + 3 * se_large  # within about d/M of the limit at M = 200
