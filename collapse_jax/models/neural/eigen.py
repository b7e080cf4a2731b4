"""The eigenvalue task (Feng et al. 2024, after Charton 2022): a mean-and-variance MLP reads the upper
triangle of a random symmetric matrix and predicts its sorted eigenvalues; an oracle verifier may filter
its labels."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from collapse_jax.linalg import symmetric_eigenvalues
from collapse_jax.models.neural.networks import MLP, network
from collapse_jax.models.neural.task import NeuralTask
from collapse_jax.models.neural.training import Training, network_estimator
from collapse_jax.types import Verifier


def random_symmetric(key: jax.Array, n: int, size: int) -> jax.Array:
    """`(n, size (size + 1) / 2)` upper triangles of symmetric matrices with i.i.d. N(0, 1) entries."""
    return jax.random.normal(key, (n, size * (size + 1) // 2))


def symmetric_from_triangle(triangle: jax.Array, size: int) -> jax.Array:
    """`(size, size)` symmetric matrix from its `(size (size + 1) / 2,)` upper triangle (row-major)."""
    rows, cols = jnp.triu_indices(size)
    upper = jnp.zeros((size, size), triangle.dtype).at[rows, cols].set(triangle)
    return upper + jnp.triu(upper, 1).T


def eigenvalues_of(triangles: jax.Array, size: int) -> jax.Array:
    """`(n, size)` ascending eigenvalues of `(n, size (size + 1) / 2)` upper triangles (Jacobi)."""
    return jax.vmap(lambda t: symmetric_eigenvalues(symmetric_from_triangle(t, size)))(triangles)


def relative_l1_error(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """`(n,)` sum_i |predicted_i - target_i| / sum_i |target_i| (Charton's criterion)."""
    return jnp.sum(jnp.abs(predicted - target), -1) / jnp.maximum(jnp.sum(jnp.abs(target), -1), 1e-12)


class EigenTruth(NamedTuple):
    """Marker of the real law (labels are the true eigenvalues); `placeholder` is a `()` array, so the
    truth is a pytree of arrays like every other setting's."""

    placeholder: Any


def make_eigen_task(
    *, size: int, width: int, depth: int, tolerance: float, verifier_noise, test_size: int, training: Training
) -> NeuralTask:
    """Eigenvalue regression with a mean-and-variance MLP (the truth: an `EigenTruth` marker).

    Rows `[upper triangle (t), label (size), true eigenvalues (size), oracle reading (size)]`,
    t = size (size + 1) / 2; fits read the triangle and the label only. The network outputs a mean and
    a log-variance per eigenvalue: the mean is trained by squared error, the log-variance by the Gaussian
    likelihood of the (gradient-stopped) squared residual; its samples label fresh matrices with
    mean + sd * eps (temperature 1). The oracle reading is the true eigenvalues plus
    N(0, verifier_noise^2) noise, drawn with the point (one reading per matrix): only the verifier reads it.

    Metrics (on `test_size` fresh matrices, the model's mean prediction; the truth predicts the true
    eigenvalues):
      accuracy        share with relative L1 error sum|pred - eig| / sum|eig| <= tolerance (Charton 2022,
                      the criterion Feng et al. build on);
      accuracy_each   share with every |pred_i - eig_i| <= tolerance |eig_i|;
      relative_error  mean relative L1 error.
    """
    t = size * (size + 1) // 2
    net = network(lambda rngs: MLP(t, width, depth, 2 * size, rngs=rngs, activation="gelu"))
    verifier_noise = jnp.asarray(verifier_noise, jnp.float32)

    def moments(state, triangles):
        out = net.apply(state, triangles)
        return out[:, :size], jnp.clip(out[:, size:], -12.0, 6.0)

    def rows(triangles, labels, truth, key_reading):
        reading = truth + verifier_noise * jax.random.normal(key_reading, truth.shape)
        return jnp.concatenate([triangles, labels, truth, reading], axis=1)

    def sample_real(key, n):
        key_m, key_r = jax.random.split(key)
        triangles = random_symmetric(key_m, n, size)
        truth = eigenvalues_of(triangles, size)
        return rows(triangles, truth, truth, key_r)

    def candidates(key, state, n, k):
        key_m, key_eps, key_r = jax.random.split(key, 3)
        triangles = random_symmetric(key_m, n, size)
        truth = eigenvalues_of(triangles, size)
        mean, log_var = moments(state, triangles)
        labels = mean[:, None, :] + jnp.exp(0.5 * log_var)[:, None, :] * jax.random.normal(key_eps, (n, k, size))
        reading = truth + verifier_noise * jax.random.normal(key_r, truth.shape)
        repeat = lambda a: jnp.repeat(a, k, axis=0)
        return jnp.concatenate([repeat(triangles), labels.reshape(n * k, size), repeat(truth), repeat(reading)], 1)

    def sample(key, state, n):
        return candidates(key, state, n, 1)

    def loss(model, rows_):
        out = model(rows_[:, :t])
        mean, log_var = out[:, :size], jnp.clip(out[:, size:], -12.0, 6.0)
        squared = (rows_[:, t : t + size] - mean) ** 2
        nll = 0.5 * (log_var + jax.lax.stop_gradient(squared) * jnp.exp(-log_var))
        return jnp.sum(squared + nll, -1)

    def scores(predicted, truth):
        error = relative_l1_error(predicted, truth)
        each = jnp.all(jnp.abs(predicted - truth) <= tolerance * jnp.abs(truth), -1)
        return {
            "accuracy": jnp.mean(error <= tolerance),
            "accuracy_each": jnp.mean(each),
            "relative_error": jnp.mean(error),
        }

    def test_matrices(key):
        triangles = random_symmetric(key, test_size, size)
        return triangles, eigenvalues_of(triangles, size)

    def truth_metrics(key, truth_marker):
        del truth_marker
        _, truth = test_matrices(key)
        return scores(truth, truth)

    def metrics(key, params, truth_marker):
        triangles, truth = test_matrices(key)
        return scores(moments(params, triangles)[0], truth)

    estimator = network_estimator("neural-eigen", net, loss, sample, training, sample_candidates=candidates)
    return NeuralTask(
        estimator,
        draw_truth=lambda key: EigenTruth(jnp.zeros(())),
        metrics=metrics,
        truth_metrics=truth_metrics,
        sample_real=lambda truth: sample_real,
        network=net,
    )


def eigen_oracle_verifier(size: int, tolerance, accuracy_tolerance: float = 0.05) -> Verifier:
    """Keeps a labelled matrix when its label is within `tolerance` relative L1 error of the oracle's
    (possibly noisy) reading; best-of-k picks the candidate closest to the reading. Diagnostic
    `label_accuracy`: 1 where the kept label is within `accuracy_tolerance` of the true eigenvalues."""
    t = size * (size + 1) // 2

    def parts(points):
        return points[:, t : t + size], points[:, t + size : t + 2 * size], points[:, t + 2 * size :]

    def score(points):
        label, _, reading = parts(points)
        return -relative_l1_error(label, reading)

    def keep_probability(points):
        return (-score(points) <= tolerance).astype(points.dtype)

    def diagnostics(points):
        label, truth, _ = parts(points)
        return {"label_accuracy": (relative_l1_error(label, truth) <= accuracy_tolerance).astype(points.dtype)}

    return Verifier(keep_probability, score=score, diagnostics=diagnostics)
