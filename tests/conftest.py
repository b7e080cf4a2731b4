"""Test setup: one CPU device, as users run it, so the production paths (LAPACK on one CPU device) are tested.

Tests that need several devices (they take the `devices` fixture, or carry `@pytest.mark.multidevice`) are
deselected here and run together in one subprocess with 8 forced CPU devices
(tests/test_multidevice.py starts it with COLLAPSE_JAX_TEST_DEVICES=8). To run them directly:

    COLLAPSE_JAX_TEST_DEVICES=8 python -m pytest -m multidevice
"""

import os

TEST_DEVICES = int(os.environ.get("COLLAPSE_JAX_TEST_DEVICES", "1"))
FAST_COMPILE = "--xla_backend_optimization_level=0"
_flags = [
    f
    for f in os.environ.get("XLA_FLAGS", "").split()
    if "xla_force_host_platform_device_count" not in f and f != FAST_COMPILE
]
os.environ["XLA_FLAGS"] = " ".join([*_flags, f"--xla_force_host_platform_device_count={TEST_DEVICES}"])
os.environ.setdefault("COLLAPSE_JAX_NO_CACHE", "1")

import jax  # noqa: E402  (after XLA_FLAGS)
import pytest  # noqa: E402


def pytest_configure(config):
    """The default tier compiles with LLVM's optimisations off (the same XLA programs, about half the compile
    time, which dominates these small runs); the slow tier (`-m slow`), and COLLAPSE_JAX_TEST_FULL_OPT=1,
    compile as users do. XLA reads XLA_FLAGS when its CPU client starts, after this hook."""
    markexpr = config.option.markexpr or ""
    if "not slow" in markexpr and not os.environ.get("COLLAPSE_JAX_TEST_FULL_OPT"):
        os.environ["XLA_FLAGS"] += " " + FAST_COMPILE


def pytest_report_header(config):
    return (
        f"jax {jax.__version__}, devices: {jax.device_count()} x {jax.devices()[0].device_kind}, "
        f"XLA_FLAGS={os.environ['XLA_FLAGS']}"
    )


def pytest_collection_modifyitems(config, items):
    """Mark every test that takes `devices` as multidevice; keep them only in the 8-device process."""
    for item in items:
        if "devices" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.multidevice)
    if TEST_DEVICES > 1:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("multidevice") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def devices():
    assert jax.device_count() == 8, "multidevice tests run with COLLAPSE_JAX_TEST_DEVICES=8 (tests/test_multidevice.py)"
    return jax.devices()
