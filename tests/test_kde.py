"""2-D datasets and the KDE: dataset samplers against their quadrature densities (grid integrals, moments
and entropy within 5 SE), densities against independent NumPy references; KDE density, bandwidth rules,
sampling law and weights against hand computations; validation."""

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
    gmm_log_density,
    gmm_params,
)
from collapse_jax.models.kde.model import held_out_nll, kde_log_density, make_kde, weighted_indices

K_SE = 5.0
# eager calls compile op by op (seconds each): every package function is called jitted
mixture_log_density = jax.jit(gmm_log_density)
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
