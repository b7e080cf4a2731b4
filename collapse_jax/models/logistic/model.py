"""Logistic regression fitted by maximum likelihood (Newton / IRLS to a tolerance), relabelling its data.

A data point is a row `[x_1..x_d, y]` of shape `(d + 1,)` with `y` in {0, 1} (stored in the working
float), so the chain engine's pools (buffers, weights, subsampling) handle it as they handle the
regression rows of `collapse_jax.models.regression.model`. Model k labels the next generation's points with
`y ~ Bernoulli(sigmoid(<beta_k, x>))`; no intercept (the features are centred).

Features `x = S z`, `z ~ N(0, I_d)`, `S S^T = Sigma` (`covariance_root`; None is the identity).
Designs, as for regression:
  fixed  the same `X` (T x d, drawn once per chain) is relabelled every generation (Dey & Donoho 2024's
         setting): `sample` returns the design's first n rows with fresh labels;
  fresh  new rows every generation.

Fit, with weights w_i (zero on empty pool slots): the weighted maximum-likelihood estimate
  beta_hat = argmin L(beta),  L(beta) = sum_i w_i [softplus(x_i . beta) - y_i x_i . beta],
by Newton's method (iteratively reweighted least squares) inside a `lax.while_loop`: the step
`H^-1 g` with g = X^T (w sigmoid(X beta) - w y), H = X^T diag(w sigmoid') X (plus a damping of 1e-6 of
the unweighted scatter's mean eigenvalue, which keeps the solve finite when sigmoid' underflows and
does not move the fixed point g = 0), a backtracking line search over eight step lengths 1, 1/2, ...,
1/128 evaluated at once (Armijo's rule, with a rounding slack), until the step is below `tolerance`
relative to max(1, ||beta||) or `max_iterations` steps were taken. Linear algebra goes through
`collapse_jax.linalg.spd_solve` (LAPACK one matrix per call where safe, pure array code elsewhere).

Separable data. The MLE does not exist when a hyperplane through 0 separates the labels: L then has no
minimiser and Newton's iterates grow without bound. The fit stops (finite: the last iterate, never a NaN)
and reports `separated = 1` when it did not converge within `max_iterations`, or when its final
coefficients classify every weighted point correctly (`(2 y_i - 1) x_i . beta > 0` for all w_i > 0,
and, for fixed-design statistics, no row carrying both labels: a certificate that the data are
separable, which also catches iterations that stalled because sigmoid' underflowed). On non-separable data that converges, `separated = 0`.

Fixed-design statistics. With a fixed design every batch is the design's T rows in order (the engine
checks `first_samples` and real points against it in the setting), so the likelihood of k accumulated
label sets is that of the design with per-row counts c_i and positive counts p_i:
sum_i [c_i softplus(x_i . beta) - p_i x_i . beta]. `statistics` are these `(T,)` counts, merged by
addition: under `accumulate` the fit costs O(T d^2) per Newton step whatever the generation, and equals
the fit on the stacked rows up to rounding. There is no exact draw of these statistics that is cheaper
than the labels themselves (no `sample_statistics`): the setting runs on `method="samples"` only.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.estimator import Estimator
from collapse_jax.linalg import spd_solve
from collapse_jax.options import LOGISTIC_METRICS

_STEP_LENGTHS = tuple(0.5**j for j in range(8))  # the line search's candidates, tried at once
QUADRATURE_NODES = (128, 32)  # Gauss-Hermite nodes of the excess log-loss: along x . beta*, and across it


class LogisticParams(NamedTuple):
    """coef `(d,)`: beta; separated `()`: 1.0 when the fit did not converge or its data are separable
    (the MLE does not exist; coef is then the last, finite iterate), else 0.0."""

    coef: jax.Array
    separated: jax.Array


class LogisticStats(NamedTuple):
    """Fixed-design statistics: count `(T,)` = the summed weight of each design row, positives `(T,)` =
    its summed weight times label."""

    count: jax.Array
    positives: jax.Array


def default_tolerance(dtype) -> float:
    """The relative step below which a fit has converged: 1e-5 in float32 (about 100 eps, above the
    rounding of the gradient's sums), 1e-10 in float64."""
    return 1e-5 if jnp.finfo(dtype).bits <= 32 else 1e-10


def newton_fit(
    x: jax.Array,
    weights: jax.Array,
    positives: jax.Array,
    *,
    max_iterations: int = 50,
    tolerance: float | None = None,
) -> tuple[LogisticParams, jax.Array]:
    """Weighted logistic maximum likelihood by damped Newton steps (see the module docstring).

    Minimises `sum_i weights_i softplus(x_i . beta) - positives_i x_i . beta` (`positives = weights * y`
    for labelled rows; summed labels for fixed-design statistics), from beta = 0.

    Args:
      x: `(n, d)` features.
      weights: `(n,)` non-negative weights (zero on empty slots).
      positives: `(n,)` weighted labels, 0 <= positives_i <= weights_i.
      max_iterations: static cap on the Newton steps.
      tolerance: converged when the step is at most tolerance * max(1, ||beta||) (default:
        `default_tolerance` of the dtype).

    Returns:
      (params, iterations): `LogisticParams` and the number of Newton steps taken `()`.
    """
    n, d = x.shape
    assert weights.shape == (n,) and positives.shape == (n,), (x.shape, weights.shape, positives.shape)
    dtype = x.dtype
    tol = default_tolerance(dtype) if tolerance is None else tolerance
    eps = jnp.finfo(dtype).eps
    steps = jnp.asarray(_STEP_LENGTHS, dtype)
    eye = jnp.eye(d, dtype=dtype)
    damping = 1e-6 * jnp.sum(weights[:, None] * x * x) / d + jnp.finfo(dtype).tiny

    def loss(margin):  # margin (..., n) -> (...)
        return jnp.sum(weights * jax.nn.softplus(margin) - positives * margin, axis=-1)

    def step(state):
        iteration, beta, _, _ = state
        margin = x @ beta
        p = jax.nn.sigmoid(margin)
        gradient = x.T @ (weights * p - positives)
        curvature = weights * p * (1.0 - p)
        hessian = (x * curvature[:, None]).T @ x + damping * eye
        direction = spd_solve(hessian, gradient)  # beta - direction is the Newton step
        shift = x @ direction
        current = loss(margin)
        trial = loss(margin[None, :] - steps[:, None] * shift[None, :])  # (8,)
        slack = 10.0 * eps * jnp.sum(weights * jax.nn.softplus(margin) + jnp.abs(positives * margin))
        decrease = jnp.dot(gradient, direction)
        accept = trial <= current - 1e-4 * steps * decrease + slack
        length = steps[jnp.argmax(accept)]  # the longest accepted step (the shortest if none is)
        new = beta - length * direction
        finite = jnp.all(jnp.isfinite(new))
        new = jnp.where(finite, new, beta)
        change = jnp.where(finite, length * jnp.sqrt(jnp.sum(direction * direction)), jnp.inf)
        converged = finite & (change <= tol * jnp.maximum(1.0, jnp.sqrt(jnp.sum(new * new))))
        return iteration + 1, new, converged, ~finite

    def proceed(state):
        iteration, _, converged, broken = state
        return (iteration < max_iterations) & ~converged & ~broken

    init = (jnp.int32(0), jnp.zeros((d,), dtype), jnp.asarray(False), jnp.asarray(False))
    iterations, beta, converged, _ = jax.lax.while_loop(proceed, step, init)
    # the certificate: every weighted row pure (all its weight on one label: always so for labelled rows;
    # a fixed-design row relabelled both ways cannot be separated) and on its label's side of the plane
    pure = (positives <= 0) | (positives >= weights)
    margins = (2.0 * positives - weights) * (x @ beta)  # (2 y - 1) w x . beta for a pure row
    separates = jnp.all((weights <= 0) | (pure & (margins > 0)))
    separated = (~converged | separates).astype(dtype)
    return LogisticParams(beta, separated), iterations


def draw_features(key: jax.Array, n: int, dim: int, covariance_root, dtype) -> jax.Array:
    """`(n, d)` rows `x = S z`, `z ~ N(0, I_d)`."""
    z = jax.random.normal(key, (n, dim), dtype)
    return z if covariance_root is None else z @ covariance_root.T


def make_logistic_regression(
    dim: int,
    *,
    design: jax.Array | None = None,
    covariance_root: jax.Array | None = None,
    max_iterations: int = 50,
    tolerance: float | None = None,
) -> Estimator:
    """A logistic-regression estimator for data rows `(n, dim + 1)` (`[x, y]`, y in {0, 1}).

    Args:
      dim: d, the number of features.
      design: `(T, d)` fixed design relabelled by `sample` (then every batch the chain fits must be the
        design's T rows in order, and the estimator has the fixed-design statistics of the module
        docstring), or None for fresh rows `x = S z`.
      covariance_root: `(d, d)` S with `S S^T = Sigma` for fresh rows, or None for `Sigma = I`.
      max_iterations: static cap on the Newton steps of a fit.
      tolerance: relative step of convergence (default `default_tolerance`).

    Params are `LogisticParams`; `sample(key, params, n)` returns `(n, d + 1)` rows with
    `y ~ Bernoulli(sigmoid(x . coef))`.

    Example:
      >>> est = make_logistic_regression(3)
      >>> data = est.sample(jax.random.key(0), LogisticParams(jnp.ones(3), jnp.zeros(())), 500)
      >>> est.fit(jax.random.key(1), data, jnp.ones(500)).coef.shape
      (3,)
    """
    options = dict(max_iterations=max_iterations, tolerance=tolerance)

    def fit(key, data, weights):
        del key
        x, y = data[:, :dim], data[:, dim]
        return newton_fit(x, weights, weights * y, **options)[0]

    def sample(key, params: LogisticParams, n: int):
        key_x, key_y = jax.random.split(key)
        dtype = params.coef.dtype
        x = design[:n] if design is not None else draw_features(key_x, n, dim, covariance_root, dtype)
        y = jax.random.bernoulli(key_y, jax.nn.sigmoid(x @ params.coef)).astype(dtype)
        return jnp.concatenate([x, y[:, None]], axis=1)

    if design is None:
        return Estimator(name="logistic-regression", fit=fit, sample=sample)

    rows = design.shape[0]

    def statistics(data, weights):
        assert data.shape[0] == rows, f"fixed-design statistics need the design's {rows} rows, got {data.shape[0]}"
        return LogisticStats(weights, weights * data[:, dim])

    def merge(a, b):
        return jax.tree.map(jnp.add, a, b)

    def fit_statistics(key, stats: LogisticStats):
        del key
        return newton_fit(design, stats.count, stats.positives, **options)[0]

    return Estimator(
        name="logistic-regression",
        fit=fit,
        sample=sample,
        statistics=statistics,
        merge=merge,
        fit_statistics=fit_statistics,
    )


def _hermite_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights `(nodes,)` of E f(Z), Z ~ N(0, 1) (probabilists' Gauss-Hermite, float64)."""
    points, weights = np.polynomial.hermite.hermgauss(nodes)
    return points * np.sqrt(2.0), weights / np.sqrt(np.pi)


def _quadratic_form(vector: jax.Array, other: jax.Array, covariance_root) -> jax.Array:
    """`u^T Sigma v` for `Sigma = S S^T` (S None: the identity)."""
    if covariance_root is None:
        return jnp.dot(vector, other)
    return jnp.dot(covariance_root.T @ vector, covariance_root.T @ other)


def excess_log_loss(
    coef: jax.Array, true_coef: jax.Array, covariance_root=None, nodes: tuple[int, int] = QUADRATURE_NODES
) -> jax.Array:
    """E_x [l(beta) - l(beta*)] on the population x ~ N(0, Sigma), y | x ~ Bernoulli(sigmoid(x . beta*)),
    l the log-loss: the expected Kullback-Leibler divergence KL(Bern(sigmoid(u)) || Bern(sigmoid(v))),
    u = x . beta*, v = x . beta.

    Computed to quadrature precision, not sampled: (u, v) is a centred bivariate Gaussian with covariance
    [[b*^T Sigma b*, b*^T Sigma b], [b^T Sigma b*, b^T Sigma b]], written as u = L11 z1,
    v = L21 z1 + L22 z2 (its 2 x 2 Cholesky factor, L22 = 0 when beta is a multiple of beta*), and the
    expectation over (z1, z2) ~ N(0, I_2) is a tensor Gauss-Hermite rule of `nodes = (n1, n2)` nodes. The
    integrand softplus(v) - softplus(u) - sigmoid(u) (v - u) is analytic and grows at most linearly, but
    sigmoid(u) steepens in z1 as ||beta*||_Sigma grows (its poles sit at z1 = +-i pi / ||beta*||), hence
    more nodes along z1: with (128, 32) the relative error is below 1e-5 for ||beta*||_Sigma <= 4 and
    below 1e-4 at 5 (against a 250 x 150-node float64 rule; 1e-2 at 10), whatever beta (the `signal`
    parameter is capped at 5 for this reason). Tested against Monte Carlo too.

    Args:
      coef: `(d,)` beta; true_coef: `(d,)` beta*; covariance_root: `(d, d)` S or None.

    Returns:
      `()`, the excess log-loss (>= 0 up to rounding).
    """
    dtype = coef.dtype
    c11 = _quadratic_form(true_coef, true_coef, covariance_root)
    c12 = _quadratic_form(true_coef, coef, covariance_root)
    c22 = _quadratic_form(coef, coef, covariance_root)
    l11 = jnp.sqrt(c11)
    l21 = jnp.where(l11 > 0, c12 / jnp.where(l11 > 0, l11, 1.0), 0.0)
    l22 = jnp.sqrt(jnp.maximum(c22 - l21 * l21, 0.0))
    along, along_weights = (jnp.asarray(a, dtype) for a in _hermite_rule(nodes[0]))
    across, across_weights = (jnp.asarray(a, dtype) for a in _hermite_rule(nodes[1]))
    u = l11 * along[:, None]  # (n1, 1): z1 along axis 0
    v = l21 * along[:, None] + l22 * across[None, :]  # (n1, n2)
    s = jax.nn.sigmoid(u)
    gap = v - u
    # softplus(v) - softplus(u) = log1p(s expm1(v - u)): that form where |v - u| < 1 (no cancellation),
    # the difference itself elsewhere (no overflow of expm1)
    near = jnp.clip(gap, -1.0, 1.0)
    rise = jnp.where(jnp.abs(gap) < 1.0, jnp.log1p(s * jnp.expm1(near)), jax.nn.softplus(v) - jax.nn.softplus(u))
    divergence = rise - s * gap
    return jnp.sum(along_weights[:, None] * across_weights[None, :] * divergence)


def logistic_metrics(params: LogisticParams, true_params: LogisticParams, names=None, covariance_root=None) -> dict:
    """Per-chain metrics of a fit against the truth:

    param_error_sq   ||beta - beta*||^2;
    excess_log_loss  E_x [l(beta) - l(beta*)] by quadrature (`excess_log_loss`);
    separated        1.0 when the fit did not converge or its data were separable, else 0.0.

    Generation 0 is the truth itself (all zero). Shapes: coef `(d,)`; returns scalars.
    """
    names = LOGISTIC_METRICS if names is None else names
    delta = params.coef - true_params.coef
    values = {
        "param_error_sq": lambda: jnp.sum(delta * delta),
        "excess_log_loss": lambda: excess_log_loss(params.coef, true_params.coef, covariance_root),
        "separated": lambda: params.separated,
    }
    return {name: values[name]() for name in names if name in values}
