"""Shared test helpers."""

import numpy as np

from collapse_jax.settings import get_setting


def build(**overrides):
    """(Setting, ChainSpec, config) of the Gaussian setting with overrides."""
    definition = get_setting("gaussian")
    config = definition.resolve(overrides)
    setting, spec = definition.instantiate(config)
    return setting, spec, config


def assert_histories_close(a: dict, b: dict, rtol=1e-5, atol=1e-6):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(np.asarray(a[name]), np.asarray(b[name]), rtol=rtol, atol=atol, err_msg=name)


def z_scores(entry: dict) -> np.ndarray:
    """(mean - theory) / se per generation, NaN where not comparable or not checkable."""
    mean = np.array([np.nan if v is None else v for v in entry["mean"]])
    theory = np.array([np.nan if v is None else v for v in entry["theory"]])
    se = np.array([np.nan if v is None else v for v in entry["se"]])
    checkable = np.array(entry["checkable"] or [True] * len(mean))
    z = (mean - theory) / np.where(se > 0, se, np.nan)
    return np.where(checkable, z, np.nan)
