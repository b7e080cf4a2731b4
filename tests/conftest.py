"""Test setup: 8 forced CPU devices (set before JAX is imported), so sharding is tested everywhere."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("COLLAPSE_JAX_NO_CACHE", "1")

import jax
import pytest


def pytest_report_header(config):
    return f"jax {jax.__version__}, devices: {jax.device_count()} x {jax.devices()[0].device_kind}"


@pytest.fixture(scope="session")
def devices():
    assert jax.device_count() == 8, "tests expect 8 forced CPU devices (XLA_FLAGS set in conftest.py)"
    return jax.devices()
