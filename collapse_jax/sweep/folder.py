"""The sweep folder and its `manifest.json`: `open_directory` creates the manifest (exclusively, never
half-written) or joins the one there when the spec is the same, and migrates a folder written under an
earlier id schema by renaming its finished cells to their current ids."""

from __future__ import annotations

import datetime
import json
import os
import time

from collapse_jax.sweep.cell_files import cell_paths
from collapse_jax.sweep.locks import SweepBusy, SweepLock, say
from collapse_jax.sweep.spec import (
    ID_SCHEMA,
    LEGACY_SCHEMAS,
    SPEC_KEYS,
    SWEEP_SCHEMA,
    Cell,
    SweepSpec,
    declared_defaults,
    plain_value,
)


def _manifest(spec: SweepSpec, cells: list[Cell]) -> dict:
    return {
        "schema": SWEEP_SCHEMA,
        "spec": spec.as_dict(),
        "axes": spec.axes,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cells": [{"id": c.id, "index": list(c.index), "values": c.values} for c in cells],
    }


def read_manifest(path: str) -> dict:
    """The manifest at `path`, checked to be a sweep manifest (ValueError naming the file otherwise)."""
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


def refuse_another_spec(manifest: dict, spec: SweepSpec, out: str, advice: str = "") -> None:
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


def create_exclusive(path: str, text: str) -> None:
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


def open_directory(
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
            create_exclusive(path, json.dumps(_manifest(spec, cells), indent=1))
            if resume:
                say(f"{out}: no sweep there yet (no manifest.json): starting a new sweep")
            return True
        except FileExistsError:
            if not joining:
                raise SweepBusy(
                    f"out: another run created {path} at the same time; two runs must not write one folder"
                ) from None
    _wait_for(path)
    existing = read_manifest(path)
    refuse_another_spec(
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
            while read_manifest(path)["schema"] != SWEEP_SCHEMA:
                if time.monotonic() > deadline:
                    raise ValueError(f"out: {path}: waited 600 s for process 0 to migrate its cell ids")
                time.sleep(0.5)
    return False


def _same_config(setting: str, recorded, config: dict) -> bool:
    """Whether a cell's recorded config (its JSON's `config`) is `config`: equal values, a parameter
    added since (absent from the record) at its declared default; `chunk_size` is not compared."""
    if not isinstance(recorded, dict):
        return False
    defaults = json.loads(json.dumps(declared_defaults(setting)))
    current = json.loads(json.dumps({k: plain_value(v) for k, v in config.items()}))
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
    npz, js = cell_paths(out, cell)
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
            lock = SweepLock.acquire(out, os.path.join("locks", "migrate.lock"), subject=f"the id migration of {out}")
            break
        except SweepBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        manifest = read_manifest(path)
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
        say(message)
    finally:
        lock.release()
