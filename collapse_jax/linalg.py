"""Small, batch-friendly linear algebra used by the estimators (pure array code, vmaps cleanly)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def psd_cholesky(matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Cholesky factor of a positive semi-definite matrix, exact when it is singular.

    Outer-product Cholesky in which a pivot at or below `d * eps * max(diag)` (rounding level) ends its
    column: the column is set to zero instead of producing NaN. For a singular PSD matrix the zero
    pivots are exactly the missing directions, so `L @ L.T == matrix` up to rounding.

    Args:
      matrix: `(d, d)` symmetric positive semi-definite.

    Returns:
      factor: `(d, d)` lower triangular with non-negative diagonal.
      rank_deficient: `()` bool, True if any pivot was dropped.
    """
    d = matrix.shape[-1]
    eps = jnp.finfo(matrix.dtype).eps
    tol = d * eps * jnp.max(jnp.diagonal(matrix))
    rows = jnp.arange(d)

    def column(j, state):
        residual, factor, dropped = state
        pivot = residual[j, j]
        keep = pivot > tol
        col = jnp.where(keep, residual[:, j] / jnp.sqrt(jnp.where(keep, pivot, 1.0)), 0.0)
        col = jnp.where(rows >= j, col, 0.0)
        residual = residual - jnp.outer(col, col)
        return residual, factor.at[:, j].set(col), dropped | ~keep

    init = (matrix, jnp.zeros_like(matrix), jnp.zeros((), bool))
    _, factor, dropped = jax.lax.fori_loop(0, d, column, init)
    return factor, dropped
