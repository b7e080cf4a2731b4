"""Sweeps: spec validation, grouping into programs, common random numbers, invariances (devices,
chunks, subsets), resumption after SIGKILL, the persistent compilation cache, and reading back."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from collapse_jax import runner
from collapse_jax.results import load_sweep, plot_sweep
from collapse_jax.simulate import simulate
from collapse_jax.sweep import NOT_AN_AXIS, expand, group_cells, parse_spec, run_sweep

REGRESSION = {
    "setting": "regression",
    "name": "regression-noise",
    "save_chains": True,
    "fixed": {"generations": 6, "chains": 48, "dim": 4, "samples": 12, "policy": "replace"},
    "axes": {"noise_var": [0.5, 1.0, 10.0]},
}


def spec_with(**changes):
    spec = json.loads(json.dumps(REGRESSION))
    for key, value in changes.items():
        spec[key] = value
    if "fixed" not in changes:  # an axis replaces the fixed value of the same name
        spec["fixed"] = {k: v for k, v in spec["fixed"].items() if k not in spec["axes"]}
    return spec


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"setting": "nope"}, "setting"),
        ({"color": 1}, "color"),
        ({"fixed": {"dimm": 3}}, "fixed.dimm"),
        ({"axes": {"noise_var": []}}, "axes.noise_var"),
        ({"axes": {"noise_var": [1.0, -2.0]}}, "axes.noise_var[1]"),
        ({"axes": {"dim": [1, 0]}}, "axes.dim[1]"),
        ({"axes": {"policy": ["replace", "keep"]}}, "axes.policy[1]"),
        ({"axes": {"samples": [12, 12]}}, "axes.samples"),
        ({"axes": {"chunk_size": [8, 16]}}, "axes.chunk_size"),
        ({"axes": {"dim": [4]}, "fixed": {"dim": 4}}, "axes.dim: also given"),
        ({"axes": {"real_fraction": [0.5]}}, "real_fraction"),  # fixed design has no real points
    ],
)
def test_bad_specs_fail_before_anything_runs(changes, key, monkeypatch, tmp_path):
    def must_not_compile(*args, **kwargs):
        raise AssertionError("compiled a program for an invalid spec")

    monkeypatch.setattr(runner, "prepare_program", must_not_compile)
    with pytest.raises(ValueError) as error:
        run_sweep(spec_with(**changes), str(tmp_path / "out"), progress=False)
    assert key in str(error.value)
    assert not (tmp_path / "out").exists()


def test_toml_spec_is_data_only(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('setting = "gaussian"\n[axes]\ndim = [1, 2]\n__import__ = "os"\n')
    from collapse_jax.sweep import load_spec

    with pytest.raises(ValueError, match="__import__"):
        load_spec(str(path))


def test_shape_free_axes_share_one_program():
    spec = parse_spec(
        spec_with(
            axes={
                "noise_var": [0.1, 1.0],
                "ridge": [0.0, 0.5],
                "seed": [0, 1],
                "samples": [12, 20],
                "policy": ["replace", "accumulate"],
            }
        )
    )
    cells = expand(spec)
    groups = group_cells(spec, cells)
    assert len(cells) == 32 and len(groups) == 4 and all(len(g) == 8 for g in groups)
    assert len({c.id for c in cells}) == 32
    assert expand(spec)[5].id == cells[5].id  # ids are stable


def test_common_random_numbers_across_a_traced_axis(tmp_path):
    """OLS excess risk is exactly proportional to sigma^2 for fixed keys: chain i of every cell sees the
    same design, weights and standard normals, so per-chain values scale by the ratio of variances."""
    run_sweep(REGRESSION, str(tmp_path), progress=False)
    results = load_sweep(str(tmp_path))
    assert results.finished.all() and results.shape == (3,)
    chains = []
    for summary in results.summaries:
        with np.load(os.path.join(str(tmp_path), "cells", summary["cell"]["id"] + ".npz"), allow_pickle=False) as data:
            chains.append(data["excess_risk.chains"])
    np.testing.assert_allclose(chains[2], 10.0 * chains[1], rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(chains[0], 0.5 * chains[1], rtol=2e-5, atol=1e-7)
    assert not np.allclose(chains[1][0], chains[1][1])  # but chains differ from one another
    assert [s["seed"] for s in results.summaries] == [0, 0, 0]
    assert results.summaries[0]["chain_range"] == [0, 48]
    assert {"jax_version", "device", "num_devices", "git_commit", "config"} <= set(results.summaries[0])


def test_a_sweep_cell_equals_the_same_simulate_run():
    spec = spec_with(fixed={**REGRESSION["fixed"], "seed": 3}, save_chains=False)
    cells = expand(parse_spec(spec))
    from collapse_jax.runner import Cells, execute_cells, prepare_program
    from collapse_jax.settings import get_setting

    definition = get_setting("regression")
    setting_fn, chain_spec = definition.program(cells[0].config)
    table = Cells((3, 3, 3), (48, 48, 48), {"noise_var": (0.5, 1.0, 10.0), "ridge": (0.0, 0.0, 0.0)})
    results = execute_cells(prepare_program(setting_fn, chain_spec, table))
    single = simulate("regression", {**REGRESSION["fixed"], "seed": 3, "noise_var": 10.0})
    np.testing.assert_allclose(results[2].mean("excess_risk"), single["metrics"]["excess_risk"]["mean"], rtol=1e-5)


def _program(devices=None, chunk_size=None, selected=None):
    from collapse_jax.runner import Cells, execute_cells, prepare_program
    from collapse_jax.settings import get_setting

    definition = get_setting("regression")
    config = definition.resolve({**REGRESSION["fixed"], "policy": "accumulate-subsample"})
    setting_fn, chain_spec = definition.program(config)
    table = Cells((0, 7, 0, 5), (40, 24, 33, 8), {"noise_var": (1.0, 1.0, 3.0, 0.2), "ridge": (0.0, 0.1, 0.0, 0.0)})
    prepared = prepare_program(setting_fn, chain_spec, table, devices=devices, chunk_size=chunk_size, selected=selected)
    return execute_cells(prepared, save_chains=True)


def test_sharded_chunked_and_subset_runs_agree(devices):
    reference = _program(devices=devices[:1])
    full = _program(devices=devices, chunk_size=16)
    # Different batch layouts may reassociate float32 sums inside the fits; a chain amplifies such
    # rounding differences over generations (seen: 2e-5 relative at generation 6 of a subsampled OLS chain)
    for other in (full, _program(devices=devices[:3], chunk_size=5)):
        for index, result in reference.items():
            np.testing.assert_allclose(
                other[index].chains["excess_risk"], result.chains["excess_risk"], rtol=1e-4, atol=1e-6
            )
            np.testing.assert_allclose(other[index].mean("excess_risk"), result.mean("excess_risk"), rtol=1e-4)
            np.testing.assert_allclose(
                other[index].moments["excess_risk"].m2, result.moments["excess_risk"].m2, rtol=1e-4
            )
    subset = _program(devices=devices, chunk_size=16, selected=[1, 3])
    assert sorted(subset) == [1, 3]
    for index in (1, 3):  # same lanes, chunks and devices: bit for bit
        np.testing.assert_array_equal(
            subset[index].moments["excess_risk"].mean, full[index].moments["excess_risk"].mean
        )


KILL_SPEC = """
setting = "gaussian"
name = "kill-test"
[fixed]
generations = 30
chains = 64
chunk_size = 16
[axes]
dim = [1, 2, 3]
policy = ["replace", "accumulate"]
seed = [0, 11]
"""


def _sweep_command(spec, out, *extra):
    return [sys.executable, "-m", "collapse_jax", "sweep", str(spec), "--out", str(out), "--quiet", *extra]


def _environment(cache):
    env = dict(os.environ)
    env.pop("COLLAPSE_JAX_NO_CACHE", None)
    env["COLLAPSE_JAX_CACHE_DIR"] = str(cache)
    return env


def _check_cell_files(out):
    """Every non-temporary file under cells/ is complete: its JSON parses and its NPZ loads."""
    directory = os.path.join(out, "cells")
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        path = os.path.join(directory, name)
        if name.startswith(".tmp-"):
            continue
        if name.endswith(".json"):
            with open(path) as stream:
                json.load(stream)
            assert os.path.exists(path[:-5] + ".npz"), "a JSON mark without its NPZ"
        else:
            with np.load(path, allow_pickle=False) as data:
                [data[k] for k in data.files]


def test_sigkill_and_resume_reproduce_an_uninterrupted_sweep(tmp_path):
    spec = tmp_path / "kill.toml"
    spec.write_text(KILL_SPEC)
    env = _environment(tmp_path / "cache")
    out = tmp_path / "killed"
    rng = random.Random(20261121)
    cells_dir = out / "cells"

    def finished_cells():
        return len([n for n in os.listdir(cells_dir) if n.endswith(".json")]) if cells_dir.exists() else 0

    kills, finished_counts = 0, []
    for target in sorted(rng.sample(range(1, 11), 3)):  # kill soon after the target-th cell is written
        args = _sweep_command(spec, out, *(["--resume"] if (out / "manifest.json").exists() else []))
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while process.poll() is None and finished_cells() < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        _check_cell_files(str(out))
        finished_counts.append(finished_cells())
    assert kills >= 2, "the sweep finished too fast to be interrupted"
    final = subprocess.run(_sweep_command(spec, out, "--resume"), env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    reference = subprocess.run(_sweep_command(spec, tmp_path / "reference"), env=env, capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr
    killed, whole = load_sweep(str(out)), load_sweep(str(tmp_path / "reference"))
    assert killed.finished.all() and whole.finished.all()
    assert sorted(killed.arrays) == sorted(whole.arrays)
    for key in whole.arrays:  # identical, not merely close
        np.testing.assert_array_equal(killed.arrays[key], whole.arrays[key], err_msg=str(key))
    print("kills:", kills, "finished cells after each kill:", finished_counts)


def test_second_run_of_a_spec_does_not_recompile(tmp_path):
    spec = tmp_path / "small.toml"
    spec.write_text(
        textwrap.dedent("""
        setting = "regression"
        [fixed]
        generations = 4
        chains = 16
        [axes]
        dim = [2, 3]
        noise_var = [1.0, 2.0]
    """)
    )
    script = textwrap.dedent(f"""
        import sys, jax
        from jax import monitoring
        counts = {{"requests": 0, "hits": 0}}
        def listen(event, **kwargs):
            if event == "/jax/compilation_cache/compile_requests_use_cache": counts["requests"] += 1
            if event == "/jax/compilation_cache/cache_hits": counts["hits"] += 1
        monitoring.register_event_listener(listen)
        from collapse_jax.parallel import enable_compilation_cache
        enable_compilation_cache()
        from collapse_jax.sweep import run_sweep
        run_sweep({str(spec)!r}, sys.argv[1], progress=False)
        print(counts["requests"], counts["hits"])
    """)
    env = _environment(tmp_path / "cache")
    runs = []
    for out in ("first", "second"):
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / out)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        runs.append(tuple(int(v) for v in done.stdout.split()[-2:]))
    (requests1, hits1), (requests2, hits2) = runs
    assert requests1 > 0 and hits1 < requests1  # the first run compiled
    assert requests2 > 0 and hits2 == requests2  # the second found every program in the cache


def test_resume_rules_and_reading_back(tmp_path):
    out = str(tmp_path / "s")
    run_sweep(spec_with(axes={"noise_var": [1.0, 2.0], "samples": [12, 16]}), out, progress=False)
    with pytest.raises(ValueError, match="--resume"):
        run_sweep(spec_with(axes={"noise_var": [1.0, 2.0], "samples": [12, 16]}), out, progress=False)
    with pytest.raises(ValueError, match="different spec"):
        run_sweep(spec_with(axes={"noise_var": [1.0, 3.0], "samples": [12, 16]}), out, resume=True, progress=False)
    report = run_sweep(spec_with(axes={"noise_var": [1.0, 2.0], "samples": [12, 16]}), out, resume=True, progress=False)
    assert report.ran == 0 and report.skipped == 4
    # remove one cell: the loader shows it unfinished; a resume runs exactly that cell again
    results = load_sweep(out)
    victim = results.summaries[1, 0]["cell"]["id"]
    os.unlink(os.path.join(out, "cells", victim + ".json"))
    partial = load_sweep(out)
    assert partial.finished.tolist() == [[True, True], [False, True]]
    assert np.isnan(partial.get("excess_risk", noise_var=2.0, samples=12)).all()
    report = run_sweep(spec_with(axes={"noise_var": [1.0, 2.0], "samples": [12, 16]}), out, resume=True, progress=False)
    assert report.ran == 1
    again = load_sweep(out)
    np.testing.assert_array_equal(again.get("excess_risk"), results.get("excess_risk"))
    theory = again.get("excess_risk", "theory", samples=16)
    np.testing.assert_allclose(theory[:, 2], [2 * 1.0 * 4 / 11, 2 * 2.0 * 4 / 11], rtol=1e-6)
    ax = plot_sweep(again, "excess_risk", where={"samples": 16})
    assert len(ax.lines) == 4  # two means, two theory lines
    ax = plot_sweep(again, "excess_risk", x="noise_var", where={"samples": 12})
    assert len(ax.lines) == 2
    with pytest.raises(ValueError, match="x must be"):
        plot_sweep(again, "excess_risk", x="colour")


@pytest.mark.slow  # opens local ports and starts 3 processes; 1 failure (inside process_allgather) in 5 runs seen
def test_two_processes_run_one_sweep_and_process_zero_writes(tmp_path):
    """jax.distributed on localhost: 2 processes x 1 CPU device each = one sweep, the same numbers as one
    process (up to reduction order), written once."""
    spec = tmp_path / "mh.toml"
    spec.write_text('setting = "gaussian"\n[fixed]\ngenerations = 6\nchains = 40\n[axes]\ndim = [1, 2]\n')
    script = textwrap.dedent(f"""
        import sys
        from collapse_jax.parallel import initialize_distributed
        initialize_distributed("localhost:" + sys.argv[2], 2, int(sys.argv[1]))
        import jax
        from collapse_jax.sweep import run_sweep
        report = run_sweep({str(spec)!r}, {str(tmp_path / "multi")!r}, progress=False)
        print(jax.process_count(), jax.device_count(), report.ran)
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", COLLAPSE_JAX_NO_CACHE="1")
    port = str(20000 + random.Random(os.getpid()).randrange(20000))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(rank), port],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
        assert out.split()[-3:] == ["2", "2", "2"]
    single = subprocess.run(
        _sweep_command(spec, tmp_path / "single"), env=dict(env, XLA_FLAGS=""), capture_output=True, text=True
    )
    assert single.returncode == 0, single.stderr
    multi, one = load_sweep(str(tmp_path / "multi")), load_sweep(str(tmp_path / "single"))
    assert multi.finished.all() and multi.summaries[0]["num_devices"] == 2
    for key in one.arrays:
        np.testing.assert_allclose(multi.arrays[key], one.arrays[key], rtol=1e-5, atol=1e-6, err_msg=str(key))


