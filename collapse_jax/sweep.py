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
cell's summary: config, seed, chain range, JAX version, devices, git commit, theory, and the size and
SHA-256 of its NPZ), each written through a temporary file and an atomic rename. The JSON is the
completion mark: a re-run with `resume=True` skips every cell whose JSON is there and whose NPZ matches
it, so a sweep killed at any point loses no finished cell; a damaged cell is run again (and said so).

One run at a time per folder: the writing process holds `sweep.lock` (its pid, host, start time and
command line) under an exclusive `flock` for the whole run; a second run into the folder is refused,
naming the holder. The kernel drops the `flock` when its holder dies (even by SIGKILL), so the lock of a
run that is gone is taken over, with a message. Where the file system has no `flock`, the lock file is
created exclusively (O_CREAT | O_EXCL) and one left by a dead pid on this host is taken over.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import hashlib
import itertools
import json
import os
import socket
import sys
import time

import numpy as np
import tomllib

from collapse_jax.settings import RUN_PARAMETERS, SETTINGS, get_setting

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
        return {
            "setting": self.setting,
            "name": self.name,
            "description": self.description,
            "save_chains": self.save_chains,
            "fixed": self.fixed,
            "axes": self.axes,
        }


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of a sweep: its position on the axes, its full config and its stable id."""

    id: str
    index: tuple[int, ...]
    values: dict
    config: dict


def load_spec(path: str) -> SweepSpec:
    """Parse and validate a TOML spec file (see the module docstring)."""
    try:
        with open(path, "rb") as stream:
            raw = tomllib.load(stream)
    except FileNotFoundError:
        raise ValueError(f"spec: {path}: no such file") from None
    except OSError as error:
        raise ValueError(f"spec: cannot read {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not valid TOML: not UTF-8 text") from None
    raw.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    return parse_spec(raw)


_TOML_TYPES = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
)


def _got(value) -> str:
    """`value` and its TOML type, for error messages: `5 (an integer)`."""
    kind = next((name for t, name in _TOML_TYPES if isinstance(value, t)), type(value).__name__)
    return f"{value!r} ({kind})"


def _allowed(parameter) -> str:
    """What a parameter accepts, in TOML words."""
    choices = f" (one of {', '.join(map(str, parameter.choices))})" if parameter.choices else ""
    if parameter.kind is bool:
        return "true or false"
    if parameter.kind is int:
        return "an integer" + choices
    if parameter.kind is float:
        return "a number"
    if parameter.kind == "list":
        names = f" from {', '.join(parameter.choices)}" if parameter.choices else ""
        return f"an array of names{names} (or one comma-separated string)"
    return "a string" + choices


def _has_type(parameter, value) -> bool:
    if parameter.kind is bool:
        return isinstance(value, bool)
    if parameter.kind in (int, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if parameter.kind == "list":
        return isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value))
    return isinstance(value, str)


def _check_value(parameter, value, where: str):
    """The parameter's check, after a type check whose error names `where` and what is allowed."""
    if not _has_type(parameter, value):
        raise ValueError(f"{where}: must be {_allowed(parameter)}, got {_got(value)}")
    try:
        return _plain(parameter.check(value))
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


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
    if not isinstance(setting, str) or setting not in SETTINGS:
        raise ValueError(f"setting: must be a string, one of {', '.join(SETTINGS)}; got {_got(setting)}")
    for key, kind, allowed in (
        ("name", str, "a non-empty string"),
        ("description", str, "a string"),
        ("save_chains", bool, "true or false"),
    ):
        if key in raw and (not isinstance(raw[key], kind) or (key == "name" and not raw[key])):
            raise ValueError(f"{key}: must be {allowed}, got {_got(raw[key])}")
    definition = get_setting(setting)
    known = {p.name: p for p in definition.all_parameters}
    fixed, axes = raw.get("fixed", {}), raw.get("axes", {})
    for section, table in (("fixed", fixed), ("axes", axes)):
        if not isinstance(table, dict):
            what = "parameter = value" if section == "fixed" else "parameter = [values]"
            raise ValueError(f"{section}: must be a table of {what} ([{section}]), got {_got(table)}")
        for key in table:
            if key not in known:
                raise ValueError(
                    f"{section}.{key}: unknown parameter of setting {setting!r} (known: {', '.join(known)})"
                )
    checked_fixed = {key: _check_value(known[key], value, f"fixed.{key}") for key, value in fixed.items()}
    checked_axes = {}
    for key, values in axes.items():
        if key in fixed:
            raise ValueError(f"axes.{key}: also given in [fixed]; a parameter is either fixed or an axis")
        if key in NOT_AN_AXIS:
            raise ValueError(f"axes.{key}: a run option, not an axis; put it in [fixed]")
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"axes.{key}: must be a non-empty list of values (each {_allowed(known[key])}), got {_got(values)}"
            )
        checked = [_check_value(known[key], value, f"axes.{key}[{i}]") for i, value in enumerate(values)]
        if len({json.dumps(v) for v in checked}) != len(checked):
            raise ValueError(f"axes.{key}: repeated values {checked!r}")
        checked_axes[key] = checked
    name = raw.get("name", setting)
    save_chains = raw.get("save_chains", False)
    spec = SweepSpec(setting, name, checked_fixed, checked_axes, save_chains, raw.get("description", ""))
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


