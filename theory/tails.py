"""Closed forms for Hutter's memorisation model on Zipf data ("A Tale of Tails", Dohmatob, Feng, Yang,
Charton & Kempe, ICML 2024, arXiv 2402.07043), and its iterated (Wright-Fisher) version.

Setting (the collapse-jax conventions, stated so this module stands alone): items i = 1..K with the
true law p_i ~ i^-beta (beta > 1 for the asymptotics). A memoriser trained on T draws returns the right
label exactly for the items it has seen; its test error on p is the p-mass of the unseen items. Model
g = 0 is p itself; model 1 is the "generator": the empirical law of T0 (`samples`) real draws
(generator "empirical"), p cut at rank k and renormalised ("cut:k"), or Zipf(beta') over the same K
items ("narrow:beta'", beta' > beta); every later model is the empirical law of T0 draws from the
previous one (replace). At generation g the memoriser sees T draws from train_real_fraction * p +
(1 - train_real_fraction) * model_g plus N = `fixed_synthetic` extra draws from model_g. Metrics:
test_error.T and lost_mass (p-mass of the items with zero mass in model_g).

Given a deterministic model q, the unseen probability of item i is (1 - pi p_i - (1-pi) q_i)^T (1-q_i)^N,
so E test error = sum_i p_i (1 - pi p_i - (1-pi) q_i)^T (1 - q_i)^N [EXACT]. For the empirical chain the
count of item i in model g is a Wright-Fisher chain (theory.discrete), and the expectation is exact by
the backward equation (pi = 0) or by forward propagation of each item's count law (pi > 0).
Asymptotic laws (theory.md D.1-D.5) are labelled ASYMPTOTIC, and the n-generation law quoted by a
secondary source is labelled UNVERIFIED.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from theory import discrete, special
from theory.common import METHODS, POLICIES, REAL_DRAWS, REAL_SOURCES, NoTheory, Prediction, typed, unmodelled
from theory.special import xlog1py

_CHUNK_ELEMENTS = 1 << 16  # floats per (items x states) block: 512 KB, kept in cache (1 << 22 was 2.4x slower)
METRICS = ("lost_mass",)  # and one test_error.T per training size T (TEST_ERROR + str(T))
TEST_ERROR = "test_error."
FORWARD_BUDGET = 4e10  # multiply-adds allowed for the forward propagation (pi > 0)


def _require_beta(beta, name="beta"):
    if not (math.isfinite(beta) and beta > 1):
        raise ValueError(f"{name} must be > 1 (a Zipf law with a finite normaliser), got {beta}")


def zipf_law(beta: float, categories: int):
    """Zipf(beta) over `categories` items, float64 NumPy `(K,)` (any beta > 0)."""
    return discrete.parse_law(f"zipf:{beta!r}", categories)


def zeta_normaliser(beta: float, categories: int | None = None):
    """A = 1 / zeta(beta), or 1 / sum_{i<=K} i^-beta for a finite support K (beta > 1 for K = None)."""
    if categories is None:
        _require_beta(beta)
        return 1.0 / special.zeta(beta)
    return 1.0 / float(np.sum(np.arange(1, categories + 1, dtype=np.float64) ** -beta))


def cut_law(p, rank: int):
    """p restricted to its first `rank` items and renormalised (p sorted decreasingly, as a Zipf law is)."""
    p = np.asarray(p, np.float64).copy()
    if not 1 <= rank <= p.size:
        raise ValueError(f"rank must be in [1, {p.size}], got {rank}")
    p[rank:] = 0.0
    return p / p.sum()


# ------------------------------------------------------------------------------------- exact sums


def memoriser_error(p, q, train_size, *, real_fraction=0.0, fixed_synthetic=0):
    """sum_i p_i (1 - pi p_i - (1-pi) q_i)^T (1 - q_i)^N for a deterministic generator q [EXACT] (D.1-D.3;
    each of the T draws is real with probability pi). Computed as exp(T log1p(-x)). `train_size` may be
    an array of T values; returns the same shape."""
    if not 0 <= real_fraction <= 1:
        raise ValueError(f"real_fraction must be in [0, 1], got {real_fraction}")
    if fixed_synthetic < 0:
        raise ValueError(f"fixed_synthetic must be >= 0, got {fixed_synthetic}")
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    sizes = np.atleast_1d(np.asarray(train_size, dtype=float))
    if np.any(sizes < 0):
        raise ValueError("train_size must be >= 0")
    x = real_fraction * p + (1 - real_fraction) * q
    base = p * np.exp(xlog1py(float(fixed_synthetic), -q))
    out = np.stack([np.sum(base * np.exp(xlog1py(t, -x))) for t in sizes])
    return out.reshape(np.shape(np.asarray(train_size)))


def memoriser_error_std_bound(p, q, train_size, *, real_fraction=0.0, fixed_synthetic=0):
    """sqrt(sum_i p_i^2 m_i (1 - m_i)), m_i the miss probability of item i: an upper bound on the standard
    deviation of one learner's test error (the miss indicators of multinomial draws are negatively
    correlated, so dropping their covariances overstates the variance). Scalar `train_size`."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    law = np.minimum(real_fraction * p + (1 - real_fraction) * q, 1.0)
    miss = np.exp(xlog1py(float(train_size), -law) + xlog1py(float(fixed_synthetic), -np.minimum(q, 1.0)))
    return np.sqrt(np.sum(p**2 * miss * (1 - miss)))


