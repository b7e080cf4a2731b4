"""Verification theory (theory.verification, theory.md E) and strong model collapse (theory.mixture,
theory.md C): exact formulas against small independent NumPy Monte Carlo runs (fixed seeds, 5 standard
errors computed from the draws), each with a deliberately wrong formula rejected by the same check; the
asymptotic formulas converge as N grows; the published check tables; input errors and NoTheory."""

import math

import numpy as np
import pytest

from tests.helpers import unit_directions, z_of
from theory import verification as tv
from theory.common import NoTheory, Prediction

Z = 5.0


def _ndtr(x):
    return 0.5 * np.vectorize(math.erfc)(-np.asarray(x, np.float64) / math.sqrt(2))


# ------------------------------------------------------------------ Monte Carlo: one verified generation


def simulate_verified(*, dim, mean_norm, samples, real, eps, phi, rho, budget="refill", best_of=1, chains=2000, seed=0):
    """(accuracy, kept_fraction, p_star) per chain `(chains,)` of generation 2 with the oracle labeller as
    model 1: fresh (x, y), label y flipped with probability eps, oracle verifier (phi, rho), mean classifier
    on the r real plus the selected synthetic points. Every candidate gets its own x."""
    rng = np.random.default_rng(seed)
    mu = mean_norm * unit_directions(rng, chains, dim)
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
        assert z_of(draws, float(pred.mean[2])) < Z, (metric, draws.mean(), float(pred.mean[2]))
        # the predicted per-chain std agrees with the draws' (within 10% + noise)
        assert float(pred.std[2]) == pytest.approx(draws.std(), rel=0.1, abs=2e-3), metric
    # power: the same check rejects the law that ignores the verifier (p* = 1 - eps, everything kept)
    c = dict(case)
    wrong = tv.accuracy_mean_classifier(
        dim=c["dim"], mean_norm=c["mean_norm"], samples=c["samples"], label_noise=c["eps"], real_count=c["real"]
    )
    assert z_of(accuracy, wrong) > Z


def test_generation_zero_and_one_and_fitted_generator():
    args = _predict_args(CASES["refill"])
    pred = tv.predict("accuracy", **args)
    assert float(pred.mean[0]) == pytest.approx(tv.bayes_accuracy(1.0), abs=1e-7) and float(pred.mean[1]) == 1.0
    for metric in ("kept_fraction", "p_star"):
        assert np.allclose(tv.predict(metric, **args).mean[:2], 1.0)
    # fitted model 1: the mean classifier on N real points, against Monte Carlo, with power
    rng = np.random.default_rng(7)
    dim, m, n, chains = 12, 0.7, 25, 4000
    mu = m * unit_directions(rng, chains, dim)
    y = rng.choice([-1.0, 1.0], size=(chains, n))
    x = y[..., None] * mu[:, None, :] + rng.standard_normal((chains, n, dim))
    w = np.einsum("rn,rnd->rd", y, x) / n
    acc = _ndtr(np.einsum("rd,rd->r", w, mu) / np.linalg.norm(w, axis=1))
    pred = tv.predict(
        "accuracy", dim=dim, mean_norm=m, samples=n, generations=1, label_noise=0.3, verifier="none", generator="fitted"
    )
    assert pred.mean.shape == (2,) and z_of(acc, float(pred.mean[1])) < Z
    assert float(pred.std[1]) == pytest.approx(acc.std(), rel=0.1)
    assert z_of(acc, float(tv.accuracy_given_counts(dim, m, n // 2, n // 2))) > Z  # power: half the points is rejected


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
        assert z_of(acc, float(exact)) < Z and z_of(acc**2, float(second)) < Z, (dim, n, good)
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
        assert z_of(draws, mean) < Z and std == pytest.approx(draws.std(), rel=0.05)
        assert mean > alpha and z_of(draws, alpha) > Z
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


def test_remembered_moments_equal_a_fresh_quadrature_and_stay_bounded(monkeypatch):
    """The per-point table behind `_angle_moments` changes no value (a point met again, inside another
    batch, gives the same numbers as the quadrature alone) and empties itself at its limit."""
    delta = np.array([0.0, 0.3, 2.5, 7.0])
    fresh = tv._quadrature_moments(20, 1.0, delta)
    tv._angle_moments(20, 1.0, np.array([2.5, 11.0]))  # part of the points remembered from another batch
    remembered = tv._angle_moments(20, 1.0, delta.reshape(2, 2))
    for a, b in zip(fresh, remembered):
        np.testing.assert_array_equal(a, b.ravel())
    monkeypatch.setattr(tv, "_MOMENTS_LIMIT", 5)
    tv._angle_moments(20, 1.0, np.linspace(20.0, 21.0, 4))
    assert sum(map(len, tv._MOMENTS.values())) <= 5
