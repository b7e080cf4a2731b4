"""One recursive chain: fit, sample, refit, for many generations, as a single `lax.scan`.

Conventions (see docs/conventions.md): generation 0 is the real distribution; model k >= 1 is fitted at generation k;
model 1 is fitted on M real points only. Every generation k >= 2 draws a batch of M points: M - r
synthetic points from model k-1 and r = round(real_fraction * M) real points (fresh draws from the real
distribution, or draws without replacement from the generation-1 real sample). The pool rule decides
what model k is fitted on:

  replace               the batch of generation k (M points);
  accumulate            all batches of generations 1..k (kM points);
  accumulate-subsample  M points drawn without replacement from that pool.

With `real_draw="mixture"` (Kanabar & Gastpar 2025) each of the M points of generation k >= 2 is
instead drawn from the mixture alpha * real + (1 - alpha) * model k-1, so the real count is
Binomial(M, alpha).

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

Two exact paths: `method="samples"` draws the points; `method="sufficient"` draws the batch's
sufficient statistics from their exact law (estimators with `sample_statistics`), so its cost does not
grow with M, and allows a growing sample size M_k = round(M k^a).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from collapse_jax.estimator import Estimator
from collapse_jax.keys import Purpose, chain_key, generation_key, shared_key
from collapse_jax.options import (  # noqa: F401 (re-exported)
    CURATIONS,
    METHODS,
    POLICIES,
    REAL_DRAWS,
    REAL_SOURCES,
    VERIFICATION_METRICS,
    VERIFIED_BUDGETS,
)

_GENERATION_LISTENERS: list[Callable[[int], None]] = []


def _report_generation(generation) -> None:
    import numpy as np

    latest = int(np.max(np.asarray(generation)))
    for listener in list(_GENERATION_LISTENERS):
        listener(latest)


@contextlib.contextmanager
def listen_to_generations(listener: Callable[[int], None]):
    """Within the block, `listener(k)` is called as chains built with `report_generations=True` finish
    generation k (possibly several times per k: once per chain or per device)."""
    _GENERATION_LISTENERS.append(listener)
    try:
        yield
    finally:
        _GENERATION_LISTENERS.remove(listener)


def round_half_up(x: float) -> int:
    """The rounding used for counts such as round(alpha * M)."""
    return int(math.floor(x + 0.5))


class Verifier(NamedTuple):
    """Selects a generation's synthetic points (see the module docstring).

    keep_probability(points) -> `(n,)` in [0, 1]: the chance that each candidate passes.
    score(points) -> `(n,)`: what best-of-K maximises (default: the keep probability; ties go to the
      first candidate, i.e. uniformly at random among tied candidates).
    diagnostics(points) -> {name: `(n,)`}: per-point values averaged over the kept points and recorded
      per generation (e.g. `p_star`: 1 where the label is correct); generations 0 and 1 record their
      average over the generation-1 real sample.
    """

    keep_probability: Callable[[Any], jax.Array]
    score: Callable[[Any], jax.Array] | None = None
    diagnostics: Callable[[Any], dict] | None = None


class Reward(NamedTuple):
    """A reward r on points that curates a model's samples (Ferbach, Bertrand, Bose & Gidel 2024).

    score(points) -> `(n,)`: r at each point (the Bradley-Terry logits of best-of-K).
    expected(params) -> `()`: E r(x) for x drawn from a fitted model (or from the setting's true
      parameters, generation 0), exactly.
    tilt(params) -> params: the model's law times e^r, renormalised, as parameters of the same class
      (the K -> infinity limit of Bradley-Terry best-of-K); None where that law leaves the class.
    """

    score: Callable[[Any], jax.Array]
    expected: Callable[[Any], jax.Array]
    tilt: Callable[[Any], Any] | None = None


class Setting(NamedTuple):
    """A model class, the real distribution (as true parameters of that class) and its metrics.

    metrics(params, true_params) -> dict of scalar arrays, one per metric name; with `random_metrics`,
      metrics(key, params, true_params), the key being the chain's (generation, EVALUATE) key, for
      metrics that draw (a downstream model fitted on fresh points, a held-out sample).
    per_chain: optional `(chain_key, shared_key) -> Setting`, for settings whose real distribution is
      itself drawn (a design matrix, a true weight vector): each chain calls it once with keys of
      purpose TRUTH (its own, and the one all chains share) and runs on the setting it returns, whose
      estimator, true parameters and metrics must have the shapes of this one's.
    sample_size: optional scalar (may be traced) that replaces `ChainSpec.samples` on the sufficient
      path, whose shapes do not depend on M: a sweep over M then runs inside one program.
    sample_real: optional `(key, n) -> data`, n static: draws from the real distribution when it is not
      a member of the model class (a 2-D dataset under a KDE, a Zipf law under an empirical law); by
      default real points are `estimator.sample(key, true_params, n)`. `true_params` is then whatever
      the metrics need of the truth, and `metrics(true_params, true_params)` gives generation 0.
    first_model: optional parameters of model 1, given instead of fitted on real points (a fixed
      generator, e.g. a tail-cut law); `replace` only.
    verifier: optional `Verifier` that filters the synthetic points (sample path only).
    real_weight: w in [0, 1] (may be traced), read when `ChainSpec.real_weighted`: the share of each
      batch's weight M carried by its r real points (He, Xu & Cheng 2025): each real point has weight
      w M / r, each synthetic point (1 - w) M / (M - r). Taken from the setting a cell builds (not from
      `per_chain`), so a sweep over w runs inside one program.
    temperature: tau > 0 (may be traced), read when `ChainSpec.tempered`: synthetic points are drawn from
      `estimator.temper(params, tau)`; taken from the setting a cell builds, as `real_weight`.
    tilt: optional `params -> params`: synthetic points are drawn from `tilt(params)` (after the
      temperature), e.g. `Reward.tilt`, the K -> infinity limit of Bradley-Terry curation; real points
      are never tilted.
    metric_bytes: memory one chain's metrics hold at once beyond the batch and the parameters (their own
      draws, e.g. a memoriser's training sample), counted by `chain_bytes_estimate` to size chunks.
    """

    name: str
    estimator: Estimator
    true_params: Any
    metrics: Callable[[Any, Any], dict]
    per_chain: Callable[[jax.Array, jax.Array], Setting] | None = None
    sample_size: Any = None
    random_metrics: bool = False
    sample_real: Callable[[jax.Array, int], Any] | None = None
    first_model: Any = None
    verifier: Verifier | None = None
    metric_bytes: float = 0.0
    real_weight: Any = None
    temperature: Any = None
    tilt: Callable[[Any], Any] | None = None


def sample_real(setting: Setting, key: jax.Array, n: int):
    """`n` draws from the real distribution of a setting (see `Setting.sample_real`)."""
    if setting.sample_real is not None:
        return setting.sample_real(key, n)
    return setting.estimator.sample(key, setting.true_params, n)


def evaluate(setting: Setting, key_chain: jax.Array, generation, params) -> dict:
    """The metrics of model `generation` of one chain (see `Setting.metrics`)."""
    if setting.random_metrics:
        key = generation_key(key_chain, generation, Purpose.EVALUATE)
        return setting.metrics(key, params, setting.true_params)
    return setting.metrics(params, setting.true_params)


def chain_setting(setting: Setting, key: jax.Array, key_chain: jax.Array) -> Setting:
    """The setting one chain runs on (see `Setting.per_chain`)."""
    if setting.per_chain is None:
        return setting
    return setting.per_chain(
        generation_key(key_chain, 0, Purpose.TRUTH), generation_key(shared_key(key), 0, Purpose.TRUTH)
    )


@dataclasses.dataclass(frozen=True)
class ChainSpec:
    """Everything that fixes shapes or code paths of a chain (hashable; one compile per spec).

    Attributes:
      num_generations: G, the number of fitted models (generations 1..G).
      samples: M, points per generation (M_1 when `sample_growth` > 0).
      policy: pool rule, one of POLICIES.
      real_fraction: alpha in [0, 1]; r = round(alpha M) real points per generation k >= 2.
      real_source: "fresh" (new real draws) or "original" (from the generation-1 sample).
      real_draw: "fixed" (exactly round(alpha M) real points per generation k >= 2) or "mixture" (each
        point real with probability alpha; fresh real points only).
      method: "samples" or "sufficient".
      shared_real_data: all chains share the same real draws (results are then conditional on them).
      sample_growth: a >= 0, M_k = round(M k^a) (sufficient path only).
      accumulate_with_statistics: under `accumulate`, merge sufficient statistics (O(1) memory) when the
        estimator has them, instead of keeping a buffer of all points. Both give the same fits.
      best_of: K >= 1; with a verifier and K > 1, each synthetic point is the best of K candidates.
      curation: how best-of-K picks: "best" (the highest score) or "bradley-terry" (at random with
        probabilities softmax(scores)); "tilted" marks the K -> infinity limit, drawn from `Setting.tilt`
        (then best_of must be 1).
      verified_budget: with a verifier and K = 1, "refill" (propose until M - r pass), "prune" or
        "weight" (keep all, weighted by the keep probability).
      max_refill_rounds: cap on the refill rounds of M - r candidates each; a generation that does not
        fill within it trains on the points kept so far (recorded in `synthetic_kept`).
      report_generations: call the listeners of `listen_to_generations` as each generation k >= 2
        finishes (a host callback per generation: for slow generations, such as network training).
      real_weighted: weight the real and synthetic points of each batch k >= 2 by `Setting.real_weight`
        (fixed real draw with 0 < r < M, sample path); False: every point has weight 1.
      tempered: draw every synthetic batch at `Setting.temperature` (the estimator's `temper`).
      first_samples: M_1, the real points model 1 is fitted on (0: M; sample path). With
        `real_source="original"` and r = M_1, every later generation reuses exactly those real points
        beside M - M_1 synthetic ones (Kazdan et al.'s real x synthetic counts).
    """

    num_generations: int
    samples: int
    policy: str = "replace"
    real_fraction: float = 0.0
    real_source: str = "fresh"
    real_draw: str = "fixed"
    method: str = "samples"
    shared_real_data: bool = False
    sample_growth: float = 0.0
    accumulate_with_statistics: bool = True
    best_of: int = 1
    curation: str = "best"
    verified_budget: str = "refill"
    max_refill_rounds: int = 10_000
    first_samples: int = 0
    report_generations: bool = False
    real_weighted: bool = False
    tempered: bool = False

    @property
    def first_count(self) -> int:
        return self.first_samples or self.samples

    @property
    def real_count(self) -> int:
        return round_half_up(self.real_fraction * self.samples)


def validate_spec(spec: ChainSpec, estimator: Estimator | None = None) -> None:
    """Raise ValueError naming the offending field before anything is traced (estimator: if given, also
    check that it supports the chosen method)."""

    def whole(name, value, low):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

    whole("num_generations", spec.num_generations, 1)
    whole("samples", spec.samples, 1)
    if spec.policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}; got {spec.policy!r}")
    if spec.real_source not in REAL_SOURCES:
        raise ValueError(f"real_source must be one of {', '.join(REAL_SOURCES)}; got {spec.real_source!r}")
    if spec.real_draw not in REAL_DRAWS:
        raise ValueError(f"real_draw must be one of {', '.join(REAL_DRAWS)}; got {spec.real_draw!r}")
    if spec.real_draw == "mixture" and spec.real_source != "fresh":
        raise ValueError("real_draw='mixture' draws fresh real points: real_source must be 'fresh'")
    whole("first_samples", spec.first_samples, 0)
    if spec.first_samples and spec.method == "sufficient":
        raise ValueError("first_samples > 0 needs method='samples'")
    if spec.real_source == "original" and spec.real_count > spec.first_count:
        raise ValueError(
            f"real_fraction: round(alpha M) = {spec.real_count} real points reused from the "
            f"generation-1 sample exceed its first_samples = {spec.first_count} points"
        )
    whole("best_of", spec.best_of, 1)
    if spec.curation not in CURATIONS:
        raise ValueError(f"curation must be one of {', '.join(CURATIONS)}; got {spec.curation!r}")
    if spec.curation == "tilted" and spec.best_of != 1:
        raise ValueError(
            f"curation 'tilted' is the K -> infinity limit of best-of-K: best_of must be 1, got {spec.best_of}"
        )
    whole("max_refill_rounds", spec.max_refill_rounds, 1)
    if spec.verified_budget not in VERIFIED_BUDGETS:
        raise ValueError(f"verified_budget must be one of {', '.join(VERIFIED_BUDGETS)}; got {spec.verified_budget!r}")
    if spec.method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {spec.method!r}")
    if not (isinstance(spec.real_fraction, (int, float)) and 0.0 <= spec.real_fraction <= 1.0):
        raise ValueError(f"real_fraction must be in [0, 1], got {spec.real_fraction!r}")
    if not (isinstance(spec.sample_growth, (int, float)) and 0.0 <= spec.sample_growth <= 4.0):
        raise ValueError(f"sample_growth must be in [0, 4], got {spec.sample_growth!r}")
    if spec.real_weighted and estimator is not None and estimator.whole_weights:
        raise ValueError(
            f"real_weight needs fractional point weights; {estimator.name} counts whole points (not supported)"
        )
    if spec.tempered and estimator is not None and estimator.temper is None:
        raise ValueError(f"temperature needs a model that can be sampled at a temperature; {estimator.name} has none")
    if spec.method == "sufficient":
        if estimator is not None and not estimator.has_sufficient_path:
            raise ValueError(f"method='sufficient' needs sufficient statistics; {estimator.name} has none")
        if spec.policy == "accumulate-subsample":
            raise ValueError("method='sufficient' supports policy replace or accumulate, not accumulate-subsample")
        if spec.real_count > 0 and spec.real_source == "original":
            raise ValueError("method='sufficient' supports real_source='fresh' only (original needs the points)")
    elif spec.sample_growth != 0.0:
        raise ValueError("sample_growth > 0 needs method='sufficient' (sample shapes must be static)")
    if spec.real_weighted:
        if spec.method != "samples":
            raise ValueError("real_weight needs method='samples' (weighted points have no drawn sufficient statistics)")
        if spec.real_draw != "fixed":
            raise ValueError("real_weight needs real_draw='fixed' (a fixed count r of real points per batch)")
        if not 0 < spec.real_count < spec.samples:
            raise ValueError(
                f"real_weight needs real and synthetic points in every batch: 0 < round(alpha M) < M, got "
                f"round({spec.real_fraction} x {spec.samples}) = {spec.real_count} (set real_fraction)"
            )


def distinct_uniform_indices(key: jax.Array, population, count: int, capacity: int) -> jax.Array:
    """`count` distinct indices drawn uniformly without replacement from `range(population)`.

    `population` may be traced (count <= population <= capacity); `count` and `capacity` are static.
    Draw `2 count + 16` indices with replacement and keep the first `count` distinct ones in draw order
    (found with a scatter-min table of size `capacity`): the first m distinct values of an i.i.d.
    uniform sequence are a uniformly random m-subset. If fewer than `count` are distinct (rare, as
    population >= 2 count past the first generation), all draws are redone with the next key; that
    event does not depend on which items were drawn, so the accepted subset stays uniform.
    `population == count` returns `arange(count)`. Cost: O(count) draws and one table fill, against a
    top-k over all `capacity` slots (O(capacity) uniforms and a partial sort).

    Returns `(count,)` int32 indices, in draw order.
    """
    draws = 2 * count + 16
    positions = jnp.arange(draws, dtype=jnp.int32)

    def attempt(round_):
        drawn = jax.random.randint(jax.random.fold_in(key, round_), (draws,), 0, population, jnp.int32)
        first = jnp.full((capacity,), draws, jnp.int32).at[drawn].min(positions)
        is_first = first[drawn] == positions
        rank = jnp.cumsum(is_first, dtype=jnp.int32) - 1
        slot = jnp.where(is_first & (rank < count), rank, count)
        chosen = jnp.zeros((count,), jnp.int32).at[slot].set(drawn, mode="drop")
        return chosen, (rank[-1] + 1 >= count) | (population <= count)

    def retry(state):
        round_, _, _ = state
        chosen, ok = attempt(round_)
        return round_ + 1, chosen, ok

    chosen, ok = attempt(0)
    _, chosen, _ = jax.lax.while_loop(lambda state: ~state[2], retry, (jnp.int32(1), chosen, ok))
    return jnp.where(population <= count, jnp.arange(count, dtype=jnp.int32), chosen)


def _batch_and_parameter_elements(setting: Setting, spec: ChainSpec) -> tuple[int, int]:
    """Array elements of one generation's batch (0 on the sufficient path) and of the parameters."""
    if spec.method == "sufficient":
        batch_elems = 0
    else:
        batch = jax.eval_shape(lambda: sample_real(setting, jax.random.key(0), spec.samples))
        batch_elems = math.prod(batch.shape)
    return batch_elems, sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(setting.true_params))


def chain_working_set_bytes(setting: Setting, spec: ChainSpec) -> float:
    """What one chain touches in a generation (bytes): a few copies of its batch and of its parameters
    (not the pool, which a generation only gathers from). Sizes CPU chunks for cache locality."""
    batch_elems, param_elems = _batch_and_parameter_elements(setting, spec)
    return 4.0 * (4 * batch_elems + 8 * param_elems)


def chain_bytes_estimate(setting: Setting, spec: ChainSpec, safety: float = 8.0) -> float:
    """A static, generous estimate of one chain's memory inside a vmapped program (bytes).

    Counts the pool buffer (accumulate without statistics, accumulate-subsample), a few copies of a
    generation's batch and of the parameters, and the per-generation history, times a safety factor
    (`safety=1`: a lower bound), plus the metrics' own memory (`Setting.metric_bytes`).
    """
    est = setting.estimator
    batch_elems, param_elems = _batch_and_parameter_elements(setting, spec)
    buffered = spec.policy == "accumulate-subsample" or (
        spec.policy == "accumulate" and not (spec.accumulate_with_statistics and est.has_statistics)
    )
    pool_elems = spec.num_generations * batch_elems if buffered else 0
    history = (spec.num_generations + 1) * 8
    return safety * 4 * (pool_elems + 4 * batch_elems + 8 * param_elems + history) + setting.metric_bytes


def _real_key(key_run, key_chain, spec: ChainSpec, generation):
    base = shared_key(key_run) if spec.shared_real_data else key_chain
    return generation_key(base, generation, Purpose.REAL)


def make_chain_fn(setting: Setting, spec: ChainSpec) -> Callable[[jax.Array, jax.Array], dict]:
    """Build `chain(key, chain_id) -> {metric: (G + 1,)}` for one chain (vmap it over chain ids).

    `key` is the run's root key; chain `chain_id` derives every draw from (key, chain_id, generation,
    purpose) only.
    """
    validate_spec(spec, setting.estimator)
    if spec.method == "sufficient":
        if setting.sample_real is not None or setting.first_model is not None:
            raise ValueError("method='sufficient' needs real points from the model class and a fitted model 1")
        if setting.verifier is not None:
            raise ValueError("a verifier needs the points: use method='samples'")
        return _make_sufficient_chain(setting, spec)
    if setting.first_model is not None and spec.policy != "replace":
        raise ValueError("a given model 1 (Setting.first_model) needs policy='replace'")
    return _make_sample_chain(setting, spec)


def _history(setting: Setting, key_chain, first_params, scan_metrics, first_stats=None) -> dict:
    """Stack generation 0 (the truth), generation 1 and the scanned generations 2..G (`first_stats`:
    values of the engine's own metrics at generations 0 and 1)."""
    first_stats = first_stats or {}
    m0 = {**evaluate(setting, key_chain, 0, setting.true_params), **first_stats}
    m1 = {**evaluate(setting, key_chain, 1, first_params), **first_stats}
    return {name: jnp.concatenate([m0[name][None], m1[name][None], scan_metrics[name]]) for name in m0}


def _select_rows(points, index):
    return jax.tree.map(lambda leaf: leaf[index], points)


def _kept_average(values: dict, weights) -> dict:
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
        points = _select_rows(candidates, jnp.arange(n) * k + best)
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
        stats.update(_kept_average(verifier.diagnostics(points), weights))
    return points, weights, stats


def _sampled_law(setting: Setting, spec: ChainSpec):
    """`(estimator, params) -> params` the synthetic points are drawn from: `params` itself, or
    `estimator.temper(params, tau)` at the setting's temperature when `spec.tempered`, then tilted by
    `setting.tilt` when the setting has one."""
    temperature, tilt = setting.temperature, setting.tilt

    def law(est, params):
        if spec.tempered:
            params = est.temper(params, jnp.asarray(temperature, jnp.result_type(float)))  # the working float
        return params if tilt is None else tilt(params)

    return law


def _make_sample_chain(setting: Setting, spec: ChainSpec):
    G, M, r = spec.num_generations, spec.samples, spec.real_count
    mixture = spec.real_draw == "mixture" and spec.real_fraction > 0
    if mixture:
        r = 0
    use_statistics = (
        spec.policy == "accumulate" and spec.accumulate_with_statistics and setting.estimator.has_statistics
    )
    use_buffer = spec.policy == "accumulate-subsample" or (spec.policy == "accumulate" and not use_statistics)
    verified = setting.verifier is not None
    # an unweighted synthetic batch that enters the fit only through its statistics is summarised in
    # the model's own frame (Estimator.draw_statistics): exact as the model collapses
    in_frame = (
        setting.estimator.draw_statistics is not None
        and setting.estimator.has_statistics
        and not verified
        and not mixture
        and not spec.real_weighted
        and (spec.policy == "replace" or use_statistics)
    )
    M1 = spec.first_count
    capacity = M1 + (G - 1) * M
    sampled_law = _sampled_law(setting, spec)

    def chain(key, chain_id):
        key_chain = chain_key(key, chain_id)
        this = chain_setting(setting, key, key_chain)
        est = this.estimator
        real_first = sample_real(this, _real_key(key, key_chain, spec, 1), M1)
        ones = jnp.ones((M,), real_first.dtype)
        ones_first = jnp.ones((M1,), real_first.dtype)
        if spec.real_weighted:  # per-point weights of a batch's synthetic and real points (total M)
            share = jnp.asarray(setting.real_weight, ones.dtype)
            synthetic_weight, real_weight = (1.0 - share) * M / (M - r), share * M / r
        else:
            synthetic_weight = real_weight = None

        def real_points(generation):
            if spec.real_source == "fresh":
                return sample_real(this, _real_key(key, key_chain, spec, generation), r)
            key_select = generation_key(key_chain, generation, Purpose.REAL_SELECT)
            scores = jax.random.uniform(key_select, (M1,))
            _, index = jax.lax.top_k(scores, r)
            return real_first[index]

        def fit_pool(generation, pool, batch, weights, previous=None):
            """Fit model `generation` on its weighted batch and the pool (from model `previous` with
            `Estimator.refit`); a buffer pool holds its `count` kept points in its first slots."""
            key_fit = generation_key(key_chain, generation, Purpose.FIT)

            def fit(data, data_weights):
                if previous is not None and est.refit is not None:
                    return est.refit(key_fit, previous, data, data_weights)
                return est.fit(key_fit, data, data_weights)

            if spec.policy == "replace":
                return fit(batch, weights), pool
            if use_statistics:
                pool = est.merge(pool, est.statistics(batch, weights))
                return est.fit_statistics(key_fit, pool), pool
            data, pool_weights, count = pool
            if verified or spec.real_weighted:  # weighted points first (stable: the identity when all count)
                order = jnp.argsort(weights <= 0, stable=True)
                batch, weights = batch[order], weights[order]
            data = jax.lax.dynamic_update_slice_in_dim(data, batch, count, axis=0)
            pool_weights = jax.lax.dynamic_update_slice_in_dim(pool_weights, weights, count, axis=0)
            count = count + jnp.sum(weights > 0).astype(count.dtype)
            if spec.policy == "accumulate":
                return fit(data, pool_weights), (data, pool_weights, count)
            key_sub = generation_key(key_chain, generation, Purpose.SUBSAMPLE)
            index = distinct_uniform_indices(key_sub, count, M, capacity)  # the pool: the first `count` slots
            return fit(data[index], pool_weights[index]), (data, pool_weights, count)

        if use_statistics:
            pool = est.statistics(real_first, jnp.zeros_like(ones_first))
        elif use_buffer:
            pool = (
                jnp.zeros((capacity,) + real_first.shape[1:], real_first.dtype),
                jnp.zeros((capacity,), real_first.dtype),
                jnp.int32(0),
            )
        else:
            pool = None
        params, pool = fit_pool(1, pool, real_first, ones_first)
        if this.first_model is not None:
            params = this.first_model

        def batch_of(generation, params):
            """The training batch of generation k >= 2, its weights and the verifier's statistics."""
            key_synthetic = generation_key(key_chain, generation, Purpose.SYNTHETIC)

            def synthetic_points(n):
                if not verified:
                    return est.sample(key_synthetic, params, n), ones[:n], {}
                key_verify = generation_key(key_chain, generation, Purpose.VERIFY)
                candidates = (
                    None
                    if est.sample_candidates is None
                    else lambda k, n, count: est.sample_candidates(k, params, n, count)
                )
                points, weights, stats = verified_sample(
                    this.verifier, spec, lambda k, n: est.sample(k, params, n), key_synthetic, key_verify, n, candidates
                )
                return points, weights.astype(ones.dtype), stats

            if mixture:  # each of the M points is real with probability alpha, else a (selected) synthetic one
                synthetic, weights, stats = synthetic_points(M)
                real = sample_real(this, _real_key(key, key_chain, spec, generation), M)
                is_real = jax.random.bernoulli(
                    generation_key(key_chain, generation, Purpose.MIX), spec.real_fraction, (M,)
                )
                points = jnp.where(is_real.reshape((M,) + (1,) * (real.ndim - 1)), real, synthetic)
                if "synthetic_kept" in stats:
                    stats = {**stats, "synthetic_kept": jnp.sum(jnp.where(is_real, 0.0, weights))}
                return points, jnp.where(is_real, 1.0, weights).astype(ones.dtype), stats
            synthetic, weights, stats = synthetic_points(M - r)
            if r:
                real_weights = ones[:r]
                if spec.real_weighted:
                    weights, real_weights = weights * synthetic_weight, real_weights * real_weight
                return (
                    jnp.concatenate([synthetic, real_points(generation)]),
                    jnp.concatenate([weights, real_weights]),
                    stats,
                )
            return synthetic, weights, stats

        def statistics_of_batch(generation, params):
            """The statistics of generation k's batch, its synthetic part summarised in the model's frame."""
            key_synthetic = generation_key(key_chain, generation, Purpose.SYNTHETIC)
            if r == M:
                return est.statistics(real_points(generation), ones)
            stats = est.draw_statistics(key_synthetic, params, M - r)
            if r:
                stats = est.merge(stats, est.statistics(real_points(generation), ones[:r]))
            return stats

        def step(carry, generation):
            params, pool = carry
            draw_from = sampled_law(est, params)
            if in_frame:
                batch_stats, stats = statistics_of_batch(generation, draw_from), {}
                if spec.policy != "replace":
                    batch_stats = pool = est.merge(pool, batch_stats)
                params = est.fit_statistics(generation_key(key_chain, generation, Purpose.FIT), batch_stats)
            else:
                batch, weights, stats = batch_of(generation, draw_from)
                params, pool = fit_pool(generation, pool, batch, weights, params)
            if spec.report_generations:
                jax.debug.callback(_report_generation, generation)
            return (params, pool), {**evaluate(this, key_chain, generation, params), **stats}

        first = params
        _, scanned = jax.lax.scan(step, (params, pool), jnp.arange(2, G + 1))
        if verified:
            first_stats = {"kept_fraction": jnp.float32(1.0), "synthetic_kept": jnp.float32(0.0)}
            if this.verifier.diagnostics is not None:
                first_stats.update(_kept_average(this.verifier.diagnostics(real_first), ones_first))
            history = _history(this, key_chain, first, scanned, first_stats)
        else:
            history = _history(this, key_chain, first, scanned)
        return history

    return chain


def _make_sufficient_chain(setting: Setting, spec: ChainSpec):
    G = spec.num_generations
    sampled_law = _sampled_law(setting, spec)

    def sizes(samples, generation):
        total = jnp.floor(samples * jnp.asarray(generation, jnp.float32) ** spec.sample_growth + 0.5)
        if spec.sample_growth == 0.0:
            total = jnp.asarray(samples, jnp.float32)
        real = jnp.floor(spec.real_fraction * total + 0.5)
        return total, real

    def chain(key, chain_id):
        key_chain = chain_key(key, chain_id)
        this = chain_setting(setting, key, key_chain)
        est, true = this.estimator, this.true_params
        samples = spec.samples if this.sample_size is None else this.sample_size
        total1, _ = sizes(samples, 1)
        batch = est.sample_statistics(_real_key(key, key_chain, spec, 1), true, total1)
        params = est.fit_statistics(generation_key(key_chain, 1, Purpose.FIT), batch)
        pool = batch

        def step(carry, generation):
            params, pool = carry
            total, real = sizes(samples, generation)
            if spec.real_draw == "mixture" and spec.real_fraction > 0:
                key_mix = generation_key(key_chain, generation, Purpose.MIX)
                real = jax.random.binomial(key_mix, total, spec.real_fraction).astype(total.dtype)
            key_synthetic = generation_key(key_chain, generation, Purpose.SYNTHETIC)
            batch = est.sample_statistics(key_synthetic, sampled_law(est, params), total - real)
            if spec.real_fraction > 0:
                real_stats = est.sample_statistics(_real_key(key, key_chain, spec, generation), true, real)
                batch = est.merge(batch, real_stats)
            pool = est.merge(pool, batch) if spec.policy == "accumulate" else batch
            params = est.fit_statistics(generation_key(key_chain, generation, Purpose.FIT), pool)
            return (params, pool), evaluate(this, key_chain, generation, params)

        first = params
        _, scanned = jax.lax.scan(step, (params, pool), jnp.arange(2, G + 1))
        return _history(this, key_chain, first, scanned)

    return chain
