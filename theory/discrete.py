"""Closed forms for recursive fitting of a categorical law (discrete model collapse, Wright-Fisher drift).

Setting (the collapse-jax conventions, stated so this module stands alone): a true law p over K
categories. Model k >= 1 is the empirical law of its training counts c (N points) with add-s smoothing,
p_hat = (c + s) / (N + K s). Model 1 is fitted on M real points. Each generation k >= 2 draws a batch of
M points: with real_draw "fixed", M - r points from model k-1 and r = floor(alpha M + 1/2) real points
(fresh draws from p, or draws without replacement from the generation-1 sample); with real_draw
"mixture" (Kanabar & Gastpar 2025, arXiv 2501.19273), each point comes from alpha p + (1 - alpha)
model_{k-1}. Policies: replace (fit on the batch), accumulate (fit on batches 1..k, N_k = kM),
accumulate-subsample (fit on M points drawn without replacement from that pool). Generation 0 is p.

Expectations are unconditional (over the real data too). Three facts carry everything here:

* Replace without real data is the multi-allele Wright-Fisher model (Shumailov et al., Nature 2024; the
  diffusion theory is Kimura 1955): one category's count, or the total count of a group of categories
  (lumping), is the two-allele chain K_n | K_{n-1} ~ Bin(M, K_{n-1}/M), K_1 ~ Bin(M, q). Expectations of
  f(K_n) are exact by the backward equation: v_n = P^{n-1} f with the (M+1)x(M+1) transition matrix,
  then E f(K_n) = Bin(M, q) . v_n per category (one v_n serves all K categories).
* With smoothing 0 every fit is unbiased, E[p_hat_k | past] is a convex combination of p_hat_{k-1} and p
  (or a hypergeometric subsample of an unbiased pool), so E p_hat_k = p: the expected mass of any fixed
  set of categories (tail_mass, group_mass) is its p-mass at every generation, under every policy.
* Second moments close on scalars: with S ~ Mult(n, m) given m, E||S||^2 = n + n(n-1) E||m||^2, and all
  cross terms are linear in the previous model. This gives exact recursions for the l2 risk
  E||p_hat_k - p||^2 and E gini_simpson = 1 - E||p_hat_k||^2 (derived here; theory.md F.1, F.2).

Status labels in the docstrings: EXACT (finite-sample identity), ASYMPTOTIC (a limit or diffusion
approximation), BOUND. Functions raise ValueError naming the parameter for inputs outside their
conditions. `predict` takes the simulation's parameter names.
"""

from __future__ import annotations

import math
import re

import numpy as np

from theory.common import (
    CURATIONS,
    METHODS,
    POLICIES,
    REAL_DRAWS,
    REAL_SOURCES,
    NoTheory,
    Prediction,
    real_count,
    typed,
    unmodelled,
)
from theory.special import gammaln, xlog1py, xlogy

METRICS = (
    "support_size",
    "lost_mass",
    "tail_mass",
    "entropy",
    "gini_simpson",
    "tv_distance",
    "kl_to_original",
    "l2_risk",
)
NO_CLOSED_FORM = ("entropy", "tv_distance", "kl_to_original")
REWARD_METRIC = "expected_reward"  # sum_i q_i r(i), recorded when a reward r curates the samples
_CHUNK_ELEMENTS = 1 << 22  # floats per (categories x states) block: 32 MB in float64
WRIGHT_FISHER_BUDGET = 1 << 26  # floats of the (M+1)^2 Wright-Fisher matrix: 512 MB in float64, M <= 8191


# ----------------------------------------------------------------------------------------------- inputs


def parse_law(text: str, categories: int):
    """The probability vector `(K,)` (float64 NumPy) of a law string: "zipf:BETA" (p_i ~ i^-BETA, BETA > 0),
    "uniform", or "file:PATH" (.npy, or a text/csv file of K non-negative numbers summing to 1)."""
    if not (isinstance(categories, (int, np.integer)) and categories >= 1):
        raise ValueError(f"categories must be an integer >= 1, got {categories!r}")
    if text == "uniform":
        return np.full(categories, 1.0 / categories)
    if text.startswith("zipf:"):
        try:
            beta = float(text[len("zipf:") :])
        except ValueError:
            raise ValueError(f"law must be zipf:BETA, uniform or file:PATH; got {text!r}") from None
        if not (math.isfinite(beta) and beta > 0):
            raise ValueError(f"law: BETA in zipf:BETA must be > 0, got {text!r}")
        weights = np.arange(1, categories + 1, dtype=np.float64) ** -beta
        return weights / weights.sum()
    if text.startswith("file:"):
        path = text[len("file:") :]
        values = (
            np.load(path)
            if path.endswith(".npy")
            else np.loadtxt(path, delimiter="," if path.endswith(".csv") else None)
        )
        values = np.asarray(values, np.float64).reshape(-1)
        if values.shape != (categories,):
            raise ValueError(f"law: the file must hold {categories} numbers (categories), got {values.size}")
        if not np.isfinite(values).all() or np.any(values < 0) or abs(values.sum() - 1.0) > 1e-6:
            raise ValueError("law: the file's numbers must be finite, >= 0 and sum to 1")
        return values / values.sum()
    raise ValueError(f"law must be zipf:BETA, uniform or file:PATH; got {text!r}")


def parse_groups(text: str, categories: int):
    """`((name, first, last), ...)` of a groups string "NAME:FIRST-LAST,..." (1-based inclusive indices)."""
    groups = []
    for part in (p.strip() for p in (text or "").split(",") if p.strip()):
        match = re.fullmatch(r"([A-Za-z0-9_\-]+):(\d+)-(\d+)", part)
        if not match:
            raise ValueError(f"groups must be NAME:FIRST-LAST[,NAME:FIRST-LAST...]; got {part!r}")
        name, first, last = match.group(1), int(match.group(2)), int(match.group(3))
        if not 1 <= first <= last <= categories:
            raise ValueError(
                f"groups: {name} needs 1 <= FIRST <= LAST <= categories = {categories}, got {first}-{last}"
            )
        groups.append((name, first, last))
    return tuple(groups)


def tail_mask(p, tail_rank: int):
    """Boolean `(K,)`: categories whose rank in p (decreasing probability, ties by index) exceeds tail_rank."""
    p = np.asarray(p, np.float64)
    order = np.argsort(-p, kind="stable")
    rank = np.empty(p.size, np.int64)
    rank[order] = np.arange(1, p.size + 1)
    return rank > tail_rank


def _check_samples(samples):
    if not (isinstance(samples, (int, np.integer)) and samples >= 1):
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")


