"""Closed forms for a downstream (ridge) regression trained on the output of a synthetic-data chain.

Setting (theory.md B.1-B.6; Dohmatob, Feng & Kempe 2024, "Model Collapse Demystified", two-stage):
x ~ N(0, Sigma) in d dimensions, Sigma = diag(l_1..l_d) in its eigenbasis (l_i > 0), y = <w*, x> + eps.
An OLS chain run for n generations leaves weights w_n = w* + delta with E delta = 0 and
E delta delta^T = (e_n / d) Sigma^-1, where e_n = E||delta||_Sigma^2 is the chain's excess risk
(true for OLS chains with Gaussian design, replace or accumulate, fresh or fixed design: after whitening
the law of delta is rotation invariant). A downstream model is then fitted on T fresh rows labelled by
w_n plus noise of variance sigma^2:
    ridge:  w = (X^T X / T + lambda I)^-1 X^T Y / T,    min-norm (lambda = 0, d > T): w = X^+ Y.
Its test error is the excess risk ||w - w*||_Sigma^2 (add sigma^2 for the irreducible label noise).

Deterministic equivalents (theory.md B.4): df_m(kappa) = tr Sigma^m (Sigma + kappa I)^-m, kappa solves
kappa - lambda = kappa df_1(kappa) / T, u = df_2(kappa) / T; then lambda (Sigma_hat + lambda)^-1 ~
kappa (Sigma + kappa)^-1 and lambda^2 R Sigma R ~ kappa^2 Sigma (Sigma + kappa)^-2 / (1 - u).

The deterministic equivalents are jax.numpy: every function of scalar parameters can be vmapped over
them, works in float32 and float64, and `effective_regularization` is differentiable (implicit
differentiation through `jax.lax.custom_root`), so optimal ridges are found with `jax.grad`. The closed
forms the command line evaluates for every run (`ols_two_stage`, `minimum_norm_replace`,
`subsample_limit_ratio`) are NumPy float64, so they compile nothing.

Also here: the over-parameterised min-norm chain (theory.md B.6), the power-law scaling exponents
(B.5) and the accumulate-subsample Gaussian-process limit (A.4).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

BISECTION_STEPS = 100  # log-kappa halvings: any float bracket spans < 1500 e-folds, 1500 / 2^100 << machine eps
NEWTON_STEPS = 24  # Newton steps on log lambda in `optimal_ridge`
MAX_LOG_STEP = 0.5  # largest Newton step on log lambda
GRID_DECADES = (-10.0, 4.0)  # starting grid of `optimal_ridge`: kappa / max(l_i) in 10^[-10, 4]
GRID_PER_DECADE = 4
ADAPTIVE_REFINEMENTS = 2  # fixed-point steps of `adaptive_ridge`


def _float_dtype(*values):
    """The float dtype of the arguments (float32 unless x64 is on and an argument is float64 or a Python float)."""
    return jnp.result_type(float, *(jnp.asarray(v) if isinstance(v, (list, tuple)) else v for v in values))


# --------------------------------------------------------------------------- deterministic equivalents


def degrees_of_freedom(eigenvalues, kappa, power):
    """df_m(kappa) = tr Sigma^m (Sigma + kappa I)^-m = sum_i (l_i / (l_i + kappa))^m. EXACT (a definition).

    eigenvalues: `(d,)` eigenvalues l_i > 0 of Sigma. kappa: scalar >= 0 (vmap for a batch). power: m.
    Returns a scalar. df_m(0) = d; df_m decreases in kappa; df_2 <= df_1.
    """
    eigenvalues = jnp.asarray(eigenvalues)
    return jnp.sum((eigenvalues / (eigenvalues + kappa)) ** power, axis=-1)


def effective_regularization(eigenvalues, ridge, samples):
    """The effective regularisation kappa >= 0 of ridge with T samples: kappa - lambda = kappa df_1(kappa) / T.

    ASYMPTOTIC meaning (deterministic equivalent, proportional regime d, T -> infinity with d/T fixed;
    theory.md B.4; the standard ridge fixed point, e.g. Bach 2023, Dohmatob, Feng & Kempe 2024); the
    root itself is EXACT to machine precision.

    Unique root: for kappa > 0 write the equation as g(kappa) = 1 - lambda/kappa - df_1(kappa)/T = 0.
    Both -lambda/kappa and -df_1(kappa) increase with kappa, so g is increasing, g -> 1 as kappa -> inf,
    and g(lambda) = -df_1(lambda)/T < 0 when lambda > 0: exactly one positive root, in the bracket
    [lambda, lambda + tr Sigma / T] (df_1(kappa) <= tr Sigma / kappa gives g >= 0 at the right end).
    lambda = 0: g(0+) = 1 - d/T, so kappa = 0 when d <= T (under-parameterised: ridgeless = OLS),
    and the positive root of df_1(kappa) = T when d > T (min-norm interpolation).

    Differentiation: the root is returned by `jax.lax.custom_root` on F(kappa) = kappa - lambda -
    kappa df_1(kappa)/T (smooth at kappa = 0, where dF/dkappa = 1 - d/T), so gradients with respect
    to `ridge`, `samples` (as a float) and `eigenvalues` are exact by implicit differentiation: the
    bisection (a fixed number of halvings of the log-kappa bracket) is never differentiated through.
    At lambda = 0 with d = T the derivative is infinite (kappa ~ sqrt(lambda)).

    eigenvalues: `(d,)`, l_i > 0 (Sigma positive definite). ridge: scalar lambda >= 0.
    samples: scalar T > 0 (int or float). Returns a scalar kappa in the promoted float dtype.
    """
    dtype = _float_dtype(eigenvalues, ridge, samples)
    return _effective_regularization(*(jnp.asarray(a, dtype) for a in (eigenvalues, ridge, samples)))


@jax.jit
def _effective_regularization(eigenvalues, ridge, samples):
    dtype = eigenvalues.dtype

    def residual(kappa):  # F(kappa); its sign is the sign of g(kappa) for kappa > 0
        return kappa - ridge - kappa * degrees_of_freedom(eigenvalues, kappa, 1) / samples

    # lower end: lambda, or (lambda = 0) a kappa so small that df_1 > T whenever d > T (df_1 >= d / (1 + eps))
    low = jax.lax.stop_gradient(jnp.maximum(ridge, jnp.min(eigenvalues) * jnp.finfo(dtype).eps))
    high = jax.lax.stop_gradient(ridge + jnp.sum(eigenvalues) / samples)

    def solve(f, _guess):
        def halve(_, bracket):
            lo, hi = bracket
            mid = 0.5 * (lo + hi)
            below = f(jnp.exp(mid)) < 0  # root lies above mid
            return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

        lo, hi = jax.lax.fori_loop(0, BISECTION_STEPS, halve, (jnp.log(low), jnp.log(high)))
        root = jnp.exp(0.5 * (lo + hi))
        return jnp.where(f(low) >= 0, jnp.zeros_like(root), root)  # no positive root: kappa = 0 (lambda = 0, d <= T)

    return jax.lax.custom_root(residual, high, solve, lambda linear, y: y / linear(jnp.ones_like(y)))


def isotropic_effective_regularization(ratio, ridge):
    """kappa for Sigma = I in closed form: kappa = [-(1 - lambda - phi) + sqrt((1 - lambda - phi)^2 + 4 lambda)] / 2.

    The positive root of kappa^2 + (1 - lambda - phi) kappa - lambda = 0, phi = d/T = `ratio` (theory.md
    B.4; at lambda = 0 it gives max(phi - 1, 0)). ASYMPTOTIC meaning as in `effective_regularization`.
    ratio, ridge: scalars (or broadcastable arrays). Returns their broadcast shape.
    """
    b = 1.0 - ridge - ratio
    return 0.5 * (-b + jnp.sqrt(b * b + 4.0 * ridge))


# --------------------------------------------------------------------------- two-stage test error


def ridge_two_stage(
    *, eigenvalues, weight_coefficients_sq, ridge, downstream_samples, downstream_noise_var, chain_excess_risk
):
    """Test error of downstream ridge on T fresh rows labelled by an OLS chain's weights w_n (two-stage).

    Setting: module docstring (Dohmatob, Feng & Kempe 2024, two-stage; theory.md B.4). DERIVED,
    ASYMPTOTIC (deterministic equivalents, proportional regime; the finite-size error is O(1/d), 1-5%
    at d = 200 in theory.md's checks). Holds for d < T and d > T, lambda > 0 or lambda = 0 (then the
    downstream fit is OLS for d < T, min-norm interpolation for d > T: the lambda -> 0+ limit).
    With kappa = `effective_regularization`, u = df_2(kappa)/T:
        bias      = kappa^2 sum_i c_i^2 l_i / (l_i + kappa)^2 / (1 - u)
        variance  = sigma^2 u / (1 - u)
        synthetic = e_n (df_2 + (d - 2 df_1 + df_2) u / (1 - u)) / d
    The synthetic term is exactly (e_n / d) E tr[(I - lambda R) Sigma (I - lambda R) Sigma^-1] (the chain
    deviation is independent of the downstream design and enters like a signal with covariance
    Sigma^-1 e_n / d); with e_n = n sigma0^2 d / (T0 - d - 1) it is theory.md's n sigma0^2 rho. Cross
    terms vanish because E delta = 0 and the downstream noise has mean zero.

    eigenvalues: `(d,)` l_i > 0. weight_coefficients_sq: `(d,)` c_i^2, the squared coordinates of w* in
    the eigenbasis (or their expectation for random w*, e.g. 1/d each for w* ~ N(0, I/d)).
    ridge, downstream_samples (T), downstream_noise_var (sigma^2): scalars.
    chain_excess_risk: e_n = E||w_n - w*||_Sigma^2, any shape, typically `(G + 1,)` for n = 0..G.
    Returns {"bias", "variance", "synthetic", "total"}, each of the shape of `chain_excess_risk`
    (bias and variance do not depend on n and are broadcast).
    """
    args = (eigenvalues, weight_coefficients_sq, ridge, downstream_samples, downstream_noise_var)
    dtype = _float_dtype(*args, chain_excess_risk)
    bias, variance, factor = _two_stage_terms(*(jnp.asarray(a, dtype) for a in args))
    return _assemble(bias, variance, factor, jnp.asarray(chain_excess_risk, dtype))


@jax.jit
def _two_stage_terms(eigenvalues, coefficients, ridge, samples, noise_var):
    """Scalars (bias, variance, synthetic factor): synthetic = factor * e_n."""
    kappa = _effective_regularization(eigenvalues, ridge, samples)
    return _terms_at_kappa(eigenvalues, coefficients, kappa, samples, noise_var)


def _terms_at_kappa(eigenvalues, coefficients, kappa, samples, noise_var):
    dim = eigenvalues.shape[-1]
    shrink = kappa / (eigenvalues + kappa)  # kappa (l + kappa)^-1; 0 where kappa = 0
    df2 = degrees_of_freedom(eigenvalues, kappa, 2)
    u = df2 / samples
    gain = 1.0 / (1.0 - u)
    bias = jnp.sum(coefficients * eigenvalues * shrink**2, axis=-1) * gain
    variance = noise_var * u * gain
    residual = jnp.sum(shrink**2, axis=-1)  # d - 2 df_1 + df_2, without cancellation
    return bias, variance, (df2 + residual * u * gain) / dim


def _assemble(bias, variance, factor, chain):
    synthetic = chain * factor
    bias, variance = jnp.broadcast_to(bias, chain.shape), jnp.broadcast_to(variance, chain.shape)
    return {"bias": bias, "variance": variance, "synthetic": synthetic, "total": bias + variance + synthetic}


def ols_two_stage(*, dim, downstream_samples, downstream_noise_var, chain_excess_risk):
    """Test error of downstream OLS (T >= d + 2) on T fresh rows labelled by a chain's weights w_n.

    EXACT (theory.md B.2, Dohmatob, Feng & Kempe 2024): the downstream OLS is unbiased for w_n and its
    design is independent of the chain deviation, so E||w - w*||_Sigma^2 = e_n + sigma^2 d / (T - d - 1)
    (E (X^T X)^-1 = Sigma^-1 / (T - d - 1), Gaussian design, any Sigma).
    chain_excess_risk: e_n, any shape (typically `(G + 1,)`). Returns the dict of `ridge_two_stage`:
    bias 0, variance sigma^2 d / (T - d - 1), synthetic = e_n, total = their sum.
    """
    chain = np.asarray(chain_excess_risk, np.float64)
    variance = downstream_noise_var * dim / (downstream_samples - dim - 1.0)
    variance = np.broadcast_to(np.asarray(variance, chain.dtype), chain.shape)
    return {"bias": np.zeros_like(chain), "variance": variance, "synthetic": chain, "total": chain + variance}


# --------------------------------------------------------------------------- optimal and adaptive ridge


def _minimise_log(objective, start, steps):
    """Safeguarded Newton on x = log lambda: steps clipped to MAX_LOG_STEP, a clipped descent step where
    the curvature is not positive. Both derivatives come from jax (forward over reverse)."""
    slope = jax.grad(objective)

    def newton(_, x):
        g, h = jax.jvp(slope, (x,), (jnp.ones_like(x),))
        step = jnp.where(h > 0, -g / jnp.where(h > 0, h, 1.0), -jnp.sign(g) * MAX_LOG_STEP)
        return x + jnp.clip(step, -MAX_LOG_STEP, MAX_LOG_STEP)

    return jax.lax.fori_loop(0, steps, newton, start)


def optimal_ridge(
    *,
    eigenvalues,
    weight_coefficients_sq,
    downstream_samples,
    downstream_noise_var,
    chain_excess_risk,
    initial=None,
    steps=NEWTON_STEPS,
):
    """The ridge lambda* > 0 that minimises `ridge_two_stage(...)["total"]`, for each chain excess risk e_n.

    DERIVED numerics on the ASYMPTOTIC formula (theory.md B.4, "optimal / adaptive regularization";
    Dohmatob, Feng & Kempe 2024 propose regularising more after more synthetic generations). Method:
    the best point of a log grid (kappa / max l_i in 10^[-10, 4], 4 per decade, mapped to lambda by
    lambda = kappa (1 - df_1(kappa)/T), points with lambda <= 0 left out) unless `initial` is
    given, then `steps` safeguarded Newton steps on log lambda with first and second derivatives from
    jax.grad, which differentiates the fixed point of `effective_regularization` implicitly (custom_root),
    never through its bisection. vmapped over e_n. Assumes the minimiser is interior (with sigma^2 = 0,
    e_n = 0 and d < T the infimum is at lambda -> 0 and the result is merely small).
    Isotropic, e_n = 0: lambda* = phi sigma^2 / ||w*||^2, phi = d / T (the clean optimum).

    eigenvalues, weight_coefficients_sq: `(d,)` as in `ridge_two_stage`; T, sigma^2: scalars.
    chain_excess_risk: any shape, typically `(G + 1,)`. initial: None, or a starting lambda broadcastable
    to that shape. steps: number of Newton steps (int).
    Returns (lambda_star, total_at_star), two arrays of the shape of `chain_excess_risk`.
    """
    dtype = _float_dtype(
        eigenvalues, weight_coefficients_sq, downstream_samples, downstream_noise_var, chain_excess_risk
    )
    eigenvalues = jnp.asarray(eigenvalues, dtype)
    coefficients = jnp.asarray(weight_coefficients_sq, dtype)
    chain = jnp.asarray(chain_excess_risk, dtype)
    if initial is None:
        start = jnp.full(chain.shape, jnp.nan, dtype)
    else:
        start = jnp.broadcast_to(jnp.log(jnp.asarray(initial, dtype)), chain.shape)
    lam, best = _optimal_ridge(
        eigenvalues,
        coefficients,
        jnp.asarray(downstream_samples, dtype),
        jnp.asarray(downstream_noise_var, dtype),
        chain.reshape(-1),
        start.reshape(-1),
        steps=int(steps),
    )
    return lam.reshape(chain.shape), best.reshape(chain.shape)


@partial(jax.jit, static_argnames=("steps",))
def _optimal_ridge(eigenvalues, coefficients, samples, noise_var, chain, start, *, steps):
    low, high = GRID_DECADES
    # the starting grid is laid out in kappa, where lambda(kappa) = kappa (1 - df_1(kappa)/T) is explicit (no solve)
    grid = jnp.max(eigenvalues) * 10.0 ** jnp.linspace(
        low, high, int(round((high - low) * GRID_PER_DECADE)) + 1, dtype=eigenvalues.dtype
    )
    grid_ridge = jax.vmap(lambda k: k - k * degrees_of_freedom(eigenvalues, k, 1) / samples)(grid)
    grid_terms = jax.vmap(lambda k: _terms_at_kappa(eigenvalues, coefficients, k, samples, noise_var))(grid)

    def one(e_n, x0):
        def objective(log_ridge):
            bias, variance, factor = _two_stage_terms(eigenvalues, coefficients, jnp.exp(log_ridge), samples, noise_var)
            return bias + variance + factor * e_n

        bias, variance, factor = grid_terms
        values = jnp.where(grid_ridge > 0, bias + variance + factor * e_n, jnp.inf)
        best = jnp.log(grid_ridge[jnp.argmin(values)])
        x = _minimise_log(objective, jnp.where(jnp.isnan(x0), best, x0), steps)
        return jnp.exp(x), objective(x)

    return jax.vmap(one)(chain, start)


def adaptive_ridge(*, dim, downstream_samples, downstream_noise_var, chain_excess_risk, weight_norm_sq):
    """Generation-aware ridge for Sigma = I: lambda_n = (d/T) (sigma^2 + sigma_fake_n^2) / ||w*||^2. DERIVED rule.

    Dohmatob, Feng & Kempe 2024 propose regularising according to the number of synthetic generations;
    their exact rule is not available, so this one is derived here from the isotropic B.4 formula.
    With phi = d/T, s = ||w*||^2, e = e_n and a = 1/(1 + kappa) in (0, 1], the B.4 total is
        E(a) = [s (1 - a)^2 + sigma^2 phi a^2 + e a^2 (1 + phi - 2 phi a)] / (1 - phi a^2),
    and since lambda = (1 - a)(1 - phi a)/a, the stationarity condition dE/da = 0 reads exactly
        lambda* = [phi sigma^2 + e (1 + phi - 3 phi a* + phi^2 a*^3)] / s,
    i.e. the chain deviation acts as extra label noise sigma_fake^2 = e (1 + phi - 3 phi a + phi^2 a^3) / phi.
    The rule evaluates this in closed form by ADAPTIVE_REFINEMENTS (= 2) fixed-point steps lambda -> a(lambda)
    -> lambda, starting from the a -> 0 (strong regularisation) value lambda_0 = [phi sigma^2 + e (1 + phi)] / s,
    which with e = n sigma0^2 d/(T0 - d - 1) is theory.md B.5's sigma_fake^2 ~ n sigma0^2 (T + d)/(T0 - d).
    e_n = 0 gives the clean optimum phi sigma^2 / s exactly. In theory.md's table setting (d = 200,
    T = 300, T0 = 400, sigma^2 = sigma0^2 = 0.25, s = 1) the total error at lambda_n exceeds the optimum of
    `optimal_ridge` by at most 0.07% for n <= 20 (0.02% for n in {1, 5, 20}; one fixed-point step: 0.65%;
    lambda_0 alone: 7%; each step divides the gap by about 10, so more steps converge to lambda*).
    ASYMPTOTIC like the formula it optimises.

    dim, downstream_samples (T), downstream_noise_var (sigma^2), weight_norm_sq (s): scalars.
    chain_excess_risk: e_n, any shape, typically `(G + 1,)`. Returns lambda_n of that shape.
    """
    chain = jnp.asarray(chain_excess_risk, _float_dtype(chain_excess_risk, downstream_noise_var, weight_norm_sq))
    phi = dim / downstream_samples
    ridge = (phi * downstream_noise_var + chain * (1.0 + phi)) / weight_norm_sq
    for _ in range(ADAPTIVE_REFINEMENTS):
        a = 1.0 / (1.0 + isotropic_effective_regularization(phi, ridge))
        ridge = (phi * downstream_noise_var + chain * (1.0 + phi - 3.0 * phi * a + phi**2 * a**3)) / weight_norm_sq
    return ridge


# --------------------------------------------------------------------------- power laws (theory.md B.5)


def power_law_spectrum(dim, beta):
    """Eigenvalues l_i = i^-beta, i = 1..d (capacity condition, theory.md B.5). Returns `(d,)`."""
    return jnp.arange(1, dim + 1, dtype=float) ** (-beta)


def source_coefficients_sq(dim, beta, source):
    """c_i^2 proportional to i^(beta - 1 - 2 r beta), normalised to sum 1 (||w*|| = 1), r = `source`.

    The source condition of theory.md B.5: l_i c_i^2 ~ i^(-1 - 2 r beta) for l_i = i^-beta. Returns `(d,)`.
    """
    c2 = jnp.arange(1, dim + 1, dtype=float) ** (beta - 1.0 - 2.0 * source * beta)
    return c2 / jnp.sum(c2)


def power_law_adaptive_exponent(beta, source):
    """ell = beta / (2 r beta + 1): the optimal ridge decays like lambda* ~ (sigma_eff^2 / T)^ell.

    sigma_eff^2 = sigma^2 + sigma_fake^2, sigma_fake^2 ~ n sigma0^2 (T + d)/(T0 - d). DERIVED, ASYMPTOTIC
    (theory.md B.5; Dohmatob, Feng & Kempe 2024's exact exponents are unverified). Scalars or arrays.
    """
    return beta / (2.0 * source * beta + 1.0)


def power_law_rate(beta, source):
    """2 r beta / (2 r beta + 1): E* ~ (sigma_eff^2 / T)^rate at the optimal ridge, the slow rate that
    synthetic generations impose (noiseless real data would allow T^(-2 r beta)). DERIVED, ASYMPTOTIC
    (theory.md B.5). Scalars or arrays."""
    return 2.0 * source * beta / (2.0 * source * beta + 1.0)


# --------------------------------------------------------------------------- over-parameterised chain (B.6)


def minimum_norm_replace(*, dim, samples, noise_var, generations, design, weight_norm_sq=1.0):
    """E||w_k - w*||^2 for a replace chain of min-norm interpolators, d > T + 1, x ~ N(0, I_d). EXACT, DERIVED.

    w_k = X_k^+ Y_k with Y_k = X_k w_{k-1} + noise (variance sigma^2), w_0 = w*; so w_k = P_k w_{k-1} +
    X_k^+ E_k with P_k the projector on the row space of X_k, E P_k = r I, r = T/d, and
    E||X^+ E||^2 = sigma^2 E tr (X X^T)^-1 = v := sigma^2 T / (d - T - 1) (inverse Wishart).
      design "fresh" (new X_k every generation; theory.md B.6, Dohmatob, Feng & Kempe 2024's exponential
        collapse): bias = (1 - r^k) ||w*||^2, variance = v (1 - r^k) / (1 - r) (E||P x||^2 = r ||x||^2
        for any x independent of P, and the noise of generation k is orthogonal in mean to the rest).
      design "fixed" (the same X relabelled every generation): P w_{k-1} = P w* + noise already in the
        row space, so bias = (1 - r) ||w*||^2 for every k >= 1 and variance = k v (noises add up).
    "bias" is the noise-free part E||E[w_k | designs] - w*||^2, "variance" the rest; k = 0 is all zero.
    dim, samples, noise_var, weight_norm_sq: scalars; generations: G (int).
    Returns {"bias", "variance", "total"}, each `(G + 1,)` for k = 0..G.
    """
    if design not in ("fresh", "fixed"):
        raise ValueError(f"design must be 'fresh' or 'fixed', got {design!r}")
    k = np.arange(generations + 1, dtype=float)
    r = samples / dim
    v = noise_var * samples / (dim - samples - 1.0)
    if design == "fresh":
        bias = (1.0 - r**k) * weight_norm_sq
        variance = v * (1.0 - r**k) / (1.0 - r)
    else:
        bias = np.where(k > 0, (1.0 - r) * weight_norm_sq, 0.0)
        variance = v * k
    return {"bias": bias, "variance": variance, "total": bias + variance}


# --------------------------------------------------------------------------- accumulate-subsample limit (A.4)


def subsample_limit_ratio(generations):
    """V_g, g = 0..G: accumulate-subsample risk after g fits relative to one fit, large-sample limit.

    V_0 = 0, V_g = 1 + sum_{j=2}^g (2 - 1/(j-1)) / j^2 + (1 - 1/g) for g >= 1 (V_1..V_5 = 1, 1.75, 2.0833,
    2.2708, 2.3908), increasing to pi^2/2 - 2 ~ 2.9348 (accumulate: sum 1/k^2 -> pi^2/6; replace: g).
    DERIVED, ASYMPTOTIC: the Gaussian-process limit T -> infinity of the mean under Dey & Donoho's
    "subsample" workflow (theory.md A.4), also the OLS limit (B.3). Not a finite-T result: for OLS at
    d = 10, T = 32 the excess risk nears 2.4 by generation 100 (about 5 one-fit errors of 10/21), not 1.4.
    generations: G (int). Returns `(G + 1,)`.
    """
    g = np.arange(generations + 1, dtype=float)
    j = np.arange(2, generations + 1, dtype=float)
    terms = (2.0 - 1.0 / (j - 1.0)) / j**2
    partial_sums = np.concatenate([np.zeros(2, terms.dtype), np.cumsum(terms)])[: generations + 1]
    return np.where(g > 0, 1.0 + partial_sums + 1.0 - 1.0 / np.maximum(g, 1.0), 0.0)
