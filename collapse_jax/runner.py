"""Run many chains: vmapped, sharded over devices, chunked to fit in memory, summarised as a stream."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from collapse_jax import parallel
from collapse_jax.chain import ChainSpec, Setting, chain_bytes_estimate, make_chain_fn
from collapse_jax.keys import root_key
from collapse_jax.stats import StreamingMoments, quantiles, reduce_chunk

MEMORY_FRACTION = 0.4  # share of free memory one chunk may use
MAX_CHUNK = 1 << 20


@dataclasses.dataclass
class RunResult:
    """Per-generation summaries of a run (arrays are over generations 0..G)."""

    generations: np.ndarray
    moments: dict[str, StreamingMoments]
    quantiles: dict[str, dict[str, np.ndarray]]
    quantile_chains: int
    chains: dict[str, np.ndarray] | None
    num_chains: int
    chunk_size: int
    num_devices: int
    device: str
    compile_seconds: float
    run_seconds: float

    def mean(self, metric: str) -> np.ndarray:
        return self.moments[metric].finite_mean()

    def standard_error(self, metric: str) -> np.ndarray:
        return self.moments[metric].standard_error


class _ChunkProgram:
    """The compiled program for one chunk size, with and without per-chain histories.

    Each device runs its shard of chains and reduces them locally (`shard_map`): the program has no
    cross-device collective, so devices never wait on each other, and the host merges the per-device
    partial statistics.
    """

    def __init__(self, chain_fn, mesh):
        self.mesh = mesh
        self._cache = {}
        self._chain_fn = chain_fn

    def compiled(self, key, chunk: int, with_history: bool):
        cache_key = (chunk, with_history)
        if cache_key not in self._cache:
            chains = PartitionSpec(parallel.CHAIN_AXIS)

            def local(key, chain_ids, valid):
                history = jax.vmap(self._chain_fn, in_axes=(None, 0))(key, chain_ids)
                reduced = {
                    name: tuple(part[None] for part in reduce_chunk(values, valid)) for name, values in history.items()
                }
                return (reduced, history) if with_history else reduced

            sharded = jax.shard_map(local, mesh=self.mesh, in_specs=(PartitionSpec(), chains, chains), out_specs=chains,
                                    check_vma=False)
            ids = jax.ShapeDtypeStruct((chunk,), jnp.int32)
            valid = jax.ShapeDtypeStruct((chunk,), jnp.bool_)
            self._cache[cache_key] = jax.jit(sharded).lower(key, ids, valid).compile()
        return self._cache[cache_key]


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def auto_chunk_size(program: _ChunkProgram, key, num_chains: int, num_devices: int, bytes_hint: float) -> int:
    """Chains per chunk (a multiple of the device count) whose footprint fits in free memory.

    `bytes_hint` is a static per-chain estimate; when all chains fit in a quarter of the budget by that
    estimate, one chunk is used without further ado. Otherwise a small probe program is compiled and
    its memory analysis (temporaries, outputs, arguments) sizes the chunk.
    """
    padded = _round_up(num_chains, num_devices)
    budget = MEMORY_FRACTION * parallel.available_memory_bytes(program.mesh.devices.flat[0])
    if padded * bytes_hint <= budget / 4:
        return min(padded, MAX_CHUNK)
    probe = num_devices * 16
    if padded <= probe:
        return padded
    analysis = program.compiled(key, probe, True).memory_analysis()
    per_chain = bytes_hint
    if analysis is not None:
        footprint = analysis.temp_size_in_bytes + analysis.output_size_in_bytes + analysis.argument_size_in_bytes
        per_chain = max(footprint / probe, 1.0)
    fits = int(budget // per_chain) // num_devices * num_devices
    return max(num_devices, min(padded, fits, MAX_CHUNK))


@dataclasses.dataclass
class PreparedRun:
    """A validated, compiled run: `execute(prepared)` runs it. Compiling can happen in another thread."""

    spec: ChainSpec
    program: _ChunkProgram
    key: jax.Array
    num_chains: int
    chunk: int
    quantile_chains: int
    compile_seconds: float


def prepare_chains(
    setting: Setting,
    spec: ChainSpec,
    *,
    seed: int,
    num_chains: int,
    chunk_size: int | None = None,
    devices=None,
    quantile_chains: int = 10_000,
) -> PreparedRun:
    """Validate, choose the chunk size and compile the program of a run (see `run_chains`)."""
    if isinstance(num_chains, bool) or not isinstance(num_chains, int) or num_chains < 1:
        raise ValueError(f"num_chains must be an integer >= 1, got {num_chains!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    chain_fn = make_chain_fn(setting, spec)
    mesh = parallel.chain_mesh(devices)
    num_devices = mesh.devices.size
    key = root_key(seed)
    program = _ChunkProgram(chain_fn, mesh)
    start = time.perf_counter()
    if chunk_size is None:
        chunk = auto_chunk_size(program, key, num_chains, num_devices, chain_bytes_estimate(setting, spec))
    else:
        chunk = _round_up(min(chunk_size, num_chains), num_devices)
    program.compiled(key, chunk, True)
    return PreparedRun(spec, program, key, num_chains, chunk, min(quantile_chains, num_chains),
                       time.perf_counter() - start)


def execute(prepared: PreparedRun, *, save_chains: bool = False,
            progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Run a prepared run chunk by chunk, merging per-device statistics as they arrive."""
    program, key, chunk, num_chains = prepared.program, prepared.key, prepared.chunk, prepared.num_chains
    quantile_chains = prepared.quantile_chains
    generations = np.arange(prepared.spec.num_generations + 1)
    moments: dict[str, StreamingMoments] = {}
    reservoir: dict[str, list] = {}
    saved: dict[str, list] = {}
    run_start = time.perf_counter()
    for first in range(0, num_chains, chunk):
        ids = np.arange(first, first + chunk, dtype=np.int32)
        valid = ids < num_chains
        with_history = save_chains or first < quantile_chains
        output = program.compiled(key, chunk, with_history)(key, jnp.asarray(ids), jnp.asarray(valid))
        reduced, history = output if with_history else (output, None)
        for name, parts in jax.device_get(reduced).items():
            stream = moments.setdefault(name, StreamingMoments(len(generations)))
            for device_parts in zip(*parts):  # one partial reduction per device
                stream.merge_chunk(*device_parts)
        if history is not None:
            history = jax.device_get(history)
            for name, values in history.items():
                values = np.asarray(values)
                keep = min(quantile_chains - first, chunk)
                if keep > 0:
                    reservoir.setdefault(name, []).append(values[:keep])
                if save_chains:
                    saved.setdefault(name, []).append(values[valid])
        if progress is not None:
            progress(min(first + chunk, num_chains), num_chains)
    run_seconds = time.perf_counter() - run_start

    return RunResult(
        generations=generations,
        moments=moments,
        quantiles={name: quantiles(np.concatenate(parts)) for name, parts in reservoir.items()},
        quantile_chains=quantile_chains,
        chains={name: np.concatenate(parts) for name, parts in saved.items()} if save_chains else None,
        num_chains=num_chains,
        chunk_size=chunk,
        num_devices=program.mesh.devices.size,
        device=parallel.device_description(program.mesh.devices.flat),
        compile_seconds=prepared.compile_seconds,
        run_seconds=run_seconds,
    )


