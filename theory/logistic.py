"""Recursive logistic regression: large-sample (asymptotic) predictions only.

Setting (the `logistic` setting): x ~ N(0, I_d), y | x ~ Bernoulli(sigmoid(x . beta*)), beta* uniform on
the sphere of radius s = `signal` (every prediction here depends on beta* through s only, so it holds for
each chain and for their mean); model k is the maximum-likelihood fit on M = `samples` points per
generation; model 1 on real labels; model k >= 2 on labels drawn from model k - 1, on the same design
(`design="fixed"`, Dey & Donoho 2024) or on fresh rows. Metrics: E ||beta_k - beta*||^2
(`param_error_sq`) and the excess log-loss E_x[l(beta_k) - l(beta*)] (`excess_log_loss`).

No finite-sample closed form is known for the logistic MLE (its law at finite M has none; it does not
even exist with positive probability, on separable data), so there is no exact prediction. What holds is
the large-M statement of Dey & Donoho 2024 ("Universality of the pi^2/6 pathway in avoiding model
collapse", arXiv 2410.22812) for asymptotically linear estimators, re-derived here for this one (ours):

One fit. With I = E[sigmoid'(x . beta*) x x^T] the Fisher information per point, beta_hat - beta* =
I^-1 (1/M) sum_i x_i (y_i - sigmoid(x_i . beta*)) + O_p(1/M), so E ||beta_hat - beta*||^2 =
tr(I^-1) / M (1 + O(1/M)) and, the population log-loss having Hessian I at beta*, the excess log-loss is
(1/2) E (beta_hat - beta*)^T I (beta_hat - beta*) = d / (2M) (1 + O(1/M)). For x ~ N(0, I_d) write
x = Z u + x_perp with u = beta*/s: I = a I_d + (b - a) u u^T, a = E sigmoid'(sZ), b = E sigmoid'(sZ) Z^2
(Z ~ N(0, 1)), so tr(I^-1) = (d - 1)/a + 1/b.

Replace. Linearised around beta* the labels of generation j are y = sigmoid(x . beta*) + sigmoid'(x .
beta*) x . delta_{j-1} + e_j (e_j the Bernoulli noise, delta_j = beta_j - beta*, delta_0 = 0), and the fit
on them alone is delta_j = delta_{j-1} + xi_j with xi_j = H^-1 X^T e_j, H = X^T diag(sigmoid') X: the xi_j
are uncorrelated with covariance I^-1 / M, so E ||delta_k||^2 = k tr(I^-1)/M (k one-fit errors).

Accumulate. Model k solves the score equation on all k label sets: sum_{j<=k} X^T (y_j - sigmoid(X
beta_k)) = 0, linearised k H delta_k = H sum_{j<=k} delta_{j-1} + sum_{j<=k} X^T e_j, i.e. delta_k is the
average of delta_{j-1} + xi_j over j <= k. Subtracting the equation for k - 1 gives delta_k = delta_{k-1} +
xi_k / k, the fixed-design OLS recursion of theory.regression.ols_accumulate (theory.md B.3, "stacked OLS
is the block average"), so E ||delta_k||^2 = (tr(I^-1)/M) sum_{j<=k} 1/j^2 -> (pi^2/6) tr(I^-1)/M. With a
fresh design H_j = M I + O_p(sqrt(M)) for every block and the same recursion holds to leading order (the
OLS fresh-design sum d/(j(jT - d - 1)) is d/(j^2 T) (1 + O(d/(jT))) too).

Accumulate-subsample: the Gaussian-process limit V_k -> pi^2/2 - 2 of the same paper's subsample
workflow (theory.ridge.subsample_limit_ratio), by the same universality.

All of it is kind "asymptotic": the relative error is O(1/M) at generation 1, and grows with k under
replace, where the chain's beta_k wanders away from beta* (E ||beta_k||^2 = s^2 + k tr(I^-1)/M), the
information at beta_k falls, and the error grows faster than linearly once k tr(I^-1)/M is not small
against s^2. `predict` returns NoTheory for the separation indicator.
"""

from __future__ import annotations

import math

import numpy as np

from theory.common import METHODS, POLICIES, NoTheory, Prediction, integer_at_least, nonnegative, unmodelled
from theory.ridge import subsample_limit_ratio

METRICS = ("param_error_sq", "excess_log_loss", "separated")


def _sigmoid_slope(t):
    """sigmoid'(t) = sigmoid(t) (1 - sigmoid(t)) = 1 / (4 cosh^2(t/2)), without overflow."""
    return 0.25 / np.cosh(0.5 * np.asarray(t, float)) ** 2


