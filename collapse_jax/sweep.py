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

On disk (`out/`): `manifest.json` (the spec and every cell with a stable id, the hash of its
setting and full config), and per finished cell `cells/<id>.npz` (arrays) then `cells/<id>.json` (the
cell's summary: config, seed, chain range, JAX version, devices, git commit, theory), each written
through a temporary file and an atomic rename. The JSON is the completion mark: a re-run with
`resume=True` skips every cell that has it, so a sweep killed at any point loses no finished cell.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import itertools
import json
import os
import sys
import time
import tomllib
from typing import Any

import numpy as np

from collapse_jax.settings import RUN_PARAMETERS, get_setting, SETTINGS

SWEEP_SCHEMA = "collapse-jax/sweep/1"
SPEC_KEYS = ("setting", "name", "description", "save_chains", "fixed", "axes")
NOT_AN_AXIS = tuple(p.name for p in RUN_PARAMETERS)
_NPZ_FIELDS = ("mean", "se", "std", "finite_chains", "nonfinite_chains")


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep. `axes` keeps the written order; `cells` are full configs."""

    setting: str
    name: str
    fixed: dict
    axes: dict
    save_chains: bool
    description: str = ""

    def as_dict(self) -> dict:
        return {"setting": self.setting, "name": self.name, "description": self.description,
                "save_chains": self.save_chains, "fixed": self.fixed, "axes": self.axes}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of a sweep: its position on the axes, its full config and its stable id."""

    id: str
    index: tuple[int, ...]
    values: dict
    config: dict


def load_spec(path: str) -> SweepSpec:
    """Parse and validate a TOML spec file (see the module docstring)."""
    with open(path, "rb") as stream:
        try:
            raw = tomllib.load(stream)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: not valid TOML: {error}") from None
    raw.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    return parse_spec(raw)


def parse_spec(raw: dict) -> SweepSpec:
    """Validate a spec given as a dict; errors name the offending key (e.g. `axes.dim[2]`)."""
    if not isinstance(raw, dict):
        raise ValueError(f"a sweep spec must be a table, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key in the spec (allowed: {', '.join(SPEC_KEYS)})")
    if "setting" not in raw:
        raise ValueError(f"setting: missing; name one of {', '.join(SETTINGS)}")
    setting = raw["setting"]
    if setting not in SETTINGS:
        raise ValueError(f"setting: must be one of {', '.join(SETTINGS)}; got {setting!r}")
    definition = get_setting(setting)
    known = {p.name: p for p in definition.all_parameters}
    fixed, axes = raw.get("fixed", {}), raw.get("axes", {})
    for section, table in (("fixed", fixed), ("axes", axes)):
        if not isinstance(table, dict):
            raise ValueError(f"{section}: must be a table of parameter = value")
        for key in table:
            if key not in known:
                raise ValueError(f"{section}.{key}: unknown parameter of setting {setting!r} "
                                 f"(known: {', '.join(known)})")
    checked_fixed = {}
    for key, value in fixed.items():
        try:
            checked_fixed[key] = _plain(known[key].check(value))
        except ValueError as error:
            raise ValueError(f"fixed.{key}: {error}") from None
    checked_axes = {}
    for key, values in axes.items():
        if key in fixed:
            raise ValueError(f"axes.{key}: also given in [fixed]; a parameter is either fixed or an axis")
        if key in NOT_AN_AXIS:
            raise ValueError(f"axes.{key}: a run option, not an axis; put it in [fixed]")
        if not isinstance(values, list) or not values:
            raise ValueError(f"axes.{key}: must be a non-empty list of values, got {values!r}")
        checked = []
        for i, value in enumerate(values):
            try:
                checked.append(_plain(known[key].check(value)))
            except ValueError as error:
                raise ValueError(f"axes.{key}[{i}]: {error}") from None
        if len({json.dumps(v) for v in checked}) != len(checked):
            raise ValueError(f"axes.{key}: repeated values {checked!r}")
        checked_axes[key] = checked
    name = raw.get("name", setting)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: must be a non-empty string, got {name!r}")
    save_chains = raw.get("save_chains", False)
    if not isinstance(save_chains, bool):
        raise ValueError(f"save_chains: must be true or false, got {save_chains!r}")
    spec = SweepSpec(setting, name, checked_fixed, checked_axes, save_chains, str(raw.get("description", "")))
    expand(spec)  # every cell must resolve: errors name the cell before anything runs
    return spec


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def cell_id(setting: str, config: dict) -> str:
    """Stable id: a hash of the setting and the full config (chunk size excluded: it changes no result)."""
    identity = {k: _plain(v) for k, v in config.items() if k != "chunk_size"}
    text = json.dumps({"setting": setting, "config": identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def expand(spec: SweepSpec) -> list[Cell]:
    """Every cell of a spec, in axis order, each resolved (validated) by its setting."""
    definition = get_setting(spec.setting)
    names = list(spec.axes)
    cells = []
    for index in itertools.product(*(range(len(spec.axes[n])) for n in names)):
        values = {n: spec.axes[n][i] for n, i in zip(names, index)}
        try:
            config = definition.resolve({**spec.fixed, **values})
        except ValueError as error:
            where = ", ".join(f"{n}={v}" for n, v in values.items()) or "the only cell"
            raise ValueError(f"cell ({where}): {error}") from None
        cells.append(Cell(cell_id(spec.setting, config), tuple(index), values, config))
    return cells


def group_cells(spec: SweepSpec, cells: list[Cell]) -> list[list[Cell]]:
    """Cells that share one compiled program (equal in everything but shape-free values), in order."""
    definition = get_setting(spec.setting)
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(definition.program_key(cell.config), []).append(cell)
    return list(groups.values())


# ----------------------------------------------------------------------------------------------- files


def _cell_paths(out: str, cell: Cell) -> tuple[str, str]:
    base = os.path.join(out, "cells", cell.id)
    return base + ".npz", base + ".json"


def is_finished(out: str, cell: Cell) -> bool:
    """A cell is finished when its JSON (written last) and NPZ both exist and the JSON parses."""
    npz, js = _cell_paths(out, cell)
    if not (os.path.exists(npz) and os.path.exists(js)):
        return False
    try:
        with open(js) as stream:
            return json.load(stream).get("cell", {}).get("id") == cell.id
    except (OSError, ValueError):
        return False


def _manifest(spec: SweepSpec, cells: list[Cell]) -> dict:
    return {
        "schema": SWEEP_SCHEMA,
        "spec": spec.as_dict(),
        "axes": spec.axes,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cells": [{"id": c.id, "index": list(c.index), "values": c.values} for c in cells],
    }


def _open_directory(out: str, spec: SweepSpec, cells: list[Cell], resume: bool, writer: bool) -> None:
    from collapse_jax.summary import write_atomic

    path = os.path.join(out, "manifest.json")
    if os.path.exists(path):
        if not resume:
            raise ValueError(f"out: {out} already holds a sweep (manifest.json); pass --resume (resume=True) "
                             "to continue it, skipping finished cells, or choose another --out")
        with open(path) as stream:
            existing = json.load(stream)
        if existing.get("spec") != json.loads(json.dumps(spec.as_dict())):
            raise ValueError(f"out: the sweep in {out} was made from a different spec; "
                             "resume it with the same spec or choose another --out")
        if writer:
            for name in os.listdir(os.path.join(out, "cells")) if os.path.isdir(os.path.join(out, "cells")) else []:
                if name.startswith(".tmp-"):  # left by a killed writer; never a result
                    os.unlink(os.path.join(out, "cells", name))
        return
    if writer:
        os.makedirs(os.path.join(out, "cells"), exist_ok=True)
        text = json.dumps(_manifest(spec, cells), indent=1)
        write_atomic(path, lambda stream: stream.write(text.encode()))


def _write_cell(out: str, spec: SweepSpec, cell: Cell, result, predictions: dict) -> dict:
    from collapse_jax.summary import build_summary, write_atomic, write_summary

    summary = build_summary(spec.setting, cell.config, result, predictions)
    summary["cell"] = {"id": cell.id, "index": list(cell.index), "values": cell.values, "sweep": spec.name}
    summary["chain_range"] = [0, result.num_chains]
    arrays = {"generations": np.asarray(result.generations)}
    for name, entry in summary["metrics"].items():
        for field in _NPZ_FIELDS:
            arrays[f"{name}.{field}"] = _array(entry[field])
        arrays[f"{name}.theory"] = _array(entry["theory"])
        for level, values in entry["quantiles"].items():
            arrays[f"{name}.q{level}"] = _array(values)
        if result.chains is not None:
            arrays[f"{name}.chains"] = np.asarray(result.chains[name])
    npz, js = _cell_paths(out, cell)
    write_atomic(npz, lambda stream: np.savez(stream, **arrays))
    write_summary(summary, js)
    return summary


def _array(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], np.float64)


# ---------------------------------------------------------------------------------------------- running


@dataclasses.dataclass
class SweepReport:
    """What a call to `run_sweep` did."""

    out: str
    cells: int
    skipped: int
    ran: int
    programs: int
    seconds: float
    comparisons: dict  # status -> count over (cell, metric) pairs that ran now


class _Progress:
    """Progress of a sweep: rich bars (cells overall with ETA, chains of the current program) on a
    terminal, one line per program otherwise, nothing when quiet."""

    def __init__(self, total_cells: int, mode: str):
        self.mode, self.total, self.done = mode, total_cells, 0
        self.bar = None
        if mode == "bar":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TimeRemainingColumn(), transient=True)
            self.bar.start()
            self.cells_task = self.bar.add_task("cells", total=total_cells)
            self.chains_task = self.bar.add_task("chains", total=1)

    def start_program(self, label: str, chains: int) -> None:
        if self.bar is not None:
            self.bar.reset(self.chains_task, total=chains, description=f"chains {label}")

    def chains(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.chains_task, completed=done)

    def cell_done(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.cells_task, completed=self.done)

    def program_done(self, label: str, cells: int, seconds: float) -> None:
        if self.mode == "lines":
            print(f"[{self.done}/{self.total} cells] {label}: {cells} cells in {seconds:.1f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _label(group: list[Cell], spec: SweepSpec) -> str:
    shared = [k for k in spec.axes if len({json.dumps(c.values[k]) for c in group}) == 1]
    return " ".join(f"{k}={group[0].values[k]}" for k in shared) or spec.name


def run_sweep(spec, out: str | None = None, *, resume: bool = False, progress: str | bool = "auto",
              devices=None, lookahead: int = 1) -> SweepReport:
    """Run (or resume) a sweep and write its cells under `out`.

    Args:
      spec: a `SweepSpec`, a dict in the spec format, or the path of a TOML spec.
      out: output directory (default: `sweeps/<name>`).
      resume: continue the sweep already in `out` (same spec), skipping finished cells.
      progress: "auto" (bars on a terminal, lines otherwise), "bar", "lines", or False/"quiet".
      devices: devices to shard chains over (default: every device of every process).
      lookahead: programs compiled ahead in a background thread while the current one runs.

    Everything is validated before anything compiles. Only process 0 writes (multi-host runs).
    """
    from concurrent.futures import ThreadPoolExecutor

    from collapse_jax import parallel
    from collapse_jax.runner import _EAGER_LOCK, Cells, execute_cells, prepare_program
    from collapse_jax.simulate import predictions_for
    from collapse_jax.summary import compare

    if isinstance(spec, str):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec)
    cells = expand(spec)
    out = out or os.path.join("sweeps", spec.name)
    writer = parallel.is_writer()
    _open_directory(out, spec, cells, resume, writer)
    if any(cell.config["x64"] for cell in cells):
        import jax

        jax.config.update("jax_enable_x64", True)
    finished = {cell.id for cell in cells if is_finished(out, cell)}
    groups = [g for g in group_cells(spec, cells) if any(c.id not in finished for c in g)]
    definition = get_setting(spec.setting)
    mode = {True: "auto", False: "quiet"}.get(progress, progress)
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    bar = _Progress(sum(1 for c in cells if c.id not in finished), mode)
    comparisons: dict[str, int] = {}
    start = time.perf_counter()

    def prepare(group):
        setting_fn, chain_spec = definition.program(group[0].config)
        traced = definition.traced_for(group[0].config)
        table = Cells(tuple(c.config["seed"] for c in group), tuple(c.config["chains"] for c in group),
                      {name: tuple(c.config[name] for c in group) for name in traced})
        todo = [i for i, c in enumerate(group) if c.id not in finished]
        first = group[0].config
        return prepare_program(setting_fn, chain_spec, table, selected=todo, chunk_size=first["chunk_size"] or None,
                               devices=devices, quantile_chains=first["quantile_chains"])

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = [pool.submit(prepare, g) for g in groups[: 1 + lookahead]]
            for number, group in enumerate(groups):
                prepared = pending.pop(0).result()
                if number + 1 + lookahead < len(groups):
                    pending.append(pool.submit(prepare, groups[number + 1 + lookahead]))
                label = _label(group, spec)
                bar.start_program(label, sum(group[i].config["chains"] for i in prepared.selected))
                group_start = time.perf_counter()

                def on_cell(index, result, group=group):
                    cell = group[index]
                    if writer:
                        with _EAGER_LOCK:
                            predictions = predictions_for(spec.setting, cell.config)
                        summary = _write_cell(out, spec, cell, result, predictions)
                        for entry in summary["metrics"].values():
                            status = compare(entry)["status"]
                            comparisons[status] = comparisons.get(status, 0) + 1
                    bar.cell_done()

                execute_cells(prepared, save_chains=spec.save_chains, progress=bar.chains, on_cell=on_cell)
                bar.program_done(label, len(prepared.selected), time.perf_counter() - group_start)
    finally:
        bar.close()
    ran = sum(1 for c in cells if c.id not in finished)
    return SweepReport(out, len(cells), len(finished), ran, len(groups), time.perf_counter() - start, comparisons)
