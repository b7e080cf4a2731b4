"""Run many chains: vmapped, sharded over devices, chunked to fit in memory, summarised as a stream.

The unit of compilation is a *program*: one static chain configuration (`ChainSpec`, shapes, code
paths) run for a table of *cells*. A cell is one run: a seed, values of the setting's traced
hyperparameters (array-valued, so changing them does not recompile) and a number of chains. The
program's batch is a flat list of *lanes*, one per (cell, chain id) pair, sharded over a 1-D mesh of
all devices and cut into chunks that fit in memory; each device reduces its lanes per cell
(segment sums) and the host merges those partial statistics as a stream, so no per-chain array of
all chains is ever held. A cell whose last lane has run is handed to `on_cell` at once.

A chain's draws depend only on (seed, chain id, generation, purpose): never on the cell's
hyperparameter values (common random numbers across a curve), the chunking, the batch or the devices.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from collapse_jax import parallel
from collapse_jax.chain import chain_bytes_estimate, chain_working_set_bytes, make_chain_fn
from collapse_jax.stats import StreamingMoments, quantiles, reduce_segments
from collapse_jax.types import ChainSpec, Setting

MEMORY_FRACTION = 0.4  # share of free memory one chunk may use
MAX_CHUNK = 1 << 20
# On CPU, a chain whose generation touches at least CACHE_CHAIN_BYTES gets chunks of about CACHE_CHUNK_BYTES
# (at least MIN_CACHE_CHUNK chains), so that a generation's arrays stay in cache: regression with a fresh
# 200 x 50 design ran 1.6x faster in chunks of 128 chains than of 1024, Gaussian d = 100 (M = 10) 1.15x in
# chunks of 64; chains with small working sets (1-D Gaussian) gain nothing and keep one large chunk.
CACHE_CHAIN_BYTES = 64 * 1024
CACHE_CHUNK_BYTES = 16 * 1024 * 1024
MIN_CACHE_CHUNK = 32
SEED_RANGE = 2**32
MAX_CHAINS = 2**32  # chain ids are 32-bit (folded into the keys as uint32): ids 0..2^32 - 1 are distinct
EAGER_LOCK = threading.Lock()  # building a setting (traced or eager) and its theory: one thread at a time


@dataclasses.dataclass
class RunResult:
    """Per-generation summaries of one cell (arrays are over generations 0..G)."""

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


@dataclasses.dataclass(frozen=True)
class Cells:
    """The runs of one program. seeds, num_chains: one entry per cell; hyper: name -> one value per cell."""

    seeds: tuple[int, ...]
    num_chains: tuple[int, ...]
    hyper: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.seeds)

    def hyper_of(self, index: int) -> dict[str, float]:
        return {name: values[index] for name, values in self.hyper.items()}


def _is_count(value) -> bool:
    """An integer >= 1 (Python or NumPy), not a boolean."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= 1


def validate_cells(cells: Cells) -> None:
    """Raise ValueError naming the field when a cell table is malformed."""
    n = len(cells.seeds)
    if n == 0:
        raise ValueError("cells must hold at least one cell")
    for seed in cells.seeds:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < SEED_RANGE:
            raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    if len(cells.num_chains) != n:
        raise ValueError(f"num_chains must have one entry per cell ({n}), got {len(cells.num_chains)}")
    for count in cells.num_chains:
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= MAX_CHAINS:
            raise ValueError(f"num_chains must be an integer in [1, 2**32] (chain ids are 32-bit), got {count!r}")
    for name, values in cells.hyper.items():
        if len(values) != n:
            raise ValueError(f"hyperparameter {name} must have one value per cell ({n}), got {len(values)}")
        if not np.all(np.isfinite(np.asarray(values, float))):
            raise ValueError(f"hyperparameter {name} must be finite, got {values!r}")


