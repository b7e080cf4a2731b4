"""2-D datasets, KDE and Gaussian mixtures: dataset samplers against their quadrature densities (grid
integrals, moments and entropy within 5 SE), densities against independent NumPy references; KDE
density, bandwidth rules, sampling law and weights against hand computations; EM recovery, exact
mixture sampling, the closed-form L2 distance against a grid integral, dead components; a 2000-generation
vmapped chain of GMM refits stays finite and drifts away from the truth; validation."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.datasets import (
    BLOB_CENTRES,
    CIRCLE_RADII,
    DATASETS,
    NAMES,
    SWISS_ROLL_RANGE,
    SWISS_ROLL_SCALE,
    blobs_mixture,
    make_dataset,
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
from collapse_jax.models.kde.model import held_out_nll, kde_log_density, make_kde, weighted_indices

K_SE = 5.0
# eager calls compile op by op (seconds each): every package function is called jitted
l2_sq = jax.jit(gmm_l2_distance_sq)
l2 = jax.jit(gmm_l2_distance)
mixture_log_density = jax.jit(gmm_log_density)
sample_gmm = jax.jit(make_gmm(1).sample, static_argnums=2)
metrics_of = jax.jit(gmm_metrics)
kde_density = jax.jit(kde_log_density, static_argnames="batch_size")


# ----------------------------------------------------------------------------------------------- datasets


@functools.cache
def density_grid(name):
    """(points (g, 2), density (g,), cell area) on a grid of spacing noise / 2 covering the law."""
    dataset = DATASETS[name]
    step = dataset.noise / 2
    half = 11.0 if name == "blobs" else 3.4
    axis = np.arange(-half, half + step / 2, step)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    density = np.exp(np.asarray(jax.jit(dataset.log_density)(jnp.asarray(grid, jnp.float32)), np.float64))
    return grid, density, step * step


@pytest.mark.parametrize("name", NAMES)
def test_density_integrates_to_one(name):
    _, density, area = density_grid(name)
    assert abs(density.sum() * area - 1.0) < 1e-3


@pytest.mark.statistical
@pytest.mark.parametrize("name", NAMES)
def test_sampler_matches_density(name):
    """Sample means of x, y, x^2, y^2, xy and -log p (the entropy) against grid integrals of the density."""
    grid, density, area = density_grid(name)
    dataset = DATASETS[name]
    points = np.asarray(jax.jit(dataset.sample, static_argnums=1)(jax.random.key(11), 40_000), np.float64)
    nll = -np.asarray(jax.jit(dataset.log_density)(jnp.asarray(points, jnp.float32)), np.float64)
    log_grid = np.log(np.maximum(density, 1e-300))

    def stats(x, neg_log):
        return np.stack([x[:, 0], x[:, 1], x[:, 0] ** 2, x[:, 1] ** 2, x[:, 0] * x[:, 1], neg_log], axis=1)

    expected = (stats(grid, -log_grid) * density[:, None]).sum(0) * area
    observed = stats(points, nll)
    se = observed.std(0) / math.sqrt(len(points))
    z = (observed.mean(0) - expected) / se
    assert np.all(np.abs(z) < K_SE), z


def numpy_curve_log_density(name, x, noise, nodes=10_000):
    """Brute-force trapezoid over the curve parameter, float64, independent of the package's quadrature."""
    if name == "circles":
        t = np.linspace(0, 2 * np.pi, nodes, endpoint=False)
        curve = np.concatenate([r * np.stack([np.cos(t), np.sin(t)], 1) for r in CIRCLE_RADII])
        mass = np.full(2 * nodes, 0.5 / nodes)
    else:
        low, high = (0.0, np.pi) if name == "moons" else SWISS_ROLL_RANGE
        t = np.linspace(low, high, nodes)
        w = np.full(nodes, (high - low) / (nodes - 1))
        w[[0, -1]] /= 2
        if name == "moons":
            curve = np.concatenate([np.stack([np.cos(t), np.sin(t)], 1), np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)])
            mass = np.concatenate([w, w]) * 0.5 / np.pi
        else:
            curve = SWISS_ROLL_SCALE * np.stack([t * np.cos(t), t * np.sin(t)], 1)
            mass = w / (high - low)
    sq = ((x[:, None, :] - curve[None]) ** 2).sum(-1)
    a = np.log(mass) - sq / (2 * noise**2)
    top = a.max(1)
    return top + np.log(np.exp(a - top[:, None]).sum(1)) - np.log(2 * np.pi * noise**2)


