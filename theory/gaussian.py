"""Closed-form predictions for recursive Gaussian fitting ("Gaussian model collapse").

Setting (the conventions of collapse-jax, stated here so this module stands alone): real distribution
N(mu_0, Sigma_0) in d dimensions, Sigma_0 positive definite. Model k >= 1 is the sample mean and the
covariance scatter / (n - ddof) of its training set, ddof = 0 (MLE) or 1 (unbiased). Model 1 is fitted
on M_1 real points. Generation k >= 2 draws M_k - r_k points from model k-1 and r_k = round(alpha M_k)
fresh real points. `replace` fits model k on generation k's batch; `accumulate` on all batches so far.
Sizes: M_k = round(M k^a) (a = `sample_growth`, 0 by default).

Every expectation is unconditional: over the real data as well as the synthetic draws (each chain draws
its own real data). Metrics: mean_error_sq = ||mu_k - mu_0||^2, trace_ratio = tr Sigma_k / tr Sigma_0,
log_det_ratio = log det Sigma_k - log det Sigma_0, w2_sq = W_2(N(mu_k, Sigma_k), N(mu_0, Sigma_0))^2.

Sources: Shumailov et al., Nature 2024, Thm 3.1 (collapse of the variance, divergence of W2 under
replace); Kazdan et al. 2024 "Collapse or Thrive?" and Dey & Donoho 2024 (accumulate stays bounded,
the pi^2/6 pathway). The finite-generation formulas are derived here: Cochran's theorem gives
Sigma_k = L_{k-1} W_k L_{k-1}^T / c_k with W_k ~ Wishart_d(M_k - 1, I) independent of the mean, and
the moment recursions below follow by linearity (E W = nu I, E[W B W] = nu(nu+1) B + nu tr(B) I,
Bartlett's decomposition for det W).
"""

from __future__ import annotations

import math

import numpy as np

from theory.common import (
    CURATIONS,
    METHODS,
    POLICIES,
    REAL_DRAWS,
    REAL_SOURCES,
    NoTheory,
    Prediction,
    typed,
    unmodelled,
)
from theory.special import digamma, gammaln, normal_quantile, polygamma

METRICS = ("mean_error_sq", "trace_ratio", "log_det_ratio", "w2_sq")
REWARD_METRIC = "expected_reward"  # a . mu_k, recorded when a reward r(x) = a . x curates the samples


def sample_sizes(*, samples, num_generations, real_fraction=0.0, sample_growth=0.0):
    """Per-generation sizes for k = 1..G: total M_k and real r_k (r_1 = 0: model 1 is all real).

    Returns two float arrays of shape `(G,)`.
    """
    k = np.arange(1, num_generations + 1, dtype=float)
    total = np.floor(samples * k**sample_growth + 0.5)
    real = np.floor(real_fraction * total + 0.5) * (k > 1)
    return total, real


