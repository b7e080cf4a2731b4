"""Linear regression estimator: ordinary least squares, ridge, and the minimum-norm interpolator.

A data point is a row `[x_1..x_d, y]` of shape `(d + 1,)`, so the chain engine's pools (buffers,
weights, top-k subsampling) handle regression data like any other. Model k labels the next
generation's points with its own weights plus fresh noise: `y = <w_k, x> + noise_std * z`.

Designs:
  fixed  the same `X` (T x d, drawn once per chain, or once for all chains) is relabelled every
         generation (Gerstgrasser et al. 2024; Kazdan et al. 2024);
  fresh  new `x ~ N(0, I_d)` rows every generation (Dohmatob, Feng & Kempe 2024).

Fit, with weights w_i (zero on empty pool slots) and n = sum w_i:
  w_hat = argmin (1/n) sum_i w_i (y_i - <w, x_i>)^2 + ridge ||w||^2
        = (G / n + ridge I)^+ (b / n),  G = sum w_i x_i x_i^T,  b = sum w_i y_i x_i,
the pseudo-inverse giving the minimum-norm least-squares solution when `G` is singular (d > T, or a
subsample that repeats points). The statistics (n, G, b) merge by addition, so `accumulate` keeps
O(d^2) memory. Linear algebra is Cholesky-based (no SVD or eigensolver, which hang inside scans on
several CPU devices): plain Cholesky when the static `full_rank` promises a non-singular `G`, else the
pivoted, rank-revealing root `A = F F^T` and `A^+ b = F (F^T F)^-2 F^T b`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from collapse_jax.estimator import Estimator
from collapse_jax.linalg import pivoted_root, spd_solve

DESIGNS = ("fixed", "fresh")
REGRESSION_METRICS = ("excess_risk",)


class RegressionStats(NamedTuple):
    """Weighted statistics: count `()`, Gram matrix `(d, d)` = sum w x x^T, moment `(d,)` = sum w y x."""

    count: jax.Array
    gram: jax.Array
    moment: jax.Array


def regression_statistics(data: jax.Array, weights: jax.Array) -> RegressionStats:
    """Statistics of weighted rows `data: (n, d + 1)`, `weights: (n,)`."""
    x, y = data[:, :-1], data[:, -1]
    weighted = x * weights[:, None]
    return RegressionStats(jnp.sum(weights), weighted.T @ x, weighted.T @ y)


def psd_solve(matrix: jax.Array, rhs: jax.Array, full_rank: bool) -> jax.Array:
    """`matrix^+ rhs` for a symmetric positive semi-definite `(d, d)` matrix and `rhs (d,)` in its range."""
    if full_rank:
        return spd_solve(matrix, rhs)
    root, _ = pivoted_root(matrix)
    absent = jnp.all(root == 0.0, axis=0)
    inner = root.T @ root + jnp.diag(absent.astype(matrix.dtype))
    return root @ spd_solve(inner, spd_solve(inner, root.T @ rhs))


def make_linear_regression(dim: int, *, ridge, noise_std, design: jax.Array | None = None,
                           full_rank: bool = False) -> Estimator:
    """A linear-regression estimator for data rows `(n, dim + 1)`.

    Args:
      dim: d, the number of features.
      ridge: penalty lambda >= 0 (may be a traced scalar); 0 gives OLS / the minimum-norm interpolator.
      noise_std: standard deviation of the label noise added when the model labels points (traced ok).
      design: `(T, d)` fixed design relabelled by `sample`, or None to draw fresh `x ~ N(0, I_d)`.
      full_rank: promise that every fitted Gram matrix is non-singular (plain Cholesky); otherwise the
        pivoted root handles singular ones.
    """

    def fit_statistics(key, stats: RegressionStats):
        del key
        count = jnp.maximum(stats.count, 1.0)
        matrix = stats.gram / count + ridge * jnp.eye(dim, dtype=stats.gram.dtype)
        return psd_solve(matrix, stats.moment / count, full_rank)

    def fit(key, data, weights):
        return fit_statistics(key, regression_statistics(data, weights))

    def sample(key, weights, n: int):
        key_x, key_noise = jax.random.split(key)
        if design is not None:
            x = design[:n]
        else:
            x = jax.random.normal(key_x, (n, dim), weights.dtype)
        y = x @ weights + noise_std * jax.random.normal(key_noise, (n,), weights.dtype)
        return jnp.concatenate([x, y[:, None]], axis=1)

    def merge(a, b):
        return jax.tree.map(jnp.add, a, b)

    return Estimator(
        name="linear-regression",
        fit=fit,
        sample=sample,
        statistics=regression_statistics,
        merge=merge,
        fit_statistics=fit_statistics,
    )


def regression_metrics(weights: jax.Array, true_weights: jax.Array, names=REGRESSION_METRICS) -> dict:
    """excess_risk = (w - w*)^T Sigma (w - w*) with Sigma = I: the test error against noiseless targets."""
    error = weights - true_weights
    values = {"excess_risk": jnp.sum(error * error)}
    return {name: values[name] for name in names}
