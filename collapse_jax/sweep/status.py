"""Where a sweep folder stands, without running anything: `sweep_status` reads the manifest, each cell's
JSON and the lock files, and `SweepStatus.lines()` is the report `--status` prints (finished and missing
cells, per shard where the split is known, and who holds which lock)."""

from __future__ import annotations

import dataclasses
import os
import re
import socket

from collapse_jax.sweep.cell_files import check_cell
from collapse_jax.sweep.folder import read_manifest, refuse_another_spec
from collapse_jax.sweep.locks import LOCK_NAME, lock_name, parse_holder, pid_alive
from collapse_jax.sweep.plan import MAX_SHARDS, assign_shards, group_cells, parse_shard
from collapse_jax.sweep.spec import LEGACY_SCHEMAS, expand, spec_and_folder


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
    if pid_alive(info.get("pid")):
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
                lock = self.locks.get(lock_name((index, self.count)))
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
    spec, out = spec_and_folder(spec, out)
    selected = _status_shard(shard)
    cells = expand(spec)
    path = os.path.join(out, "manifest.json")
    started = os.path.exists(path)
    old_ids = {}
    if started:
        manifest = read_manifest(path)
        refuse_another_spec(manifest, spec, out)
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
                    locks[name] = _lock_state(parse_holder(stream.read()))
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