def first_moments(
    *,
    samples,
    ddof,
    policy,
    num_generations,
    real_fraction=0.0,
    sample_growth=0.0,
    trace0=1.0,
    real_weight=None,
    temperature=1.0,
):
    """Exact E||mu_k - mu_0||^2 and E tr Sigma_k for k = 0..G (recursion, any d, any rank).

    Valid for policy "replace" or "accumulate" with fresh real points (r_k may be 0). Derivation: the
    batch of generation k has mean mu_{k-1} + xi_s (synthetic part, E||xi_s||^2 = s/n_s) mixed with
    fresh real points; scatters merge exactly, and all cross terms have zero mean.

    `real_weight` w (None: every point weighs 1): the r real points of each batch k >= 2 carry the share w
    of its weight M (each w M / r, each synthetic point (1 - w) M / (M - r); He, Xu & Cheng 2025). Our
    derivation (same method): the batch's weighted mean is m = w xbar_R + (1 - w) xbar_S, so
    E||m - mu_{k-1}||^2 = w^2 (t0/r + e) + (1 - w)^2 s/(M - r), and its weighted scatter about m has mean
    M [w t0 (1 - w/r) + (1 - w) s (1 - (1 - w)/(M - r)) + w (1 - w) e] (within-part scatters plus
    M w (1 - w) ||xbar_R - xbar_S||^2); replace fits the batch, accumulate merges it into the pool of
    weight P: mu_k - mu_0 = (1 - w M/(P + M)) (mu_{k-1} - mu_0) + M/(P + M) (w (xbar_R - mu_0) + (1 - w) xi_s).
    Equal weights (w = r/M) give the unweighted recursion.

    `temperature` tau (Marchi et al. 2024): the synthetic points of generation k >= 2 are drawn from
    N(mu_{k-1}, tau Sigma_{k-1}), so wherever their spread enters, s becomes tau s (our derivation; the
    pool's own scatter under accumulate is not tempered). Real points are not tempered.

    Returns:
      (e, s): two arrays of shape `(G + 1,)`, e = E||mu_k - mu_0||^2, s = E tr Sigma_k. ValueError for any
      other policy (accumulate-subsample's refit is not a merge of scatters).
    """
    if policy not in ("replace", "accumulate"):
        raise ValueError(f"policy must be 'replace' or 'accumulate' for first_moments, got {policy!r}")
    trace0 = float(trace0)
    total, real = sample_sizes(
        samples=samples, num_generations=num_generations, real_fraction=real_fraction, sample_growth=sample_growth
    )
    synthetic = total - real
    accumulate = policy == "accumulate"

    def weighted_step(e, s, pool, m, n_s, n_r, w):
        t = temperature * s  # trace of the covariance the synthetic points are drawn with
        batch_scatter = m * (w * trace0 * (1 - w / n_r) + (1 - w) * t * (1 - (1 - w) / n_s) + w * (1 - w) * e)
        noise = m**2 * (w**2 * trace0 / n_r + (1 - w) ** 2 * t / n_s)  # ||M (w xbar_R-part + (1-w) xi_s)||^2
        if accumulate:
            new_pool = pool + m
            gap = w**2 * (trace0 / n_r + e) + (1 - w) ** 2 * t / n_s  # E||batch mean - mu_{k-1}||^2
            scatter = (pool - ddof) * s + batch_scatter + pool * m / new_pool * gap
            e_new = ((new_pool - w * m) ** 2 * e + noise) / new_pool**2
            return e_new, scatter / (new_pool - ddof), new_pool
        return (m - w * m) ** 2 * e / m**2 + noise / m**2, batch_scatter / (m - ddof), m

    def step(e, s, pool, m, n_s, n_r):
        if real_weight is not None and n_s > 0 and n_r > 0:
            return weighted_step(e, s, pool, m, n_s, n_r, float(real_weight))
        t = temperature * s
        both = (n_s > 0) & (n_r > 0)
        batch_scatter = (
            np.maximum(n_s - 1, 0) * t
            + np.maximum(n_r - 1, 0) * trace0
            + ((n_s * n_r * e + n_r * t + n_s * trace0) / m if both else 0.0)
        )
        if accumulate:
            new_pool = pool + m
            gap = (n_s * t + n_r * trace0 + n_r**2 * e) / m**2  # E||batch mean - mu_{k-1}||^2
            scatter = (pool - ddof) * s + batch_scatter + pool * m / new_pool * gap
            e_new = ((pool + n_s) ** 2 * e + n_s * t + n_r * trace0) / new_pool**2
            s_new = scatter / (new_pool - ddof)
        else:
            new_pool = m
            e_new = (n_s**2 * e + n_s * t + n_r * trace0) / m**2
            s_new = batch_scatter / (m - ddof)
        return e_new, s_new, new_pool

    m1 = total[0]
    e1, s1 = trace0 / m1, (m1 - 1) * trace0 / (m1 - ddof)
    es, ss, pool = [0.0, e1], [trace0, s1], m1
    for m, n_s, n_r in zip(total[1:], synthetic[1:], real[1:]):
        e_new, s_new, pool = step(es[-1], ss[-1], pool, m, n_s, n_r)
        es.append(e_new)
        ss.append(s_new)
    return np.asarray(es, np.float64), np.asarray(ss, np.float64)


def optimal_real_weight(real, synthetic):
    """He, Xu & Cheng (2025): the real-data weight w* minimising the stationary mean error
    `[w^2/r + (1 - w)^2/(M - r)] / (w (2 - w))` of a weighted replace chain whose variance is known:
    the root in (0, 1) of w^2 + k w - k = 0, k = r/(M - r); 1/golden ratio (0.618...) when r = M - r."""
    k = np.asarray(real, np.float64) / np.asarray(synthetic, np.float64)
    return (np.sqrt(k * k + 4 * k) - k) / 2


def weighted_mean_error_limit(real_weight, *, real, synthetic, trace0=1.0):
    """Stationary E||mu_k - mu_0||^2 of a weighted replace chain with the covariance known (not refitted):
    `tr Sigma_0 [w^2/r + (1 - w)^2/(M - r)] / (w (2 - w))` (the fixed point of
    e = (1 - w)^2 (e + t0/(M - r)) + w^2 t0/r; He, Xu & Cheng 2025). A limit, for reference: with the
    covariance refitted use `weighted_replace_limit`."""
    w = np.asarray(real_weight, np.float64)
    return trace0 * (w**2 / real + (1 - w) ** 2 / synthetic) / (w * (2 - w))


