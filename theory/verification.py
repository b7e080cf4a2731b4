"""Verified synthetic labels for a Gaussian-mixture classifier: a RECONSTRUCTION of "Beyond Model Collapse:
Scaling Up with Synthesized Data Requires Verification" (Feng, Dohmatob, Yang, Charton & Kempe, ICLR 2025,
arXiv 2406.07515), theory.md E. The paper's own parametrisation of the verifier and its definition of p*
could not be read; the setting below follows the abstract, the follow-up by Firdoussi et al. (ICLR 2025,
arXiv 2410.08942, keep-probabilities phi / rho, critical noise phi / (phi + rho)) and theory.md E.

Setting (the simulation's, stated so that this module stands alone):
- data: y uniform in {-1, +1}, x | y ~ N(y mu, I_d), ||mu|| = `mean_norm`, d = `dim`; the Bayes classifier
  sign(mu.x) has accuracy Phi(||mu||).
- model 1: generator "oracle" reports the true label of a fresh (x, y), flipped with probability eps =
  `label_noise`; generator "fitted" is the classifier fitted on N = `samples` real points, and every model
  labels fresh points x with sign(w.x), flipped with probability eps.
- generation k >= 2: N training points, r = floor(real_fraction N + 0.5) real (correct labels) and N - r
  synthetic from model k - 1 (policy "replace"). The verifier "oracle:PHI,RHO" keeps a synthetic point with
  probability PHI if its label is correct, RHO otherwise, independently of x ("none" keeps everything).
  `verified_budget` "refill": candidates are proposed until N - r are kept; "prune": N - r candidates, the
  kept ones (a binomial count) are used. `best_of` K > 1: K candidates per synthetic point, the verifier
  picks the one with the highest keep probability (the first among ties), all picks are used.
- model k: the mean-difference classifier w = (1/n) sum_i label_i x_i over the n kept points.
- metrics per generation: accuracy = Phi(w.mu/||w||) on the real law (Bayes at generation 0, 1 for the
  oracle model 1, 1/2 when nothing is kept); kept_fraction = kept / proposed synthetic points (1 at
  generations 0 and 1); p_star = share of kept synthetic labels that are correct (1 at generations 0 and 1;
  0 under prune when nothing is kept).

Key fact [EXACT]: label_i x_i = s_i mu + z_i with s_i = +-1 the correctness sign and z_i ~ N(0, I_d)
independent of s_i (the verifier does not look at x), so w = (S/n) mu + z_bar, S = sum_i s_i,
z_bar ~ N(0, I/n). The accuracy is then Phi(||mu|| cos theta), theta the angle between mu and
v = sqrt(n) w ~ N(delta e_1, I_d), delta = ||mu|| S / sqrt(n): a function of delta alone, integrated by
quadrature in polar coordinates (see `accuracy_given_counts`) and summed over the exact law of (n, S).

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
    unmodelled,
)

METRICS = ("accuracy", "kept_fraction", "p_star")
BUDGETS = ("refill", "prune")
SOURCE = "reconstruction of Feng et al. 2024 (arXiv 2406.07515), theory.md E"

_TAIL = 1e-12  # truncation of the negative-binomial series (kept fraction under refill)
_PMF_CUT = 1e-20  # binomial terms below this are dropped (their total is < (N + 1) 1e-20)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)
_PANELS = 24  # composite Gauss-Legendre panels per polar coordinate (8 nodes each)
_BOX = 10.0  # the quadrature box: t within delta +- 10, the chi radius within sqrt(d - 1) + (-11, 10)
_PIECE_NODES = 16  # Chebyshev points per unit panel when the angle integral is interpolated in delta

_lgamma = np.vectorize(math.lgamma, otypes=[float])
_erfc = np.vectorize(math.erfc, otypes=[float])


def _ndtr(x):
    """Standard normal CDF in float64 (NumPy has no erf; math.erfc is exact to rounding)."""
    return 0.5 * _erfc(-np.asarray(x, np.float64) / math.sqrt(2.0))


# ------------------------------------------------------------------------------------ input checks


def _budget(verified_budget: str) -> str:
    if verified_budget not in BUDGETS:
        raise ValueError(f"verified_budget must be one of {BUDGETS}, got {verified_budget!r}")
    return verified_budget


def parse_verifier(text):
    """("none", 1, 1), ("oracle", phi, rho) or ("linear", None, None) from a `verifier` string, or from
    that triple (as `predict_setting` passes it: the keep probabilities checked)."""
    if isinstance(text, tuple):
        kind, phi, rho = text
        if kind == "oracle":
            return "oracle", probability(phi, "verifier phi"), probability(rho, "verifier rho")
        if kind in ("none", "linear"):
            return parse_verifier(kind if kind == "none" else "linear:")
        raise ValueError(f"verifier must be ('none' | 'oracle' | 'linear', phi, rho), got {text!r}")
    if text == "none":
        return "none", 1.0, 1.0
    if text.startswith("oracle:"):
        parts = text[len("oracle:") :].split(",")
        if len(parts) != 2:
            raise ValueError(f"verifier must be 'oracle:PHI,RHO', got {text!r}")
        try:
            phi, rho = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"verifier must be 'oracle:PHI,RHO' with numbers, got {text!r}") from None
        return "oracle", probability(phi, "verifier phi"), probability(rho, "verifier rho")
    if text.startswith("linear:"):
        return "linear", None, None
    raise ValueError(f"verifier must be 'none', 'oracle:PHI,RHO' or 'linear:...', got {text!r}")


# ------------------------------------------------------------------------------ selection formulas


def bayes_accuracy(mean_norm) -> float:
    """Phi(||mu||): the accuracy of sign(mu.x) on the real law, the best possible [EXACT]."""
    return float(_ndtr(nonnegative(mean_norm, "mean_norm")))


def keep_probability(label_noise, phi, rho) -> float:
    """alpha = phi (1 - eps) + rho eps: the probability that a proposed synthetic point is kept [EXACT]."""
    eps = probability(label_noise, "label_noise")
    return probability(phi, "phi") * (1 - eps) + probability(rho, "rho") * eps


def p_star(label_noise, phi, rho, best_of: int = 1) -> float:
    """P(label correct | selected), the share of correct labels among the synthetic training points.

    best_of = 1 (a keep/reject verifier): p* = phi (1 - eps) / (phi (1 - eps) + rho eps) [EXACT: Bayes' rule
    with keep probabilities phi (correct label) and rho (wrong label), independent of x; theory.md E].
    best_of = K > 1 (the candidate with the highest keep probability of K is picked, the first among ties):
    1 - eps^K if phi > rho (a correct candidate wins unless all K are wrong), 1 - eps if phi == rho (the
    first), (1 - eps)^K if phi < rho [EXACT]. Source: reconstruction of Feng et al. 2024 (arXiv 2406.07515).
    ValueError for probabilities outside [0, 1], or (best_of = 1) for phi (1 - eps) + rho eps = 0 (nothing
    is ever kept, so p* is undefined).
    """
    eps = probability(label_noise, "label_noise")
    phi, rho = probability(phi, "phi"), probability(rho, "rho")
    k = integer_at_least(best_of, "best_of", 1)
    if k > 1:
        if phi > rho:
            return 1.0 - eps**k
        if phi < rho:
            return (1.0 - eps) ** k
        return 1.0 - eps
    alpha = phi * (1 - eps) + rho * eps
    if alpha <= 0:
        raise ValueError(
            f"phi (1 - label_noise) + rho label_noise must be > 0 for p* to exist "
            f"(phi={phi}, rho={rho}, label_noise={eps})"
        )
    return phi * (1 - eps) / alpha


def critical_label_noise(phi, rho) -> float:
    """eps* = phi / (phi + rho): the label noise at which p* = 1/2 (the breakdown point of theory.md E;
    Firdoussi et al. write it 1 / (1 + rho / phi)). Below it p* > 1/2 and the large-N accuracy is Bayes,
    above it p* < 1/2 and it is the worst, 1 - Phi(||mu||) [EXACT for the oracle verifier].
    ValueError for probabilities outside [0, 1] or phi + rho = 0."""
    phi, rho = probability(phi, "phi"), probability(rho, "rho")
    if phi + rho <= 0:
        raise ValueError(f"phi + rho must be > 0, got phi={phi}, rho={rho}")
    return phi / (phi + rho)


def _negative_binomial_failures(successes: int, alpha: float, tol: float = _TAIL):
    """(f, pmf): F = T - m failures before m Bernoulli(alpha) successes, truncated at the first f_max whose
    geometric tail bound pmf(f_max) q / (1 - q), q = (m + f_max)(1 - alpha)/(f_max + 1) (the pmf ratio,
    decreasing in f) is below `tol`."""
    m = successes
    if alpha >= 1.0:
        return np.zeros(1), np.ones(1)
    q = 1.0 - alpha
    f_max = int(m * q / alpha + 40.0 * math.sqrt(m * q) / alpha + 64)
    while True:
        f = np.arange(f_max + 1, dtype=np.float64)
        logpmf = m * math.log(alpha) + _lgamma(m + f) - math.lgamma(m) - _lgamma(f + 1) + f * math.log(q)
        pmf = np.exp(logpmf)
        ratio = (m + f_max) * q / (f_max + 1)
        if ratio < 1.0 and pmf[-1] * ratio / (1.0 - ratio) < tol:
            return f, pmf
        f_max *= 2


def kept_fraction(
    label_noise,
    phi,
    rho,
    *,
    verified_budget: str = "prune",
    synthetic_count: int = 1,
    best_of: int = 1,
    return_std: bool = False,
):
    """E (kept synthetic points / proposed synthetic points) at a verified generation, and with
    return_std=True the per-chain standard deviation as well: (mean, std).

    prune (m = `synthetic_count` = N - r proposals, the kept count is Binomial(m, alpha)): alpha =
    phi (1 - eps) + rho eps [EXACT], std sqrt(alpha (1 - alpha) / m).
    refill (proposals until m are kept; T, the number proposed, is m plus a negative-binomial number of
    rejections): E[m / T] = sum_{t >= m} (m / t) C(t-1, m-1) alpha^m (1 - alpha)^(t-m), summed numerically
    and truncated where a geometric bound on the remaining probability is below 1e-12 (so the truncation
    error is < 1e-12) [EXACT up to that]; it exceeds alpha (Jensen) and tends to it as m grows.
    best_of = K > 1: K candidates per picked point, 1/K [EXACT, std 0].
    Source: reconstruction of Feng et al. 2024 (arXiv 2406.07515), theory.md E. ValueError for alpha = 0
    under refill (no candidate is ever kept: the refill never ends).
    """
    k = integer_at_least(best_of, "best_of", 1)
    m = integer_at_least(synthetic_count, "synthetic_count", 1)
    alpha = keep_probability(label_noise, phi, rho)
    if k > 1:
        return (1.0 / k, 0.0) if return_std else 1.0 / k
    if _budget(verified_budget) == "prune":
        mean, std = alpha, math.sqrt(alpha * (1 - alpha) / m)
    else:
        if alpha <= 0:
            raise ValueError("phi (1 - label_noise) + rho label_noise must be > 0 under verified_budget='refill'")
        f, pmf = _negative_binomial_failures(m, alpha)
        share = m / (m + f)
        mean = float(pmf @ share)
        std = math.sqrt(max(float(pmf @ share**2) - mean**2, 0.0))
    return (mean, std) if return_std else mean


def p_star_metric(
    label_noise, phi, rho, *, verified_budget: str = "refill", synthetic_count: int = 1, best_of: int = 1
):
    """(mean, per-chain std) of the simulated p_star: the share of correct labels among the kept synthetic
    points of one generation [EXACT].

    refill or best-of-K: the m = `synthetic_count` labels are i.i.d. correct with probability p* (p* of
    best-of-K), so the share has mean p* and std sqrt(p* (1 - p*) / m).
    prune: K ~ Binomial(m, alpha) kept, C | K ~ Binomial(K, p*) correct, share C/K (0 when K = 0):
    mean p* (1 - (1 - alpha)^m), E share^2 = sum_K P(K) (p*(1-p*)/K + p*^2) over K >= 1 (summed exactly).
    """
    k = integer_at_least(best_of, "best_of", 1)
    m = integer_at_least(synthetic_count, "synthetic_count", 1)
    if k > 1 or _budget(verified_budget) == "refill":
        p = p_star(label_noise, phi, rho, best_of=k)
        return p, math.sqrt(p * (1 - p) / m)
    alpha = keep_probability(label_noise, phi, rho)
    if alpha <= 0:
        return 0.0, 0.0
    p = p_star(label_noise, phi, rho)
    kept, pmf = _binomial(m, alpha)
    pmf, kept = pmf[kept > 0], kept[kept > 0]
    mean = p * float(pmf.sum())
    second = float(pmf @ (p * (1 - p) / kept + p * p))
    return mean, math.sqrt(max(second - mean * mean, 0.0))


# ------------------------------------------------------------------ exact accuracy by quadrature


def _log_factorials(n: int):
    """log k! for k = 0..n, float64 `(n + 1,)`."""
    return _lgamma(np.arange(n + 1, dtype=np.float64) + 1.0)


def _binomial(n: int, p: float, cut: float = _PMF_CUT, log_factorials=None):
    """(k, pmf) of Binomial(n, p) over the terms with pmf > cut (inside a Hoeffding window whose outside
    has probability < 2 e^-49). `log_factorials`: a table of log k! for k >= 0..n (computed if None)."""
    if p <= 0.0 or n == 0:
        return np.zeros(1), np.ones(1)
    if p >= 1.0:
        return np.full(1, float(n)), np.ones(1)
    lf = _log_factorials(n) if log_factorials is None else log_factorials
    half = math.sqrt(24.5 * n) + 1
    k = np.arange(max(0, math.floor(n * p - half)), min(n, math.ceil(n * p + half)) + 1)
    logpmf = lf[n] - lf[k] - lf[n - k] + k * math.log(p) + (n - k) * math.log1p(-p)
    pmf = np.exp(logpmf)
    keep = pmf > cut
    return k[keep].astype(np.float64), pmf[keep]


def _composite_gauss(lo, hi):
    """Nodes and weights `(len(lo), panels * 8)` of composite 8-point Gauss-Legendre rules on [lo, hi]."""
    edges = np.linspace(0.0, 1.0, _PANELS + 1)
    left, width = edges[:-1, None], np.diff(edges)[:, None]
    unit_nodes = (left + width * (_GL_X[None, :] + 1) / 2).ravel()
    unit_weights = (width / 2 * _GL_W[None, :]).ravel()
    lo, hi = np.asarray(lo, np.float64)[:, None], np.asarray(hi, np.float64)[:, None]
    return lo + (hi - lo) * unit_nodes, (hi - lo) * unit_weights


_MOMENTS: dict = {}  # (dim, mean_norm) -> {delta: (E Phi, E Phi^2, mass)}: a figure's curves share most points
_MOMENTS_LIMIT = 1_000_000  # points kept in all; the table is emptied when it would grow past this


def _angle_moments(dim: int, mean_norm: float, delta, chunk: int = 16):
    """`_quadrature_moments`, remembered per point: the theory curves of one figure (every noise level and
    verifier at one N) meet the same delta = ||mu|| (2C - n) / sqrt(n) again and again. Returns arrays of
    the shape of `delta`."""
    delta = np.asarray(delta, np.float64)
    table = _MOMENTS.setdefault((int(dim), float(mean_norm)), {})
    flat = delta.ravel()
    missing = np.unique(np.array([x for x in flat.tolist() if x not in table], np.float64))
    if missing.size:
        if sum(map(len, _MOMENTS.values())) + missing.size > _MOMENTS_LIMIT:
            for other in _MOMENTS.values():
                other.clear()
        table.update(
            zip(missing.tolist(), zip(*(v.tolist() for v in _quadrature_moments(dim, mean_norm, missing, chunk))))
        )
    values = np.array([table[x] for x in flat.tolist()], np.float64).reshape(flat.size, 3)
    return tuple(values[:, i].reshape(delta.shape) for i in range(3))


def _quadrature_moments(dim: int, mean_norm: float, delta, chunk: int = 16):
    """(E Phi(m cos theta), E Phi(m cos theta)^2, total mass) for v ~ N(delta e_1, I_d), theta = angle(v, e_1),
    delta >= 0 `(n,)`, by composite Gauss-Legendre quadrature in polar coordinates (R, theta).

    The density of (R, theta) is |S^{d-2}| (2 pi)^{-d/2} R^{d-1} sin^{d-2}(theta)
    exp(-((R cos theta - delta)^2 + R^2 sin^2 theta) / 2), analytic for integer d >= 2. The box is the
    image of {t in delta +- 10, rho in [sqrt(d-1) - 11, sqrt(d-1) + 10]} (t ~ N(delta, 1) along e_1,
    rho ~ chi_{d-1} across it; outside it the mass is < 1e-21), 24 panels x 8 nodes in each coordinate.
    The mass (1 up to quadrature error) is returned for checks; the moments are divided by it.
    """
    delta = np.asarray(delta, np.float64)
    m = float(mean_norm)
    if dim == 1:  # cos theta = sign(t)
        hi, lo = float(_ndtr(m)), float(_ndtr(-m))
        up = _ndtr(delta)
        return hi * up + lo * (1 - up), hi**2 * up + lo**2 * (1 - up), np.ones_like(delta)
    nu = dim - 1
    rho_lo, rho_hi = max(0.0, math.sqrt(nu) - 1.0 - _BOX), math.sqrt(nu) + _BOX
    log_const = math.log(2.0) + 0.5 * nu * math.log(math.pi) - math.lgamma(0.5 * nu) - 0.5 * dim * math.log(2 * math.pi)
    first, second, mass = (np.empty_like(delta) for _ in range(3))
    for start in range(0, delta.size, chunk):
        d = delta[start : start + chunk]
        t_lo, t_hi = d - _BOX, d + _BOX
        r_lo = np.sqrt(np.maximum(t_lo, 0.0) ** 2 + rho_lo**2)
        r_hi = np.sqrt(t_hi**2 + rho_hi**2)
        radius, w_radius = _composite_gauss(r_lo, r_hi)  # (c, nR)
        # theta = atan2(rho, t) over the box: smallest at (t_hi > 0, rho_lo); largest at (t_lo, rho_hi)
        # when t_lo >= 0, at (t_lo, rho_lo) when t_lo < 0 (then theta decreases with rho)
        top = np.where(t_lo >= 0, np.arctan2(rho_hi, t_lo), np.arctan2(rho_lo, t_lo))
        angle, w_angle = _composite_gauss(np.arctan2(rho_lo, t_hi), top)  # (c, nA)
        cos, sin = np.cos(angle), np.sin(angle)
        along = radius[:, :, None] * cos[:, None, :] - d[:, None, None]
        across = radius[:, :, None] * sin[:, None, :]
        log_density = (
            log_const
            + nu * np.log(radius)[:, :, None]
            + (dim - 2) * np.log(sin)[:, None, :]
            - 0.5 * (along**2 + across**2)
        )
        angular = np.einsum("crs,cr->cs", np.exp(log_density), w_radius) * w_angle  # (c, nA)
        phi = _ndtr(m * cos)
        mass[start : start + chunk] = angular.sum(1)
        first[start : start + chunk] = (angular * phi).sum(1)
        second[start : start + chunk] = (angular * phi**2).sum(1)
    return first / mass, second / mass, mass


def _piecewise_moments(dim, mean_norm, points):
    """`_angle_moments` at many points (>= 0) by piecewise Chebyshev interpolation: panels of width <= 1
    (the moments are entire functions of delta, smoothed by the unit normal along mu), 16 Chebyshev points
    of the second kind per panel, barycentric formula (interpolation error < 1e-13 in the tests)."""
    lo, hi = float(points.min()), float(points.max())
    panels = max(1, math.ceil(hi - lo))
    width = (hi - lo) / panels if hi > lo else 1.0
    j = np.arange(_PIECE_NODES)
    unit = 0.5 - 0.5 * np.cos(np.pi * j / (_PIECE_NODES - 1))  # in [0, 1], increasing
    nodes = lo + width * (np.arange(panels)[:, None] + unit[None, :])  # (P, 16)
    f1, f2, _ = _angle_moments(dim, mean_norm, nodes.ravel())
    f1, f2 = f1.reshape(nodes.shape), f2.reshape(nodes.shape)
    bary = (-1.0) ** j
    bary[0] *= 0.5
    bary[-1] *= 0.5
    panel = np.clip(((points - lo) / width).astype(np.int64), 0, panels - 1)
    out1, out2 = np.empty_like(points), np.empty_like(points)
    for start in range(0, points.size, 1 << 16):
        x, k = points[start : start + (1 << 16)], panel[start : start + (1 << 16)]
        diff = x[:, None] - nodes[k]
        exact = diff == 0
        diff[exact] = 1.0
        ratio = bary[None, :] / diff
        ratio[exact.any(1)] = exact[exact.any(1)]  # a point on a node takes that node's value
        norm = ratio.sum(1)
        out1[start : start + x.size] = (ratio * f1[k]).sum(1) / norm
        out2[start : start + x.size] = (ratio * f2[k]).sum(1) / norm
    return out1, out2


def accuracy_given_counts(dim: int, mean_norm, kept, correct, *, second_moment: bool = False):
    """E[accuracy | n, C] of the mean-difference classifier w = (1/n) sum_i label_i x_i trained on n = `kept`
    points of which C = `correct` carry the true label (arrays of the same shape) [EXACT up to quadrature,
    < 1e-10 in the tests].

    Assumptions: x | y ~ N(y mu, I_d); whether a label is correct, and whether the point was kept, do not
    depend on x given y. Then label_i x_i = s_i mu + z_i with z_i ~ N(0, I_d) independent of the signs
    s_i, so w = (S/n) mu + z_bar, S = 2C - n, z_bar ~ N(0, I/n): along mu, sqrt(n) w.mu/||mu|| ~
    N(delta, 1) with delta = ||mu|| S / sqrt(n); across, n ||w_perp||^2 ~ chi^2_{d-1}. The accuracy
    Phi(w.mu/||w||) = Phi(||mu|| cos theta) depends on the angle theta of (N(delta, 1), chi_{d-1}) alone,
    and its expectation is a 2-D integral computed in polar coordinates (composite Gauss-Legendre; d = 1
    in closed form Phi(m)Phi(delta) + Phi(-m)Phi(-delta)). delta < 0 by the symmetry A(-delta) = 1 - A(delta).
    n = 0 (nothing kept: w = 0) gives Phi(0) = 1/2, as the simulation reports. With second_moment=True,
    returns (E acc, E acc^2). Source: derived for collapse-jax (theory.md E setting).
    """
    dim = integer_at_least(dim, "dim", 1)
    m = nonnegative(mean_norm, "mean_norm")
    kept = np.asarray(kept, np.float64)
    correct = np.asarray(correct, np.float64)
    if np.any(kept < 0) or np.any(correct < 0) or np.any(correct > kept):
        raise ValueError("need 0 <= correct <= kept")
    empty = kept == 0
    delta = np.where(empty, 0.0, m * (2 * correct - kept) / np.sqrt(np.where(empty, 1.0, kept)))
    size = np.abs(delta).ravel()
    unique, inverse = np.unique(size, return_inverse=True)
    if unique.size <= _PIECE_NODES * (math.ceil(unique[-1] - unique[0]) + 1):
        f1, f2, _ = _angle_moments(dim, m, unique)
    else:
        f1, f2 = _piecewise_moments(dim, m, unique)
    f1, f2 = f1[inverse].reshape(delta.shape), f2[inverse].reshape(delta.shape)
    negative = delta < 0
    f1, f2 = np.where(negative, 1 - f1, f1), np.where(negative, 1 - 2 * f1 + f2, f2)
    f1, f2 = np.where(empty, 0.5, f1), np.where(empty, 0.25, f2)
    return (f1, f2) if second_moment else f1


def training_law(
    samples: int, real_count: int, label_noise, phi=1.0, rho=1.0, *, verified_budget="refill", best_of: int = 1
):
    """(n, C, weight): the exact joint law of the training-set size n and its number C of correct labels at
    a verified generation whose generator knows the true labels (the oracle model 1).

    refill: n = N, C = r + Binomial(N - r, p*); best-of-K: the same with p* of best-of-K; prune:
    K ~ Binomial(N - r, alpha) kept, n = r + K, C = r + Binomial(K, p*). Terms below 1e-20 are dropped.
    """
    samples = integer_at_least(samples, "samples", 1)
    r = integer_at_least(real_count, "real_count", 0)
    if r > samples:
        raise ValueError(f"real_count must be <= samples = {samples}, got {r}")
    m = samples - r
    k = integer_at_least(best_of, "best_of", 1)
    if m == 0:
        return np.array([float(samples)]), np.array([float(r)]), np.ones(1)
    if k > 1 or _budget(verified_budget) == "refill":
        p = p_star(label_noise, phi, rho, best_of=k)
        good, pmf = _binomial(m, p)
        return np.full_like(good, float(samples)), r + good, pmf
    alpha = keep_probability(label_noise, phi, rho)
    table = _log_factorials(m)
    counts, count_pmf = _binomial(m, alpha, log_factorials=table)
    p = p_star(label_noise, phi, rho) if alpha > 0 else 1.0
    sizes, goods, weights = [], [], []
    for count, weight in zip(counts, count_pmf):
        good, pmf = _binomial(int(count), p, log_factorials=table)
        sizes.append(np.full_like(good, r + count))
        goods.append(r + good)
        weights.append(weight * pmf)
    return np.concatenate(sizes), np.concatenate(goods), np.concatenate(weights)


def accuracy_mean_classifier(
    *,
    dim: int,
    mean_norm,
    samples: int,
    label_noise=0.0,
    phi=1.0,
    rho=1.0,
    real_count: int = 0,
    verified_budget: str = "refill",
    best_of: int = 1,
    return_std: bool = False,
):
    """E accuracy of the mean-difference classifier trained on one verified generation [EXACT up to
    quadrature]: `accuracy_given_counts` summed over `training_law` (refill, prune with the binomial
    number kept and the w = 0 term when nothing is kept and r = 0, or best-of-K). With label_noise = 0 and
    real_count = samples it is the accuracy of the classifier fitted on N real points (the fitted model 1).
    With return_std=True returns (mean, per-chain std of the accuracy). Source: derived for collapse-jax in
    the setting of theory.md E (reconstruction of Feng et al. 2024, arXiv 2406.07515)."""
    size, good, weight = training_law(
        samples, real_count, label_noise, phi, rho, verified_budget=verified_budget, best_of=best_of
    )
    first, second = accuracy_given_counts(dim, mean_norm, size, good, second_moment=True)
    total = float(weight.sum())
    mean = float(weight @ first) / total
    if not return_std:
        return mean
    return mean, math.sqrt(max(float(weight @ second) / total - mean * mean, 0.0))


def accuracy_asymptotic(p_star, *, dim: int, mean_norm, samples=math.inf) -> float:
    """theory.md E's large-N approximation of the mean classifier's accuracy [ASYMPTOTIC]:
    Phi((2p* - 1) ||mu||^2 / sqrt((2p* - 1)^2 ||mu||^2 + d / N_k)), N_k = `samples` training points (for a
    prune budget N_k = alpha N in expectation), treating w as (2p* - 1) mu + N(0, I / N_k), i.e. ignoring the
    binomial fluctuation of the number of correct labels and of N_k (an O(1/N) error; see the exact
    `accuracy_mean_classifier`). With real points, pass as p* the share of correct labels among all N_k.
    samples = inf gives the N -> infinity limits: Bayes Phi(||mu||) if p* > 1/2, 1 - Phi(||mu||) if
    p* < 1/2, 1/2 at p* = 1/2 (the sharp transition). Source: theory.md E (derived, reconstruction)."""
    p = probability(p_star, "p_star")
    dim = integer_at_least(dim, "dim", 1)
    m = nonnegative(mean_norm, "mean_norm")
    samples = float(samples)
    if not samples > 0:
        raise ValueError(f"samples must be > 0, got {samples}")
    signal = 2 * p - 1
    if math.isinf(samples):
        return float(_ndtr(math.copysign(m, signal))) if signal != 0 else 0.5
    denom = math.sqrt(signal**2 * m**2 + dim / samples)
    return float(_ndtr(signal * m**2 / denom))


# --------------------------------------------------------------------------------------- predict


def predict(
    metric: str,
    *,
    dim: int,
    mean_norm: float,
    samples: int,
    generations: int,
    label_noise: float,
    verifier: str | tuple,
    verified_budget: str = "refill",
    best_of: int = 1,
    generator: str = "oracle",
    classifier: str = "mean",
    real_fraction: float = 0.0,
    policy: str = "replace",
    real_source: str = "fresh",
    real_draw: str = "fixed",
    shared_real_data: bool = False,
    sample_growth: float = 0.0,
    method: str = "samples",
    **_ignored,
) -> Prediction | NoTheory:
    """The prediction of one metric over generations 0..G (`generations` = G), in the simulation's names.

    Exact at generations 0 and 1, and at generation 2 when model 1 is the oracle labeller (its labels are
    correct with probability 1 - eps independently of x, so the verified training set has the law of
    `training_law`). Generation >= 3 (labels from the fitted model 2, whose errors depend on x) and the
    fitted generator's generation >= 2: no closed form, NoTheory. `std` is the per-chain standard deviation.
    verifier "none" is taken as "oracle:1,1" (keeps everything); with best_of = K > 1 it then picks the first
    of K candidates (p* = 1 - eps, kept_fraction 1/K). NoTheory for a pool rule other than replace, real
    points drawn as a mixture or reused from the generation-1 sample, a shared real sample, a growing sample
    size, and an option value not modelled here (verified budget, generator, classifier, method).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    why = unmodelled(
        policy=(policy, POLICIES),
        verified_budget=(verified_budget, BUDGETS),
        generator=(generator, ("oracle", "fitted")),
        classifier=(classifier, ("mean", "least-squares", "logistic")),
        real_source=(real_source, REAL_SOURCES),
        real_draw=(real_draw, REAL_DRAWS),
        method=(method, METHODS),
    )
    if why is not None:
        return why
    generations = integer_at_least(generations, "generations", 0)
    dim = integer_at_least(dim, "dim", 1)
    samples = integer_at_least(samples, "samples", 1)
    mean_norm = nonnegative(mean_norm, "mean_norm")
    eps = probability(label_noise, "label_noise")
    best_of = integer_at_least(best_of, "best_of", 1)
    _budget(verified_budget)
    kind_of_verifier, phi, rho = parse_verifier(verifier)
    if generator not in ("oracle", "fitted"):
        raise ValueError(f"generator must be 'oracle' or 'fitted', got {generator!r}")
    if classifier not in ("mean", "least-squares", "logistic"):
        raise ValueError(f"classifier must be 'mean', 'least-squares' or 'logistic', got {classifier!r}")
    real = real_count(samples, probability(real_fraction, "real_fraction"))
    if shared_real_data:
        return NoTheory("with a shared real sample the chain mean is conditional on it; theory is unconditional")
    if sample_growth:
        return NoTheory("growing sample size (sample_growth > 0): not derived")
    if real_fraction > 0 and real_draw == "mixture":
        return NoTheory("real points drawn as a mixture (random real count): not derived")
    if real > 0 and real_source == "original":
        return NoTheory("real points reused from the generation-1 sample: not derived")
    if policy != "replace":
        return NoTheory(f"policy {policy!r}: only 'replace' is derived")
    if classifier != "mean":
        return NoTheory(
            f"classifier {classifier!r}: no closed form for its accuracy (only the mean-difference "
            "classifier is derived)"
        )
    if kind_of_verifier == "linear":
        return NoTheory(
            "a linear verifier's decision depends on x: the kept points are not a label-only "
            "selection and no closed form is derived"
        )
    if generator == "fitted" and generations >= 2:
        return NoTheory(
            "fitted generator: from generation 2 the synthetic labels come from a fitted classifier "
            "whose errors depend on x; no closed form"
        )
    if generator == "oracle" and generations >= 3:
        return NoTheory(
            "from generation 3 the labels come from the fitted model 2, whose errors depend on x; "
            "no closed form (exact only for generations <= 2 with the oracle generator)"
        )

    mean = [1.0] * (generations + 1)
    std = [0.0] * (generations + 1)
    note = SOURCE
    if metric == "accuracy":
        mean[0] = bayes_accuracy(mean_norm)
        if generations >= 1 and generator == "fitted":
            mean[1], std[1] = accuracy_mean_classifier(
                dim=dim, mean_norm=mean_norm, samples=samples, real_count=samples, return_std=True
            )
        if generations >= 2:
            alpha = phi * (1 - eps) + rho * eps
            if real == 0 and best_of == 1 and verified_budget == "refill" and alpha == 0:
                return NoTheory("refill with keep probability 0: the generator never fills the budget")
            mean[2], std[2] = accuracy_mean_classifier(
                dim=dim,
                mean_norm=mean_norm,
                samples=samples,
                label_noise=eps,
                phi=phi,
                rho=rho,
                real_count=real,
                verified_budget=verified_budget,
                best_of=best_of,
                return_std=True,
            )
        note += (
            "; exact: Bayes Phi(||mu||) at 0, "
            + ("1 (oracle labels)" if generator == "oracle" else "mean classifier on N real points")
            + " at 1, polar quadrature over the exact (n, S) law at 2"
        )
    elif generations >= 2:
        synthetic = samples - real
        if synthetic == 0:
            return NoTheory("real_fraction gives no synthetic points: the kept fraction and p* are undefined")
        args = dict(verified_budget=verified_budget, synthetic_count=synthetic, best_of=best_of)
        if metric == "kept_fraction":
            if verified_budget == "refill" and best_of == 1 and phi * (1 - eps) + rho * eps == 0:
                return NoTheory("refill with keep probability 0: the generator never fills the budget")
            mean[2], std[2] = kept_fraction(eps, phi, rho, return_std=True, **args)
            note += (
                "; exact: 1/K (best of K)"
                if best_of > 1
                else "; exact: alpha (prune)"
                if verified_budget == "prune"
                else "; exact: E[m/T], T negative binomial, series truncated below 1e-12 (refill)"
            )
        else:
            mean[2], std[2] = p_star_metric(eps, phi, rho, **args)
            note += "; exact: p* = phi(1-eps)/(phi(1-eps)+rho eps) (best of K: 1-eps^K, 1-eps or (1-eps)^K)"
    return Prediction(np.asarray(mean), "exact", note=note, std=np.asarray(std))


def predict_setting(
    metric: str, *, verifier: str = "none", keep_correct: float = 1.0, keep_wrong: float = 0.0, **config
) -> Prediction | NoTheory:
    """`predict` under the simulation's own parameter names: `verifier` none | oracle | linear with the
    keep probabilities `keep_correct` (phi) and `keep_wrong` (rho) as separate parameters."""
    if config.get("verified_budget") == "weight" and config.get("best_of", 1) == 1 and verifier != "none":
        return NoTheory("soft weights (verified_budget='weight'): the weighted mean classifier is not derived here")
    if metric == "synthetic_kept":
        return NoTheory("a count recorded to expose pruning and unfilled refills; its law follows from kept_fraction")
    if verifier not in ("none", "oracle", "linear"):
        return NoTheory(f"verifier {verifier!r}: not derived (this theory models verifier none, oracle, linear)")
    return predict(metric, verifier=(verifier, keep_correct, keep_wrong), **config)