# ------------------------------------------------------------------ spec types, the folder lock, damaged cells


def _wrong_types():
    """(spec, key named in the error) for every top-level key and every parameter of every setting, each
    given a value of the wrong type, in [fixed] and as an axis value."""
    from collapse_jax.settings import SETTINGS

    cases = [
        ({"setting": ["gaussian"]}, "setting"),
        ({"setting": 5}, "setting"),
        ({"setting": "gaussian", "name": 5}, "name"),
        ({"setting": "gaussian", "name": ""}, "name"),
        ({"setting": "gaussian", "description": 5}, "description"),
        ({"setting": "gaussian", "save_chains": "yes"}, "save_chains"),
        ({"setting": "gaussian", "save_chains": 1}, "save_chains"),
        ({"setting": "gaussian", "fixed": 5}, "fixed"),
        ({"setting": "gaussian", "fixed": [1]}, "fixed"),
        ({"setting": "gaussian", "axes": 5}, "axes"),
        ({"setting": "gaussian", "axes": ["dim"]}, "axes"),
        ({"setting": "gaussian", "axes": {"dim": 5}}, "axes.dim"),
        ({"setting": "gaussian", "axes": {"dim": "1, 2"}}, "axes.dim"),
    ]
    wrong = {bool: 1, int: "3", float: "0.5", str: 5, "list": 5}
    for name, definition in SETTINGS.items():
        for parameter in definition.all_parameters:
            value = wrong[parameter.kind]
            cases.append(({"setting": name, "fixed": {parameter.name: value}}, f"fixed.{parameter.name}"))
            if parameter.kind == "list":
                cases.append(({"setting": name, "fixed": {parameter.name: [1]}}, f"fixed.{parameter.name}"))
            if parameter.name not in NOT_AN_AXIS:
                cases.append(({"setting": name, "axes": {parameter.name: [value]}}, f"axes.{parameter.name}[0]"))
    return cases


