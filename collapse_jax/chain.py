"""One recursive chain: fit, sample, refit, for many generations, as a single `lax.scan`.

Conventions (see docs/conventions.md): generation 0 is the real distribution; model k >= 1 is fitted at generation k;
model 1 is fitted on M real points only. Every generation k >= 2 draws a batch of M points: M - r
synthetic points from model k-1 and r = round(real_fraction * M) real points (fresh draws from the real
distribution, or draws without replacement from the generation-1 real sample). The pool rule
(declared in `collapse_jax.policies`) decides what model k is fitted on:

  replace               the batch of generation k (M points);
  accumulate            all batches of generations 1..k (kM points);
  accumulate-subsample  M points drawn without replacement from that pool.

With `real_draw="mixture"` (Kanabar & Gastpar 2025) each of the M points of generation k >= 2 is
instead drawn from the mixture alpha * real + (1 - alpha) * model k-1, so the real count is
Binomial(M, alpha).

A verifier (`Setting.verifier`) filters or curates the synthetic points of every generation k >= 2 before
the pool rule sees them (see `collapse_jax.verify`).

Two exact paths: `method="samples"` draws the points; `method="sufficient"` draws the batch's
sufficient statistics from their exact law (estimators with `sample_statistics`), so its cost does not
grow with M, and allows a growing sample size M_k = round(M k^a).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

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
from collapse_jax.policies import keeps_buffer, keeps_statistics, pool_rule, rules_with
from collapse_jax.types import ChainSpec, Reward, Setting, Verifier, round_half_up  # noqa: F401 (re-exported)
from collapse_jax.verify import kept_average, verified_sample

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


def evaluate_truth(setting: Setting, key_chain: jax.Array) -> dict:
    """The metrics of generation 0, the real distribution itself (see `Setting.truth_metrics`)."""
    if setting.truth_metrics is None:
        return evaluate(setting, key_chain, 0, setting.true_params)
    if setting.random_metrics:
        return setting.truth_metrics(generation_key(key_chain, 0, Purpose.EVALUATE), setting.true_params)
    return setting.truth_metrics(setting.true_params)


def chain_setting(setting: Setting, key: jax.Array, key_chain: jax.Array) -> Setting:
    """The setting one chain runs on (see `Setting.per_chain`)."""
    if setting.per_chain is None:
        return setting
    return setting.per_chain(
        generation_key(key_chain, 0, Purpose.TRUTH), generation_key(shared_key(key), 0, Purpose.TRUTH)
    )


def validate_spec(spec: ChainSpec, estimator: Estimator | None = None) -> None:
    """Raise ValueError naming the offending field before anything is traced (estimator: if given, also
    check that it supports the chosen method)."""

    def whole(name, value, low):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

    whole("num_generations", spec.num_generations, 1)
    whole("samples", spec.samples, 1)
    rule = pool_rule(spec.policy)
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
        if not rule.sufficient_path:
            raise ValueError(
                f"method='sufficient' supports policy {' or '.join(rules_with('sufficient_path'))}, not {rule.name}"
            )
        if spec.real_count > 0 and spec.real_source == "original":
            raise ValueError("method='sufficient' supports real_source='fresh' only (original needs the points)")
    elif spec.sample_growth != 0.0:
        raise ValueError("sample_growth > 0 needs method='sufficient' (sample shapes must be static)")
    if spec.real_weighted:
        if spec.method == "sufficient" and estimator is not None and estimator.weigh_statistics is None:
            raise ValueError(f"real_weight with method='sufficient': {estimator.name} cannot weigh statistics")
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
    batch_elems = 0
    if spec.method != "sufficient":
        batch_elems = math.prod(jax.eval_shape(lambda: sample_real(setting, jax.random.key(0), spec.samples)).shape)
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
    buffered = keeps_buffer(pool_rule(spec.policy), spec.accumulate_with_statistics, est.has_statistics)
    pool_elems = spec.num_generations * batch_elems if buffered else 0
    history = (spec.num_generations + 1) * 8
    return safety * 4 * (pool_elems + 4 * batch_elems + 8 * param_elems + history) + setting.metric_bytes


def _real_key(key_run, key_chain, spec: ChainSpec, generation):
    base = shared_key(key_run) if spec.shared_real_data else key_chain
    return generation_key(base, generation, Purpose.REAL)


def make_chain_fn(setting: Setting, spec: ChainSpec) -> Callable[[jax.Array, jax.Array], dict]:
    """Build `chain(key, chain_id) -> {metric: (G + 1,)}` for one chain (vmap it over chain ids); `key` is
    the run's root key, and chain `chain_id` derives every draw from (key, chain_id, generation, purpose) only."""
    validate_spec(spec, setting.estimator)
    if spec.method == "sufficient":
        if setting.sample_real is not None or setting.first_model is not None:
            raise ValueError("method='sufficient' needs real points from the model class and a fitted model 1")
        if setting.verifier is not None:
            raise ValueError("a verifier needs the points: use method='samples'")
        return _make_sufficient_chain(setting, spec)
    if setting.first_model is not None and not pool_rule(spec.policy).given_first_model:
        allowed = " or ".join(repr(name) for name in rules_with("given_first_model"))
        raise ValueError(f"a given model 1 (Setting.first_model) needs policy={allowed}")
    return _make_sample_chain(setting, spec)


