"""Running a sweep: `run_sweep` takes the run's lock, opens the folder, skips finished cells, compiles
each program group ahead in a background thread, runs it under the group's lock and writes every cell
as it finishes; `SweepReport` is what a run did."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from collapse_jax.settings import get_setting
from collapse_jax.sweep.cell_files import cell_paths, check_cell, write_cell
from collapse_jax.sweep.folder import open_directory
from collapse_jax.sweep.locks import SweepBusy, SweepLock, lock_name, say
from collapse_jax.sweep.plan import group_id, parse_shard, shard_groups, shard_text
from collapse_jax.sweep.progress import SweepProgress
from collapse_jax.sweep.spec import Cell, SweepSpec, expand, spec_and_folder


@dataclasses.dataclass
class SweepReport:
    """What a call to `run_sweep` did."""

    out: str
    cells: int
    skipped: int
    ran: int
    programs: int
    seconds: float
    comparisons: dict  # status -> count over (cell, metric) pairs that ran now; "with non-finite chains":
    # pairs that did not fail yet had chains that were not finite (no theory to fail them) and not exact infinities
    damaged: int = 0  # finished cells whose files were damaged, run again
    compile_seconds: float = 0.0  # preparing (tracing and compiling, or loading from the cache) every program
    cache_hits: int = 0  # programs loaded from the persistent compilation cache instead of compiled
    cache_requests: int = 0  # programs looked up in that cache (0 when it is off)
    shard: str | None = None  # "i/N" of this run; None: every cell (`cells` and `programs` count this shard's)
    sweep_cells: int = 0  # cells of the whole sweep
    busy_programs: int = 0  # program groups left to another process that was running them
    written: list = dataclasses.field(default_factory=list)  # ids of the cells this process wrote, in order


def _label(group: list[Cell], spec: SweepSpec) -> str:
    shared = [k for k in spec.axes if len({json.dumps(c.values[k]) for c in group}) == 1]
    return " ".join(f"{k}={group[0].values[k]}" for k in shared) or spec.name


def run_sweep(
    spec,
    out: str | None = None,
    *,
    resume: bool = False,
    progress: str | bool = "auto",
    devices=None,
    lookahead: int = 2,
    shard=None,
) -> SweepReport:
    """Run (or resume) a sweep and write its cells under `out`.

    Args:
      spec: a `SweepSpec`, a dict in the spec format, or the path of a TOML spec.
      out: output directory (default: `sweeps/<name>`).
      resume: continue the sweep already in `out` (same spec), skipping finished cells.
      progress: "auto" (bars on a terminal, lines otherwise), "bar", "lines", or False/"quiet".
      devices: devices to shard chains over (default: every device of every process).
      lookahead: programs compiled ahead, each in its own background thread, while the current one runs
        (compiling is single-threaded: two at once keep both cores of a small machine busy while short
        programs run).
      shard: `"i/N"` or `(i, N)`: run only the i-th (0-based) of N disjoint sets of whole program
        groups (`assign_shards`), as one of N independent processes filling `out`; a shard joins the
        manifest already there (same spec) as a resume does, and skips finished cells.

    Everything is validated before anything compiles. Only process 0 writes (multi-host runs); it
    holds the run's lock (`sweep.lock`, or `sweep.shard-i-of-N.lock`) for the whole run: a second run of
    the same shard into `out` raises `SweepBusy`. A resume checks every finished cell's files and runs
    a damaged cell again.
    """
    from collapse_jax import parallel

    spec, out = spec_and_folder(spec, out)
    shard = parse_shard(shard)
    cells = expand(spec)
    writer = parallel.is_writer()
    lock = None
    if writer and shard is None:
        lock = SweepLock.acquire(out)
    elif writer:
        lock = SweepLock.acquire(
            out,
            lock_name(shard),
            subject=f"shard {shard_text(shard)} of {out}",
            advice="two runs of one shard must not run at once: wait for it to finish, or run another shard",
        )
    try:
        return _run_locked(spec, cells, out, resume, writer, progress, devices, lookahead, shard)
    finally:
        if lock is not None:
            lock.release()


def _group_lock(out: str, group: list[Cell]) -> SweepLock | None:
    """The lock of one program group (`locks/<group id>.lock`), or None when another process holds it."""
    try:
        return SweepLock.acquire(
            out,
            os.path.join("locks", group_id(group) + ".lock"),
            subject=f"program group {group_id(group)} of {out}",
            advice="its cells are left to that run",
        )
    except SweepBusy as busy:
        say(str(busy).removeprefix("out: "))
        return None


def _clear_group(out: str, group: list[Cell], todo: list[Cell]) -> None:
    """Before a group runs (its writer holds the locks): remove what killed or damaged runs left of the
    cells it will write: temporary files, and the files of cells whose check failed."""
    directory = os.path.join(out, "cells")
    ends = tuple(f"{c.id}.{kind}" for c in group for kind in ("npz", "json"))
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        if name.startswith(".tmp-") and name.endswith(ends):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass
    for cell in todo:
        for path in cell_paths(out, cell)[::-1]:  # the JSON mark first
            if os.path.exists(path):
                os.unlink(path)


def _run_locked(spec, cells, out, resume, writer, progress, devices, lookahead, shard=None) -> SweepReport:
    from concurrent.futures import ThreadPoolExecutor

    import jax

    from collapse_jax import parallel
    from collapse_jax.runner import EAGER_LOCK, Cells, execute_cells, prepare_program
    from collapse_jax.simulate import predictions_for

    fresh = open_directory(out, spec, cells, resume, writer, shard)
    mine = shard_groups(spec, cells, shard)
    finished, damaged = set(), 0
    for cell in () if fresh else (c for g in mine for c in g):  # a joined folder is checked file by file
        state = check_cell(out, cell)
        if state == "finished":
            finished.add(cell.id)
        elif state is not None:  # its files are removed when its group runs (under the group's lock)
            damaged += 1
            where = ", ".join(f"{k}={v}" for k, v in cell.values.items()) or "the only cell"
            say(f"{out}: cell {cell.id} ({where}) is damaged: {state}; running it again")
    # float64 exactly when a cell asks (a spec mixing x64 values runs all its cells with x64 on)
    jax.config.update("jax_enable_x64", any(cell.config["x64"] for cell in cells))
    groups = [g for g in mine if any(c.id not in finished for c in g)]
    definition = get_setting(spec.setting)
    mode = {True: "auto", False: "quiet"}.get(progress, progress)
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    bar = SweepProgress(sum(1 for g in groups for c in g if c.id not in finished), mode)
    comparisons: dict[str, int] = {}
    compile_seconds = 0.0
    written: list[str] = []
    ran, busy, programs = 0, 0, 0
    # Group locks keep runs of different shard counts (or an unsharded run beside shards) off each other's
    # groups. A multi-process run takes none: its processes must agree on every group they run.
    group_locks = writer and jax.process_count() == 1
    start = time.perf_counter()

    def prepare(group):
        setting_fn, chain_spec = definition.program(group[0].config)
        traced = definition.traced_for(group[0].config)
        table = Cells(
            tuple(c.config["seed"] for c in group),
            tuple(c.config["chains"] for c in group),
            {name: tuple(c.config[name] for c in group) for name in traced},
        )
        todo = [i for i, c in enumerate(group) if c.id not in finished]
        first = group[0].config
        return prepare_program(
            setting_fn,
            chain_spec,
            table,
            selected=todo,
            chunk_size=first["chunk_size"] or None,
            devices=devices,
            quantile_chains=first["quantile_chains"],
        )

    counter = parallel.CompilationCounter()
    try:
        with counter, ThreadPoolExecutor(max_workers=max(1, lookahead)) as pool:
            pending = [pool.submit(prepare, g) for g in groups[: 1 + lookahead]]
            for number, group in enumerate(groups):
                prepared = pending.pop(0).result()
                if number + 1 + lookahead < len(groups):
                    pending.append(pool.submit(prepare, groups[number + 1 + lookahead]))
                group_lock = _group_lock(out, group) if group_locks else None
                if group_locks and group_lock is None:
                    busy += 1
                    continue
                try:
                    todo = [c for c in group if c.id not in finished]
                    # finished since the scan by a run of another shard count (it held this group's lock)
                    elsewhere = {c.id for c in todo if group_locks and check_cell(out, c) == "finished"}
                    if writer:
                        _clear_group(out, group, [c for c in todo if c.id not in elsewhere])
                    if len(elsewhere) == len(todo):
                        continue
                    label = _label(group, spec)
                    bar.start_program(label, sum(group[i].config["chains"] for i in prepared.selected))
                    group_start = time.perf_counter()

                    def on_cell(index, result, group=group, elsewhere=elsewhere):
                        nonlocal ran
                        cell = group[index]
                        if cell.id in elsewhere:
                            return
                        ran += 1
                        if writer:
                            with EAGER_LOCK:
                                predictions = predictions_for(spec.setting, cell.config)
                            summary = write_cell(out, spec, cell, result, predictions, shard)
                            written.append(cell.id)
                            for entry in summary["metrics"].values():
                                verdict = entry["comparison"]  # compared once, when the summary was built
                                comparisons[verdict["status"]] = comparisons.get(verdict["status"], 0) + 1
                                if verdict["status"] != "fail" and verdict.get("nonfinite_chains_max"):
                                    # chains neither finite nor an exact infinity, where no theory could fail them
                                    comparisons["with non-finite chains"] = (
                                        comparisons.get("with non-finite chains", 0) + 1
                                    )
                        bar.cell_done()

                    execute_cells(prepared, save_chains=spec.save_chains, progress=bar.chains, on_cell=on_cell)
                    programs += 1
                    compile_seconds += prepared.compile_seconds
                    bar.program_done(
                        label, len(prepared.selected), time.perf_counter() - group_start, prepared.compile_seconds
                    )
                finally:
                    if group_lock is not None:
                        group_lock.release()
    finally:
        bar.close()
    return SweepReport(
        out,
        sum(len(g) for g in mine),
        len(finished),
        ran,
        programs,
        time.perf_counter() - start,
        comparisons,
        damaged,
        compile_seconds,
        counter.cache_hits,
        counter.requests,
        shard_text(shard),
        len(cells),
        busy,
        written,
    )
