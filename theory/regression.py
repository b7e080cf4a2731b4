"""Closed forms for recursive linear regression: OLS and min-norm chains, and a downstream model.

Setting (theory.md B.1): x ~ N(0, Sigma), y = <w*, x> + eps, eps ~ N(0, sigma^2); model k labels the
next generation's T design rows with its own weights plus fresh noise of the same variance; generation
k = 1 is the fit on real data; excess risk E_k = (w_k - w*)^T Sigma (w_k - w*) (test error against
noiseless targets). Its bias part is the same quantity for the noise-free chain m_k = E[w_k | designs],
its variance part E||w_k - m_k||_Sigma^2. A downstream model (two-stage setting of Dohmatob, Feng &
Kempe 2024) is fitted on T' fresh points labelled by model k with noise sigma'^2; see `theory.ridge`.

`predict` takes the simulation's parameter names and returns a `Prediction` or a `NoTheory` saying why
there is none. The direct formulas raise ValueError outside their conditions.
"""

from __future__ import annotations

import math

import numpy as np

from theory import ridge as ridge_theory
from theory.common import (
    METHODS,
    POLICIES,
    REAL_DRAWS,
    REAL_SOURCES,
    VERIFIED_BUDGETS,
    NoTheory,
    Prediction,
    typed,
    unmodelled,
)

CHAIN_METRICS = ("excess_risk", "excess_bias", "excess_variance")
DOWNSTREAM_METRICS = ("downstream_excess_risk", "downstream_bias", "downstream_variance", "downstream_synthetic")
METRICS = CHAIN_METRICS + DOWNSTREAM_METRICS
EDGE = 6  # means are compared only for |T - d| >= EDGE: the (inverse-)Wishart trace has finite variance only then


def _require_ols(dim: int, samples: int) -> None:
    if samples < dim + 2:
        raise ValueError(
            f"samples must be >= dim + 2 = {dim + 2} for a finite OLS excess risk "
            f"(E (X^T X)^-1 exists only for T > d + 1), got samples={samples}"
        )


def ols_replace(*, dim: int, samples: int, noise_var, generations: int):
    """E excess risk after k = 0..G fits, replace: k sigma^2 d / (T - d - 1), T >= d + 2, fixed or fresh
    design, any Sigma (Dohmatob, Feng & Kempe 2024; Gerstgrasser et al. 2024; theory.md B.2). Exact."""
    _require_ols(dim, samples)
    k = np.arange(generations + 1)
    return k * noise_var * dim / (samples - dim - 1)


def ols_accumulate(*, dim: int, samples: int, noise_var, generations: int, design: str):
    """E excess risk after k = 0..G fits, accumulate (all blocks so far), T >= d + 2, any Sigma
    (theory.md B.3).

    fixed design: sigma^2 d/(T-d-1) sum_{i<=k} 1/i^2 <= (pi^2/6) sigma^2 d/(T-d-1) (Gerstgrasser et al.
    2024); fresh design: sigma^2 sum_{i<=k} d / (i (iT - d - 1)). Exact (derived, Monte Carlo checked).
    """
    _require_ols(dim, samples)
    i = np.arange(1, generations + 1, dtype=float)
    if design == "fixed":
        terms = noise_var * dim / (samples - dim - 1) / i**2
    else:
        terms = noise_var * dim / (i * (i * samples - dim - 1))
    return np.concatenate([np.zeros(1), np.cumsum(terms)])


def ols_accumulate_limit(*, dim: int, samples: int, noise_var):
    """The fixed-design accumulate limit (pi^2/6) sigma^2 d/(T-d-1), an upper bound at every k (B.3)."""
    _require_ols(dim, samples)
    return math.pi**2 / 6 * noise_var * dim / (samples - dim - 1)


def ols_subsample(*, dim: int, samples: int, noise_var, generations: int):
    """Accumulate-subsample, large-T limit: E_k ~ V_k sigma^2 d/(T-d-1), V_k -> pi^2/2 - 2 (theory.md A.4,
    B.3; derived from the Gaussian-process limit of Dey & Donoho 2024). ASYMPTOTIC in T/d -> infinity: at
    d = 10, T = 32 the chain's error nears 2.4 (about 5 one-fit errors) by generation 100, not 1.4."""
    _require_ols(dim, samples)
    return ridge_theory.subsample_limit_ratio(generations) * noise_var * dim / (samples - dim - 1)


