"""The multi-device invariance checks, run together in one subprocess with 8 forced CPU devices.

The main test process has one CPU device (conftest.py); every test that takes the `devices` fixture or is
marked `multidevice` is deselected there and run here: the default tier's in one subprocess, the slow tier's
(`-m slow`) in another.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_multidevice_tests(markexpr: str) -> str:
    env = dict(os.environ, COLLAPSE_JAX_TEST_DEVICES="8", COLLAPSE_JAX_NO_CACHE="1")
    env.pop("PYTEST_ADDOPTS", None)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "0",
        "-m",
        markexpr,
        "--durations=0",
    ]
    done = subprocess.run(command + ["tests"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    report = done.stdout[-20000:]
    print(report)  # every multi-device test and its duration (shown with -s, or on failure)
    assert done.returncode == 0, report + done.stderr[-3000:]
    last = report.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", last) and "failed" not in last and "error" not in last, report
    return last


def test_multidevice_checks_pass_on_8_forced_cpu_devices():
    _run_multidevice_tests("multidevice and not slow")


@pytest.mark.slow
def test_slow_multidevice_checks_pass_on_8_forced_cpu_devices():
    _run_multidevice_tests("multidevice and slow")
