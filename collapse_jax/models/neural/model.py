"""Neural chains: small flax NNX networks trained with optax inside the chain's scan.

A network estimator holds a flax NNX `GraphDef` (fixed at build time) and passes only the parameter
`State` pytree through the chain: `fit` initialises a fresh network from its FIT key (or, with
`Training.warm_start`, starts from model k-1 through `Estimator.refit`) and runs `Training.steps`
optimiser steps in an inner `lax.scan`, every step on a minibatch of `Training.batch_size` rows drawn
with replacement from the weighted pool (probability proportional to the row weights; 0: the whole
weighted pool every step). The step count does not grow with the pool, so accumulate trains as long
as replace. Learning rate and weight decay are arrays (traced by sweeps).

Three tasks (rows are float arrays; see each builder):
  regression  teacher-student: x ~ N(0, I_d), y = teacher(x) + noise; row `[x, y]`.
  eigen       sorted eigenvalues of random symmetric matrices (Feng et al. 2024, after Charton 2022);
              row `[upper triangle, label, true eigenvalues, oracle reading]`.
  lm          a Zipfian Markov language with a known law and a small causal transformer (or the
              bigram count model); row `[tokens]` (token ids stored as floats).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from collapse_jax.chain import Verifier
from collapse_jax.estimator import Estimator
from collapse_jax.linalg import symmetric_eigenvalues
from collapse_jax.options import LM_MODELS, OPTIMIZERS, TASKS  # noqa: F401 (re-exported)

# ----------------------------------------------------------------------------- training


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


class Network(NamedTuple):
    """A network family: `graphdef`, `init(key) -> state`, `apply(state, inputs) -> outputs`."""

    graphdef: Any
    init: Callable
    apply: Callable


def network(make_module: Callable[[nnx.Rngs], nnx.Module]) -> Network:
    """Split a module family once (abstractly, nothing allocated): only states travel through jit."""
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: make_module(nnx.Rngs(0))))

    def init(key):
        return nnx.split(make_module(nnx.Rngs(params=key)))[1]

    def apply(state, inputs):
        return nnx.merge(graphdef, state)(inputs)

    return Network(graphdef, init, apply)


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


# ----------------------------------------------------------------------------- modules


class MLP(nnx.Module):
    """`depth` hidden layers of `width` units (tanh or gelu); depth 0 is a linear map without bias."""

    def __init__(self, inputs: int, width: int, depth: int, outputs: int, *, rngs: nnx.Rngs, activation: str = "tanh"):
        sizes = [inputs] + [width] * depth + [outputs]
        self.layers = nnx.List([nnx.Linear(a, b, use_bias=depth > 0, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.activation = activation

    def __call__(self, x):
        act = jnp.tanh if self.activation == "tanh" else jax.nn.gelu
        for layer in self.layers[:-1]:
            x = act(layer(x))
        return self.layers[-1](x)


class Block(nnx.Module):
    """Pre-norm transformer block: causal self-attention and a 4x GELU MLP, both residual."""

    def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs):
        self.norm_attention = nnx.LayerNorm(width, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(
            num_heads=heads, in_features=width, qkv_features=width, decode=False, keep_rngs=False, rngs=rngs
        )
        self.norm_mlp = nnx.LayerNorm(width, rngs=rngs)
        self.up = nnx.Linear(width, 4 * width, rngs=rngs)
        self.down = nnx.Linear(4 * width, width, rngs=rngs)

    def __call__(self, x, mask):
        x = x + self.attention(self.norm_attention(x), mask=mask)
        return x + self.down(jax.nn.gelu(self.up(self.norm_mlp(x))))


class CausalTransformer(nnx.Module):
    """Token and position embeddings, `depth` blocks, a final norm and an output head.

    Input `(b, L)` int tokens (token `vocab` is the start symbol); output `(b, L, vocab)` logits of the
    next token at each position.
    """

    def __init__(self, vocab: int, length: int, width: int, depth: int, heads: int, *, rngs: nnx.Rngs):
        self.tokens = nnx.Embed(vocab + 1, width, rngs=rngs)
        self.positions = nnx.Embed(length, width, rngs=rngs)
        self.blocks = nnx.List([Block(width, heads, rngs=rngs) for _ in range(depth)])
        self.norm = nnx.LayerNorm(width, rngs=rngs)
        self.head = nnx.Linear(width, vocab, rngs=rngs)

    def __call__(self, tokens):
        length = tokens.shape[-1]
        x = self.tokens(tokens) + self.positions(jnp.arange(length))
        mask = nnx.make_causal_mask(tokens)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x))


# ----------------------------------------------------------------------------- regression


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
):
    """Teacher-student regression. Returns `(teacher Network, estimator factory, metrics, sample_real factory)`.

    Rows `[x (d), y]`, x ~ N(0, I_d), y = f(x) + sqrt(noise_var) eps. A model's samples label fresh
    inputs with its own function plus fresh noise of the same variance (as in the linear chains).
    Metric `test_mse`: E_x (f(x) - teacher(x))^2 over `test_size` fresh inputs (the EVALUATE key);
    for linear networks it estimates ||w - w*||^2 without bias.
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

    def estimator():
        return network_estimator(
            "neural-regression", student, loss, lambda key, state, n: labelled(key, student.apply, state, n), training
        )

    def metrics(key, params, truth):
        if isinstance(params, RegressionTruth):
            return {"test_mse": jnp.zeros(())}
        x = jax.random.normal(key, (test_size, dim))
        error = student.apply(params, x)[:, 0] - teacher.apply(truth.teacher, x)[:, 0]
        return {"test_mse": jnp.mean(error**2)}

    def sample_real(truth):
        return lambda key, n: labelled(key, teacher.apply, truth.teacher, n)

    return teacher, estimator, metrics, sample_real


