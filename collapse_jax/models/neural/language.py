"""The language-model task: a small causal transformer (or the bigram count model) fitted to text of a
Zipfian Markov language (Gerstgrasser et al. 2024); see `markov` for the real law."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from collapse_jax.estimator import Estimator
from collapse_jax.models.neural.markov import (
    bigram_sample,
    make_markov_language,
    markov_log_probs,
    markov_sample,
    table_log_probs,
)
from collapse_jax.models.neural.networks import CausalTransformer, network
from collapse_jax.models.neural.task import NeuralTask
from collapse_jax.models.neural.training import Training, network_estimator


class BigramParams(NamedTuple):
    """Weighted counts of first tokens `(V,)` and of transitions `(V, V)` (the maximum-likelihood model)."""

    initial_counts: jax.Array
    transition_counts: jax.Array


def bigram_counts(tokens: jax.Array, weights: jax.Array, vocab: int) -> BigramParams:
    """The weighted first-token and transition counts of `(n, L)` token rows."""
    t = tokens.astype(jnp.int32)
    initial = jnp.zeros((vocab,)).at[t[:, 0]].add(weights)
    pair = (t[:, :-1] * vocab + t[:, 1:]).reshape(-1)
    pair_weights = jnp.repeat(weights, t.shape[1] - 1)
    transition = jnp.zeros((vocab * vocab,)).at[pair].add(pair_weights).reshape(vocab, vocab)
    return BigramParams(initial, transition)


def normalised_log(counts, smoothing):
    """Log-probabilities of add-`smoothing` counts along the last axis (a row with no count: uniform)."""
    counts = counts + smoothing
    total = jnp.sum(counts, -1, keepdims=True)
    uniform = jnp.full_like(counts, -jnp.log(counts.shape[-1]))
    return jnp.where(total > 0, jnp.log(counts) - jnp.log(jnp.where(total > 0, total, 1.0)), uniform)


def make_lm_task(
    *,
    model: str,
    vocab: int,
    length: int,
    zipf,
    width: int,
    depth: int,
    heads: int,
    smoothing: float,
    temperature,
    test_size: int,
    training: Training,
) -> NeuralTask:
    """The tiny language model task (the truth: a `MarkovLanguage` with Zipf exponent `zipf`, drawn from the key).

    transformer: next-token cross-entropy training; samples are drawn autoregressively at `temperature`
      (1: the model's own law), L forward passes per batch.
    bigram: the count model (first-token and transition counts, weighted; mergeable, so accumulate keeps
      counts, not text); it samples from its
      maximum-likelihood law (a row never seen is uniform), as the discrete theory's empirical law does,
      and is scored with add-`smoothing` counts so an unseen transition costs a finite amount.

    Metrics (per token, nats; `test_size` sequences drawn with the EVALUATE key; the truth is scored as
    a model whose law is the language):
      cross_entropy          on fresh real text;
      kl_to_true             mean of log p_true - log p_model over the same real text (an unbiased
                             estimate of the per-token KL from the true language to the model);
      rare_token_mass        share of tokens of the model's own text that are rare tokens;
      rare_transition_mass   share of its transitions that are rare transitions;
      first_token_support    bigram only: first tokens with a positive count (the discrete setting's
                             support size; Wright-Fisher under replace).
    """
    net = network(lambda rngs: CausalTransformer(vocab, length, width, depth, heads, rngs=rngs))
    start = jnp.full((1,), vocab)

    def shifted_inputs(tokens):
        t = tokens.astype(jnp.int32)
        return jnp.concatenate([jnp.broadcast_to(start, (t.shape[0], 1)), t[:, :-1]], axis=1)

    def token_log_probs(logits, tokens):
        """`(n, L)` log-probability of each token under the `(n, L, V)` next-token logits."""
        logp = jax.nn.log_softmax(logits, axis=-1)
        return jnp.take_along_axis(logp, tokens.astype(jnp.int32)[..., None], axis=-1)[..., 0]

    def transformer_log_probs(state, tokens):
        return token_log_probs(net.apply(state, shifted_inputs(tokens)), tokens)

    def loss(model_, rows):
        return -jnp.mean(token_log_probs(model_(shifted_inputs(rows)), rows), -1)

    def transformer_sample(key, state, n):
        tokens = jnp.zeros((n, length), jnp.int32)

        def step(tokens, position):
            logits = net.apply(state, shifted_inputs(tokens))[:, position]
            nxt = jax.random.categorical(jax.random.fold_in(key, position), logits / temperature)
            return tokens.at[:, position].set(nxt), None

        tokens, _ = jax.lax.scan(step, tokens, jnp.arange(length))
        return tokens.astype(jnp.float32)

    def bigram_sample_from(key, params, n):
        return bigram_sample(
            key,
            normalised_log(params.initial_counts, 0.0),
            normalised_log(params.transition_counts, 0.0),
            n,
            length,
            temperature,
        )

    def bigram_log_probs(params, tokens):
        return table_log_probs(
            normalised_log(params.initial_counts, smoothing),
            normalised_log(params.transition_counts, smoothing),
            tokens,
        )

    if model == "transformer":
        estimator = network_estimator("neural-lm", net, loss, transformer_sample, training)
    else:
        counts = lambda data, weights: bigram_counts(data, weights, vocab)
        estimator = Estimator(
            name="bigram-counts",
            fit=lambda key, data, weights: counts(data, weights),
            sample=bigram_sample_from,
            statistics=counts,
            merge=lambda a, b: jax.tree.map(jnp.add, a, b),
            fit_statistics=lambda key, stats: stats,
        )

    def real_text(key, language):
        """The model's key, and fresh real text with its true log-probabilities."""
        key_real, key_model = jax.random.split(key)
        real = markov_sample(key_real, language, test_size, length)
        return key_model, real, markov_log_probs(language, real)

    def scores(language, true_logp, model_logp, own, first):
        t = own.astype(jnp.int32)
        out = {
            "cross_entropy": -jnp.mean(model_logp),
            "kl_to_true": jnp.mean(true_logp - model_logp),
            "rare_token_mass": jnp.mean(language.rare_tokens[t]),
            "rare_transition_mass": jnp.mean(language.rare_transitions[t[:, :-1], t[:, 1:]]),
        }
        if model == "bigram":
            out["first_token_support"] = jnp.sum(first > 0).astype(jnp.float32)
        return out

    def truth_metrics(key, language):
        key_model, _, true_logp = real_text(key, language)
        own = markov_sample(key_model, language, test_size, length)
        return scores(language, true_logp, true_logp, own, language.initial)

    def metrics(key, params, language):
        key_model, real, true_logp = real_text(key, language)
        if model == "transformer":
            model_logp, own = transformer_log_probs(params, real), transformer_sample(key_model, params, test_size)
            first = None  # first_token_support is the bigram's only
        else:
            model_logp, own = bigram_log_probs(params, real), bigram_sample_from(key_model, params, test_size)
            first = params.initial_counts
        return scores(language, true_logp, model_logp, own, first)

    def draw_truth(key):
        return make_markov_language(key, vocab, length, zipf)

    def sample_real(language):
        return lambda key, n: markov_sample(key, language, n, length)

    return NeuralTask(
        estimator, draw_truth, metrics, truth_metrics, sample_real, net if model == "transformer" else None
    )