def weighted_replace_limit(real_weight, *, samples, real, ddof, trace0=1.0):
    """The exact stationary (k -> infinity) E||mu_k - mu_0||^2 and E tr Sigma_k of a weighted replace chain
    that refits mean and covariance: the fixed point of `first_moments`'s weighted recursion (a 2 x 2
    linear system; our derivation). Returns `(e, s)`; w = 0 has no fixed point (NaN)."""
    w = float(real_weight)
    m, n_r = float(samples), float(real)
    n_s, c = m - n_r, m / (m - ddof)
    # e = a_e e + b_e s + f_e ; s = a_s e + b_s s + f_s
    a_e, b_e, f_e = (1 - w) ** 2, (1 - w) ** 2 / n_s, w**2 * trace0 / n_r
    a_s, b_s, f_s = c * w * (1 - w), c * (1 - w) * (1 - (1 - w) / n_s), c * w * trace0 * (1 - w / n_r)
    matrix = np.array([[1 - a_e, -b_e], [-a_s, 1 - b_s]])
    if w <= 0 or abs(np.linalg.det(matrix)) < 1e-15:
        return np.nan, np.nan
    e, s = np.linalg.solve(matrix, [f_e, f_s])
    return float(e), float(s)


def tempered_variance_limit(temperature, *, real_fraction, trace0=1.0):
    """Infinite-sample limit of E tr Sigma_k under replace when every model is sampled at temperature tau
    and a fraction alpha of each batch is fresh real data (Marchi et al. 2024's heat death, our closed
    form): tr Sigma_k = (1 - alpha) tau tr Sigma_{k-1} + alpha tr Sigma_0 (the means converge), so
    alpha tr Sigma_0 / (1 - (1 - alpha) tau) when (1 - alpha) tau < 1, and +inf past the boundary
    (1 - alpha) tau = 1 (with alpha = 0: 0 below tau = 1, the variance collapses; +inf above)."""
    tau = np.asarray(temperature, np.float64)
    rate = (1 - real_fraction) * tau
    safe = np.where(rate < 1, 1 - rate, 1.0)
    return np.where(rate < 1, real_fraction * trace0 / safe, np.inf)


def tempered_replace_limit(temperature, *, samples, real_fraction, ddof, trace0=1.0):
    """The exact stationary (k -> infinity) E||mu_k - mu_0||^2 and E tr Sigma_k of a replace chain sampled
    at temperature tau with r = round(alpha M) fresh real points per batch, at finite M: the fixed point of
    `first_moments`'s recursion (a 2 x 2 linear system; our derivation). Returns `(e, s)`, or (inf, inf)
    where the recursion has no stable fixed point (its variance grows without bound). Needs real points
    (r >= 1): without them the variance goes to 0 or grows geometrically, by tau (M - 1)/(M - ddof) per
    generation, and the mean error has no fixed point."""
    m = float(samples)
    n_r = float(np.floor(real_fraction * m + 0.5))
    if not 1 <= n_r < m:
        raise ValueError(f"real_fraction must give 1 <= round(alpha M) < M real points, got {real_fraction!r}")
    n_s, tau = m - n_r, float(temperature)
    # e = a_e e + b_e s + f_e ; s = a_s e + b_s s + f_s
    a_e, b_e, f_e = n_s**2 / m**2, n_s * tau / m**2, n_r * trace0 / m**2
    a_s = (n_s * n_r / m) / (m - ddof)
    b_s = ((n_s - 1) * tau + n_r * tau / m) / (m - ddof)
    f_s = ((n_r - 1) * trace0 + n_s * trace0 / m) / (m - ddof)
    step = np.array([[a_e, b_e], [a_s, b_s]])
    if np.max(np.abs(np.linalg.eigvals(step))) >= 1:
        return np.inf, np.inf
    e, s = np.linalg.solve(np.eye(2) - step, [f_e, f_s])
    return float(e), float(s)


def optimal_real_weight_refitted(*, samples, real, ddof, trace0=1.0):
    """The w minimising the exact stationary mean error of the weighted replace chain that refits mean and
    covariance (`weighted_replace_limit`; our derivation), by golden-section search on (0, 1]: close to,
    but not exactly, He, Xu & Cheng's known-variance optimum `optimal_real_weight` (0.619 against 0.618
    at M = 100, r = 50, ddof = 1)."""

    def error(w):
        return weighted_replace_limit(w, samples=samples, real=real, ddof=ddof, trace0=trace0)[0]

    low, high = 1e-6, 1.0
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    for _ in range(100):
        if error(a) < error(b):
            high, b = b, a
            a = high - ratio * (high - low)
        else:
            low, a = a, b
            b = low + ratio * (high - low)
    return (low + high) / 2