@pytest.mark.parametrize(
    "name, noise", [("circles", 0.1), ("moons", 0.1), ("swiss_roll", 0.1), ("moons", 0.04), ("swiss_roll", 0.3)]
)
def test_curve_density_matches_brute_force(name, noise):
    """Relative density error < 1e-3 near the data and a few sigma away."""
    dataset = make_dataset(name, noise)
    near = np.asarray(jax.jit(dataset.sample, static_argnums=1)(jax.random.key(2), 100), np.float64)
    far = near + 3 * noise * np.random.default_rng(0).normal(size=near.shape)
    x = np.concatenate([near, far])
    got = np.asarray(jax.jit(dataset.log_density)(jnp.asarray(x, jnp.float32)), np.float64)
    want = numpy_curve_log_density(name, x, noise)
    assert np.max(np.abs(got - want)) < 1e-3


def test_blobs_density_is_the_mixture():
    x = np.random.default_rng(1).normal(scale=4.0, size=(500, 2))
    noise = 0.7
    sq = ((x[:, None, :] - BLOB_CENTRES[None]) ** 2).sum(-1)
    want = np.log(np.exp(-sq / (2 * noise**2)).sum(1) / 3 / (2 * np.pi * noise**2))
    got = np.asarray(jax.jit(make_dataset("blobs", noise).log_density)(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    weights, means, covs = blobs_mixture(noise)
    np.testing.assert_allclose(
        np.asarray(mixture_log_density(gmm_params(weights, means, covs), x)), want, rtol=1e-5, atol=1e-4
    )


def test_dataset_validation():
    with pytest.raises(ValueError, match="dataset"):
        make_dataset("spirals")
    for bad in (0.0, -0.1, float("nan"), "x"):
        with pytest.raises(ValueError, match="noise"):
            make_dataset("moons", bad)
    assert make_dataset("circles").noise == 0.1 and make_dataset("blobs").noise == 1.0


# ----------------------------------------------------------------------------------------------------- KDE


def weighted_data(seed=0, n=60, dim=2, zeros=15):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, dim)) * np.linspace(0.5, 2.0, dim) + 1.0
    weights = rng.uniform(0.2, 3.0, size=n)
    weights[rng.choice(n, zeros, replace=False)] = 0.0
    return data, weights


def test_kde_log_density_matches_numpy():
    data, weights = weighted_data()
    params = make_kde(0.4).fit(jax.random.key(0), jnp.asarray(data, jnp.float32), jnp.asarray(weights, jnp.float32))
    x = np.random.default_rng(5).normal(scale=2.0, size=(80, 2))
    kernel = np.exp(-((x[:, None, :] - data[None]) ** 2).sum(-1) / (2 * 0.4**2)) / (2 * np.pi * 0.4**2)
    want = np.log(kernel @ (weights / weights.sum()))
    np.testing.assert_allclose(np.asarray(kde_density(params, x)), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(kde_density(params, x, batch_size=16)), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(jax.jit(held_out_nll)(params, x)), -want.mean(), rtol=1e-5)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_bandwidth_rules_by_hand(dim):
    data, weights = weighted_data(seed=dim, dim=dim)
    n_eff = weights.sum()
    mean = (weights[:, None] * data).sum(0) / n_eff
    sigma = np.mean(np.sqrt((weights[:, None] * (data - mean) ** 2).sum(0) / n_eff))
    scott = sigma * n_eff ** (-1 / (dim + 4))
    silverman = (4 / (dim + 2)) ** (1 / (dim + 4)) * scott
    for rule, want in (("scott", scott), ("silverman", silverman)):
        fit = jax.jit(make_kde(rule).fit)
        params = fit(jax.random.key(0), jnp.asarray(data, jnp.float32), jnp.asarray(weights, jnp.float32))
        np.testing.assert_allclose(float(params.bandwidth), want, rtol=1e-5)