def memoriser_error_fixed_counts(p, q, real_count, synthetic_count):
    """D.4 with fixed counts: sum_i p_i (1 - p_i)^{T_real} (1 - q_i)^{T_AI} [EXACT]."""
    if real_count < 0 or synthetic_count < 0:
        raise ValueError(f"real_count and synthetic_count must be >= 0, got {real_count}, {synthetic_count}")
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    return np.sum(p * np.exp(xlog1py(float(real_count), -p) + xlog1py(float(synthetic_count), -q)))


def mixing_plateau(p, rank: int, real_count):
    """lim_{T_AI -> inf} of D.4 with a rank-k cut generator: sum_{i>k} p_i (1 - p_i)^{T_real} [EXACT limit];
    about the tail mass sum_{i>k} p_i while T_real << k^beta."""
    p = np.asarray(p, dtype=float)
    tail = np.arange(p.shape[0]) >= rank
    return np.sum(np.where(tail, p * np.exp(xlog1py(float(real_count), -p)), 0.0))


# ------------------------------------------------------------------------------------- asymptotics


def clean_constant(beta: float, categories: int | None = None):
    """C_beta = Gamma(1 - 1/beta) A^(1/beta) / beta, A = 1/zeta(beta) [DERIVED constant] (with `categories`,
    A is the finite normaliser: the law actually used, valid while T << K^beta)."""
    _require_beta(beta)
    return math.gamma(1 - 1 / beta) * zeta_normaliser(beta, categories) ** (1 / beta) / beta


def clean_error_asymptotic(train_size, beta: float, categories: int | None = None):
    """E_test(T) ~ C_beta T^-(1 - 1/beta) for q = p [ASYMPTOTIC, T -> inf with T << K^beta] (D.1).
    Relative error about 1e-3 at beta = 2, T = 10^3 (K = 10^7)."""
    _require_beta(beta)
    return clean_constant(beta, categories) * np.asarray(train_size, dtype=float) ** -(1 - 1 / beta)


def tail_mass_asymptotic(rank, beta: float):
    """sum_{i>k} p_i ~ A k^(1 - beta) / (beta - 1) [ASYMPTOTIC, k -> inf, infinite support] (D.2)."""
    _require_beta(beta)
    return zeta_normaliser(beta) * np.asarray(rank, dtype=float) ** (1 - beta) / (beta - 1)


