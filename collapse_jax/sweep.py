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

from __future__ import annotations

import dataclasses
import datetime
import errno
import hashlib
import itertools
import json
import os
import re
import socket
import sys
import time
import tomllib

import numpy as np

from collapse_jax.settings import RUN_PARAMETERS, SETTINGS, get_setting

SWEEP_SCHEMA = "collapse-jax/sweep/2"  # /2: cell ids by `cell_id` (ID_SCHEMA); /1: ids of the whole config
LEGACY_SCHEMAS = ("collapse-jax/sweep/1",)  # read, and migrated when a run joins the folder
ID_SCHEMA = "collapse-jax/cell-id/2"
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


def _declared_defaults(setting: str) -> dict:
    """Each parameter's declared default, normalised as a resolved config holds it."""
    defaults = {}
    for parameter in get_setting(setting).all_parameters:
        try:
            defaults[parameter.name] = _plain(parameter.check(parameter.default))
        except ValueError:  # a default outside the checked range (e.g. a sentinel): compared as written
            defaults[parameter.name] = _plain(parameter.default)
    return defaults


def cell_id(setting: str, config: dict) -> str:
    """Stable id of a resolved config: a hash of the setting's name, `ID_SCHEMA` and the values that
    differ from the parameters' declared defaults (`chunk_size` never counts: it changes no result).

    A parameter added later with a default leaves every existing id unchanged; writing a default out
    (`ddof = 0` in [fixed]) gives the id of leaving it out. Changing a declared default changes what
    the ids of cells at the old and new default mean: `ID_SCHEMA` must then change too."""
    defaults = _declared_defaults(setting)
    identity = {
        k: _plain(v) for k, v in config.items() if k != "chunk_size" and (k not in defaults or _plain(v) != defaults[k])
    }
    text = json.dumps({"ids": ID_SCHEMA, "setting": setting, "config": identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def legacy_cell_id(setting: str, config: dict) -> str:
    """The id of manifest schema `collapse-jax/sweep/1`: a hash of the setting and the whole config."""
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


# ---------------------------------------------------------------------------------------------- shards

MAX_SHARDS = 1_000_000


def parse_shard(shard) -> tuple[int, int] | None:
    """`"i/N"` (or `(i, N)`) -> `(i, N)`: the i-th of N shards, 0-based (0 <= i < N), so that
    `--shard $SLURM_ARRAY_TASK_ID/N` fits `#SBATCH --array=0-(N-1)`. None stays None (no sharding)."""
    if shard is None:
        return None
    text = shard if isinstance(shard, str) else "/".join(map(str, shard)) if isinstance(shard, tuple) else None
    allowed = "I/N with integers 0 <= I < N (0-based: --shard 0/4, 1/4, 2/4, 3/4)"
    parts = text.strip().split("/") if text is not None else []
    try:
        if len(parts) != 2:
            raise ValueError
        index, count = (int(part.strip()) for part in parts)
    except ValueError:
        raise ValueError(f"shard (--shard): must be {allowed}, got {shard!r}") from None
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"shard (--shard): the count N must be in [1, {MAX_SHARDS}], got {shard!r}")
    if not 0 <= index < count:
        hint = f"; for #SBATCH --array=1-{count} pass $((SLURM_ARRAY_TASK_ID - 1))/{count}" if index == count else ""
        raise ValueError(f"shard (--shard): I must be in [0, {count}) for N = {count} (0-based), got {shard!r}{hint}")
    return index, count


def group_id(group: list[Cell]) -> str:
    """Stable identity of a program group: a hash of its cells' sorted ids."""
    return hashlib.sha256("\n".join(sorted(c.id for c in group)).encode()).hexdigest()[:16]


def _group_work(group: list[Cell]) -> int:
    """What balancing weighs: chain-generations, summed over the group's cells."""
    return sum(int(c.config["chains"]) * int(c.config["generations"]) for c in group)


def assign_shards(groups: list[list[Cell]], count: int) -> list[int]:
    """The shard (0..count-1) of each group: balanced by work (chain-generations), from the spec alone.

    Groups are taken heaviest first (ties in order of `group_id`) and each goes to the shard with the
    least work so far (ties: the lowest shard index), the longest-processing-time rule. It reads nothing
    but the groups' configs and ids, never which cells are finished, so every process computes the same
    assignment, whenever it starts."""
    order = sorted(range(len(groups)), key=lambda g: (-_group_work(groups[g]), group_id(groups[g])))
    load, shard_of = [0] * count, [0] * len(groups)
    for g in order:
        target = min(range(count), key=lambda s: (load[s], s))
        shard_of[g] = target
        load[target] += _group_work(groups[g])
    return shard_of


def shard_groups(spec: SweepSpec, cells: list[Cell], shard) -> list[list[Cell]]:
    """The program groups of one shard (`(i, N)`, `"i/N"` or None for all), in the sweep's order."""
    shard = parse_shard(shard)
    groups = group_cells(spec, cells)
    if shard is None:
        return groups
    owners = assign_shards(groups, shard[1])
    return [g for g, owner in zip(groups, owners) if owner == shard[0]]


def _shard_text(shard: tuple[int, int] | None) -> str | None:
    return None if shard is None else f"{shard[0]}/{shard[1]}"


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


def _lock_name(shard: tuple[int, int] | None) -> str:
    """The lock file of a run: `sweep.lock` unsharded, `sweep.shard-i-of-N.lock` for shard i of N."""
    return LOCK_NAME if shard is None else f"sweep.shard-{shard[0]}-of-{shard[1]}.lock"


class _SweepLock:
    """An exclusive lock in a sweep folder (see the module docstring): `out/sweep.lock` by default, held
    for a whole run. `acquire` raises `SweepBusy` naming the folder (`subject`) and the holder."""

    def __init__(self, path: str, fd: int | None):
        self.path, self.fd = path, fd

    @classmethod
    def acquire(
        cls,
        out: str,
        name: str = LOCK_NAME,
        subject: str | None = None,
        advice: str = "two runs must not write one folder: wait for it to finish or choose another --out",
    ) -> _SweepLock:
        path = os.path.join(out, name)
        if os.path.exists(out) and not os.path.isdir(out):
            raise ValueError(f"out: {out} is not a directory")
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return cls._acquire(out, path, subject or out, advice)
        except OSError as error:
            raise ValueError(f"out: cannot lock {path}: {error.strerror or error}") from None

    @classmethod
    def _acquire(cls, out: str, path: str, subject: str, advice: str) -> _SweepLock:
        me = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
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
                    if holder is None:  # its holder may be between taking the lock and writing its name
                        time.sleep(0.05)
                        holder = _parse_holder(os.pread(fd, 1 << 16, 0))
                    os.close(fd)
                    raise SweepBusy(
                        f"out: {subject} is in use by another sweep run ({_holder(holder)}); {advice}"
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
                    f"out: {subject} is in use by another sweep run ({_holder(holder)}); {advice} (if that "
                    f"run is gone, remove {path})"
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


def check_cell(out: str, cell: Cell, checksum: bool = True, record: dict | None = None) -> str | None:
    """Whether a cell's files are whole. Returns "finished"; None where the cell has no JSON mark (not
    run, or killed before its end); else why the cell is damaged. The JSON must parse and name the cell;
    the NPZ must have the size and SHA-256 the JSON records (cells written before those were recorded:
    the NPZ must load, with every array of every metric). `checksum=False` (for `sweep_status`) stops
    after the size: no NPZ is read. A dict passed as `record` receives the JSON's `cell` entry."""
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
    if record is not None:
        record.update(summary["cell"])
    if not os.path.exists(npz):
        return f"{name}.npz is missing"
    record = summary["cell"].get("npz")
    if isinstance(record, dict):
        size = os.path.getsize(npz)
        if size != record.get("bytes"):
            return f"{name}.npz has {size} bytes, {record.get('bytes')} recorded"
        if checksum and _file_record(npz)["sha256"] != record.get("sha256"):
            return f"{name}.npz does not match the SHA-256 in its record"
        return "finished"
    if not checksum:
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
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
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
    if manifest.get("schema") not in (SWEEP_SCHEMA, *LEGACY_SCHEMAS) or not isinstance(manifest.get("spec"), dict):
        raise ValueError(f"out: {path} is not a sweep manifest (schema {SWEEP_SCHEMA} with a spec)")
    cells = manifest.get("cells")
    if not isinstance(cells, list) or not all(
        isinstance(e, dict) and isinstance(e.get("id"), str) and isinstance(e.get("index"), list) for e in cells
    ):
        raise ValueError(f"out: {path} is not a sweep manifest: its cells are not a list of {{id, index, values}}")
    return manifest


def _refuse_another_spec(manifest: dict, spec: SweepSpec, out: str, advice: str = "") -> None:
    """ValueError when the folder's manifest was written from another spec (its first differences named)."""
    differences = _spec_differences(manifest["spec"], json.loads(json.dumps(spec.as_dict())))
    if differences:
        raise ValueError(
            f"out: the sweep in {out} was made from a different spec (name {manifest['spec'].get('name')!r}); "
            f"it differs in {'; '.join(differences[:3])}{'; ...' if len(differences) > 3 else ''}{advice}"
        )


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
    """Write a whole file at `path` that must not exist yet (FileExistsError otherwise): a complete
    temporary file hard-linked into place, so it never appears half-written and never replaces another.
    Where hard links are refused, `path + ".claim"` is created exclusively first and the winner renames
    its temporary file into place (`_wait_for` is how the others wait for it)."""
    import tempfile

    directory, base = os.path.split(path)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix="-" + base)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode())
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here: claim the name exclusively, then rename into place
            if os.path.exists(path):
                raise FileExistsError(path) from None
            os.close(os.open(path + ".claim", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _wait_for(path: str, seconds: float = 60.0) -> None:
    """Wait until `path` exists: a run that claimed it (`path.claim`, no hard links) renames it there."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise ValueError(
                f"out: {path}.claim is there but {os.path.basename(path)} did not appear within {seconds:.0f} s: "
                f"the run that claimed it is gone; remove {path}.claim and start again"
            )
        time.sleep(0.05)


def _open_directory(
    out: str, spec: SweepSpec, cells: list[Cell], resume: bool, writer: bool, shard: tuple[int, int] | None = None
) -> bool:
    """Check (and make) the sweep folder: create its manifest, or join the one there (resume, or any
    shard: shards started together join the manifest the first of them created). The writer holds its
    run's lock; a manifest of an earlier id schema is migrated (`_migrate_ids`). Returns whether the
    run starts a new sweep (no cell can be finished): the writer created the manifest, or this is
    another process of a multi-process run that joins nothing (process 0 decides; the manifest it may
    have just written is no reason to stop)."""
    path = os.path.join(out, "manifest.json")
    joining = resume or shard is not None
    if not writer and not joining:
        return True
    if os.path.exists(path) and not joining:
        raise ValueError(
            f"out: {out} already holds a sweep (manifest.json); pass --resume (resume=True) "
            "to continue it, skipping finished cells, or choose another --out"
        )
    if not os.path.exists(path) and not os.path.exists(path + ".claim"):
        if not writer:
            return False
        os.makedirs(os.path.join(out, "cells"), exist_ok=True)
        try:
            _create_exclusive(path, json.dumps(_manifest(spec, cells), indent=1))
            if resume:
                _say(f"{out}: no sweep there yet (no manifest.json): starting a new sweep")
            return True
        except FileExistsError:
            if not joining:
                raise SweepBusy(
                    f"out: another run created {path} at the same time; two runs must not write one folder"
                ) from None
    _wait_for(path)
    existing = _read_manifest(path)
    _refuse_another_spec(
        existing,
        spec,
        out,
        ". Resume it with the same spec (every shard of a sweep runs one spec) or choose another --out",
    )
    if writer:
        for name in os.listdir(out):  # a manifest's temporary file left by a killed run (a link takes ms)
            if name.startswith(".tmp-"):
                tmp = os.path.join(out, name)
                try:
                    if time.time() - os.path.getmtime(tmp) > 3600:
                        os.unlink(tmp)
                except FileNotFoundError:  # linked and removed by its run meanwhile
                    pass
    if existing["schema"] in LEGACY_SCHEMAS:
        if writer:
            _migrate_ids(out, spec, cells)
        else:  # the writer of this run migrates; cells are read after it has
            deadline = time.monotonic() + 600
            while _read_manifest(path)["schema"] != SWEEP_SCHEMA:
                if time.monotonic() > deadline:
                    raise ValueError(f"out: {path}: waited 600 s for process 0 to migrate its cell ids")
                time.sleep(0.5)
    return False


def _same_config(setting: str, recorded, config: dict) -> bool:
    """Whether a cell's recorded config (its JSON's `config`) is `config`: equal values, a parameter
    added since (absent from the record) at its declared default; `chunk_size` is not compared."""
    if not isinstance(recorded, dict):
        return False
    defaults = json.loads(json.dumps(_declared_defaults(setting)))
    current = json.loads(json.dumps({k: _plain(v) for k, v in config.items()}))
    for key in (set(recorded) | set(current)) - {"chunk_size"}:
        if key not in current:
            return False  # a parameter removed since: what the record means is not known
        if key in recorded:
            if recorded[key] != current[key]:
                return False
        elif key not in defaults or current[key] != defaults[key]:
            return False
    return True


def _migrate_cell(out: str, setting: str, cell: Cell, old: str) -> str:
    """Rename the files of a cell finished under id `old` to `cell.id`: "moved", "none" (nothing usable
    under `old`) or "differs" (the record is of another config: the cell runs again). The NPZ is moved
    first, then the JSON mark is written under the new id (its `cell.id` updated; the NPZ's size and
    SHA-256 still hold) and the old one removed: a migration killed at any point is completed by the next."""
    from collapse_jax.summary import write_summary

    directory = os.path.join(out, "cells")
    old_npz, old_json = os.path.join(directory, old + ".npz"), os.path.join(directory, old + ".json")
    npz, js = _cell_paths(out, cell)
    if os.path.exists(js):  # moved by a migration killed before it rewrote the manifest
        for leftover in (old_json, old_npz):
            if os.path.exists(leftover) and os.path.exists(npz):
                os.unlink(leftover)
        return "moved"
    try:
        with open(old_json) as stream:
            summary = json.load(stream)
    except (OSError, ValueError):
        return "none"  # not run, or damaged: it runs (again) under its new id
    if not isinstance(summary, dict) or not isinstance(summary.get("cell"), dict) or summary["cell"].get("id") != old:
        return "none"
    if not _same_config(setting, summary.get("config"), cell.config):
        return "differs"
    if os.path.exists(old_npz):
        os.replace(old_npz, npz)
    elif not os.path.exists(npz):
        return "none"
    summary["cell"]["id"] = cell.id
    summary["cell"]["previous_id"] = old
    write_summary(summary, js)
    os.unlink(old_json)
    return "moved"


def _migrate_ids(out: str, spec: SweepSpec, cells: list[Cell]) -> None:
    """Give the finished cells of a folder written under an earlier id schema their current ids.

    Runs once per folder, under `locks/migrate.lock` (shards that arrive meanwhile wait for it): each
    cell's old id is the manifest's (the same position on the same axes), its files are renamed when its
    recorded config is the cell's (`_migrate_cell`), and the manifest is rewritten last, in one atomic
    rename: until then a killed migration is taken up again by the next run."""
    from collapse_jax.summary import write_atomic

    path = os.path.join(out, "manifest.json")
    deadline = time.monotonic() + 600
    while True:
        try:
            lock = _SweepLock.acquire(out, os.path.join("locks", "migrate.lock"), subject=f"the id migration of {out}")
            break
        except SweepBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        manifest = _read_manifest(path)
        if manifest["schema"] == SWEEP_SCHEMA:
            return  # migrated by another run while this one waited
        old_ids = {tuple(e["index"]): e["id"] for e in manifest["cells"]}
        counts = {"moved": 0, "none": 0, "differs": 0}
        for cell in cells:
            old = old_ids.get(cell.index)
            if old is None or old == cell.id or os.path.basename(old) != old or old.startswith("."):
                continue
            counts[_migrate_cell(out, spec.setting, cell, old)] += 1
        previous = manifest["schema"]
        manifest.update(
            schema=SWEEP_SCHEMA,
            cells=[{"id": c.id, "index": list(c.index), "values": c.values} for c in cells],
            migrated={"from": previous, "ids": ID_SCHEMA},
        )
        text = json.dumps(manifest, indent=1)
        write_atomic(path, lambda stream: stream.write(text.encode()))
        message = f"{out}: cell ids renamed from manifest schema {previous} to {SWEEP_SCHEMA}: {counts['moved']} finished cells kept"
        if counts["differs"]:
            message += (
                f"; {counts['differs']} cells were written with another config (parameters changed since): "
                "they run again, their old files stay"
            )
        _say(message)
    finally:
        lock.release()


def _write_cell(
    out: str, spec: SweepSpec, cell: Cell, result, predictions: dict, shard: tuple[int, int] | None = None
) -> dict:
    from collapse_jax.summary import build_summary, write_atomic, write_summary

    summary = build_summary(spec.setting, cell.config, result, predictions)
    summary["cell"] = {
        "id": cell.id,
        "index": list(cell.index),
        "values": cell.values,
        "sweep": spec.name,
        "shard": _shard_text(shard),  # "i/N" of the run that wrote it; None: an unsharded run
        "host": socket.gethostname(),
    }
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
    shard: str | None = None  # "i/N" of this run; None: every cell (`cells` and `programs` count this shard's)
    sweep_cells: int = 0  # cells of the whole sweep
    busy_programs: int = 0  # program groups left to another process that was running them
    written: list = dataclasses.field(default_factory=list)  # ids of the cells this process wrote, in order


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


def _spec_and_folder(spec, out: str | None) -> tuple[SweepSpec, str]:
    """The parsed spec (a path, a dict or a SweepSpec) and its output folder (default sweeps/<name>)."""
    if isinstance(spec, str):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec)
    if out is not None and not str(out).strip():
        raise ValueError("out (--out): must name a directory, got an empty path (omit it for sweeps/<name>)")
    return spec, out or os.path.join("sweeps", spec.name)


def run_sweep(
    spec,
    out: str | None = None,
    *,
    resume: bool = False,
    progress: str | bool = "auto",
    devices=None,
    lookahead: int = 1,
    shard=None,
) -> SweepReport:
    """Run (or resume) a sweep and write its cells under `out`.

    Args:
      spec: a `SweepSpec`, a dict in the spec format, or the path of a TOML spec.
      out: output directory (default: `sweeps/<name>`).
      resume: continue the sweep already in `out` (same spec), skipping finished cells.
      progress: "auto" (bars on a terminal, lines otherwise), "bar", "lines", or False/"quiet".
      devices: devices to shard chains over (default: every device of every process).
      lookahead: programs compiled ahead in a background thread while the current one runs.
      shard: `"i/N"` or `(i, N)`: run only the i-th (0-based) of N disjoint sets of whole program
        groups (`assign_shards`), as one of N independent processes filling `out`; a shard joins the
        manifest already there (same spec) as a resume does, and skips finished cells.

    Everything is validated before anything compiles. Only process 0 writes (multi-host runs); it
    holds the run's lock (`sweep.lock`, or `sweep.shard-i-of-N.lock`) for the whole run: a second run of
    the same shard into `out` raises `SweepBusy`. A resume checks every finished cell's files and runs
    a damaged cell again.
    """
    from collapse_jax import parallel

    spec, out = _spec_and_folder(spec, out)
    shard = parse_shard(shard)
    cells = expand(spec)
    writer = parallel.is_writer()
    lock = None
    if writer and shard is None:
        lock = _SweepLock.acquire(out)
    elif writer:
        lock = _SweepLock.acquire(
            out,
            _lock_name(shard),
            subject=f"shard {_shard_text(shard)} of {out}",
            advice="two runs of one shard must not run at once: wait for it to finish, or run another shard",
        )
    try:
        return _run_locked(spec, cells, out, resume, writer, progress, devices, lookahead, shard)
    finally:
        if lock is not None:
            lock.release()


def _group_lock(out: str, group: list[Cell]) -> _SweepLock | None:
    """The lock of one program group (`locks/<group id>.lock`), or None when another process holds it."""
    try:
        return _SweepLock.acquire(
            out,
            os.path.join("locks", group_id(group) + ".lock"),
            subject=f"program group {group_id(group)} of {out}",
            advice="its cells are left to that run",
        )
    except SweepBusy as busy:
        _say(str(busy).removeprefix("out: "))
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
        for path in _cell_paths(out, cell)[::-1]:  # the JSON mark first
            if os.path.exists(path):
                os.unlink(path)


def _run_locked(spec, cells, out, resume, writer, progress, devices, lookahead, shard=None) -> SweepReport:
    from concurrent.futures import ThreadPoolExecutor

    import jax

    from collapse_jax import parallel
    from collapse_jax.runner import _EAGER_LOCK, Cells, execute_cells, prepare_program
    from collapse_jax.simulate import predictions_for

    fresh = _open_directory(out, spec, cells, resume, writer, shard)
    mine = shard_groups(spec, cells, shard)
    finished, damaged = set(), 0
    for cell in () if fresh else (c for g in mine for c in g):  # a joined folder is checked file by file
        state = check_cell(out, cell)
        if state == "finished":
            finished.add(cell.id)
        elif state is not None:  # its files are removed when its group runs (under the group's lock)
            damaged += 1
            where = ", ".join(f"{k}={v}" for k, v in cell.values.items()) or "the only cell"
            _say(f"{out}: cell {cell.id} ({where}) is damaged: {state}; running it again")
    if any(cell.config["x64"] for cell in cells):
        jax.config.update("jax_enable_x64", True)
    groups = [g for g in mine if any(c.id not in finished for c in g)]
    definition = get_setting(spec.setting)
    mode = {True: "auto", False: "quiet"}.get(progress, progress)
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    bar = _Progress(sum(1 for g in groups for c in g if c.id not in finished), mode)
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
        with counter, ThreadPoolExecutor(max_workers=1) as pool:
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
                            with _EAGER_LOCK:
                                predictions = predictions_for(spec.setting, cell.config)
                            summary = _write_cell(out, spec, cell, result, predictions, shard)
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
        _shard_text(shard),
        len(cells),
        busy,
        written,
    )


# ----------------------------------------------------------------------------------------------- status


def _status_shard(shard) -> tuple[int | None, int] | None:
    """`--status --shard`: `"N"` (the split into N shards) or `"i/N"` (shard i alone)."""
    if shard is None:
        return None
    text = str(shard).strip()
    if isinstance(shard, (tuple, list)) or "/" in text:
        return parse_shard(tuple(shard) if isinstance(shard, list) else shard)
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"shard (--shard): with --status, must be N or I/N (0 <= I < N), got {shard!r}") from None
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"shard (--shard): the count N must be in [1, {MAX_SHARDS}], got {shard!r}")
    return None, count


def _lock_state(info: dict | None) -> str:
    """A lock file's holder, in a few words (no command line): whether it runs, where that can be told."""
    if not info:
        return "holder unknown"
    holder = f"pid {info.get('pid')} on host {info.get('host')} since {info.get('started')}"
    if info.get("host") != socket.gethostname():
        return holder
    if _pid_alive(info.get("pid")):
        return f"running ({holder})"
    return f"gone ({holder}; the next run takes its lock over)"


@dataclasses.dataclass
class SweepStatus:
    """Where a sweep folder stands (`sweep_status`); `lines()` is what `--status` prints."""

    out: str
    name: str
    started: bool  # manifest.json is there
    cells: list  # every Cell of the spec, in axis order
    states: dict  # cell id -> "finished", "missing", or why its files are damaged
    groups: int  # program groups of the whole sweep
    count: int | None  # shards the split is shown for (given, or the one count the finished cells record)
    selected: int | None  # the one shard asked about
    owner: dict  # cell id -> shard index (when count is known)
    counts_seen: list  # shard counts recorded by finished cells (0: unsharded runs)
    previous_ids: int  # finished cells still under ids of an earlier schema (the next run renames them)
    locks: dict  # lock file name -> its holder and whether it runs

    def _mine(self, cell) -> bool:
        return self.selected is None or self.owner.get(cell.id) == self.selected

    @property
    def finished(self) -> list:
        return [c for c in self.cells if self._mine(c) and self.states[c.id] == "finished"]

    @property
    def missing(self) -> list:
        return [c for c in self.cells if self._mine(c) and self.states[c.id] != "finished"]

    def lines(self, limit: int = 20) -> list[str]:
        """A compact report: counts; where the split is known, one line per shard with missing cells or a
        lock (at most `limit`) and one for the shards done; lock holders; the first `limit` missing
        cells (id, shard, axis values)."""
        mine = [c for c in self.cells if self._mine(c)]
        what = f"shard {self.selected}/{self.count} of " if self.selected is not None else ""
        head = f"sweep {self.out} ({self.name}): {what}"
        if not self.started:
            head += f"not started (no manifest.json); {len(mine)} cells"
        else:
            head += f"{len(self.finished)} of {len(mine)} cells finished, {len(self.missing)} missing"
        lines = [head + f"; {self.groups} program groups in the sweep"]
        if self.previous_ids:
            lines.append(
                f"{self.previous_ids} finished cells carry ids of an earlier schema: the next run into the folder "
                "(--resume or --shard) renames them"
            )
        damaged = [c for c in mine if self.states[c.id] not in ("finished", "missing")]
        if damaged:
            lines.append(f"{len(damaged)} cells have damaged files: the next run into the folder runs them again")
        if len(set(self.counts_seen)) > 1:
            seen = ", ".join("unsharded" if n == 0 else f"{n} shards" for n in sorted(set(self.counts_seen)))
            lines.append(f"finished cells were written by runs of {seen}")
        if self.count is not None:
            done_shards, shown = [], 0
            for index in range(self.count) if self.selected is None else [self.selected]:
                part = [c for c in self.cells if self.owner[c.id] == index]
                done = sum(self.states[c.id] == "finished" for c in part)
                lock = self.locks.get(_lock_name((index, self.count)))
                if done == len(part) and not lock:
                    done_shards.append(index)
                    continue
                shown += 1
                if shown <= limit:
                    lines.append(
                        f"shard {index}/{self.count}: {done} of {len(part)} cells finished"
                        + (f", {len(part) - done} missing" if done < len(part) else "")
                        + (f"; lock: {lock}" if lock else "")
                    )
            if shown > limit:
                lines.append(f"... and {shown - limit} more shards with missing cells or a lock")
            if done_shards:
                lines.append(
                    f"shard{'s' * (len(done_shards) > 1)} {_ranges(done_shards)} of {self.count}: every cell finished"
                )
        for name, lock in self.locks.items():
            if self.count is None or not name.startswith("sweep.shard-") or not name.endswith(f"-of-{self.count}.lock"):
                lines.append(f"lock {name}: {lock}")
        missing = self.missing
        if self.count is not None:
            missing = sorted(missing, key=lambda c: self.owner[c.id])
        if missing:
            lines.append(f"missing ({len(missing)}):")
            for cell in missing[:limit]:
                where = " ".join(f"{k}={v}" for k, v in cell.values.items()) or "(the only cell)"
                shard = f"  shard {self.owner[cell.id]}/{self.count}" if self.count is not None else ""
                state = self.states[cell.id]
                lines.append(f"  {cell.id}{shard}  {where}" + ("" if state == "missing" else f"  ({state})"))
            if len(missing) > limit:
                lines.append(f"  ... and {len(missing) - limit} more")
        return lines


def _ranges(numbers: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0-2, 5, 7-8"."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(n) if n == start else f"{start}-{n}")
            start = None
    return ", ".join(parts)


def sweep_status(spec, out: str | None = None, shard=None) -> SweepStatus:
    """Which cells of a sweep folder are finished and which are missing, per shard where the split is
    known (`shard`: N or "i/N"; else the one shard count the finished cells record). Reads the manifest
    and each cell's JSON (an NPZ only by its size: a resume checks the SHA-256): it runs, compiles and
    writes nothing."""
    spec, out = _spec_and_folder(spec, out)
    selected = _status_shard(shard)
    cells = expand(spec)
    path = os.path.join(out, "manifest.json")
    started = os.path.exists(path)
    old_ids = {}
    if started:
        manifest = _read_manifest(path)
        _refuse_another_spec(manifest, spec, out)
        if manifest["schema"] in LEGACY_SCHEMAS:
            old_ids = {tuple(e["index"]): e["id"] for e in manifest["cells"]}
    states, counts_seen, previous = {}, [], 0
    for cell in cells:
        record: dict = {}
        state = check_cell(out, cell, checksum=False, record=record) if started else None
        old = old_ids.get(cell.index)
        if state is None and old and old != cell.id and os.path.basename(old) == old:
            state = check_cell(out, dataclasses.replace(cell, id=old), checksum=False, record=record)
            previous += state == "finished"
        states[cell.id] = state or "missing"
        if state == "finished":
            text = record.get("shard")
            counts_seen.append(int(text.split("/")[1]) if isinstance(text, str) and "/" in text else 0)
    groups = group_cells(spec, cells)
    count = selected[1] if selected else None
    locks = {}
    for name in sorted(os.listdir(out)) if os.path.isdir(out) else []:
        if name == LOCK_NAME or (name.startswith("sweep.shard-") and name.endswith(".lock")):
            try:
                with open(os.path.join(out, name), "rb") as stream:
                    locks[name] = _lock_state(_parse_holder(stream.read()))
            except OSError:
                continue  # released meanwhile
    if count is None:
        named = (re.fullmatch(r"sweep\.shard-\d+-of-(\d+)\.lock", name) for name in locks)
        known = {n for n in counts_seen if n} | {int(m.group(1)) for m in named if m}
        count = known.pop() if len(known) == 1 else None
    owner = {}
    if count is not None:
        for group, index in zip(groups, assign_shards(groups, count)):
            owner.update((c.id, index) for c in group)
    return SweepStatus(
        out,
        spec.name,
        started,
        cells,
        states,
        len(groups),
        count,
        selected[0] if selected else None,
        owner,
        counts_seen,
        previous,
        locks,
    )
