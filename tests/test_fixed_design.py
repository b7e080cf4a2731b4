"""The fixed-design regression shortcut: one factorisation per chain, the same fits up to rounding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.models.regression.model import make_linear_regression

ONES = lambda n: jnp.ones((n,), jnp.float32)


def _estimators(dim, rows, ridge, full_rank, labels=1):
    design = jax.random.normal(jax.random.key(1), (rows, dim))
    make = lambda fixed: make_linear_regression(
        dim, ridge=ridge, noise_std=0.7, design=design, full_rank=full_rank, labels=labels, fixed_design_fits=fixed
    )
    return design, make(False), make(True)


@pytest.mark.parametrize(
    "dim, rows, ridge, full_rank, labels",
    [(5, 40, 0.0, True, 1), (5, 40, 0.3, True, 2), (12, 8, 0.0, False, 1), (12, 8, 0.1, False, 1)],
)
def test_fixed_fits_match_the_general_fit(dim, rows, ridge, full_rank, labels):
    """Replace and accumulate (k copies of the design) give the general fit's weights."""
    _, general, fixed = _estimators(dim, rows, ridge, full_rank, labels)
    weights = jax.random.normal(jax.random.key(2), (dim, labels))
    batches = [general.sample(jax.random.key(3 + k), weights, rows) for k in range(3)]
    pool = general.statistics(batches[0], ONES(rows))
    for k, batch in enumerate(batches):
        if k:
            pool = general.merge(pool, general.statistics(batch, ONES(rows)))
        for stats in (general.statistics(batch, ONES(rows)), pool):
            expected = general.fit_statistics(None, stats)
            np.testing.assert_allclose(fixed.fit_statistics(None, stats), expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("labels", [1, 2])
def test_draw_statistics_are_those_of_the_draws(labels):
    """draw_statistics keeps sample's random numbers and gives the statistics of its rows."""
    dim, rows = 6, 30
    _, general, fixed = _estimators(dim, rows, 0.0, True, labels)
    weights = jax.random.normal(jax.random.key(4), (dim, labels))
    key = jax.random.key(5)
    expected = general.statistics(general.sample(key, weights, rows), ONES(rows))
    for estimator in (general, fixed):
        drawn = estimator.draw_statistics(key, weights, rows)
        for got, want in zip(drawn, expected):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_fixed_design_fits_need_a_fixed_design():
    with pytest.raises(ValueError, match="fixed_design_fits"):
        make_linear_regression(3, ridge=0.0, noise_std=1.0, fixed_design_fits=True)


def test_fixed_fits_stay_accurate_on_a_near_square_design():
    """The factor inverted once (T = d + 1: condition number of X^T X in the thousands) is as accurate in
    float32 as two substitutions per fit, against float64 least squares."""
    dim, rows = 50, 51
    design, general, fixed = _estimators(dim, rows, 0.0, True)
    weights = jax.random.normal(jax.random.key(6), (dim, 1))
    batch = general.sample(jax.random.key(7), weights, rows)
    stats = general.statistics(batch, ONES(rows))
    x64, y64 = np.asarray(batch[:, :dim], np.float64), np.asarray(batch[:, dim:], np.float64)
    exact = np.linalg.lstsq(x64, y64, rcond=None)[0]
    scale = np.linalg.norm(exact)
    general_error = np.linalg.norm(np.asarray(general.fit_statistics(None, stats), np.float64) - exact) / scale
    fixed_error = np.linalg.norm(np.asarray(fixed.fit_statistics(None, stats), np.float64) - exact) / scale
    assert np.linalg.cond(x64.T @ x64) > 1e3
    assert fixed_error <= max(4 * general_error, 1e-4), (fixed_error, general_error)
