"""The estimator protocol: what a model class must provide to be run in a chain.

An estimator is a `NamedTuple` of pure functions, configured by its factory (closure), never at call
time, so that a sweep over array-valued hyperparameters does not recompile.

Shapes: `data` is `(n, *event_shape)` with a static `n`; `weights` is `(n,)`, non-negative, zero on
empty slots, so variable-size pools keep a static shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

Params = Any  # a pytree of arrays
Stats = Any  # a pytree of arrays (mergeable sufficient statistics)


class Estimator(NamedTuple):
    """A model class and its fitting procedure.

    Required:
      fit(key, data, weights) -> params: fit to the weighted points.
      sample(key, params, n) -> data: `n` (a static int) independent draws from the fitted model.

    Optional (all or none), for models with mergeable sufficient statistics:
      statistics(data, weights) -> stats: the statistics of a weighted point set.
      merge(stats_a, stats_b) -> stats: the statistics of the union of two point sets.
      fit_statistics(key, stats) -> params: the same fit as `fit`, from statistics.
      sample_statistics(key, params, n) -> stats: the statistics of `n` draws from the model, drawn from
        their exact joint law (`n` may be a traced integer); its cost must not grow with `n`.

    With statistics, `accumulate` keeps O(1) memory and the chain can run on the exact
    sufficient-statistic path (`method="sufficient"`), whose cost does not grow with the sample size.

    Optional, each on its own:
      draw_statistics(key, params, n) -> stats: the statistics of the very draws `sample(key, params, n)`
        (n static), computed in the model's own frame: equal to `statistics(sample(key, params, n),
        ones)` up to rounding, but exact to relative precision when the model's spread has collapsed far
        below its location, where the draws themselves round to it. The sample path uses it for every
        unweighted synthetic batch that only enters the fit through its statistics (pool rule replace,
        or accumulate with statistics; no verifier, no mixture draw).
      merge_own_draws(key, pool, params, n) -> stats: `merge(pool, sample_statistics(key, params, n))`
        (the same draws: equal up to rounding) where `params` is `fit_statistics(pool)`, possibly
        tempered, so the draws share the pool's frame; the sufficient path of a growing pool with no
        real points and no tilt uses it (a Gaussian extends its pool by one well-conditioned d x d
        Cholesky in the pool's frame instead of a QR of the stacked roots).
      refit(key, previous_params, data, weights) -> params: the fit of generations k >= 2, which may
        start from model k-1 (a warm-started network); `fit` is then used for model 1 only.
      sample_candidates(key, params, n, k) -> data `(n * k, ...)`: k candidate outputs for each of n
        shared inputs (rows i k .. i k + k - 1 share input i), for a best-of-k verifier that picks among
        the answers to one prompt; without it, best-of-k compares k independent draws.
      weigh_statistics(stats, factor) -> stats: the statistics of the same points with every weight
        multiplied by `factor` > 0 (may be traced); with it, weighted real and synthetic points
        (`ChainSpec.real_weighted`) also run on the sufficient path (each part's drawn statistics weighed,
        then merged: exact, as merging weighted statistics is).
      temper(params, temperature) -> params: the model sampled at a temperature tau > 0 (Marchi et al.
        2024), expressed as parameters of the same class (a Gaussian's covariance times tau, a
        categorical law raised to 1/tau and renormalised); the chain draws its synthetic points from
        `temper(params, tau)` when `ChainSpec.tempered` (real points are never tempered).

    Flag:
      whole_weights: the fit counts whole points (an empirical law's integer counts), so the chain
        refuses fractional weights (`ChainSpec.real_weighted`) for it.
    """

    name: str
    fit: Callable[..., Params]
    sample: Callable[..., Any]
    statistics: Callable[..., Stats] | None = None
    merge: Callable[..., Stats] | None = None
    fit_statistics: Callable[..., Params] | None = None
    sample_statistics: Callable[..., Stats] | None = None
    draw_statistics: Callable[..., Stats] | None = None
    merge_own_draws: Callable[..., Stats] | None = None
    refit: Callable[..., Params] | None = None
    sample_candidates: Callable[..., Any] | None = None
    temper: Callable[..., Params] | None = None
    weigh_statistics: Callable[..., Stats] | None = None
    whole_weights: bool = False  # fits count whole points (weights are truncated to integers)

    @property
    def has_statistics(self) -> bool:
        return self.statistics is not None and self.merge is not None and self.fit_statistics is not None

    @property
    def has_sufficient_path(self) -> bool:
        return self.has_statistics and self.sample_statistics is not None
