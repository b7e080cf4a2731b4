"""The collapse regime: chains whose covariance shrinks by many orders of magnitude, and pools with about
as many points as dimensions (M - d in {0, 1, 2, 5}), stay finite in float32 and agree with the exact
theory: E log det at every generation (always checkable), the first moments where they are checkable.
A true value below float32's range is 0 (trace_ratio), never NaN; a singular fit's log det is -inf.

The default tier runs the cases that broke before (one short check each); the grid up to d = 100 and
1000 generations, both ddofs, every pool rule, float32 and x64, is in the slow tier."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theory
from collapse_jax.models.gaussian.model import GaussianParams, make_gaussian
from collapse_jax.simulate import simulate
from collapse_jax.summary import compare

K = 5.0


def _all_finite(entry, *, allow_neginf=False):
    nonfinite = entry["nonfinite"]
    bad = sum(nonfinite["nan"]) + sum(nonfinite["+inf"]) + (0 if allow_neginf else sum(nonfinite["-inf"]))
    return bad == 0


def _check_run(case, chains, seed=7):
    """Simulate; every metric finite in every chain (-inf log det only for a singular fit); every metric
    with theory passes at 5 SE where checkable; log det compared at every generation when finite."""
    summary = simulate("gaussian", dict(case, chains=chains, seed=seed))
    singular = case["samples"] - 1 < case["dim"]
    for name, entry in summary["metrics"].items():
        assert _all_finite(entry, allow_neginf=singular and name == "log_det_ratio"), (name, entry["nonfinite"])
        verdict = compare(entry, K)
        if entry["theory_kind"] == "exact":
            assert verdict["status"] == "pass", (name, verdict)
    if not singular and case.get("policy", "replace") == "replace":
        verdict = compare(summary["metrics"]["log_det_ratio"], K)
        assert verdict["compared"] == case["generations"] + 1, verdict
    return summary


# the cases that turned NaN in float32 (sample path): M = d + 2 over 200 generations, d = 20, M = 22,
# d = 1, M = 2 (unbiased: the variance collapses to below float32's range)
DEFAULT_CASES = [
    dict(dim=1, samples=2, ddof=1, generations=300, method="samples"),
    dict(dim=31, samples=32, ddof=0, generations=20, method="samples", policy="accumulate"),
    dict(dim=31, samples=32, ddof=0, generations=15, method="samples", policy="accumulate-subsample"),
    dict(dim=10, samples=10, ddof=1, generations=20, method="samples", policy="accumulate"),
]


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_collapse_cases_stay_finite_and_exact(case):
    _check_run(dict(case, metrics="mean_error_sq,trace_ratio,log_det_ratio"), chains=100)


@pytest.mark.slow
def test_near_square_replace_over_200_generations():
    _check_run(
        dict(
            dim=50,
            samples=52,
            ddof=0,
            generations=200,
            method="samples",
            metrics="mean_error_sq,trace_ratio,log_det_ratio",
        ),
        chains=200,
    )


def test_variance_below_float_range_is_zero_and_log_det_stays_exact():
    """d = 1, M = 2, unbiased, 300 generations: E log sigma^2 = -380, far below float32 (about -87);
    trace_ratio is exactly 0 in every chain, log_det_ratio finite and within 5 SE of its exact mean."""
    summary = _check_run(
        dict(dim=1, samples=2, ddof=1, generations=300, method="samples", metrics="trace_ratio,log_det_ratio"),
        chains=400,
    )
    trace = summary["metrics"]["trace_ratio"]
    assert trace["mean"][-1] == 0.0 and trace["finite_chains"][-1] == 400
    log_det = summary["metrics"]["log_det_ratio"]
    assert log_det["mean"][-1] < -300


def test_log_det_check_has_power():
    """d = 20, M = 22 (37 of 100 chains were NaN within 5 generations): finite and exact; the same run fails
    against the exact E log det of a slightly different chain (M + 1 instead of M, or the unbiased divisor
    instead of the MLE one)."""
    case = dict(dim=20, samples=22, ddof=0, generations=60, method="samples", metrics="log_det_ratio,trace_ratio")
    entry = dict(_check_run(case, chains=100)["metrics"]["log_det_ratio"])
    for wrong in (dict(samples=23, ddof=0), dict(samples=22, ddof=1)):
        mean = theory.gaussian.log_det_cumulants(dim=20, num_generations=60, **wrong)[0]
        assert compare(dict(entry, theory=[float(v) for v in mean]), K)["status"] == "fail", wrong


def test_x64_collapse_case():
    _check_run(
        dict(
            dim=20,
            samples=21,
            ddof=0,
            generations=60,
            method="samples",
            x64=True,
            metrics="mean_error_sq,trace_ratio,log_det_ratio",
        ),
        chains=100,
    )


def test_draws_of_a_collapsed_model_are_summarised_exactly():
    """A model whose spread is 1e-200 times its location: its draws all round to the mean in float32,
    yet draw_statistics gives the exact next fit (same draws): root and log det from the standardised
    draws, in float64 NumPy."""
    dim, n = 3, 5
    est = make_gaussian(ddof=0)
    rng = np.random.default_rng(0)
    lower = np.tril(rng.normal(size=(dim, dim))) + 3 * np.eye(dim)
    root = lower / np.linalg.norm(lower)
    log_scale = -200 * np.log(10.0)
    log_det = 2 * dim * log_scale + 2 * np.log(np.abs(np.diag(root))).sum()
    params = GaussianParams(jnp.ones(dim), jnp.asarray(root, jnp.float32), jnp.float32(log_scale), jnp.float32(log_det))
    key = jax.random.key(3)
    draws = np.asarray(est.sample(key, params, n))
    assert np.all(draws == 1.0)  # the points themselves carry nothing
    z = np.asarray(jax.random.normal(key, (n, dim)), np.float64)
    zc = z - z.mean(0)
    fitted = jax.jit(lambda k, p: est.fit_statistics(None, est.draw_statistics(k, p, n)))(key, params)
    shape = root @ zc.T @ zc @ root.T / n  # the fitted covariance divided by exp(2 log_scale)
    norm = np.sqrt(np.trace(shape))
    np.testing.assert_allclose(np.asarray(fitted.root @ fitted.root.T), shape / norm**2, rtol=2e-5, atol=1e-6)
    assert float(fitted.log_scale) == pytest.approx(log_scale + np.log(norm), rel=1e-6)
    assert float(fitted.log_det) == pytest.approx(log_det + np.linalg.slogdet(zc.T @ zc / n)[1], rel=1e-6)
    assert np.all(np.isfinite(np.asarray(fitted.root)))


def test_draw_statistics_equal_statistics_of_the_draws():
    """In the well-conditioned regime both routes give the same fit (same draws, rounding apart)."""
    est = make_gaussian(ddof=1)
    params = jax.jit(lambda x: est.fit(None, x, jnp.ones(9)))(jax.random.normal(jax.random.key(0), (9, 4)) * 2.0 + 1.0)
    for n in (3, 12):
        a = jax.jit(lambda k, p: est.fit_statistics(None, est.statistics(est.sample(k, p, n), jnp.ones(n))))(
            jax.random.key(n), params
        )
        b = jax.jit(lambda k, p: est.fit_statistics(None, est.draw_statistics(k, p, n)))(jax.random.key(n), params)
        np.testing.assert_allclose(np.asarray(a.mean), np.asarray(b.mean), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(a.covariance), np.asarray(b.covariance), rtol=1e-4, atol=1e-5)
        assert (
            float(a.log_det) == pytest.approx(float(b.log_det), abs=1e-4)
            or np.isneginf(float(a.log_det))
            and np.isneginf(float(b.log_det))
        )


def test_merged_pool_root_matches_float64_scatter():
    """merge() stacks roots and factorises them by QR: the pooled scatter and log det equal the float64
    scatter of the union, also for near-singular pools (M = d + 1)."""
    est = make_gaussian(ddof=0)
    rng = np.random.default_rng(5)
    dim = 31
    a = rng.normal(size=(32, dim))
    b = rng.normal(size=(32, dim)) * 1e-3 + 0.5
    merged = jax.jit(lambda a, b: est.merge(est.statistics(a, jnp.ones(32)), est.statistics(b, jnp.ones(32))))(
        jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    )
    union = np.concatenate([a, b])
    scatter = (union - union.mean(0)).T @ (union - union.mean(0))
    np.testing.assert_allclose(np.asarray(merged.scatter), scatter, atol=2e-4 * np.abs(scatter).max())
    assert float(merged.log_det) == pytest.approx(np.linalg.slogdet(scatter)[1], abs=1e-2)


SLOW_GRID = [
    dict(dim=dim, samples=dim + gap, ddof=ddof, policy=policy, generations=generations, method="samples")
    for dim, generations in ((3, 1000), (10, 500), (31, 200), (100, 100))
    for gap in (0, 1, 2, 5)
    for ddof in (0, 1)
    for policy in ("replace", "accumulate", "accumulate-subsample")
    if dim + gap - ddof >= 1
]


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_GRID, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_collapse_grid(case):
    _check_run(dict(case, metrics="mean_error_sq,trace_ratio,log_det_ratio"), chains=400)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["replace", "accumulate", "accumulate-subsample"])
@pytest.mark.parametrize("gap", [0, 1, 2, 5])
def test_collapse_grid_x64(policy, gap):
    _check_run(
        dict(
            dim=31,
            samples=31 + gap,
            ddof=0,
            policy=policy,
            generations=300,
            method="samples",
            x64=True,
            metrics="mean_error_sq,trace_ratio,log_det_ratio",
        ),
        chains=200,
    )


@pytest.mark.parametrize("points", [18, 30])
def test_well_conditioned_route_gives_the_same_fits(points):
    """With at least 3d points per fit the scatter is formed and Cholesky-factored (faster); the fits and
    merged pools equal the QR route's, rounding apart (18 = 3d: the boundary)."""
    dim = 6
    data = jax.random.normal(jax.random.key(1), (2, points, dim)) * jnp.linspace(0.5, 2.0, dim) + 1.0
    results = []
    for well_conditioned in (False, True):
        est = make_gaussian(ddof=1, well_conditioned=well_conditioned)
        merged = jax.jit(
            lambda x: est.fit_statistics(
                None, est.merge(est.statistics(x[0], jnp.ones(points)), est.statistics(x[1], jnp.ones(points)))
            )
        )(data)
        results.append(merged)
    a, b = results
    np.testing.assert_allclose(np.asarray(a.covariance), np.asarray(b.covariance), rtol=1e-4, atol=1e-5)
    assert float(a.log_det) == pytest.approx(float(b.log_det), abs=1e-4)
    np.testing.assert_allclose(np.asarray(a.mean), np.asarray(b.mean), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dim", [3, 40])
def test_cholesky_of_standard_draws_at_3d_points_matches_the_qr(dim):
    """The threshold itself: for n = 3d standard draws (4000 of them, float32) the Cholesky root of the
    formed scatter whitens the QR's scatter to the identity within 2e-5 in the worst case, in every
    direction (the scatter's condition number stays near the Marchenko-Pastur value, about 14); with
    n = d + 2 points it does not (power: the same check fails there)."""
    from collapse_jax.linalg import cholesky_root, qr_root, triangular_solve

    def worst_gap(n):
        draws = jax.random.normal(jax.random.key(7), (4000, n, dim), jnp.float32)

        def gap(z):
            centred = z - jnp.mean(z, axis=0)
            factor, _ = cholesky_root(centred.T @ centred)
            root, _ = qr_root(centred)
            whitened = triangular_solve(factor, root)
            return jnp.max(jnp.abs(whitened @ whitened.T - jnp.eye(dim)))

        return float(jnp.max(jax.jit(jax.vmap(gap))(draws)))

    assert worst_gap(3 * dim) < 2e-5
    assert not worst_gap(dim + 2) < 2e-5


@pytest.mark.parametrize("method", ["samples", "sufficient"])
def test_well_conditioned_accumulate_chain_is_finite(method):
    """M >= 3d under accumulate: the chain starts from an empty pool, whose scatter is zero."""
    summary = simulate(
        "gaussian",
        dict(
            dim=3,
            samples=32,
            ddof=0,
            policy="accumulate",
            generations=5,
            chains=50,
            method=method,
            metrics="mean_error_sq,trace_ratio,log_det_ratio",
        ),
    )
    for name, entry in summary["metrics"].items():
        assert _all_finite(entry), (name, entry["nonfinite"])


def test_small_real_part_of_a_well_conditioned_batch_is_finite():
    """M = 10 >= 3d with 3 real points per batch: the real part alone is near singular by chance and
    goes through the QR, not the Cholesky of its scatter."""
    summary = simulate(
        "gaussian",
        dict(
            dim=2,
            samples=10,
            ddof=1,
            policy="replace",
            generations=6,
            real_fraction=0.3,
            chains=3000,
            seed=2024,
            metrics="mean_error_sq,trace_ratio,log_det_ratio",
        ),
    )
    for name, entry in summary["metrics"].items():
        assert _all_finite(entry), (name, entry["nonfinite"])


def test_well_conditioned_without_full_rank_is_refused():
    with pytest.raises(ValueError, match="well_conditioned needs full_rank"):
        make_gaussian(ddof=0, full_rank=False, well_conditioned=True)
