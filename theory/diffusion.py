"""Diffusion with an exact score (Khelifa, Turner & Venkataramanan 2026, arXiv 2602.16601).

A diffusion model whose score is exact for its training set D (M points), run in the
variance-exploding parametrisation and stopped at time t0, samples D convolved with N(0, t0 I): the
KDE of D with bandwidth sqrt(t0). Model k is fitted on D_k; D_1 is M real points; D_{k+1} holds
r = round(alpha M) fresh real points and M - r draws from model k (pool rule replace).

Exact finite-M moments (our derivation). Real law with mean mu_0 and per-coordinate variance
sigma^2 = tr Cov / d (any law: the recursion involves means and traces only; N(0, sigma^2 I_d) for the
`gaussian` dataset, the exact `law_variance` for the 2-D ones), every point of weight 1, alpha' = r / M,
S_k the empirical covariance of D_k (divisor M), mu_k its mean, s_k = E tr S_k / d and
m_k = E |mu_k - mu_0|^2 / d. Given D_k the M points of D_{k+1} are independent (shifted by -mu_0): r
with mean 0 and trace d sigma^2, M - r with mean mu_k - mu_0 and covariance C_k = S_k + t0 I; for
independent points E sum |x_i - xbar|^2 = (1 - 1/M) sum tr V_i + sum |m_i - mbar|^2 and
E |xbar|^2 = sum tr V_i / M^2 + |mbar|^2, whence

    s_1 = (1 - 1/M) sigma^2,   m_1 = sigma^2 / M,
    s_{k+1} = (1 - 1/M) [alpha' sigma^2 + (1 - alpha') (s_k + t0)] + alpha' (1 - alpha') m_k,
    m_{k+1} = (1 - alpha')^2 m_k + [alpha' sigma^2 + (1 - alpha') (s_k + t0)] / M,

and E variance_k = s_k + t0 (variance = tr C_k / d, the model's mean per-coordinate variance),
E mean_error_sq_k = d m_k; generation 0 is the real law (sigma^2 and 0). The expectation is
unconditional (each chain draws its own real points). No closed form is known for the expected held-out
NLL of a finite-M model (a log of a random mixture of M kernels): `predict` returns NoTheory for it.
The 2-D datasets' variances (duplicated here from their definitions, so that theory imports nothing from
the simulation): blobs 8 + sigma^2 (centres at radius 4), circles 5/16 + sigma^2 (radii 1 and 1/2),
moons (21/16 - 1/pi)/2 + sigma^2, swiss roll (s^2 E t^2 - |s E(t cos t, t sin t)|^2)/2 + sigma^2 with
s = 0.2, t ~ U[1.5 pi, 4.5 pi]; default sigma 1 for gaussian and blobs, 0.1 for the others.

The paper's infinite-sample limit (M -> infinity, a limit, not exact at any finite M): the training data
converge to D_k = sum_{m=0}^{k-2} alpha (1 - alpha)^m (p0 * N(0, m t0)) + (1 - alpha)^{k-1}
(p0 * N(0, (k - 1) t0)) and model k = D_k * N(0, t0) (`limit_mixture`), so for any real law p0 with
per-coordinate variance sigma^2

    variance_k -> sigma^2 + t0 (1 - (1 - alpha)^k) / alpha   (sigma^2 + k t0 at alpha = 0)
               -> sigma^2 + t0 / alpha as k -> infinity,

and the held-out NLL tends to the cross-entropy E_{x ~ p0}[-log model_k(x)], for a Gaussian p0 a 1-D
integral over |x|^2 ~ sigma^2 chi^2_d (`held_out_nll_limit`, Gauss-Legendre quadrature over the radius).
"""

from __future__ import annotations

import math

import numpy as np

from theory.common import (
    METHODS,
    POLICIES,
    REAL_DRAWS,
    REAL_SOURCES,
    NoTheory,
    Prediction,
    integer_at_least,
    probability,
    real_count,
    unmodelled,
)

METRICS = ("variance", "mean_error_sq", "held_out_nll")
SOURCE = "Khelifa, Turner & Venkataramanan 2026 (arXiv 2602.16601)"
DEFAULT_SIGMA = 1.0  # the gaussian dataset's sigma when `noise` is 0 (the setting's "default")
DEFAULT_NOISE = {"gaussian": 1.0, "blobs": 1.0, "circles": 0.1, "moons": 0.1, "swiss_roll": 0.1}


