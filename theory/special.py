"""Special functions in NumPy float64 for the closed forms (no compilation, no SciPy import).

Accurate to a few units in the last place on the arguments theory uses (x >= 0.5 for the digamma family):
the recurrence shifts x above `_SHIFT`, then the asymptotic series with Bernoulli numbers is summed.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

_SHIFT = 20.0  # the asymptotic series is used for x >= _SHIFT (its next term is below 1e-20 there)
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)  # B_2, B_4, ..., B_16


def gammaln(x):
    """log Gamma(x) elementwise (x > 0), from the C library's lgamma."""
    x = np.asarray(x, np.float64)
    return np.vectorize(math.lgamma, otypes=[np.float64])(x) if x.size else x.copy()


def xlogy(x, y):
    """x log y, 0 where x = 0."""
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(y))


def xlog1py(x, y):
    """x log(1 + y), 0 where x = 0."""
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log1p(y))


def polygamma(order: int, x):
    """psi^(order)(x) elementwise for x > 0 (order 0 is the digamma function).

    psi^(n)(x) = psi^(n)(x + s) - (-1)^n n! sum_{i<s} (x + i)^-(n+1), and for large x
    psi(x) ~ log x - 1/(2x) - sum_k B_2k / (2k x^2k),
    psi^(n)(x) ~ (-1)^(n+1) [(n-1)!/x^n + n!/(2 x^(n+1)) + sum_k B_2k (2k+n-1)!/((2k)! x^(2k+n))].
    """
    x = np.asarray(x, np.float64)
    steps = np.maximum(np.ceil(_SHIFT - x), 0.0)
    shifted = x + steps
    correction = np.zeros_like(x)
    for i in range(int(steps.max(initial=0.0))):
        active = i < steps
        term = np.where(active, (x + i), 1.0) ** -(order + 1)
        correction = correction + np.where(active, term, 0.0)
    if order == 0:
        inverse_sq = shifted**-2
        series = sum(b / (2 * k) * inverse_sq**k for k, b in enumerate(_BERNOULLI, start=1))
        return np.log(shifted) - 0.5 / shifted - series - correction
    n = order
    series = math.factorial(n - 1) / shifted**n + math.factorial(n) / (2 * shifted ** (n + 1))
    for k, b in enumerate(_BERNOULLI, start=1):
        series = series + b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) / shifted ** (2 * k + n)
    return (1.0 if n % 2 else -1.0) * (series + math.factorial(n) * correction)  # (-1)^(n+1) [...]


def zeta(s: float, shift: int = 20) -> float:
    """Riemann zeta(s) for s > 1 (float64, about 1e-15 relative).

    Euler-Maclaurin summation: the first N - 1 terms summed, then
    N^(1-s)/(s-1) + N^-s/2 + sum_k B_2k/(2k)! s(s+1)...(s+2k-2) N^(-s-2k+1).
    """
    s = float(s)
    if not s > 1.0:
        raise ValueError(f"s must be > 1 for the zeta series, got {s}")
    n = float(shift)
    head = math.fsum(k**-s for k in range(1, shift))
    tail = n ** (1.0 - s) / (s - 1.0) + 0.5 * n**-s
    rising = s  # s (s+1) ... (s+2k-2)
    for k, b in enumerate(_BERNOULLI, start=1):
        tail += b / math.factorial(2 * k) * rising * n ** (-s - 2 * k + 1)
        rising *= (s + 2 * k - 1) * (s + 2 * k)
    return head + tail


def digamma(x):
    """psi(x) = d/dx log Gamma(x) elementwise, x > 0."""
    return polygamma(0, x)


def normal_quantile(level: float) -> float:
    """Phi^-1(level), the standard normal quantile, 0 < level < 1."""
    return statistics.NormalDist().inv_cdf(level)