def fisher_moments(signal: float) -> tuple[float, float]:
    """(a, b) = (E sigmoid'(sZ), E sigmoid'(sZ) Z^2), Z ~ N(0, 1), s = `signal` >= 0, in float64 by the
    trapezoid rule on z in [-12, 12] with step 1/500: the integrands are analytic in the strip |Im z| <
    pi/s, so the discretisation error is about exp(-2 pi (pi/s) 500), negligible for s <= 50, and the
    tails beyond 12 weigh below 1e-32: within 1e-12 relative of an adaptive quadrature for s <= 5.
    For s = 0: (1/4, 1/4)."""
    s = nonnegative(signal, "signal")
    z = np.linspace(-12.0, 12.0, 12_001)
    weights = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) * (z[1] - z[0])
    slope = _sigmoid_slope(s * z)
    return float(np.sum(weights * slope)), float(np.sum(weights * slope * z * z))


def fisher_trace_inverse(*, dim: int, signal: float) -> float:
    """tr(I^-1) = (d - 1)/a + 1/b for x ~ N(0, I_d) and ||beta*|| = s (module docstring)."""
    d = integer_at_least(dim, "dim", 1)
    a, b = fisher_moments(signal)
    return (d - 1) / a + 1.0 / b


def one_fit(metric: str, *, dim: int, samples: int, signal: float) -> float:
    """The large-M one-fit value: tr(I^-1)/M for `param_error_sq`, d/(2M) for `excess_log_loss`
    [ASYMPTOTIC, relative error O(1/M)]."""
    m = integer_at_least(samples, "samples", 1)
    if metric == "param_error_sq":
        return fisher_trace_inverse(dim=dim, signal=signal) / m
    if metric == "excess_log_loss":
        return integer_at_least(dim, "dim", 1) / (2.0 * m)
    raise ValueError(f"metric must be param_error_sq or excess_log_loss, got {metric!r}")


def pathway_ratio(policy: str, generations: int) -> np.ndarray:
    """The risk after k = 0..G fits relative to one fit, large-M limit (Dey & Donoho 2024; derivation in
    the module docstring): replace k, accumulate sum_{j<=k} 1/j^2 (-> pi^2/6), accumulate-subsample
    V_k (-> pi^2/2 - 2). Returns `(G + 1,)`."""
    g = integer_at_least(generations, "generations")
    k = np.arange(g + 1, dtype=float)
    if policy == "replace":
        return k
    if policy == "accumulate":
        return np.concatenate([np.zeros(1), np.cumsum(1.0 / k[1:] ** 2)])
    if policy == "accumulate-subsample":
        return subsample_limit_ratio(g)
    raise ValueError(f"policy must be replace, accumulate or accumulate-subsample, got {policy!r}")


def asymptotic_mean(metric: str, *, dim: int, samples: int, signal: float, policy: str, generations: int):
    """E metric after k = 0..G fits, large M: `one_fit` times `pathway_ratio` [ASYMPTOTIC]. `(G + 1,)`."""
    return one_fit(metric, dim=dim, samples=samples, signal=signal) * pathway_ratio(policy, generations)


def predict(
    metric: str,
    *,
    dim: int,
    samples: int,
    signal: float,
    policy: str,
    generations: int,
    design: str = "fixed",
    real_fraction: float = 0.0,
    shared_real_data: bool = False,
    sample_growth: float = 0.0,
    method: str = "samples",
    **_ignored,
) -> Prediction | NoTheory:
    """The prediction for one metric of the logistic setting, taking its own parameter names
    (`samples` = M): kind "asymptotic" (large M/d), so that a deviation at finite M reads "deviates
    (asymptotic)", not "fail"; NoTheory for `separated`, for fresh real points, a shared real sample, a
    growing sample size, and an option value not modelled here (a pool rule, design or method)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    why = unmodelled(policy=(policy, POLICIES), design=(design, ("fixed", "fresh")), method=(method, METHODS))
    if why is not None:
        return why
    if shared_real_data:
        return NoTheory("with a shared real sample the chain mean is conditional on it; theory is unconditional")
    if sample_growth:
        return NoTheory("growing sample size (sample_growth > 0): not derived")
    if metric == "separated":
        return NoTheory(
            "the probability that the MLE does not exist (separable data) has no closed form here; it vanishes "
            "as M/d grows (Candes & Sur 2020 give its proportional-regime boundary)"
        )
    if real_fraction > 0:
        return NoTheory("logistic chains with a fresh real fraction: not derived")
    mean = asymptotic_mean(metric, dim=dim, samples=samples, signal=signal, policy=policy, generations=generations)
    one = "tr(I^-1)/M, tr(I^-1) = (d-1)/a + 1/b" if metric == "param_error_sq" else "d/(2M)"
    ratio = {"replace": "k", "accumulate": "sum_{j<=k} 1/j^2", "accumulate-subsample": "V_k"}[policy]
    note = (
        f"asymptotic (large M/d; no finite-sample closed form for the logistic MLE): {ratio} x {one} "
        f"(Dey & Donoho 2024's pathway, derived here by linearising the score; {design} design)"
    )
    return Prediction(mean, "asymptotic", note=note)
