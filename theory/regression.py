"""Closed forms for recursive linear regression (OLS), isotropic Gaussian design.

Setting (theory.md B.1): x ~ N(0, I_d), y = <w*, x> + eps, eps ~ N(0, sigma^2); model k labels the
next generation's T design rows with its own weights plus fresh noise of the same variance; generation
k = 1 is the fit on real data; excess risk E_k = ||w_k - w*||^2 (test error against noiseless targets).
"""

from __future__ import annotations

import jax.numpy as jnp

from theory.common import NoTheory, Prediction

METRICS = ("excess_risk",)
EDGE = 6  # means are compared only for T >= d + EDGE: the inverse-Wishart trace has finite variance only for T > d + 3


def ols_replace(*, dim: int, samples: int, noise_var, generations: int):
    """E excess risk after k = 0..G fits, replace: k sigma^2 d / (T - d - 1), T >= d + 2, fixed or fresh
    design, any Sigma (Dohmatob, Feng & Kempe 2024; Gerstgrasser et al. 2024; theory.md B.2). Exact."""
    k = jnp.arange(generations + 1)
    return k * noise_var * dim / (samples - dim - 1)


def ols_accumulate(*, dim: int, samples: int, noise_var, generations: int, design: str):
    """E excess risk after k = 0..G fits, accumulate (all blocks so far), T >= d + 2 (theory.md B.3).

    fixed design: sigma^2 d/(T-d-1) sum_{i<=k} 1/i^2 <= (pi^2/6) sigma^2 d/(T-d-1) (Gerstgrasser et al.
    2024); fresh design: sigma^2 sum_{i<=k} d / (i (iT - d - 1)). Exact (derived, Monte Carlo checked).
    """
    i = jnp.arange(1, generations + 1, dtype=float)
    if design == "fixed":
        terms = noise_var * dim / (samples - dim - 1) / i**2
    else:
        terms = noise_var * dim / (i * (i * samples - dim - 1))
    return jnp.concatenate([jnp.zeros(1), jnp.cumsum(terms)])


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
    **_ignored,
) -> Prediction | NoTheory:
    """The prediction for one metric, taking the simulation's own parameter names (`generations` = G,
    `samples` = T)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if shared_design:
        return NoTheory("with a shared design and w* the chain mean is conditional on them; theory is unconditional")
    if ridge != 0:
        return NoTheory("ridge at every generation: no closed form derived (the two-stage ridge theory is different)")
    if real_fraction > 0:
        return NoTheory("OLS with a fresh real fraction: not derived")
    if samples < dim + 2:
        return NoTheory("OLS needs T >= d + 2 for a finite expected excess risk")
    if policy == "accumulate-subsample":
        return NoTheory("accumulate-subsample: only a large-T limit (pi^2/2 - 2) is known, not a finite-T closed form")
    args = dict(dim=dim, samples=samples, noise_var=noise_var, generations=generations)
    if policy == "replace":
        mean, note = ols_replace(**args), "exact: k sigma^2 d/(T-d-1) (E (X^T X)^-1 = I/(T-d-1))"
    else:
        mean = ols_accumulate(design=design, **args)
        note = ("exact: sigma^2 d/(T-d-1) sum 1/i^2 <= pi^2/6 (fixed design)" if design == "fixed"
                else "exact: sigma^2 sum d/(i(iT-d-1)) (fresh design)")
    heavy = jnp.where(samples >= dim + EDGE, 0.0, jnp.inf) * jnp.ones(generations + 1)
    return Prediction(mean, "exact", heavy, note=note + f"; means compared only for T >= d + {EDGE}")