def _check_generations(generations):
    if not (isinstance(generations, (int, np.integer)) and generations >= 0):
        raise ValueError(f"generations must be an integer >= 0, got {generations!r}")


def _check_probabilities(q, name="q"):
    q = np.asarray(q, np.float64)
    if np.any(~np.isfinite(q)) or np.any(q < 0) or np.any(q > 1):
        raise ValueError(f"{name} must hold probabilities in [0, 1]")
    return q


# ----------------------------------------------------------------------------- Wright-Fisher, exact


def binomial_pmf(n: int, q):
    """`(len(q), n + 1)` pmfs of Bin(n, q_i), from gammaln in the working precision; exact at q = 0, 1."""
    n, q = int(n), np.atleast_1d(np.asarray(q, dtype=float))
    j = np.arange(n + 1, dtype=q.dtype)
    log_choose = gammaln(n + 1.0) - gammaln(j + 1) - gammaln(n - j + 1)
    inner = (q > 0) & (q < 1)
    safe = np.where(inner, q, 0.5)
    pmf = np.exp(log_choose + j * np.log(safe)[:, None] + (n - j) * np.log1p(-safe)[:, None])
    pmf[~inner] = np.where(q[~inner, None] > 0, j == n, j == 0)  # point masses at q = 0 and q = 1
    return pmf


def transition_matrix(samples: int):
    """The (M+1)x(M+1) Wright-Fisher matrix P_ij = Bin(M, i/M)(j) [EXACT]; ValueError above
    WRIGHT_FISHER_BUDGET floats."""
    _check_samples(samples)
    states = (samples + 1) ** 2
    if states > WRIGHT_FISHER_BUDGET:
        raise ValueError(
            f"samples: the (samples+1)^2 = {states:.3g} Wright-Fisher matrix exceeds "
            f"WRIGHT_FISHER_BUDGET = {WRIGHT_FISHER_BUDGET:.3g} (samples <= {int(WRIGHT_FISHER_BUDGET**0.5) - 1})"
        )
    return binomial_pmf(samples, np.arange(samples + 1, dtype=float) / samples)


def backward_values(samples: int, values, steps: int):
    """`(M+1, steps+1)`: column s is P^s f for f = `values` `(M+1,)` or `(M+1, m)` (then `(M+1, m, steps+1)`)."""
    matrix = transition_matrix(samples)
    columns = [np.asarray(values, dtype=matrix.dtype)]
    for _ in range(int(steps)):
        columns.append(matrix @ columns[-1])
    return np.stack(columns, axis=-1)


def _unique_with_weights(q, weights):
    """Merge equal probabilities: (unique q `(u,)`, summed weights `(w, u)`)."""
    q = np.asarray(q, np.float64)
    unique, inverse = np.unique(q, return_inverse=True)
    summed = np.stack([np.bincount(inverse, weights=np.asarray(w, np.float64), minlength=unique.size) for w in weights])
    return unique, summed


def wright_fisher_expectation(q, samples: int, values, generations: int, weights):
    """sum_i w_i E f(K_n^(i)) for n = 1..G: `(len(weights), G)` [EXACT].

    K_1^(i) ~ Bin(M, q_i), K_n | K_{n-1} ~ Bin(M, K_{n-1}/M) (replace, no real data). `values` is f on
    0..M `(M+1,)`; `weights` is `(w, K)`. Backward trick: v_n = P^{n-1} f once per n, then one
    (categories x states) @ (states x G) product per chunk of categories; equal q_i are merged first.
    """
    _check_samples(samples)
    _check_generations(generations)
    q = _check_probabilities(q)
    unique, summed = _unique_with_weights(q, weights)
    if generations == 0:
        return np.zeros((summed.shape[0], 0))
    v = backward_values(samples, values, generations - 1)  # (M+1, G)
    chunk = max(1, _CHUNK_ELEMENTS // (samples + 1))
    total = np.zeros((summed.shape[0], generations), v.dtype)
    for start in range(0, unique.size, chunk):
        pmf = binomial_pmf(samples, unique[start : start + chunk])
        total = total + np.asarray(summed[:, start : start + chunk], v.dtype) @ (pmf @ v)
    return total


def tempered_law_limit(p, temperature: float, generations: int):
    """The infinite-sample limit (M -> infinity) of the law of model k = 0..G when every model is sampled
    at temperature tau (Marchi et al. 2024): model 1 is the real law p, and each later model the
    previous law raised to 1/tau and renormalised, so law_k is proportional to p^(tau^-(k-1)) [LIMIT:
    it ignores the finite-M drift of the empirical chain]. Below tau = 1 it concentrates on the modes
    (one mode if unique), above it flattens toward uniform over the support. Returns `(G + 1, K)`."""
    _check_generations(generations)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    p = _check_probabilities(p, "p")
    exponents = float(temperature) ** -np.maximum(np.arange(generations + 1) - 1.0, 0.0)
    log_p = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -np.inf)
    scaled = exponents[:, None] * log_p[None, :]
    scaled -= np.max(scaled, axis=1, keepdims=True)
    law = np.exp(scaled)
    return law / law.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------- curation by a reward (Ferbach et al.)


def reward_values(reward: str, categories: int):
    """The reward r(i) `(K,)` of categories i = 1..K written as the simulation's `reward` option: "linear:A"
    (r(i) = A (i - 1) / (K - 1)) or "linear:r_1,...,r_K"; None for "none". ValueError otherwise."""
    if reward == "none":
        return None
    if not reward.startswith("linear:"):
        raise ValueError(f"reward must be none or linear:A or linear:r_1,...,r_K, got {reward!r}")
    values = np.asarray([float(v) for v in reward[len("linear:") :].split(",")])
    if values.size == 1:
        return values[0] * np.arange(categories) / (categories - 1)
    if values.size != categories:
        raise ValueError(f"reward: {values.size} values for categories = {categories}")
    return values


