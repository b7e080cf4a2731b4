"""Strong model collapse: a regression fitted on a mix of real and shifted synthetic labels (Dohmatob, Feng,
Subramonian & Kempe, "Strong Model Collapse", ICLR 2025, arXiv 2410.04840; theory.md C).

Setting (the simulation's, stated so that this module stands alone): x ~ N(0, I_d); real labels
y = x.w1 + noise, synthetic labels y = x.w2 + noise (noise variance sigma^2 = `noise_var`), ||w1|| = 1 in a
random direction, w2 = w1 + Delta with ||Delta|| = c (`shift`) in a random direction independent of w1.
The training set has N = `samples` rows, r = floor((1 - q) N + 0.5) real and n2 = N - r synthetic
(q = `synthetic_fraction`, p = n2 / N). Models: "ols"; "ridge:LAMBDA", w = (G/N + lambda I)^-1 (B/N),
G = X^T X, B = X^T y (the penalty is on the mean squared error); "projection:M", w = S v with S a d x M
Gaussian matrix drawn per chain and v the least-squares fit of y on S^T x. Metric test_error =
||w_hat - w1||^2 (excess error against noiseless targets, Sigma = I). Generation 0 is the truth (0),
generation 1 the synthetic generator w2 (c^2), generation 2 the fit on the mix.

Results: OLS [EXACT, derived here, see `ols_synthetic_factor`; theory.md C.2's finite-N formula is kept as
the approximation it is], random projection [EXACT at finite N, derived here; theory.md C.3 is its
N -> infinity limit], ridge [ASYMPTOTIC: the N -> infinity limit only]. Strong collapse: for fixed d and
p > 0 the error tends to the floor p^2 c^2 > 0 however large N is.

The direct formulas raise ValueError (naming the parameter) outside their conditions; `predict` takes the
simulation's parameter names and returns a `Prediction` or a `NoTheory` saying why there is none.
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
    nonnegative,
    probability,
    real_count,
    typed,
    unmodelled,
)

METRICS = ("test_error",)
SOURCE = "Dohmatob et al. 2024 (arXiv 2410.04840), theory.md C"


# ------------------------------------------------------------------------------------ input checks


def _ols_args(dim, samples, synthetic_count):
    dim = integer_at_least(dim, "dim", 1)
    samples = integer_at_least(samples, "samples", 1)
    if samples < dim + 2:
        raise ValueError(
            f"samples must be >= dim + 2 = {dim + 2} (E (X^T X)^-1 is finite only for N > d + 1), got samples={samples}"
        )
    n2 = integer_at_least(synthetic_count, "synthetic_count", 0)
    if n2 > samples:
        raise ValueError(f"synthetic_count must be <= samples = {samples}, got {n2}")
    return dim, samples, n2


# ------------------------------------------------------------------------------------------- OLS


def ols_noise_term(dim: int, samples: int, noise_var) -> float:
    """sigma^2 E tr (X^T X)^-1 = sigma^2 d / (N - d - 1): the label-noise part of the OLS test error, the
    same noise variance on real and synthetic rows, N >= d + 2 [EXACT; theory.md B.2, C.2]."""
    dim, samples, _ = _ols_args(dim, samples, 0)
    return nonnegative(noise_var, "noise_var") * dim / (samples - dim - 1)


def ols_synthetic_factor(dim: int, samples: int, synthetic_count: int) -> float:
    """E ||G^-1 X2^T X2 Delta||^2 / ||Delta||^2 for G = X^T X, X = [X1; X2] with i.i.d. N(0, 1) entries,
    n1 + n2 = N rows (n2 = `synthetic_count`), N >= d + 2 [EXACT, derived for collapse-jax]:

        a + b (N d - 2) / (N - d - 1),   b = n1 n2 / ((N - 1) N (N + 2)),   a = n2 (n2 + 2) / (N (N + 2)) - b.

    Derivation: polar decomposition X = Q G^{1/2}; Q (N x d, orthonormal columns) is Haar distributed and
    independent of G (invariance of X under O(N) on the left). With P = Q2^T Q2 (the synthetic rows of Q),
    G^-1 X2^T X2 = G^{-1/2} P G^{1/2}, so by rotational invariance the factor is (1/d) E tr(P G^-1 P G).
    P is conjugation invariant, so E[P M P] = a M + b tr(M) I with b = E P_12^2 and a + b = E P_11^2; Haar
    moments (E u_k^2 v_k^2 = 1/(N(N+2)), E u_k v_k u_l v_l = -1/((N-1)N(N+2)) for two columns u, v, k != l)
    give b, and P_11 ~ Beta(n2/2, n1/2) gives a + b. Finally E[tr G tr G^-1] = (N d - 2) d / (N - d - 1),
    because tr G ~ chi^2_{Nd} is independent of G / tr G. Checks: n2 = N gives 1 (w_hat = w2), n2 = 0 gives
    0, and the proportional limit is p^2 + p (1 - p) phi / (1 - phi), phi = d / N (theory.md C.2).
    """
    dim, samples, n2 = _ols_args(dim, samples, synthetic_count)
    n, n1 = samples, samples - n2
    b = n1 * n2 / ((n - 1) * n * (n + 2))
    a = n2 * (n2 + 2) / (n * (n + 2)) - b
    return a + b * (n * dim - 2) / (n - dim - 1)


def ols_mixture_error_exact(dim: int, samples: int, synthetic_count: int, noise_var, shift) -> float:
    """E ||w_hat - w1||^2 of OLS on N rows of which `synthetic_count` carry synthetic labels (shift
    c = ||w2 - w1||), x ~ N(0, I_d), N >= d + 2 [EXACT]: sigma^2 d/(N-d-1) + c^2 `ols_synthetic_factor`.
    The cross term vanishes (noise independent with mean 0); the direction of Delta does not matter."""
    c = nonnegative(shift, "shift")
    return ols_noise_term(dim, samples, noise_var) + c * c * ols_synthetic_factor(dim, samples, synthetic_count)


def ols_mixture_error(dim: int, samples: int, synthetic_count: int, noise_var, shift) -> float:
    """theory.md C.2's finite-N formula sigma^2 h + c^2 [p h + p (pN - 1)/(N - 1) (1 - h)], h = d/(N-d-1),
    p = synthetic_count / N, N >= d + 2 [ASYMPTOTIC in its synthetic term: exact noise term, synthetic term
    from exchangeability plus x^T G^-2 x ~ tr G^-1 / N; against `ols_mixture_error_exact` its synthetic
    term is 2.8% low at d = 10, N = 30, p = 0.3, halving each time d and N double (O(1/N) at fixed d/N), and
    the total is 0.4% high at d = 100, N = 150, p = 0.3, sigma^2 = 0.09]. Source: theory.md C.2 (derived)."""
    dim, samples, n2 = _ols_args(dim, samples, synthetic_count)
    c = nonnegative(shift, "shift")
    h = dim / (samples - dim - 1)
    p = n2 / samples
    synthetic = p * h + p * (p * samples - 1) / (samples - 1) * (1 - h)
    return nonnegative(noise_var, "noise_var") * h + c * c * synthetic


def ols_mixture_proportional(aspect_ratio, synthetic_fraction, noise_var, shift) -> float:
    """The proportional limit (d, N -> infinity, d/N = phi < 1) of the OLS mixture error [ASYMPTOTIC]:
    sigma^2 phi/(1 - phi) + c^2 [p^2 + p (1 - p) phi/(1 - phi)] (theory.md C.2)."""
    phi = float(aspect_ratio)
    if not (math.isfinite(phi) and 0.0 <= phi < 1.0):
        raise ValueError(f"aspect_ratio must be in [0, 1), got {phi}")
    p = probability(synthetic_fraction, "synthetic_fraction")
    c = nonnegative(shift, "shift")
    h = phi / (1 - phi)
    return nonnegative(noise_var, "noise_var") * h + c * c * (p * p + p * (1 - p) * h)


def synthetic_floor(synthetic_fraction, shift) -> float:
    """p^2 c^2: the limit of the OLS mixture error as N -> infinity at fixed d and p (strong collapse: it does
    not vanish however much data is added; theory.md C.2) [ASYMPTOTIC]."""
    p = probability(synthetic_fraction, "synthetic_fraction")
    return p * p * nonnegative(shift, "shift") ** 2


# ----------------------------------------------------------------------------------- ridge, projection


def ridge_mixture_limit(ridge, synthetic_fraction, shift, weight_norm=1.0) -> float:
    """N -> infinity limit of ridge w = (G/N + lambda I)^-1 (B/N) on the mix, Sigma = I [ASYMPTOTIC]:
    w_hat -> ((1 - p) w1 + p w2) / (1 + lambda), so ||w_hat - w1||^2 -> ||p Delta - lambda w1||^2 / (1 + lambda)^2,
    whose mean over the independent random direction of Delta is (lambda^2 ||w1||^2 + p^2 c^2) / (1 + lambda)^2
    (theory.md C.2). Finite N adds O(d / N) (label noise and the fluctuation of G/N); no finite-N closed form
    is derived. lambda = 0 gives the OLS floor p^2 c^2."""
    lam = nonnegative(ridge, "ridge")
    p = probability(synthetic_fraction, "synthetic_fraction")
    c = nonnegative(shift, "shift")
    w = nonnegative(weight_norm, "weight_norm")
    return (lam * lam * w * w + p * p * c * c) / (1 + lam) ** 2


def projection_limit(dim: int, width: int, synthetic_fraction, shift, weight_norm=1.0) -> float:
    """N -> infinity limit of the random-projection model w = S v, S a d x m Gaussian matrix [EXACT in
    expectation over S and the direction of Delta, at infinite N; theory.md C.3]: with P the projector on
    range S, w_hat -> P (w1 + p Delta) and E ||w_hat - w1||^2 = (1 - m/d) ||w1||^2 + p^2 (m/d) c^2 for m <= d;
    for m >= d the projection is the identity: p^2 c^2. Finite N: see `projection_mixture_error`."""
    dim = integer_at_least(dim, "dim", 1)
    m = min(integer_at_least(width, "width", 1), dim)
    p = probability(synthetic_fraction, "synthetic_fraction")
    c = nonnegative(shift, "shift")
    w = nonnegative(weight_norm, "weight_norm")
    return (1 - m / dim) * w * w + p * p * (m / dim) * c * c


def projection_mixture_error(
    dim: int, width: int, samples: int, synthetic_count: int, noise_var, shift, weight_norm=1.0
) -> float:
    """E ||S v_hat - w1||^2 at finite N for the random-projection model (v_hat: least squares of y on S^T x),
    k = min(m, d), N >= k + 2 [EXACT, derived for collapse-jax]:

        (1 - k/d) W^2 + (k/d) c^2 F(k, N, n2) + k/(N - k - 1) [sigma^2 + (1 - k/d)(W^2 + p c^2)],

    W = ||w1||, p = n2 / N, F = `ols_synthetic_factor`. Derivation: given S (rank k), u = (S^T S)^{-1/2} S^T x
    ~ N(0, I_k) and x.(I - P) w is independent of u, so the fit is OLS in k dimensions with targets
    P w1 (real rows) and P w2 (synthetic rows) and extra noise of variance ||(I - P) w1||^2 or ||(I - P) w2||^2
    by block; S (S^T S)^{-1/2} is an isometry onto range S. By row exchangeability a row's noise enters
    through E tr G^-1 / N = k / (N (N - k - 1)) whatever its variance. Averaging over S (E ||P a||^2 = (k/d)
    ||a||^2) and over the direction of Delta (E w1.Delta = 0) is linear. For m >= d it is OLS in x (the
    least-squares fit S v is unique), and N -> infinity gives `projection_limit`."""
    dim = integer_at_least(dim, "dim", 1)
    k = min(integer_at_least(width, "width", 1), dim)
    _, samples, n2 = _ols_args(k, samples, synthetic_count)
    c = nonnegative(shift, "shift")
    w = nonnegative(weight_norm, "weight_norm")
    s2 = nonnegative(noise_var, "noise_var")
    keep, p = k / dim, n2 / samples
    residual = (1 - keep) * (w * w + p * c * c)
    return (
        (1 - keep) * w * w
        + keep * c * c * ols_synthetic_factor(k, samples, n2)
        + k / (samples - k - 1) * (s2 + residual)
    )


# --------------------------------------------------------------------------------------- predict


def parse_model(text: str):
    """("ols", None), ("ridge", lambda) or ("projection", m) from a `model` string."""
    if text == "ols":
        return "ols", None
    if text.startswith("ridge:"):
        try:
            lam = float(text[len("ridge:") :])
        except ValueError:
            raise ValueError(f"model must be 'ridge:LAMBDA' with a number, got {text!r}") from None
        return "ridge", nonnegative(lam, "ridge lambda")
    if text.startswith("projection:"):
        try:
            width = int(text[len("projection:") :])
        except ValueError:
            raise ValueError(f"model must be 'projection:M' with an integer M, got {text!r}") from None
        return "projection", integer_at_least(width, "projection width", 1)
    raise ValueError(f"model must be 'ols', 'ridge:LAMBDA' or 'projection:M', got {text!r}")


def predict(
    metric: str,
    *,
    dim: int,
    samples: int,
    generations: int,
    synthetic_fraction: float,
    noise_var: float,
    shift: float,
    model: str = "ols",
    synthetic_law: str = "shifted",
    policy: str = "replace",
    real_source: str = "fresh",
    real_draw: str = "fixed",
    shared_real_data: bool = False,
    sample_growth: float = 0.0,
    method: str = "samples",
    **_ignored,
) -> Prediction | NoTheory:
    """test_error over generations 0..G (`generations` = G <= 2): 0 (truth), c^2 (the generator w2), and the
    fit on the mix at generation 2 (OLS and projection exact; ridge its N -> infinity limit, kind
    "asymptotic": at small N the simulation is expected to deviate by O(d/N)). ||w1|| = 1. NoTheory for a
    pool rule other than replace, a synthetic law other than shifted, real rows drawn as a mixture (a random
    real count) or reused from the generation-1 sample, a shared real sample, a growing sample size, and an
    option value not modelled here (real source or draw, method)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    generations = integer_at_least(generations, "generations", 0)
    dim = integer_at_least(dim, "dim", 1)
    samples = integer_at_least(samples, "samples", 1)
    q = probability(synthetic_fraction, "synthetic_fraction")
    s2 = nonnegative(noise_var, "noise_var")
    c = nonnegative(shift, "shift")
    name, value = typed(model, parse_model)
    if synthetic_law != "shifted":
        return NoTheory(
            f"synthetic_law {synthetic_law!r}: only the shifted linear generator w2 = w1 + Delta is derived"
        )
    if policy != "replace":
        return NoTheory(f"policy {policy!r}: only 'replace' is derived")
    why = unmodelled(
        policy=(policy, POLICIES),
        real_source=(real_source, REAL_SOURCES),
        real_draw=(real_draw, REAL_DRAWS),
        method=(method, METHODS),
    )
    if why is not None:
        return why
    if shared_real_data:
        return NoTheory("with a shared real sample the chain mean is conditional on it; theory is unconditional")
    if sample_growth:
        return NoTheory("growing sample size (sample_growth > 0): not derived")
    has_real = real_count(samples, 1 - q) > 0
    if has_real and real_draw == "mixture":
        return NoTheory("real rows drawn as a mixture (a random real count): not derived")
    if has_real and real_source == "original":
        return NoTheory("real rows reused from the generation-1 sample: not derived")
    if generations >= 3:
        return NoTheory("from generation 3 the previous fit generates the labels; no closed form")
    n2 = samples - real_count(samples, 1 - q)
    mean = [0.0, c * c, math.nan][: generations + 1]
    std = [0.0, 0.0, math.nan][: generations + 1]
    kind, note = "exact", SOURCE + "; generation 0: the truth, 1: the generator w2 (c^2)"
    if generations >= 2:
        if name == "ridge" and value > 0:
            mean[2] = ridge_mixture_limit(value, n2 / samples, c)
            kind = "asymptotic"
            note += (
                "; generation 2: ridge N -> infinity limit (lambda^2 + p^2 c^2)/(1 + lambda)^2; holds as "
                "N -> infinity (O(d/N) deviation expected at finite N)"
            )
        else:
            k = dim if name != "projection" else min(value, dim)
            if samples < k + 2:
                return NoTheory(
                    f"N = {samples} < {k + 2}: the least-squares fit's expected error is infinite or "
                    "the fit interpolates (no finite-N formula derived)"
                )
            if name == "projection":
                mean[2] = projection_mixture_error(dim, value, samples, n2, s2, c)
                note += "; generation 2: exact finite-N random projection (limit (1-m/d) + p^2 (m/d) c^2)"
            else:
                mean[2] = ols_mixture_error_exact(dim, samples, n2, s2, c)
                note += "; generation 2: exact OLS sigma^2 d/(N-d-1) + c^2 [a + b (Nd-2)/(N-d-1)]"
    return Prediction(np.asarray(mean), kind, note=note, std=np.asarray(std))
