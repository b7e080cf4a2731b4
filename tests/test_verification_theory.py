"""Verification theory (theory.verification, theory.md E) and strong model collapse (theory.mixture,
theory.md C): exact formulas against small independent NumPy Monte Carlo runs (fixed seeds, 5 standard
errors computed from the draws), each with a deliberately wrong formula rejected by the same check; the
asymptotic formulas converge as N grows; the published check tables; input errors and NoTheory."""

import math

import numpy as np
import pytest

from theory import mixture as sc
from theory import verification as tv
from theory.common import NoTheory, Prediction

Z = 5.0


def _z(draws, value):
    """|mean - value| / SE of the draws (SE from the draws)."""
    draws = np.asarray(draws, np.float64)
    se = draws.std(ddof=1) / math.sqrt(draws.size)
    gap = abs(draws.mean() - value)
    if se <= 1e-12:  # constant draws (e.g. the kept fraction 1/K of best-of-K): equal up to float32 rounding
        return 0.0 if gap <= 1e-6 * max(1.0, abs(value)) else math.inf
    return gap / se


def _ndtr(x):
    return 0.5 * np.vectorize(math.erfc)(-np.asarray(x, np.float64) / math.sqrt(2))


def _directions(rng, chains, dim):
    v = rng.standard_normal((chains, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ------------------------------------------------------------------ Monte Carlo: one verified generation


def simulate_verified(*, dim, mean_norm, samples, real, eps, phi, rho, budget="refill", best_of=1, chains=2000, seed=0):
    """(accuracy, kept_fraction, p_star) per chain `(chains,)` of generation 2 with the oracle labeller as
    model 1: fresh (x, y), label y flipped with probability eps, oracle verifier (phi, rho), mean classifier
    on the r real plus the selected synthetic points. Every candidate gets its own x."""
    rng = np.random.default_rng(seed)
    mu = mean_norm * _directions(rng, chains, dim)
    m = samples - real

    def candidates(shape):
        y = rng.choice([-1.0, 1.0], size=shape)
        centre = mu.reshape((chains,) + (1,) * (len(shape) - 1) + (dim,))
        x = y[..., None] * centre + rng.standard_normal(shape + (dim,))
        correct = rng.random(shape) >= eps
        label = np.where(correct, y, -y)
        keep_prob = np.where(correct, phi, rho)
        return x, label, correct, keep_prob

    total = np.zeros((chains, dim))
    if real:  # real points, correct labels
        y = rng.choice([-1.0, 1.0], size=(chains, real))
        x = y[..., None] * mu[:, None, :] + rng.standard_normal((chains, real, dim))
        total += np.einsum("rn,rnd->rd", y, x)
    kept = np.zeros(chains)
    good = np.zeros(chains)
    proposed = np.zeros(chains)
    if best_of > 1:
        x, label, correct, keep_prob = candidates((chains, m, best_of))
        pick = np.argmax(keep_prob, axis=2)  # the first among ties
        take = lambda a: np.take_along_axis(a, pick[..., None], axis=2)[..., 0]
        xs = np.take_along_axis(x, pick[..., None, None], axis=2)[:, :, 0, :]
        total += np.einsum("rn,rnd->rd", take(label), xs)
        kept[:], good[:], proposed[:] = m, take(correct).sum(1), m * best_of
    elif budget == "prune":
        x, label, correct, keep_prob = candidates((chains, m))
        keep = rng.random((chains, m)) < keep_prob
        total += np.einsum("rn,rnd->rd", label * keep, x)
        kept[:], good[:], proposed[:] = keep.sum(1), (keep & correct).sum(1), m
    else:  # refill: rounds of candidates until m are kept, counting proposals up to the last one kept
        alpha = phi * (1 - eps) + rho * eps
        batch = int(m / alpha * 1.3) + 20
        while np.any(kept < m):
            x, label, correct, keep_prob = candidates((chains, batch))
            keep = rng.random((chains, batch)) < keep_prob
            need = (m - kept)[:, None]
            running = np.cumsum(keep, axis=1)
            use = keep & (running <= need)
            total += np.einsum("rn,rnd->rd", label * use, x)
            done = running[:, -1] >= need[:, 0]
            last = np.argmax(running >= need, axis=1)  # index of the m-th kept (where done)
            proposed += np.where(need[:, 0] == 0, 0, np.where(done, last + 1, batch))
            good += (use & correct).sum(1)
            kept += use.sum(1)
    n = real + kept
    w = total / np.maximum(n, 1)[:, None]
    norm = np.linalg.norm(w, axis=1)
    accuracy = np.where(n > 0, _ndtr(np.einsum("rd,rd->r", w, mu) / np.where(norm > 0, norm, 1.0)), 0.5)
    share = np.where(kept > 0, good / np.maximum(kept, 1), 0.0)
    return accuracy, kept / proposed, share


CASES = {
    "refill": dict(dim=10, mean_norm=1.0, samples=40, real=0, eps=0.4, phi=0.9, rho=0.3, budget="refill"),
    "prune-real": dict(dim=6, mean_norm=0.8, samples=30, real=6, eps=0.55, phi=0.8, rho=0.4, budget="prune"),
    "prune-tiny": dict(dim=3, mean_norm=1.2, samples=4, real=0, eps=0.3, phi=0.3, rho=0.2, budget="prune"),
    "best-of-3": dict(dim=8, mean_norm=1.0, samples=30, real=3, eps=0.45, phi=0.7, rho=0.2, best_of=3),
    "best-of-2-adverse": dict(dim=5, mean_norm=1.5, samples=20, real=0, eps=0.2, phi=0.2, rho=0.7, best_of=2),
}


def _predict_args(case):
    c = dict(case)
    return dict(
        dim=c["dim"],
        mean_norm=c["mean_norm"],
        samples=c["samples"],
        generations=2,
        label_noise=c["eps"],
        verifier=f"oracle:{c['phi']},{c['rho']}",
        verified_budget=c.get("budget", "refill"),
        best_of=c.get("best_of", 1),
        real_fraction=c["real"] / c["samples"],
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_predict_matches_monte_carlo_with_power(name):
    case = CASES[name]
    accuracy, kept, share = simulate_verified(**case, chains=2500, seed=sorted(CASES).index(name))
    for metric, draws in (("accuracy", accuracy), ("kept_fraction", kept), ("p_star", share)):
        pred = tv.predict(metric, **_predict_args(case))
        assert isinstance(pred, Prediction) and pred.kind == "exact" and pred.mean.shape == (3,)
        assert _z(draws, float(pred.mean[2])) < Z, (metric, draws.mean(), float(pred.mean[2]))
        # the predicted per-chain std agrees with the draws' (within 10% + noise)
        assert float(pred.std[2]) == pytest.approx(draws.std(), rel=0.1, abs=2e-3), metric
    # power: the same check rejects the law that ignores the verifier (p* = 1 - eps, everything kept)
    c = dict(case)
    wrong = tv.accuracy_mean_classifier(
        dim=c["dim"], mean_norm=c["mean_norm"], samples=c["samples"], label_noise=c["eps"], real_count=c["real"]
    )
    assert _z(accuracy, wrong) > Z


def test_generation_zero_and_one_and_fitted_generator():
    args = _predict_args(CASES["refill"])
    pred = tv.predict("accuracy", **args)
    assert float(pred.mean[0]) == pytest.approx(tv.bayes_accuracy(1.0), abs=1e-7) and float(pred.mean[1]) == 1.0
    for metric in ("kept_fraction", "p_star"):
        assert np.allclose(tv.predict(metric, **args).mean[:2], 1.0)
    # fitted model 1: the mean classifier on N real points, against Monte Carlo, with power
    rng = np.random.default_rng(7)
    dim, m, n, chains = 12, 0.7, 25, 4000
    mu = m * _directions(rng, chains, dim)
    y = rng.choice([-1.0, 1.0], size=(chains, n))
    x = y[..., None] * mu[:, None, :] + rng.standard_normal((chains, n, dim))
    w = np.einsum("rn,rnd->rd", y, x) / n
    acc = _ndtr(np.einsum("rd,rd->r", w, mu) / np.linalg.norm(w, axis=1))
    pred = tv.predict(
        "accuracy", dim=dim, mean_norm=m, samples=n, generations=1, label_noise=0.3, verifier="none", generator="fitted"
    )
    assert pred.mean.shape == (2,) and _z(acc, float(pred.mean[1])) < Z
    assert float(pred.std[1]) == pytest.approx(acc.std(), rel=0.1)
    assert _z(acc, float(tv.accuracy_given_counts(dim, m, n // 2, n // 2))) > Z  # power: half the points is rejected


def test_accuracy_given_counts_against_the_sufficient_statistic():
    """The quadrature against direct draws of w = (S/n) mu + N(0, I/n), small d included; n = 0 gives 1/2."""
    rng = np.random.default_rng(3)
    for dim, m, n, good in [(1, 1.0, 5, 3), (2, 0.7, 9, 6), (3, 1.5, 4, 1), (40, 1.0, 30, 20), (2, 1.0, 7, 7)]:
        chains = 100000
        s = 2 * good - n
        along = m * s / n + rng.standard_normal(chains) / math.sqrt(n)
        across = rng.chisquare(dim - 1, chains) / n if dim > 1 else np.zeros(chains)
        acc = _ndtr(m * along / np.sqrt(along**2 + across))
        exact, second = tv.accuracy_given_counts(dim, m, n, good, second_moment=True)
        assert _z(acc, float(exact)) < Z and _z(acc**2, float(second)) < Z, (dim, n, good)
    assert float(tv.accuracy_given_counts(5, 1.0, 0, 0)) == 0.5
    # symmetry, the interpolated path (many distinct delta) against direct evaluation, the mass of the rule
    sizes = np.arange(1, 400)
    goods = (sizes * 0.7).astype(int)
    many = tv.accuracy_given_counts(7, 1.0, sizes, goods)
    few = np.array([float(tv.accuracy_given_counts(7, 1.0, k, g)) for k, g in zip(sizes[::37], goods[::37])])
    np.testing.assert_allclose(many[::37], few, atol=1e-12)
    flipped = tv.accuracy_given_counts(7, 1.0, sizes, sizes - goods)
    np.testing.assert_allclose(flipped, 1 - many, atol=1e-12)
    for dim in (2, 3, 50):
        _, _, mass = tv._angle_moments(dim, 1.0, np.array([0.0, 0.5, 4.0, 60.0]))
        np.testing.assert_allclose(mass, 1.0, atol=1e-12)


def test_kept_fraction_refill_series_and_jensen_gap():
    """E[m/T] (T negative binomial) against its integral form m int_0^1 s^-1 (alpha s/(1-(1-alpha)s))^m ds and
    against direct draws; alpha itself (the prune value) is rejected by the same check."""
    nodes, weights = np.polynomial.legendre.leggauss(200)
    s, ws = 0.5 * (nodes + 1), 0.5 * weights
    rng = np.random.default_rng(11)
    for m, eps, phi, rho in [(1, 0.4, 0.5, 0.5), (5, 0.6, 0.6, 0.2), (40, 0.2, 0.9, 0.1)]:
        alpha = tv.keep_probability(eps, phi, rho)
        mean, std = tv.kept_fraction(eps, phi, rho, verified_budget="refill", synthetic_count=m, return_std=True)
        integral = m * float(ws @ ((alpha * s / (1 - (1 - alpha) * s)) ** m / s))
        assert mean == pytest.approx(integral, abs=1e-11)
        draws = m / (m + rng.negative_binomial(m, alpha, size=40000))
        assert _z(draws, mean) < Z and std == pytest.approx(draws.std(), rel=0.05)
        assert mean > alpha and _z(draws, alpha) > Z
    assert tv.kept_fraction(0.3, 0.9, 0.2, verified_budget="prune", synthetic_count=9) == pytest.approx(0.69)
    assert tv.kept_fraction(0.3, 0.9, 0.2, best_of=4, synthetic_count=9) == 0.25
    assert tv.kept_fraction(0.3, 1.0, 1.0, verified_budget="refill", synthetic_count=9) == 1.0


def test_p_star_formulas_and_check_table():
    assert tv.p_star(0.3, 0.9, 0.1) == pytest.approx(0.63 / 0.66)
    table = {(0.3, 0.9, 0.1): 0.955, (0.6, 0.9, 0.3): 0.667, (0.6, 0.5, 0.5): 0.400, (0.45, 0.5, 0.5): 0.550}
    for (eps, phi, rho), value in table.items():
        assert tv.p_star(eps, phi, rho) == pytest.approx(value, abs=6e-4)
    for phi, rho in [(0.9, 0.1), (0.5, 0.5), (0.3, 0.6), (1.0, 0.2)]:
        assert tv.p_star(tv.critical_label_noise(phi, rho), phi, rho) == pytest.approx(0.5)
    assert tv.p_star(0.3, 0.9, 0.1, best_of=3) == pytest.approx(1 - 0.3**3)
    assert tv.p_star(0.3, 0.5, 0.5, best_of=3) == pytest.approx(0.7)
    assert tv.p_star(0.3, 0.1, 0.9, best_of=3) == pytest.approx(0.7**3)
    assert tv.p_star(0.3, 0.0, 0.0, best_of=2) == pytest.approx(0.7)  # ties: the first candidate
    # prune: the share is 0 when nothing is kept, so its mean is p* P(kept > 0)
    mean, _ = tv.p_star_metric(0.3, 0.2, 0.1, verified_budget="prune", synthetic_count=3)
    assert mean == pytest.approx(tv.p_star(0.3, 0.2, 0.1) * (1 - (1 - 0.17) ** 3))


def test_check_table_e_and_asymptotic_convergence():
    """theory.md E's table (d = 50, ||mu|| = 1, prune, N = 2000): the exact values lie within 2.5 of the table's
    Monte Carlo standard errors, its approximation column is `accuracy_asymptotic` at N_k = alpha N; the
    approximation's error against the exact value shrinks as N grows, and the exact value tends to the limit."""
    rows = [
        ((0.3, 0.9, 0.1), 0.8360, None, 0.8359),
        ((0.6, 0.9, 0.3), 0.7989, 0.0006, 0.7996),
        ((0.6, 0.5, 0.5), 0.2568, 0.0014, 0.2525),
        ((0.45, 0.5, 0.5), 0.6510, 0.0027, 0.6585),
    ]
    for (eps, phi, rho), mc, se, approx in rows:
        p, alpha = tv.p_star(eps, phi, rho), tv.keep_probability(eps, phi, rho)
        assert tv.accuracy_asymptotic(p, dim=50, mean_norm=1.0, samples=alpha * 2000) == pytest.approx(approx, abs=1e-4)
        exact = tv.accuracy_mean_classifier(
            dim=50, mean_norm=1.0, samples=2000, label_noise=eps, phi=phi, rho=rho, verified_budget="prune"
        )
        assert abs(exact - mc) <= (2.5 * se if se else 5e-4), (eps, phi, rho, exact)
    # refill, N = 200 ... 200000: the error is O(1/N) (its sign can change at moderate N, hence the bounds)
    for eps, phi, rho in [(0.6, 0.9, 0.3), (0.3, 0.9, 0.1), (0.6, 0.5, 0.5), (0.45, 0.5, 0.5)]:
        p = tv.p_star(eps, phi, rho)
        sizes, errors, distances = (200, 2000, 20000, 200000), [], []
        limit = tv.accuracy_asymptotic(p, dim=50, mean_norm=1.0)
        for n in sizes:
            exact = tv.accuracy_mean_classifier(dim=50, mean_norm=1.0, samples=n, label_noise=eps, phi=phi, rho=rho)
            errors.append(abs(exact - tv.accuracy_asymptotic(p, dim=50, mean_norm=1.0, samples=n)))
            distances.append(abs(exact - limit))
        assert all(a > b for a, b in zip(distances, distances[1:])), distances
        if abs(p - 0.5) > 0.09:  # p* = 0.55 reaches the 1/N regime only for N (2p* - 1)^2 >> d
            assert errors[2] < errors[0] / 5 and errors[3] < errors[0] / 20, errors
            assert max(n * e for n, e in zip(sizes, errors)) < 3.0, errors
    assert tv.accuracy_asymptotic(0.9, dim=5, mean_norm=1.0) == pytest.approx(0.8413447, abs=1e-7)
    assert tv.accuracy_asymptotic(0.1, dim=5, mean_norm=1.0) == pytest.approx(1 - 0.8413447, abs=1e-7)
    assert tv.accuracy_asymptotic(0.5, dim=5, mean_norm=1.0) == 0.5
    assert tv.accuracy_asymptotic(0.5, dim=5, mean_norm=1.0, samples=10) == 0.5


def test_verification_predict_no_theory_and_errors():
    args = _predict_args(CASES["refill"])
    for change in (
        dict(verifier="linear:0.5"),
        dict(classifier="logistic"),
        dict(classifier="least-squares"),
        dict(generator="fitted"),
        dict(generations=3),
        dict(policy="accumulate"),
    ):
        assert isinstance(tv.predict("accuracy", **{**args, **change}), NoTheory), change
    assert isinstance(tv.predict("p_star", **{**args, "real_fraction": 1.0}), NoTheory)
    assert isinstance(tv.predict("accuracy", **{**args, "generator": "fitted", "generations": 1}), Prediction)
    refill = tv.predict("p_star", **args)
    p = tv.p_star(0.4, 0.9, 0.3)
    assert float(refill.mean[2]) == pytest.approx(p, abs=1e-6)
    assert float(refill.std[2]) == pytest.approx(math.sqrt(p * (1 - p) / 40), abs=1e-6)
    with pytest.raises(ValueError, match="metric"):
        tv.predict("loss", **args)
    with pytest.raises(ValueError, match="verifier"):
        tv.predict("accuracy", **{**args, "verifier": "oracle:0.5"})
    with pytest.raises(ValueError, match="verifier rho"):
        tv.predict("accuracy", **{**args, "verifier": "oracle:0.5,1.5"})
    assert isinstance(tv.predict("accuracy", **{**args, "verified_budget": "all"}), NoTheory)  # not modelled
    with pytest.raises(ValueError, match="label_noise"):
        tv.p_star(1.2, 0.5, 0.5)
    with pytest.raises(ValueError, match="phi"):
        tv.p_star(0.2, -0.1, 0.5)
    with pytest.raises(ValueError, match="> 0"):
        tv.p_star(0.0, 0.0, 0.7)  # nothing is ever kept
    with pytest.raises(ValueError, match="phi \\+ rho"):
        tv.critical_label_noise(0.0, 0.0)
    with pytest.raises(ValueError, match="best_of"):
        tv.p_star(0.2, 0.5, 0.5, best_of=0)
    with pytest.raises(ValueError, match="refill"):
        tv.kept_fraction(0.0, 0.0, 0.5, verified_budget="refill", synthetic_count=3)
    with pytest.raises(ValueError, match="samples"):
        tv.accuracy_asymptotic(0.7, dim=3, mean_norm=1.0, samples=0)
    with pytest.raises(ValueError, match="dim"):
        tv.accuracy_given_counts(0, 1.0, 3, 2)


# -------------------------------------------------------------------------------- strong model collapse


def simulate_mixture(*, dim, samples, synthetic, noise_var, shift, chains, seed, model="ols", width=None):
    """||w_hat - w1||^2 per chain for OLS or the random-projection model on r real + n2 synthetic rows."""
    rng = np.random.default_rng(seed)
    w1 = _directions(rng, chains, dim)
    delta = shift * _directions(rng, chains, dim)
    x = rng.standard_normal((chains, samples, dim))
    y = np.einsum("rnd,rd->rn", x, w1) + math.sqrt(noise_var) * rng.standard_normal((chains, samples))
    y[:, samples - synthetic :] += np.einsum("rnd,rd->rn", x[:, samples - synthetic :], delta)
    if model == "ols":
        w = np.linalg.solve(np.einsum("rnd,rne->rde", x, x), np.einsum("rnd,rn->rd", x, y)[..., None])[..., 0]
    else:
        s = rng.standard_normal((chains, dim, width))
        z = np.einsum("rnd,rdm->rnm", x, s)
        v = np.einsum("rmn,rn->rm", np.linalg.pinv(z, rcond=1e-10), y)  # least squares (minimum norm if m > d)
        w = np.einsum("rdm,rm->rd", s, v)
    return ((w - w1) ** 2).sum(1)


def test_ols_mixture_exact_against_monte_carlo_with_power():
    for dim, n, n2, s2, c, seed in [(10, 40, 12, 1.0, 2.0, 1), (3, 12, 3, 0.0, 1.0, 2), (5, 12, 10, 0.3, 1.0, 3)]:
        draws = simulate_mixture(dim=dim, samples=n, synthetic=n2, noise_var=s2, shift=c, chains=12000, seed=seed)
        assert _z(draws, sc.ols_mixture_error_exact(dim, n, n2, s2, c)) < Z, (dim, n, n2)
    # power: theory.md C.2's approximation is rejected where it is 11% low
    draws = simulate_mixture(dim=3, samples=12, synthetic=3, noise_var=0.0, shift=1.0, chains=12000, seed=2)
    assert _z(draws, sc.ols_mixture_error(3, 12, 3, 0.0, 1.0)) > Z
    assert sc.ols_synthetic_factor(7, 30, 30) == pytest.approx(1.0) and sc.ols_synthetic_factor(7, 30, 0) == 0.0


def test_ols_check_table_c2():
    """theory.md C.2's table: the exact value within 2.5 of its Monte Carlo standard errors, its approximation
    and proportional columns reproduced, and the floor p^2 c^2."""
    rows = [
        (50, 200, 0.2, 0.5, 0.17738, 0.00069, 0.17705, 0.17758),
        (100, 150, 0.3, 0.3, 0.69960, 0.00279, 0.70371, 0.70224),
        (10, 5000, 0.1, 1.0, 0.01217, 0.00005, 0.01217, 0.01218),
        (10, 50000, 0.1, 1.0, 0.01023, 0.00003, 0.01022, None),
    ]
    for dim, n, p, sigma, mc, se, approx, proportional in rows:
        n2 = round(p * n)
        assert abs(sc.ols_mixture_error_exact(dim, n, n2, sigma**2, 1.0) - mc) < 2.5 * se
        assert sc.ols_mixture_error(dim, n, n2, sigma**2, 1.0) == pytest.approx(approx, abs=1e-5)
        if proportional is not None:
            # the table's column evaluates the proportional form with phi/(1-phi) replaced by h = d/(N-d-1)
            h = dim / (n - dim - 1)
            assert sigma**2 * h + p * p + p * (1 - p) * h == pytest.approx(proportional, abs=1e-5)
    assert sc.synthetic_floor(0.1, 1.0) == pytest.approx(0.01)
    # the proportional form is the limit of the exact value at fixed d/N = 0.4
    for scale in (1, 10, 100):
        exact = sc.ols_mixture_error_exact(40 * scale, 100 * scale, 30 * scale, 0.5, 1.0)
        assert exact == pytest.approx(sc.ols_mixture_proportional(0.4, 0.3, 0.5, 1.0), rel=0.05 / scale)
    assert sc.ols_mixture_error_exact(10, 10**7, 10**6, 1.0, 1.0) == pytest.approx(0.01, rel=2e-4)


def test_projection_exact_finite_n_and_limit_with_power():
    for dim, width, n, n2, seed in [(12, 4, 20, 8, 4), (12, 9, 30, 20, 5), (6, 9, 14, 5, 6)]:
        draws = simulate_mixture(
            dim=dim,
            samples=n,
            synthetic=n2,
            noise_var=0.5,
            shift=1.0,
            chains=6000,
            seed=seed,
            model="projection",
            width=width,
        )
        exact = sc.projection_mixture_error(dim, width, n, n2, 0.5, 1.0)
        assert _z(draws, exact) < Z, (dim, width, n)
        # power: the N -> infinity limit, and the formula without the residual-noise term, are rejected
        assert _z(draws, sc.projection_limit(dim, width, n2 / n, 1.0)) > Z
        if width < dim:
            k = width
            naive = exact - k / (n - k - 1) * (1 - k / dim) * (1 + n2 / n)
            assert _z(draws, naive) > Z
    # theory.md C.3's check values (d = 40, p = 0.3, N = infinity), and the exact finite-N value tends to them
    for width, value in [(5, 0.88625), (20, 0.54500), (35, 0.20375)]:
        assert sc.projection_limit(40, width, 0.3, 1.0) == pytest.approx(value, abs=1e-5)
        assert sc.projection_mixture_error(40, width, 10**7, 3 * 10**6, 1.0, 1.0) == pytest.approx(value, rel=1e-4)
    assert sc.projection_limit(10, 30, 0.3, 1.0) == pytest.approx(0.09)
    ols = sc.ols_mixture_error_exact(10, 50, 15, 0.5, 1.0)
    assert sc.projection_mixture_error(10, 30, 50, 15, 0.5, 1.0) == pytest.approx(ols)


def test_ridge_limit_converges_like_one_over_n():
    """Ridge on the mix at N = 200, 2000, 20000 (d = 10, lambda = 0.5, p = 0.3, c = 1, sigma^2 = 1): the gap to
    the N -> infinity limit is positive and N * gap is constant (about 7), so the gap shrinks like 1/N. The
    per-chain conditional limit ||lambda w1 - p Delta||^2/(1+lambda)^2 and the first-order fluctuation
    (mean 0) are subtracted as control variates; their average is checked against the formula."""
    dim, lam, c = 10, 0.5, 1.0
    scaled = []
    for n, chains, seed in [(200, 1000, 0), (2000, 300, 1), (20000, 60, 2)]:
        rng = np.random.default_rng(seed)
        n2 = n - math.floor(0.7 * n + 0.5)
        p = n2 / n
        w1, delta = _directions(rng, chains, dim), c * _directions(rng, chains, dim)
        x = rng.standard_normal((chains, n, dim))
        g = np.einsum("rnd,rne->rde", x, x) / n
        g2 = np.einsum("rnd,rne->rde", x[:, n - n2 :], x[:, n - n2 :]) / n
        xi = np.einsum("rnd,rn->rd", x, rng.standard_normal((chains, n))) / n
        b = np.einsum("rde,re->rd", g, w1) + np.einsum("rde,re->rd", g2, delta) + xi
        w = np.linalg.solve(g + lam * np.eye(dim), b[..., None])[..., 0]
        error = ((w - w1) ** 2).sum(1)
        w0 = (w1 + p * delta) / (1 + lam)
        conditional = ((w0 - w1) ** 2).sum(1)
        assert _z(conditional, sc.ridge_mixture_limit(lam, p, c)) < Z
        e, e2 = g - np.eye(dim), g2 - p * np.eye(dim)
        first = (
            np.einsum("rde,re->rd", e, w1) + np.einsum("rde,re->rd", e2, delta) + xi - np.einsum("rde,re->rd", e, w0)
        ) / (1 + lam)
        gap = error - conditional - 2 * ((w0 - w1) * first).sum(1)
        assert _z(gap, 0.0) > Z
        scaled.append((n * gap.mean(), n * gap.std(ddof=1) / math.sqrt(chains)))
    (a, sa), (b, sb), (cc, sc_) = scaled
    assert abs(b - a) < Z * math.hypot(sa, sb) + 0.1 * a and abs(cc - a) < Z * math.hypot(sa, sc_) + 0.1 * a, scaled


def test_strong_collapse_predict():
    base = dict(dim=10, samples=40, generations=2, synthetic_fraction=0.3, noise_var=1.0, shift=2.0)
    pred = sc.predict("test_error", **base)
    assert pred.kind == "exact" and pred.mean.shape == (3,)
    assert np.allclose(pred.mean, [0.0, 4.0, sc.ols_mixture_error_exact(10, 40, 12, 1.0, 2.0)], rtol=1e-6)
    ridge = sc.predict("test_error", **base, model="ridge:0.5")
    assert ridge.kind == "asymptotic" and "N -> infinity" in ridge.note
    assert float(ridge.mean[2]) == pytest.approx(sc.ridge_mixture_limit(0.5, 0.3, 2.0), rel=1e-6)
    assert sc.predict("test_error", **base, model="ridge:0").kind == "exact"
    proj = sc.predict("test_error", **base, model="projection:4")
    assert proj.kind == "exact"
    assert float(proj.mean[2]) == pytest.approx(sc.projection_mixture_error(10, 4, 40, 12, 1.0, 2.0), rel=1e-6)
    assert sc.predict("test_error", **{**base, "generations": 1}).mean.shape == (2,)
    for change in (dict(generations=3), dict(synthetic_law="gaussian"), dict(policy="accumulate"), dict(samples=11)):
        assert isinstance(sc.predict("test_error", **{**base, **change}), NoTheory), change
    assert isinstance(sc.predict("test_error", **{**base, "samples": 5}, model="projection:3"), Prediction)
    with pytest.raises(ValueError, match="metric"):
        sc.predict("accuracy", **base)
    with pytest.raises(ValueError, match="model"):
        sc.predict("test_error", **base, model="lasso:1")
    with pytest.raises(ValueError, match="samples"):
        sc.ols_mixture_error(10, 11, 3, 1.0, 1.0)
    with pytest.raises(ValueError, match="samples"):
        sc.ols_mixture_error_exact(10, 11, 3, 1.0, 1.0)
    with pytest.raises(ValueError, match="synthetic_count"):
        sc.ols_synthetic_factor(3, 12, 13)
    with pytest.raises(ValueError, match="ridge"):
        sc.ridge_mixture_limit(-1.0, 0.3, 1.0)
    with pytest.raises(ValueError, match="synthetic_fraction"):
        sc.ridge_mixture_limit(1.0, 1.3, 1.0)
    with pytest.raises(ValueError, match="width"):
        sc.projection_limit(10, 0, 0.3, 1.0)
    with pytest.raises(ValueError, match="shift"):
        sc.projection_mixture_error(10, 3, 20, 5, 1.0, -1.0)
    with pytest.raises(ValueError, match="aspect_ratio"):
        sc.ols_mixture_proportional(1.0, 0.3, 1.0, 1.0)
