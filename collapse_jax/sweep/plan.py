"""Grouping the cells of a sweep into compiled programs and splitting those groups into shards:
`group_cells` (cells that share one program), `group_id`, `parse_shard` (`"i/N"`), and `assign_shards` /
`shard_groups`, which balance whole groups over N shards from the spec alone."""

from __future__ import annotations

import hashlib

from collapse_jax.settings import get_setting
from collapse_jax.sweep.spec import Cell, SweepSpec


def group_cells(spec: SweepSpec, cells: list[Cell]) -> list[list[Cell]]:
    """Cells that share one compiled program (equal in everything but shape-free values), in order."""
    definition = get_setting(spec.setting)
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(definition.program_key(cell.config), []).append(cell)
    return list(groups.values())


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


def group_work(group: list[Cell]) -> int:
    """What balancing weighs: chain-generations, summed over the group's cells."""
    return sum(int(c.config["chains"]) * int(c.config["generations"]) for c in group)


def assign_shards(groups: list[list[Cell]], count: int) -> list[int]:
    """The shard (0..count-1) of each group: balanced by work (chain-generations), from the spec alone.

    Groups are taken heaviest first (ties in order of `group_id`) and each goes to the shard with the
    least work so far (ties: the lowest shard index), the longest-processing-time rule. It reads nothing
    but the groups' configs and ids, never which cells are finished, so every process computes the same
    assignment, whenever it starts."""
    order = sorted(range(len(groups)), key=lambda g: (-group_work(groups[g]), group_id(groups[g])))
    load, shard_of = [0] * count, [0] * len(groups)
    for g in order:
        target = min(range(count), key=lambda s: (load[s], s))
        shard_of[g] = target
        load[target] += group_work(groups[g])
    return shard_of


def shard_groups(spec: SweepSpec, cells: list[Cell], shard) -> list[list[Cell]]:
    """The program groups of one shard (`(i, N)`, `"i/N"` or None for all), in the sweep's order."""
    shard = parse_shard(shard)
    groups = group_cells(spec, cells)
    if shard is None:
        return groups
    owners = assign_shards(groups, shard[1])
    return [g for g, owner in zip(groups, owners) if owner == shard[0]]


def shard_text(shard: tuple[int, int] | None) -> str | None:
    """`(i, N)` -> `"i/N"`, as a cell's record and a report name the shard; None stays None."""
    return None if shard is None else f"{shard[0]}/{shard[1]}"
