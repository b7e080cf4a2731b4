"""Gaussian kernel density estimator in d dimensions.

A fitted KDE keeps its weighted training points, so its size is the (static) pool size n:

    f(x) = sum_i w_i N(x; p_i, h^2 I) / sum_i w_i.

Bandwidth h, with n_eff = sum_i w_i and sigma the mean over dimensions of the weighted standard
deviations (divisor n_eff, no Bessel correction: `sigma_j^2 = sum_i w_i (p_ij - mean_j)^2 / n_eff`):

  scott      h = sigma * n_eff^(-1 / (d + 4))
  silverman  h = sigma * (4 / (d + 2))^(1 / (d + 4)) * n_eff^(-1 / (d + 4))
  a number   h fixed (> 0; may be a traced scalar in a sweep)

The kernel is isotropic (h^2 I, one h for all dimensions), unlike scipy's gaussian_kde, whose kernel
is the data covariance scaled by the factor. A rule's h is floored at the square root of the smallest
normal float, so that h^2 stays a normal float: a pool that has collapsed onto one point (small M, many
generations) keeps a finite log-density normaliser, and its held-out NLL is huge or +inf, never NaN.

Sampling is exact: a training point i with probability w_i / n_eff (inverse CDF: a uniform ticket
times the total weight, located in the cumulative weights by binary search; zero-weight rows own an
empty interval and are never drawn), plus h z, z ~ N(0, I). Probabilities are exact up to the float
rounding of the cumulative weights (a relative 2^-24 in float32); pools must stay below 2^23 rows.
Cost: fit O(n d); sample O(n + m log n); log-density O(m n d).

Example:
  >>> kde = make_kde("silverman")
  >>> params = kde.fit(key, data, jnp.ones(data.shape[0]))
  >>> nll = held_out_nll(params, test_points)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from collapse_jax.estimator import Estimator

BANDWIDTH_RULES = ("scott", "silverman")


class KDEParams(NamedTuple):
    """A fitted KDE. points: `(n, d)`; weights: `(n,)` (non-negative, zero on empty slots); bandwidth: `()`."""

    points: jax.Array
    weights: jax.Array
    bandwidth: jax.Array


def weighted_indices(key: jax.Array, weights: jax.Array, n: int) -> jax.Array:
    """`(n,)` int32 indices drawn i.i.d. with probability `weights / sum(weights)` (`weights (k,)`, at
    least one positive). Inverse CDF on the cumulative weights; zero-weight entries are never drawn."""
    cumulative = jnp.cumsum(weights)
    ticket = jax.random.uniform(key, (n,), cumulative.dtype) * cumulative[-1]
    index = jnp.searchsorted(cumulative, ticket, side="right")
    last = jnp.max(jnp.where(weights > 0, jnp.arange(weights.shape[0]), 0))  # a ticket rounded up to the total
    return jnp.minimum(index, last).astype(jnp.int32)


def bandwidth_rule(points: jax.Array, weights: jax.Array, rule: str) -> jax.Array:
    """The `scott` or `silverman` bandwidth `()` of weighted points `(n, d)`, `weights (n,)` (module docstring)."""
    dim = points.shape[-1]
    count = jnp.sum(weights)
    safe = jnp.maximum(count, jnp.finfo(points.dtype).tiny)
    mean = jnp.sum(weights[:, None] * points, axis=0) / safe
    var = jnp.sum(weights[:, None] * (points - mean[None, :]) ** 2, axis=0) / safe
    sigma = jnp.mean(jnp.sqrt(var))
    factor = 1.0 if rule == "scott" else (4.0 / (dim + 2.0)) ** (1.0 / (dim + 4.0))
    h = factor * sigma * safe ** (-1.0 / (dim + 4.0))
    return jnp.maximum(h, jnp.sqrt(jnp.finfo(points.dtype).tiny))


def make_kde(bandwidth: float | str = "scott") -> Estimator:
    """Gaussian-kernel KDE estimator for data `(n, d)`.

    Args:
      bandwidth: "scott", "silverman" (rules of thumb, module docstring) or a fixed h > 0.

    Raises:
      ValueError: `bandwidth` an unknown rule or a number that is not > 0.
    """
    if isinstance(bandwidth, str):
        if bandwidth not in BANDWIDTH_RULES:
            raise ValueError(f"bandwidth must be > 0 or one of {', '.join(BANDWIDTH_RULES)}, got {bandwidth!r}")
    elif not isinstance(bandwidth, jax.core.Tracer):
        try:
            value = float(bandwidth)
        except (TypeError, ValueError):
            raise ValueError(f"bandwidth must be a number > 0 or a rule name, got {bandwidth!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")

    def fit(key, data, weights) -> KDEParams:
        del key
        weights = weights.astype(data.dtype)
        points = jnp.where(weights[:, None] > 0, data, 0.0)  # empty slots may hold anything
        if isinstance(bandwidth, str):
            h = bandwidth_rule(points, weights, bandwidth)
        else:
            h = jnp.asarray(bandwidth, data.dtype)
        return KDEParams(points, weights, h)

    def sample(key, params: KDEParams, n: int) -> jax.Array:
        key_index, key_noise = jax.random.split(key)
        index = weighted_indices(key_index, params.weights, n)
        noise = jax.random.normal(key_noise, (n, params.points.shape[-1]), params.points.dtype)
        return params.points[index] + params.bandwidth * noise

    if isinstance(bandwidth, str):
        name = f"kde(bandwidth={bandwidth})"
    else:
        traced = isinstance(bandwidth, jax.core.Tracer)
        name = "kde(bandwidth=traced)" if traced else f"kde(bandwidth={float(bandwidth):g})"
    return Estimator(name=name, fit=fit, sample=sample)


def kde_log_density(params: KDEParams, points: jax.Array, *, batch_size: int | None = None) -> jax.Array:
    """`(m,)` log-density of the KDE at points `(m, d)`, by logsumexp over the n kernels.

    batch_size: evaluate this many points at a time (`lax.map`), bounding memory to batch_size x n;
    None evaluates all m x n pairs at once.
    """
    dim = params.points.shape[-1]
    total = jnp.sum(params.weights)
    mass = params.weights / total
    h2 = params.bandwidth**2
    norm = 0.5 * dim * jnp.log(2.0 * jnp.pi * h2)

    def one(x):
        sq = jnp.sum((x[None, :] - params.points) ** 2, axis=-1)
        return jax.nn.logsumexp(-sq / (2.0 * h2), b=mass) - norm

    points = jnp.asarray(points, params.points.dtype)
    if batch_size is None or points.shape[0] <= batch_size:
        return jax.vmap(one)(points)
    return jax.lax.map(one, points, batch_size=batch_size)


def held_out_nll(params: KDEParams, test_points: jax.Array, *, batch_size: int | None = None) -> jax.Array:
    """Mean negative log-likelihood `()` of held-out points `(m, d)` under the KDE."""
    return -jnp.mean(kde_log_density(params, test_points, batch_size=batch_size))


def kde_moments(params: KDEParams, real_mean: jax.Array) -> dict:
    """The KDE's `variance` `()` (tr C / d, C = S + h^2 I its covariance, S the weighted covariance of its
    points with divisor sum w) and `mean_error_sq` `()` (|weighted mean - real_mean|^2); real_mean `(d,)`."""
    points, weights = params.points, params.weights
    total = jnp.maximum(jnp.sum(weights), jnp.finfo(points.dtype).tiny)
    mean = jnp.sum(weights[:, None] * points, axis=0) / total
    spread = jnp.sum(weights * jnp.sum((points - mean[None, :]) ** 2, axis=-1)) / total
    error = mean - jnp.asarray(real_mean, points.dtype)
    return {"variance": spread / points.shape[-1] + params.bandwidth**2, "mean_error_sq": jnp.sum(error**2)}


def dataset_metrics(dataset, test_points: int, names: tuple[str, ...], real_moments=None):
    """`(metrics, truth_metrics)` of a smoothed-law model (a KDE; a diffusion stopped at t0) of `dataset`:
    `metrics(key, params, true)` for a fitted model and `truth_metrics(key, true)` for generation 0, each a
    dict over `names` of scalars. `held_out_nll` is the negative log-density of `test_points` fresh real
    points (the truth scores them with the dataset's own density); with `real_moments = (mean, variance)`
    of the real law, also `variance` and `mean_error_sq` of the model (`kde_moments`)."""

    def truth_metrics(key, true):
        del true
        values = {}
        if real_moments is not None:
            values["variance"] = jnp.asarray(real_moments[1], jnp.float32)
            values["mean_error_sq"] = jnp.zeros((), jnp.float32)
        if "held_out_nll" in names:
            values["held_out_nll"] = -jnp.mean(dataset.log_density(dataset.sample(key, test_points)))
        return {name: values[name] for name in names}

    def metrics(key, params, true):
        del true
        values = {} if real_moments is None else kde_moments(params, real_moments[0])
        if "held_out_nll" in names:
            values["held_out_nll"] = held_out_nll(params, dataset.sample(key, test_points), batch_size=256)
        return {name: values[name] for name in names}

    return metrics, truth_metrics