def _history(setting: Setting, key_chain, first_params, scan_metrics, first_stats=None) -> dict:
    """Stack generation 0 (the truth), generation 1 and the scanned generations 2..G (`first_stats`:
    values of the engine's own metrics at generations 0 and 1)."""
    first_stats = first_stats or {}
    m0 = {**evaluate_truth(setting, key_chain), **first_stats}
    m1 = {**evaluate(setting, key_chain, 1, first_params), **first_stats}
    return {name: jnp.concatenate([m0[name][None], m1[name][None], scan_metrics[name]]) for name in m0}


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
    rule = pool_rule(spec.policy)
    use_statistics = keeps_statistics(rule, spec.accumulate_with_statistics, setting.estimator.has_statistics)
    use_buffer = keeps_buffer(rule, spec.accumulate_with_statistics, setting.estimator.has_statistics)
    verified = setting.verifier is not None
    # an unweighted synthetic batch that enters the fit only through its statistics is summarised in
    # the model's own frame (Estimator.draw_statistics): exact as the model collapses
    in_frame = (
        setting.estimator.draw_statistics is not None
        and setting.estimator.has_statistics
        and not verified
        and not mixture
        and not spec.real_weighted
        and rule.merges_statistics
        and (not rule.grows or use_statistics)
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

            if not rule.grows:  # the pool is the batch
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
            if not rule.subsamples:
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
                if rule.grows:
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
                first_stats.update(kept_average(this.verifier.diagnostics(real_first), ones_first))
            history = _history(this, key_chain, first, scanned, first_stats)
        else:
            history = _history(this, key_chain, first, scanned)
        return history

    return chain


def _make_sufficient_chain(setting: Setting, spec: ChainSpec):
    G = spec.num_generations
    grows = pool_rule(spec.policy).grows
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
        own_draws = grows and spec.real_fraction == 0 and this.tilt is None and est.merge_own_draws is not None
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
            if own_draws:  # the pool grows by draws of the model fitted to it: in the pool's frame
                pool = est.merge_own_draws(key_synthetic, pool, sampled_law(est, params), total)
            else:
                batch = est.sample_statistics(key_synthetic, sampled_law(est, params), total - real)
                if spec.real_fraction > 0:
                    real_stats = est.sample_statistics(_real_key(key, key_chain, spec, generation), true, real)
                    if spec.real_weighted:  # the samples path's point weights, on each part's statistics
                        share = jnp.asarray(setting.real_weight, total.dtype)
                        batch = est.weigh_statistics(batch, (1.0 - share) * total / (total - real))
                        real_stats = est.weigh_statistics(real_stats, share * total / real)
                    batch = est.merge(batch, real_stats)
                pool = est.merge(pool, batch) if grows else batch
            params = est.fit_statistics(generation_key(key_chain, generation, Purpose.FIT), pool)
            return (params, pool), evaluate(this, key_chain, generation, params)

        first = params
        _, scanned = jax.lax.scan(step, (params, pool), jnp.arange(2, G + 1))
        return _history(this, key_chain, first, scanned)

    return chain
