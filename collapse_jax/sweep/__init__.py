"""Sweeps: grids of runs of one setting, compiled into few programs, resumable cell by cell.

A spec (TOML, parsed with `tomllib`: nothing in it is executed) names a registered setting, fixed
parameters and axes:

    setting = "gaussian"
    name = "collapse-or-thrive"          # optional (default: the file's stem)
    save_chains = false                  # optional: also store per-chain histories per cell

    [fixed]
    generations = 100
    chains = 100
    ddof = 0

    [axes]
    dim = [1, 3, 10, 31, 100]
    samples = [10, 32, 100, 316, 1000]
    policy = ["replace", "accumulate", "accumulate-subsample"]

Cells are the Cartesian product of the axes (in the order written). Cells that differ only in
*shape-free* values (the setting's traced parameters, `seed`, `chains`, and the sample size M on the
exact sufficient-statistic path) share one compiled program
and run as lanes of one vmapped batch; every other axis (d, M, T, policy, ...) selects a program.
Every chain i of a cell uses the key of (seed, chain i), whatever the cell's traced values: common
random numbers along a curve.

On disk (`out/`): `manifest.json` (the spec and every cell with its stable id), and per finished cell
`cells/<id>.npz` (arrays) then `cells/<id>.json` (the cell's summary: config, seed, chain range, JAX
version, devices, git commit, theory, the shard that wrote it, and the size and SHA-256 of its NPZ),
each written through a temporary file and an atomic rename. The JSON is the completion mark: a re-run
with `resume=True` skips every cell whose JSON is there and whose NPZ matches it, so a sweep killed at
any point loses no finished cell; a damaged cell is run again (and said so).

A cell's id hashes the setting's name, an id schema (`ID_SCHEMA`) and only the values of its resolved
config that differ from the parameters' declared defaults (never `chunk_size`, which changes no
result): a parameter added later with a default that keeps today's behaviour leaves every id as it
was. Folders written under the previous rule (a hash of the whole config; manifest schema
`collapse-jax/sweep/1`) are migrated when a run joins them: each finished cell whose recorded config
is this cell's is renamed to its new id, then the manifest is rewritten.

Shards: `shard=(i, N)` (`--shard i/N`, 0-based) runs the i-th of N disjoint parts of the cells, so N
independent processes fill one folder. A part is a set of whole program groups (no two shards compile
the same program), chosen from the spec alone (`assign_shards`), so every process agrees without
talking to the others. The first process to arrive creates the manifest (a hard link of a complete
temporary file: never half-written, never replaced); the others join it when their spec is the same
and stop with an error naming the difference otherwise.

Locks: an unsharded run holds `sweep.lock`, shard i of N holds `sweep.shard-i-of-N.lock` (its pid, host,
start time and command line) under an exclusive `flock` for the whole run; a second run of the same
shard (or a second unsharded run) is refused, naming the holder. Each program group is run under its
own lock, `locks/<group id>.lock`, so runs with different shard counts (or an unsharded run beside
shards) never write one cell twice: a group another process is running is left to it. The kernel drops
a `flock` when its holder dies (even by SIGKILL), so the lock of a run that is gone is taken over, with
a message. Where the file system has no `flock`, lock files are created exclusively (O_CREAT | O_EXCL)
and one left by a dead pid on this host is taken over.
"""

from collapse_jax.sweep.cell_files import check_cell, is_finished
from collapse_jax.sweep.execute import SweepReport, run_sweep
from collapse_jax.sweep.locks import LOCK_NAME, SweepBusy
from collapse_jax.sweep.plan import MAX_SHARDS, assign_shards, group_cells, group_id, parse_shard, shard_groups
from collapse_jax.sweep.spec import (
    ID_SCHEMA,
    LEGACY_SCHEMAS,
    NOT_AN_AXIS,
    SPEC_KEYS,
    SWEEP_SCHEMA,
    Cell,
    SweepSpec,
    cell_id,
    expand,
    legacy_cell_id,
    load_spec,
    parse_spec,
)
from collapse_jax.sweep.status import SweepStatus, sweep_status

__all__ = [
    "ID_SCHEMA",
    "LEGACY_SCHEMAS",
    "LOCK_NAME",
    "MAX_SHARDS",
    "NOT_AN_AXIS",
    "SPEC_KEYS",
    "SWEEP_SCHEMA",
    "Cell",
    "SweepBusy",
    "SweepReport",
    "SweepSpec",
    "SweepStatus",
    "assign_shards",
    "cell_id",
    "check_cell",
    "expand",
    "group_cells",
    "group_id",
    "is_finished",
    "legacy_cell_id",
    "load_spec",
    "parse_shard",
    "parse_spec",
    "run_sweep",
    "shard_groups",
    "sweep_status",
]
