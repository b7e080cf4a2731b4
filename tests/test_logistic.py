"""Recursive logistic regression (the `logistic` setting): the Newton/IRLS fit against a float64 NumPy
Newton solution, the relabelling of the fixed design, the excess log-loss quadrature, separable data, and
the large-sample (asymptotic) theory of Dey & Donoho 2024's pi^2/6 pathway with power against wrong
formulas. No finite-sample theory exists, so the chains are held to the asymptotic one within stated
O(1/M) tolerances."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theory
from collapse_jax import runner
from collapse_jax.models.logistic.model import (
    LogisticParams,
    excess_log_loss,
    make_logistic_regression,
    newton_fit,
)
from collapse_jax.settings import get_setting
from collapse_jax.simulate import simulate

K = 5.0


def _newton64(x, weights, y, iterations=100):
    """The weighted logistic MLE by plain Newton steps in float64 NumPy, and its gradient there."""
    x, weights, y = (np.asarray(a, np.float64) for a in (x, weights, y))
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-x @ beta))
        gradient = x.T @ (weights * (p - y))
        hessian = (x * (weights * p * (1 - p))[:, None]).T @ x
        beta = beta - np.linalg.solve(hessian, gradient)
    p = 1.0 / (1.0 + np.exp(-x @ beta))
    return beta, x.T @ (weights * (p - y))


def _labelled(key, n, beta):
    est = make_logistic_regression(beta.shape[0])
    return est.sample(key, LogisticParams(beta, jnp.zeros(())), n)


@pytest.mark.parametrize("weighting", ["uniform", "random", "empty-slots"])
def test_newton_fit_equals_a_float64_newton_solution(weighting):
    d, n = 5, 300
    beta = jnp.array([1.2, -0.8, 0.5, 0.0, 0.3])
    data = _labelled(jax.random.key(0), n, beta)
    x, y = data[:, :d], data[:, d]
    weights = {
        "uniform": jnp.ones(n),
        "random": jax.random.uniform(jax.random.key(1), (n,), minval=0.1, maxval=3.0),
        "empty-slots": (jnp.arange(n) < 200).astype(jnp.float32),  # a pool whose last 100 slots are empty
    }[weighting]
    params, iterations = jax.jit(newton_fit)(x, weights, weights * y)
    reference, gradient = _newton64(x, weights, y)
    assert np.max(np.abs(gradient)) < 1e-9  # the reference is the MLE
    np.testing.assert_allclose(np.asarray(params.coef), reference, rtol=2e-5, atol=2e-6)
    assert float(params.separated) == 0.0 and int(iterations) < 20
    if weighting == "empty-slots":  # zero weights are absent points
        np.testing.assert_allclose(reference, _newton64(x[:200], weights[:200], y[:200])[0], rtol=1e-10)
    # the estimator's own fit reads the rows [x, y]
    fitted = make_logistic_regression(d).fit(jax.random.key(9), data, weights)
    np.testing.assert_allclose(np.asarray(fitted.coef), np.asarray(params.coef), rtol=1e-6)


def test_fixed_design_statistics_fit_equals_the_stacked_fit():
    """Accumulate on a fixed design: the fit on per-row counts equals the fit on all stacked label sets."""
    d, n = 4, 120
    design = jax.random.normal(jax.random.key(2), (n, d))
    est = make_logistic_regression(d, design=design)
    truth = LogisticParams(jnp.array([1.0, -1.0, 0.5, 0.2]), jnp.zeros(()))
    batches = [est.sample(jax.random.key(10 + i), truth, n) for i in range(3)]
    assert all(np.array_equal(b[:, :d], design) for b in batches)
    stats = est.statistics(batches[0], jnp.ones(n))
    for batch in batches[1:]:
        stats = est.merge(stats, est.statistics(batch, jnp.ones(n)))
    pooled = est.fit_statistics(None, stats)
    stacked = est.fit(None, jnp.concatenate(batches), jnp.ones(3 * n))
    np.testing.assert_allclose(np.asarray(pooled.coef), np.asarray(stacked.coef), rtol=1e-5, atol=1e-6)


def test_sampling_relabels_the_fixed_design_with_bernoulli_probabilities():
    d, n, draws = 3, 40, 4000
    design = jax.random.normal(jax.random.key(3), (n, d))
    beta = jnp.array([1.5, -1.0, 0.5])
    est = make_logistic_regression(d, design=design)
    params = LogisticParams(beta, jnp.zeros(()))
    rows = jax.jit(jax.vmap(lambda key: est.sample(key, params, n)))(jax.random.split(jax.random.key(4), draws))
    assert np.array_equal(np.asarray(rows[:, :, :d]), np.broadcast_to(np.asarray(design), (draws, n, d)))
    labels = np.asarray(rows[:, :, d])
    assert set(np.unique(labels)) <= {0.0, 1.0}
    frequency = labels.mean(axis=0)

    def max_z(p):
        return np.max(np.abs(frequency - p) / np.sqrt(p * (1 - p) / draws))

    p = 1.0 / (1.0 + np.exp(-np.asarray(design, np.float64) @ np.asarray(beta, np.float64)))
    assert max_z(p) < K
    assert max_z(1 - p) > 2 * K and max_z(1.0 / (1.0 + np.exp(-2 * np.asarray(design) @ np.asarray(beta)))) > 2 * K


def _kl_integrand(u, v):
    su = 1.0 / (1.0 + np.exp(-u))
    return np.logaddexp(0, v) - np.logaddexp(0, u) - su * (v - u)


@pytest.mark.parametrize("scale", [0.3, 1.0, 3.0, 5.0])
def test_excess_log_loss_quadrature_equals_monte_carlo(scale):
    rng = np.random.default_rng(5)
    d = 5
    true = rng.normal(size=d)
    true *= scale / np.linalg.norm(true)
    coef = true + rng.normal(size=d) * 0.3
    value = float(excess_log_loss(jnp.asarray(coef, jnp.float32), jnp.asarray(true, jnp.float32)))
    x = rng.normal(size=(1_000_000, d))
    terms = _kl_integrand(x @ true, x @ coef)
    mean, se = terms.mean(), terms.std() / math.sqrt(len(terms))
    assert abs(value - mean) < K * se, (value, mean, se)
    # a 250-node float64 rule on the same bivariate Gaussian: the (128, 32)-node float32 rule is within
    # 2e-5 for ||beta*|| <= 4 (float32 rounding) and 1e-4 at 5
    z, w = np.polynomial.hermite.hermgauss(250)
    z, w = z * np.sqrt(2), w / np.sqrt(np.pi)
    c = np.array([[true @ true, true @ coef], [coef @ true, coef @ coef]])
    lower = np.linalg.cholesky(c)
    u = lower[0, 0] * z[:, None] + 0 * z[None, :]
    v = lower[1, 0] * z[:, None] + lower[1, 1] * z[None, :]
    exact = float(np.sum(w[:, None] * w[None, :] * _kl_integrand(u, v)))
    np.testing.assert_allclose(value, exact, rtol=2e-5 if scale <= 4 else 1e-4)
    assert float(excess_log_loss(jnp.asarray(true), jnp.asarray(true))) == pytest.approx(0.0, abs=1e-7)


def test_separable_data_give_separated_and_a_finite_fit():
    d, n = 4, 200
    beta = jnp.array([1.0, -0.5, 0.3, 0.8])
    x = jax.random.normal(jax.random.key(6), (n, d))
    separable = (x @ beta > 0).astype(jnp.float32)
    fit = jax.jit(newton_fit)
    params, iterations = fit(x, jnp.ones(n), separable)
    assert float(params.separated) == 1.0
    assert np.all(np.isfinite(np.asarray(params.coef)))
    assert float(jnp.linalg.norm(params.coef)) > 10 * float(jnp.linalg.norm(beta))  # the iterates run off
    labels = _labelled(jax.random.key(7), n, beta)[:, d]
    params, iterations = fit(x, jnp.ones(n), labels)
    assert float(params.separated) == 0.0 and int(iterations) < 50
    capped, _ = jax.jit(lambda *a: newton_fit(*a, max_iterations=1))(x, jnp.ones(n), labels)
    assert float(capped.separated) == 1.0  # stopped at the cap: not converged, so flagged


def test_rows_carrying_both_labels_are_never_separated():
    """Fixed-design statistics: a row labelled 1 in one label set and 0 in another cannot be separated.
    With every row half positive the MLE is beta = 0 exactly (all margins 0): converged, not separated."""
    x = jax.random.normal(jax.random.key(12), (40, 3))
    params, iterations = jax.jit(newton_fit)(x, jnp.full((40,), 2.0), jnp.ones(40))
    assert float(params.separated) == 0.0 and int(iterations) <= 2
    np.testing.assert_allclose(np.asarray(params.coef), 0.0, atol=1e-6)


def test_a_chain_with_fewer_than_2d_points_records_separated_and_stays_finite():
    with pytest.warns(UserWarning, match="separable"):
        summary = simulate("logistic", dict(dim=5, samples=6, generations=3, chains=64, seed=0))
    separated = np.asarray(summary["metrics"]["separated"]["mean"])
    assert separated[0] == 0.0 and np.all(separated[1:] > 0.9)
    for name in ("param_error_sq", "excess_log_loss"):
        assert sum(summary["metrics"][name]["nonfinite_chains"]) == 0


# ------------------------------------------------------------------ theory


def test_fisher_information_trace_against_a_direct_computation():
    """tr(I^-1) = (d - 1)/a + 1/b against the matrix I = E sigmoid'(x.b*) x x^T built by quadrature
    over (Z along beta*, the rest), inverted numerically; s = 0 gives 4 d."""
    d, s = 6, 1.7
    a, b = theory.logistic.fisher_moments(s)
    rng = np.random.default_rng(8)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    information = a * np.eye(d) + (b - a) * np.outer(u, u)
    assert np.trace(np.linalg.inv(information)) == pytest.approx(theory.logistic.fisher_trace_inverse(dim=d, signal=s))
    x = rng.normal(size=(400_000, d))
    slope = 0.25 / np.cosh(0.5 * s * x @ u) ** 2
    empirical = (x * slope[:, None]).T @ x / len(x)
    np.testing.assert_allclose(empirical, information, atol=3e-3)
    assert theory.logistic.fisher_trace_inverse(dim=d, signal=0.0) == pytest.approx(4 * d)
    assert theory.logistic.fisher_moments(0.0) == pytest.approx((0.25, 0.25))
    from scipy.integrate import quad

    for k, moment in zip((0, 2), theory.logistic.fisher_moments(5.0)):
        density = lambda z: 0.25 / np.cosh(2.5 * z) ** 2 * z**k * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
        assert moment == pytest.approx(quad(density, -30, 30, points=[0], limit=200, epsabs=1e-15)[0], rel=1e-10)


def test_pathway_ratios_and_prediction_kinds():
    ratio = theory.logistic.pathway_ratio
    np.testing.assert_allclose(ratio("replace", 4), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(ratio("accumulate", 3), [0, 1, 1.25, 1.25 + 1 / 9])
    assert ratio("accumulate", 100_000)[-1] == pytest.approx(math.pi**2 / 6, abs=1e-4)
    config = dict(dim=4, samples=400, signal=1.0, generations=5, design="fixed")
    for policy in ("replace", "accumulate", "accumulate-subsample"):
        for metric in ("param_error_sq", "excess_log_loss"):
            prediction = theory.PREDICTORS["logistic"](metric, policy=policy, **config)
            assert prediction.kind == "asymptotic" and prediction.mean[0] == 0.0
    assert isinstance(theory.PREDICTORS["logistic"]("separated", policy="replace", **config), theory.NoTheory)
    one = theory.logistic.one_fit("excess_log_loss", dim=4, samples=400, signal=1.0)
    assert one == pytest.approx(4 / 800)


# ------------------------------------------------------------------ simulation against the asymptotic theory


def _ratio(entry):
    """Chain-mean ratio to generation 1 and its standard error (the two means' errors combined as if
    independent: conservative, as they are positively correlated)."""
    mean, se = np.asarray(entry["mean"], float), np.asarray(entry["se"], float)
    ratio = mean / mean[1]
    with np.errstate(invalid="ignore"):  # generation 0 is 0 / 0 (the truth): never compared
        return ratio, ratio * np.sqrt((se / mean) ** 2 + (se[1] / mean[1]) ** 2)


ONE_FIT_TOLERANCE = {"param_error_sq": 8.0, "excess_log_loss": 5.0}  # relative error <= c d/M (measured 5-6, 3-4)


@pytest.mark.statistical
def test_pathway_at_large_m_over_d_matches_the_asymptotic_theory():
    """d = 4, M = 400 (M/d = 100), 1000 chains, 4 generations. One fit within c d/M (relative; c stated
    above, O(1/M) corrections) + 5 SE of tr(I^-1)/M and d/(2M); accumulate's ratio to one fit within 5 SE +
    2 d/M of sum 1/j^2; replace's within 5 SE + the drift bound k tr(I^-1)/(M s^2) (relative) of k. The
    OLS formula sigma^2 d/(M - d - 1) and the ratio k for accumulate are rejected."""
    d, m, s, g = 4, 400, 1.0, 4
    base = dict(dim=d, samples=m, signal=s, generations=g, chains=1000, seed=3)
    summaries = {policy: simulate("logistic", dict(base, policy=policy)) for policy in ("replace", "accumulate")}
    trace = theory.logistic.fisher_trace_inverse(dim=d, signal=s)
    k = np.arange(g + 1)
    for metric in ("param_error_sq", "excess_log_loss"):
        one = theory.logistic.one_fit(metric, dim=d, samples=m, signal=s)
        for summary in summaries.values():
            entry = summary["metrics"][metric]
            gap = abs(entry["mean"][1] - one)
            assert gap <= ONE_FIT_TOLERANCE[metric] * d / m * one + K * entry["se"][1], (metric, entry["mean"][1], one)
            assert summary["metrics"]["separated"]["mean"] == [0.0] * (g + 1)
        ratio, se = _ratio(summaries["accumulate"]["metrics"][metric])
        target = theory.logistic.pathway_ratio("accumulate", g)
        assert np.all(np.abs(ratio - target)[2:] <= K * se[2:] + 2 * d / m * target[2:]), (ratio, target)
        assert np.all(np.abs(ratio - k)[2:] > 2 * K * se[2:])  # accumulate does not grow like replace
        ratio, se = _ratio(summaries["replace"]["metrics"][metric])
        drift = k * trace / (m * s**2)
        assert np.all(np.abs(ratio - k)[2:] <= K * se[2:] + drift[2:] * k[2:]), (ratio, drift)
        assert np.all(np.abs(ratio - theory.logistic.pathway_ratio("accumulate", g))[2:] > 2 * K * se[2:])
    # the OLS one-fit formula (sigma^2 = 1) is far from the logistic one-fit error
    entry = summaries["accumulate"]["metrics"]["param_error_sq"]
    assert abs(entry["mean"][1] - d / (m - d - 1)) > 4 * K * entry["se"][1]


@pytest.mark.slow
@pytest.mark.statistical
def test_the_gap_to_the_asymptotic_theory_shrinks_with_m():
    """d = 4, 4000 chains, M = 100 and 800: the relative gap of the one-fit error to tr(I^-1)/M and of the
    replace ratio to k at generation 5 shrink by at least 2 (expected 8: both are O(1/M)); at M = 800 all
    within the stated tolerances; accumulate within 5 SE + 2 d/M of sum 1/j^2 at both."""
    d, s, g = 4, 1.0, 5
    gaps = {}
    for m in (100, 800):
        base = dict(dim=d, samples=m, signal=s, generations=g, chains=4000, seed=11)
        replace = simulate("logistic", dict(base, policy="replace"))["metrics"]
        accumulate = simulate("logistic", dict(base, policy="accumulate"))["metrics"]
        one = theory.logistic.one_fit("param_error_sq", dim=d, samples=m, signal=s)
        ratio_r, se_r = _ratio(replace["param_error_sq"])
        ratio_a, se_a = _ratio(accumulate["param_error_sq"])
        target = theory.logistic.pathway_ratio("accumulate", g)
        assert np.all(np.abs(ratio_a - target)[2:] <= K * se_a[2:] + 2 * d / m * target[2:]), (m, ratio_a)
        gaps[m] = (replace["param_error_sq"]["mean"][1] / one - 1, ratio_r[g] / g - 1, se_r[g] / g)
    assert gaps[800][0] < gaps[100][0] / 2 and gaps[800][1] < gaps[100][1] / 2, gaps
    assert abs(gaps[800][0]) <= ONE_FIT_TOLERANCE["param_error_sq"] * d / 800 + 0.03, gaps


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(method="sufficient"), r"method \(--method\) must be 'samples' for the logistic setting"),
        (dict(real_fraction=0.5), r"real_fraction \(--real-fraction\) must be 0 with design=fixed"),
        (dict(first_samples=50), r"first_samples \(--first-samples\) must be 0 or samples"),
        (dict(signal=5.5), r"signal \(--signal\) must be in \[0, 5\]"),
        (dict(dim=0), r"dim \(--dim\) must be an integer in \[1, 1024\]"),
        (dict(design="random"), r"design \(--design\) must be one of fixed, fresh"),
        (dict(max_iterations=0), r"max_iterations \(--max-iterations\) must be an integer in \[1, 1000\]"),
        (dict(metrics="accuracy"), r"metrics \(--metrics\) must be a non-empty list"),
    ],
)
def test_bad_parameters_are_refused_before_compiling(overrides, match, monkeypatch):
    monkeypatch.setattr(runner, "prepare_program", lambda *a, **k: pytest.fail("compiled for an invalid config"))
    with pytest.raises(ValueError, match=match):
        simulate("logistic", {**dict(dim=4, samples=100, generations=2, chains=8), **overrides})


def test_method_auto_picks_samples_and_fresh_design_takes_real_points():
    definition = get_setting("logistic")
    assert definition.resolve(dict(method="auto"))["method"] == "samples"
    definition.resolve(dict(design="fresh", real_fraction=0.5))
