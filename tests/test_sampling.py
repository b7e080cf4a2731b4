"""Exact subsampling without replacement (accumulate-subsample's draw of M points from the pool)."""

import math
from collections import Counter

import jax
import numpy as np
import pytest
import scipy.stats

from collapse_jax.chain import distinct_uniform_indices


@pytest.mark.parametrize("population, count", [(6, 3), (8, 2), (5, 4)])
def test_subsets_are_distinct_and_uniform(population, count):
    keys = jax.random.split(jax.random.key(20261121), 60_000)
    draw = jax.jit(jax.vmap(lambda key: distinct_uniform_indices(key, population, count, 16)))
    subsets = np.sort(np.asarray(draw(keys)), axis=1)
    assert subsets.min() >= 0 and subsets.max() < population
    assert np.all(np.diff(subsets, axis=1) > 0)  # distinct
    counts = np.array(list(Counter(map(tuple, subsets)).values()))
    cells = math.comb(population, count)
    assert len(counts) == cells
    # chi-square goodness of fit to the uniform law on the C(population, count) subsets, level 1e-4
    assert scipy.stats.chisquare(counts).pvalue > 1e-4


def test_whole_population_and_traced_population():
    np.testing.assert_array_equal(distinct_uniform_indices(jax.random.key(0), 5, 5, 10), np.arange(5))
    draw = jax.jit(lambda key, population: distinct_uniform_indices(key, population, 4, 40))
    for population in (4, 9, 40):
        chosen = np.asarray(draw(jax.random.key(1), population))
        assert len(set(chosen.tolist())) == 4 and chosen.max() < population


def test_the_test_detects_a_biased_sampler():
    """Power: the chi-square bound above rejects a sampler that favours low indices."""
    rng = np.random.default_rng(0)
    weights = np.array([1.3, 1, 1, 1, 1, 1.0])
    subsets = [tuple(sorted(rng.choice(6, 3, replace=False, p=weights / weights.sum()))) for _ in range(60_000)]
    counts = np.array(list(Counter(subsets).values()))
    assert len(counts) == 20 and scipy.stats.chisquare(counts).pvalue < 1e-4