LOCK_NAME = "sweep.lock"
try:
    import fcntl

    _FLOCK = True
except ImportError:  # pragma: no cover - not POSIX
    _FLOCK = False


class SweepBusy(ValueError):
    """Another run holds the lock of the sweep folder."""


def _say(message: str) -> None:
    print(f"collapse-jax: {message}", file=sys.stderr, flush=True)


def _holder(info: dict | None) -> str:
    if not info:
        return "holder unknown: the lock file is empty or unreadable"
    text = f"pid {info.get('pid')} on host {info.get('host')}, since {info.get('started')}"
    return text + (f": {info['command']}" if info.get("command") else "")


def _parse_holder(data: bytes) -> dict | None:
    try:
        info = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


class _SweepLock:
    """The exclusive lock of a sweep folder: `out/sweep.lock`, held for a whole run (see the module
    docstring). `acquire` raises `SweepBusy` naming the folder and the holder."""

    def __init__(self, path: str, fd: int | None):
        self.path, self.fd = path, fd

    @classmethod
    def acquire(cls, out: str) -> _SweepLock:
        path = os.path.join(out, LOCK_NAME)
        if os.path.exists(out) and not os.path.isdir(out):
            raise ValueError(f"out: {out} is not a directory")
        try:
            os.makedirs(out, exist_ok=True)
            return cls._acquire(out, path)
        except OSError as error:
            raise ValueError(f"out: cannot lock {path}: {error.strerror or error}") from None

    @classmethod
    def _acquire(cls, out: str, path: str) -> _SweepLock:
        me = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv),
            }
        ).encode()
        if _FLOCK:
            for _ in range(100):
                try:
                    fd, created = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
                except FileExistsError:
                    fd, created = os.open(path, os.O_RDWR), False
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _parse_holder(os.pread(fd, 1 << 16, 0))
                    os.close(fd)
                    raise SweepBusy(
                        f"out: {out} is in use by another sweep run ({_holder(holder)}); two runs "
                        "must not write one folder: wait for it to finish or choose another --out"
                    ) from None
                except OSError as error:
                    os.close(fd)
                    if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                        raise
                    if created:
                        os.unlink(path)
                    break  # no flock on this file system: an exclusive create instead
                try:
                    try:  # a releasing holder unlinks the file: lock the file that is at `path` now
                        same = os.path.samestat(os.stat(path), os.fstat(fd))
                    except FileNotFoundError:
                        same = False
                    if not same:
                        os.close(fd)
                        continue
                    left = os.pread(fd, 1 << 16, 0)
                    if left:
                        _say(f"{out}: taking over the lock left by a run that is gone ({_holder(_parse_holder(left))})")
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, me, 0)
                    os.fsync(fd)
                except BaseException:
                    os.close(fd)
                    raise
                return cls(path, fd)
            else:
                raise SweepBusy(f"out: could not lock {path}: it keeps being replaced")
        for _ in range(100):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    with open(path, "rb") as stream:
                        holder = _parse_holder(stream.read())
                except FileNotFoundError:
                    continue
                if holder and holder.get("host") == socket.gethostname() and not _pid_alive(holder.get("pid")):
                    _say(f"{out}: taking over the lock left by a run that is gone ({_holder(holder)}: no such process)")
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                    continue
                raise SweepBusy(
                    f"out: {out} is in use by another sweep run ({_holder(holder)}); two runs must "
                    "not write one folder: wait for it to finish or choose another --out (if that run "
                    f"is gone, remove {path})"
                ) from None
            try:
                os.write(fd, me)
                os.fsync(fd)
            finally:
                os.close(fd)
            return cls(path, None)
        raise SweepBusy(f"out: could not lock {path}: it keeps being replaced")

    def release(self) -> None:
        try:
            os.unlink(self.path)  # before closing: a run waiting on this file then sees it is gone
        except FileNotFoundError:
            pass
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _cell_paths(out: str, cell: Cell) -> tuple[str, str]:
    base = os.path.join(out, "cells", cell.id)
    return base + ".npz", base + ".json"


