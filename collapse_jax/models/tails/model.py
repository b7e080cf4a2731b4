"""The tails slice's metrics: Hutter's memoriser (Dohmatob et al. 2024, A Tale of Tails). A learner that
memorises T draws from a law errs on a test point it has never seen: its test error is the true mass of
the categories the first T draws missed. The model class is the discrete slice's empirical law
(`collapse_jax.models.discrete.model`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from collapse_jax.models.discrete.model import categorical_metrics, law_metrics


def memoriser_metrics(
    *,
    categories: int,
    train_sizes: tuple[int, ...],
    names: tuple[str, ...],
    sample_real,
    sample_model,
    train_real_fraction: float = 0.0,
    fixed_synthetic: int = 0,
    generator=None,
):
    """`(metrics, truth_metrics)`: `metrics(key, params, true)` for a fitted law and `truth_metrics(key,
    true)` for generation 0 (the real law), each a dict over `names` of scalars.

    `test_error.T` for each T in `train_sizes` (increasing): the true mass of the categories that the first
    T of `max(train_sizes)` draws miss; the draws come from the model (`sample_model(key, params, n)`), or
    from the real law (`sample_real(key, n)`) with probability `train_real_fraction` each; with
    `fixed_synthetic = n > 0`, the categories of n further model draws count as seen. `lost_mass`: the true
    mass the law gives zero (`generator`: the base law of a given model 1).
    """
    longest = train_sizes[-1]

    def memoriser(key, sample, true, law_values):
        key_model, key_real, key_mix, key_fixed = jax.random.split(key, 4)
        draws = sample(key_model, longest)
        if train_real_fraction > 0:
            is_real = jax.random.bernoulli(key_mix, train_real_fraction, (longest,))
            draws = jnp.where(is_real, sample_real(key_real, longest), draws)
        first_seen = jnp.full((categories,), longest, jnp.int32).at[draws].min(jnp.arange(longest, dtype=jnp.int32))
        unseen_mass = true.probabilities
        if fixed_synthetic > 0:
            seen = jnp.zeros((categories,), bool).at[sample(key_fixed, fixed_synthetic)].set(True)
            unseen_mass = jnp.where(seen, 0.0, unseen_mass)
        values = {f"test_error.{t}": jnp.sum(jnp.where(first_seen >= t, unseen_mass, 0.0)) for t in train_sizes}
        values.update(law_values())
        return {name: values[name] for name in names}

    def metrics(key, params, true):
        def law_values():
            base = None if generator is None else jnp.asarray(generator, jnp.float32)
            return categorical_metrics(params, true, ("lost_mass",), base=base)

        return memoriser(key, lambda key, n: sample_model(key, params, n), true, law_values)

    def truth_metrics(key, true):
        return memoriser(key, sample_real, true, lambda: law_metrics(true.probabilities, true, ("lost_mass",)))

    return metrics, truth_metrics
