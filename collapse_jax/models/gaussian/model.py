"""Gaussian estimator: sample mean and (MLE or unbiased) sample covariance, 1-D or d-dimensional.

A fitted Gaussian keeps its covariance as a unit-norm root and a separate log-scale,
`Sigma = exp(2 log_scale) root root^T` with `||root||_F = 1`, and its log-determinant as a number of
its own. A chain that collapses shrinks the covariance by many orders of magnitude (below float32's
range after a few hundred generations at M close to d); in this form the shape of the covariance keeps
full relative precision, the scale and `log det` are exact sums of logs, and `trace`, `w2_sq` and the
draws underflow to their true limit (0, or the mean) instead of turning into NaN.

Roots never come from factorising a formed scatter matrix that may be near singular (forming it
squares the condition number: a float32 Cholesky fails once it passes about 1e7, as it does by chance
for M = d + 1); only where every fit has at least 3d points (`well_conditioned`) is the scatter formed
and its Cholesky factor taken, which is faster. Otherwise:

- points: the Householder QR of the weighted centred points (`linalg.qr_root`); at most d points give
  the centred points themselves as a root, and `log det = -inf`;
- pools (`merge`): the QR of the two roots stacked with the mean-shift row, scaled to a common scale;
- draws of the model itself (`draw_statistics`, `sample_statistics`): the model's root times the root
  of the standardised draws' scatter (a QR; a Cholesky when n >= 3d, where that scatter's condition
  number is below about 14; a Bartlett factor for the exact law), so roots multiply
  and `log det` adds, in the model's own frame: draws that are indistinguishable from the mean in
  float32 still give the exact next fit.

With `full_rank=False` (pools that may stay singular, M - 1 < d) the QR pivots on the largest column
and a direction below `sqrt(eps)` times the largest counts as absent (`log det = -inf`).

Sufficient statistics are `(count, mean, root, log_scale, log_det)` of the scatter; for n draws from
`N(mu, F F^T)` they have the exact law `mean ~ N(mu, F F^T / n)` independent of `scatter = F W F^T`,
`W ~ Wishart_d(n - 1, I)`, drawn by Bartlett's decomposition (valid for singular `n - 1 < d` too):
O(d^3) per generation, whatever n.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from collapse_jax.estimator import Estimator
from collapse_jax.linalg import bartlett_factor, cholesky_root, qr_root, robust_norm, spd_solve, sum_singular_values
from collapse_jax.options import EXTRA_GAUSSIAN_METRICS, GAUSSIAN_METRICS  # noqa: F401 (re-exported)

_SMALL_DIM = 4  # up to this dimension, products are written as sums (faster under vmap on CPU)
_WELL_CONDITIONED = 3  # a fit on n >= 3d points (standardised draws, or data of a well-conditioned chain):
# its scatter is far from singular (a Wishart(n - 1, I_d) scatter's condition number is below about 14 at the
# Marchenko-Pastur edges, ((1 + 3^-1/2) / (1 - 3^-1/2))^2), and its Cholesky factor as accurate as the QR


class GaussianParams(NamedTuple):
    """A fitted Gaussian. mean: `(d,)`; root: `(d, d)`, unit Frobenius norm; log_scale: `()`;
    log_det: `()`. The covariance is `exp(2 log_scale) root root^T`."""

    mean: jax.Array
    root: jax.Array
    log_scale: jax.Array
    log_det: jax.Array

    @property
    def scaled_root(self) -> jax.Array:
        """`exp(log_scale) root`, a root of the covariance (underflows to 0 below float range)."""
        return jnp.exp(self.log_scale)[..., None, None] * self.root

    @property
    def covariance(self) -> jax.Array:
        root = self.scaled_root
        return root @ jnp.swapaxes(root, -1, -2)


class GaussianStats(NamedTuple):
    """Weighted point-set statistics: count `()`, mean `(d,)`, a unit-norm root `(d, d)` and log-scale
    `()` of the scatter (`scatter = exp(2 log_scale) root root^T`) and its log-determinant `()`."""

    count: jax.Array
    mean: jax.Array
    root: jax.Array
    log_scale: jax.Array
    log_det: jax.Array

    @property
    def scatter(self) -> jax.Array:
        root = jnp.exp(self.log_scale)[..., None, None] * self.root
        return root @ jnp.swapaxes(root, -1, -2)


def normalised_root(root: jax.Array, log_scale) -> tuple[jax.Array, jax.Array]:
    """`(root / ||root||_F, log_scale + log ||root||_F)`; a zero root keeps its zeros and gets log-scale -inf."""
    norm = robust_norm(root.reshape(-1))
    nonzero = norm > 0
    return (
        jnp.where(nonzero, root / jnp.where(nonzero, norm, 1.0), root),
        log_scale + jnp.where(nonzero, jnp.log(jnp.where(nonzero, norm, 1.0)), -jnp.inf),
    )


def _times(matrix, vector):
    """`matrix @ vector` for `(d, d)` and `(d,)`, as sums when d is small."""
    if vector.shape[-1] <= _SMALL_DIM:
        return jnp.sum(matrix * vector[None, :], axis=-1)
    return matrix @ vector


def gaussian_params(mean, covariance) -> GaussianParams:
    """The true (generation-0) parameters from a mean `(d,)` and a positive-definite covariance `(d, d)`."""
    mean = jnp.asarray(mean)
    root, log_det = cholesky_root(jnp.asarray(covariance, dtype=mean.dtype))
    root, log_scale = normalised_root(root, jnp.zeros((), mean.dtype))
    return GaussianParams(mean, root, log_scale, log_det)


def make_gaussian(*, ddof: int = 0, full_rank: bool = True, well_conditioned: bool = False) -> Estimator:
    """Gaussian estimator with covariance normalised by `count - ddof` (0: MLE, 1: unbiased).

    Args:
      ddof: 0 (MLE) or 1 (unbiased).
      full_rank: every merged pool is almost surely full rank (true when the first fit has more than d
        points, i.e. M - 1 >= d); False makes roots rank revealing (pivoted QR, see the module docstring).
      well_conditioned: every fit has at least 3d points (M >= 3d), so no scatter of points or pool is
        near singular: roots of points and pools come from the Cholesky factor of the formed scatter
        (matrix products, several times faster than the QR for large d). Draws of a collapsing model
        still go through `draw_statistics`, which never forms their scatter in absolute coordinates.

    Example:
      >>> est = make_gaussian(ddof=1)
      >>> params = est.fit(key, data, jnp.ones(data.shape[0]))
      >>> new_points = est.sample(key, params, 100)
    """
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (MLE) or 1 (unbiased), got {ddof!r}")
    pivot = not full_rank
    if well_conditioned and not full_rank:
        raise ValueError("well_conditioned needs full_rank (at least 3d points per fit)")

    def root_of_scatter(scatter, log_scale):
        """Unit root, log-scale and log det of `exp(2 log_scale) scatter` (well conditioned, or zero: the
        empty pool an accumulating chain starts from)."""
        dim = scatter.shape[-1]
        empty = jnp.trace(scatter) == 0
        root, log_det = cholesky_root(jnp.where(empty, jnp.eye(dim, dtype=scatter.dtype), scatter))
        root, unit_log_scale = normalised_root(jnp.where(empty, 0.0, root), log_scale)
        return root, unit_log_scale, jnp.where(empty, -jnp.inf, log_det + 2.0 * dim * log_scale)

    def root_of_rows(rows, log_scale):
        """Unit root, log-scale and log det of `exp(2 log_scale) rows^T rows`, rows `(m, d)` with m > d."""
        dim = rows.shape[-1]
        root, log_diag = qr_root(rows, pivot=pivot)
        log_det = 2.0 * jnp.sum(log_diag) + 2.0 * dim * log_scale
        if pivot:  # rank revealing: a direction far below the largest is absent
            absent = log_diag < jnp.max(log_diag) + 0.5 * jnp.log(jnp.finfo(rows.dtype).eps)
            log_det = jnp.where(jnp.any(absent), -jnp.inf, log_det)
        root, log_scale = normalised_root(root, log_scale)
        return root, log_scale, log_det

    def statistics(data, weights) -> GaussianStats:
        n, dim = data.shape
        weights = weights.astype(data.dtype)
        count = jnp.sum(weights)
        mean = jnp.sum(weights[:, None] * data, axis=0) / jnp.maximum(count, 1.0)
        centred = (data - mean) * jnp.sqrt(weights)[:, None]
        zero = jnp.zeros((), data.dtype)
        if n <= dim:  # at most d points: the centred points are a root, and the scatter is singular
            root, log_scale = normalised_root(jnp.pad(centred.T, ((0, 0), (0, dim - n))), zero)
            return GaussianStats(count, mean, root, log_scale, jnp.asarray(-jnp.inf, data.dtype))
        if well_conditioned and n >= _WELL_CONDITIONED * dim:  # not a small part of a batch (its real points)
            return GaussianStats(count, mean, *root_of_scatter(centred.T @ centred, zero))
        return GaussianStats(count, mean, *root_of_rows(centred, zero))

    def merge(a: GaussianStats, b: GaussianStats) -> GaussianStats:
        count = a.count + b.count
        safe = jnp.maximum(count, 1.0)
        delta = b.mean - a.mean
        mean = a.mean + delta * (b.count / safe)
        # scatter_a + scatter_b + (n_a n_b / n) delta delta^T, as the QR of its three roots stacked
        delta_norm = robust_norm(delta)
        shift_log = 0.5 * jnp.log(a.count * b.count / safe) + jnp.log(delta_norm)  # -inf when absent
        top = jnp.maximum(jnp.maximum(a.log_scale, b.log_scale), shift_log)
        top = jnp.where(jnp.isfinite(top), top, 0.0)
        shift = delta / jnp.where(delta_norm > 0, delta_norm, 1.0) * jnp.exp(shift_log - top)
        rows = jnp.concatenate(
            [a.root.T * jnp.exp(a.log_scale - top), b.root.T * jnp.exp(b.log_scale - top), shift[None, :]]
        )
        if well_conditioned:
            return GaussianStats(count, mean, *root_of_scatter(rows.T @ rows, top))
        return GaussianStats(count, mean, *root_of_rows(rows, top))

    def fit_statistics(key, stats: GaussianStats) -> GaussianParams:
        del key
        dim = stats.mean.shape[-1]
        log_divisor = jnp.log(stats.count - ddof)
        return GaussianParams(
            stats.mean, stats.root, stats.log_scale - 0.5 * log_divisor, stats.log_det - dim * log_divisor
        )

    def fit(key, data, weights) -> GaussianParams:
        return fit_statistics(key, statistics(data, weights))

    def draw_standard(key, params: GaussianParams, n: int) -> jax.Array:
        return jax.random.normal(key, (n, params.mean.shape[-1]), params.mean.dtype)

    def sample(key, params: GaussianParams, n: int) -> jax.Array:
        z = draw_standard(key, params, n)
        root = params.scaled_root
        if params.mean.shape[-1] <= _SMALL_DIM:
            return params.mean + jnp.sum(z[:, None, :] * root[None, :, :], axis=-1)
        return params.mean + z @ root.T

    def in_frame(params: GaussianParams, count, z_mean, factor, factor_log_det) -> GaussianStats:
        """Statistics of draws `mean + F z` from their standardised mean and a root `factor` `(d, c)`,
        c <= d, of their standardised scatter: the scatter's root is `F factor` (zero-padded to `(d, d)`:
        a `(d, d) x (d, c)` product, not `d^3`, for a fit on c <= d points), its log det adds."""
        dim = params.root.shape[-1]
        product = params.root @ factor
        product = jnp.pad(product, ((0, 0), (0, dim - product.shape[-1])))
        mean = params.mean + jnp.exp(params.log_scale) * _times(params.root, z_mean)
        root, log_scale = normalised_root(product, params.log_scale)
        return GaussianStats(count, mean, root, log_scale, params.log_det + factor_log_det)

    def draw_statistics(key, params: GaussianParams, n: int) -> GaussianStats:
        z = draw_standard(key, params, n)  # the draws of sample(key, params, n), standardised
        dim = z.shape[-1]
        z_mean = jnp.mean(z, axis=0)
        centred = z - z_mean
        count = jnp.asarray(n, z.dtype)
        if n <= dim:
            return in_frame(params, count, z_mean, centred.T, jnp.asarray(-jnp.inf, z.dtype))
        if dim == 1:  # standard draws neither underflow nor overflow: the plain sum of squares is exact
            sum_sq = jnp.sum(centred**2)
            return in_frame(params, count, z_mean, jnp.sqrt(sum_sq).reshape(1, 1), jnp.log(sum_sq))
        if n >= _WELL_CONDITIONED * dim and dim > 1:
            # a Wishart(n - 1, I) scatter with n >= 3d has condition number below about 14 (Marchenko-Pastur
            # edges): its Cholesky is as accurate as the QR, and a matrix product is much faster
            factor, log_det = cholesky_root(centred.T @ centred)
            return in_frame(params, count, z_mean, factor, log_det)
        factor, log_diag = qr_root(centred)
        return in_frame(params, count, z_mean, factor, 2.0 * jnp.sum(log_diag))

    def weigh_statistics(stats: GaussianStats, factor) -> GaussianStats:
        """Every weight times `factor`: count and scatter scale, the mean does not (in logs: exact at any scale)."""
        log_factor = jnp.log(jnp.asarray(factor, stats.mean.dtype))
        dim = stats.mean.shape[-1]
        return stats._replace(
            count=stats.count * factor,
            log_scale=stats.log_scale + 0.5 * log_factor,
            log_det=stats.log_det + dim * log_factor,
        )

    def temper(params: GaussianParams, temperature) -> GaussianParams:
        """N(mu, tau Sigma): the density raised to 1/tau and renormalised (a scale, so exact at any scale)."""
        dim = params.mean.shape[-1]
        log_tau = jnp.log(temperature)
        return params._replace(log_scale=params.log_scale + 0.5 * log_tau, log_det=params.log_det + dim * log_tau)

    def standard_statistics(key, params: GaussianParams, n):
        """The standardised mean `(d,)` and Bartlett factor `(d, d)` of n draws (their exact law)."""
        dim = params.mean.shape[-1]
        dtype = params.mean.dtype
        key_mean, key_scatter = jax.random.split(key)
        count = jnp.asarray(n, dtype)
        z_mean = jax.random.normal(key_mean, (dim,), dtype) / jnp.sqrt(jnp.maximum(count, 1.0))
        return count, z_mean, bartlett_factor(key_scatter, count - 1, dim, dtype)

    def sample_statistics(key, params: GaussianParams, n) -> GaussianStats:
        count, z_mean, bartlett = standard_statistics(key, params, n)
        return in_frame(params, count, z_mean, bartlett, 2.0 * jnp.sum(jnp.log(jnp.diagonal(bartlett))))

    def merge_own_draws(key, pool: GaussianStats, params: GaussianParams, n) -> GaussianStats:
        """The pool grown by n draws of `params` = `fit_statistics(pool)` (maybe tempered), in the pool's
        frame R: the merged scatter is `exp(2 s) R K R^T` with `K = I + c (B B^T + m z z^T)`, c the draws'
        variance relative to the pool's scale, B their Bartlett factor, z their standardised mean and
        m = n_pool n / (n_pool + n) (ours). K >= I, so its Cholesky factor L is accurate whatever R's
        condition; the root is R L (zero columns of a singular R stay zero and last), log det adds."""
        dim = params.mean.shape[-1]
        count_b, z_mean, bartlett = standard_statistics(key, params, n)
        count = pool.count + count_b
        shift = pool.count * count_b / jnp.maximum(count, 1.0)
        relative = jnp.exp(2.0 * (params.log_scale - pool.log_scale))
        inner = jnp.eye(dim, dtype=z_mean.dtype) + relative * (
            bartlett @ bartlett.T + shift * jnp.outer(z_mean, z_mean)
        )
        factor, inner_log_det = cholesky_root(inner)
        mean = params.mean + (count_b / jnp.maximum(count, 1.0)) * jnp.exp(params.log_scale) * _times(
            params.root, z_mean
        )
        root, log_scale = normalised_root(pool.root @ factor, pool.log_scale)
        return GaussianStats(count, mean, root, log_scale, pool.log_det + inner_log_det)

    return Estimator(
        name=f"gaussian(ddof={ddof})",
        fit=fit,
        sample=sample,
        statistics=statistics,
        merge=merge,
        fit_statistics=fit_statistics,
        sample_statistics=sample_statistics,
        draw_statistics=draw_statistics,
        merge_own_draws=merge_own_draws,
        temper=temper,
        weigh_statistics=weigh_statistics,
    )


def linear_reward(direction):
    """The reward r(x) = a . x `(d,)` -> a `chain.Reward`: scores `points @ a`, E r = a . mu, and the
    exact tilt N(mu, Sigma) e^{a . x} / Z = N(mu + Sigma a, Sigma) (Ferbach et al. 2024: the mean moves
    by Sigma a, the covariance is unchanged)."""
    from collapse_jax.types import Reward

    direction = jnp.asarray(direction)

    def tilt(params: GaussianParams) -> GaussianParams:
        a = direction.astype(params.mean.dtype)
        shift = jnp.exp(2.0 * params.log_scale) * _times(params.root, _times(params.root.T, a))
        return params._replace(mean=params.mean + shift)

    return Reward(
        score=lambda points: points @ direction.astype(points.dtype),
        expected=lambda params: jnp.sum(params.mean * direction.astype(params.mean.dtype)),
        tilt=tilt,
    )


def gaussian_metrics(
    params: GaussianParams, true: GaussianParams, names: tuple[str, ...], *, columns: int | None = None
) -> dict:
    """Per-generation distances of a fitted Gaussian to the true one (scalars).

    mean_error_sq: `||mu_k - mu_0||^2`; trace_ratio: `tr Sigma_k / tr Sigma_0` (from the log-scales:
    exact until it underflows to 0); log_det_ratio: `log det Sigma_k - log det Sigma_0` (exact at any
    scale; `-inf` when Sigma_k is singular); w2_sq: squared 2-Wasserstein distance `||mu_k - mu_0||^2 +
    tr Sigma_k + tr Sigma_0 - 2 tr (Sigma_0^{1/2} Sigma_k Sigma_0^{1/2})^{1/2}`, the trace being the
    nuclear norm of `L_0^T F_k` (`linalg.sum_singular_values`: 16 scaled Newton-Schulz steps of
    `(d, c) x (c, c)` products when d > 2, c = `columns`; closed forms for d <= 2);
    kl_divergence: KL(N_0 || N_k) = (tr(Sigma_k^-1 Sigma_0) + (mu_k - mu_0)^T Sigma_k^-1 (mu_k - mu_0) - d
    + log det Sigma_k - log det Sigma_0) / 2, the expected test NLL of real points minus its minimum
    (`+inf` when Sigma_k is singular, or when it overflows float range as Sigma_k collapses).

    `columns`: a static bound c on the nonzero columns of `params.root` (the others must be zero, or
    rounding-level as in a rank-revealing root): a fit on n <= d points has a root of rank n - 1 or less
    whose nonzero columns come first (points padded with zeros, or a pivoted QR), so `w2_sq` works on the
    `(d, c)` block with c = n. None: all d columns (the truth itself, generation 0).
    """
    out = {}
    dtype = params.mean.dtype
    dim = params.mean.shape[-1]
    mean_error_sq = jnp.sum((params.mean - true.mean) ** 2)
    log_trace = 2.0 * params.log_scale + jnp.log(jnp.sum(params.root**2))
    log_trace0 = 2.0 * true.log_scale + jnp.log(jnp.sum(true.root**2))
    trace, trace0 = jnp.exp(log_trace), jnp.exp(log_trace0)
    if "mean_error_sq" in names:
        out["mean_error_sq"] = mean_error_sq
    if "trace_ratio" in names:
        out["trace_ratio"] = jnp.exp(log_trace - log_trace0)
    if "log_det_ratio" in names:
        out["log_det_ratio"] = params.log_det - true.log_det
    if "w2_sq" in names:
        if dim == 1:
            sd_gap = jnp.exp(0.5 * log_trace) - jnp.exp(0.5 * log_trace0)
            out["w2_sq"] = mean_error_sq + sd_gap**2
        else:
            fitted = params.root if columns is None or columns >= dim else params.root[:, :columns]
            nuclear = jnp.exp(params.log_scale + true.log_scale) * sum_singular_values(true.root.T @ fitted)
            out["w2_sq"] = jnp.maximum(mean_error_sq + trace + trace0 - 2.0 * nuclear, 0.0)
    if "kl_divergence" in names:
        regular = jnp.isfinite(params.log_det)
        shape = jnp.where(regular, params.root @ params.root.T, jnp.eye(dim, dtype=dtype))  # Sigma_k / exp(2 s)
        solved = spd_solve(shape, jnp.concatenate([true.covariance, (params.mean - true.mean)[:, None]], axis=1))
        inverse_terms = jnp.trace(solved[:, :dim]) + (params.mean - true.mean) @ solved[:, dim]
        value = 0.5 * (jnp.exp(-2.0 * params.log_scale) * inverse_terms - dim + params.log_det - true.log_det)
        out["kl_divergence"] = jnp.where(regular, value, jnp.inf)
    return out