def replace_closed_form(*, samples, ddof, num_generations, trace0=1.0):
    """Closed forms under replace (constant M, no real data), k = 0..G.

    E tr Sigma_k = tr Sigma_0 (nu/c)^k and E||mu_k - mu_0||^2 = (tr Sigma_0 / M) sum_{i<k} (nu/c)^i,
    nu = M - 1, c = M - ddof: the variance is a martingale for ddof = 1 (and the mean error grows
    linearly, k/M), and decays as (1 - 1/M)^k for the MLE (mean error bounded by tr Sigma_0).
    """
    ratio = (samples - 1) / (samples - ddof)
    k = np.arange(num_generations + 1, dtype=float)
    s = trace0 * ratio**k
    e = np.where(
        ratio == 1.0, trace0 * k / samples, trace0 / samples * (1 - ratio**k) / (1 - np.where(ratio == 1.0, 0.5, ratio))
    )
    return e, s


def accumulate_variance_closed_form(*, samples, ddof, num_generations):
    """E tr Sigma_k / tr Sigma_0 under accumulate (constant M, no real data), k = 0..G.

    MLE: prod_{j=1}^k (1 - 1/(j^2 M)); unbiased: prod_{j=2}^k (1 - 1/(j (j M - 1))). The variance does
    not collapse: see `accumulate_variance_limit`.
    """
    j = np.arange(1, num_generations + 1, dtype=float)
    if ddof == 0:
        factors = 1 - 1 / (j**2 * samples)
    else:
        factors = np.where(j > 1, 1 - 1 / (j * (j * samples - 1)), 1.0)
    return np.concatenate([np.ones((1,)), np.cumprod(factors)])


def accumulate_variance_limit(*, samples, ddof):
    """lim_k E tr Sigma_k / tr Sigma_0 under accumulate (constant M, no real data).

    MLE: sin(pi/sqrt(M)) / (pi/sqrt(M)) (Euler's product for sin); unbiased:
    Gamma(2 - 1/M) / (Gamma(2 - r+) Gamma(2 - r-)), r+- = (1 +- sqrt(1 + 4M)) / (2M).
    """
    if ddof == 0:
        x = math.pi / math.sqrt(samples)
        return math.sin(x) / x
    root = math.sqrt(1 + 4 * samples)
    r_plus, r_minus = (1 + root) / (2 * samples), (1 - root) / (2 * samples)
    return math.exp(math.lgamma(2 - 1 / samples) - math.lgamma(2 - r_plus) - math.lgamma(2 - r_minus))


def accumulate_mean_error_bound(*, samples, trace0=1.0):
    """pi^2/6 * tr Sigma_0 / M: the bound on E||mu_k - mu_0||^2 under accumulate (the pi^2/6 pathway).

    Holds for every k and either ddof (E tr Sigma_j <= tr Sigma_0, and the sum of 1/j^2 is pi^2/6).
    """
    return math.pi**2 / 6 * trace0 / samples


def _bartlett_terms(total, dim, ddof, order):
    """sum_j psi^(order)((nu - j)/2) (+ d log(2/c) for order 0), per generation: `(G,)`; -inf if nu < d."""
    nu = total - 1
    j = np.arange(dim, dtype=float)
    half = (nu[:, None] - j[None, :]) / 2
    valid = np.all(half > 0, axis=1)
    safe = np.where(half > 0, half, 1.0)
    if order == 0:
        value = np.sum(digamma(safe), axis=1) + dim * np.log(2 / (total - ddof))
        return np.where(valid, value, -np.inf)
    value = np.sum(polygamma(order, safe), axis=1)
    return np.where(valid, value, np.nan)


def log_det_cumulants(*, dim, samples, ddof, num_generations, sample_growth=0.0):
    """Exact cumulants 1..4 of log det Sigma_k - log det Sigma_0 under replace (no real data), k = 0..G.

    log det Sigma_k - log det Sigma_0 = sum_{i<=k} [log det W_i - d log c_i], and by Bartlett
    log det W = sum_{j<d} log chi2_{nu - j}, all independent. The cumulants of log chi2_m are
    psi(m/2) + log 2 (mean) and psi^(n-1)(m/2) (order n >= 2). Mean is -inf once nu_i < d (singular).

    Returns `(4, G + 1)`.
    """
    total, _ = sample_sizes(samples=samples, num_generations=num_generations, sample_growth=sample_growth)
    rows = [_bartlett_terms(total, dim, ddof, order) for order in range(4)]
    zero = np.zeros((1,))
    return np.stack([np.concatenate([zero, np.cumsum(r)]) for r in rows])


