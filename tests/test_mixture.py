"""The mixture setting's theory (theory.mixture; strong model collapse, Dohmatob et al. 2024): the exact
and proportional test errors of OLS, random-projection and ridge fits on a real/synthetic mixture,
against Monte Carlo with power."""

import math

import numpy as np
import pytest

from tests.helpers import unit_directions, z_of
from theory import mixture as sc
from theory.common import NoTheory, Prediction

Z = 5.0


# -------------------------------------------------------------------------------- strong model collapse


def simulate_mixture(*, dim, samples, synthetic, noise_var, shift, chains, seed, model="ols", width=None):
    """||w_hat - w1||^2 per chain for OLS or the random-projection model on r real + n2 synthetic rows."""
    rng = np.random.default_rng(seed)
    w1 = unit_directions(rng, chains, dim)
    delta = shift * unit_directions(rng, chains, dim)
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
        assert z_of(draws, sc.ols_mixture_error_exact(dim, n, n2, s2, c)) < Z, (dim, n, n2)
    # power: theory.md C.2's approximation is rejected where it is 11% low
    draws = simulate_mixture(dim=3, samples=12, synthetic=3, noise_var=0.0, shift=1.0, chains=12000, seed=2)
    assert z_of(draws, sc.ols_mixture_error(3, 12, 3, 0.0, 1.0)) > Z
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
        assert z_of(draws, exact) < Z, (dim, width, n)
        # power: the N -> infinity limit, and the formula without the residual-noise term, are rejected
        assert z_of(draws, sc.projection_limit(dim, width, n2 / n, 1.0)) > Z
        if width < dim:
            k = width
            naive = exact - k / (n - k - 1) * (1 - k / dim) * (1 + n2 / n)
            assert z_of(draws, naive) > Z
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
        w1, delta = unit_directions(rng, chains, dim), c * unit_directions(rng, chains, dim)
        x = rng.standard_normal((chains, n, dim))
        g = np.einsum("rnd,rne->rde", x, x) / n
        g2 = np.einsum("rnd,rne->rde", x[:, n - n2 :], x[:, n - n2 :]) / n
        xi = np.einsum("rnd,rn->rd", x, rng.standard_normal((chains, n))) / n
        b = np.einsum("rde,re->rd", g, w1) + np.einsum("rde,re->rd", g2, delta) + xi
        w = np.linalg.solve(g + lam * np.eye(dim), b[..., None])[..., 0]
        error = ((w - w1) ** 2).sum(1)
        w0 = (w1 + p * delta) / (1 + lam)
        conditional = ((w0 - w1) ** 2).sum(1)
        assert z_of(conditional, sc.ridge_mixture_limit(lam, p, c)) < Z
        e, e2 = g - np.eye(dim), g2 - p * np.eye(dim)
        first = (
            np.einsum("rde,re->rd", e, w1) + np.einsum("rde,re->rd", e2, delta) + xi - np.einsum("rde,re->rd", e, w0)
        ) / (1 + lam)
        gap = error - conditional - 2 * ((w0 - w1) * first).sum(1)
        assert z_of(gap, 0.0) > Z
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
