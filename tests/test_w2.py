"""w2_sq against a float64 NumPy reference: the nuclear norm by matrix products (`sum_singular_values`), the
fit's root cut to its nonzero columns (every fit of a chain on n <= d points), rank-deficient fits, a general
truth, the collapse regime, and generation 0 of the gaussian setting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.linalg import polar_schedule, sum_singular_values
from collapse_jax.models.gaussian.model import GaussianParams, gaussian_metrics, gaussian_params, make_gaussian
from collapse_jax.settings import SETTINGS


def _reference_w2(points, ddof, mean0, cov0):
    """W2^2 between N(mean, cov) of the points (float64) and N(mean0, cov0): the nuclear term as the sum of
    the singular values of L0^T L, L = centred points^T / sqrt(n - ddof)."""
    points = np.asarray(points, np.float64)
    n = points.shape[0]
    mean = points.mean(axis=0)
    root = (points - mean).T / np.sqrt(n - ddof)
    root0 = np.linalg.cholesky(cov0)
    nuclear = np.linalg.svd(root0.T @ root, compute_uv=False).sum()
    return np.sum((mean - mean0) ** 2) + np.sum(root**2) + np.trace(cov0) - 2.0 * nuclear


@pytest.mark.parametrize(
    "shape,rank,spread",
    [
        ((100, 100), 100, 0),
        ((100, 100), 99, 0),
        ((100, 10), 9, 0),
        ((10, 100), 10, 3),
        ((10, 10), 10, 6),
        ((3, 3), 2, 0),
        ((2, 2), 1, 0),
        ((2, 2), 2, 3),
        ((7, 1), 1, 0),
        ((5, 5), 5, 12),
    ],
)
def test_sum_singular_values_matches_svd(shape, rank, spread):
    """Relative error at float32 rounding, whatever the rank, scale and spread of the singular values
    (those below 1e-5 of the largest are short by at most 6e-7 of it each)."""
    rng = np.random.default_rng(rank + spread)
    left = rng.normal(size=(shape[0], rank)) * 10.0 ** (-spread * rng.uniform(size=rank))
    matrix = left @ rng.normal(size=(rank, shape[1])) * 10.0 ** rng.uniform(-6, 3)
    expected = np.linalg.svd(matrix, compute_uv=False).sum()
    largest = np.linalg.norm(matrix, 2)
    got = float(sum_singular_values(jnp.asarray(matrix, jnp.float32)))
    assert abs(got - expected) <= 2e-6 * expected + rank * 6e-7 * largest


def test_polar_schedule_converges_every_value_above_lower():
    alphas = polar_schedule(1e-5)
    values = np.logspace(-12, 0, 4001) / 1.001
    mapped = values.copy()
    for alpha in alphas:
        mapped = 0.5 * alpha * mapped * (3.0 - alpha**2 * mapped**2)
    assert len(alphas) == 16
    assert np.all(mapped >= 0) and np.all(mapped <= 1.0 + 1e-12)
    assert np.max(np.abs(1.0 - mapped[values >= 1e-5])) < 1e-9
    assert np.max(values * (1.0 - mapped)) < 6.2e-7


def _general_truth(dim, rng):
    a = rng.normal(size=(dim, dim))
    return rng.normal(size=dim), a @ a.T / dim + 0.5 * np.eye(dim)


@pytest.mark.parametrize("dim", [1, 3, 10, 100])
@pytest.mark.parametrize("n", [2, 5, 10, 100, 1000])
def test_w2_matches_float64_reference(dim, n):
    """Fits on n points (rank-deficient roots when n <= d) against a general truth, with the root cut to
    its n nonzero columns and uncut: both agree with the float64 reference."""
    rng = np.random.default_rng(100 * dim + n)
    mean0, cov0 = _general_truth(dim, rng)
    points = rng.normal(size=(n, dim)) @ np.linalg.cholesky(cov0).T * 1.3 + 0.2 + mean0
    ddof = 1
    est = make_gaussian(ddof=ddof, full_rank=n - 1 >= dim)
    params = est.fit(jax.random.key(0), jnp.asarray(points, jnp.float32), jnp.ones(n, jnp.float32))
    true = gaussian_params(jnp.asarray(mean0, jnp.float32), jnp.asarray(cov0, jnp.float32))
    expected = _reference_w2(points, ddof, mean0, cov0)
    scale = np.trace(cov0) + np.sum(np.var(points, axis=0)) + np.sum((points.mean(0) - mean0) ** 2)
    for columns in (None, min(n, dim)):
        got = float(gaussian_metrics(params, true, ("w2_sq",), columns=columns)["w2_sq"])
        assert got == pytest.approx(expected, rel=1e-4, abs=2e-6 * scale), (columns, got, expected)


@pytest.mark.parametrize("dim,n", [(3, 2), (10, 5), (100, 10), (100, 1000)])
@pytest.mark.parametrize("log_scale", [-60.0, -5.0, 0.0, 20.0])
def test_w2_in_the_collapse_regime(dim, n, log_scale):
    """The covariance scaled by exp(2 log_scale), far below (or above) float32's range: w2_sq is finite and
    equals the float64 value, `||mu - mu0||^2 + tr Sigma + tr Sigma0 - 2 exp(s + s0) ||L0^T F||_*`."""
    rng = np.random.default_rng(dim + n)
    points = rng.normal(size=(n, dim))
    est = make_gaussian(ddof=0, full_rank=n - 1 >= dim)
    fit = est.fit(jax.random.key(0), jnp.asarray(points, jnp.float32), jnp.ones(n, jnp.float32))
    params = GaussianParams(fit.mean, fit.root, fit.log_scale + log_scale, fit.log_det)
    true = gaussian_params(jnp.zeros(dim), jnp.eye(dim))
    root = np.asarray(fit.root, np.float64)
    s = float(fit.log_scale) + log_scale
    nuclear = np.exp(s) * np.linalg.svd(root, compute_uv=False).sum()  # L0 = I
    expected = np.sum(np.asarray(fit.mean, np.float64) ** 2) + np.exp(2 * s) * np.sum(root**2) + dim - 2 * nuclear
    got = float(gaussian_metrics(params, true, ("w2_sq",), columns=min(n, dim))["w2_sq"])
    assert np.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-5 * dim)


def _fits_on_few_points(dim, n, key):
    """The fits a chain makes from n <= d points: on points, on the model's own draws (sample path), on
    Bartlett statistics (sufficient path), and on draws merged with real points (a rank-revealing QR)."""
    est = make_gaussian(ddof=1, full_rank=False)
    key_data, key_draw, key_real = jax.random.split(key, 3)
    first = est.fit(key, jax.random.normal(key_data, (n, dim)), jnp.ones(n))
    drawn = est.fit_statistics(key, est.draw_statistics(key_draw, first, n))
    bartlett = est.fit_statistics(key, est.sample_statistics(key_draw, first, jnp.asarray(n, jnp.float32)))
    real = est.statistics(jax.random.normal(key_real, (n // 2, dim)), jnp.ones(n // 2))
    merged = est.fit_statistics(key, est.merge(est.draw_statistics(key_draw, first, n - n // 2), real))
    return first, drawn, bartlett, merged


@pytest.mark.parametrize("dim,n", [(12, 5)])
def test_w2_from_the_cut_root_equals_the_full_root(dim, n):
    """Every fit a chain makes on n <= d points keeps its root in its first n columns (the rest zero, or
    rounding-level after a pivoted QR): w2_sq from the `(d, n)` block equals w2_sq from the whole root."""
    true = gaussian_params(jnp.zeros(dim), jnp.eye(dim))
    fits = jax.jit(_fits_on_few_points, static_argnums=(0, 1))(dim, n, jax.random.key(dim))
    for params in fits:
        cut = gaussian_metrics(params, true, ("w2_sq",), columns=n)["w2_sq"]
        full = gaussian_metrics(params, true, ("w2_sq",))["w2_sq"]
        assert float(cut) == pytest.approx(float(full), rel=1e-5)


def test_setting_metrics_at_generation_0_use_the_whole_truth():
    """Generation 0 is `truth_metrics(truth)` (the engine's hook): w2_sq is 0 although fits are cut to 10
    columns, which the fitted-model metrics assume."""
    definition = SETTINGS["gaussian"]
    config = definition.resolve(dict(dim=100, samples=10, metrics="w2_sq"))
    setting, _ = definition.instantiate(config)
    assert float(setting.truth_metrics(setting.true_params)["w2_sq"]) == pytest.approx(0.0, abs=1e-4)


def test_w2_columns_bound_the_points_of_the_largest_fit():
    extras = lambda **c: SETTINGS["gaussian"].values(SETTINGS["gaussian"].resolve({"metrics": "w2_sq", **c}))[
        "w2_columns"
    ]
    assert extras(dim=100, samples=10) == 10
    assert extras(dim=100, samples=10, method="sufficient") == 16  # a power of 2 where M is traced
    assert extras(dim=100, samples=10, first_samples=40) == 40
    assert extras(dim=100, samples=1000) == 100
    assert extras(dim=100, samples=10, policy="accumulate", generations=5) == 50
    assert extras(dim=100, samples=10, policy="accumulate", generations=100) == 100
    assert extras(dim=1, samples=2) == 1
    # without w2_sq the bound is d: sizes that only it would tell apart share one program
    definition = SETTINGS["gaussian"]
    assert definition.values(definition.resolve(dict(dim=100, samples=10, metrics="trace_ratio")))["w2_columns"] == 100
    keys = {
        definition.program_key(definition.resolve(dict(dim=100, samples=m, method="sufficient", metrics="trace_ratio")))
        for m in (10, 32, 64)
    }
    assert len(keys) == 1


def test_w2_is_a_default_metric_only_where_it_is_cheap():
    """w2_sq leaves the defaults where it would cost more than half the run (benchmarks/metric_cost.py), and
    the configuration's notes say so; asked for, it is recorded anywhere."""
    definition = SETTINGS["gaussian"]
    resolved = lambda **c: definition.resolve(c)
    for config in (dict(dim=1), dict(dim=2, method="sufficient"), dict(dim=10, samples=1000)):
        assert "w2_sq" in resolved(**config)["metrics"] and definition.notes(resolved(**config)) == ()
    for config in (dict(dim=10, samples=10), dict(dim=100, samples=1000), dict(dim=3, method="sufficient")):
        assert "w2_sq" not in resolved(**config)["metrics"]
        assert "w2_sq" in definition.notes(resolved(**config))[0]
    assert "w2_sq" in resolved(dim=100, samples=10, metrics="trace_ratio,w2_sq")["metrics"]


def test_sizes_share_a_program_where_no_scatter_is_factorised():
    """On the sufficient path without real points the draws are Bartlett factors in the model's frame and
    pools grow in their own frame: full_rank and well_conditioned choose nothing, so every M of a (d, rule)
    shares one program; with real points (merged by the QR or the Cholesky) they still split."""
    definition = SETTINGS["gaussian"]

    def keys(**config):
        return {
            definition.program_key(
                definition.resolve(dict(dim=100, samples=m, method="sufficient", metrics="trace_ratio", **config))
            )
            for m in (10, 32, 100, 316, 1000)
        }

    assert len(keys(policy="replace")) == 1 and len(keys(policy="accumulate")) == 1
    assert len(keys(policy="accumulate", real_fraction=0.5)) == 2  # M < d; M >= 3d
