"""Sweeps past one machine: shards (`--shard i/N`) filling one folder, the manifest created or joined
atomically, per-shard and per-group locks, `--status`, cell ids that ignore default values, and the
migration of folders written under the previous id rule."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from collapse_jax import runner, sweep
from collapse_jax.results import load_sweep
from collapse_jax.settings import SETTINGS, Parameter
from collapse_jax.sweep import (
    SweepBusy,
    assign_shards,
    cell_id,
    check_cell,
    expand,
    folder,
    group_cells,
    group_id,
    legacy_cell_id,
    locks,
    parse_shard,
    parse_spec,
    plan,
    run_sweep,
    shard_groups,
    sweep_status,
)

# three program groups (categories) of two lanes each (seed): one group per shard with N = 3. The
# discrete setting compiles the fewest computations per program of all settings (the cheapest test).
SPEC = """
setting = "discrete"
name = "shards"
[fixed]
generations = 2
chains = 4
samples = 10
[axes]
categories = [5, 10, 20]
seed = [0, 1]
"""


def _environment(cache):
    """One CPU device per process (the tests' own device count is not inherited), a shared cache."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", COLLAPSE_JAX_CACHE_DIR=str(cache))
    env.pop("COLLAPSE_JAX_NO_CACHE", None)
    env.pop("COLLAPSE_JAX_TEST_DEVICES", None)
    return env


def _command(spec, out, *extra):
    return [sys.executable, "-m", "collapse_jax.cli", "sweep", str(spec), "--out", str(out), "--quiet", *extra]


def _no_compiling(monkeypatch):
    monkeypatch.setattr(runner, "prepare_program", lambda *a, **k: pytest.fail("compiled a program"))


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """Three shard processes started together into one folder, then one unsharded run into another
    (it finds the shards' programs in the shared compilation cache: the same executables)."""
    root = tmp_path_factory.mktemp("shards")
    spec = root / "shards.toml"
    spec.write_text(SPEC)
    env = _environment(root / "cache")
    before = sweep_status(str(spec), str(root / "sharded"))
    processes = [
        subprocess.Popen(
            _command(spec, root / "sharded", "--shard", f"{i}/3"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    single = subprocess.run(_command(spec, root / "single"), env=env, capture_output=True, text=True, timeout=300)
    return {
        "root": root,
        "spec": spec,
        "env": env,
        "before": before,
        "shards": [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)],
        "single": (single.returncode, single.stdout, single.stderr),
    }


def test_three_shards_started_together_equal_one_process(sharded):
    root = sharded["root"]
    for code, _, err in sharded["shards"]:
        assert code == 0, err
        assert "already holds a sweep" not in err and "different spec" not in err, err
    code, out, err = sharded["single"]
    assert code == 0, err
    spec = sweep.load_spec(str(sharded["spec"]))
    cells = expand(spec)
    groups = group_cells(spec, cells)
    owners = assign_shards(groups, 3)
    assert sorted(owners) == [0, 1, 2]  # three equal groups: one each
    # each process ran exactly its own cells, each cell once
    ran = [int(out.split(" cells run")[0].rsplit(" ", 1)[1]) for _, out, _ in sharded["shards"]]
    assert ran == [2, 2, 2], [out for _, out, _ in sharded["shards"]]
    for i, (_, out, _) in enumerate(sharded["shards"]):
        assert f"shard {i}/3 (2 of 6 cells)" in out
    folder = root / "sharded"
    for group, index in zip(groups, owners):
        for cell in group:
            assert check_cell(str(folder), cell) == "finished"
            record = json.loads((folder / "cells" / f"{cell.id}.json").read_text())["cell"]
            assert record["shard"] == f"{index}/3" and record["id"] == cell.id
    names = sorted(os.listdir(folder / "cells"))
    assert names == sorted(f"{c.id}.{kind}" for c in cells for kind in ("json", "npz"))  # no temporary files
    assert sorted(os.listdir(folder)) == ["cells", "locks", "manifest.json"] and not os.listdir(folder / "locks")
    # bit for bit what one process writes
    shards, single = load_sweep(str(folder)), load_sweep(str(root / "single"))
    assert shards.finished.all() and single.finished.all()
    assert sorted(shards.arrays) == sorted(single.arrays)
    for key in single.arrays:
        np.testing.assert_array_equal(shards.arrays[key], single.arrays[key], err_msg=str(key))
    for cell in cells:
        with (
            np.load(folder / "cells" / f"{cell.id}.npz") as a,
            np.load(root / "single" / "cells" / f"{cell.id}.npz") as b,
        ):
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key])


def test_status_before_and_after(sharded, capsys, monkeypatch):
    before = sharded["before"]
    assert not before.started and len(before.missing) == 6 and before.count is None
    assert "not started (no manifest.json); 6 cells; 3 program groups in the sweep" in before.lines()[0]
    _no_compiling(monkeypatch)
    from collapse_jax import cli

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    out = sharded["root"] / "sharded"
    assert cli.main(["sweep", str(sharded["spec"]), "--out", str(out), "--status"]) == 0
    text = capsys.readouterr().out
    assert "6 of 6 cells finished, 0 missing; 3 program groups in the sweep" in text, text
    assert "shards 0-2 of 3: every cell finished" in text, text  # the split is known from the cells' records
    # a partial folder: two cells removed, one damaged
    partial = sharded["root"] / "partial"
    shutil.copytree(out, partial)
    cells = expand(sweep.load_spec(str(sharded["spec"])))
    for cell in cells[:2]:
        os.unlink(partial / "cells" / f"{cell.id}.json")
    with open(partial / "cells" / f"{cells[5].id}.npz", "ab") as stream:
        stream.write(b"x")
    assert cli.main(["sweep", str(sharded["spec"]), "--out", str(partial), "--status", "--shard", "2"]) == 0
    text = capsys.readouterr().out
    status = sweep_status(str(sharded["spec"]), str(partial), shard="3")
    owner = status.owner
    assert "3 of 6 cells finished, 3 missing" in text and "1 cells have damaged files" in text, text
    two = sweep_status(str(sharded["spec"]), str(partial), shard="2")
    for index in range(2):
        part = [c for c in cells if two.owner[c.id] == index]
        missing = sum(c in two.missing for c in part)
        expected = f"shard {index}/2: {len(part) - missing} of {len(part)} cells finished, {missing} missing"
        assert (expected if missing else f"shard {index} of 2: every cell finished") in text, text
    assert "shard 2/2" not in text
    for cell in (cells[0], cells[1], cells[5]):
        assert cell.id in text and f"categories={cell.values['categories']} seed={cell.values['seed']}" in text
    assert [c.id for c in status.missing] == [cells[0].id, cells[1].id, cells[5].id]
    one = sweep_status(str(sharded["spec"]), str(partial), shard=f"{owner[cells[5].id]}/3")
    assert [c.id for c in one.missing] == [cells[5].id]
    assert "npz has" in one.lines()[-1]
    lines = sweep_status(str(sharded["spec"]), str(partial)).lines(limit=1)
    assert lines[-1] == "  ... and 2 more", lines
    assert not (partial / "sweep.lock").exists()  # status takes no lock and writes nothing


def test_resume_and_reruns_of_shards_skip_finished_cells(sharded, monkeypatch):
    _no_compiling(monkeypatch)
    out = str(sharded["root"] / "sharded")
    for shard in ("0/3", "2/3", (1, 3), "1/2", None):
        report = run_sweep(str(sharded["spec"]), out, shard=shard, resume=shard is None, progress=False)
        assert report.ran == 0 and report.written == [] and report.skipped == report.cells
    with pytest.raises(ValueError, match="already holds a sweep"):
        run_sweep(str(sharded["spec"]), out, progress=False)


def test_folders_of_the_previous_id_rule_are_migrated(sharded, monkeypatch, capsys):
    """A folder as the previous version wrote it (ids of the whole config, manifest schema /1): a resume
    renames its cells to the current ids and runs nothing; a cell whose record is of another config runs
    again."""
    spec = sweep.load_spec(str(sharded["spec"]))
    cells = expand(spec)
    old = sharded["root"] / "legacy"
    shutil.copytree(sharded["root"] / "single", old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["schema"] = "collapse-jax/sweep/1"
    for entry, cell in zip(manifest["cells"], cells):
        assert entry["id"] == cell.id
        legacy = legacy_cell_id(spec.setting, cell.config)
        assert legacy != cell.id
        entry["id"] = legacy
        summary = json.loads((old / "cells" / f"{cell.id}.json").read_text())
        summary["cell"]["id"] = legacy
        del summary["cell"]["shard"]
        (old / "cells" / f"{legacy}.json").write_text(json.dumps(summary))
        os.rename(old / "cells" / f"{cell.id}.npz", old / "cells" / f"{legacy}.npz")
        os.unlink(old / "cells" / f"{cell.id}.json")
    (old / "manifest.json").write_text(json.dumps(manifest))
    copy = sharded["root"] / "legacy-changed"
    shutil.copytree(old, copy)

    status = sweep_status(spec, str(old))
    assert len(status.finished) == 6 and status.previous_ids == 6
    assert "6 finished cells carry ids of an earlier schema" in status.lines()[1]
    _no_compiling(monkeypatch)
    report = run_sweep(spec, str(old), resume=True, progress=False)
    assert (report.ran, report.skipped) == (0, 6)
    assert "6 finished cells kept" in capsys.readouterr().err
    assert json.loads((old / "manifest.json").read_text())["schema"] == sweep.SWEEP_SCHEMA
    assert sorted(os.listdir(old / "cells")) == sorted(f"{c.id}.{k}" for c in cells for k in ("json", "npz"))
    migrated, single = load_sweep(str(old)), load_sweep(str(sharded["root"] / "single"))
    for key in single.arrays:
        np.testing.assert_array_equal(migrated.arrays[key], single.arrays[key])
    assert run_sweep(spec, str(old), resume=True, progress=False).ran == 0  # once migrated, a plain resume

    # a record of another config (a parameter changed since) is not taken for the cell
    victim = legacy_cell_id(spec.setting, cells[3].config)
    summary = json.loads((copy / "cells" / f"{victim}.json").read_text())
    summary["config"]["smoothing"] = 0.5
    (copy / "cells" / f"{victim}.json").write_text(json.dumps(summary))
    folder.open_directory(str(copy), spec, cells, True, True, None)
    assert "5 finished cells kept; 1 cells were written with another config" in capsys.readouterr().err
    assert sweep_status(spec, str(copy)).missing == [cells[3]]
    assert (copy / "cells" / f"{victim}.json").exists()  # left in place, not deleted


def test_cell_ids_ignore_values_at_their_defaults(monkeypatch):
    definition = SETTINGS["gaussian"]
    base = {"generations": 2, "chains": 4, "dim": 3}
    config = definition.resolve(base)
    same = definition.resolve({**base, "ddof": 1, "policy": "replace", "seed": 0})  # written out at defaults
    assert config == same and cell_id("gaussian", config) == cell_id("gaussian", same)
    assert cell_id("gaussian", {**config, "chunk_size": 64}) == cell_id("gaussian", config)
    assert cell_id("gaussian", definition.resolve({**base, "ddof": 0})) != cell_id("gaussian", config)
    assert cell_id("regression", definition.resolve(base)) != cell_id("gaussian", config)
    before = cell_id("gaussian", config)
    # a parameter added later with a default: the resolved config gains a key at its default, same id
    knob = Parameter("new_knob", float, 0.5, "a parameter added later", low=0, high=1)
    monkeypatch.setitem(
        SETTINGS, "gaussian", dataclasses.replace(definition, parameters=definition.parameters + (knob,))
    )
    grown = SETTINGS["gaussian"].resolve(base)
    assert grown["new_knob"] == 0.5 and set(grown) - set(config) == {"new_knob"}
    assert cell_id("gaussian", grown) == before
    assert legacy_cell_id("gaussian", grown) != legacy_cell_id("gaussian", config)  # what the old rule did
    assert cell_id("gaussian", {**grown, "new_knob": 0.25}) != before
    spec = parse_spec({"setting": "gaussian", "fixed": {**base, "new_knob": 0.5}, "axes": {"seed": [0, 1]}})
    assert expand(spec)[0].id == before


@pytest.mark.parametrize(
    "value, expected",
    [
        ("3/3", r"I must be in \[0, 3\).*SLURM_ARRAY_TASK_ID - 1"),
        ("-1/3", r"I must be in \[0, 3\)"),
        ("1/0", r"N must be in \[1, "),
        ("a/3", "must be I/N"),
        ("1", "must be I/N"),
        ("1/2/3", "must be I/N"),
        ("", "must be I/N"),
        ((4, 2), r"I must be in \[0, 2\)"),
    ],
)
def test_bad_shard_values_are_refused_before_anything(value, expected, tmp_path, monkeypatch):
    _no_compiling(monkeypatch)
    with pytest.raises(ValueError, match=expected) as error:
        run_sweep(parse_spec({"setting": "gaussian", "axes": {"dim": [1, 2]}}), str(tmp_path / "out"), shard=value)
    assert str(error.value).startswith("shard (--shard): ")
    assert not (tmp_path / "out").exists()


def test_bad_shard_on_the_command_line_is_one_line(tmp_path, capsys, monkeypatch):
    _no_compiling(monkeypatch)
    from collapse_jax import cli

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    for args in (["--shard", "8/8"], ["--shard", "x"], ["--status", "--shard", "0"], ["--status", "--shard", "1/1/1"]):
        code = cli.main(["sweep", str(spec), "--out", str(tmp_path / "out"), *args])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("collapse-jax: error: shard (--shard): ") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
    assert parse_shard(" 7 / 8 ") == (7, 8) and parse_shard(None) is None and parse_shard((0, 1)) == (0, 1)


def test_shards_are_disjoint_whole_groups_balanced_and_stable():
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "collapse_or_thrive_gaussian.toml")
    spec = sweep.load_spec(path)
    cells = expand(spec)
    groups = group_cells(spec, cells)
    for count in (1, 2, 3, 7, len(groups), len(groups) + 5):
        parts = [shard_groups(spec, cells, (i, count)) for i in range(count)]
        ids = [c.id for part in parts for g in part for c in g]
        assert sorted(ids) == sorted(c.id for c in cells)  # disjoint and covering
        assert sorted(group_id(g) for part in parts for g in part) == sorted(group_id(g) for g in groups)
        work = [sum(plan.group_work(g) for g in part) for part in parts]
        heaviest = max(plan.group_work(g) for g in groups)
        assert max(work) - min(work) <= heaviest  # the longest-processing-time rule's bound
        assert sum(1 for part in parts if part) == min(count, len(groups))
    # the assignment depends on the cells, not on the order the axes list their values
    reordered = parse_spec({**spec.as_dict(), "axes": {k: v[::-1] for k, v in reversed(spec.axes.items())}})
    owner = {c.id: i for i in range(4) for g in shard_groups(spec, cells, (i, 4)) for c in g}
    other = {c.id: i for i in range(4) for g in shard_groups(reordered, expand(reordered), (i, 4)) for c in g}
    assert owner == other


def test_a_shard_run_twice_is_refused_and_other_shards_are_not(tmp_path, monkeypatch):
    spec = parse_spec({"setting": "gaussian", "fixed": {"generations": 2, "chains": 4}, "axes": {"dim": [1, 2, 3]}})
    out = tmp_path / "s"
    held = locks.SweepLock.acquire(str(out), locks.lock_name((1, 3)))
    try:
        _no_compiling(monkeypatch)
        with pytest.raises(SweepBusy, match=f"shard 1/3 of {out} is in use by another sweep run \\(pid {os.getpid()}"):
            run_sweep(spec, str(out), shard="1/3", progress=False)

        class Compiling(Exception):
            pass

        def stop(*args, **kwargs):
            raise Compiling

        monkeypatch.setattr(runner, "prepare_program", stop)
        with pytest.raises(Compiling):  # shard 0 got past the locks and the manifest
            run_sweep(spec, str(out), shard="0/3", progress=False)
        assert (out / "manifest.json").exists() and not (out / "sweep.shard-0-of-3.lock").exists()
    finally:
        held.release()


def test_a_group_another_run_holds_is_left_to_it(tmp_path, monkeypatch, capsys):
    """An unsharded run beside a shard run: the group whose lock is held is skipped, not written twice."""
    spec = parse_spec({"setting": "gaussian", "fixed": {"generations": 2, "chains": 4}, "axes": {"seed": [0, 1]}})
    out = tmp_path / "s"
    (group,) = group_cells(spec, expand(spec))
    held = locks.SweepLock.acquire(str(out), os.path.join("locks", group_id(group) + ".lock"))
    monkeypatch.setattr(runner, "prepare_program", lambda *a, **k: None)  # never executed
    try:
        report = run_sweep(spec, str(out), progress=False)
    finally:
        held.release()
    assert (report.ran, report.busy_programs, report.programs, report.written) == (0, 1, 0, [])
    assert f"program group {group_id(group)} of {out} is in use by another sweep run" in capsys.readouterr().err


@pytest.mark.parametrize("links", [True, False])
def test_the_manifest_is_created_once_by_shards_arriving_together(links, tmp_path, monkeypatch):
    spec = parse_spec({"setting": "gaussian", "fixed": {"generations": 2, "chains": 4}, "axes": {"dim": [1, 2, 3]}})
    cells = expand(spec)
    if not links:  # a file system without hard links: an exclusive claim, then a rename

        def no_link(*args):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    created, errors = [], []
    original = folder.create_exclusive

    def counting(path, text):
        original(path, text)
        created.append(threading.get_ident())

    monkeypatch.setattr(folder, "create_exclusive", counting)
    out = str(tmp_path / "s")
    start = threading.Barrier(8)

    def join(i):
        start.wait()
        try:
            folder.open_directory(out, spec, cells, False, True, (i, 8))
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=join, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(created) == 1
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert [e["id"] for e in manifest["cells"]] == [c.id for c in cells]
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
    other = parse_spec({**spec.as_dict(), "axes": {"dim": [1, 2]}})
    with pytest.raises(ValueError, match=r"different spec.*axes.dim \(\[1, 2, 3\] there, \[1, 2\] here\)"):
        folder.open_directory(out, other, expand(other), False, True, (0, 2))


@pytest.mark.slow  # four processes compiling at once
def test_runs_of_different_shard_counts_at_once_write_each_cell_once(tmp_path):
    """Shards of 2, a shard of 3 and an unsharded resume, all started together into one folder: the
    group locks give every program group to one of them; the cells they ran add up to the sweep's."""
    spec = tmp_path / "mixed.toml"
    spec.write_text(SPEC.replace("categories = [5, 10, 20]", "categories = [5, 10, 20, 40]"))
    env = _environment(tmp_path / "cache")
    out = tmp_path / "mixed"
    extras = [["--shard", "0/2"], ["--shard", "1/2"], ["--shard", "2/3"], ["--resume"]]
    processes = [
        subprocess.Popen(
            _command(spec, out, *extra), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for extra in extras
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    ran = []
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
        ran.append(int(stdout.split(" cells run")[0].rsplit(" ", 1)[1]))
    assert sum(ran) == 8, (ran, outputs)
    cells = expand(sweep.load_spec(str(spec)))
    assert all(check_cell(str(out), cell) == "finished" for cell in cells)
    assert load_sweep(str(out)).finished.all()
