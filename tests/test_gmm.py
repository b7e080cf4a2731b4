"""Gaussian mixtures: EM recovery, exact mixture sampling, the closed-form L2 distance against a grid
integral, dead components; a 2000-generation vmapped chain of GMM refits stays finite and drifts away from
the truth; validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.datasets import (
    blobs_mixture,
)
from collapse_jax.models.gmm.model import (
    check_gmm_config,
    gmm_l2_distance,
    gmm_l2_distance_sq,
    gmm_log_density,
    gmm_metric_names,
    gmm_metrics,
    gmm_params,
    make_gmm,
)

K_SE = 5.0
# eager calls compile op by op (seconds each): every package function is called jitted
l2_sq = jax.jit(gmm_l2_distance_sq)
l2 = jax.jit(gmm_l2_distance)
mixture_log_density = jax.jit(gmm_log_density)
sample_gmm = jax.jit(make_gmm(1).sample, static_argnums=2)
metrics_of = jax.jit(gmm_metrics)


# ----------------------------------------------------------------------------------------------------- GMM

TWO = gmm_params([0.3, 0.7], [[-3.0, 0.0], [3.0, 1.0]], [[[1.0, 0.5], [0.5, 1.0]], [[0.6, -0.2], [-0.2, 1.5]]])


def test_em_recovers_a_separated_mixture_and_ignores_empty_slots():
    gmm = make_gmm(2, em_steps=40)
    data = sample_gmm(jax.random.key(0), TWO, 8000)
    fit = jax.jit(gmm.fit)
    params = fit(jax.random.key(1), data, jnp.ones(8000))
    order = np.argsort(np.asarray(params.means[:, 0]))
    np.testing.assert_allclose(np.asarray(params.weights)[order], TWO.weights, atol=0.025)
    np.testing.assert_allclose(np.asarray(params.means)[order], TWO.means, atol=0.1)
    np.testing.assert_allclose(np.asarray(params.covariances)[order], TWO.covariances, atol=0.12)
    # empty slots (zero weight, arbitrary content) at the end of the pool change nothing
    padded = jnp.concatenate([data, jnp.full((2000, 2), 1e4)])
    again = fit(jax.random.key(1), padded, jnp.concatenate([jnp.ones(8000), jnp.zeros(2000)]))
    for a, b in zip(params, again):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)
    # doubling every weight is the same fit
    doubled = fit(jax.random.key(1), data, 2.0 * jnp.ones(8000))
    np.testing.assert_allclose(np.asarray(doubled.means), np.asarray(params.means), rtol=1e-4, atol=1e-4)


@pytest.mark.statistical
def test_gmm_sampling_is_exact():
    n = 200_000
    draws = np.asarray(sample_gmm(jax.random.key(4), TWO, n), np.float64)
    w, mu, cov = (np.asarray(a, np.float64) for a in TWO)
    mean = w @ mu
    total = (w[:, None, None] * (cov + mu[:, :, None] * mu[:, None, :])).sum(0) - np.outer(mean, mean)
    centred = draws - mean
    products = centred[:, :, None] * centred[:, None, :]
    assert np.all(np.abs((draws.mean(0) - mean) / (draws.std(0) / math.sqrt(n))) < K_SE)
    assert np.all(np.abs((products.mean(0) - total) / (products.std(0) / math.sqrt(n))) < K_SE)
    share = np.mean(draws[:, 0] > 0)  # the components are 6 sd apart
    assert abs(share - 0.7) < K_SE * math.sqrt(0.21 / n)


def numpy_mixture_density(params, x):
    w, mu, cov = (np.asarray(a, np.float64) for a in params)
    out = np.zeros(len(x))
    for c in range(len(w)):
        diff = x - mu[c]
        inv = np.linalg.inv(cov[c])
        quadratic = np.einsum("ni,ij,nj->n", diff, inv, diff)
        out += w[c] * np.exp(-0.5 * quadratic) / (2 * np.pi * np.sqrt(np.linalg.det(cov[c])))
    return out


def test_l2_distance_matches_grid_integral():
    other = gmm_params(
        [0.5, 0.2, 0.3],
        [[-2.0, 0.5], [2.5, 0.5], [0.0, -2.0]],
        [[[0.8, 0.1], [0.1, 0.5]], [[1.2, 0.0], [0.0, 0.7]], [[0.5, -0.3], [-0.3, 1.0]]],
    )
    axis = np.arange(-9.0, 9.0, 0.05)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    want = ((numpy_mixture_density(TWO, grid) - numpy_mixture_density(other, grid)) ** 2).sum() * 0.05**2
    got = float(l2_sq(TWO, other))
    np.testing.assert_allclose(got, want, rtol=1e-3)
    np.testing.assert_allclose(float(l2_sq(other, TWO)), got, rtol=1e-5)
    np.testing.assert_allclose(float(l2(TWO, other)), math.sqrt(want), rtol=1e-3)
    assert abs(float(l2_sq(TWO, TWO))) < 1e-7
    np.testing.assert_allclose(
        np.asarray(mixture_log_density(other, grid[::97])),
        np.log(numpy_mixture_density(other, grid[::97])),
        rtol=1e-5,
        atol=1e-5,
    )


def test_dead_component_is_reported_and_finite():
    """Three components on two distinct locations: k-means++ seeds a duplicate, which dies at once."""
    data = jnp.asarray(np.repeat([[0.0, 0.0], [5.0, 5.0]], 50, axis=0), jnp.float32)
    gmm = make_gmm(3, em_steps=10)
    params = jax.jit(gmm.fit)(jax.random.key(0), data, jnp.ones(100))
    assert all(np.all(np.isfinite(np.asarray(a))) for a in params)
    assert int(np.sum(np.asarray(params.weights) == 0)) == 1
    metrics = metrics_of(params, gmm_params([0.5, 0.5], [[0.0, 0.0], [5.0, 5.0]], 0.01 * np.eye(2)[None].repeat(2, 0)))
    assert set(metrics) == set(gmm_metric_names(2, extra=True))
    assert float(metrics["dead_components"]) == 1.0
    np.testing.assert_allclose([float(metrics["weight.0"]), float(metrics["weight.1"])], [0.5, 0.5], atol=1e-6)
    # the dead component's frozen covariance counts for nothing: each mode's variance is its live fit's
    live = np.asarray(params.weights) > 0
    spread = np.trace(np.asarray(params.covariances), axis1=1, axis2=2)[live] / 2
    near = np.argmin(np.abs(np.asarray(params.means)[live, 0] - np.array([[0.0], [5.0]])), axis=1)
    got = [float(metrics["variance.0"]), float(metrics["variance.1"])]
    np.testing.assert_allclose(got, spread[near], rtol=1e-5)
    draws = np.asarray(sample_gmm(jax.random.key(1), params, 1000))
    assert np.all(np.isfinite(draws))


def test_weight_metric_follows_the_true_modes():
    """Two fitted components split true mode 0; true mode 1 (minor) has lost its mass."""
    true = gmm_params([0.8, 0.2], [[0.0, 0.0], [6.0, 0.0]], np.eye(2)[None].repeat(2, 0))
    fitted = gmm_params([0.5, 0.5], [[-0.5, 0.0], [0.7, 0.3]], np.eye(2)[None].repeat(2, 0))
    metrics = metrics_of(fitted, true)
    assert float(metrics["weight.0"]) == pytest.approx(1.0) and float(metrics["weight.1"]) == 0.0
    assert float(metrics["dead_components"]) == 0.0 and float(metrics["l2_distance"]) > 0.05
    # variance.0: the weight-averaged tr(S)/d of both fitted components (both at mode 0); variance.1, of a
    # lost mode: the spread of the live component nearest to it
    shrunk = fitted._replace(covariances=jnp.asarray([0.5 * np.eye(2), np.diag([1.0, 3.0])], jnp.float32))
    metrics = metrics_of(shrunk, true)
    assert float(metrics["variance.0"]) == pytest.approx(0.5 * 0.5 + 0.5 * 2.0)
    assert float(metrics["variance.1"]) == pytest.approx(2.0)


def test_variance_metric_is_opt_in_and_true_at_generation_0():
    """The setting records variance.<c> only on request, and generation 0 (the truth) gives its variance 1."""
    from collapse_jax.chain import evaluate_truth
    from collapse_jax.models.gmm.setting import EXTRA_GMM_METRICS, GMM_METRICS
    from collapse_jax.settings import get_setting

    assert gmm_metric_names(2) == GMM_METRICS
    assert gmm_metric_names(2, extra=True) == GMM_METRICS + EXTRA_GMM_METRICS
    definition = get_setting("gmm")
    assert definition.resolve({})["metrics"] == GMM_METRICS  # the default list has no variance (golden runs)
    config = definition.resolve({"metrics": "variance.0,variance.1,weight.1"})
    setting = definition.build(definition.values(config))
    truth = jax.jit(lambda key: evaluate_truth(setting, key))(jax.random.key(0))
    assert set(truth) == {"variance.0", "variance.1", "weight.1"}
    np.testing.assert_allclose([float(truth["variance.0"]), float(truth["variance.1"])], [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(float(truth["weight.1"]), 0.2, rtol=1e-6)


def test_component_variances_shrink_under_replace_and_hold_with_real_data():
    """M = 50 points, 30 generations, 64 chains, the truth 0.8 N(-2 e1, I) + 0.2 N(2 e1, I): under replace
    both modes' variances fall below 1 by many SEs (about 0.3 +- 0.04 at generation 30: Shumailov et al.
    2024, the components shrink); with half of every pool fresh real points they do not fall below 1.
    One jit: the real count r is traced."""
    true = gmm_params([0.8, 0.2], [[-2.0, 0.0], [2.0, 0.0]], np.eye(2)[None].repeat(2, 0))
    gmm = make_gmm(2, em_steps=20)
    samples, generations, chains = 50, 30, 64

    def chain(key, real):
        def step(params, g):
            key_fit, key_sample, key_real = jax.random.split(jax.random.fold_in(key, g), 3)
            synthetic = gmm.sample(key_sample, params, samples)
            fresh = gmm.sample(key_real, true, samples)
            data = jnp.where((jnp.arange(samples) < real)[:, None], fresh, synthetic)
            new = gmm.fit(key_fit, data, jnp.ones(samples, data.dtype))
            out = gmm_metrics(new, true)
            return new, (out["variance.0"], out["variance.1"])

        return jax.lax.scan(step, true, jnp.arange(generations))[1]

    keys = jax.random.split(jax.random.key(3), chains)
    run = jax.jit(jax.vmap(jax.vmap(chain, in_axes=(0, None)), in_axes=(None, 0)))
    v0, v1 = (np.asarray(v, np.float64) for v in run(keys, jnp.asarray([0, samples // 2])))  # (2, chains, G)
    for v in (v0, v1):
        assert np.all(np.isfinite(v)) and np.all(v > 0)
        last = v[:, :, -1]
        mean, se = last.mean(1), last.std(1, ddof=1) / math.sqrt(chains)
        assert mean[0] < 1.0 - K_SE * se[0], ("replace", mean[0], se[0])  # shrunk
        # held: not below 1 (at M = 50 the minor mode's fit is even inflated, about 1.5, by spill-over)
        assert 1.0 - K_SE * se[1] < mean[1] < 2.5, ("half real", mean[1], se[1])
        assert mean[0] < mean[1] - K_SE * math.hypot(se[0], se[1])


def test_gmm_validation():
    with pytest.raises(ValueError, match="num_components"):
        make_gmm(0)
    with pytest.raises(ValueError, match="em_steps"):
        make_gmm(2, em_steps=0)
    for bad in (0.0, -1e-6, float("nan")):
        with pytest.raises(ValueError, match="reg_covar"):
            make_gmm(2, reg_covar=bad)
    with pytest.raises(ValueError, match="num_components"):
        check_gmm_config(5, 3)
    check_gmm_config(3, 3)


def test_long_replace_chain_of_gmm_refits_stays_finite_and_drifts():
    """2000 generations of M = 1000 points (Shumailov et al. 2024), 2 chains, one jit, lax.scan."""
    true = gmm_params(*blobs_mixture(1.0))
    gmm = make_gmm(3, em_steps=3)
    samples, generations = 1000, 2000

    def run(key):
        def step(params, g):
            key_fit, key_sample = jax.random.split(jax.random.fold_in(key, g))
            data = gmm.sample(key_sample, params, samples)
            new = gmm.fit(key_fit, data, jnp.ones(samples, data.dtype))
            return new, (gmm_metrics(new, true), new)

        _, (metrics, params) = jax.lax.scan(step, true, jnp.arange(generations))
        return metrics, params

    metrics, params = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(7), 2))
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves((metrics, params)))
    l2 = np.asarray(metrics["l2_distance"])  # (chains, generations)
    assert l2.shape == (2, generations)
    assert np.all(l2[:, -200:].mean(1) > 3.0 * l2[:, :20].mean(1))
    mass = sum(np.asarray(metrics[f"weight.{c}"]) for c in range(3))
    np.testing.assert_allclose(mass, 1.0, atol=1e-5)