def log_variance_rate(*, samples, ddof, dim=1):
    """Almost-sure rate of collapse: lim (1/k) log det Sigma_k = E log det(W/c) < 0 (replace, constant M).

    For d = 1 this is psi((M-1)/2) + log(2/c) ~ -1/(M-1) - 1/(3(M-1)^2) (unbiased) and
    ~ -1/(M-1) - 1/M (MLE): sigma_k -> 0 almost surely at rate |rate|/2 per generation even though
    E sigma_k^2 = sigma_0^2 for the unbiased estimator (strong law of large numbers + Jensen).
    """
    total = np.asarray([float(samples)])
    return _bartlett_terms(total, dim, ddof, 0)[0]


def trace_second_moments(*, samples, ddof, num_generations, sample_growth=0.0, covariance=None, dim=1):
    """Exact (E tr Sigma_k^2, E (tr Sigma_k)^2) under replace (no real data), k = 0..G: `(2, G + 1)`.

    v_k = A_k v_{k-1}, A = [[nu(nu+1), nu], [2 nu, nu^2]] / c^2 (from E[W B W] = nu(nu+1) B + nu tr(B) I
    and Var tr(BW) = 2 nu tr B^2 for W ~ Wishart(nu, I)).
    """
    covariance = np.eye(dim) if covariance is None else np.asarray(covariance)
    total, _ = sample_sizes(samples=samples, num_generations=num_generations, sample_growth=sample_growth)
    v0 = np.stack([np.trace(covariance @ covariance), np.trace(covariance) ** 2])

    columns = [v0]
    for m in total:
        nu, c = m - 1, m - ddof
        a = np.array([[nu * (nu + 1), nu], [2 * nu, nu**2]]) / c**2
        columns.append(a @ columns[-1])
    return np.stack(columns, axis=1)


def expected_sd_ratio(*, samples, ddof, num_generations, sample_growth=0.0):
    """E sigma_k / sigma_0 in 1-D under replace: prod_i sqrt(2/c_i) Gamma(M_i/2) / Gamma((M_i-1)/2)."""
    total, _ = sample_sizes(samples=samples, num_generations=num_generations, sample_growth=sample_growth)
    log_a = 0.5 * np.log(2 / (total - ddof)) + gammaln(total / 2) - gammaln((total - 1) / 2)
    return np.concatenate([np.ones((1,)), np.exp(np.cumsum(log_a))])


def _cornish_fisher(cumulants, level):
    """Quantile from cumulants 1..4 (Cornish-Fisher expansion to third order)."""
    z = normal_quantile(level)
    k1, k2, k3, k4 = cumulants
    sd = np.sqrt(np.where(k2 > 0, k2, 1.0))
    g1, g2 = k3 / sd**3, k4 / sd**4
    w = z + (z**2 - 1) * g1 / 6 + (z**3 - 3 * z) * g2 / 24 - (2 * z**3 - 5 * z) * g1**2 / 36
    return np.where(k2 > 0, k1 + sd * w, k1)


# ----------------------------------------------------------------------------- curation by a reward


def reward_direction(reward: str, dim: int):
    """The coefficients a `(d,)` of a linear reward r(x) = a . x written as the simulation's `reward`
    option: "linear:A" (a = A e_1) or "linear:a_1,...,a_d"; None for "none". ValueError otherwise."""
    if reward == "none":
        return None
    if not reward.startswith("linear:"):
        raise ValueError(f"reward must be none or linear:A or linear:a_1,...,a_d, got {reward!r}")
    values = np.asarray([float(v) for v in reward[len("linear:") :].split(",")])
    if values.size == 1:
        return values[0] * np.eye(dim)[0]
    if values.size != dim:
        raise ValueError(f"reward: {values.size} coefficients for dim = {dim}")
    return values