def curated_choice_probability(q, rewards, best_of: int, curation: str):
    """Two categories with rewards (r_1, r_2), each candidate of category 2 with probability q `(n,)`: the
    probability that curation keeps a point of category 2 [EXACT; our derivation].

    bradley-terry: of K candidates, J ~ Bin(K, q) of category 2, one is kept with probability e^{r_j} /
    sum_i e^{r_i}: sum_J Bin(K, q)(J) J e^{r_2} / (J e^{r_2} + (K - J) e^{r_1}). best (the highest reward,
    ties to the first candidate, i.e. uniform among tied candidates): 1 - (1 - q)^K if r_2 > r_1, q^K if
    r_2 < r_1, q if equal. tilted (K -> infinity): q e^{r_2} / (q e^{r_2} + (1 - q) e^{r_1}).
    """
    q = np.atleast_1d(np.asarray(q, float))
    r1, r2 = (float(v) for v in rewards)
    if curation == "tilted":
        lift = math.exp(r2 - r1)
        return q * lift / (q * lift + 1.0 - q)
    k = int(best_of)
    if curation == "best":
        if r2 > r1:
            return 1.0 - (1.0 - q) ** k
        return q**k if r2 < r1 else q
    if curation != "bradley-terry":
        raise ValueError(f"curation must be best, bradley-terry or tilted, got {curation!r}")
    j = np.arange(k + 1, dtype=float)
    kept = j * math.exp(r2 - r1) / np.maximum(j * math.exp(r2 - r1) + (k - j), 1e-300)
    return binomial_pmf(k, q) @ kept


def curated_binary_distribution(
    p2, rewards, samples: int, generations: int, *, best_of=1, curation="best", real_fraction=0.0, real_draw="fixed"
):
    """`(G + 1, M + 1)`: row k >= 1 is the law of the count of category 2 in model k's training batch
    for a two-category law (p_1, p_2) whose synthetic points are curated by a reward (replace, fresh real
    points, smoothing 0) [EXACT; our derivation]; row 0 is unused (zeros).

    The count is a Markov chain: K_1 ~ Bin(M, p_2); given K_k = j, with q = j / M and pi(q) the
    curated choice probability (`curated_choice_probability`), K_{k+1} ~ Bin(M - r, pi(q)) + Bin(r, p_2)
    for a fixed real count r = round(alpha M), or Bin(M, alpha p_2 + (1 - alpha) pi(q)) for a mixture.
    """
    _check_samples(samples)
    _check_generations(generations)
    if (samples + 1) ** 2 > WRIGHT_FISHER_BUDGET:
        raise ValueError(
            f"samples: the (samples+1)^2 count chain exceeds WRIGHT_FISHER_BUDGET = {WRIGHT_FISHER_BUDGET}"
        )
    q = np.arange(samples + 1, dtype=float) / samples
    chosen = curated_choice_probability(q, rewards, best_of, curation)
    if real_draw == "mixture" and real_fraction > 0:
        matrix = binomial_pmf(samples, real_fraction * p2 + (1.0 - real_fraction) * chosen)
    else:
        real = real_count(samples, real_fraction)
        synthetic = binomial_pmf(samples - real, chosen)
        real_pmf = binomial_pmf(real, [p2])[0]
        matrix = np.stack([np.convolve(row, real_pmf) for row in synthetic])
    law = np.zeros((generations + 1, samples + 1))
    if generations >= 1:
        law[1] = binomial_pmf(samples, [p2])[0]
    for k in range(2, generations + 1):
        law[k] = law[k - 1] @ matrix
    return law


def curated_law_limit(p, rewards, *, real_fraction=0.0, generations: int):
    """`(G + 1, K)`: the infinite-sample limit (M -> infinity) of the law of model k = 0..G curated by the
    tilted law (K -> infinity): model 1 is p and law_{k+1} = alpha p + (1 - alpha) law_k e^r / Z_k
    (Ferbach et al. 2024) [LIMIT]. With alpha = 0, law_k is proportional to p e^{(k-1) r} and concentrates
    on the highest reward; with alpha > 0 and a bounded reward it settles, the expected reward rising
    monotonically to its fixed point."""
    _check_generations(generations)
    p = _check_probabilities(p, "p")
    rewards = np.asarray(rewards, float)
    tilt = np.exp(rewards - rewards.max())
    laws = [p, p]
    for _ in range(2, generations + 1):
        tilted = laws[-1] * tilt
        laws.append(real_fraction * p + (1.0 - real_fraction) * tilted / tilted.sum())
    return np.stack(laws[: generations + 1])


def _binary_metric_values(metric: str, q, p):
    """The value of a metric at a two-category model law (1 - q, q) `(n,)` against the truth p `(2,)`."""
    law = np.stack([1.0 - q, q], axis=-1)
    positive = law > 0
    if metric == "tv_distance":
        return np.abs(q - p[1])
    if metric == "l2_risk":
        return 2.0 * (q - p[1]) ** 2
    if metric == "entropy":
        return entropy(law)
    if metric == "gini_simpson":
        return 2.0 * q * (1.0 - q)
    if metric == "support_size":
        return positive.sum(axis=-1).astype(float)
    if metric == "lost_mass":
        return np.where(positive, 0.0, p).sum(axis=-1)
    if metric == "kl_to_original":
        return np.sum(xlogy(law, law) - xlogy(law, np.where(p > 0, p, 1.0)), axis=-1)
    if metric == "tail_mass":  # the tail is the less probable category (tail rank 1 of 2)
        return law[..., int(np.argmin(p))] if p[0] != p[1] else np.zeros_like(q)
    raise ValueError(metric)


def _curated_prediction(
    metric,
    *,
    p,
    rewards,
    best_of,
    curation,
    samples,
    generations,
    policy,
    real_fraction,
    real_draw,
    reused,
    smoothing,
    groups,
):
    """Exact predictions of a curated chain with two categories under replace (`curated_binary_distribution`);
    NoTheory elsewhere."""
    if p.size != 2 or policy != "replace" or reused or smoothing > 0 or groups or metric.startswith("group_"):
        return NoTheory(
            "curated chain: exact only for two categories under replace with fresh real points and no smoothing "
            "(a Markov chain on counts); the infinite-sample limit of curation tilted is theory.discrete.curated_law_limit"
        )
    law = curated_binary_distribution(
        p[1],
        rewards,
        samples,
        generations,
        best_of=best_of,
        curation=curation,
        real_fraction=real_fraction,
        real_draw=real_draw,
    )
    q = np.arange(samples + 1) / samples
    if metric == REWARD_METRIC:
        values, at_truth = rewards[0] * (1 - q) + rewards[1] * q, float(p @ rewards)
    else:
        values, at_truth = (
            _binary_metric_values(metric, q, p),
            float(_binary_metric_values(metric, np.asarray([p[1]]), p)[0]),
        )
    mean = law @ values
    mean[0] = at_truth
    second = law @ values**2
    second[0] = at_truth**2
    kept = "tilted law (K -> infinity)" if curation == "tilted" else f"{curation} best-of-{best_of}"
    if curation != "tilted" and best_of == 1:
        kept = "nothing (best_of 1: Wright-Fisher with fresh real points)"
    return Prediction(
        mean,
        "exact",
        note=f"exact count chain of two categories curated by {kept} (our derivation)",
        std=np.sqrt(np.clip(second - mean**2, 0.0, None)),
    )


