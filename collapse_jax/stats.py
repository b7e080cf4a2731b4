"""Streaming per-generation statistics over chains (host side, float64).

Chunks of chains are reduced on the device to (count, mean, M2, non-finite counts) per cell and generation; the
host merges those with Chan et al.'s parallel update, so no per-chain array of all chains is kept.
Quantiles come from a fixed reservoir: the first `quantile_chains` chains (chains are i.i.d., so these
are an unbiased sample of the chain population).
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.05, 0.5, 0.95)


class StreamingMoments:
    """Mean and variance of the finite values of one metric, per generation, merged chunk by chunk."""

    def __init__(self, num_points: int):
        self.count = np.zeros(num_points)
        self.mean = np.zeros(num_points)
        self.m2 = np.zeros(num_points)
        self.nan = np.zeros(num_points, np.int64)
        self.posinf = np.zeros(num_points, np.int64)
        self.neginf = np.zeros(num_points, np.int64)

    def merge_chunk(self, count, mean, m2, nan, posinf, neginf) -> None:
        count, mean, m2 = (np.asarray(a, np.float64) for a in (count, mean, m2))
        total = self.count + count
        safe = np.maximum(total, 1.0)
        delta = mean - self.mean
        self.mean = self.mean + delta * count / safe
        self.m2 = self.m2 + m2 + delta**2 * self.count * count / safe
        self.count = total
        self.nan += np.asarray(nan, np.int64)
        self.posinf += np.asarray(posinf, np.int64)
        self.neginf += np.asarray(neginf, np.int64)

    def merge_parts(self, count, mean, m2, nan, posinf, neginf) -> None:
        """Merge several partial reductions at once (leading axis: parts, e.g. one per device)."""
        count, mean, m2 = (np.asarray(a, np.float64) for a in (count, mean, m2))
        total = count.sum(axis=0)
        combined = (count * mean).sum(axis=0) / np.maximum(total, 1.0)
        spread = m2.sum(axis=0) + (count * (mean - combined) ** 2).sum(axis=0)
        self.merge_chunk(total, combined, spread, *(np.asarray(a).sum(axis=0) for a in (nan, posinf, neginf)))

    @property
    def nonfinite(self) -> np.ndarray:
        return self.nan + self.posinf + self.neginf

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / np.maximum(self.count - 1.0, 1.0))

    @property
    def standard_error(self) -> np.ndarray:
        return self.std / np.sqrt(np.maximum(self.count, 1.0))

    def finite_mean(self) -> np.ndarray:
        """Mean over finite chain values (NaN where no chain is finite)."""
        return np.where(self.count > 0, self.mean, np.nan)


def reduce_segments(values, segment, valid, num_segments: int):
    """Device-side reduction of one chunk per segment (cell).

    values: `(lanes, points)`; segment: `(lanes,)` int in [0, num_segments); valid: `(lanes,)` bool.
    Returns (count, mean, m2, nan, +inf, -inf), each `(num_segments, points)`; means and M2 are over
    the finite values (a pilot mean, corrected by the mean deviation from it, then squared deviations).
    """
    import jax
    import jax.numpy as jnp

    def total(x):
        return jax.ops.segment_sum(x, segment, num_segments=num_segments)

    mask = valid[:, None]
    finite = jnp.isfinite(values) & mask
    count = total(finite.astype(values.dtype))
    pilot = total(jnp.where(finite, values, 0.0)) / jnp.maximum(count, 1.0)
    # a float32 scatter-sum of 10^4 values is off by up to ~n eps relative: correct the pilot mean with the
    # sum of the (small) deviations from it, so identical values give their value exactly
    mean = pilot + total(jnp.where(finite, values - pilot[segment], 0.0)) / jnp.maximum(count, 1.0)
    m2 = total(jnp.where(finite, (values - mean[segment]) ** 2, 0.0))
    nan = total((jnp.isnan(values) & mask).astype(jnp.int32))
    posinf = total(((values == jnp.inf) & mask).astype(jnp.int32))
    neginf = total(((values == -jnp.inf) & mask).astype(jnp.int32))
    return count, mean, m2, nan, posinf, neginf


def quantiles(values: np.ndarray, levels=QUANTILES) -> dict[str, np.ndarray]:
    """Quantiles per generation of `(chains, points)` values; infinities count as values, NaN is ignored."""
    out = {}
    for level in levels:
        with np.errstate(invalid="ignore"):
            q = (
                np.nanquantile(values, level, axis=0, method="inverted_cdf")
                if values.size
                else np.full(values.shape[1:], np.nan)
            )
        out[str(level)] = q
    return out
