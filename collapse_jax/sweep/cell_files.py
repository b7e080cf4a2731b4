"""The files of one finished cell (`cells/<id>.npz`, then its completion mark `cells/<id>.json`):
`write_cell` writes both atomically, recording the NPZ's size and SHA-256 in the JSON; `check_cell` and
`is_finished` tell a finished cell from a missing or damaged one."""

from __future__ import annotations

import hashlib
import json
import os
import socket

import numpy as np

from collapse_jax.sweep.plan import shard_text
from collapse_jax.sweep.spec import Cell, SweepSpec

_NPZ_FIELDS = ("mean", "se", "std", "finite_chains", "nonfinite_chains")


def cell_paths(out: str, cell: Cell) -> tuple[str, str]:
    """The NPZ and the JSON of a cell: `out/cells/<id>.npz`, `out/cells/<id>.json`."""
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
    npz, js = cell_paths(out, cell)
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


def write_cell(
    out: str, spec: SweepSpec, cell: Cell, result, predictions: dict, shard: tuple[int, int] | None = None
) -> dict:
    """Write a finished cell: its NPZ, then its JSON summary (the completion mark, recording the NPZ's size
    and SHA-256), each through a temporary file and an atomic rename. Returns the summary."""
    from collapse_jax.summary import build_summary, write_atomic, write_summary

    summary = build_summary(spec.setting, cell.config, result, predictions)
    summary["cell"] = {
        "id": cell.id,
        "index": list(cell.index),
        "values": cell.values,
        "sweep": spec.name,
        "shard": shard_text(shard),  # "i/N" of the run that wrote it; None: an unsharded run
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
    npz, js = cell_paths(out, cell)
    write_atomic(npz, lambda stream: np.savez(stream, **arrays))
    summary["cell"]["npz"] = _file_record(npz)  # what a resume checks the NPZ against
    write_summary(summary, js)  # last: the completion mark
    return summary


def _array(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], np.float64)
