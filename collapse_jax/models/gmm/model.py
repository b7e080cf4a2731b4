"""Gaussian mixture with C full-covariance components, fitted by a fixed number of EM steps.

Fit on weighted points `(n, d)` (weights w_i, zero on empty slots, n_eff = sum_i w_i):

  init  k-means++ seeding from the fit key (first seed drawn with probability proportional to w_i, each
        next one proportional to w_i D_i^2, D_i the distance to the nearest seed; if every D_i is 0, by
        w_i again), then one M-step from the hard assignment of every point to its nearest seed
        (ties to the lower index).
  EM    `em_steps` E+M steps in a `fori_loop`. M-step with masses N_c = sum_i w_i r_ic:
        weight_c = N_c / n_eff, mean_c = sum_i w_i r_ic x_i / N_c,
        cov_c = sum_i w_i r_ic (x_i - mean_c)(x_i - mean_c)^T / N_c + reg_covar I
        (the variance floor of scikit-learn's `reg_covar`, so no covariance is ever singular).
  dead  a component whose mass falls below half a point (N_c < 1/2, i.e. weight < 1/(2 n_eff)) after
        an M-step is dead for the rest of the fit: its weight is set to exactly 0 (the others are
        renormalised), its mean and covariance keep their last values (finite), and it takes no more
        responsibility. The heaviest component never dies. `dead_components` counts them
        (weight == 0); a later generation's fit seeds all C components afresh. The threshold assumes
        the pool convention that a weight counts points (1 per point): rescaled weights rescale it.

Linear algebra is pure array code, unrolled over the static dimension d (written for small d, e.g. 2):
a Cholesky factor whose pivots are floored (at reg_covar for fitted covariances, whose Schur
complements are >= reg_covar in exact arithmetic), and forward substitution. No LAPACK call, so EM runs
inside scans on several CPU devices (see `linalg.lapack_is_safe`).

Sampling is exact: a component by inverse CDF on the cumulative weights (dead ones are never drawn),
then `mean + L z`, L the Cholesky factor of its covariance, z ~ N(0, I).

Closed-form squared L2 distance, with phi_k = N(m_k, S_k):
  int (f - g)^2 = sum_ij a_i a_j N(mu_i; mu_j, S_i + S_j) - 2 sum_ij a_i b_j N(mu_i; nu_j, S_i + T_j)
                  + sum_ij b_i b_j N(nu_i; nu_j, T_i + T_j),
computed as one double sum over the concatenated mixture with coefficients (a, -b).

Example:
  >>> gmm = make_gmm(3, em_steps=20)
  >>> params = gmm.fit(key, data, jnp.ones(data.shape[0]))
  >>> gmm_metrics(params, true_params)["l2_distance"]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from collapse_jax.estimator import Estimator
from collapse_jax.models.kde.model import weighted_indices


class GMMParams(NamedTuple):
    """A Gaussian mixture. weights: `(C,)` (sum 1, 0 for dead components); means: `(C, d)`;
    covariances: `(C, d, d)`."""

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array


def gmm_params(weights, means, covariances) -> GMMParams:
    """Parameters (e.g. the true law) from weights `(C,)` (normalised here), means `(C, d)` and
    positive-definite covariances `(C, d, d)`."""
    means = jnp.asarray(means, dtype=jnp.result_type(float))
    weights = jnp.asarray(weights, means.dtype)
    return GMMParams(weights / jnp.sum(weights), means, jnp.asarray(covariances, means.dtype))


def _cholesky(matrix: jax.Array, floor) -> jax.Array:
    """Lower Cholesky factor of symmetric `(..., d, d)` matrices, pivots floored at `sqrt(floor)`."""
    dim = matrix.shape[-1]
    index = jnp.arange(dim)
    residual = matrix
    columns = []
    for k in range(dim):
        pivot = jnp.sqrt(jnp.maximum(residual[..., k, k], floor))
        column = jnp.where(index > k, residual[..., :, k] / pivot[..., None], 0.0)
        column = jnp.where(index == k, pivot[..., None], column)
        residual = residual - column[..., :, None] * column[..., None, :]
        columns.append(column)
    return jnp.stack(columns, axis=-1)


def _log_normal(diff: jax.Array, lower: jax.Array) -> jax.Array:
    """`log N(diff; 0, L L^T)` for `diff (..., d)` and `lower (..., d, d)` (broadcast), by substitution."""
    dim = diff.shape[-1]
    solved = []
    for i in range(dim):
        value = diff[..., i]
        for j in range(i):
            value = value - lower[..., i, j] * solved[j]
        solved.append(value / lower[..., i, i])
    mahalanobis = sum(z * z for z in solved)
    log_det_half = jnp.sum(jnp.log(jnp.diagonal(lower, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * mahalanobis - log_det_half - 0.5 * dim * math.log(2.0 * math.pi)


def _tiny(dtype) -> float:
    return float(jnp.finfo(dtype).tiny)


def _component_log_pdf(points: jax.Array, means: jax.Array, lower: jax.Array) -> jax.Array:
    """`(m, C)` log N(x_i; mean_c, L_c L_c^T) for points `(m, d)`, means `(C, d)`, lower `(C, d, d)`."""
    return _log_normal(points[:, None, :] - means[None, :, :], lower[None])


def gmm_log_density(params: GMMParams, points: jax.Array) -> jax.Array:
    """`(m,)` log-density of the mixture at points `(m, d)`."""
    points = jnp.asarray(points, params.means.dtype)
    lower = _cholesky(params.covariances, _tiny(params.means.dtype))
    log_pdf = _component_log_pdf(points, params.means, lower)
    return jax.nn.logsumexp(log_pdf, b=params.weights[None, :], axis=-1)


def _seed_means(key: jax.Array, data: jax.Array, weights: jax.Array, num_components: int) -> jax.Array:
    """k-means++ seeds `(C, d)` (module docstring)."""
    first = data[weighted_indices(jax.random.fold_in(key, 0), weights, 1)[0]]
    means = jnp.zeros((num_components, data.shape[-1]), data.dtype).at[0].set(first)
    dist_sq = jnp.sum((data - first[None, :]) ** 2, axis=-1)

    def seed(c, state):
        means, dist_sq = state
        score = weights * dist_sq
        score = jnp.where(jnp.sum(score) > 0, score, weights)
        centre = data[weighted_indices(jax.random.fold_in(key, c), score, 1)[0]]
        return means.at[c].set(centre), jnp.minimum(dist_sq, jnp.sum((data - centre[None, :]) ** 2, axis=-1))

    means, _ = jax.lax.fori_loop(1, num_components, seed, (means, dist_sq))
    return means


def _m_step(data: jax.Array, resp: jax.Array, previous: GMMParams, reg_covar) -> GMMParams:
    """M-step from weighted responsibilities `resp (n, C)` (rows sum to w_i); dead rule in the docstring."""
    dim = data.shape[-1]
    tiny = _tiny(data.dtype)
    mass = jnp.sum(resp, axis=0)
    safe = jnp.maximum(mass, tiny)
    means = resp.T @ data / safe[:, None]
    centred = data[:, None, :] - means[None, :, :]  # (n, C, d)
    weighted = resp[:, :, None] * centred
    scatter = jnp.einsum("nci,ncj->cij", weighted, centred) / safe[:, None, None]
    covariances = scatter + reg_covar * jnp.eye(dim, dtype=data.dtype)[None]
    alive = (mass >= 0.5) | (mass == jnp.max(mass))
    live_mass = jnp.where(alive, mass, 0.0)
    return GMMParams(
        live_mass / jnp.sum(live_mass),
        jnp.where(alive[:, None], means, previous.means),
        jnp.where(alive[:, None, None], covariances, previous.covariances),
    )


def make_gmm(num_components: int, *, em_steps: int = 50, reg_covar: float = 1e-6) -> Estimator:
    """Gaussian-mixture estimator (EM) for data `(n, d)`.

    Args:
      num_components: C >= 1 (check it against the pool size with `check_gmm_config`).
      em_steps: number of E+M steps after the k-means++ initialisation (>= 1, static).
      reg_covar: > 0, added to every covariance diagonal at every M-step (may be a traced scalar).

    Raises:
      ValueError: naming `num_components`, `em_steps` or `reg_covar` when out of range.
    """
    if isinstance(num_components, bool) or not isinstance(num_components, int) or num_components < 1:
        raise ValueError(f"num_components must be an integer >= 1, got {num_components!r}")
    if isinstance(em_steps, bool) or not isinstance(em_steps, int) or em_steps < 1:
        raise ValueError(f"em_steps must be an integer >= 1, got {em_steps!r}")
    if not isinstance(reg_covar, jax.core.Tracer):
        try:
            value = float(reg_covar)
        except (TypeError, ValueError):
            raise ValueError(f"reg_covar must be a number > 0, got {reg_covar!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"reg_covar must be > 0, got {reg_covar!r}")

    def fit(key, data, weights) -> GMMParams:
        n, dim = data.shape
        weights = weights.astype(data.dtype)
        data = jnp.where(weights[:, None] > 0, data, 0.0)  # empty slots may hold anything
        reg = jnp.asarray(reg_covar, data.dtype)
        seeds = _seed_means(key, data, weights, num_components)
        nearest = jnp.argmin(jnp.sum((data[:, None, :] - seeds[None]) ** 2, axis=-1), axis=1)
        resp = jax.nn.one_hot(nearest, num_components, dtype=data.dtype) * weights[:, None]
        start = GMMParams(
            jnp.full((num_components,), 1.0 / num_components, data.dtype),
            seeds,
            jnp.broadcast_to(reg * jnp.eye(dim, dtype=data.dtype), (num_components, dim, dim)),
        )
        params = _m_step(data, resp, start, reg)

        def step(_, params: GMMParams) -> GMMParams:
            lower = _cholesky(params.covariances, reg)
            log_joint = _component_log_pdf(data, params.means, lower)
            log_weight = jnp.log(jnp.maximum(params.weights, _tiny(data.dtype)))[None, :]
            log_joint = jnp.where(params.weights[None, :] > 0, log_joint + log_weight, -jnp.inf)
            log_resp = log_joint - jax.nn.logsumexp(log_joint, axis=1, keepdims=True)
            return _m_step(data, jnp.exp(log_resp) * weights[:, None], params, reg)

        return jax.lax.fori_loop(0, em_steps, step, params)

    def sample(key, params: GMMParams, n: int) -> jax.Array:
        key_component, key_noise = jax.random.split(key)
        component = weighted_indices(key_component, params.weights, n)
        lower = _cholesky(params.covariances, _tiny(params.means.dtype))
        z = jax.random.normal(key_noise, (n, params.means.shape[-1]), params.means.dtype)
        return params.means[component] + jnp.sum(lower[component] * z[:, None, :], axis=-1)

    return Estimator(name=f"gmm(components={num_components}, em_steps={em_steps})", fit=fit, sample=sample)


def check_gmm_config(num_components: int, samples: int) -> None:
    """Raise ValueError (naming `num_components`) when a pool of `samples` points (M, the smallest pool a
    chain fits) cannot seed C distinct components: C must satisfy 1 <= C <= M."""
    if isinstance(num_components, bool) or not isinstance(num_components, int) or num_components < 1:
        raise ValueError(f"num_components must be an integer >= 1, got {num_components!r}")
    if num_components > samples:
        raise ValueError(
            f"num_components ({num_components}) must not exceed samples ({samples}): "
            "a component needs at least one point"
        )


def gmm_l2_distance_sq(params_a: GMMParams, params_b: GMMParams) -> jax.Array:
    """`()` the squared L2 distance int (f_a - f_b)^2 dx in closed form (module docstring); may be
    slightly negative from rounding when the mixtures are equal."""
    coef = jnp.concatenate([params_a.weights, -params_b.weights])
    means = jnp.concatenate([params_a.means, params_b.means])
    covs = jnp.concatenate([params_a.covariances, params_b.covariances])
    lower = _cholesky(covs[:, None] + covs[None, :], _tiny(means.dtype))
    log_overlap = _log_normal(means[:, None, :] - means[None, :, :], lower)
    return jnp.sum(coef[:, None] * coef[None, :] * jnp.exp(log_overlap))


def gmm_l2_distance(params_a: GMMParams, params_b: GMMParams) -> jax.Array:
    """`()` the L2 distance `sqrt(int (f_a - f_b)^2 dx)` (the square root of `gmm_l2_distance_sq`, floored at 0)."""
    return jnp.sqrt(jnp.maximum(gmm_l2_distance_sq(params_a, params_b), 0.0))


def gmm_metric_names(num_true_components: int, *, extra: bool = False) -> tuple[str, ...]:
    """Names of the `gmm_metrics` entries for a true mixture of that many components: the default ones
    (l2_distance, weight.<c>, dead_components), and with `extra` also the on-request variance.<c>
    (the setting records these only when asked with `--metrics`). `gmm_metrics` returns all of them."""
    names = ("l2_distance", *(f"weight.{c}" for c in range(num_true_components)), "dead_components")
    return names + tuple(f"variance.{c}" for c in range(num_true_components)) if extra else names


def gmm_metrics(params: GMMParams, true_params: GMMParams) -> dict:
    """Per-generation scalars of a fitted mixture against the true one (the names of
    `gmm_metric_names(C_true, extra=True)`).

    l2_distance      sqrt(int (f - f_true)^2), closed form;
    weight.<c>       for each TRUE component c (in the true order), the total weight of the fitted
                     components whose mean is nearest (Euclidean) to true mean c: the mass the model puts
                     at mode c, whichever fitted components carry it; a minor mode that the chain loses
                     shows as weight.<c> -> 0 even when its fitted component has moved to split another
                     mode. The weights sum to 1 over c;
    dead_components  number of fitted components with weight 0 (the dead rule of the module docstring);
    variance.<c>     for each TRUE component c, the spread of the model at mode c: the weight-averaged
                     mean eigenvalue of the fitted components assigned to mode c as for weight.<c> (mean
                     nearest to true mean c),
                       sum_k w_k [k -> c] tr(S_k) / d  /  sum_k w_k [k -> c],
                     tr(S_k) / d being the average per-coordinate variance of component k (reg_covar
                     included, so >= reg_covar). Dead components (weight 0) count for nothing: their
                     frozen covariance is ignored. Where no live component is assigned to mode c
                     (weight.<c> = 0: the chain has lost that mode), it is tr(S_k) / d of the live component
                     whose mean is nearest to true mean c (the model's bump closest to the lost mode), so
                     it is always finite and positive. At generation 0 (the truth fitted to itself) it is
                     tr(Sigma_c) / d, 1 for unit covariances. Recorded on request only (`--metrics`).
    """
    dist_sq = jnp.sum((params.means[:, None, :] - true_params.means[None, :, :]) ** 2, axis=-1)  # (C, C_true)
    nearest = jax.nn.one_hot(jnp.argmin(dist_sq, axis=1), true_params.means.shape[0], dtype=params.weights.dtype)
    mass = params.weights @ nearest
    out = {"l2_distance": gmm_l2_distance(params, true_params)}
    out.update({f"weight.{c}": mass[c] for c in range(true_params.means.shape[0])})
    out["dead_components"] = jnp.sum(params.weights <= 0).astype(params.weights.dtype)
    spread = jnp.trace(params.covariances, axis1=-2, axis2=-1) / params.covariances.shape[-1]  # (C,)
    weighted = (params.weights * spread) @ nearest
    live_dist_sq = jnp.where(params.weights[:, None] > 0, dist_sq, jnp.inf)  # the heaviest is always live
    fallback = spread[jnp.argmin(live_dist_sq, axis=0)]  # (C_true,): the nearest live component's spread
    variance = jnp.where(mass > 0, weighted / jnp.where(mass > 0, mass, 1.0), fallback)
    out.update({f"variance.{c}": variance[c] for c in range(true_params.means.shape[0])})
    return out
