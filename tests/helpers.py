"""Shared test helpers."""

import math

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


def within_se(mc, prediction, z=5.0):
    """max |z| of Monte Carlo means `(R, G+1)` against a prediction `(G+1,)`, with SE from the draws; a
    constant column (e.g. no extinction seen in R chains) must equal the prediction within ~ z / R."""
    mc = np.asarray(mc, float)
    mean, se = mc.mean(0), mc.std(0, ddof=1) / math.sqrt(mc.shape[0])
    pred = np.asarray(prediction, float)
    deterministic = se <= 1e-12 * (1 + np.abs(mean))
    assert np.allclose(mean[deterministic], pred[deterministic], atol=1e-9 + z / mc.shape[0]), (mean, pred)
    gap = np.abs(mean - pred)[~deterministic] / se[~deterministic]
    return float(gap.max()) if gap.size else 0.0


def z_of(draws, value):
    """|mean - value| / SE of scalar draws (SE from the draws); constant draws must equal the value up to
    float32 rounding (0 then, else inf)."""
    draws = np.asarray(draws, np.float64)
    se = draws.std(ddof=1) / math.sqrt(draws.size)
    gap = abs(draws.mean() - value)
    if se <= 1e-12:
        return 0.0 if gap <= 1e-6 * max(1.0, abs(value)) else math.inf
    return gap / se


def unit_directions(rng, chains, dim):
    """`(chains, dim)` directions uniform on the unit sphere (NumPy generator `rng`)."""
    v = rng.standard_normal((chains, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)
