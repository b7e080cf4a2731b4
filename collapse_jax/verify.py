"""Selecting a generation's synthetic points: verification and curation (`verified_sample`).

A verifier (`Setting.verifier`) filters the synthetic points of every generation k >= 2 before the pool
rule sees them: each candidate passes with the verifier's keep probability (`verified_budget="refill"`:
the generator proposes until M - r are kept; `"prune"`: M - r are proposed and the kept ones are used;
`"weight"`: all M - r are used, each weighted by its keep probability),
or, with `best_of=K > 1`, the generator proposes K candidates per point and the verifier picks the one
it scores highest (`curation="best"`), or one drawn with Bradley-Terry probabilities, a softmax of the
scores (`curation="bradley-terry"`: curation by a reward, Ferbach et al. 2024). Its K -> infinity limit
draws the synthetic points from the model's law tilted by the reward, p e^r / Z (`Setting.tilt`, exact
where the tilted law stays in the model class). The chain then records `kept_fraction`, `synthetic_kept` and the verifier's own
diagnostics (averaged over the kept points).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from collapse_jax.types import ChainSpec, Verifier


def select_rows(points, index):
    """Rows `index` of every leaf of a pytree of points."""
    return jax.tree.map(lambda leaf: leaf[index], points)


def kept_average(values: dict, weights) -> dict:
    """The weighted averages of per-point values (0 where all weights are 0)."""
    total = jnp.maximum(jnp.sum(weights), 1.0)
    return {name: jnp.sum(value * weights) / total for name, value in values.items()}


def verified_sample(
    verifier: Verifier,
    spec: ChainSpec,
    sample: Callable,
    key_synthetic,
    key_verify,
    n: int,
    sample_candidates: Callable | None = None,
):
    """`n` synthetic points selected by `verifier` (see the module docstring).

    `sample(key, count)` draws `count` candidates; `sample_candidates(key, n, k)`, if given, draws k
    candidate answers to each of n shared inputs for best-of-k (`Estimator.sample_candidates`). Returns `(points (n, ...), weights (n,), stats)`:
    kept points have weight 1, dropped or unfilled slots weight 0 (under "weight", each point's keep
    probability); `stats` holds `kept_fraction` (kept / proposed: under refill, the candidates up to the
    last one kept; under "weight", the mean weight), `synthetic_kept` (the weights' sum) and the
    verifier's diagnostics averaged over the kept points (weighted; 0 when n = 0).
    """
    score = verifier.score or verifier.keep_probability
    if n == 0:  # an all-real batch (real_fraction = 1): nothing to verify
        points = sample(key_synthetic, 0)
        stats = {"kept_fraction": jnp.float32(1.0), "synthetic_kept": jnp.float32(0.0)}
        if verifier.diagnostics is not None:
            stats.update({name: jnp.zeros((), value.dtype) for name, value in verifier.diagnostics(points).items()})
        return points, jnp.zeros((0,), jnp.float32), stats
    if spec.best_of > 1:
        k = spec.best_of
        candidates = (
            sample(key_synthetic, n * k) if sample_candidates is None else sample_candidates(key_synthetic, n, k)
        )
        scores = score(candidates).reshape(n, k)
        if spec.curation == "bradley-terry":  # P(candidate j) = e^{r_j} / sum_i e^{r_i}
            best = jax.random.categorical(key_verify, scores, axis=1)
        else:
            best = jnp.argmax(scores, axis=1)
        points = select_rows(candidates, jnp.arange(n) * k + best)
        weights = jnp.ones((n,), jnp.float32)
        kept_fraction = jnp.asarray(1.0 / k, jnp.float32)
    elif spec.verified_budget == "weight":
        points = sample(key_synthetic, n)
        weights = verifier.keep_probability(points).astype(jnp.float32)
        kept_fraction = jnp.mean(weights)
    elif spec.verified_budget == "prune":
        candidates = sample(key_synthetic, n)
        keep = jax.random.uniform(key_verify, (n,)) < verifier.keep_probability(candidates)
        points, weights = candidates, keep.astype(jnp.float32)
        kept_fraction = jnp.mean(keep.astype(jnp.float32))
    else:

        def fill(state):
            round_, filled, examined, points = state
            key_round = jnp.where(round_ == 0, key_synthetic, jax.random.fold_in(key_synthetic, round_))
            candidates = sample(key_round, n)
            keep = jax.random.uniform(jax.random.fold_in(key_verify, round_), (n,)) < verifier.keep_probability(
                candidates
            )
            rank = filled + jnp.cumsum(keep, dtype=jnp.int32) - 1  # int32 counters, also under jax_enable_x64
            slot = jnp.where(keep & (rank < n), rank, n)
            points = jax.tree.map(lambda out, new: out.at[slot].set(new, mode="drop"), points, candidates)
            last = jnp.argmax(keep & (rank == n - 1)).astype(jnp.int32)  # the candidate filling the last slot
            examined = examined + jnp.where(rank[-1] >= n - 1, last + 1, n).astype(jnp.int32)
            return round_ + 1, jnp.minimum(filled + jnp.sum(keep, dtype=jnp.int32), n), examined, points

        shape = jax.eval_shape(lambda: sample(key_synthetic, n))
        empty = jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, leaf.dtype), shape)
        state = (jnp.int32(0), jnp.int32(0), jnp.int32(0), empty)
        _, filled, examined, points = jax.lax.while_loop(
            lambda state: (state[1] < n) & (state[0] < spec.max_refill_rounds), fill, state
        )
        weights = (jnp.arange(n) < filled).astype(jnp.float32)
        kept_fraction = filled / jnp.maximum(examined, 1).astype(jnp.float32)
    stats = {"kept_fraction": kept_fraction, "synthetic_kept": jnp.sum(weights)}
    if verifier.diagnostics is not None:
        stats.update(kept_average(verifier.diagnostics(points), weights))
    return points, weights, stats
