"""Linear regression estimator: ordinary least squares, ridge, and the minimum-norm interpolator.

A data point is a row `[x_1..x_d, y_1..y_L]` of shape `(d + L,)`, so the chain engine's pools
(buffers, weights, subsampling) handle regression data like any other. Column `y_1` is the label the
model is fitted on; model k labels the next generation's points with its own weights plus fresh noise,
`y_1 = <w_k, x> + noise_std * z`. With `labels=2` each row also carries the noise-free label
`y_2 = <m_k, x>`, where `m_k` is the fit of the same chain without any label noise: since a fit is
linear in its labels, `m_k = E[w_k | all designs]`, which splits the excess risk into its bias and
variance parts (`regression_metrics`).

Features: `x = S z`, `z ~ N(0, I_d)`, with `S S^T = Sigma` (`covariance_root`; None is the identity).
Designs:
  fixed  the same `X` (T x d, drawn once per chain, or once for all chains) is relabelled every
         generation (Gerstgrasser et al. 2024; Kazdan et al. 2024);
  fresh  new rows every generation (Dohmatob, Feng & Kempe 2024).

Fit, with weights w_i (zero on empty pool slots) and n = sum w_i:
  W_hat = argmin (1/n) sum_i w_i ||y_i - W^T x_i||^2 + ridge ||W||^2
        = (G / n + ridge I)^+ (B / n),  G = sum w_i x_i x_i^T,  B = sum w_i x_i y_i^T,
the pseudo-inverse giving the minimum-norm least-squares solution when `G` is singular (d > T, or a
subsample that repeats points). The statistics (n, G, B) merge by addition, so `accumulate` keeps
O(d^2) memory. Linear algebra is Cholesky-based (no SVD or eigensolver, which hang inside scans on
several CPU devices): plain Cholesky when the static `full_rank` promises a non-singular `G`, else the
pivoted, rank-revealing root `A = F F^T` and `A^+ B = F (F^T F)^-2 F^T B`.

Sufficient path (`sample_statistics`, exact, cost independent of T): the statistics of T rows labelled
by W are drawn from their joint law. With a fresh design `G = X^T X ~ Wishart_d(T, Sigma)`, drawn as
`G = R R^T`, `R = S A` with `A` a Bartlett factor (so `G^-1 = R^-T R^-1` is the inverse-Wishart draw
of `(X^T X)^-1`); with a fixed design `R` is the chain's fixed root of `X^T X`. Given `G`, the noise
moment `X^T z ~ N(0, G)` is `R xi`, `xi ~ N(0, I_d)`, so `B = G W + noise_std R xi e_1^T`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from collapse_jax.estimator import Estimator
from collapse_jax.linalg import bartlett_factor, pivoted_root, spd_factor, spd_factor_solve, triangular_solve
from collapse_jax.options import (  # noqa: F401 (re-exported)
    CHAIN_METRICS,
    DESIGNS,
    DOWNSTREAM_METRICS,
    REGRESSION_METRICS,
)

MEAN_TRACKING_METRICS = ("excess_bias", "excess_variance")


class RegressionStats(NamedTuple):
    """Weighted statistics: count `()`, Gram matrix `(d, d)` = sum w x x^T, moment `(d, L)` = sum w x y^T."""

    count: jax.Array
    gram: jax.Array
    moment: jax.Array


def regression_statistics(data: jax.Array, weights: jax.Array, dim: int) -> RegressionStats:
    """Statistics of weighted rows `data: (n, d + L)`, `weights: (n,)`."""
    x, y = data[:, :dim], data[:, dim:]
    weighted = x * weights[:, None]
    return RegressionStats(jnp.sum(weights), weighted.T @ x, weighted.T @ y)


def psd_solve(matrix: jax.Array, rhs: jax.Array, full_rank: bool, pure: bool = False) -> jax.Array:
    """`matrix^+ rhs` for a symmetric positive semi-definite `(d, d)` matrix and `rhs (d,)` or `(d, m)`
    in its range (the minimum-norm solution when the matrix is singular). `pure`: no LAPACK on CPU
    (see `linalg.lapack_is_safe`). One factorisation and two substitutions per call: for a matrix that
    stays fixed across many solves, `psd_solver`."""
    if full_rank:
        return spd_factor_solve(spd_factor(matrix, pure), rhs, pure)
    root, inner = _pivoted_root_and_inner_factor(matrix, pure)
    return root @ spd_factor_solve(inner, spd_factor_solve(inner, root.T @ rhs, pure), pure)


def _pivoted_root_and_inner_factor(matrix: jax.Array, pure: bool):
    """The pivoted, rank-revealing root `matrix = F F^T` and the Cholesky factor `L L^T = F^T F` (absent
    directions, zero columns of F, get a unit diagonal), so that `matrix^+ = F (F^T F)^-2 F^T`."""
    root, _ = pivoted_root(matrix)
    absent = jnp.all(root == 0.0, axis=0)
    return root, spd_factor(root.T @ root + jnp.diag(absent.astype(matrix.dtype)), pure)


def psd_solver(matrix: jax.Array, full_rank: bool, pure: bool = False):
    """`rhs -> matrix^+ rhs` (see `psd_solve`) for a `(d, d)` matrix that stays fixed (a fixed design's):
    factorised once, here, as `matrix^+ = A A^T`, so that each solve is two `(d, d)` products and no
    factorisation call. Full rank: `A = L^-T` for the Cholesky factor `L L^T = matrix`. Otherwise the
    pivoted, rank-revealing root `matrix = F F^T`, `matrix^+ = F (F^T F)^-2 F^T`, so `A = F L^-T L^-1`
    for `L L^T = F^T F`. `L^-1` comes from substitution (`linalg.triangular_solve`), whose columns are as
    accurate as the solves they replace."""
    eye = jnp.eye(matrix.shape[-1], dtype=matrix.dtype)
    if full_rank:
        half = triangular_solve(spd_factor(matrix, pure), eye).T
    else:
        root, inner = _pivoted_root_and_inner_factor(matrix, pure)
        inverse_lower = triangular_solve(inner, eye)
        half = root @ (inverse_lower.T @ inverse_lower)
    return lambda rhs: half @ (half.T @ rhs)


def ridge_fit(stats: RegressionStats, ridge, full_rank: bool) -> jax.Array:
    """`(G / n + ridge I)^+ B / n`: `(d, L)` weights from statistics."""
    dim = stats.gram.shape[-1]
    count = jnp.maximum(stats.count, 1.0)
    matrix = stats.gram / count + ridge * jnp.eye(dim, dtype=stats.gram.dtype)
    return psd_solve(matrix, stats.moment / count, full_rank)


def draw_features(key: jax.Array, n: int, dim: int, covariance_root, dtype) -> jax.Array:
    """`(n, d)` rows `x = S z`, `z ~ N(0, I_d)`."""
    z = jax.random.normal(key, (n, dim), dtype)
    return z if covariance_root is None else z @ covariance_root.T


def wishart_root(key: jax.Array, samples, dim: int, covariance_root, dtype) -> jax.Array:
    """`(d, d)` `R` with `R R^T ~ Wishart_d(samples, Sigma)`, the law of `X^T X` for `samples` rows
    (`samples` may be traced; singular when samples < d)."""
    root = bartlett_factor(key, samples, dim, dtype)
    return root if covariance_root is None else covariance_root @ root


def make_linear_regression(
    dim: int,
    *,
    ridge,
    noise_std,
    covariance_root: jax.Array | None = None,
    design: jax.Array | None = None,
    design_root: jax.Array | None = None,
    full_rank: bool = False,
    labels: int = 1,
    design_rows=None,
    fixed_design_fits: bool = False,
) -> Estimator:
    """A linear-regression estimator for data rows `(n, dim + labels)` and weights `(dim, labels)`.

    Args:
      dim: d, the number of features.
      ridge: penalty lambda >= 0 (may be a traced scalar); 0 gives OLS / the minimum-norm interpolator.
      noise_std: standard deviation of the label noise the model adds when it labels points (traced ok).
      covariance_root: `(d, d)` S with `S S^T = Sigma`, or None for `Sigma = I`.
      design: `(T, d)` fixed design relabelled by `sample` (sample path), or None for fresh rows.
      design_root: `(d, d)` fixed root of `X^T X` used by `sample_statistics` (sufficient path with a
        fixed design), or None to draw a fresh Wishart Gram matrix each time.
      full_rank: promise that every fitted matrix is non-singular (plain Cholesky); otherwise the
        pivoted root handles singular ones.
      labels: 1, or 2 to carry the noise-free mean chain in a second label column (module docstring).
      design_rows: T, the rows behind `design_root` (may be traced); default: `design`'s rows.
      fixed_design_fits: promise that every fit sees whole copies of the fixed design (pool rules
        replace and accumulate, M_k = T): its matrix `X^T X / T + ridge I` is then the same at every
        generation (k copies give k X^T X / (k T)), so it is factorised once per chain and each fit is
        two triangular solves. With a fixed `design`, `draw_statistics` also skips the Gram matrix
        (the statistics of relabelled rows are `X^T X w + X^T noise`).
    """
    noise_column = jnp.arange(labels) == 0
    fixed_gram = None
    if design is not None:
        fixed_gram, fixed_rows = design.T @ design, design.shape[0]
    elif design_root is not None:
        fixed_gram = design_root @ design_root.T
        fixed_rows = design_rows
    if fixed_design_fits:
        if fixed_gram is None or fixed_rows is None:
            raise ValueError("fixed_design_fits needs a fixed design (design, or design_root with design_rows)")
        eye = jnp.eye(dim, dtype=fixed_gram.dtype)
        fixed_solver = psd_solver(fixed_gram / jnp.asarray(fixed_rows, fixed_gram.dtype) + ridge * eye, full_rank)

    def statistics(data, weights):
        return regression_statistics(data, weights, dim)

    def fit_statistics(key, stats: RegressionStats):
        del key
        if fixed_design_fits:  # the matrix is the fixed design's (factorised once): only the moment changes
            return fixed_solver(stats.moment / jnp.maximum(stats.count, 1.0))
        return ridge_fit(stats, ridge, full_rank)

    def fit(key, data, weights):
        return fit_statistics(key, statistics(data, weights))

    def sample(key, weights, n: int):
        key_x, key_noise = jax.random.split(key)
        x = design[:n] if design is not None else draw_features(key_x, n, dim, covariance_root, weights.dtype)
        noise = noise_std * jax.random.normal(key_noise, (n, 1), weights.dtype)
        return jnp.concatenate([x, x @ weights + noise * noise_column], axis=1)

    def draw_statistics(key, weights, n: int):
        """The statistics of `sample(key, weights, n)` on the fixed design, without its Gram matrix."""
        key_noise = jax.random.split(key)[1]
        x = design[:n]
        noise = noise_std * jax.random.normal(key_noise, (n, 1), weights.dtype)  # sample's noise draw
        gram = fixed_gram if n == design.shape[0] else x.T @ x
        return RegressionStats(jnp.asarray(n, weights.dtype), gram, gram @ weights + (x.T @ noise) * noise_column)

    def sample_statistics(key, weights, n):
        key_gram, key_noise = jax.random.split(key)
        dtype = weights.dtype
        root = design_root if design_root is not None else wishart_root(key_gram, n, dim, covariance_root, dtype)
        gram = fixed_gram if design_root is not None else root @ root.T
        noise = noise_std * (root @ jax.random.normal(key_noise, (dim,), dtype))
        return RegressionStats(jnp.asarray(n, dtype), gram, gram @ weights + noise[:, None] * noise_column)

    def merge(a, b):
        return jax.tree.map(jnp.add, a, b)

    def weigh_statistics(stats, factor):
        return jax.tree.map(lambda part: part * jnp.asarray(factor, part.dtype), stats)

    return Estimator(
        name="linear-regression",
        fit=fit,
        sample=sample,
        statistics=statistics,
        merge=merge,
        fit_statistics=fit_statistics,
        sample_statistics=sample_statistics,
        draw_statistics=draw_statistics if design is not None else None,
        # a fixed design's fits assume its own Gram matrix (`fixed_design_fits`): weighing is for fresh rows
        weigh_statistics=weigh_statistics if fixed_gram is None else None,
    )


def _sigma_norm_sq(vector: jax.Array, covariance_root) -> jax.Array:
    """`v^T Sigma v` for `Sigma = S S^T` (S None: the identity)."""
    projected = vector if covariance_root is None else covariance_root.T @ vector
    return jnp.sum(projected * projected)


def regression_metrics(
    weights: jax.Array, true_weights: jax.Array, names=("excess_risk",), covariance_root=None
) -> dict:
    """Per-chain metrics of weights `(d, L)` against the truth `(d, L)` (every column w*).

    excess_risk      (w - w*)^T Sigma (w - w*), the test error against noiseless targets;
    excess_bias      (m - w*)^T Sigma (m - w*), m = E[w | designs] (the noise-free chain, column 2);
    excess_variance  (w - m)^T Sigma (w - m); E excess_risk = E excess_bias + E excess_variance.
    """
    target = true_weights[:, 0]
    values = {
        "excess_risk": lambda: _sigma_norm_sq(weights[:, 0] - target, covariance_root),
        "excess_bias": lambda: _sigma_norm_sq(weights[:, -1] - target, covariance_root),
        "excess_variance": lambda: _sigma_norm_sq(weights[:, 0] - weights[:, -1], covariance_root),
    }
    return {name: values[name]() for name in names if name in values}


def downstream_metrics(
    key: jax.Array,
    weights: jax.Array,
    true_weights: jax.Array,
    *,
    samples: int,
    ridge,
    noise_std,
    covariance_root=None,
    full_rank: bool = False,
    names=DOWNSTREAM_METRICS,
) -> dict:
    """A downstream ridge model fitted on T fresh points labelled by a chain's model (two-stage setting of
    Dohmatob, Feng & Kempe 2024): `x ~ N(0, Sigma)`, `y = <w_k, x> + noise_std z`,
    `v = (X^T X / T + ridge I)^+ X^T y / T`. With `H = (Sigma_hat + ridge)^+ Sigma_hat` and
    `delta = w_k - w*`:

      downstream_excess_risk  ||v - w*||_Sigma^2 (realised);
      downstream_bias         ||(H - I) w*||_Sigma^2, the clean ridge bias;
      downstream_variance     noise_std^2 tr(R X^T X R Sigma) / T^2, R = (Sigma_hat + ridge)^+ (the
                              expectation over the downstream label noise);
      downstream_synthetic    ||H delta||_Sigma^2, what the chain's error becomes downstream.

    The cross terms have mean zero when E[delta | designs] = 0 (OLS chains), so the expected risk is the
    sum of the three parts. Shapes: weights and true_weights `(d, L)`; returns scalars.
    """
    dim = weights.shape[0]
    dtype = weights.dtype
    key_x, key_noise = jax.random.split(key)
    x = draw_features(key_x, samples, dim, covariance_root, dtype)
    w_model, w_true = weights[:, 0], true_weights[:, 0]
    y = x @ w_model + noise_std * jax.random.normal(key_noise, (samples,), dtype)
    gram = x.T @ x / samples
    matrix = gram + ridge * jnp.eye(dim, dtype=dtype)
    wanted = set(names)
    columns = [x.T @ y / samples, gram @ w_true, gram @ (w_model - w_true)]
    solved = psd_solve(matrix, jnp.stack(columns, axis=1), full_rank)
    values = {
        "downstream_excess_risk": lambda: _sigma_norm_sq(solved[:, 0] - w_true, covariance_root),
        "downstream_bias": lambda: _sigma_norm_sq(solved[:, 1] - w_true, covariance_root),
        "downstream_synthetic": lambda: _sigma_norm_sq(solved[:, 2], covariance_root),
    }
    out = {name: values[name]() for name in names if name in values}
    if "downstream_variance" in wanted:
        spread = psd_solve(matrix, x.T, full_rank) / samples  # (d, T): R X^T / T
        spread = spread if covariance_root is None else covariance_root.T @ spread
        out["downstream_variance"] = noise_std**2 * jnp.sum(spread * spread)
    return {name: out[name] for name in names if name in out}


def make_projected_regression(projection: jax.Array, *, noise_std, full_rank: bool = False) -> Estimator:
    """The random-projection model f(x) = x^T S v of width m (Dohmatob et al. 2024, "Strong Model
    Collapse"): `projection` S is `(d, m)`; v is the minimum-norm least-squares fit of y on the features
    S^T x (the interpolator when m exceeds the number of points). Parameters are the effective weights
    w = S v `(d, 1)`, so sampling and metrics are those of `make_linear_regression` with Sigma = I.
    The model depends on S only through its column space, so S is first replaced by an orthonormal
    basis Q of it (a square Gaussian S is often ill-conditioned: S^T G S would lose float32 precision).
    Statistics are the x-space (n, G, B), projected at fit time: w = Q (Q^T G Q)^+ Q^T B."""
    dim = projection.shape[0]
    base = make_linear_regression(dim, ridge=0.0, noise_std=noise_std, full_rank=False)
    projection = orthonormal_columns(projection)

    def fit_statistics(key, stats: RegressionStats):
        del key
        projected = RegressionStats(stats.count, projection.T @ stats.gram @ projection, projection.T @ stats.moment)
        return projection @ ridge_fit(projected, 0.0, full_rank)

    def fit(key, data, weights):
        return fit_statistics(key, base.statistics(data, weights))

    return base._replace(name="projected-regression", fit=fit, fit_statistics=fit_statistics, sample_statistics=None)


def orthonormal_columns(matrix: jax.Array) -> jax.Array:
    """An orthonormal basis `(d, m)` of the column space of a full-rank `(d, m)` matrix, m <= d (for
    m > d, the identity's first d columns padded with zeros span R^d). Gram-Schmidt applied twice, in
    a `fori_loop` of vector products (no LAPACK QR; see `collapse_jax.linalg`)."""
    dim, width = matrix.shape
    if width > dim:
        return jnp.eye(dim, width, dtype=matrix.dtype)

    def column(j, basis):
        v = matrix[:, j]
        mask = (jnp.arange(width) < j).astype(matrix.dtype)
        for _ in range(2):
            v = v - basis @ (mask * (basis.T @ v))
        return basis.at[:, j].set(v / jnp.sqrt(jnp.sum(v * v)))

    return jax.lax.fori_loop(0, width, column, jnp.zeros_like(matrix))
