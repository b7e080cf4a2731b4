"""Gaussian-mixture classification with label-noise generators and verifiers (Feng et al. 2024).

Real law: y uniform on {-1, +1}, x | y ~ N(y mu, I_d). A data point is a row `[x_1..x_d, label, y]`
of shape `(d + 2,)`: the label the model is trained on and the latent true class `y`, which only the
oracle verifier and the `p_star` diagnostic read (fits never do). Real points have label = y.

A model is a linear classifier `sign(w . x)` (`ClassifierParams.weights`), or, with `oracle = 1`, a
labeller that knows y (theory.md E's generator). Sampling draws fresh (x, y) from the real law and
labels them with the model, each label then flipped with probability `label_noise`.

Fits (weighted, zero weights for dropped points), none with an intercept (the classes are symmetric):
  mean           w = sum_i w_i label_i x_i / sum_i w_i (the mean-difference / LDA direction);
  least-squares  w = (X^T W X + 1e-6 n I)^-1 X^T W label;
  logistic       Adam (optax) on the weighted mean logistic loss + (penalty / 2) ||w||^2, from w = 0,
                 a fixed number of steps in a `lax.scan`.
Accuracy on the real law is exact: P(sign(w . x) = y) = Phi(w . mu / ||w||) (1/2 when w = 0).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from collapse_jax.estimator import Estimator
from collapse_jax.linalg import spd_solve
from collapse_jax.options import CLASSIFIERS  # noqa: F401 (re-exported)
from collapse_jax.types import Verifier


class ClassifierParams(NamedTuple):
    """weights `(d,)`; oracle `()`: 1.0 for a labeller that reports the true class."""

    weights: jax.Array
    oracle: jax.Array


def sample_mixture(key: jax.Array, mean: jax.Array, n: int):
    """`(x (n, d), y (n,))` from the real law: y = +-1 with probability 1/2, x = y mu + N(0, I)."""
    key_y, key_x = jax.random.split(key)
    y = jax.random.rademacher(key_y, (n,), mean.dtype)
    return y[:, None] * mean + jax.random.normal(key_x, (n, mean.shape[0]), mean.dtype), y


def real_points(key: jax.Array, mean: jax.Array, n: int) -> jax.Array:
    """`(n, d + 2)` real rows (label = y)."""
    x, y = sample_mixture(key, mean, n)
    return jnp.concatenate([x, y[:, None], y[:, None]], axis=1)


def _fit_logistic(x, label, weights, steps: int, learning_rate: float, penalty: float):
    import optax

    total = jnp.maximum(jnp.sum(weights), 1.0)
    optimizer = optax.adam(learning_rate)

    def loss(w):
        return jnp.sum(weights * jax.nn.softplus(-label * (x @ w))) / total + 0.5 * penalty * jnp.sum(w * w)

    def step(carry, _):
        w, state = carry
        updates, state = optimizer.update(jax.grad(loss)(w), state, w)
        return (optax.apply_updates(w, updates), state), None

    w0 = jnp.zeros(x.shape[1], x.dtype)
    (w, _), _ = jax.lax.scan(step, (w0, optimizer.init(w0)), None, length=steps)
    return w


def make_mixture_classifier(
    mean: jax.Array,
    *,
    label_noise,
    classifier: str = "mean",
    logistic_steps: int = 200,
    logistic_rate: float = 0.05,
    logistic_penalty: float = 1e-3,
) -> Estimator:
    """Estimator of a linear classifier on `[x, label, y]` rows; its samples are fresh real-law points
    labelled by the model and flipped with probability `label_noise` (may be traced)."""
    dim = mean.shape[0]

    def fit(key, data, weights):
        del key
        x, label = data[:, :dim], data[:, dim]
        weights = weights.astype(x.dtype)
        if classifier == "mean":
            w = (weights * label) @ x / jnp.maximum(jnp.sum(weights), 1.0)
        elif classifier == "least-squares":
            gram = (x * weights[:, None]).T @ x
            jitter = 1e-6 * jnp.maximum(jnp.sum(weights), 1.0)
            w = spd_solve(gram + jitter * jnp.eye(dim, dtype=x.dtype), (weights * label) @ x)
        else:
            w = _fit_logistic(x, label, weights, logistic_steps, logistic_rate, logistic_penalty)
        return ClassifierParams(w, jnp.zeros((), x.dtype))

    def sample(key, params, n):
        key_points, key_flip = jax.random.split(key)
        x, y = sample_mixture(key_points, mean, n)
        predicted = jnp.where(x @ params.weights >= 0, 1.0, -1.0).astype(x.dtype)
        base = jnp.where(params.oracle > 0, y, predicted)
        label = jnp.where(jax.random.bernoulli(key_flip, label_noise, (n,)), -base, base)
        return jnp.concatenate([x, label[:, None], y[:, None]], axis=1)

    return Estimator(name=f"mixture-classifier-{classifier}", fit=fit, sample=sample)


def accuracy(params: ClassifierParams, mean: jax.Array) -> jax.Array:
    """Exact accuracy on the real law: Phi(w . mu / ||w||), 1/2 for w = 0, 1 for the oracle."""
    norm = jnp.sqrt(jnp.sum(params.weights**2))
    margin = jnp.where(norm > 0, params.weights @ mean / jnp.where(norm > 0, norm, 1.0), 0.0)
    return jnp.where(params.oracle > 0, 1.0, ndtr(margin))


def label_is_correct(points: jax.Array) -> jax.Array:
    """`(n,)` 1.0 where a row's label equals its true class."""
    return (points[:, -2] == points[:, -1]).astype(points.dtype)


def oracle_verifier(keep_correct, keep_wrong) -> Verifier:
    """Keeps a point with probability phi if its label is correct and rho if not, whatever x
    (theory.md E's reconstruction)."""

    def keep_probability(points):
        return jnp.where(label_is_correct(points) > 0, keep_correct, keep_wrong)

    return Verifier(keep_probability, diagnostics=lambda points: {"p_star": label_is_correct(points)})


def linear_verifier(direction: jax.Array, keep_agree, keep_disagree) -> Verifier:
    """Keeps a point with probability phi if its label agrees with sign(v . x), rho if not: a linear
    verifier whose decision depends on x. Best-of-K picks the candidate of largest label * v . x."""
    dim = direction.shape[0]

    def margin(points):
        return points[:, dim] * (points[:, :dim] @ direction)

    def keep_probability(points):
        return jnp.where(margin(points) >= 0, keep_agree, keep_disagree)

    return Verifier(keep_probability, score=margin, diagnostics=lambda points: {"p_star": label_is_correct(points)})