class _Lanes:
    """The flat lane list of all cells of a table: lane -> (cell, chain id), computed per chunk.

    Lanes always cover every cell, so a chain's lane, chunk and device are the same whichever cells
    are run (a resumed sweep reproduces an uninterrupted one bit for bit).
    """

    def __init__(self, cells: Cells):
        self.offsets = np.concatenate([[0], np.cumsum(np.asarray(cells.num_chains, np.int64))])
        self.total = int(self.offsets[-1])

    def chunk(self, first: int, size: int):
        lane = np.arange(first, first + size, dtype=np.int64)
        valid = lane < self.total
        cell = np.clip(np.searchsorted(self.offsets, lane, side="right") - 1, 0, len(self.offsets) - 2)
        chain = np.where(valid, lane - self.offsets[cell], 0).astype(np.int32)
        return np.where(valid, cell, 0).astype(np.int32), chain, valid

    def last_lane(self, cell: int) -> int:
        return int(self.offsets[cell + 1]) - 1


def make_lane_fn(setting_fn: Callable[[dict], Setting], spec: ChainSpec):
    """`lane(seed, chain_id, hyper) -> {metric: (G + 1,)}`: one chain of the cell with this seed and
    hyperparameters. `setting_fn(hyper)` builds the setting from (possibly traced) hyperparameters."""

    def lane(seed, chain_id, hyper):
        chain = make_chain_fn(setting_fn(hyper), spec)
        return chain(jax.random.key(seed), chain_id)

    return lane