@pytest.mark.statistical
def test_kde_sampling_law():
    """Sample mean = weighted data mean, sample covariance = weighted data covariance + h^2 I (5 SE)."""
    data, weights = weighted_data(seed=3, n=100, zeros=30)
    kde = make_kde("silverman")
    params = kde.fit(jax.random.key(0), jnp.asarray(data, jnp.float32), jnp.asarray(weights, jnp.float32))
    n = 200_000
    draws = np.asarray(jax.jit(kde.sample, static_argnums=2)(jax.random.key(1), params, n), np.float64)
    p = weights / weights.sum()
    mean = p @ data
    cov = (p[:, None, None] * (data - mean)[:, :, None] * (data - mean)[:, None, :]).sum(0)
    cov += float(params.bandwidth) ** 2 * np.eye(2)
    z_mean = (draws.mean(0) - mean) / (draws.std(0) / math.sqrt(n))
    centred = draws - mean
    products = centred[:, :, None] * centred[:, None, :]
    z_cov = (products.mean(0) - cov) / (products.std(0) / math.sqrt(n))
    assert np.all(np.abs(z_mean) < K_SE) and np.all(np.abs(z_cov) < K_SE), (z_mean, z_cov)
    # power: without the kernel noise the covariance is rejected
    bare = cov - float(params.bandwidth) ** 2 * np.eye(2)
    assert np.max(np.abs((products.mean(0) - bare) / (products.std(0) / math.sqrt(n)))) > K_SE


def test_kde_zero_weight_rows_are_ignored():
    data, weights = weighted_data(seed=4, zeros=0)
    junk = np.full((40, 2), 1000.0)
    padded = jnp.asarray(np.concatenate([junk[:20], data, junk[20:]]), jnp.float32)
    padded_weights = jnp.asarray(np.concatenate([np.zeros(20), weights, np.zeros(20)]), jnp.float32)
    for rule in ("scott", 0.3):
        kde = make_kde(rule)
        fit = jax.jit(kde.fit)
        small = fit(jax.random.key(0), jnp.asarray(data, jnp.float32), jnp.asarray(weights, jnp.float32))
        big = fit(jax.random.key(0), padded, padded_weights)
        np.testing.assert_allclose(float(big.bandwidth), float(small.bandwidth), rtol=1e-5)
        x = jnp.asarray(np.random.default_rng(0).normal(size=(30, 2)), jnp.float32)
        np.testing.assert_allclose(
            np.asarray(kde_density(big, x)), np.asarray(kde_density(small, x)), rtol=1e-5, atol=1e-5
        )
        draws = np.asarray(jax.jit(kde.sample, static_argnums=2)(jax.random.key(1), big, 20_000))
        assert np.all(np.abs(draws) < 100.0)
    draw_indices = jax.jit(weighted_indices, static_argnums=2)
    index = np.asarray(draw_indices(jax.random.key(2), jnp.asarray([0.0, 1.0, 0.0, 3.0, 0.0]), 40_000))
    assert set(np.unique(index)) == {1, 3}
    share = np.mean(index == 3)
    assert abs(share - 0.75) < K_SE * math.sqrt(0.75 * 0.25 / 40_000)


def test_kde_validation():
    for bad in (0.0, -1.0, float("inf"), "scot", None):
        with pytest.raises(ValueError, match="bandwidth"):
            make_kde(bad)


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
    assert set(metrics) == set(gmm_metric_names(2))
    assert float(metrics["dead_components"]) == 1.0
    np.testing.assert_allclose([float(metrics["weight.0"]), float(metrics["weight.1"])], [0.5, 0.5], atol=1e-6)
    draws = np.asarray(sample_gmm(jax.random.key(1), params, 1000))
    assert np.all(np.isfinite(draws))


def test_weight_metric_follows_the_true_modes():
    """Two fitted components split true mode 0; true mode 1 (minor) has lost its mass."""
    true = gmm_params([0.8, 0.2], [[0.0, 0.0], [6.0, 0.0]], np.eye(2)[None].repeat(2, 0))
    fitted = gmm_params([0.5, 0.5], [[-0.5, 0.0], [0.7, 0.3]], np.eye(2)[None].repeat(2, 0))
    metrics = metrics_of(fitted, true)
    assert float(metrics["weight.0"]) == pytest.approx(1.0) and float(metrics["weight.1"]) == 0.0
    assert float(metrics["dead_components"]) == 0.0 and float(metrics["l2_distance"]) > 0.05


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
