"""The LAPACK route on one CPU device (the default there), checked in a subprocess against the pure route.

The rest of the suite forces 8 CPU devices (conftest.py), where `linalg.lapack_is_safe()` is False and the
pure-array factorisations run; this file covers the other route, which one-device users get.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = r"""
import json, os
import jax, jax.numpy as jnp
from collapse_jax import linalg
from collapse_jax.simulate import simulate

assert jax.device_count() == 1
out = {"safe": linalg.lapack_is_safe()}
matrix = jnp.eye(4) + jnp.ones((3, 4, 4))
program = jax.jit(jax.vmap(linalg.spd_solve)).lower(matrix, jnp.ones((3, 4))).as_text()
out["lapack_call"] = "lapack_" in program
out["one_matrix_per_call"] = "while" in program  # the lax.map over the batch
runs = {
    "wishart": ("regression", dict(method="sufficient", dim=8, samples=20, design="fresh", generations=6,
                                   chains=64, metrics=("excess_risk",))),
    "gaussian": ("gaussian", dict(dim=4, samples=20, generations=6, chains=64,
                                  metrics=("mean_error_sq", "log_det_ratio", "w2_sq", "kl_divergence"))),
}
for route in ("lapack", "pure"):
    os.environ["COLLAPSE_JAX_CPU_LAPACK"] = "1" if route == "lapack" else "0"
    out[route + "_safe"] = linalg.lapack_is_safe()
    for name, (setting, config) in runs.items():
        summary = simulate(setting, config)
        out[route + "_" + name] = {m: e["mean"] for m, e in summary["metrics"].items()}
print("RESULT" + json.dumps(out))
"""


def test_lapack_route_on_one_cpu_device_matches_the_pure_route():
    env = dict(os.environ)
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    env["JAX_PLATFORMS"] = "cpu"
    env["COLLAPSE_JAX_NO_CACHE"] = "1"
    env.pop("COLLAPSE_JAX_CPU_LAPACK", None)
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.split("RESULT", 1)[1])
    assert out["safe"] and out["lapack_safe"] and not out["pure_safe"]
    assert out["lapack_call"] and out["one_matrix_per_call"]
    for name in ("wishart", "gaussian"):
        lapack, pure = out["lapack_" + name], out["pure_" + name]
        assert lapack.keys() == pure.keys()
        for metric in lapack:
            np.testing.assert_allclose(lapack[metric], pure[metric], rtol=2e-4, atol=1e-5, err_msg=f"{name} {metric}")


def test_lapack_override_values(monkeypatch):
    from collapse_jax import linalg

    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "0")
    assert not linalg.lapack_is_safe()
    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "force")
    assert linalg.lapack_is_safe()
    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "1")
    assert not linalg.lapack_is_safe()  # 8 forced CPU devices: the pure route
    monkeypatch.setenv("COLLAPSE_JAX_CPU_LAPACK", "yes")
    with pytest.raises(ValueError, match="COLLAPSE_JAX_CPU_LAPACK"):
        linalg.lapack_is_safe()