def entropy(law):
    """Shannon entropy in nats of laws along the last axis (0 log 0 = 0)."""
    law = np.asarray(law, np.float64)
    return -np.sum(xlogy(law, law), axis=-1)


def survival_probability(q, samples: int, generations: int):
    """P(K_n > 0) for n = 0..G, `(len(q), G + 1)` [EXACT] (theory.md F.1): 1 - [Bin(M, q) P^{n-1}]_0.

    Replace, no real data, no smoothing; n = 0 is the truth (1 if q > 0). Each category separately.
    """
    q = np.atleast_1d(_check_probabilities(q))
    eye = np.eye(q.size)
    f = (np.arange(samples + 1) == 0).astype(float)
    zero = wright_fisher_expectation(q, samples, f, generations, eye)
    return np.concatenate([np.asarray(q > 0, zero.dtype)[:, None], 1.0 - zero], axis=1)


def expected_support_size(p, samples: int, generations: int):
    """E #{i: p_hat_n,i > 0} = sum_i P(K_n^(i) > 0), n = 0..G [EXACT] (replace, no real data, smoothing 0)."""
    p = _check_probabilities(p, "p")
    f = (np.arange(samples + 1) == 0).astype(float)
    zero = wright_fisher_expectation(p, samples, f, generations, np.ones((1, p.size)))[0]
    return np.concatenate([np.asarray([float(np.sum(p > 0))], zero.dtype), np.sum(p > 0) - zero])


def expected_lost_mass(p, samples: int, generations: int):
    """E sum_i p_i 1[p_hat_n,i = 0] = sum_i p_i P(K_n^(i) = 0), n = 0..G [EXACT] (replace, no real data)."""
    p = _check_probabilities(p, "p")
    f = (np.arange(samples + 1) == 0).astype(float)
    lost = wright_fisher_expectation(p, samples, f, generations, p[None, :])[0]
    return np.concatenate([np.zeros((1,), lost.dtype), lost])


def group_extinction_probability(group_mass: float, samples: int, generations: int):
    """P(a group of categories has zero model mass) at n = 0..G [EXACT]: the group's total count is itself
    Wright-Fisher with q = its p-mass (multinomial lumping). Replace, no real data, smoothing 0."""
    return 1.0 - survival_probability([group_mass], samples, generations)[0]


def mean_absorption_time(samples: int, count: int):
    """Exact mean number of Wright-Fisher steps from count i (0 < i < M) to loss or fixation [EXACT]:
    t = (I - Q)^{-1} 1 over the transient states 1..M-1 (fundamental matrix). 0 at i = 0 or M."""
    _check_samples(samples)
    if not 0 <= count <= samples:
        raise ValueError(f"count must be in [0, samples = {samples}], got {count}")
    if count in (0, samples):
        return 0.0
    q = transition_matrix(samples)[1:samples, 1:samples]
    t = np.linalg.solve(np.eye(samples - 1) - q, np.ones(samples - 1))
    return t[count - 1]


def mean_extinction_time(samples: int, count: int):
    """Exact mean steps to loss from count i, conditional on loss [EXACT]: sum_j N_ij (1 - j/M) / (1 - i/M),
    N = (I - Q)^{-1}, since K/M is a martingale and P(loss | j) = 1 - j/M."""
    _check_samples(samples)
    if not 0 <= count < samples:
        raise ValueError(f"count must be in [0, samples - 1 = {samples - 1}] (loss impossible at M), got {count}")
    if count == 0:
        return 0.0
    q = transition_matrix(samples)[1:samples, 1:samples]
    h = 1.0 - np.arange(1, samples, dtype=q.dtype) / samples
    t = np.linalg.solve(np.eye(samples - 1) - q, h)
    return t[count - 1] / h[count - 1]


def kimura_ohta_absorption_time(samples: int, x):
    """Mean absorption time -2M [x ln x + (1-x) ln(1-x)] from frequency x [ASYMPTOTIC: diffusion,
    Kimura & Ohta 1969, haploid with M copies]; within ~2-6% of `mean_absorption_time` at M = 100."""
    _check_samples(samples)
    x = np.asarray(x, dtype=float)
    return -2.0 * samples * (xlogy(x, x) + xlogy(1 - x, 1 - x))


def branching_sequence(n: int):
    """q_0 = 1, q_k = 1 - exp(-q_{k-1}) for k = 0..n: the survival probability of a Poisson(1) branching
    process after k steps (q_k ~ 2/k)."""
    values = [1.0]
    for _ in range(n):
        values.append(-math.expm1(-values[-1]))
    return np.asarray(values)