@pytest.mark.parametrize("spec, key", _wrong_types(), ids=lambda v: v if isinstance(v, str) else None)
def test_every_spec_key_with_a_wrong_type_is_refused_by_name(spec, key, monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "prepare_program", lambda *a, **k: pytest.fail("compiled for an invalid spec"))
    with pytest.raises(ValueError) as error:
        run_sweep(spec, str(tmp_path / "out"), progress=False)
    message = str(error.value)
    assert message.startswith(key + ":") and "must be" in message and "\n" not in message, message
    assert not (tmp_path / "out").exists()


def _cli(args, capsys, monkeypatch):
    from collapse_jax import cli

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # main() may add a CPU flag
    code = cli.main(args)
    return code, capsys.readouterr().err


def test_command_line_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "prepare_program", lambda *a, **k: pytest.fail("compiled for an invalid spec"))
    cases = {
        "spectrum = 5": ('setting = "regression"\n[fixed]\nspectrum = 5\n', "fixed.spectrum: must be a string"),
        "setting list": ('setting = ["gaussian"]\n', "setting: must be a string"),
        "not TOML": ('setting = "gaussian\n', "not valid TOML"),
        "not UTF-8": (b'setting = "\xff"\n', "not UTF-8"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        code, err = _cli(["sweep", str(path), "--out", str(tmp_path / "never"), "--quiet"], capsys, monkeypatch)
        assert code == 2 and err.startswith("collapse-jax: error: ") and err.count("\n") == 1, (name, err)
        assert expected in err, (name, err)
    code, err = _cli(["sweep", str(tmp_path / "missing.toml"), "--resume"], capsys, monkeypatch)
    assert code == 2 and "missing.toml: no such file" in err and err.count("\n") == 1
    code, err = _cli(["sweep", str(tmp_path), "--resume"], capsys, monkeypatch)  # a directory
    assert code == 2 and "cannot read" in err and err.count("\n") == 1
    assert not (tmp_path / "never").exists()
    spec = tmp_path / "ok.toml"
    spec.write_text('setting = "gaussian"\n[fixed]\ngenerations = 2\nchains = 4\n')
    for manifest, expected in (
        ("[1, 2]", "a JSON object was expected, got list"),
        ("{not json", "not valid JSON"),
        ('{"cells": []}', "not a sweep manifest"),
    ):
        out = tmp_path / "bad"
        out.mkdir(exist_ok=True)
        (out / "manifest.json").write_text(manifest)
        code, err = _cli(["sweep", str(spec), "--out", str(out), "--resume"], capsys, monkeypatch)
        assert code == 2 and expected in err and str(out / "manifest.json") in err and err.count("\n") == 1, err
        assert not (out / "sweep.lock").exists()  # released
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for out, expected in (
        ("", "empty path"),
        (str(a_file), "is not a directory"),
        ("/dev/null", "is not a directory"),
        (str(a_file / "sub"), "Not a directory"),
    ):
        code, err = _cli(["sweep", str(spec), "--out", out, "--quiet"], capsys, monkeypatch)
        assert code == 2 and err.startswith("collapse-jax: error: out") and expected in err and err.count("\n") == 1, (
            err
        )


TINY = {
    "setting": "gaussian",
    "name": "tiny",
    "fixed": {"generations": 2, "chains": 4, "dim": 1, "samples": 5},
    "axes": {"seed": [0, 1, 2, 3, 4, 5, 6]},
}


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("mode", ["flock", "exclusive-create", "flock-unsupported"])
def test_the_folder_lock_refuses_a_second_run_and_takes_over_a_dead_ones(mode, tmp_path, monkeypatch, capsys):
    import errno
    import socket

    from collapse_jax import sweep
    from collapse_jax.sweep import locks

    monkeypatch.setattr(locks, "_FLOCK", mode != "exclusive-create")
    if mode == "flock-unsupported":  # as on a file system without flock: the exclusive create is used

        def no_flock(fd, operation):
            raise OSError(errno.ENOLCK, "No locks available")

        monkeypatch.setattr(locks.fcntl, "flock", no_flock)
    flock = mode == "flock"
    monkeypatch.setattr(runner, "prepare_program", lambda *a, **k: pytest.fail("compiled while locked out"))
    out = tmp_path / "s"
    held = locks.SweepLock.acquire(str(out))
    holder = json.loads((out / "sweep.lock").read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname() and holder["started"]
    for resume in (False, True):
        with pytest.raises(sweep.SweepBusy) as error:
            run_sweep(TINY, str(out), resume=resume, progress=False)
        message = str(error.value)
        assert f"{out} is in use by another sweep run" in message and f"pid {os.getpid()} on host" in message
    assert not (out / "manifest.json").exists()
    held.release()
    assert not (out / "sweep.lock").exists()
    # a lock left by a dead process on this host is taken over, with a message
    (out / "sweep.lock").write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "started": "x"}))
    capsys.readouterr()
    lock = locks.SweepLock.acquire(str(out))
    assert "taking over the lock left by a run that is gone" in capsys.readouterr().err
    assert json.loads((out / "sweep.lock").read_text())["pid"] == os.getpid()
    lock.release()
    if not flock:  # without flock a live pid, or another host's, cannot be known gone: refused
        for info in ({"pid": os.getpid(), "host": socket.gethostname()}, {"pid": _dead_pid(), "host": "elsewhere"}):
            (out / "sweep.lock").write_text(json.dumps(info))
            with pytest.raises(sweep.SweepBusy, match=f"remove {out / 'sweep.lock'}"):
                locks.SweepLock.acquire(str(out))


