"""`collapse-jax simulate|sweep --cpu-devices`: on a CPU-only install the chains run on one CPU device per
core (XLA runs a program on one thread per device) with LAPACK one matrix per call, and get the same
results as on one device (the draws depend on the chain, never on the devices)."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from collapse_jax import cli

SPEC = """
setting = "gaussian"
name = "devices"
[fixed]
generations = 6
chains = 40
dim = 3
metrics = ["mean_error_sq", "log_det_ratio", "kl_divergence"]
[axes]
samples = [30]
policy = ["replace", "accumulate-subsample"]
"""


@pytest.mark.parametrize("requested", [-1, 65, 2.5, True])
def test_bad_device_counts_are_refused(requested):
    with pytest.raises(ValueError, match=r"cpu_devices \(--cpu-devices\) must be an integer in \[0, 64\]"):
        cli.cpu_device_count(requested)


def test_zero_is_one_device_per_core_up_to_the_cap(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)), raising=False)
    assert cli.cpu_device_count(0) == 2 and cli.cpu_device_count(3) == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert cli.cpu_device_count(0) == cli.MAX_AUTO_CPU_DEVICES


def test_a_process_whose_jax_has_started_is_left_alone(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=1")
    monkeypatch.delenv("COLLAPSE_JAX_CPU_LAPACK", raising=False)
    cli.cpu_devices_flags(4)  # this test process has imported JAX: its device count can no longer change
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=1"
    assert "COLLAPSE_JAX_CPU_LAPACK" not in os.environ


def test_a_bad_count_on_the_command_line_is_one_line(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    assert cli.main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--cpu-devices", "-2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("collapse-jax: error: cpu_devices (--cpu-devices)") and err.count("\n") == 1, err


def _command(tmp_path, args, devices):
    """`collapse-jax ARGS --cpu-devices N` in a fresh process, as a user's shell would start it (no device
    count, LAPACK choice or test settings inherited from this process)."""
    env = dict(os.environ, COLLAPSE_JAX_CACHE_DIR=str(tmp_path / "cache"))
    for key in ("XLA_FLAGS", "COLLAPSE_JAX_CPU_LAPACK", "COLLAPSE_JAX_NO_CACHE", "COLLAPSE_JAX_TEST_DEVICES"):
        env.pop(key, None)
    command = [sys.executable, "-m", "collapse_jax", *args, "--quiet", "--cpu-devices", str(devices)]
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def _sweep(tmp_path, spec, name, devices):
    out = tmp_path / name
    _command(tmp_path, ["sweep", str(spec), "--out", str(out)], devices)
    cells = {}
    for path in glob.glob(str(out / "cells" / "*.json")):
        with open(path) as stream:
            record = json.load(stream)
        cells[os.path.basename(path)] = record
    return cells


def test_two_devices_give_the_one_device_results(tmp_path):
    """Cholesky fits (M >= 3d), log det and KL through LAPACK one matrix per call on 2 devices: every cell's
    means equal the 1-device run's (up to float32 reassociation of the per-device sums)."""
    spec = tmp_path / "devices.toml"
    spec.write_text(SPEC)
    one, two = _sweep(tmp_path, spec, "one", 1), _sweep(tmp_path, spec, "two", 2)
    assert len(one) == len(two) == 2 and set(one) == set(two)
    for name, record in two.items():
        assert record["num_devices"] == 2 and one[name]["num_devices"] == 1
        for metric, entry in record["metrics"].items():
            np.testing.assert_allclose(entry["mean"], one[name]["metrics"][metric]["mean"], rtol=2e-5, atol=1e-6)


def _simulate(tmp_path, name, devices):
    """`collapse-jax simulate` (fresh-design OLS: LAPACK Cholesky and solves) on `devices` CPU devices, in a
    fresh process: (summary, per-chain excess risks)."""
    out = tmp_path / name
    sizes = "--dim 10 --samples 40 --generations 8 --chains 51 --design fresh --metrics excess_risk"
    _command(tmp_path, ["simulate", "regression", *sizes.split(" "), "--save-chains", "--out", str(out)], devices)
    with open(out / "summary.json") as stream:
        summary = json.load(stream)
    with np.load(out / "chains.npz") as chains:
        return summary, chains["excess_risk"]


def test_simulate_on_two_devices_gives_every_chain_of_one(tmp_path):
    """An odd chain count (51 lanes padded to 52 on 2 devices): every chain bit for bit the 1-device chain."""
    (one, chains_one), (two, chains_two) = _simulate(tmp_path, "one", 1), _simulate(tmp_path, "two", 2)
    assert one["num_devices"] == 1 and two["num_devices"] == 2
    assert chains_one.shape == chains_two.shape == (51, 9)
    np.testing.assert_array_equal(chains_two, chains_one)