class _ChunkProgram:
    """The compiled program for one chunk size, with and without per-chain histories.

    Each device runs its shard of lanes and reduces them per cell (`shard_map`): the program has no
    cross-device collective, so devices never wait on each other, and the host merges the per-device
    partial statistics.
    """

    def __init__(self, lane_fn, mesh, num_cells: int):
        self.mesh = mesh
        self.num_cells = num_cells
        self._cache = {}
        self._lane_fn = lane_fn

    def compiled(self, table, chunk: int, with_history: bool):
        cache_key = (chunk, with_history)
        if cache_key not in self._cache:
            lanes = PartitionSpec(parallel.CHAIN_AXIS)
            num_cells, lane_fn = self.num_cells, self._lane_fn

            def local(seeds, hyper, cell, chain_ids, valid):
                def one(cell_index, chain_id):
                    values = {name: column[cell_index] for name, column in hyper.items()}
                    return lane_fn(seeds[cell_index], chain_id, values)

                history = jax.vmap(one)(cell, chain_ids)
                reduced = {
                    name: tuple(part[None] for part in reduce_segments(values, cell, valid, num_cells))
                    for name, values in history.items()
                }
                return (reduced, history) if with_history else reduced

            sharded = jax.shard_map(
                local,
                mesh=self.mesh,
                in_specs=(PartitionSpec(), PartitionSpec(), lanes, lanes, lanes),
                out_specs=lanes,
                check_vma=False,
            )
            shapes = [jax.ShapeDtypeStruct((chunk,), dtype) for dtype in (jnp.int32, jnp.int32, jnp.bool_)]
            self._cache[cache_key] = jax.jit(sharded).lower(*table, *shapes).compile()
        return self._cache[cache_key]


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def auto_chunk_size(
    program: _ChunkProgram, table, num_lanes: int, num_devices: int, bytes_hint: float, working_set: float = 0.0
) -> int:
    """Lanes per chunk (a multiple of the device count) whose footprint fits in free memory.

    `bytes_hint` is a static per-chain over-estimate; where the chunk fits in the budget by that estimate, no
    probe is compiled. Otherwise the candidate chunk's memory analysis (of one device's shard) sizes it: the
    whole chunk in the budget on CPU (its devices share the host's memory), each shard on an accelerator.
    On CPU, chains whose generation touches at least CACHE_CHAIN_BYTES (`working_set`) are chunked for cache
    locality.
    """
    total = _round_up(num_lanes, num_devices)
    padded = total
    if jax.default_backend() == "cpu" and working_set >= CACHE_CHAIN_BYTES:
        per_device = max(MIN_CACHE_CHUNK, int(CACHE_CHUNK_BYTES // working_set))
        padded = min(padded, per_device * num_devices)
    budget = MEMORY_FRACTION * parallel.available_memory_bytes(program.mesh.devices.flat[0])
    candidate = balanced_chunk(total, min(padded, _round_up(MAX_CHUNK, num_devices)), num_devices)
    if padded * bytes_hint <= budget:  # a safe over-estimate (chain_bytes_estimate's safety factor) fits
        return candidate
    # compiling allocates nothing: the candidate's own analysis decides, and it is kept (no second compile) if it fits
    analysis = program.compiled(table, candidate, True).memory_analysis()
    per_chain = bytes_hint
    if analysis is not None:  # of one device's shard; the CPU's devices share one memory, an accelerator's not
        footprint = analysis.temp_size_in_bytes + analysis.output_size_in_bytes + analysis.argument_size_in_bytes
        per_chain = max(footprint / (candidate // num_devices if jax.default_backend() == "cpu" else candidate), 1.0)
    fits = int(budget // per_chain) // num_devices * num_devices
    return balanced_chunk(total, max(num_devices, min(padded, fits, _round_up(MAX_CHUNK, num_devices))), num_devices)


def balanced_chunk(lanes: int, largest: int, num_devices: int) -> int:
    """The smallest chunk (a multiple of the device count) that covers `lanes` in as few chunks as chunks
    of `largest` would: 100 lanes in chunks of at most 88 run as 2 x 50, not 2 x 88 (76 padded lanes)."""
    count = -(-lanes // largest)
    return _round_up(-(-lanes // count), num_devices)


@dataclasses.dataclass
class PreparedRun:
    """A validated, compiled program with its cell table. Compiling can happen in another thread."""

    spec: ChainSpec
    program: _ChunkProgram
    cells: Cells
    selected: tuple[int, ...]
    table: tuple
    chunk: int
    quantile_chains: int
    compile_seconds: float  # tracing (validation, memory estimate) and compiling, or loading from the cache


def _cell_table(cells: Cells, mesh) -> tuple:
    """Replicated device arrays: seeds `(n,)` uint32 and each traced hyperparameter `(n,)`."""
    sharding = parallel.replicated(mesh)
    dtype = jnp.result_type(float)
    seeds = parallel.put_global(np.asarray(cells.seeds, np.uint32), sharding)
    hyper = {name: parallel.put_global(np.asarray(values, dtype), sharding) for name, values in cells.hyper.items()}
    return seeds, hyper


def _example_sizes(setting_fn: Callable[[dict], Setting], hyper: dict, spec: ChainSpec) -> tuple[float, float, float]:
    """Validate the spec against the first cell's setting; `(bytes_hint, least, working_set)` of one chain.

    The setting is built under `jax.eval_shape` from the concrete `hyper`: its checks of plain values raise
    before anything compiles, and its arrays are traced, not computed (no small program per primitive).
    """
    sizes = []

    def inspect():
        example = setting_fn(hyper)
        make_chain_fn(example, spec)  # validates the spec against the estimator before anything compiles
        sizes.extend((chain_bytes_estimate(example, spec), chain_bytes_estimate(example, spec, safety=1.0)))
        sizes.append(chain_working_set_bytes(example, spec))

    with EAGER_LOCK:
        jax.eval_shape(inspect)
    return tuple(float(size) for size in sizes)


def prepare_program(
    setting_fn: Callable[[dict], Setting],
    spec: ChainSpec,
    cells: Cells,
    *,
    selected=None,
    chunk_size: int | None = None,
    devices=None,
    quantile_chains: int = 10_000,
) -> PreparedRun:
    """Validate, choose the chunk size and compile the program of a cell table.

    Args:
      setting_fn: `hyper -> Setting`; called with concrete values (to validate and size) and with traced
        ones (inside the program). Its hyperparameters must not change shapes.
      spec: the static chain configuration shared by all cells.
      cells: seeds, chain counts and hyperparameter values.
      selected: indices of the cells to run (default: all); lanes and chunks still cover every cell, so
        a subset reuses the same program and gives bit-identical results for the cells it runs (chunks
        holding none of them are skipped).
      chunk_size: lanes per compiled call (rounded up to a multiple of the device count); default:
        sized from the compiled program's memory footprint and the free memory.
      devices: devices to shard lanes over (default: every device of every process).
      quantile_chains: quantiles are computed from chains 0..quantile_chains-1 of each cell.
    """
    validate_cells(cells)
    if chunk_size is not None and not _is_count(chunk_size):
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    if not _is_count(quantile_chains):
        raise ValueError(f"quantile_chains must be an integer >= 1, got {quantile_chains!r}")
    chunk_size = None if chunk_size is None else int(chunk_size)
    quantile_chains = int(quantile_chains)
    selected = tuple(range(len(cells))) if selected is None else tuple(int(i) for i in selected)
    if not selected or any(not 0 <= i < len(cells) for i in selected):
        raise ValueError(f"selected must be a non-empty list of cell indices in [0, {len(cells)}), got {selected!r}")
    start = time.perf_counter()  # compile_seconds: tracing (the example, the memory estimate) and compiling
    bytes_hint, least, working_set = _example_sizes(setting_fn, cells.hyper_of(0), spec)
    mesh = parallel.chain_mesh(devices)
    free = parallel.available_memory_bytes(mesh.devices.flat[0])
    if least > free:  # not even one chain per device fits: refuse before compiling
        raise ValueError(
            f"one chain needs at least {least / 2**30:.3g} GiB (samples {spec.samples}, generations "
            f"{spec.num_generations}, policy {spec.policy}), more than the {free / 2**30:.3g} GiB free on "
            f"{mesh.devices.flat[0].device_kind}: reduce samples (--samples), generations (--generations) or the "
            "setting's sizes"
        )
    num_devices = mesh.devices.size
    program = _ChunkProgram(make_lane_fn(setting_fn, spec), mesh, len(cells))
    table = _cell_table(cells, mesh)
    num_lanes = sum(cells.num_chains)
    if chunk_size is None:
        chunk = auto_chunk_size(program, table, num_lanes, num_devices, bytes_hint, working_set)
    else:
        chunk = _round_up(min(chunk_size, num_lanes), num_devices)
    program.compiled(table, chunk, True)
    return PreparedRun(spec, program, cells, selected, table, chunk, quantile_chains, time.perf_counter() - start)


class _CellAccumulator:
    """Streaming statistics, quantile reservoir and (optionally) saved histories of one cell."""

    def __init__(self, num_points: int, num_chains: int, quantile_chains: int):
        self.num_points = num_points
        self.num_chains = num_chains
        self.quantile_chains = min(quantile_chains, num_chains)
        self.moments: dict[str, StreamingMoments] = {}
        self.reservoir: dict[str, list] = {}
        self.saved: dict[str, list] = {}
        self.started = time.perf_counter()

    def merge(self, name: str, parts) -> None:
        self.moments.setdefault(name, StreamingMoments(self.num_points)).merge_parts(*parts)

    def keep(self, name: str, values: np.ndarray, chain_ids: np.ndarray, save: bool) -> None:
        reservoir = values[chain_ids < self.quantile_chains]
        if len(reservoir):
            self.reservoir.setdefault(name, []).append(reservoir)
        if save:
            self.saved.setdefault(name, []).append(values)


def execute_cells(
    prepared: PreparedRun,
    *,
    save_chains: bool = False,
    progress: Callable[[int, int], None] | None = None,
    on_cell: Callable[[int, RunResult], Any] | None = None,
) -> dict[int, RunResult]:
    """Run the selected cells of a prepared program chunk by chunk.

    Per-device partial statistics are merged per cell as chunks arrive; as soon as a cell's last lane has
    run, its `RunResult` is built and passed to `on_cell(cell_index, result)` (e.g. to write it), so a
    run killed later loses nothing that was handed over. Returns {cell index: RunResult}.
    """
    program, cells, chunk, table = prepared.program, prepared.cells, prepared.chunk, prepared.table
    lanes = _Lanes(cells)
    selected = np.zeros(len(cells), bool)
    selected[list(prepared.selected)] = True
    num_points = prepared.spec.num_generations + 1
    sharding = parallel.chain_sharding(program.mesh)
    accumulators: dict[int, _CellAccumulator] = {}
    results: dict[int, RunResult] = {}
    handed = 0  # cells 0..handed-1 are finished or not selected
    todo = sum(cells.num_chains[i] for i in prepared.selected)
    done = 0
    for first in range(0, lanes.total, chunk):
        cell, chain_ids, valid = lanes.chunk(first, chunk)
        present = [int(i) for i in np.unique(cell[valid]) if selected[i]]
        if not present:
            continue
        for index in present:
            if index not in accumulators:
                accumulators[index] = _CellAccumulator(num_points, cells.num_chains[index], prepared.quantile_chains)
        wanted = valid & selected[cell]
        with_history = save_chains or bool(np.any(wanted & (chain_ids < prepared.quantile_chains)))
        inputs = [parallel.put_global(array, sharding) for array in (cell, chain_ids, valid)]
        output = program.compiled(table, chunk, with_history)(*table, *inputs)
        reduced, history = output if with_history else (output, None)
        reduced = parallel.fetch(reduced)
        history = parallel.fetch(history) if history is not None else None
        for name, parts in reduced.items():
            for index in present:
                accumulators[index].merge(name, [np.asarray(part)[:, index] for part in parts])
        if history is not None:
            for index in present:
                rows = valid & (cell == index)
                for name, values in history.items():
                    accumulators[index].keep(name, np.asarray(values)[rows], chain_ids[rows], save_chains)
        end = min(first + chunk, lanes.total)
        while handed < len(cells) and lanes.last_lane(handed) < end:
            if selected[handed]:
                results[handed] = _cell_result(accumulators.pop(handed), prepared)
                if on_cell is not None:
                    on_cell(handed, results[handed])
            handed += 1
        done += int(np.sum(wanted))
        if progress is not None:
            progress(done, todo)
    return results


def _cell_result(acc: _CellAccumulator, prepared: PreparedRun) -> RunResult:
    mesh = prepared.program.mesh
    return RunResult(
        generations=np.arange(acc.num_points),
        moments=acc.moments,
        quantiles={name: quantiles(np.concatenate(parts)) for name, parts in acc.reservoir.items()},
        quantile_chains=acc.quantile_chains,
        chains={name: np.concatenate(parts) for name, parts in acc.saved.items()} if acc.saved else None,
        num_chains=acc.num_chains,
        chunk_size=prepared.chunk,
        num_devices=mesh.devices.size,
        device=parallel.device_description(mesh.devices.flat),
        compile_seconds=prepared.compile_seconds,
        run_seconds=time.perf_counter() - acc.started,
    )


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
    """Validate and compile a single run (one cell; see `run_chains`)."""
    if not _is_count(num_chains) or num_chains > MAX_CHAINS:
        raise ValueError(f"num_chains must be an integer in [1, 2**32] (chain ids are 32-bit), got {num_chains!r}")
    return prepare_program(
        lambda hyper: setting,
        spec,
        Cells((seed,), (int(num_chains),)),
        chunk_size=chunk_size,
        devices=devices,
        quantile_chains=quantile_chains,
    )


def execute(
    prepared: PreparedRun, *, save_chains: bool = False, progress: Callable[[int, int], None] | None = None
) -> RunResult:
    """Run a prepared single run and return its result."""
    (result,) = execute_cells(prepared, save_chains=save_chains, progress=progress).values()
    return result


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
      devices: devices to shard chains over (default: every device).
      save_chains: also return per-chain histories `(num_chains, G + 1)` per metric.
      quantile_chains: quantiles are computed from chains 0..quantile_chains-1.
      progress: called as progress(chains_done, num_chains) after each chunk.
    """
    prepared = prepare_chains(
        setting,
        spec,
        seed=seed,
        num_chains=num_chains,
        chunk_size=chunk_size,
        devices=devices,
        quantile_chains=quantile_chains,
    )
    return execute(prepared, save_chains=save_chains, progress=progress)