# ----------------------------------------------------------------------------- eigenvalues


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
):
    """Eigenvalue regression with a mean-and-variance MLP.

    Rows `[upper triangle (t), label (size), true eigenvalues (size), oracle reading (size)]`,
    t = size (size + 1) / 2; fits read the triangle and the label only. The network outputs a mean and
    a log-variance per eigenvalue: the mean is trained by squared error, the log-variance by the Gaussian
    likelihood of the (gradient-stopped) squared residual; its samples label fresh matrices with
    mean + sd * eps (temperature 1). The oracle reading is the true eigenvalues plus
    N(0, verifier_noise^2) noise, drawn with the point (one reading per matrix): only the verifier reads it.

    Metrics (on `test_size` fresh matrices, the model's mean prediction):
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

    def estimator():
        return network_estimator("neural-eigen", net, loss, sample, training, sample_candidates=candidates)

    def metrics(key, params, truth_marker):
        triangles = random_symmetric(key, test_size, size)
        truth = eigenvalues_of(triangles, size)
        predicted = truth if isinstance(params, EigenTruth) else moments(params, triangles)[0]
        error = relative_l1_error(predicted, truth)
        each = jnp.all(jnp.abs(predicted - truth) <= tolerance * jnp.abs(truth), -1)
        return {
            "accuracy": jnp.mean(error <= tolerance),
            "accuracy_each": jnp.mean(each),
            "relative_error": jnp.mean(error),
        }

    return net, estimator, metrics, sample_real


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


# ----------------------------------------------------------------------------- language


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
    """`(n, L)` log-probabilities of each token given its past under a first-order table."""
    return table_log_probs(jnp.log(language.initial), jnp.log(language.transition), tokens)


def table_log_probs(initial_log, transition_log, tokens):
    t = tokens.astype(jnp.int32)
    return jnp.concatenate([initial_log[t[:, :1]], transition_log[t[:, :-1], t[:, 1:]]], axis=1)


class BigramParams(NamedTuple):
    """Weighted counts of first tokens `(V,)` and of transitions `(V, V)` (the maximum-likelihood model)."""

    initial_counts: jax.Array
    transition_counts: jax.Array


def bigram_counts(tokens: jax.Array, weights: jax.Array, vocab: int) -> BigramParams:
    t = tokens.astype(jnp.int32)
    initial = jnp.zeros((vocab,)).at[t[:, 0]].add(weights)
    pair = (t[:, :-1] * vocab + t[:, 1:]).reshape(-1)
    pair_weights = jnp.repeat(weights, t.shape[1] - 1)
    transition = jnp.zeros((vocab * vocab,)).at[pair].add(pair_weights).reshape(vocab, vocab)
    return BigramParams(initial, transition)


def _normalised_log(counts, smoothing):
    counts = counts + smoothing
    total = jnp.sum(counts, -1, keepdims=True)
    uniform = jnp.full_like(counts, -jnp.log(counts.shape[-1]))
    return jnp.where(total > 0, jnp.log(counts) - jnp.log(jnp.where(total > 0, total, 1.0)), uniform)


def make_lm_task(
    *,
    model: str,
    vocab: int,
    length: int,
    width: int,
    depth: int,
    heads: int,
    smoothing: float,
    temperature,
    test_size: int,
    training: Training,
):
    """The tiny language model task. Returns `(estimator factory, metrics, sample_real factory)`.

    transformer: next-token cross-entropy training; samples are drawn autoregressively at `temperature`
      (1: the model's own law), L forward passes per batch.
    bigram: the count model (first-token and transition counts, weighted; mergeable, so accumulate keeps
      counts, not text); it samples from its
      maximum-likelihood law (a row never seen is uniform), as the discrete theory's empirical law does,
      and is scored with add-`smoothing` counts so an unseen transition costs a finite amount.

    Metrics (per token, nats; `test_size` sequences drawn with the EVALUATE key):
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
            _normalised_log(params.initial_counts, 0.0),
            _normalised_log(params.transition_counts, 0.0),
            n,
            length,
            temperature,
        )

    def bigram_log_probs(params, tokens):
        return table_log_probs(
            _normalised_log(params.initial_counts, smoothing),
            _normalised_log(params.transition_counts, smoothing),
            tokens,
        )

    def estimator():
        if model == "transformer":
            return network_estimator("neural-lm", net, loss, transformer_sample, training)
        counts = lambda data, weights: bigram_counts(data, weights, vocab)
        return Estimator(
            name="bigram-counts",
            fit=lambda key, data, weights: counts(data, weights),
            sample=bigram_sample_from,
            statistics=counts,
            merge=lambda a, b: jax.tree.map(jnp.add, a, b),
            fit_statistics=lambda key, stats: stats,
        )

    def text_statistics(language, tokens):
        t = tokens.astype(jnp.int32)
        return {
            "rare_token_mass": jnp.mean(language.rare_tokens[t]),
            "rare_transition_mass": jnp.mean(language.rare_transitions[t[:, :-1], t[:, 1:]]),
        }

    def metrics(key, params, language):
        key_real, key_model = jax.random.split(key)
        real = markov_sample(key_real, language, test_size, length)
        true_logp = markov_log_probs(language, real)
        truth = isinstance(params, MarkovLanguage)
        if truth:
            model_logp, own = true_logp, markov_sample(key_model, language, test_size, length)
        elif model == "transformer":
            model_logp, own = transformer_log_probs(params, real), transformer_sample(key_model, params, test_size)
        else:
            model_logp, own = bigram_log_probs(params, real), bigram_sample_from(key_model, params, test_size)
        out = {
            "cross_entropy": -jnp.mean(model_logp),
            "kl_to_true": jnp.mean(true_logp - model_logp),
            **text_statistics(language, own),
        }
        if model == "bigram":
            first = language.initial if truth else params.initial_counts
            out["first_token_support"] = jnp.sum(first > 0).astype(jnp.float32)
        return out

    def sample_real(language):
        return lambda key, n: markov_sample(key, language, n, length)

    return estimator, metrics, sample_real
