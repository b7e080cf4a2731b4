"""The LAPACK route (the default on one CPU device, as this test process has) against the pure-array route.

`COLLAPSE_JAX_CPU_LAPACK=0` forces the pure route; with several CPU devices the pure route is the default
(checked in the 8-device subprocess, tests/test_multidevice.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax import linalg
from collapse_jax.simulate import simulate

RUNS = {
    "wishart": (
        "regression",
        dict(
            method="sufficient", dim=8, samples=20, design="fresh", generations=6, chains=64, metrics=("excess_risk",)
        ),
    ),
    "gaussian": (
        "gaussian",
        dict(
            dim=4,
            samples=20,
            generations=6,
            chains=64,
            metrics=("mean_error_sq", "log_det_ratio", "w2_sq", "kl_divergence"),
        ),
    ),
}


def _means(summary):
    return {m: np.asarray(e["mean"], float) for m, e in summary["metrics"].items()}


def test_lapack_route_on_one_cpu_device_matches_the_pure_route(monkeypatch):
    assert jax.device_count() == 1
    monkeypatch.delenv("COLLAPSE_JAX_CPU_LAPACK", raising=False)
    assert linalg.lapack_is_safe()
    matrix = jnp.eye(4) + jnp.ones((3, 4, 4))
    program = jax.jit(jax.vmap(linalg.spd_solve)).lower(matrix, jnp.ones((3, 4))).as_text()
    assert "lapack_" in program
    assert "while" in program  # one matrix per LAPACK call: the lax.map over the batch
    lapack = {name: _means(simulate(setting, config)) for name, (setting, config) in RUNS.items()}
    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "0")
    assert not linalg.lapack_is_safe()
    assert "lapack_" not in jax.jit(jax.vmap(linalg.spd_solve)).lower(matrix, jnp.ones((3, 4))).as_text()
    pure = {name: _means(simulate(setting, config)) for name, (setting, config) in RUNS.items()}
    for name in RUNS:
        assert lapack[name].keys() == pure[name].keys()
        for metric in lapack[name]:
            np.testing.assert_allclose(
                lapack[name][metric], pure[name][metric], rtol=2e-4, atol=1e-5, err_msg=f"{name} {metric}"
            )


def test_lapack_override_values(monkeypatch):
    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "0")
    assert not linalg.lapack_is_safe()
    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "force")
    assert linalg.lapack_is_safe()
    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "1")
    assert linalg.lapack_is_safe()  # one CPU device
    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "yes")
    with pytest.raises(ValueError, match="COLLAPSE_JAX_CPU_LAPACK"):
        linalg.lapack_is_safe()


@pytest.mark.multidevice
def test_several_cpu_devices_take_the_pure_route_unless_forced(monkeypatch):
    assert jax.device_count() == 8
    monkeypatch.delenv("COLLAPSE_JAX_CPU_LAPACK", raising=False)
    assert not linalg.lapack_is_safe()
    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "1")
    assert not linalg.lapack_is_safe()
    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "force")
    assert linalg.lapack_is_safe()
