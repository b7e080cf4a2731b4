"""The discrete and tails settings: exact samplers, the mixture real draw, invariances, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.chain import make_chain_fn
from collapse_jax.keys import root_key
from collapse_jax.models.discrete.model import (
    CategoricalParams,
    alias_table,
    make_categorical,
    sample_alias,
    sample_counts,
)
from collapse_jax.runner import run_chains
from collapse_jax.settings import get_setting
from collapse_jax.simulate import simulate
from tests.helpers import assert_histories_close


def _build(name, **overrides):
    definition = get_setting(name)
    config = definition.resolve(overrides)
    setting, spec = definition.instantiate(config)
    return setting, spec


def _alias_probabilities(table):
    threshold = np.asarray(table.threshold, np.float64) / 2.0**32
    alias = np.asarray(table.alias)
    k = threshold.size
    keep = np.where(alias == np.arange(k), 1.0, threshold)  # a column aliased to itself keeps everything
    moved = np.bincount(alias, weights=1.0 - keep, minlength=k)
    return (keep + moved) / k


def test_alias_table_is_exact_for_a_zipf_law_over_1e5_categories():
    k = 100_000
    p = np.arange(1, k + 1, dtype=np.float64) ** -2.0
    p /= p.sum()
    table = alias_table(p)
    reconstructed = _alias_probabilities(table)
    assert np.all(reconstructed > 0)  # a float32 inverse CDF gives the tail zero mass; this does not
    # each 32-bit threshold is rounded down by < 2^-32: a category is off by < (1 + columns aliased to it) 2^-32 / K
    bound = (1 + np.bincount(np.asarray(table.alias), minlength=k)) * 2.0**-32 / k
    assert np.all(np.abs(reconstructed - p) <= bound)
    np.testing.assert_allclose(reconstructed[-100:] / p[-100:], 1.0, rtol=1e-3)  # p_i ~ 6e-11: still exact


def test_samplers_draw_the_right_frequencies():
    n = 400_000
    counts = jnp.array([1, 0, 5, 2], jnp.int32)
    drawn = np.bincount(np.asarray(sample_counts(jax.random.key(0), counts, n)), minlength=4)
    expected = np.array([1, 0, 5, 2]) / 8 * n
    assert drawn[1] == 0
    assert np.all(np.abs(drawn - expected) <= 5 * np.sqrt(expected * (1 - expected / n)) + 1e-9)
    p = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625, 0.0])
    drawn = np.bincount(np.asarray(sample_alias(jax.random.key(1), alias_table(p), n)), minlength=6)
    expected = p * n
    assert drawn[5] == 0
    assert np.all(np.abs(drawn - expected) <= 5 * np.sqrt(expected * (1 - p)) + 1e-9)
    # a wrong law is caught by the same check (power): the uniform law over the first five categories
    assert not np.all(np.abs(drawn - n / 5) <= 5 * np.sqrt(n / 5 * 0.8))


def test_restricted_sampler_draws_the_renormalised_law():
    from collapse_jax.models.discrete.model import sample_restricted

    p = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
    support = jnp.array([False, True, True, False, True])
    n = 300_000
    drawn = np.bincount(np.asarray(sample_restricted(jax.random.key(3), alias_table(p), support, n)), minlength=5)
    law = np.where(np.asarray(support), p, 0) / p[np.asarray(support)].sum()
    assert drawn[0] == drawn[3] == 0
    assert np.all(np.abs(drawn - law * n) <= 5 * np.sqrt(law * (1 - law) * n) + 1e-9)
    # a support of mass 1/16 forces many retries and still draws only inside it
    tiny = np.asarray(sample_restricted(jax.random.key(4), alias_table(p), jnp.arange(5) == 3, 1000))
    assert np.all(tiny == 3)


def test_smoothing_mixes_the_uniform_law_exactly():
    k, s = 4, 0.5
    est = make_categorical(k, smoothing=s)
    params = est.fit(jax.random.key(0), jnp.array([0, 0, 2], jnp.int32), jnp.ones(3, jnp.int32))
    law = (np.array([2, 0, 1, 0]) + s) / (3 + k * s)
    n = 400_000
    drawn = np.bincount(np.asarray(est.sample(jax.random.key(2), params, n)), minlength=k)
    assert np.all(np.abs(drawn - law * n) <= 5 * np.sqrt(law * (1 - law) * n))


def test_tail_categories_survive_a_first_generation_draw():
    """Generation 1 of a Zipf(1.1) law over 10^5 categories with M = 10^6: thousands of tail categories
    of probability < 1e-6 are drawn (a float32 inverse CDF would never draw most of them)."""
    summary = simulate(
        "discrete",
        dict(law="zipf:1.1", categories=100_000, samples=1_000_000, generations=1, chains=2, metrics="support_size"),
    )
    # E support = sum 1 - (1 - p_i)^M, computed here in float64
    p = np.arange(1, 100_001, dtype=np.float64) ** -1.1
    p /= p.sum()
    expected = np.sum(-np.expm1(1_000_000 * np.log1p(-p)))
    assert abs(summary["metrics"]["support_size"]["mean"][1] - expected) < 0.01 * expected


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(dict(policy="replace", real_fraction=0.3, real_draw="mixture"), marks=pytest.mark.slow),
        pytest.param(dict(policy="accumulate", smoothing=0.5), marks=pytest.mark.slow),
        pytest.param(
            dict(policy="accumulate-subsample", real_fraction=0.5, real_source="original", groups="a:1-5,b:6-50"),
            marks=pytest.mark.slow,
        ),
    ],
)
def test_discrete_chain_is_invariant_to_batching_and_devices(overrides, devices):
    setting, spec = _build("discrete", law="zipf:1.2", categories=50, samples=20, generations=5, **overrides)
    chain = make_chain_fn(setting, spec)
    key = root_key(5)
    batch = jax.jit(jax.vmap(chain, in_axes=(None, 0)))(key, jnp.arange(6))
    alone = jax.jit(chain)(key, 4)
    assert_histories_close(alone, {k: v[4] for k, v in batch.items()})
    if overrides["policy"] != "accumulate-subsample":
        return  # sharding and chunking are the engine's (tests/test_invariances.py): checked once here
    single = run_chains(setting, spec, seed=1, num_chains=19, devices=devices[:1], save_chains=True)
    sharded = run_chains(setting, spec, seed=1, num_chains=19, devices=devices, chunk_size=4, save_chains=True)
    assert_histories_close(single.chains, sharded.chains)


@pytest.mark.slow
def test_tails_memoriser_is_invariant_to_batching(devices):
    setting, spec = _build(
        "tails",
        categories=2000,
        samples=100,
        generations=3,
        generator="cut:50",
        train_sizes="10,300",
        train_real_fraction=0.5,
        fixed_synthetic=20,
    )
    single = run_chains(setting, spec, seed=2, num_chains=11, devices=devices[:1], save_chains=True)
    sharded = run_chains(setting, spec, seed=2, num_chains=11, devices=devices, chunk_size=2, save_chains=True)
    assert_histories_close(single.chains, sharded.chains)


def test_mixture_draw_mixes_the_real_law():
    """real_draw=mixture with alpha = 1: every point of generation >= 2 is real, so a replace chain stays
    at the one-fit error; with alpha = 0 it drifts (Wright-Fisher)."""
    common = dict(
        law="uniform", categories=20, samples=50, generations=10, chains=4000, metrics="l2_risk", real_draw="mixture"
    )
    stay = simulate("discrete", dict(common, real_fraction=1.0))["metrics"]["l2_risk"]["mean"]
    drift = simulate("discrete", dict(common, real_fraction=0.0))["metrics"]["l2_risk"]["mean"]
    one_fit = (1 - 1 / 20) / 50
    np.testing.assert_allclose(stay[1:], one_fit, rtol=0.05)
    assert drift[-1] > 5 * one_fit


def test_gaussian_mixture_draw_sufficient_path_matches_sample_path():
    """The sufficient path draws the real count as Binomial(M, alpha); the sample path draws a mask."""
    common = dict(
        dim=1,
        samples=10,
        ddof=1,
        policy="replace",
        generations=8,
        chains=10_000,
        real_fraction=0.4,
        real_draw="mixture",
        metrics="trace_ratio",
    )
    a = simulate("gaussian", dict(common, method="samples"))["metrics"]["trace_ratio"]
    b = simulate("gaussian", dict(common, method="sufficient", seed=1))["metrics"]["trace_ratio"]
    z = (np.array(a["mean"][1:]) - np.array(b["mean"][1:])) / np.hypot(a["se"][1:], b["se"][1:])
    assert np.all(np.abs(z) < 5), z
    assert a["theory"][-1] is None  # mixture: no Gaussian theory derived (the fixed count has one)


@pytest.mark.parametrize(
    "setting, overrides, match",
    [
        ("discrete", dict(law="zipf:0"), "BETA"),
        ("discrete", dict(law="pareto"), "law"),
        ("discrete", dict(categories=1), "categories"),
        ("discrete", dict(tail_rank=1000, categories=1000), "tail_rank"),
        ("discrete", dict(groups="a:1-10,b:5-20"), "overlaps"),
        ("discrete", dict(groups="a:0-10"), "groups"),
        ("discrete", dict(groups="a:1-10", metrics="group_mass.b"), "metrics"),
        ("discrete", dict(real_draw="mixture", real_source="original", real_fraction=0.5), "real_source"),
        ("discrete", dict(real_draw="sometimes"), "real_draw"),
        ("discrete", dict(method="sufficient"), "method"),
        ("tails", dict(law="zipf:1"), "BETA must be > 1"),
        ("tails", dict(generator="cut:0"), "generator"),
        ("tails", dict(generator="narrow:1.5"), "BETA2"),
        ("tails", dict(generator="cut:10", policy="accumulate"), "policy"),
        ("tails", dict(train_sizes="10,x"), "train_sizes"),
        ("tails", dict(train_real_fraction=1.5), "train_real_fraction"),
        ("tails", dict(chain="shrinking", generator="cut:10"), "chain"),
        ("tails", dict(chain="wandering"), "chain"),
        ("kde", dict(bandwidth="0"), "bandwidth"),
        ("kde", dict(bandwidth="wide"), "bandwidth"),
        ("kde", dict(dataset="spiral"), "dataset"),
        ("kde", dict(noise=-1.0), "noise"),
        ("gmm", dict(components=20, samples=10), "num_components"),
        ("gmm", dict(reg_covar=0.0), "reg_covar"),
        ("gmm", dict(minor_weight=0.7), "minor_weight"),
        ("gmm", dict(metrics="weight.2"), "metrics"),
    ],
)
def test_bad_input_names_the_parameter(setting, overrides, match):
    with pytest.raises(ValueError, match=match):
        get_setting(setting).resolve(overrides)


def test_law_files_are_checked(tmp_path):
    definition = get_setting("discrete")
    bad_sum = tmp_path / "sum.txt"
    np.savetxt(bad_sum, [0.5, 0.6])
    with pytest.raises(ValueError, match="sum to 1"):
        definition.resolve(dict(law=f"file:{bad_sum}", categories=2))
    negative = tmp_path / "neg.npy"
    np.save(negative, np.array([1.2, -0.2]))
    with pytest.raises(ValueError, match=">= 0"):
        definition.resolve(dict(law=f"file:{negative}", categories=2))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        definition.resolve(dict(law=f"file:{negative}", categories=3))
    good = tmp_path / "good.txt"
    np.savetxt(good, [0.7, 0.0, 0.3])
    summary = simulate(
        "discrete", dict(law=f"file:{good}", categories=3, tail_rank=1, samples=10, generations=3, chains=50)
    )
    assert summary["metrics"]["support_size"]["mean"][0] == 2  # the truth has two categories
    assert np.isfinite(summary["metrics"]["kl_to_original"]["mean"]).all()


def test_first_model_needs_replace_and_is_used():
    setting, spec = _build("tails", categories=100, samples=10, generations=2, generator="cut:5", train_sizes="1000")
    assert isinstance(setting.first_model, CategoricalParams)
    history = jax.jit(make_chain_fn(setting, spec))(root_key(0), 0)
    p = np.arange(1, 101, dtype=np.float64) ** -2.0
    p /= p.sum()
    np.testing.assert_allclose(history["lost_mass"][1], p[5:].sum(), rtol=1e-5)  # model 1 = the cut law


@pytest.mark.slow
def test_kde_chain_is_invariant_to_batching_and_starts_at_the_true_density(devices):
    setting, spec = _build(
        "kde", dataset="blobs", samples=30, generations=3, policy="accumulate-subsample", test_points=40
    )
    single = run_chains(setting, spec, seed=4, num_chains=9, devices=devices[:1], save_chains=True)
    sharded = run_chains(setting, spec, seed=4, num_chains=9, devices=devices, chunk_size=2, save_chains=True)
    assert_histories_close(single.chains, sharded.chains, rtol=1e-4)
    nll = single.chains["held_out_nll"]
    # generation 0 is the true blobs density (3 unit Gaussians): NLL about log(2 pi) + 1 + log(3)-ish, and
    # every KDE fit does worse on average than the truth it estimates
    assert np.all(np.isfinite(nll)) and nll[:, 0].mean() < nll[:, 1:].mean()
