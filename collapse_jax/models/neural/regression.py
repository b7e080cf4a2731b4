"""The teacher-student regression task: a student MLP fitted to rows labelled by a teacher MLP."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from collapse_jax.models.neural.networks import MLP, network
from collapse_jax.models.neural.task import NeuralTask
from collapse_jax.models.neural.training import Training, network_estimator


class RegressionTruth(NamedTuple):
    """The teacher network's state (the real law's labelling function)."""

    teacher: Any


def make_regression_task(
    *,
    dim: int,
    width: int,
    depth: int,
    teacher_width: int,
    teacher_depth: int,
    noise_var,
    test_size: int,
    training: Training,
) -> NeuralTask:
    """Teacher-student regression (the truth: a `RegressionTruth`, the teacher initialised from the key).

    Rows `[x (d), y]`, x ~ N(0, I_d), y = f(x) + sqrt(noise_var) eps. A model's samples label fresh
    inputs with its own function plus fresh noise of the same variance (as in the linear chains).
    Metric `test_mse`: E_x (f(x) - teacher(x))^2 over `test_size` fresh inputs (the EVALUATE key);
    for linear networks it estimates ||w - w*||^2 without bias. The teacher itself scores 0.
    """
    student = network(lambda rngs: MLP(dim, width, depth, 1, rngs=rngs))
    teacher = network(lambda rngs: MLP(dim, teacher_width, teacher_depth, 1, rngs=rngs))
    noise_std = jnp.sqrt(jnp.asarray(noise_var, jnp.float32))

    def labelled(key, apply, state, n):
        key_x, key_noise = jax.random.split(key)
        x = jax.random.normal(key_x, (n, dim))
        y = apply(state, x)[:, 0] + noise_std * jax.random.normal(key_noise, (n,))
        return jnp.concatenate([x, y[:, None]], axis=1)

    def loss(model, rows):
        return (model(rows[:, :dim])[:, 0] - rows[:, dim]) ** 2

    estimator = network_estimator(
        "neural-regression", student, loss, lambda key, state, n: labelled(key, student.apply, state, n), training
    )

    def truth_metrics(key, truth):
        del key, truth
        return {"test_mse": jnp.zeros(())}

    def metrics(key, params, truth):
        x = jax.random.normal(key, (test_size, dim))
        error = student.apply(params, x)[:, 0] - teacher.apply(truth.teacher, x)[:, 0]
        return {"test_mse": jnp.mean(error**2)}

    def draw_truth(key):
        return RegressionTruth(teacher.init(key))

    def sample_real(truth):
        return lambda key, n: labelled(key, teacher.apply, truth.teacher, n)

    return NeuralTask(estimator, draw_truth, metrics, truth_metrics, sample_real, student)