def weighted_ols_limit(real_weight, *, real: int, synthetic: int, dim: int, noise_var=1.0):
    """He, Xu & Cheng 2025's stationary excess risk of weighted OLS with a fresh design x ~ N(0, I_d):
    each generation fits r fresh real rows and M - r rows labelled by the previous model (fresh noise of
    the same variance), the real rows carrying the share w of the weight [LIMIT: large M; their unified
    expression, with the Fisher information of the isotropic design].

    With X'X / n replaced by I, w_k - w* = w (real noise) + (1 - w)(w_{k-1} - w*) + (1 - w)(synthetic
    noise), so E_k = sigma^2 d [w^2 / r + (1 - w)^2 / (M - r)] + (1 - w)^2 E_{k-1}, whose fixed point is
    sigma^2 d [w^2 / r + (1 - w)^2 / (M - r)] / (w (2 - w)), minimised at the golden-ratio weight of the
    Gaussian mean (theory.gaussian.optimal_real_weight). No finite-M closed form is known to us: the
    weighted Gram matrix's inverse does not factor; the finite-M excess risk exceeds the limit by a
    relative O(d / M) (shown by simulation in tests/test_real_weight.py).
    """
    w = np.asarray(real_weight, float)
    if np.any((w <= 0) | (w > 1)):
        raise ValueError(f"real_weight must be in (0, 1], got {real_weight!r}")
    if real < 1 or synthetic < 1:
        raise ValueError(f"real and synthetic counts must be >= 1, got {real}, {synthetic}")
    return noise_var * dim * (w**2 / real + (1 - w) ** 2 / synthetic) / (w * (2 - w))


def _read_option(text: str):
    """`(kind, value)` of an option string written by hand: "isotropic" / "random" (value None),
    "power:BETA" / "source:R" (a number), "file:PATH" (the array in the file, .npy or text)."""
    kind, _, value = text.partition(":")
    if kind == "file":
        return kind, np.load(value) if value.endswith(".npy") else np.loadtxt(value, ndmin=1)
    return kind, float(value) if value else None


def _spectrum(spectrum, dim: int):
    """Eigenvalues `(d,)` and eigenvectors `(d, d)` (None: the coordinate basis) of a spectrum:
    ("isotropic", None), ("power", beta) or ("file", (d,) eigenvalues or a (d, d) covariance)."""
    kind, value = typed(spectrum, _read_option)
    if kind == "isotropic":
        return np.ones(dim), None
    if kind == "power":
        return np.arange(1, dim + 1, dtype=float) ** -float(value), None
    values = np.asarray(value, float)
    if values.ndim == 1:
        return values, None
    return np.linalg.eigh(values)


def _weight_moments(true_weights, spectrum, dim: int, basis):
    """E c_i^2 `(d,)`: the squared coordinates of w* in the eigenbasis (their mean for drawn w*), for
    true weights ("random", None), ("source", r) (with spectrum ("power", beta)) or ("file", w*)."""
    kind, value = typed(true_weights, _read_option)
    if kind == "random":
        return np.full(dim, 1.0 / dim)  # w* ~ N(0, I/d): E w* w*^T = I/d in every basis
    if kind == "source":
        beta, source = float(typed(spectrum, _read_option)[1]), float(value)
        c2 = np.arange(1, dim + 1, dtype=float) ** (beta - 1 - 2 * source * beta)
        return c2 / c2.sum()
    w = np.asarray(value, float)
    return (w if basis is None else basis.T @ w) ** 2


def _chain_risk(*, dim, samples, noise_var, policy, generations, design):
    """(E excess risk (G+1,), bias (G+1,), variance (G+1,), kind, note) of an OLS or min-norm chain, or
    a NoTheory reason string."""
    zeros = np.zeros(generations + 1)
    if samples >= dim + 2:
        args = dict(dim=dim, samples=samples, noise_var=noise_var, generations=generations)
        if policy == "replace":
            risk = ols_replace(**args)
            return risk, zeros, risk, "exact", "exact: k sigma^2 d/(T-d-1) (E (X^T X)^-1 = Sigma^-1/(T-d-1))"
        if policy == "accumulate":
            risk = ols_accumulate(design=design, **args)
            note = (
                "exact: sigma^2 d/(T-d-1) sum 1/i^2 <= pi^2/6 (fixed design)"
                if design == "fixed"
                else "exact: sigma^2 sum d/(i(iT-d-1)) (fresh design)"
            )
            return risk, zeros, risk, "exact", note
        if policy == "accumulate-subsample":
            risk = ols_subsample(**args)
            return risk, zeros, risk, "asymptotic", "large-T limit V_k sigma^2 d/(T-d-1), V_k -> pi^2/2 - 2"
        return f"OLS chain under policy {policy!r}: not derived"
    if samples <= dim - 2:
        if policy != "replace":
            return f"min-norm chain under {policy}: not derived"
        parts = ridge_theory.minimum_norm_replace(
            dim=dim, samples=samples, noise_var=noise_var, generations=generations, design=design
        )
        note = (
            "exact: (1 - r^k) + v (1 - r^k)/(1 - r), r = T/d, v = sigma^2 T/(d-T-1)"
            if design == "fresh"
            else "exact: (1 - r) + k v, r = T/d, v = sigma^2 T/(d-T-1) (fixed design)"
        )
        return parts["total"], parts["bias"], parts["variance"], "exact", note
    return "d - 1 <= T <= d + 1: the expected excess risk is infinite"


