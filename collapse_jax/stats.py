"""Streaming per-generation statistics over chains (host side, float64).

Chunks of chains are reduced on the device to (count, mean, M2, non-finite counts) per generation; the
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


def reduce_chunk(values, valid):
    """Device-side reduction of one chunk. values: `(chains, points)`; valid: `(chains,)` bool."""
    import jax.numpy as jnp

    finite = jnp.isfinite(values) & valid[:, None]
    count = jnp.sum(finite, axis=0).astype(values.dtype)
    mean = jnp.sum(jnp.where(finite, values, 0.0), axis=0) / jnp.maximum(count, 1.0)
    m2 = jnp.sum(jnp.where(finite, (values - mean) ** 2, 0.0), axis=0)
    nan = jnp.sum(jnp.isnan(values) & valid[:, None], axis=0)
    posinf = jnp.sum((values == jnp.inf) & valid[:, None], axis=0)
    neginf = jnp.sum((values == -jnp.inf) & valid[:, None], axis=0)
    return count, mean, m2, nan, posinf, neginf


def quantiles(values: np.ndarray, levels=QUANTILES) -> dict[str, np.ndarray]:
    """Quantiles per generation of `(chains, points)` values; infinities count as values, NaN is ignored."""
    out = {}
    for level in levels:
        with np.errstate(invalid="ignore"):
            q = np.nanquantile(values, level, axis=0, method="inverted_cdf") if values.size else np.full(
                values.shape[1:], np.nan
            )
        out[str(level)] = q
    return out