def _sigma(noise) -> float:
    noise = float(noise or 0.0)
    return DEFAULT_SIGMA if noise == 0.0 else noise


def law_variance(dataset: str = "gaussian", noise: float = 0.0) -> float:
    """The real law's per-coordinate variance tr Cov / d (module docstring; `noise` 0: the default)."""
    if dataset not in DEFAULT_NOISE:
        raise ValueError(f"dataset must be one of {', '.join(DEFAULT_NOISE)}, got {dataset!r}")
    sigma2 = (float(noise or 0.0) or DEFAULT_NOISE[dataset]) ** 2
    if dataset == "gaussian":
        return sigma2
    if dataset == "blobs":
        return 8.0 + sigma2
    if dataset == "circles":
        return 5.0 / 16.0 + sigma2
    if dataset == "moons":
        return (21.0 / 16.0 - 1.0 / math.pi) / 2.0 + sigma2
    a, b, scale = 1.5 * math.pi, 4.5 * math.pi, 0.2
    cos_part = (b * math.sin(b) + math.cos(b) - a * math.sin(a) - math.cos(a)) / (b - a)
    sin_part = (math.sin(b) - b * math.cos(b) - math.sin(a) + a * math.cos(a)) / (b - a)
    second = scale**2 * (b**3 - a**3) / (3.0 * (b - a))
    return (second - scale**2 * (cos_part**2 + sin_part**2)) / 2.0 + sigma2


