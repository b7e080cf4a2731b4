"""Categorical laws over K categories: the empirical-law estimator and exact samplers.

Data are category indices, `(n,)` int32 in [0, K). A fitted model is a vector of integer counts plus an
optional share of a fixed base law (add-k smoothing mixes in the uniform law; a tail-cut generator is
the base law alone):

    law = (1 - base_share) * counts / sum(counts) + base_share * base.

Samplers (all exact; no float32 inverse CDF, which gives tail categories of a Zipf law over 10^5
categories zero probability):
  counts: integer tickets. The model keeps its atoms (the training points, or the K categories when it
    was fitted from merged counts) and their cumulative integer weights; a draw is a uniform integer
    ticket u in [0, N) and a binary search (`searchsorted`, O(log n)), so each category gets exactly
    c_i / N. Fitted on n points, a draw costs O(log n) after an O(n) cumsum instead of O(K).
  base law: Walker's alias table built in float64 NumPy once per law; a draw is one uniform column
    and one 32-bit comparison, so each probability is exact up to a multiple of 2^-32 / K.
  mixture: each point takes the base draw with probability base_share (a float32 Bernoulli).
Counting a batch is a scatter-add into K slots. Cost per chain-generation: O(K + n log n) (the
metrics read all K categories).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.estimator import Estimator
from collapse_jax.options import CATEGORICAL_METRICS  # noqa: F401 (re-exported)


class CategoricalParams(NamedTuple):
    """counts: `(K,)` int32 (their sum N may be 0 only when base_share = 1); atoms: `(n,)` int32, the
    categories the empirical law is drawn from, with cumulative integer weights `tickets` `(n,)` (n = the
    training points, or K when fitted from counts); base_share: float32 scalar."""

    counts: jax.Array
    atoms: jax.Array
    tickets: jax.Array
    base_share: jax.Array


class AliasTable(NamedTuple):
    """Walker alias table of a law over K categories: column i keeps i when 32 random bits are below
    `threshold[i]`, else takes `alias[i]`. threshold: `(K,)` uint32; alias: `(K,)` int32."""

    threshold: jax.Array
    alias: jax.Array


def alias_table(probabilities) -> AliasTable:
    """Build the alias table of a probability vector in float64 (Vose's method)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not np.isfinite(p).all() or abs(p.sum() - 1.0) > 1e-6:
        raise ValueError("probabilities must be a non-empty vector of non-negative numbers summing to 1")
    k = p.size
    scaled = p / p.sum() * k
    alias = np.arange(k, dtype=np.int64)
    keep = np.ones(k, dtype=np.float64)
    small = [i for i in range(k) if scaled[i] < 1.0]
    large = [i for i in range(k) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        keep[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    threshold = np.minimum(np.floor(keep * 2.0**32), 2.0**32 - 1).astype(np.uint32)
    full = keep >= 1.0
    alias[full] = np.arange(k)[full]  # a full column never moves (its threshold is 2^32 - 1)
    return AliasTable(jnp.asarray(threshold), jnp.asarray(alias, dtype=jnp.int32))


def sample_alias(key: jax.Array, table: AliasTable, n: int) -> jax.Array:
    """`n` exact draws `(n,)` int32 from an alias table."""
    key_column, key_bits = jax.random.split(key)
    column = jax.random.randint(key_column, (n,), 0, table.alias.shape[0], jnp.int32)
    bits = jax.random.bits(key_bits, (n,), jnp.uint32)
    return jnp.where(bits < table.threshold[column], column, table.alias[column])


def sample_tickets(key: jax.Array, atoms: jax.Array, tickets: jax.Array, n: int) -> jax.Array:
    """`n` exact draws `(n,)` int32 of `atoms[j]` with probability (tickets[j] - tickets[j-1]) / tickets[-1]."""
    ticket = jax.random.randint(key, (n,), 0, jnp.maximum(tickets[-1], 1), jnp.int32)
    return atoms[jnp.searchsorted(tickets, ticket, side="right", method="scan")]


def sample_counts(key: jax.Array, counts: jax.Array, n: int) -> jax.Array:
    """`n` exact draws `(n,)` int32 with probabilities counts / sum(counts) (integer tickets)."""
    return sample_tickets(key, jnp.arange(counts.shape[0], dtype=jnp.int32), jnp.cumsum(counts), n)


def given_law(num_categories: int, points: int) -> CategoricalParams:
    """Parameters of the base law alone (base_share 1), shaped like a fit on `points` points."""
    zeros = jnp.zeros((points,), jnp.int32)
    return CategoricalParams(jnp.zeros((num_categories,), jnp.int32), zeros, zeros, jnp.float32(1.0))


def count(data: jax.Array, weights: jax.Array, num_categories: int) -> jax.Array:
    """Weighted counts `(K,)` int32 of category indices `(n,)` (weights are whole numbers)."""
    return jnp.zeros((num_categories,), jnp.int32).at[data].add(weights.astype(jnp.int32))


def law_of(params: CategoricalParams, base: jax.Array) -> jax.Array:
    """The probability vector `(K,)` (float32) of a fitted model; `base` is the base law `(K,)`."""
    total = jnp.maximum(jnp.sum(params.counts), 1).astype(jnp.float32)
    return (1.0 - params.base_share) * params.counts.astype(jnp.float32) / total + params.base_share * base


def reweighted_law(
    params: CategoricalParams, base: jax.Array, *, temperature=1.0, log_factor=None
) -> CategoricalParams:
    """The fitted law q raised to 1/`temperature` and times `exp(log_factor)` `(K,)`, renormalised (in
    logs), as integer tickets over the K categories, 2^30 in all: each probability is kept to within 2^-31
    (one below 2^-31 rounds to 0). A tempered law (q^(1/tau) / Z) or a reward-tilted one (q e^r / Z)."""
    k = base.shape[0]
    law = law_of(params, base)
    positive = law > 0
    log_law = jnp.where(positive, jnp.log(jnp.where(positive, law, 1.0)), -jnp.inf) / temperature
    if log_factor is not None:
        log_law = log_law + log_factor
    reweighted = jnp.exp(log_law - jnp.max(log_law))
    share = reweighted / jnp.sum(reweighted)
    weights = jnp.round(share * float(1 << 30)).astype(jnp.int32)
    return CategoricalParams(params.counts, jnp.arange(k, dtype=jnp.int32), jnp.cumsum(weights), jnp.float32(0.0))


def category_reward(values, base=None):
    """A reward r(i) = values[i] on the K categories (a linear reward of the one-hot point) as a
    `Reward`: scores of drawn categories, E r under a fitted law (`expected`) or the truth (a `TrueLaw`,
    `expected_truth`), and the law tilted by e^r (`reweighted_law`, exact up to its 2^-31 tickets). `base`: the fitted model's base
    law `(K,)` (default uniform, as `make_categorical`)."""
    from collapse_jax.types import Reward

    values = jnp.asarray(values, jnp.float32)
    base_law = jnp.full_like(values, 1.0 / values.shape[0]) if base is None else jnp.asarray(base, jnp.float32)

    return Reward(
        score=lambda points: values[points],
        expected=lambda params: jnp.sum(law_of(params, base_law) * values),
        tilt=lambda params: reweighted_law(params, base_law, log_factor=values),
        expected_truth=lambda truth: jnp.sum(truth.probabilities * values),
    )


def make_categorical(num_categories: int, *, smoothing: float = 0.0, base=None) -> Estimator:
    """The empirical law of the training counts, with add-`smoothing` (Laplace / Lidstone) smoothing.

    fit: counts c (N = sum c) -> law (c + s) / (N + K s), stored as counts plus base_share =
      K s / (N + K s) of the base law (uniform unless `base` is given).
    sample: exact (see module docstring). Sufficient statistics: the counts (merge = sum), so
      `accumulate` keeps a `(K,)` vector instead of every point.

    Args:
      num_categories: K.
      smoothing: s >= 0 pseudo-count per category.
      base: probability vector `(K,)` of the base law (default uniform); its alias table is built here.
    """
    if not (isinstance(num_categories, int) and num_categories >= 1):
        raise ValueError(f"num_categories must be an integer >= 1, got {num_categories!r}")
    if not smoothing >= 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing!r}")
    k = num_categories
    mixes_base = smoothing > 0 or base is not None
    base_law = np.full(k, 1.0 / k) if base is None else np.asarray(base, np.float64)
    table = alias_table(base_law)

    def statistics(data, weights):
        return count(data, weights, k)

    def share_of(counts):
        if smoothing == 0:
            return jnp.float32(0)
        return jnp.asarray(k * smoothing, jnp.float32) / (jnp.sum(counts).astype(jnp.float32) + k * smoothing)

    def fit_statistics(key, counts):
        del key
        return CategoricalParams(counts, jnp.arange(k, dtype=jnp.int32), jnp.cumsum(counts), share_of(counts))

    def fit(key, data, weights):
        del key
        counts = statistics(data, weights)
        return CategoricalParams(
            counts, data.astype(jnp.int32), jnp.cumsum(weights.astype(jnp.int32)), share_of(counts)
        )

    def sample(key, params, n):
        key_counts, key_base, key_choice = jax.random.split(key, 3)
        drawn = sample_tickets(key_counts, params.atoms, params.tickets, n)
        if not mixes_base:
            return drawn
        from_base = jax.random.uniform(key_choice, (n,)) < params.base_share
        return jnp.where(from_base, sample_alias(key_base, table, n), drawn)

    def temper(params, temperature):
        """The fitted law raised to 1/tau and renormalised (computed in logs), as integer tickets over the K
        categories (`reweighted_law`)."""
        return reweighted_law(params, jnp.asarray(base_law, jnp.float32), temperature=temperature)

    return Estimator(
        name="categorical",
        fit=fit,
        sample=sample,
        statistics=statistics,
        merge=lambda a, b: a + b,
        fit_statistics=fit_statistics,
        temper=temper,
        whole_weights=True,
    )


class TrueLaw(NamedTuple):
    """What the metrics need of the real law: probabilities `(K,)` (float32), the tail mask `(K,)` (rank
    > r by decreasing probability) and group masks `(groups, K)` (float32)."""

    probabilities: jax.Array
    tail: jax.Array
    groups: jax.Array


def true_law(probabilities, *, tail_rank: int, groups=()) -> TrueLaw:
    """The `TrueLaw` of a probability vector; `groups` is a sequence of (first, last) 1-based inclusive
    index ranges."""
    p = np.asarray(probabilities, np.float64)
    order = np.argsort(-p, kind="stable")
    rank = np.empty(p.size, np.int64)
    rank[order] = np.arange(1, p.size + 1)
    masks = np.zeros((len(groups), p.size), np.float32)
    for g, (first, last) in enumerate(groups):
        masks[g, first - 1 : last] = 1.0
    return TrueLaw(jnp.asarray(p, jnp.float32), jnp.asarray(rank > tail_rank, jnp.float32), jnp.asarray(masks))


def model_law(params, p, base=None):
    """The law q `(K,)` of a fitted model, a `CategoricalParams` (with base law `base`, default uniform) or
    a `SupportParams` (the true law `p` restricted to the support, renormalised)."""
    if isinstance(params, SupportParams):
        kept = jnp.where(params.support, p, 0.0)
        return kept / jnp.maximum(jnp.sum(kept), jnp.finfo(p.dtype).tiny)
    base_law = jnp.full_like(p, 1.0 / p.shape[0]) if base is None else base
    return law_of(params, base_law)


def categorical_metrics(params, truth: TrueLaw, names, group_names=(), base=None) -> dict:
    """Metrics of a fitted law (`model_law`), each a scalar (see `law_metrics`)."""
    return law_metrics(model_law(params, truth.probabilities, base), truth, names, group_names)


def law_metrics(q, truth: TrueLaw, names, group_names=()) -> dict:
    """Metrics of a law q `(K,)`, each a scalar; generation 0 (the truth itself) is
    `law_metrics(truth.probabilities, truth, ...)`.

    support_size: categories with positive mass; lost_mass: real mass of the categories the model
    lost; tail_mass: model mass beyond the tail rank; group_mass.<name>: model mass of a group;
    group_extinct.<name>: 1 if that mass is 0 (its mean is the extinction probability); entropy (nats); gini_simpson = 1 - sum q^2; tv_distance; kl_to_original = KL(q || p) (finite when
    categories are lost; infinite only if the model puts mass where p has none); l2_risk = ||q - p||^2.
    """
    p = truth.probabilities
    positive = q > 0
    log_q = jnp.log(jnp.where(positive, q, 1.0))
    values = {
        "support_size": jnp.sum(positive).astype(jnp.float32),
        "lost_mass": jnp.sum(jnp.where(positive, 0.0, p)),
        "tail_mass": jnp.sum(q * truth.tail),
        "entropy": -jnp.sum(q * log_q),
        "gini_simpson": 1.0 - jnp.sum(q * q),
        "tv_distance": 0.5 * jnp.sum(jnp.abs(q - p)),
        "kl_to_original": jnp.sum(jnp.where(positive, q * (log_q - jnp.log(jnp.where(p > 0, p, 1.0))), 0.0))
        + jnp.where(jnp.any(positive & (p <= 0)), jnp.inf, 0.0),
        "l2_risk": jnp.sum((q - p) ** 2),
    }
    out = {name: values[name] for name in names if name in values}
    group_mass = truth.groups @ q
    for g, name in enumerate(group_names):
        if f"group_mass.{name}" in names:
            out[f"group_mass.{name}"] = group_mass[g]
        if f"group_extinct.{name}" in names:
            out[f"group_extinct.{name}"] = (group_mass[g] <= 0).astype(jnp.float32)
    return out


class SupportParams(NamedTuple):
    """A law restricted to a support: `support` `(K,)` bool (the categories kept)."""

    support: jax.Array


def sample_restricted(key: jax.Array, table: AliasTable, support: jax.Array, n: int) -> jax.Array:
    """`n` exact draws `(n,)` int32 from the alias table's law restricted to `support` (renormalised).

    Rejection: each round draws 2n + 64 candidates from the full law and appends those inside the
    support to the output until `n` are filled. Accepted candidates are i.i.d. from the restricted law,
    so the result is exact. Expected rounds: about n / ((2n + 64) q) + 1 for a support of mass q; the
    support must have positive mass (a chain's support always holds its data's categories).
    """
    draws = 2 * n + 64

    def fill(state):
        round_, filled, chosen = state
        candidates = sample_alias(jax.random.fold_in(key, round_), table, draws)
        inside = support[candidates]
        rank = filled + jnp.cumsum(inside, dtype=jnp.int32) - 1  # int32 counters, also under jax_enable_x64
        slot = jnp.where(inside & (rank < n), rank, n)
        chosen = chosen.at[slot].set(candidates, mode="drop")
        return round_ + 1, jnp.minimum(filled + jnp.sum(inside, dtype=jnp.int32), n), chosen

    start = (jnp.int32(0), jnp.int32(0), jnp.zeros((n,), jnp.int32))
    return jax.lax.while_loop(lambda state: state[1] < n, fill, start)[2]


def make_support_restriction(probabilities) -> Estimator:
    """The support-shrinking model of Dohmatob et al.'s iterated Tale of Tails (theory.md D.5): a fit
    keeps the true law restricted to the categories seen in its data; sampling draws from the true law
    restricted to that support (exact rejection from the true law's alias table)."""
    table = alias_table(probabilities)
    k = table.alias.shape[0]

    def fit(key, data, weights):
        del key
        return SupportParams(jnp.zeros((k,), bool).at[data].max(weights > 0))

    def sample(key, params, n):
        return sample_restricted(key, table, params.support, n)

    return Estimator(name="support-restriction", fit=fit, sample=sample)
