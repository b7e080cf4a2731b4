"""A chain's draws depend only on (seed, chain id, generation, purpose): batch size, chunking and the
number of devices do not change results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.chain import make_chain_fn
from collapse_jax.keys import root_key
from collapse_jax.runner import run_chains
from tests.helpers import assert_histories_close, build

CONFIGS = [
    dict(dim=1, samples=12, ddof=1, policy="replace", generations=6),
    dict(dim=3, samples=6, ddof=0, policy="accumulate", generations=5, real_fraction=0.5),
    dict(
        dim=2,
        samples=5,
        ddof=0,
        policy="accumulate-subsample",
        generations=5,
        real_fraction=0.4,
        real_source="original",
    ),
    dict(dim=4, samples=8, ddof=1, policy="accumulate", generations=6, method="sufficient", real_fraction=0.25),
    dict(dim=1, samples=10, ddof=1, policy="replace", generations=6, method="sufficient", sample_growth=1.5),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_chain_alone_equals_chain_in_batch(config):
    setting, spec, _ = build(**config)
    chain = make_chain_fn(setting, spec)
    key = root_key(7)
    batch = jax.jit(jax.vmap(chain, in_axes=(None, 0)))(key, jnp.arange(10))
    for i in (0, 3, 9):
        alone = jax.jit(chain)(key, i)
        # atol 1e-5: log det is a sum of d logs per generation, reassociated differently under vmap
        assert_histories_close(alone, {k: v[i] for k, v in batch.items()}, atol=1e-5)


# the default tier shards the sample path (replace; accumulate with real data); the other three run in the slow tier
SHARDED_CONFIGS = [pytest.param(c, marks=pytest.mark.slow) if i in (2, 3, 4) else c for i, c in enumerate(CONFIGS)]


@pytest.mark.parametrize("config", SHARDED_CONFIGS)
def test_sharded_equals_single_device_and_chunked_equals_unchunked(config, devices):
    setting, spec, _ = build(**config)
    kwargs = dict(seed=3, num_chains=37, save_chains=True)
    single = run_chains(setting, spec, devices=devices[:1], **kwargs)
    sharded = run_chains(setting, spec, devices=devices, **kwargs)
    chunked = run_chains(setting, spec, devices=devices, chunk_size=8, **kwargs)
    assert sharded.num_devices == 8 and chunked.chunk_size == 8
    for other in (sharded, chunked):
        assert_histories_close(single.chains, other.chains, atol=1e-5)  # log det: a sum of logs, reassociated
        for name in single.moments:
            np.testing.assert_allclose(single.mean(name), other.mean(name), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(single.standard_error(name), other.standard_error(name), rtol=1e-4, atol=1e-6)


def test_streaming_summary_equals_statistics_of_saved_chains(devices):
    setting, spec, _ = build(dim=2, samples=8, ddof=0, policy="replace", generations=5)
    result = run_chains(setting, spec, seed=1, num_chains=100, chunk_size=24, save_chains=True, quantile_chains=60)
    for name, values in result.chains.items():
        finite = np.where(np.isfinite(values), values, np.nan)
        np.testing.assert_allclose(result.mean(name), np.nanmean(finite, axis=0), rtol=1e-5)
        np.testing.assert_allclose(result.moments[name].std, np.nanstd(finite, axis=0, ddof=1), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(
            result.quantiles[name]["0.5"], np.quantile(values[:60], 0.5, axis=0, method="inverted_cdf"), rtol=1e-6
        )


def test_different_chains_and_seeds_differ():
    setting, spec, _ = build(dim=1, samples=10, ddof=1, generations=3)
    a = run_chains(setting, spec, seed=0, num_chains=4, save_chains=True).chains["trace_ratio"]
    b = run_chains(setting, spec, seed=1, num_chains=4, save_chains=True).chains["trace_ratio"]
    assert len(np.unique(a[:, -1])) == 4
    assert not np.allclose(a, b)


def test_accumulate_statistics_equals_buffer():
    """Merging sufficient statistics is the same fit as keeping every point (same draws)."""
    import dataclasses

    setting, spec, _ = build(dim=3, samples=7, ddof=1, policy="accumulate", generations=6, real_fraction=0.3)
    buffered = dataclasses.replace(spec, accumulate_with_statistics=False)
    key = root_key(11)
    a = jax.jit(jax.vmap(make_chain_fn(setting, spec), in_axes=(None, 0)))(key, jnp.arange(6))
    b = jax.jit(jax.vmap(make_chain_fn(setting, buffered), in_axes=(None, 0)))(key, jnp.arange(6))
    assert_histories_close(a, b, rtol=2e-4, atol=2e-5)


def test_shared_real_data_gives_identical_first_fit():
    setting, spec, _ = build(dim=2, samples=6, ddof=1, generations=3, shared_real_data=True)
    chains = run_chains(setting, spec, seed=5, num_chains=5, save_chains=True).chains
    assert np.ptp(chains["mean_error_sq"][:, 1]) == 0.0  # model 1: the same real sample
    assert np.ptp(chains["mean_error_sq"][:, 2]) > 0.0  # synthetic draws differ per chain


def test_second_run_does_not_recompile():
    setting, spec, _ = build(dim=1, samples=5, ddof=1, generations=4)
    traces = []
    chain = make_chain_fn(setting, spec)

    def counted(key, chain_id):
        traces.append(1)
        return chain(key, chain_id)

    fn = jax.jit(jax.vmap(counted, in_axes=(None, 0)))
    fn(root_key(0), jnp.arange(8))
    fn(root_key(1), jnp.arange(8, 16))
    assert len(traces) == 1


def test_chunk_means_are_accurate_in_float32():
    """A float32 scatter-sum of 10^4 values drifts by ~n eps; the corrected chunk mean does not."""
    from collapse_jax.stats import reduce_segments

    values = (
        jnp.full((10_000, 2), 0.80315286, jnp.float32)
        .at[:, 1]
        .set(jax.random.uniform(jax.random.key(0), (10_000,), jnp.float32) + 1000.0)
    )
    _, mean, m2, *_ = reduce_segments(values, jnp.zeros(10_000, jnp.int32), jnp.ones(10_000, bool), 1)
    exact = np.asarray(values, np.float64).mean(axis=0)
    np.testing.assert_allclose(np.asarray(mean[0], np.float64), exact, rtol=1e-7)
    np.testing.assert_allclose(float(m2[0, 0]), 0.0, atol=1e-9)


def test_auto_chunks_are_balanced():
    """Lanes are cut into as few chunks as the largest allowed size needs, of equal size: no chunk of
    mostly padding (100 lanes under a limit of 88 run as 2 x 50, not 2 x 88)."""
    from collapse_jax.runner import balanced_chunk

    assert balanced_chunk(100, 88, 1) == 50
    assert balanced_chunk(100, 32, 1) == 25
    assert balanced_chunk(100, 100, 1) == 100
    assert balanced_chunk(104, 88, 8) == 56  # a multiple of the device count
    for lanes in range(1, 300, 7):
        for largest in (1, 5, 32, 88):
            chunk = balanced_chunk(lanes, largest, 1)
            assert chunk <= largest and -(-lanes // chunk) == -(-lanes // largest)


def test_a_probed_chunk_fits_the_budget_whatever_the_device_count(monkeypatch):
    """A compiled chunk's memory analysis is one device's shard; CPU devices share the host's memory, so the
    whole chunk must fit the budget: with 4 devices, 1000 bytes per lane and 4 * 10^5 bytes, 400 lanes. A
    candidate that fits is the chunk (its program is not compiled twice)."""
    import types

    from collapse_jax import parallel, runner

    asked = []

    def compiled(table, chunk, history):  # 1000 bytes per lane, analysed for one device's shard
        shard = types.SimpleNamespace(
            temp_size_in_bytes=1000 * chunk // 4, output_size_in_bytes=0, argument_size_in_bytes=0
        )
        asked.append(chunk)
        return types.SimpleNamespace(memory_analysis=lambda: shard)

    mesh = types.SimpleNamespace(devices=np.array([None] * 4))
    program = types.SimpleNamespace(mesh=mesh, compiled=compiled)
    monkeypatch.setattr(parallel, "available_memory_bytes", lambda device: 10**6)
    chunk = runner.auto_chunk_size(program, None, 10_000, 4, bytes_hint=10**5)
    budget = runner.MEMORY_FRACTION * 10**6
    assert jax.default_backend() == "cpu"
    assert chunk % 4 == 0 and budget - 4 * 1000 < chunk * 1000 <= budget  # not 4x the budget (1600 lanes)
    assert asked == [10_000]  # the candidate (all lanes) analysed; the chunk that fits is compiled by its run
    asked.clear()
    assert runner.auto_chunk_size(program, None, 300, 4, bytes_hint=10**5) == 300 and asked == [300]  # kept


@pytest.mark.multidevice
def test_memory_analysis_of_a_sharded_program_is_per_device():
    """What `auto_chunk_size` assumes of XLA: the analysis of a program sharded over the chain axis counts one
    device's shard (run on 8 forced CPU devices: 128 lanes, 16 per device)."""
    from jax.sharding import PartitionSpec

    from collapse_jax import parallel

    mesh = parallel.chain_mesh()
    assert mesh.devices.size == 8
    lanes = PartitionSpec(parallel.CHAIN_AXIS)
    program = jax.shard_map(lambda x: x * 2.0, mesh=mesh, in_specs=lanes, out_specs=lanes, check_vma=False)
    count = 16 * mesh.devices.size
    x = jax.ShapeDtypeStruct((count, 100), jnp.float32, sharding=parallel.chain_sharding(mesh))
    analysis = jax.jit(program).lower(x).compile().memory_analysis()
    assert analysis.argument_size_in_bytes == 16 * 100 * 4