def cut_error_order(train_size, rank, beta: float):
    """T^-(1 - 1/beta) + k^-(beta - 1): the order (≍, constants not given) of the error with a rank-k cut
    generator [ASYMPTOTIC order, Thm 2.1 of Dohmatob et al. 2024 via secondary sources] (D.2)."""
    _require_beta(beta)
    return np.asarray(train_size, dtype=float) ** -(1 - 1 / beta) + np.asarray(rank, dtype=float) ** (1 - beta)


def narrow_error_asymptotic(train_size, beta: float, beta2: float):
    """E_test ~ (A/beta') (T A')^-((beta-1)/beta') Gamma((beta-1)/beta') for a Zipf(beta') generator,
    beta' > beta, A' = 1/zeta(beta') [ASYMPTOTIC, DERIVED] (D.3): the exponent drops to (beta-1)/beta'."""
    _require_beta(beta)
    if not beta2 > beta:
        raise ValueError(f"beta2 must be > beta = {beta}, got {beta2}")
    a, a2 = zeta_normaliser(beta), zeta_normaliser(beta2)
    e = (beta - 1) / beta2
    return a / beta2 * (np.asarray(train_size, dtype=float) * a2) ** -e * math.gamma(e)


def mixing_plateau_asymptotic(rank, beta: float):
    """The D.4 plateau: the tail mass A k^(1-beta)/(beta-1), reached for large T_AI while T_real << k^beta
    [ASYMPTOTIC] (Thm 3.2 of Dohmatob et al. 2024, secondary source)."""
    return tail_mass_asymptotic(rank, beta)


def mixing_recovery_point(rank, beta: float):
    """T_real at which the clean law C_beta T_real^-c meets the plateau A k^(1-beta)/(beta-1):
    [C_beta (beta-1) / A]^(beta/(beta-1)) k^beta, i.e. T_real ≍ k^beta [ASYMPTOTIC, DERIVED] (D.4: the
    error leaves the plateau around here and then follows the clean law)."""
    _require_beta(beta)
    a = zeta_normaliser(beta)
    return (clean_constant(beta) * (beta - 1) / a) ** (beta / (beta - 1)) * np.asarray(rank, dtype=float) ** beta


def wf_lost_mass_approximation(p, samples: int, generation: int):
    """D.5 Wright-Fisher chain: lost mass of model n ~ sum_i p_i exp(-T0 p_i q_{n-1}) (q_0 = 1,
    q_k = 1 - e^{-q_{k-1}} ~ 2/k) [ASYMPTOTIC: branching approximation, T0 p_i small, n << T0]."""
    if generation < 1:
        raise ValueError(f"generation must be >= 1, got {generation}")
    p = np.asarray(p, dtype=float)
    return np.sum(p * np.exp(-samples * p * discrete.branching_sequence(generation - 1)[-1]))


def wf_lost_mass_asymptotic(samples: int, generation: int, beta: float):
    """C_beta (T0 q_{n-1})^-(1 - 1/beta): the power law of `wf_lost_mass_approximation` [ASYMPTOTIC];
    it grows like n^(1 - 1/beta) since q_{n-1} ~ 2/n."""
    if generation < 1:
        raise ValueError(f"generation must be >= 1, got {generation}")
    return clean_error_asymptotic(samples * discrete.branching_sequence(generation - 1)[-1], beta)


def shrinking_chain_lost_mass(p, samples: int, generation: int):
    """D.5 support-shrinking chain (each generator samples p restricted to the surviving support):
    lost mass ~ sum_i p_i [1 - (1 - (1 - p_i)^T0)^n] [ASYMPTOTIC/DERIVED: independent losses per
    generation], <= n C_beta T0^-c; grows about logarithmically in n."""
    if generation < 1:
        raise ValueError(f"generation must be >= 1, got {generation}")
    p = np.asarray(p, dtype=float)
    seen = -np.expm1(xlog1py(float(samples), -p))
    return np.sum(p * (1 - seen**generation))