def run_chains(
    setting: Setting,
    spec: ChainSpec,
    *,
    seed: int,
    num_chains: int,
    chunk_size: int | None = None,
    devices=None,
    save_chains: bool = False,
    quantile_chains: int = 10_000,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run `num_chains` independent chains and summarise every metric per generation.

    Chains are identified by global ids 0..num_chains-1 and every draw depends on (seed, chain id,
    generation, purpose) only, so results do not depend on `chunk_size`, `devices` or batch size (up to
    floating-point reassociation in the reductions).

    Args:
      setting: model class, true parameters and metrics.
      spec: static chain configuration.
      seed: root seed.
      num_chains: number of chains (>= 1).
      chunk_size: chains per compiled call (rounded up to a multiple of the device count); default: sized
        from the compiled program's memory footprint and the free memory.
      devices: devices to shard chains over (default: all local devices).
      save_chains: also return per-chain histories `(num_chains, G + 1)` per metric.
      quantile_chains: quantiles are computed from chains 0..quantile_chains-1.
      progress: called as progress(chains_done, num_chains) after each chunk.
    """
    prepared = prepare_chains(setting, spec, seed=seed, num_chains=num_chains, chunk_size=chunk_size,
                              devices=devices, quantile_chains=quantile_chains)
    return execute(prepared, save_chains=save_chains, progress=progress)