def _positive(value, name: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def exact_moments(
    *,
    samples: int,
    real_fraction: float,
    t0: float,
    noise: float = 0.0,
    dim: int = 1,
    generations: int,
    dataset: str = "gaussian",
) -> tuple[np.ndarray, np.ndarray]:
    """E variance_k and E mean_error_sq_k, `(generations + 1,)` each, k = 0..G (module docstring; exact,
    our derivation). Real law `dataset` (default N(0, sigma^2 I_dim), sigma = `noise`, 0 meaning 1;
    a 2-D dataset needs dim 2), replace, fresh real points, a fixed count r = round(alpha M), unit
    weights, unconditional expectations, float64.

    Example:
      >>> variance, error = exact_moments(samples=100, real_fraction=0.0, t0=0.1, generations=3)
    """
    M = integer_at_least(samples, "samples", 1)
    G = integer_at_least(generations, "generations", 0)
    d = integer_at_least(dim, "dim", 1)
    t0 = _positive(t0, "t0")
    sigma2 = law_variance(dataset, noise)
    a = real_count(M, probability(real_fraction, "real_fraction")) / M
    s, m = np.empty(G + 1), np.empty(G + 1)
    s[0], m[0] = sigma2 - t0, 0.0  # generation 0 is the real law: variance sigma^2, mean error 0
    if G >= 1:
        s[1], m[1] = (1.0 - 1.0 / M) * sigma2, sigma2 / M
    for k in range(1, G):
        spread = a * sigma2 + (1.0 - a) * (s[k] + t0)  # mean per-coordinate variance of D_{k+1}'s points
        s[k + 1] = (1.0 - 1.0 / M) * spread + a * (1.0 - a) * m[k]
        m[k + 1] = (1.0 - a) ** 2 * m[k] + spread / M
    return s + t0, d * m


def variance_limit(
    *, real_fraction: float, t0: float, noise: float = 0.0, generations: int, dataset: str = "gaussian"
) -> np.ndarray:
    """`(generations + 1,)` the M -> infinity limit of E variance_k (the paper's; a limit, not exact):
    sigma^2 at k = 0, sigma^2 + t0 (1 - (1 - alpha)^k) / alpha after (sigma^2 + k t0 at alpha = 0),
    sigma^2 the law's per-coordinate variance (`law_variance`)."""
    alpha = probability(real_fraction, "real_fraction")
    G = integer_at_least(generations, "generations", 0)
    t0 = _positive(t0, "t0")
    k = np.arange(G + 1, dtype=float)
    growth = k if alpha == 0.0 else (1.0 - (1.0 - alpha) ** k) / alpha
    return law_variance(dataset, noise) + t0 * growth


def stationary_variance(*, real_fraction: float, t0: float, noise: float = 0.0, dataset: str = "gaussian") -> float:
    """sigma^2 + t0 / alpha: the k -> infinity value of `variance_limit` (inf at alpha = 0)."""
    alpha = probability(real_fraction, "real_fraction")
    return math.inf if alpha == 0.0 else law_variance(dataset, noise) + _positive(t0, "t0") / alpha


def limit_mixture(generation: int, *, real_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Model k of the M -> infinity chain as p0 smoothed by a mixture of Gaussian kernels: weights
    `(k,)` and kernel variances in units of t0 `(k,)`: alpha (1 - alpha)^m on (m + 1) t0 for
    m = 0..k-2 and (1 - alpha)^(k-1) on k t0 (the paper's mixture; generation k >= 1)."""
    k = integer_at_least(generation, "generation", 1)
    alpha = probability(real_fraction, "real_fraction")
    m = np.arange(k - 1, dtype=float)
    weights = np.concatenate([alpha * (1.0 - alpha) ** m, [(1.0 - alpha) ** (k - 1)]])
    return weights, np.arange(1, k + 1, dtype=float)


def _radius_rule(dim: int, panels: int = 64, nodes: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Nodes r and weights of E f(R), R = |z| for z ~ N(0, I_dim) (chi law): composite Gauss-Legendre
    on [0, sqrt(dim) + 14] (the tail beyond it weighs below 1e-40); the weights sum to 1 within 1e-12."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(0.0, math.sqrt(dim) + 14.0, panels + 1)
    half = 0.5 * np.diff(edges)[:, None]
    r = ((edges[1:] + edges[:-1])[:, None] * 0.5 + half * x).ravel()
    log_chi = (dim - 1) * np.log(r) - 0.5 * r**2 - (0.5 * dim - 1.0) * math.log(2.0) - math.lgamma(0.5 * dim)
    return r, (half * w).ravel() * np.exp(log_chi)


def mixture_cross_entropy(variances, weights, *, dim: int, noise: float = 0.0) -> float:
    """E_{x ~ N(0, sigma^2 I_dim)} [-log sum_j w_j N(x; 0, v_j I_dim)] by quadrature over |x| (nats).

    variances `(J,)` (> 0), weights `(J,)` (>= 0, summing to 1)."""
    d = integer_at_least(dim, "dim", 1)
    variances, weights = np.asarray(variances, float), np.asarray(weights, float)
    r, w = _radius_rule(d)
    sq = _sigma(noise) ** 2 * r[:, None] ** 2
    with np.errstate(divide="ignore"):
        log_terms = np.log(weights)[None, :] - 0.5 * d * np.log(2.0 * math.pi * variances)[None, :]
    log_terms = log_terms - sq / (2.0 * variances[None, :])
    top = np.max(log_terms, axis=1, keepdims=True)
    log_density = (top + np.log(np.sum(np.exp(log_terms - top), axis=1, keepdims=True)))[:, 0]
    return float(-np.sum(w * log_density))


def held_out_nll_limit(
    *, real_fraction: float, t0: float, noise: float = 0.0, dim: int = 1, generations: int
) -> np.ndarray:
    """`(generations + 1,)` the M -> infinity limit of the held-out NLL (the paper's mixture; a limit,
    not exact at finite M): the cross-entropy of the real law N(0, sigma^2 I_dim) against model k
    (`limit_mixture`), by quadrature; generation 0 is the real law's entropy d/2 log(2 pi e sigma^2)."""
    G = integer_at_least(generations, "generations", 0)
    d = integer_at_least(dim, "dim", 1)
    t0 = _positive(t0, "t0")
    sigma2 = _sigma(noise) ** 2
    values = [0.5 * d * math.log(2.0 * math.pi * math.e * sigma2)]
    for k in range(1, G + 1):
        weights, units = limit_mixture(k, real_fraction=real_fraction)
        values.append(mixture_cross_entropy(sigma2 + units * t0, weights, dim=d, noise=noise))
    return np.asarray(values)


def _not_derived(
    dataset: str,
    policy: str,
    real_fraction: float,
    real_source: str,
    real_draw: str,
    shared: bool,
    weight,
    sample_growth: float = 0.0,
    method: str = "samples",
) -> str | None:
    """Why a configuration has no theory here, or None."""
    why = unmodelled(
        policy=(policy, POLICIES),
        real_source=(real_source, REAL_SOURCES),
        real_draw=(real_draw, REAL_DRAWS),
        method=(method, METHODS),
    )
    if why is not None:
        return why.reason
    if sample_growth:
        return "growing sample size (sample_growth > 0): not derived"
    if dataset not in DEFAULT_NOISE:
        return f"dataset {dataset}: not derived"
    if shared:
        return "with a shared real sample the chain mean is conditional on it; theory is unconditional"
    if policy != "replace":
        return f"policy {policy}: theory derived for replace only (simulation only)"
    if real_fraction > 0 and real_draw == "mixture":
        return "real points drawn as a mixture (random real count): not derived (simulation only)"
    if real_fraction > 0 and real_source == "original":
        return "real points reused from the generation-1 sample: not derived (simulation only)"
    if weight is not None and weight >= 0:
        return f"real points weighted (real_weight = {weight:g}): not derived (simulation only)"
    return None


def predict(
    metric: str,
    *,
    t0: float,
    samples: int,
    generations: int,
    dataset: str = "gaussian",
    dim: int = 2,
    noise: float = 0.0,
    policy: str = "replace",
    real_fraction: float = 0.0,
    real_source: str = "fresh",
    real_draw: str = "fixed",
    shared_real_data: bool = False,
    real_weight: float = -1.0,
    sample_growth: float = 0.0,
    method: str = "samples",
    **_ignored,
) -> Prediction | NoTheory:
    """The exact prediction (`exact_moments`, our derivation) of one metric of the diffusion setting,
    taking the simulation's parameter names; NoTheory for the held-out NLL (no finite-M closed form: its
    M -> infinity limit is `predict_limit`) and for configurations not derived (accumulate policies,
    mixture or reused real draws, weighted real points, a shared real sample). Any of the setting's
    datasets (`law_variance`: the recursion needs only the real law's mean and trace)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    why = _not_derived(
        dataset, policy, real_fraction, real_source, real_draw, shared_real_data, real_weight, sample_growth, method
    )
    if why is not None:
        return NoTheory(why)
    if metric == "held_out_nll":
        return NoTheory(
            "E held-out NLL of a finite-M model: no closed form (its M -> infinity limit, the paper's mixture "
            "cross-entropy, is theory.diffusion.held_out_nll_limit for the gaussian dataset)"
        )
    variance, error = exact_moments(
        samples=samples,
        real_fraction=real_fraction,
        t0=t0,
        noise=noise,
        dim=dim,
        generations=generations,
        dataset=dataset,
    )
    note = "exact moment recursion for a KDE of bandwidth sqrt(t0) fitted on its own samples (our derivation)"
    return Prediction(variance if metric == "variance" else error, "exact", None, note=note)


def predict_limit(
    metric: str,
    *,
    t0: float,
    generations: int,
    dataset: str = "gaussian",
    dim: int = 2,
    noise: float = 0.0,
    policy: str = "replace",
    real_fraction: float = 0.0,
    real_source: str = "fresh",
    real_draw: str = "fixed",
    shared_real_data: bool = False,
    real_weight: float = -1.0,
    sample_growth: float = 0.0,
    method: str = "samples",
    **_ignored,
) -> Prediction | NoTheory:
    """The paper's M -> infinity limit of one metric as a Prediction of kind "limit" (not exact at any
    finite M; drawn beside the simulation, never used for a verdict): `variance_limit`, 0 for the mean
    error, `held_out_nll_limit`. Same configurations as `predict` (with alpha the real fraction itself)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    why = _not_derived(
        dataset, policy, real_fraction, real_source, real_draw, shared_real_data, real_weight, sample_growth, method
    )
    if why is not None:
        return NoTheory(why)
    common = dict(real_fraction=real_fraction, t0=t0, noise=noise, generations=generations)
    if metric == "variance":
        mean = variance_limit(dataset=dataset, **common)
    elif metric == "mean_error_sq":
        mean = np.zeros(integer_at_least(generations, "generations", 0) + 1)
    elif dataset != "gaussian":
        return NoTheory(f"dataset {dataset}: the limit NLL is computed for the gaussian dataset only")
    else:
        mean = held_out_nll_limit(dim=dim, **common)
    return Prediction(mean, "limit", None, note=f"M -> infinity limit ({SOURCE}): the training data's mixture")