def branching_survival_probability(q, samples: int, n: int):
    """P(K_n > 0) ~ 1 - exp(-M q q_{n-1}) [ASYMPTOTIC: small q, n << M; Poisson(M q) founders, each a
    critical Poisson branching process]. n >= 1."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return -np.expm1(-samples * np.asarray(q, dtype=float) * branching_sequence(n - 1)[-1])


def kimura_survival_probability(q, samples: int, n, terms: int | None = None):
    """Kimura (1955) diffusion: P(K_n > 0) = q - sum_{i>=1} (2i+1) q(1-q)(-1)^i F_i(1-q) e^{-i(i+1)n/(2M)},
    F_i = 2F1(1-i, i+2; 2; .) = 2 C_{i-1}^{(3/2)}(1 - 2x) / (i(i+1)) (Gegenbauer recurrence) [ASYMPTOTIC:
    haploid diffusion, good for n >~ 20 at M = 100 (theory.md F.1)]. n >= 1 (a scalar)."""
    _check_samples(samples)
    if not n >= 1:
        raise ValueError(f"n must be >= 1, got {n}")
    q = np.asarray(q, dtype=float)
    if terms is None:
        terms = int(math.ceil(math.sqrt(80.0 * samples / n))) + 2
    z = 1.0 - 2.0 * (1.0 - q)
    gegenbauer = [np.ones_like(z), 3.0 * z]  # C_0, C_1 with lambda = 3/2
    for m in range(2, terms):
        gegenbauer.append(((2 * m + 1) * z * gegenbauer[-1] - (m + 1) * gegenbauer[-2]) / m)
    loss = 1.0 - q
    for i in range(1, terms + 1):
        hyper = 2.0 * gegenbauer[i - 1] / (i * (i + 1))
        loss = loss + (2 * i + 1) * q * (1 - q) * (-1) ** i * hyper * math.exp(-i * (i + 1) * n / (2.0 * samples))
    return 1.0 - loss


def markov_survival_bound(q, samples: int):
    """P(K_n > 0) <= min(1, M q) for every n [BOUND: Markov's inequality, E K_n = M q]."""
    return np.minimum(1.0, samples * np.asarray(q, dtype=float))


def suresh_survival_lower_bound(q, samples: int, n: int):
    """P(K_n > 0) >= 1 - exp(-M q / n) [BOUND, Suresh et al. 2024 (secondary source; held in every case
    checked, theory.md F.1)]. n >= 1."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return -np.expm1(-samples * np.asarray(q, dtype=float) / n)


def gini_simpson_replace(norm_sq, samples: int, generations: int):
    """E[1 - sum p_hat_n^2] = (1 - 1/M)^n (1 - ||p||^2), n = 0..G [EXACT] (replace, no real data, s = 0)."""
    _check_samples(samples)
    n = np.arange(generations + 1, dtype=float)
    return (1.0 - 1.0 / samples) ** n * (1.0 - norm_sq)


# ------------------------------------------------------------------ accumulate: support never changes


def accumulate_zero_probability(
    q, samples: int, generations: int, *, real_fraction=0.0, real_draw="fixed", real_source="fresh"
):
    """P(pool count of a category (or group) of p-mass q is 0) at n = 0..G under accumulate, smoothing 0
    [EXACT]: a seen category keeps a positive count forever, and an unseen one is only ever drawn from p:
    (1-q)^M (no real data, or real points from the generation-1 sample), (1-q)^{M + r(n-1)} (fixed fresh
    real points), (1-q)^M (1 - alpha q)^{M(n-1)} (mixture). `(len(q), G + 1)`; n = 0: 1[q = 0]."""
    _check_samples(samples)
    _check_generations(generations)
    q = np.atleast_1d(np.asarray(_check_probabilities(q), dtype=float))
    n = np.arange(1, generations + 1, dtype=q.dtype)
    log_first = xlog1py(float(samples), -q)[:, None]
    if real_fraction > 0 and real_draw == "mixture":
        extra = xlog1py(samples * (n[None, :] - 1), -real_fraction * q[:, None])
    elif real_fraction > 0 and real_source == "fresh":
        extra = xlog1py(real_count(samples, real_fraction) * (n[None, :] - 1), -q[:, None])
    else:
        extra = np.zeros((1, generations), q.dtype)
    zero = np.exp(log_first + extra)
    return np.concatenate([np.asarray(q == 0, q.dtype)[:, None], zero], axis=1)


REPLACE_REAL_BUDGET = 2e10  # multiply-adds allowed for `replace_zero_probability`


def replace_zero_probability(q, samples: int, generations: int, *, real_fraction=0.0, real_draw="fixed"):
    """P(count of a category (or group) of p-mass q is 0) at n = 0..G under replace with fresh real data,
    smoothing 0 [EXACT, DERIVED]: the count is a Markov chain on 0..M with
      fixed:   K_n | K_{n-1} ~ Bin(M - r, K_{n-1}/M) + Bin(r, q)
      mixture: K_n | K_{n-1} ~ Bin(M, alpha q + (1 - alpha) K_{n-1}/M),
    K_1 ~ Bin(M, q); its law is propagated forward per category (chunked; cost K M^2 G, ValueError above
    REPLACE_REAL_BUDGET). Real data make lost categories reappear, so there is no absorption at 0.
    `(len(q), G + 1)`; n = 0: 1[q = 0]."""
    _check_samples(samples)
    _check_generations(generations)
    q = np.atleast_1d(_check_probabilities(q))
    m = samples
    mixture = real_draw == "mixture" and real_fraction > 0
    r = 0 if mixture else real_count(samples, real_fraction)
    unique, inverse = np.unique(q, return_inverse=True)
    cost = unique.size * (m + 1) ** 2 * max(generations - 1, 0)
    if cost > REPLACE_REAL_BUDGET:
        raise ValueError(f"categories x (samples+1)^2 x generations = {cost:.3g} exceeds REPLACE_REAL_BUDGET")
    states = np.arange(m + 1, dtype=float) / m
    chunk = max(1, _CHUNK_ELEMENTS // (m + 1) ** (2 if mixture else 1))
    synthetic = binomial_pmf(m - r, states) if not mixture else None  # (M+1, M-r+1)
    rows = []
    for start in range(0, unique.size, chunk):
        qc = np.asarray(unique[start : start + chunk], dtype=float)
        dist = binomial_pmf(m, qc)
        zeros = [dist[:, 0]]
        if mixture:
            law = real_fraction * qc[:, None] + (1 - real_fraction) * states[None, :]
            matrices = binomial_pmf(m, law.reshape(-1)).reshape(qc.shape[0], m + 1, m + 1)
        else:
            real = binomial_pmf(r, qc)  # (c, r+1)
        for _ in range(2, generations + 1):
            if mixture:
                dist = np.einsum("ci,cij->cj", dist, matrices)
            else:
                part = dist @ synthetic  # (c, M-r+1)
                new = np.zeros_like(dist)
                for b in range(r + 1):
                    new[:, b : b + m - r + 1] += part * real[:, b : b + 1]
                dist = new
            zeros.append(dist[:, 0])
        rows.append(np.stack(zeros, axis=1))
    zero = np.concatenate(rows, axis=0)[np.asarray(inverse)] if generations else np.zeros((q.size, 0))
    return np.concatenate([np.asarray(q == 0, float)[:, None], zero], axis=1)


# ------------------------------------------------------------------------------ l2 risk, smoothing 0


def _validate_chain(policy, real_fraction, real_draw):
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if not 0 <= real_fraction <= 1:
        raise ValueError(f"real_fraction must be in [0, 1], got {real_fraction}")
    if real_draw not in ("fixed", "mixture"):
        raise ValueError(f"real_draw must be fixed or mixture, got {real_draw!r}")


def l2_risk(norm_sq, samples: int, generations: int, *, policy="replace", real_fraction=0.0, real_draw="fixed"):
    """E||p_hat_k - p||^2 for k = 0..G, smoothing 0, fresh real points [EXACT, DERIVED] (theory.md F.2).

    Depends on p only through ||p||^2; V = 1 - ||p||^2, E_1 = V/M. With n_s = M - r synthetic and r real
    points (real_draw fixed), or the mixture alpha p + (1 - alpha) p_hat_{k-1} (real_draw mixture, our
    model k = Kanabar & Gastpar's t = k - 1 with n_0 = M):
      replace, fixed:    E_k = [M V + n_s (n_s - 1) E_{k-1}] / M^2
      replace, mixture:  E_k = (1-alpha)^2 E_{k-1} + (V - (1-alpha)^2 E_{k-1}) / M
      accumulate, fixed: E_k = [(N_{k-1} + n_s)^2 E_{k-1} + n_s (V - E_{k-1}) + r V] / N_k^2,  N_k = kM
      accumulate, mixture: E_k = a^2 E_{k-1} + M (V - (1-alpha)^2 E_{k-1}) / N_k^2, a = (N_{k-1} + M(1-alpha))/N_k
      accumulate-subsample: pool frequencies f_k, subsample h_k = (N_k - M)/(M(N_k - 1)) (hypergeometric):
        b_k = E||p_hat_k - p||^2 = a_k + h_k (V - a_k), a_k = E||f_k - p||^2 = E<f_k - p, p_hat_k - p>,
        N_k^2 a_k = N_{k-1}^2 a + 2 N_{k-1} n a + n^2 b + n (V - b) + r V with n = n_s (fixed), or
        N_{k-1}^2 a + 2 N_{k-1} M (1-alpha) a + M^2 (1-alpha)^2 b + M (V - (1-alpha)^2 b) (mixture).
    Derivation: split the new fit into the previous model's deviation, the multinomial noise of each part
    (E||S - n m||^2 = n(1 - E||m||^2) and E||m||^2 = ||p||^2 + E||m - p||^2 by unbiasedness), all
    uncorrelated. E gini_simpson = V - E_k.
    """
    _check_samples(samples)
    _check_generations(generations)
    _validate_chain(policy, real_fraction, real_draw)
    v = 1.0 - float(norm_sq)
    m = samples
    mixture = real_draw == "mixture" and real_fraction > 0
    alpha = float(real_fraction) if mixture else 0.0
    r = 0 if mixture else real_count(samples, real_fraction)
    n_s = m - r
    out = [0.0]
    if generations >= 1:
        a = b = v / m
        out.append(b)
    pool = m
    for _ in range(2, generations + 1):
        if policy == "replace":
            if mixture:
                b = (1 - alpha) ** 2 * b + (v - (1 - alpha) ** 2 * b) / m
            else:
                b = (m * v + n_s * (n_s - 1) * b) / m**2
        else:
            new = pool + m
            if mixture:
                a_next = (
                    pool**2 * a
                    + 2 * pool * m * (1 - alpha) * a
                    + m**2 * (1 - alpha) ** 2 * b
                    + m * (v - (1 - alpha) ** 2 * b)
                ) / new**2
            else:
                a_next = (pool**2 * a + 2 * pool * n_s * a + n_s**2 * b + n_s * (v - b) + r * v) / new**2
            pool, a = new, a_next
            if policy == "accumulate":
                b = a
            else:
                h = (pool - m) / (m * (pool - 1)) if pool > 1 else 0.0
                b = a + h * (v - a)
        out.append(b)
    return np.asarray(out)


def accumulate_l2_limit(norm_sq, samples: int):
    """lim_k E||p_hat_k - p||^2 under accumulate, no real data, smoothing 0 [EXACT, DERIVED]:
    V - E_k = V prod_{j<=k} (1 - 1/(j^2 M)) (the recursion above), so the limit is V (1 - sin(x)/x),
    x = pi / sqrt(M), strictly below (pi^2/6) E_1 = (pi^2/6) V/M (the pi^2/6 pathway of Kazdan et al. 2024
    and Dey & Donoho 2024; theory.md F.2) and E_k increases to it."""
    _check_samples(samples)
    x = math.pi / math.sqrt(samples)
    return (1.0 - float(norm_sq)) * (1.0 - math.sin(x) / x)


def accumulate_l2_closed_form(norm_sq, samples: int, generations: int):
    """E||p_hat_k - p||^2 = V [1 - prod_{j=1}^k (1 - 1/(j^2 M))], k = 0..G (accumulate, no real data) [EXACT]."""
    _check_samples(samples)
    j = np.arange(1, generations + 1, dtype=float)
    prod = np.concatenate([np.ones((1,)), np.cumprod(1.0 - 1.0 / (j**2 * samples))])
    return (1.0 - norm_sq) * (1.0 - prod)


def replace_l2_fixed_point(norm_sq, samples: int, real_fraction: float, real_draw="fixed"):
    """lim_k E||p_hat_k - p||^2 under replace with real data [EXACT limit of the recursion]:
    mixture V / (M alpha (2 - alpha) + (1 - alpha)^2) (theory.md F.2); fixed M V / (M^2 - n_s (n_s - 1)).
    With no real data the limit is V (collapse to a point mass)."""
    _check_samples(samples)
    v = 1.0 - float(norm_sq)
    if real_draw == "mixture":
        a = float(real_fraction)
        return v / (samples * a * (2 - a) + (1 - a) ** 2)
    n_s = samples - real_count(samples, real_fraction)
    return samples * v / (samples**2 - n_s * (n_s - 1))


# ------------------------------------------------------- moment recursion with smoothing (any policy)


def moment_recursion(
    p,
    samples: int,
    generations: int,
    *,
    policy="replace",
    real_fraction=0.0,
    real_draw="fixed",
    smoothing=0.0,
    functionals=(),
):
    """Exact E||p_hat_k - p||^2, E||p_hat_k||^2 and E <p_hat_k, w> (each w in `functionals`) for k = 0..G,
    with add-s smoothing, fresh real points, any policy [EXACT, DERIVED].

    p_hat = lam T/n + (1 - lam) u with T the training counts (n points), lam = n/(n + K s), u uniform.
    The scalars X = E||C||^2, Y = E<C, p>, Z_w = E<C, w> of the pool counts C close under one generation:
    the batch S ~ Mult(n, m) has E[S | m] = n m, E||S||^2 = n + n(n-1) E||m||^2; the pool adds it (or is
    replaced by it), and a hypergeometric subsample of M from the pool (N points) has E||T||^2 =
    M(N-M)/(N-1) (1 - X/N^2) + (M/N)^2 X. Uses <u, x> = sum(x)/K. Returns a dict of `(G + 1,)` arrays:
    "l2_risk", "norm_sq" and "functional" `(len(functionals), G + 1)`.
    """
    _check_samples(samples)
    _check_generations(generations)
    _validate_chain(policy, real_fraction, real_draw)
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    p = np.asarray(p, np.float64)
    k = p.size
    ws = [np.asarray(w, np.float64) for w in functionals]
    pp = float(p @ p)
    pw = [float(p @ w) for w in ws]
    uw = [float(w.sum()) / k for w in ws]
    m = samples
    mixture = real_draw == "mixture" and real_fraction > 0
    alpha = float(real_fraction) if mixture else 0.0
    r = 0 if mixture else real_count(samples, real_fraction)
    n_s = m - r

    l2, sq, fun = [0.0], [pp], [[x] for x in pw]
    if generations == 0:
        return {"l2_risk": np.asarray(l2), "norm_sq": np.asarray(sq), "functional": np.asarray(fun).reshape(len(ws), 1)}
    # pool counts of model 1: Mult(M, p)
    pool, x, y, z = m, m + m * (m - 1) * pp, m * pp, [m * v for v in pw]

    def model(pool, x, y, z):
        """(E||p_hat||^2, E<p_hat,p>, [E<p_hat,w>], E<C,p_hat>) of the model fitted on this pool."""
        if policy == "accumulate-subsample":
            n = m
            frac = m / pool
            tt = (m * (pool - m) / (pool - 1) * (1 - x / pool**2) if pool > 1 else 0.0) + frac**2 * x
            ty, tz, tc = frac * y, [frac * v for v in z], frac * x
        else:
            n, tt, ty, tz, tc = pool, x, y, z, x
        lam = n / (n + k * smoothing)
        norm = lam**2 * tt / n**2 + (2 * lam * (1 - lam) + (1 - lam) ** 2) / k
        dot_p = lam * ty / n + (1 - lam) / k
        dot_w = [lam * t / n + (1 - lam) * u for t, u in zip(tz, uw)]
        dot_c = lam * tc / n + (1 - lam) * pool / k
        return norm, dot_p, dot_w, dot_c

    state = None  # the previous generation's model moments
    for gen in range(1, generations + 1):
        if gen > 1:
            norm, dot_p, dot_w, dot_c = state
            if mixture:
                mm = alpha**2 * pp + 2 * alpha * (1 - alpha) * dot_p + (1 - alpha) ** 2 * norm
                bx = m + m * (m - 1) * mm
                by = m * (alpha * pp + (1 - alpha) * dot_p)
                bz = [m * (alpha * a + (1 - alpha) * b) for a, b in zip(pw, dot_w)]
                cross = m * (alpha * y + (1 - alpha) * dot_c)
            else:
                bx = n_s + n_s * (n_s - 1) * norm + 2 * n_s * r * dot_p + r + r * (r - 1) * pp
                by = n_s * dot_p + r * pp
                bz = [n_s * b + r * a for a, b in zip(pw, dot_w)]
                cross = n_s * dot_c + r * y
            if policy == "replace":
                x, y, z = bx, by, bz
            else:
                pool = pool + m
                x, y, z = x + 2 * cross + bx, y + by, [a + b for a, b in zip(z, bz)]
        state = model(pool, x, y, z)
        norm, dot_p, dot_w, _ = state
        l2.append(norm - 2 * dot_p + pp)
        sq.append(norm)
        for row, value in zip(fun, dot_w):
            row.append(value)
    return {
        "l2_risk": np.asarray(l2),
        "norm_sq": np.asarray(sq),
        "functional": np.asarray(fun).reshape(len(ws), generations + 1),
    }


def expected_mass(
    p, mask, samples: int, generations: int, *, policy="replace", real_fraction=0.0, real_draw="fixed", smoothing=0.0
):
    """E p_hat_k(A) for a set A of categories (`mask` `(K,)`), k = 0..G [EXACT]. With smoothing 0 it is
    p(A) at every generation (unbiasedness, any policy, fixed or mixture, fresh or original real points);
    with smoothing s > 0 it follows the affine recursion of `moment_recursion` (first moments only, which
    are the same for real points reused from the generation-1 sample)."""
    w = np.asarray(mask, np.float64)
    if smoothing == 0:
        return np.full((generations + 1,), float(np.asarray(p, np.float64) @ w))
    return moment_recursion(
        p,
        samples,
        generations,
        policy=policy,
        real_fraction=real_fraction,
        real_draw=real_draw,
        smoothing=smoothing,
        functionals=(w,),
    )["functional"][0]


# ------------------------------------------------------------------------------------------- predict


def _indicator(mean, note: str) -> Prediction:
    """An exact probability t with the per-chain std sqrt(t(1 - t)) of its indicator (so that a rare event
    no chain showed is compared on the standard error the theory implies, not on zero)."""
    mean = np.asarray(mean, float)
    return Prediction(mean, "exact", note=note, std=np.sqrt(np.clip(mean * (1 - mean), 0.0, None)))


def predict(
    metric: str,
    *,
    categories: int,
    samples: int,
    policy: str,
    generations: int,
    law: str | np.ndarray,
    real_fraction: float = 0.0,
    real_draw: str = "fixed",
    real_source: str = "fresh",
    smoothing: float = 0.0,
    tail_rank: int | None = None,
    groups: str | tuple = "",
    shared_real_data: bool = False,
    sample_growth: float = 0.0,
    reward: str | np.ndarray | None = "none",
    curation: str = "best",
    best_of: int = 1,
    method: str = "samples",
    **_ignored,
) -> Prediction | NoTheory:
    """The prediction for one discrete-setting metric over generations 0..G (the simulation's names).

    Exact: tail_mass and group_mass.* (every policy); l2_risk and gini_simpson (every policy, fresh or no
    real data, any smoothing); support_size, lost_mass and group_extinct.* with smoothing > 0 (trivial: the
    support is full), under replace (Wright-Fisher without real data; a forward count chain with fresh real
    data) and under accumulate (any real draw).
    NoTheory: entropy, tv_distance, kl_to_original (no closed form); support under accumulate-subsample;
    support and second moments with real points reused from the generation-1 sample (support under
    accumulate excepted); a shared real sample (conditional results); a growing sample size; a count
    chain beyond REPLACE_REAL_BUDGET; an option value not modelled here (a pool rule, real source or draw,
    method or curation outside the known ones; a reward other than linear).
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
        return NoTheory(f"reward {reward!r}: only linear rewards are derived")
    group_list = typed(groups, parse_groups, categories)
    group_names = {g[0]: g for g in group_list}
    base = metric.split(".", 1)[0]
    rewards = typed(reward, reward_values, categories)
    if metric == REWARD_METRIC and rewards is None:
        raise ValueError(f"metric {REWARD_METRIC} needs a reward")
    if metric in METRICS or metric == REWARD_METRIC:
        pass
    elif base in ("group_mass", "group_extinct") and "." in metric:
        if metric.split(".", 1)[1] not in group_names:
            raise ValueError(f"metric {metric!r}: no such group in groups={groups!r}")
    else:
        raise ValueError(f"metric must be one of {METRICS} or group_mass.NAME / group_extinct.NAME, got {metric!r}")
    _validate_chain(policy, real_fraction, real_draw)
    _check_generations(generations)
    if shared_real_data:
        return NoTheory("with a shared real sample the chain mean is conditional on it; theory is unconditional")
    if sample_growth:
        return NoTheory("growing sample size: not derived")
    p = np.asarray(typed(law, parse_law, categories), np.float64)
    if rewards is not None and (curation == "tilted" or best_of > 1 or (categories == 2 and policy == "replace")):
        mixture = real_draw == "mixture" and real_fraction > 0
        reused = not mixture and real_count(samples, real_fraction) > 0 and real_source == "original"
        return _curated_prediction(
            metric,
            p=p,
            rewards=rewards,
            best_of=best_of,
            curation=curation,
            samples=samples,
            generations=generations,
            policy=policy,
            real_fraction=real_fraction,
            real_draw=real_draw,
            reused=reused,
            smoothing=smoothing,
            groups=groups,
        )
    if metric == REWARD_METRIC:  # no curation: E r is linear in the law, so the mass theory gives it
        common = dict(policy=policy, real_fraction=real_fraction, real_draw=real_draw)
        mean = expected_mass(p, rewards, samples, generations, smoothing=smoothing, **common)
        return Prediction(
            mean, "exact", note="no curation (best_of 1): E sum_i q_i r(i), linear in E q (expected_mass)"
        )
    if metric in NO_CLOSED_FORM:
        return NoTheory(
            f"E {metric} of a multinomial/Wright-Fisher law: no closed form (a nonlinear function of "
            "all counts); simulation only"
        )
    mixture = real_draw == "mixture" and real_fraction > 0
    has_real = mixture or real_count(samples, real_fraction) > 0
    reused = has_real and not mixture and real_source == "original"
    common = dict(policy=policy, real_fraction=real_fraction, real_draw=real_draw)

    if metric == "tail_mass" or base == "group_mass":
        if base == "group_mass":
            _, first, last = group_names[metric.split(".", 1)[1]]
            mask = np.zeros(categories)
            mask[first - 1 : last] = 1.0
        else:
            if tail_rank is None:
                tail_rank = max(1, min(10, categories - 1))  # the simulation's default
            if not 1 <= tail_rank < categories:
                raise ValueError(f"tail_rank must be in [1, categories - 1 = {categories - 1}], got {tail_rank}")
            mask = tail_mask(p, tail_rank).astype(float)
        mean = expected_mass(p, mask, samples, generations, smoothing=smoothing, **common)
        note = (
            "exact: the fit is unbiased, so E p_hat_k(A) = p(A) at every generation"
            if smoothing == 0
            else "exact affine recursion of E p_hat_k under add-s smoothing (derived)"
        )
        return Prediction(mean, "exact", note=note)

    if metric in ("l2_risk", "gini_simpson"):
        if reused:
            return NoTheory(
                "real points reused from the generation-1 sample correlate generations: second moments not derived"
            )
        if smoothing == 0:
            e = l2_risk(float(p @ p), samples, generations, **common)
            mean = e if metric == "l2_risk" else 1.0 - float(p @ p) - e
        else:
            moments = moment_recursion(p, samples, generations, smoothing=smoothing, **common)
            mean = moments["l2_risk"] if metric == "l2_risk" else 1.0 - moments["norm_sq"]
        note = "exact scalar second-moment recursion (derived; Kanabar & Gastpar 2025 setting)"
        if policy == "accumulate" and not has_real and smoothing == 0:
            note += f"; increases to {accumulate_l2_limit(float(p @ p), samples):.6g} < (pi^2/6) E_1"
        return Prediction(mean, "exact", note=note)

    # support_size, lost_mass, group_extinct.*
    if base == "group_extinct":
        _, first, last = group_names[metric.split(".", 1)[1]]
        q = np.asarray([p[first - 1 : last].sum()])
    else:
        q = p
    if smoothing > 0:
        k = np.arange(generations + 1)
        if metric == "support_size":
            mean = np.where(k == 0, float(np.sum(p > 0)), float(categories))
        elif metric == "lost_mass":
            mean = np.zeros(generations + 1)
        else:
            mean = np.where(k == 0, float(q[0] == 0), 0.0)
        return Prediction(np.asarray(mean, float), "exact", note="exact: add-s smoothing gives every category mass")
    if policy == "accumulate":
        zero = accumulate_zero_probability(
            q, samples, generations, real_source=real_source, **{k: v for k, v in common.items() if k != "policy"}
        )
        note = "exact: under accumulate a seen category is never lost; unseen ones appear only from real draws"
    elif policy == "replace" and not has_real:
        f = (np.arange(samples + 1) == 0).astype(float)
        weights = np.eye(q.size) if base == "group_extinct" else np.stack([np.ones(q.size), q])
        try:
            rows = wright_fisher_expectation(q, samples, f, generations, weights)
        except ValueError as error:
            return NoTheory(f"exact Wright-Fisher chain too costly: {error}")
        if base == "group_extinct":
            return _indicator(
                np.concatenate([np.asarray([float(q[0] == 0)]), rows[0]]),
                "exact: the group's count is Wright-Fisher (lumping); backward equation",
            )
        if metric == "support_size":
            mean = np.concatenate([np.asarray([float(np.sum(p > 0))]), categories - rows[0]])
        else:
            mean = np.concatenate([np.zeros(1), rows[1]])
        return Prediction(mean, "exact", note="exact: Wright-Fisher drift (Shumailov et al. 2024), backward equation")
    elif policy == "replace" and not reused:
        try:
            zero = replace_zero_probability(q, samples, generations, real_fraction=real_fraction, real_draw=real_draw)
        except ValueError as error:
            return NoTheory(f"exact count chain too costly: {error}")
        note = "exact: per-category count chain with real draws (forward equation, derived)"
    elif reused:
        return NoTheory(f"{metric} with real points reused from the generation-1 sample under {policy}: not derived")
    else:
        return NoTheory(
            f"{metric} under accumulate-subsample (support of a subsample of the pool): not derived (simulation only)"
        )
    if base == "group_extinct":
        return _indicator(zero[0], note)
    if metric == "support_size":
        mean = categories - np.sum(zero, axis=0)
    else:
        mean = np.asarray(q) @ zero
    return Prediction(mean, "exact", note=note)