def _file_record(path: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def check_cell(out: str, cell: Cell) -> str | None:
    """Whether a cell's files are whole. Returns "finished"; None where the cell has no JSON mark (not
    run, or killed before its end); else why the cell is damaged. The JSON must parse and name the cell;
    the NPZ must have the size and SHA-256 the JSON records (cells written before those were recorded:
    the NPZ must load, with every array of every metric)."""
    npz, js = _cell_paths(out, cell)
    if not os.path.exists(js):
        return None
    name = f"cells/{cell.id}"
    try:
        with open(js) as stream:
            summary = json.load(stream)
    except (OSError, ValueError) as error:
        return f"{name}.json does not load ({type(error).__name__})"
    if (
        not isinstance(summary, dict)
        or not isinstance(summary.get("cell"), dict)
        or summary["cell"].get("id") != cell.id
    ):
        return f"{name}.json is not this cell's record"
    if not os.path.exists(npz):
        return f"{name}.npz is missing"
    record = summary["cell"].get("npz")
    if isinstance(record, dict):
        size = os.path.getsize(npz)
        if size != record.get("bytes"):
            return f"{name}.npz has {size} bytes, {record.get('bytes')} recorded"
        if _file_record(npz)["sha256"] != record.get("sha256"):
            return f"{name}.npz does not match the SHA-256 in its record"
        return "finished"
    try:
        with np.load(npz, allow_pickle=False) as data:
            length = len(data["generations"])
            for metric in summary.get("metrics", {}):
                for field in _NPZ_FIELDS + ("theory",):
                    if data[f"{metric}.{field}"].shape != (length,):
                        return f"{name}.npz: {metric}.{field} has the wrong shape"
            [data[key] for key in data.files]  # reads (and CRC-checks) every array
    except Exception as error:  # a damaged zip raises many kinds of errors
        return f"{name}.npz does not load ({type(error).__name__}: {error})"
    return "finished"


def is_finished(out: str, cell: Cell) -> bool:
    """A cell is finished when its JSON mark is there and its NPZ is whole (`check_cell`)."""
    return check_cell(out, cell) == "finished"


def _manifest(spec: SweepSpec, cells: list[Cell]) -> dict:
    return {
        "schema": SWEEP_SCHEMA,
        "spec": spec.as_dict(),
        "axes": spec.axes,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cells": [{"id": c.id, "index": list(c.index), "values": c.values} for c in cells],
    }


def _read_manifest(path: str) -> dict:
    try:
        with open(path, "rb") as stream:
            manifest = json.loads(stream.read().decode())
    except OSError as error:
        raise ValueError(f"out: cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:  # also UnicodeDecodeError
        raise ValueError(f"out: {path} is not valid JSON ({error}); not a sweep manifest") from None
    if not isinstance(manifest, dict):
        raise ValueError(
            f"out: {path} is not a sweep manifest: a JSON object was expected, got {type(manifest).__name__}"
        )
    if manifest.get("schema") != SWEEP_SCHEMA or not isinstance(manifest.get("spec"), dict):
        raise ValueError(f"out: {path} is not a sweep manifest (schema {SWEEP_SCHEMA} with a spec)")
    return manifest


def _spec_differences(old: dict, new: dict) -> list[str]:
    found = []
    for key in SPEC_KEYS:
        a, b = old.get(key), new.get(key)
        if key in ("fixed", "axes") and isinstance(a, dict) and isinstance(b, dict):
            found += [
                f"{key}.{k} ({a.get(k, '-')!r} there, {b.get(k, '-')!r} here)"
                for k in list(a) + [k for k in b if k not in a]
                if a.get(k) != b.get(k)
            ]
        elif a != b:
            found.append(f"{key} ({a!r} there, {b!r} here)")
    return found


def _create_exclusive(path: str, text: str) -> None:
    """Write a whole file at `path` that must not exist yet (FileExistsError otherwise): a temporary
    file hard-linked into place, so it never appears half-written and never replaces another."""
    from collapse_jax.summary import write_atomic

    tmp = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.path.basename(path)}")
    write_atomic(tmp, lambda stream: stream.write(text.encode()))
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here: an exclusive create
        with open(path, "x") as stream:
            stream.write(text)
    finally:
        os.unlink(tmp)


def _open_directory(out: str, spec: SweepSpec, cells: list[Cell], resume: bool, writer: bool) -> None:
    """Check (and make) the sweep folder; the writer holds its lock."""
    path = os.path.join(out, "manifest.json")
    if os.path.exists(path):
        if not resume:
            raise ValueError(
                f"out: {out} already holds a sweep (manifest.json); pass --resume (resume=True) "
                "to continue it, skipping finished cells, or choose another --out"
            )
        existing = _read_manifest(path)
        differences = _spec_differences(existing["spec"], json.loads(json.dumps(spec.as_dict())))
        if differences:
            raise ValueError(
                f"out: the sweep in {out} was made from a different spec (name "
                f"{existing['spec'].get('name')!r}); it differs in {'; '.join(differences[:3])}"
                f"{'; ...' if len(differences) > 3 else ''}. Resume it with the same spec or choose "
                "another --out"
            )
        if writer:
            for directory in (out, os.path.join(out, "cells")):
                for name in os.listdir(directory) if os.path.isdir(directory) else []:
                    if name.startswith(".tmp-"):  # left by a killed writer (we hold the lock); never a result
                        os.unlink(os.path.join(directory, name))
        return
    if not writer:
        return
    if resume:
        _say(f"{out}: no sweep there yet (no manifest.json): starting a new sweep")
    os.makedirs(os.path.join(out, "cells"), exist_ok=True)
    try:
        _create_exclusive(path, json.dumps(_manifest(spec, cells), indent=1))
    except FileExistsError:
        raise SweepBusy(
            f"out: another run created {path} at the same time; two runs must not write one folder"
        ) from None


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
    summary["cell"]["npz"] = _file_record(npz)  # what a resume checks the NPZ against
    write_summary(summary, js)  # last: the completion mark
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
    comparisons: dict  # status -> count over (cell, metric) pairs that ran now; "with non-finite chains":
    # pairs that did not fail yet had chains that were not finite (no theory to fail them) and not exact infinities
    damaged: int = 0  # finished cells whose files were damaged, run again
    compile_seconds: float = 0.0  # preparing (tracing and compiling, or loading from the cache) every program
    cache_hits: int = 0  # programs loaded from the persistent compilation cache instead of compiled
    cache_requests: int = 0  # programs looked up in that cache (0 when it is off)


class _Progress:
    """Progress of a sweep: rich bars (cells overall with ETA, chains of the current program) on a
    terminal, one line per program otherwise, nothing when quiet."""

    def __init__(self, total_cells: int, mode: str):
        self.mode, self.total, self.done = mode, total_cells, 0
        self.bar = None
        if mode == "bar":
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
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

    def program_done(self, label: str, cells: int, seconds: float, compile_seconds: float) -> None:
        if self.mode == "lines":
            print(
                f"[{self.done}/{self.total} cells] {label}: {cells} cells in {seconds:.1f} s "
                f"(+{compile_seconds:.1f} s compile)",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


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
    lookahead: int = 1,
) -> SweepReport:
    """Run (or resume) a sweep and write its cells under `out`.

    Args:
      spec: a `SweepSpec`, a dict in the spec format, or the path of a TOML spec.
      out: output directory (default: `sweeps/<name>`).
      resume: continue the sweep already in `out` (same spec), skipping finished cells.
      progress: "auto" (bars on a terminal, lines otherwise), "bar", "lines", or False/"quiet".
      devices: devices to shard chains over (default: every device of every process).
      lookahead: programs compiled ahead in a background thread while the current one runs.

    Everything is validated before anything compiles. Only process 0 writes (multi-host runs); it
    holds the folder's lock (`sweep.lock`) for the whole run: a second run into `out` raises `SweepBusy`.
    A resume checks every finished cell's files and runs a damaged cell again.
    """
    from collapse_jax import parallel

    if isinstance(spec, str):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec)
    cells = expand(spec)
    if out is not None and not str(out).strip():
        raise ValueError("out (--out): must name a directory, got an empty path (omit it for sweeps/<name>)")
    out = out or os.path.join("sweeps", spec.name)
    writer = parallel.is_writer()
    lock = _SweepLock.acquire(out) if writer else None
    try:
        return _run_locked(spec, cells, out, resume, writer, progress, devices, lookahead)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(spec, cells, out, resume, writer, progress, devices, lookahead) -> SweepReport:
    from concurrent.futures import ThreadPoolExecutor

    from collapse_jax import parallel
    from collapse_jax.runner import _EAGER_LOCK, Cells, execute_cells, prepare_program
    from collapse_jax.simulate import predictions_for

    _open_directory(out, spec, cells, resume, writer)
    finished, damaged = set(), 0
    for cell in cells:  # a fresh folder has none; a resumed one is checked file by file
        state = check_cell(out, cell)
        if state == "finished":
            finished.add(cell.id)
        elif state is not None:
            damaged += 1
            if writer:  # unfinished from now on, for `load_sweep` too, until it is run again
                for path in _cell_paths(out, cell)[::-1]:
                    if os.path.exists(path):
                        os.unlink(path)
                where = ", ".join(f"{k}={v}" for k, v in cell.values.items()) or "the only cell"
                _say(f"{out}: cell {cell.id} ({where}) is damaged: {state}; running it again")
    if any(cell.config["x64"] for cell in cells):
        import jax

        jax.config.update("jax_enable_x64", True)
    groups = [g for g in group_cells(spec, cells) if any(c.id not in finished for c in g)]
    definition = get_setting(spec.setting)
    mode = {True: "auto", False: "quiet"}.get(progress, progress)
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    bar = _Progress(sum(1 for c in cells if c.id not in finished), mode)
    comparisons: dict[str, int] = {}
    compile_seconds = 0.0
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
        with counter, ThreadPoolExecutor(max_workers=1) as pool:
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
                            verdict = entry["comparison"]  # compared once, when the summary was built
                            comparisons[verdict["status"]] = comparisons.get(verdict["status"], 0) + 1
                            if verdict["status"] != "fail" and verdict.get("nonfinite_chains_max"):
                                # chains neither finite nor an exact infinity, where no theory could fail them
                                comparisons["with non-finite chains"] = comparisons.get("with non-finite chains", 0) + 1
                    bar.cell_done()

                execute_cells(prepared, save_chains=spec.save_chains, progress=bar.chains, on_cell=on_cell)
                compile_seconds += prepared.compile_seconds
                bar.program_done(
                    label, len(prepared.selected), time.perf_counter() - group_start, prepared.compile_seconds
                )
    finally:
        bar.close()
    ran = sum(1 for c in cells if c.id not in finished)
    return SweepReport(
        out,
        len(cells),
        len(finished),
        ran,
        len(groups),
        time.perf_counter() - start,
        comparisons,
        damaged,
        compile_seconds,
        counter.cache_hits,
        counter.requests,
    )
