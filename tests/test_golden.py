"""Outputs do not move: the golden cases (`tests/golden/cases.py`, every setting, pool rule, real-data option
and verifier) rerun and compared with the arrays recorded in `tests/golden/golden.npz`.

Bit-identity is checked on the recording machine with `python -m tests.golden.record --check`; here the
comparison allows float32 rounding (another CPU may fuse or vectorise differently). One case per setting
runs in the default tier, every case in the slow tier.
"""

import numpy as np
import pytest

from tests.golden.cases import CASES
from tests.golden.record import FAST_COMPILE, golden_path, run_case

FAST = {
    "gaussian-real-weight-shared",
    "regression-verifier-prune",
    "logistic-fixed",
    "discrete-accumulate-groups",
    "tails-shrinking",
    "kde-accumulate-fixed",
    "diffusion-gaussian",
    "gmm",
    "verification-oracle",
    "mixture-previous",
    "neural-regression",
}


def _cases():
    for name in CASES:
        marks = () if name in FAST else (pytest.mark.slow,)
        yield pytest.param(name, marks=marks, id=name)


@pytest.fixture(scope="module")
def golden():
    import os

    with np.load(golden_path(FAST_COMPILE in os.environ["XLA_FLAGS"].split())) as data:
        return {key: data[key] for key in data.files}


def test_fast_cases_cover_every_setting():
    from collapse_jax.settings import SETTINGS

    assert {CASES[name][0] for name in FAST} == set(SETTINGS)
    assert set(CASES) >= FAST


@pytest.mark.parametrize("name", list(_cases()))
def test_golden_case(name, golden):
    arrays = run_case(name)
    expected = {key: value for key, value in golden.items() if key.startswith(name + "/")}
    assert set(arrays) == set(expected)
    for key, value in arrays.items():
        np.testing.assert_allclose(value, expected[key], rtol=2e-5, atol=1e-6, equal_nan=True, err_msg=key)


def test_a_float32_run_after_an_x64_run_is_unchanged(golden):
    """JAX's x64 flag is global: an x64 run used to leave it on, so a float32 run after it in the same
    process drew and rounded differently (discrete counts moved). `simulate` now sets it per run."""
    import jax

    from collapse_jax.simulate import simulate

    simulate("gaussian", {"chains": 2, "generations": 2, "x64": True})
    assert jax.config.jax_enable_x64
    name = "discrete-accumulate-groups"
    arrays = run_case(name)
    for key, value in arrays.items():
        np.testing.assert_allclose(value, golden[key], rtol=2e-5, atol=1e-6, equal_nan=True, err_msg=key)