def generations_law_unverified(train_size, samples: int, generation, beta: float):
    """T^-c + n T0^-c, c = 1 - 1/beta [UNVERIFIED: attributed to Dohmatob et al. 2024 by a secondary source;
    only a union-bound-type UPPER BOUND: the Wright-Fisher and shrinking chains grow like n^c and log n]."""
    _require_beta(beta)
    c = 1 - 1 / beta
    return np.asarray(train_size, dtype=float) ** -c + np.asarray(generation, dtype=float) * samples**-c


# ---------------------------------------------------------------------- exact: empirical chain


def _unseen_values(samples, p_i, train_size, real_fraction, fixed_synthetic, dtype):
    """f_i(j) = (1 - pi p_i - (1-pi) j/T0)^T (1 - j/T0)^N, `(len(p_i), T0 + 1)`."""
    j = np.arange(samples + 1, dtype=dtype) / samples
    x = real_fraction * np.asarray(p_i, dtype)[:, None] + (1 - real_fraction) * j[None, :]
    return np.exp(xlog1py(float(train_size), -x) + xlog1py(float(fixed_synthetic), -j)[None, :])


def chain_expectations(p, first_law, samples: int, steps: int, train_sizes=(), *, real_fraction=0.0, fixed_synthetic=0):
    """Exact expectations over the empirical chain started from the law `first_law` [EXACT].

    The count of item i after n = 1..`steps` empirical refits is K_1 ~ Bin(T0, first_law_i), then
    Wright-Fisher steps K_n ~ Bin(T0, K_{n-1}/T0). Returns a dict of `(steps,)` arrays: "lost_mass"
    (sum p_i P(K_n = 0)) and, for each T, "test_error.T" = sum_i p_i E f_i(K_n) with f_i as in
    `memoriser_error`. pi = 0: one backward pass (v = P^{n-1} f) serves all items; pi > 0: each item's
    count law is propagated forward (cost K T0^2 steps; ValueError above FORWARD_BUDGET).
    """
    discrete._check_samples(samples)
    p = np.asarray(p, np.float64)
    first = discrete._check_probabilities(first_law, "first_law")
    sizes = tuple(int(t) for t in train_sizes)
    out = {}
    if steps == 0:
        return {name: np.zeros((0,)) for name in ["lost_mass"] + [f"test_error.{t}" for t in sizes]}
    zero = (np.arange(samples + 1) == 0).astype(float)
    if real_fraction == 0 or not sizes:
        columns = [zero] + [
            np.exp(xlog1py(float(t + fixed_synthetic), -np.arange(samples + 1, dtype=float) / samples)) for t in sizes
        ]
        values = np.stack(columns, axis=1)  # (T0+1, m)
        v = discrete.backward_values(samples, values, steps - 1)  # (T0+1, m, steps)
        unique, summed = discrete._unique_with_weights(first, [p])
        chunk = max(1, _CHUNK_ELEMENTS // (samples + 1))
        total = np.zeros((values.shape[1], steps), v.dtype)
        for start in range(0, unique.size, chunk):
            pmf = discrete.binomial_pmf(samples, unique[start : start + chunk])
            weights = np.asarray(summed[0, start : start + chunk], v.dtype)
            total = total + np.tensordot(weights @ pmf, v, axes=1)
        out["lost_mass"] = total[0]
        for t, row in zip(sizes, total[1:]):
            out[f"test_error.{t}"] = row
        return out
    cost = p.size * (samples + 1) ** 2 * steps
    if cost > FORWARD_BUDGET:
        raise ValueError(
            f"categories x (samples+1)^2 x generations = {cost:.3g} exceeds FORWARD_BUDGET = "
            f"{FORWARD_BUDGET:.3g} (forward propagation needed with real_fraction > 0)"
        )
    matrix = discrete.transition_matrix(samples)
    chunk = max(1, _CHUNK_ELEMENTS // (samples + 1))
    lost = np.zeros((steps,), matrix.dtype)
    errors = {t: np.zeros((steps,), matrix.dtype) for t in sizes}
    for start in range(0, p.size, chunk):
        pc = np.asarray(p[start : start + chunk], matrix.dtype)
        dist = discrete.binomial_pmf(samples, first[start : start + chunk])
        fs = {t: _unseen_values(samples, pc, t, real_fraction, fixed_synthetic, matrix.dtype) for t in sizes}
        for n in range(steps):
            if n:
                dist = dist @ matrix
            lost[n] += pc @ dist[:, 0]
            for t in sizes:
                errors[t][n] += pc @ np.sum(dist * fs[t], axis=1)
    out["lost_mass"] = lost
    for t in sizes:
        out[f"test_error.{t}"] = errors[t]
    return out


def _read_generator(text: str):
    """("empirical", None), ("cut", K) or ("narrow", BETA2) of a generator string written by hand."""
    if text == "empirical":
        return "empirical", None
    forms = f"generator must be empirical, cut:K or narrow:BETA2; got {text!r}"
    kind, _, value = text.partition(":")
    if kind not in ("cut", "narrow"):
        raise ValueError(forms)
    try:
        return kind, int(value) if kind == "cut" else float(value)
    except ValueError:
        raise ValueError(forms) from None


def generator_law(generator, categories: int, beta: float):
    """("empirical", None), ("cut", cut law) or ("narrow", Zipf(beta2) law) of a generator ("empirical",
    None), ("cut", K) or ("narrow", BETA2), or of its string form."""
    kind, value = typed(generator, _read_generator)
    if kind == "empirical":
        return "empirical", None
    if kind == "cut":
        if not 1 <= value < categories:
            raise ValueError(f"generator: K in cut:K must be in [1, categories - 1], got {value}")
        return "cut", cut_law(zipf_law(beta, categories), int(value))
    if kind == "narrow":
        if not value > beta:
            raise ValueError(f"generator: BETA2 in narrow:BETA2 must be > beta = {beta}, got {value}")
        return "narrow", zipf_law(float(value), categories)
    raise ValueError(f"generator must be empirical, cut:K or narrow:BETA2; got {generator!r}")


def parse_generator(text: str, categories: int, beta: float):
    """`generator_law` of a generator string (kept for calls by hand)."""
    return generator_law(text, categories, beta)


def _read_zipf(text: str):
    """("zipf", BETA) of a law string "zipf:BETA" written by hand (("?", None) for another form)."""
    if not text.startswith("zipf:"):
        return "?", None
    return "zipf", float(text[len("zipf:") :])


@functools.lru_cache(maxsize=16)
def _chain_expectations_of(beta, categories, generator, samples, steps, sizes, real_fraction, fixed_synthetic):
    """`chain_expectations` for every train size of a config at once, kept for the config's other metrics
    (one Wright-Fisher pass over the K items serves them all: the CLI asks for each metric in turn)."""
    p = zipf_law(beta, categories)
    kind, q1 = generator_law(generator, categories, beta)
    start = p if kind == "empirical" else q1
    return chain_expectations(
        p, start, samples, steps, sizes, real_fraction=real_fraction, fixed_synthetic=fixed_synthetic
    )


def predict(
    metric: str,
    *,
    categories: int,
    samples: int,
    generations: int,
    law: str | tuple,
    generator: str | tuple = "empirical",
    train_sizes=(100, 1000, 10000),
    train_real_fraction: float = 0.0,
    fixed_synthetic: int = 0,
    policy: str = "replace",
    real_fraction: float = 0.0,
    shared_real_data: bool = False,
    chain: str = "empirical",
    real_source: str = "fresh",
    real_draw: str = "fixed",
    sample_growth: float = 0.0,
    method: str = "samples",
    **_ignored,
) -> Prediction | NoTheory:
    """The prediction for test_error.T or lost_mass over generations 0..G (the simulation's names).

    Exact for policy replace without chain real data (real_fraction = 0): generation 0 and a deterministic
    generator by the exact sum, the empirical chain by the Wright-Fisher expectation. NoTheory for other
    policies, chain real data, a shared real sample, a growing sample size, a forward propagation beyond
    FORWARD_BUDGET, or an option value not modelled here (a pool rule, chain, real source or draw, method).
    """
    if isinstance(train_sizes, str):
        train_sizes = [t for t in train_sizes.split(",") if t.strip()]
    if metric not in METRICS and not (metric.startswith(TEST_ERROR) and metric[len(TEST_ERROR) :].isdigit()):
        raise ValueError(f"metric must be test_error.T or lost_mass, got {metric!r}")
    law_kind, beta = typed(law, _read_zipf)
    if law_kind != "zipf":
        raise ValueError(f"law must be zipf:BETA for the tails setting, got {law!r}")
    beta = float(beta)
    _require_beta(beta, "law's BETA")
    discrete._check_generations(generations)
    why = unmodelled(
        policy=(policy, POLICIES),
        chain=(chain, ("empirical", "shrinking")),
        real_source=(real_source, REAL_SOURCES),
        real_draw=(real_draw, REAL_DRAWS),
        method=(method, METHODS),
    )
    if why is not None:
        return why
    if sample_growth:
        return NoTheory("growing sample size (sample_growth > 0): not derived")
    if shared_real_data:
        return NoTheory("with a shared real sample the chain mean is conditional on it; theory is unconditional")
    if chain == "shrinking":
        return NoTheory(
            "support-shrinking chain: survivals are dependent through the renormalisation; only the "
            "approximation shrinking_chain_lost_mass is known"
        )
    if policy != "replace":
        return NoTheory(f"tails chain under {policy}: the pooled count is not Wright-Fisher; not derived")
    if real_fraction > 0:
        return NoTheory("tails chain with real data in the generator's batches: not derived")
    p = zipf_law(beta, categories)
    kind, q1 = generator_law(generator, categories, beta)
    t = int(metric[len("test_error.") :]) if metric != "lost_mass" else None
    pi, n_fixed = float(train_real_fraction), int(fixed_synthetic)

    def deterministic(q):
        if t is None:
            return float(np.sum(np.where(np.asarray(q) > 0, 0.0, p)))
        return float(memoriser_error(p, q, t, real_fraction=pi, fixed_synthetic=n_fixed))

    def std_bound(q):
        return float(memoriser_error_std_bound(p, q, t, real_fraction=pi, fixed_synthetic=n_fixed)) if t else 0.0

    head, head_std = [deterministic(p)], [std_bound(p)]
    steps = generations  # the empirical chain starts from p, or from the generator's law q1 after one step
    if kind != "empirical" and generations >= 1:
        head.append(deterministic(q1))
        head_std.append(std_bound(q1))
        steps = generations - 1
    sizes = tuple(sorted({int(x) for x in train_sizes} | ({t} if t is not None else set())))
    try:
        chain = _chain_expectations_of(beta, categories, generator, samples, steps, sizes, pi, n_fixed)
    except ValueError as error:
        return NoTheory(f"exact expectation too costly: {error}")
    tail = chain[metric]
    mean = np.concatenate([np.asarray(head, dtype=tail.dtype), tail])
    std = np.full(mean.shape[0], np.nan)  # bounds for the fixed laws (random models: the chains' own SE)
    std[: len(head_std)] = head_std
    return Prediction(
        mean,
        "exact",
        note="exact: memoriser sum for a fixed law; Wright-Fisher expectation "
        "(backward/forward equation) for the empirical chain",
        std=np.asarray(std),
    )
