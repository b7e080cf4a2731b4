"""The real law of the language-model task: a Zipfian first-order Markov language, its sampler and its
log-probabilities (the samplers and scorers also serve any first-order table of the same form)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class MarkovLanguage(NamedTuple):
    """A first-order Markov language over `vocab` tokens, sequences of fixed length L.

    initial `(V,)`, transition `(V, V)` (rows sum to 1); rare_tokens `(V,)` and rare_transitions
    `(V, V)`: 0/1 masks of the tail (see `make_markov_language`).
    """

    initial: jax.Array
    transition: jax.Array
    rare_tokens: jax.Array
    rare_transitions: jax.Array


def zipf_law(key: jax.Array, vocab: int, exponent) -> jax.Array:
    """`(V,)` Zipf law p_i proportional to i^-exponent over a random order of the V tokens."""
    ranks = jax.random.permutation(key, vocab) + 1
    weights = ranks.astype(jnp.float32) ** (-jnp.asarray(exponent, jnp.float32))
    return weights / jnp.sum(weights)


def make_markov_language(key: jax.Array, vocab: int, length: int, exponent) -> MarkovLanguage:
    """Initial law and every transition row are Zipf(exponent) over their own random token order.

    The tail: the transitions of rank > V/2 in their row; the tokens whose marginal frequency over
    the L positions (exact, by matrix powers) is below the median.
    """
    keys = jax.random.split(key, vocab + 1)
    initial = zipf_law(keys[0], vocab, exponent)
    transition = jax.vmap(lambda k: zipf_law(k, vocab, exponent))(keys[1:])
    rank_in_row = jnp.argsort(jnp.argsort(-transition, axis=1), axis=1)
    rare_transitions = (rank_in_row >= vocab // 2).astype(jnp.float32)

    def propagate(p, _):
        return p @ transition, p

    _, marginals = jax.lax.scan(propagate, initial, None, length=length)
    frequency = jnp.mean(marginals, axis=0)
    rank = jnp.argsort(jnp.argsort(-frequency))
    rare_tokens = (rank >= vocab // 2).astype(jnp.float32)
    return MarkovLanguage(initial, transition, rare_tokens, rare_transitions)


def markov_sample(key: jax.Array, language: MarkovLanguage, n: int, length: int, temperature=1.0) -> jax.Array:
    """`(n, L)` float token ids from the language (or any first-order table of the same form)."""
    return bigram_sample(key, jnp.log(language.initial), jnp.log(language.transition), n, length, temperature)


def inverse_cdf_draw(key: jax.Array, cumulative: jax.Array) -> jax.Array:
    """One category per row of `(..., V)` cumulative weights (one uniform each, against V Gumbels for
    `jax.random.categorical`): the first index whose cumulative weight exceeds u * total."""
    u = jax.random.uniform(key, cumulative.shape[:-1]) * cumulative[..., -1]
    return jnp.minimum(jnp.sum(cumulative <= u[..., None], axis=-1), cumulative.shape[-1] - 1)


def bigram_sample(key: jax.Array, initial_logits, transition_logits, n: int, length: int, temperature=1.0):
    """`(n, L)` float token ids from a first-order table of logits (`(V,)`, `(V, V)`), at a temperature."""
    keys = jax.random.split(key, length)
    tempered = lambda logits: jnp.cumsum(jax.nn.softmax(logits / temperature, axis=-1), axis=-1)
    initial, transition = tempered(initial_logits), tempered(transition_logits)
    first = inverse_cdf_draw(keys[0], jnp.broadcast_to(initial, (n, initial.shape[0])))

    def step(token, k):
        nxt = inverse_cdf_draw(k, transition[token])
        return nxt, nxt

    _, rest = jax.lax.scan(step, first, keys[1:])
    return jnp.concatenate([first[:, None], rest.T], axis=1).astype(jnp.float32)


def markov_log_probs(language: MarkovLanguage, tokens: jax.Array) -> jax.Array:
    """`(n, L)` log-probabilities of each token given its past under the language."""
    return table_log_probs(jnp.log(language.initial), jnp.log(language.transition), tokens)


def table_log_probs(initial_log, transition_log, tokens):
    """`(n, L)` log-probabilities of each token given its past under a first-order table of log-probabilities
    (`(V,)`, `(V, V)`)."""
    t = tokens.astype(jnp.int32)
    return jnp.concatenate([initial_log[t[:, :1]], transition_log[t[:, :-1], t[:, 1:]]], axis=1)