def tilted_moments(direction, *, samples, ddof, num_generations, covariance=None):
    """E r and E ||mu_k - mu_0||^2 for k = 0..G when every model is sampled from its law tilted by a
    linear reward, N(mu, Sigma) e^{a . x} / Z = N(mu + Sigma a, Sigma) (the K -> infinity limit of
    Bradley-Terry best-of-K curation, Ferbach et al. 2024), pool rule replace, no real data after model 1,
    fixed M [EXACT; our derivation].

    Derivation: with n = M - 1, m = M - ddof and c = n / m, mu_{k+1} = mu_k + Sigma_k a + Sigma_k^{1/2}
    z_{k+1}, z ~ N(0, I / M) independent of every Sigma (Cochran), and Sigma_{k+1} = Sigma_k^{1/2} W
    Sigma_k^{1/2} / m, W ~ Wishart_d(n, I). So E Sigma_k = c^k Sigma_0 (the tilt leaves the covariance
    alone), E[r_k] - a . mu_0 = sum_{j=1}^{k-1} c^j a' Sigma_0 a, and E||mu_k - mu_0||^2 = tr Sigma_0
    sum_{j=0}^{k-1} c^j / M + sum_j e_j + 2 sum_{i<j} c^{j-i} e_i (i, j = 1..k-1) with e_j = E a'
    Sigma_j^2 a. From E[W B W] = n(n+1) B + n tr(B) I and E[tr(W B) W] = n^2 tr(B) I + 2n B, the pair
    (e_j, f_j = E tr(Sigma_j) a' Sigma_j a) obeys e' = (n(n+1) e + n f) / m^2, f' = (n^2 f + 2n e) / m^2
    from (e_0, f_0) = (a' Sigma_0^2 a, tr Sigma_0 a' Sigma_0 a).

    Returns `(expected_reward, mean_error_sq)`, each `(G + 1,)`, with mu_0 = 0 (a . mu_0 is added by the
    caller when mu_0 != 0).
    """
    a = np.asarray(direction, float)
    sigma0 = np.eye(a.size) if covariance is None else np.asarray(covariance, float)
    n, m = samples - 1.0, samples - float(ddof)
    if n < 1 or m <= 0:
        raise ValueError(f"samples must be >= 2 and > ddof, got samples={samples}, ddof={ddof}")
    c = n / m
    s_a = a @ sigma0 @ a
    e, f = float(a @ sigma0 @ sigma0 @ a), float(np.trace(sigma0) * s_a)
    second = np.zeros(num_generations + 1)  # e_j, j = 0..G
    second[0] = e
    for j in range(1, num_generations + 1):
        e, f = (n * (n + 1) * e + n * f) / m**2, (n * n * f + 2 * n * e) / m**2
        second[j] = e
    powers = c ** np.arange(num_generations + 1)
    reward = np.concatenate([[0.0], np.cumsum(np.concatenate([[0.0], powers[1:-1]])) * s_a])
    noise = np.concatenate([[0.0], np.cumsum(powers[:-1]) * np.trace(sigma0) / samples])
    # drift_k = sum_{i,j<k} c^|i-j| e_min(i,j), in O(G): drift_{k+1} = drift_k + e_k + 2 S_k with
    # S_k = sum_{i<k} c^(k-i) e_i, S_{k+1} = c (S_k + e_k)
    drift = np.zeros(num_generations + 1)
    lagged = 0.0
    for k in range(1, num_generations):
        drift[k + 1] = drift[k] + second[k] + 2.0 * lagged
        lagged = c * (lagged + second[k])
    return reward, noise + drift


def tilted_limit(direction, *, real_fraction, num_generations, covariance=None):
    """The infinite-sample limit (M -> infinity) of the tilted chain with a fresh real fraction alpha,
    pool rule replace [LIMIT; our derivation]: model 1 is the truth, and model k+1 is the Gaussian fitted to
    the mixture alpha N(mu_0, Sigma_0) + (1 - alpha) N(mu_k + Sigma_k a, Sigma_k):

        mu_{k+1} = alpha mu_0 + (1 - alpha)(mu_k + Sigma_k a),
        Sigma_{k+1} = alpha Sigma_0 + (1 - alpha) Sigma_k + alpha (1 - alpha) delta delta',
        delta = mu_k + Sigma_k a - mu_0.

    With alpha = 0 the mean moves by Sigma_0 a per generation forever; with alpha > 0, Sigma_0 = I and a
    of length A, it settles iff 4 (1 - alpha) A^2 <= alpha^2 (`tilted_limit_settles`), at mu - mu_0 =
    (1 - alpha) s a / alpha with s the smaller root of (1 - alpha) A^2 s^2 / alpha^2 - s + 1 = 0.
    Returns {"expected_reward", "mean_error_sq", "trace_ratio"}: `(G + 1,)` each (mu_0 = 0).
    """
    a = np.asarray(direction, float)
    sigma0 = np.eye(a.size) if covariance is None else np.asarray(covariance, float)
    alpha = float(real_fraction)
    mu, sigma = np.zeros(a.size), sigma0.copy()
    out = {"expected_reward": [0.0, 0.0], "mean_error_sq": [0.0, 0.0], "trace_ratio": [1.0, 1.0]}
    for _ in range(2, num_generations + 1):
        delta = mu + sigma @ a
        mu, sigma = (
            (1 - alpha) * delta,
            alpha * sigma0 + (1 - alpha) * sigma + alpha * (1 - alpha) * np.outer(delta, delta),
        )
        out["expected_reward"].append(float(a @ mu))
        out["mean_error_sq"].append(float(mu @ mu))
        out["trace_ratio"].append(float(np.trace(sigma) / np.trace(sigma0)))
    return {name: np.asarray(values[: num_generations + 1]) for name, values in out.items()}