def test_two_resumed_runs_of_different_specs_into_one_new_folder(tmp_path):
    """The first run holds the folder (stopped mid-run here); the second is refused in one line naming the
    folder and the holder; once the first is done, the other spec is refused as a different spec."""
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('setting = "gaussian"\n[fixed]\ngenerations = 3\nchains = 8\n[axes]\ndim = [1, 2]\n')
    b.write_text('setting = "gaussian"\n[fixed]\ngenerations = 3\nchains = 8\n[axes]\ndim = [3, 4]\n')
    out = tmp_path / "shared"
    env = dict(os.environ, COLLAPSE_JAX_NO_CACHE="1")
    first = subprocess.Popen(
        _sweep_command(a, out, "--resume"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def holds_lock():  # the holder writes its name after taking the lock (the file exists a moment before)
        try:
            return json.loads((out / "sweep.lock").read_text())["pid"] == first.pid
        except (OSError, ValueError, KeyError):
            return False

    deadline = time.monotonic() + 120
    while not holds_lock() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    first.send_signal(signal.SIGSTOP)
    try:
        assert first.poll() is None, "the first run ended before it could be stopped"
        second = subprocess.run(_sweep_command(b, out, "--resume"), env=env, capture_output=True, text=True)
    finally:
        first.send_signal(signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert "starting a new sweep" in stderr
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert second.stderr.startswith(f"collapse-jax: error: out: {out} is in use by another sweep run (pid {first.pid}")
    again = subprocess.run(_sweep_command(b, out, "--resume"), env=env, capture_output=True, text=True)
    assert (
        again.returncode == 2
        and "different spec" in again.stderr
        and "axes.dim ([1, 2] there, [3, 4] here)" in again.stderr
    )
    results = load_sweep(str(out))
    assert results.finished.all() and results.axes == {"dim": [1, 2]}
    assert not (out / "sweep.lock").exists()


def test_a_resume_reruns_damaged_cells_and_says_so(tmp_path, capsys):
    out = tmp_path / "s"
    out.mkdir()  # empty: a resume starts a new sweep
    report = run_sweep(TINY, str(out), resume=True, progress=False)
    assert "no sweep there yet (no manifest.json): starting a new sweep" in capsys.readouterr().err
    assert report.ran == 7 and not (out / "sweep.lock").exists()
    before = load_sweep(str(out))
    ids = [s["cell"]["id"] for s in before.summaries]
    cells = out / "cells"
    record = json.loads((cells / f"{ids[0]}.json").read_text())["cell"]["npz"]
    assert record["bytes"] == os.path.getsize(cells / f"{ids[0]}.npz") and len(record["sha256"]) == 64

    def legacy(i):  # a record written before sizes and checksums were kept
        summary = json.loads((cells / f"{ids[i]}.json").read_text())
        del summary["cell"]["npz"]
        (cells / f"{ids[i]}.json").write_text(json.dumps(summary))

    def truncate(path):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    truncate(cells / f"{ids[1]}.npz")
    data = bytearray((cells / f"{ids[2]}.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    (cells / f"{ids[2]}.npz").write_bytes(bytes(data))
    os.unlink(cells / f"{ids[3]}.npz")
    truncate(cells / f"{ids[4]}.json")
    legacy(5)  # intact: finished
    legacy(6)
    truncate(cells / f"{ids[6]}.npz")
    with pytest.raises(Exception):
        load_sweep(str(out))  # what a resume repairs
    report = run_sweep(TINY, str(out), resume=True, progress=False)
    err = capsys.readouterr().err
    assert (report.damaged, report.ran, report.skipped) == (5, 5, 2), err
    for i, reason in (
        (1, "npz has"),
        (2, "npz does not match the SHA-256"),
        (3, "npz is missing"),
        (4, "json does not load"),
        (6, "npz does not load"),
    ):
        assert f"cell {ids[i]} (seed={i}) is damaged: cells/{ids[i]}.{reason}" in err, err
    assert err.count("running it again") == 5
    after = load_sweep(str(out))
    assert after.finished.all()
    for key in before.arrays:
        np.testing.assert_array_equal(after.arrays[key], before.arrays[key], err_msg=str(key))
    assert run_sweep(TINY, str(out), resume=True, progress=False).ran == 0