def residual_verifier_contraction(tolerance, noise_var):
    """rho = 1 - 2 b phi(b) / (2 Phi(b) - 1), b = tau / sigma: the variance ratio of N(0, sigma^2)
    truncated to [-tau, tau], which is the derivative at w_k = w_v of the map w_k -> E w_k+1 for a residual
    verifier keeping |y - x.w_v| <= tau (Yi et al. 2025, arXiv 2510.16657; their Thm 4.1 contraction
    factor as reconstructed here, not read from the paper). Exact for the truncated normal."""
    if not tolerance > 0 or not noise_var > 0:
        raise ValueError(f"tolerance and noise_var must be > 0, got {tolerance}, {noise_var}")
    b = tolerance / math.sqrt(noise_var)
    density = math.exp(-0.5 * b * b) / math.sqrt(2 * math.pi)
    return 1.0 - 2.0 * b * density / math.erf(b / math.sqrt(2))


def residual_verifier_unbiased(*, dim: int, samples: int, noise_var, tolerance, generations: int):
    """E excess risk of the OLS replace chain (fresh isotropic design, T = `samples` kept rows refilled)
    whose synthetic rows pass a residual verifier centred on w* (|y - x.w*| <= tau), k = 0..G
    [ASYMPTOTIC: linearised around w*, reconstruction]. Model 1 is the plain OLS fit, E_1 = sigma^2 d/(T - d - 1);
    then E_k+1 = rho^2 E_k + d sigma^2 rho / (T - d - 1), rho = `residual_verifier_contraction`: the kept
    residual's mean is about rho x.(w_k - w*) and its variance sigma^2 rho. The chain settles at
    d sigma^2 rho / ((T - d - 1)(1 - rho^2)) instead of growing linearly. The neglected curvature (the
    contraction is stronger for w_k far from w_v) makes it an overestimate growing with E_k: Monte Carlo at
    d = 5, T = 100, 4000 chains: tau = 0.5 and 1 (E about 0.004 and 0.017) within 5 SE at every
    generation; tau = 2 (E about 0.09) 10 % high at the plateau."""
    _require_ols(dim, samples)
    rho = residual_verifier_contraction(tolerance, noise_var)
    step = dim * noise_var * rho / (samples - dim - 1)
    values = [0.0, noise_var * dim / (samples - dim - 1)]
    for _ in range(generations - 1):
        values.append(rho * rho * values[-1] + step)
    return np.asarray(values[: generations + 1])