def tilted_limit_settles(reward_norm, real_fraction) -> bool:
    """Whether the infinite-sample tilted chain with Sigma_0 = I and a reward of length A settles (has a
    fixed point) at real fraction alpha: 4 (1 - alpha) A^2 <= alpha^2 [our derivation, `tilted_limit`]."""
    alpha = float(real_fraction)
    return alpha > 0 and 4.0 * (1.0 - alpha) * float(reward_norm) ** 2 <= alpha**2


def _curated_prediction(
    metric,
    *,
    direction,
    best_of,
    curation,
    dim,
    samples,
    ddof,
    policy,
    generations,
    real_fraction,
    real_weight,
    temperature,
    sample_growth,
    covariance,
):
    """The prediction of one metric of a chain curated by a linear reward, or None where the uncurated
    theory applies unchanged (trace_ratio and log_det_ratio of the tilted replace chain without real data:
    the tilt moves the mean only)."""
    mean0 = 0.0  # the simulation's real mean
    if curation != "tilted":
        if best_of == 1:  # no curation: E mu_k = mu_0 under every pool rule
            if metric == REWARD_METRIC:
                return Prediction(
                    np.full(generations + 1, mean0), "exact", note="no curation (best_of 1): E a . mu_k = a . mu_0"
                )
            return None
        return NoTheory(
            f"best-of-{best_of} curation ({curation}) of a Gaussian: the law of the kept point has no closed form "
            "(simulation only); its K -> infinity limit is curation tilted"
        )
    plain = policy == "replace" and real_fraction == 0 and sample_growth == 0
    if not plain or temperature != 1.0 or (real_weight is not None and real_weight >= 0):
        return NoTheory(
            "tilted chain off plain replace (real data, accumulate, temperature, weights or growth): moments not "
            "closed (the mixture's covariance involves the tilt); the M -> infinity limit is theory.gaussian.tilted_limit"
        )
    if metric in ("trace_ratio", "log_det_ratio"):
        return None
    if metric == "w2_sq":
        return NoTheory("E W2^2 of the tilted chain: not derived")
    reward, error = tilted_moments(
        direction, samples=samples, ddof=ddof, num_generations=generations, covariance=covariance
    )
    note = "exact: tilted chain N(mu + Sigma a, Sigma) (Ferbach et al. 2024 limit K -> infinity), our moment recursion"
    return Prediction(reward + mean0 if metric == REWARD_METRIC else error, "exact", note=note)


