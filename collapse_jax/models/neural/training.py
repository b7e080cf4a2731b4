"""Fitting a network inside the chain's scan: the optimiser, the training loop and the network estimator.

A network estimator holds a flax NNX `GraphDef` (fixed at build time) and passes only the parameter
`State` pytree through the chain: `fit` initialises a fresh network from its FIT key (or, with
`Training.warm_start`, starts from model k-1 through `Estimator.refit`) and runs `Training.steps`
optimiser steps in an inner `lax.scan`, every step on a minibatch of `Training.batch_size` rows drawn
with replacement from the weighted pool (probability proportional to the row weights; 0: the whole
weighted pool every step). The step count does not grow with the pool, so accumulate trains as long
as replace. Learning rate and weight decay are arrays (traced by sweeps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from collapse_jax.estimator import Estimator
from collapse_jax.models.neural.networks import Network


@dataclasses.dataclass(frozen=True)
class Training:
    """How a network is fitted. `learning_rate` and `weight_decay` may be traced arrays."""

    steps: int
    batch_size: int  # 0: full weighted pool every step
    optimizer: str
    learning_rate: Any
    weight_decay: Any = 0.0
    gradient_clip: float = 0.0  # global-norm clip; 0: none
    warm_start: bool = False


def make_optimizer(training: Training) -> optax.GradientTransformation:
    """The optax transformation of a `Training` (clip, then the optimiser)."""
    if training.optimizer == "adam":
        base = optax.adam(training.learning_rate)
    elif training.optimizer == "adamw":
        base = optax.adamw(training.learning_rate, weight_decay=training.weight_decay)
    else:
        base = optax.sgd(training.learning_rate)
    if training.gradient_clip > 0:
        return optax.chain(optax.clip_by_global_norm(training.gradient_clip), base)
    return base


def minibatch_indices(key: jax.Array, cumulative_weights: jax.Array, size: int) -> jax.Array:
    """`(size,)` row indices drawn with replacement, row i with probability w_i / sum(w) (inverse CDF of
    the `(n,)` cumulative weights)."""
    u = jax.random.uniform(key, (size,), cumulative_weights.dtype) * cumulative_weights[-1]
    index = jnp.searchsorted(cumulative_weights, u, side="right")
    return jnp.minimum(index, cumulative_weights.shape[0] - 1)


def train(key: jax.Array, state, data: jax.Array, weights: jax.Array, *, graphdef, loss: Callable, training: Training):
    """Train the network `(graphdef, state)` on weighted rows; returns the new state.

    loss(model, rows) -> `(b,)` per-row losses. The objective of a step is the weighted mean over its
    rows (all rows, or a minibatch drawn proportionally to the weights, each drawn row weighted 1 if its
    weight is positive: a pool whose weights are all 0 leaves the network as initialised).
    """
    optimizer = make_optimizer(training)
    weights = weights.astype(data.dtype)
    cumulative = jnp.cumsum(weights)

    def objective(state, rows, row_weights):
        model = nnx.merge(graphdef, state)
        return jnp.sum(loss(model, rows) * row_weights) / jnp.maximum(jnp.sum(row_weights), 1e-12)

    def step(carry, index):
        state, opt_state = carry
        if training.batch_size == 0:
            rows, row_weights = data, weights
        else:
            chosen = minibatch_indices(jax.random.fold_in(key, index), cumulative, training.batch_size)
            rows, row_weights = data[chosen], (weights[chosen] > 0).astype(data.dtype)
        grads = jax.grad(objective)(state, rows, row_weights)
        updates, opt_state = optimizer.update(grads, opt_state, state)
        return (optax.apply_updates(state, updates), opt_state), None

    (state, _), _ = jax.lax.scan(step, (state, optimizer.init(state)), jnp.arange(training.steps))
    return state


def network_estimator(
    name: str,
    net: Network,
    loss: Callable,
    sample: Callable,
    training: Training,
    sample_candidates: Callable | None = None,
) -> Estimator:
    """An `Estimator` whose fit trains `net` (fresh each generation, or warm-started: `refit`)."""

    def fit_from(key, state, data, weights):
        return train(key, state, data, weights, graphdef=net.graphdef, loss=loss, training=training)

    def fit(key, data, weights):
        key_init, key_train = jax.random.split(key)
        return fit_from(key_train, net.init(key_init), data, weights)

    def refit(key, previous, data, weights):
        return fit_from(jax.random.split(key)[1], previous, data, weights)

    return Estimator(
        name=name,
        fit=fit,
        sample=sample,
        refit=refit if training.warm_start else None,
        sample_candidates=sample_candidates,
    )