def predict(
    metric: str,
    *,
    dim: int,
    samples: int,
    noise_var: float,
    policy: str,
    generations: int,
    design: str = "fixed",
    ridge: float = 0.0,
    real_fraction: float = 0.0,
    shared_design: bool = False,
    spectrum: str | tuple = "isotropic",
    true_weights: str | tuple = "random",
    downstream_samples: int = 0,
    downstream_ridge: float = 0.0,
    downstream_noise_var: float = 1.0,
    verifier: str = "none",
    verifier_tolerance: float = 1.0,
    verifier_bias: float = 0.0,
    best_of: int = 1,
    verified_budget: str = "refill",
    real_source: str = "fresh",
    real_draw: str = "fixed",
    sample_growth: float = 0.0,
    method: str = "samples",
    **_ignored,
) -> Prediction | NoTheory:
    """The prediction for one metric, taking the simulation's own parameter names (`generations` = G,
    `samples` = T). NoTheory for an option value not modelled here (a pool rule, design, verifier, verified
    budget, real source or draw, or method outside the known ones), a growing sample size and best-of-K."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    why = unmodelled(
        policy=(policy, POLICIES),
        design=(design, ("fixed", "fresh")),
        verifier=(verifier, ("none", "residual")),
        verified_budget=(verified_budget, VERIFIED_BUDGETS),
        real_source=(real_source, REAL_SOURCES),
        real_draw=(real_draw, REAL_DRAWS),
        method=(method, METHODS),
    )
    if why is not None:
        return why
    if sample_growth:
        return NoTheory("growing sample size (sample_growth > 0): not derived")
    if best_of != 1:
        return NoTheory(f"best-of-{best_of} selection of synthetic rows: not derived")
    if verifier != "none":
        simple = (
            verifier_bias == 0
            and verified_budget == "refill"
            and not shared_design
            and policy == "replace"
            and design == "fresh"
            and ridge == 0
            and real_fraction == 0
            and typed(spectrum, _read_option)[0] == "isotropic"
            and samples >= dim + 2
        )
        if metric != "excess_risk" or not simple:
            return NoTheory(
                "a residual verifier (Yi et al. 2025) keeps rows depending on x and y: the chain "
                "contracts towards the verifier's centre w_v; only the unbiased (w_v = w*) replace OLS "
                "chain with a fresh isotropic design, refilled to T kept rows, has a (linearised) prediction"
            )
        return Prediction(
            residual_verifier_unbiased(
                dim=dim, samples=samples, noise_var=noise_var, tolerance=verifier_tolerance, generations=generations
            ),
            "asymptotic",
            note="linearised around w_v = w* (Yi et al. 2025 setting; derived, "
            "reconstruction): E_k+1 = rho^2 E_k + d sigma^2 rho/(T - d - 1)",
        )
    if shared_design:
        return NoTheory("with a shared design and w* the chain mean is conditional on them; theory is unconditional")
    if ridge != 0:
        return NoTheory("ridge at every generation: no closed form derived (the two-stage ridge theory is different)")
    if real_fraction > 0:
        return NoTheory("OLS with a fresh real fraction: not derived")
    eigenvalues, basis = _spectrum(spectrum, dim)
    isotropic = bool(np.all(eigenvalues == eigenvalues[0]))
    if samples <= dim - 2 and not isotropic:
        return NoTheory("min-norm chain with an anisotropic Sigma: not derived (B.6 is isotropic)")
    chain = _chain_risk(
        dim=dim, samples=samples, noise_var=noise_var, policy=policy, generations=generations, design=design
    )
    if isinstance(chain, str):
        return NoTheory(chain)
    risk, bias, variance, kind, note = chain
    if samples <= dim - 2:  # min-norm: the bias scales with ||w*||^2
        norm_sq = float(np.sum(_weight_moments(true_weights, spectrum, dim, basis)))
        bias = bias * norm_sq
        risk = bias + variance
    finite = abs(samples - dim) >= EDGE
    heavy = np.where(finite, 0.0, np.inf) * np.ones(generations + 1)
    edge_note = f"; means compared only for |T - d| >= {EDGE}"
    if metric in CHAIN_METRICS:
        mean = {"excess_risk": risk, "excess_bias": bias, "excess_variance": variance}[metric]
        return Prediction(mean, kind, heavy, note=note + edge_note)
    if samples <= dim - 2:
        return NoTheory(
            "downstream of a min-norm chain: its deviation covariance is not proportional to Sigma^-1 (not derived)"
        )
    down = _downstream(
        risk,
        eigenvalues,
        _weight_moments(true_weights, spectrum, dim, basis),
        dim=dim,
        samples=downstream_samples,
        ridge=downstream_ridge,
        noise_var=downstream_noise_var,
    )
    if isinstance(down, NoTheory):
        return down
    parts, down_kind, down_note = down
    name = metric[len("downstream_") :]
    mean = parts["total" if name == "excess_risk" else name]
    down_finite = downstream_ridge > 0 or abs(downstream_samples - dim) >= EDGE
    heavy = np.where(finite and down_finite, 0.0, np.inf) * np.ones(generations + 1)
    kind = "exact" if kind == "exact" and down_kind == "exact" else "asymptotic"
    return Prediction(
        np.asarray(mean) * np.ones(generations + 1),
        kind,
        heavy,
        note=f"chain {note}; downstream {down_note}{edge_note}",
    )


def _downstream(chain_risk, eigenvalues, weight_moments, *, dim, samples, ridge, noise_var):
    """(parts, kind, note) of the downstream model trained on labels of the chain's model, or NoTheory."""
    if ridge == 0 and samples >= dim + 2:
        parts = ridge_theory.ols_two_stage(
            dim=dim, downstream_samples=samples, downstream_noise_var=noise_var, chain_excess_risk=chain_risk
        )
        return parts, "exact", "OLS: sigma'^2 d/(T'-d-1) + chain risk (exact, theory.md B.2)"
    if ridge == 0 and samples > dim - 2:
        return NoTheory("downstream OLS with d - 1 <= T' <= d + 1: infinite expected risk")
    parts = ridge_theory.ridge_two_stage(
        eigenvalues=np.asarray(eigenvalues),
        weight_coefficients_sq=np.asarray(weight_moments),
        ridge=ridge,
        downstream_samples=samples,
        downstream_noise_var=noise_var,
        chain_excess_risk=np.asarray(chain_risk),
    )
    return parts, "asymptotic", "ridge deterministic equivalents (kappa, df1, df2; theory.md B.4, O(1/d) error)"