def predict(
    metric: str,
    *,
    dim: int,
    samples: int,
    ddof: int,
    policy: str,
    generations: int,
    real_fraction: float = 0.0,
    real_source: str = "fresh",
    real_draw: str = "fixed",
    sample_growth: float = 0.0,
    shared_real_data: bool = False,
    covariance=None,
    quantile_levels=(0.05, 0.5, 0.95),
    real_weight: float = -1.0,
    temperature: float = 1.0,
    reward: str | np.ndarray | None = "none",
    curation: str = "best",
    best_of: int = 1,
    method: str = "samples",
    **_ignored,
) -> Prediction | NoTheory:
    """The prediction for one metric, taking the simulation's own parameter names (`generations` = G).

    Returns NoTheory(reason) where no closed form is known (accumulate-subsample; w2_sq in d > 1 or off
    replace; log_det_ratio off plain replace; real points drawn from the generation-1 sample; results
    conditional on a shared real sample), and for an option value not modelled here (a pool rule, real
    source or draw, method or curation outside the known ones; a reward other than linear).
    """
    why = unmodelled(
        policy=(policy, POLICIES),
        real_source=(real_source, REAL_SOURCES),
        real_draw=(real_draw, REAL_DRAWS),
        method=(method, METHODS),
        curation=(curation, CURATIONS),
    )
    if why is not None:
        return why
    if isinstance(reward, str) and reward != "none" and not reward.startswith("linear:"):
        return NoTheory(f"reward {reward!r}: only linear rewards a . x are derived")
    if metric == "kl_divergence":
        return NoTheory("E KL(truth || model): not derived (it involves E Sigma_k^-1 along the chain)")
    direction = typed(reward, reward_direction, dim)
    if metric == REWARD_METRIC and direction is None:
        raise ValueError(f"metric {REWARD_METRIC} needs a reward")
    if direction is not None:
        unusual_real = shared_real_data or (real_fraction > 0 and (real_draw == "mixture" or real_source == "original"))
        if unusual_real and (curation == "tilted" or best_of > 1):
            return NoTheory("curated chain with a shared, reused or mixed-in real sample: not derived")
        curated = _curated_prediction(
            metric,
            direction=direction,
            best_of=best_of,
            curation=curation,
            dim=dim,
            samples=samples,
            ddof=ddof,
            policy=policy,
            generations=generations,
            real_fraction=real_fraction,
            real_weight=real_weight,
            temperature=temperature,
            sample_growth=sample_growth,
            covariance=covariance,
        )
        if curated is not None:
            return curated
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    covariance = np.eye(dim) if covariance is None else np.asarray(covariance)
    trace0 = np.trace(covariance)
    if shared_real_data:
        return NoTheory("with a shared real sample the chain mean is conditional on it; theory is unconditional")
    if policy == "accumulate-subsample":
        if metric == "mean_error_sq" and real_fraction == 0 and sample_growth == 0 and temperature == 1.0:
            from theory.ridge import subsample_limit_ratio

            return Prediction(
                subsample_limit_ratio(generations) * trace0 / samples,
                "asymptotic",
                note="large-M limit V_k tr(Sigma_0)/M, V_k -> pi^2/2 - 2 (theory.md A.4: the Gaussian-process "
                "limit of the mean with the variance known; the refitted variance is ignored, so a finite-M "
                "chain deviates from it); exact at generations 0 and 1",
            )
        return NoTheory("accumulate-subsample with mean and covariance refit: no closed form known (simulation only)")
    if real_fraction > 0 and real_draw == "mixture":
        return NoTheory("real points drawn as a mixture (random real count): not derived (simulation only)")
    if real_fraction > 0 and real_source == "original":
        return NoTheory("real points reused from the generation-1 sample: not derived (simulation only)")
    plain_replace = policy == "replace" and real_fraction == 0
    common = dict(samples=samples, num_generations=generations, sample_growth=sample_growth)
    weight = None if real_weight is None or real_weight < 0 else real_weight
    e, s = first_moments(
        ddof=ddof,
        policy=policy,
        real_fraction=real_fraction,
        trace0=trace0,
        real_weight=weight,
        temperature=temperature,
        **common,
    )
    # under replace without real data, sampling at temperature tau scales model k by tau^(k-1) (generation
    # 1 is fitted on real points): Sigma_k is tau^(k-1) times the untempered chain's (our derivation)
    tempered_steps = np.maximum(np.arange(generations + 1) - 1, 0)
    tail = None
    if plain_replace:
        v = trace_second_moments(ddof=ddof, covariance=covariance, dim=dim, **common)
        tail = np.log(np.maximum(v[1] * temperature ** (2.0 * tempered_steps) / s**2, 1.0))
    if metric in ("mean_error_sq", "trace_ratio"):
        mean = e if metric == "mean_error_sq" else s / trace0
        note = "exact moment recursion (Cochran + linearity)"
        if weight is not None:
            note += f"; real points weighted w = {weight:g} (our derivation, first_moments)"
        if temperature != 1.0:
            note += f"; sampled at temperature {temperature:g} (our derivation, first_moments)"
        if policy == "accumulate":
            note += "; accumulate: mean error below pi^2/6 tr(Sigma_0)/M when no real data (pi^2/6 pathway)"
        return Prediction(mean, "exact", tail, note=note)
    if metric == "log_det_ratio":
        if not plain_replace:
            return NoTheory("E log det under accumulate or with real data: no closed form known")
        cumulants = log_det_cumulants(dim=dim, ddof=ddof, **common)
        cumulants[0] = cumulants[0] + dim * np.log(temperature) * tempered_steps  # a shift: tau^(k-1) per model
        finite = np.isfinite(cumulants[0])
        quantiles = {str(q): np.where(finite, _cornish_fisher(cumulants, q), -np.inf) for q in quantile_levels}
        return Prediction(
            cumulants[0],
            "exact",
            None,
            quantiles,
            "asymptotic",
            note="exact: sum of independent log chi-squares (Bartlett); quantiles by Cornish-Fisher from exact cumulants",
        )
    # w2_sq
    if dim != 1:
        return NoTheory("E W2^2 in d > 1 involves E tr(Sigma_0^1/2 Sigma_k Sigma_0^1/2)^1/2: no closed form known")
    if not plain_replace:
        return NoTheory("E sigma_k under accumulate or with real data: no closed form known")
    sd_ratio = expected_sd_ratio(ddof=ddof, **common) * temperature ** (0.5 * tempered_steps)
    return Prediction(
        e + s - 2 * trace0 * sd_ratio + trace0,
        "exact",
        tail,
        note="exact: E W2^2 = E(mu_k-mu_0)^2 + E sigma_k^2 - 2 sigma_0 E sigma_k + sigma_0^2, E sigma_k from Gamma functions",
    )
