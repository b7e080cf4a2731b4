"""Theory against itself in float64: recursions vs closed forms, limits, and the published checks."""

import math

import jax
import numpy as np
import pytest

import theory
from theory import gaussian as tg


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("samples", [2, 10, 257])
def test_replace_recursion_equals_closed_form(ddof, samples):
    if samples - ddof <= 0:
        pytest.skip("undefined")
    e, s = tg.first_moments(samples=samples, ddof=ddof, policy="replace", num_generations=50, trace0=3.0)
    e2, s2 = tg.replace_closed_form(samples=samples, ddof=ddof, num_generations=50, trace0=3.0)
    np.testing.assert_allclose(e, e2, rtol=1e-12)
    np.testing.assert_allclose(s, s2, rtol=1e-12)


@pytest.mark.parametrize("ddof", [0, 1])
def test_accumulate_recursion_equals_product_and_limit(ddof):
    e, s = tg.first_moments(samples=10, ddof=ddof, policy="accumulate", num_generations=3000)
    np.testing.assert_allclose(
        s, tg.accumulate_variance_closed_form(samples=10, ddof=ddof, num_generations=3000), rtol=1e-12
    )
    limit = tg.accumulate_variance_limit(samples=10, ddof=ddof)
    assert abs(float(s[-1]) - limit) < 1e-3 * limit  # the product converges like 1/k
    assert float(e[-1]) <= tg.accumulate_mean_error_bound(samples=10)
    # the published values (M = 10): limits 0.843436 (MLE) and 0.935141 (unbiased)
    assert limit == pytest.approx({0: 0.843436, 1: 0.935141}[ddof], abs=1e-6)


def test_accumulate_mean_error_follows_pi2_over_6_pathway():
    # E||mu_t - mu_0||^2 = sigma^2/M + sum_{k>=2} s_{k-1}/(k^2 M): check the sum form and published numbers
    e, s = tg.first_moments(samples=10, ddof=0, policy="accumulate", num_generations=30)
    k = np.arange(2, 31)
    direct = 1 / 10 + np.sum(np.asarray(s)[1:30] / (k**2 * 10))
    assert float(e[30]) == pytest.approx(direct, rel=1e-12)
    assert float(e[30]) == pytest.approx(0.153794, abs=1e-6)
    e1, _ = tg.first_moments(samples=10, ddof=1, policy="accumulate", num_generations=30)
    assert float(e1[30]) == pytest.approx(0.159710, abs=1e-6)
    assert float(e1[30]) < math.pi**2 / 60


def test_one_dimensional_published_values():
    """Shumailov-type chain, M = 10, n = 20 (values checked by 4e5 sample-level recursions)."""
    unb = {
        m: theory.gaussian.predict(m, dim=1, samples=10, ddof=1, policy="replace", generations=20).mean[20]
        for m in ("mean_error_sq", "trace_ratio", "log_det_ratio", "w2_sq")
    }
    mle = {
        m: theory.gaussian.predict(m, dim=1, samples=10, ddof=0, policy="replace", generations=20).mean[20]
        for m in ("mean_error_sq", "trace_ratio", "log_det_ratio", "w2_sq")
    }
    assert float(unb["trace_ratio"]) == pytest.approx(1.0)
    assert float(mle["trace_ratio"]) == pytest.approx(0.12158, abs=1e-5)
    assert float(unb["log_det_ratio"]) == pytest.approx(-2.30413, abs=1e-5)
    assert float(mle["log_det_ratio"]) == pytest.approx(-4.41134, abs=1e-5)
    assert float(unb["mean_error_sq"]) == pytest.approx(2.0)
    assert float(mle["mean_error_sq"]) == pytest.approx(0.87842, abs=1e-5)
    assert float(unb["w2_sq"]) == pytest.approx(2.85120, abs=1e-5)
    assert float(mle["w2_sq"]) == pytest.approx(1.59944, abs=1e-5)
    assert float(tg.expected_sd_ratio(samples=10, ddof=1, num_generations=20)[20]) == pytest.approx(0.57440, abs=1e-5)
    cumulants = tg.log_det_cumulants(dim=1, samples=10, ddof=1, num_generations=20)
    assert float(cumulants[1, 20]) == pytest.approx(4.97450, abs=1e-5)  # Var log sigma^2_n = n psi'(nu/2)


def test_multivariate_published_values():
    cov = np.array([[2, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 0.5]])
    v = tg.trace_second_moments(samples=8, ddof=1, num_generations=10, covariance=cov, dim=3)
    np.testing.assert_allclose(v[:, 10], [98.75, 100.10], atol=0.01)
    log_det = tg.log_det_cumulants(dim=3, samples=8, ddof=1, num_generations=10)[0, 10] + np.log(np.linalg.det(cov))
    assert float(log_det) == pytest.approx(-10.65576, abs=1e-4)
    e, s = tg.first_moments(samples=8, ddof=0, policy="replace", num_generations=10, trace0=3.5)
    assert float(s[10]) / 3.5 * 3.5 == pytest.approx(0.92076, abs=1e-4)
    assert float(e[10]) == pytest.approx(2.57924, abs=1e-4)


def test_second_moment_recursion_is_exact_in_one_dimension():
    # d = 1: E sigma^4_k = sigma^4 (nu (nu + 2) / c^2)^k
    v = tg.trace_second_moments(samples=7, ddof=1, num_generations=12)
    np.testing.assert_allclose(v[0], v[1])
    np.testing.assert_allclose(v[0], (6 * 8 / 36) ** np.arange(13), rtol=1e-12)


def test_log_det_is_minus_infinity_when_singular_and_rate_is_negative():
    cumulants = tg.log_det_cumulants(dim=5, samples=5, ddof=0, num_generations=3)
    assert np.all(np.isneginf(cumulants[0, 1:])) and cumulants[0, 0] == 0
    assert float(tg.log_variance_rate(samples=10, ddof=1)) == pytest.approx(-0.11521, abs=1e-5)
    assert float(tg.log_variance_rate(samples=10, ddof=0)) == pytest.approx(-0.22057, abs=1e-5)
    for m in (5, 10, 100):  # the Markov bound of Suresh et al.: a <= exp(-1/(4M))
        a = float(tg.expected_sd_ratio(samples=m, ddof=1, num_generations=1)[1])
        assert a < math.exp(-1 / (4 * m))


def test_real_fraction_limits():
    # alpha = 1 (all real after generation 1): every fit is an independent real-data fit
    e, s = tg.first_moments(samples=20, ddof=1, policy="replace", num_generations=10, real_fraction=1.0, trace0=2.0)
    np.testing.assert_allclose(e[1:], 2.0 / 20)
    np.testing.assert_allclose(s[1:], 2.0)
    # alpha = 0 reduces to the plain recursions
    for policy in ("replace", "accumulate"):
        a = tg.first_moments(samples=9, ddof=0, policy=policy, num_generations=10, real_fraction=0.0)
        b = tg.first_moments(samples=9, ddof=0, policy=policy, num_generations=10)
        np.testing.assert_allclose(a, b)
    # large M leaves the chain nearly unchanged
    e, s = tg.first_moments(samples=10**7, ddof=0, policy="replace", num_generations=10)
    assert abs(float(s[10]) - 1) < 1e-5 and float(e[10]) < 1e-5


def test_sample_growth_keeps_mean_error_bounded_only_when_superlinear():
    common = dict(samples=100, ddof=1, policy="replace", num_generations=4000)
    e2, _ = tg.first_moments(sample_growth=2.0, **common)
    e1, _ = tg.first_moments(sample_growth=1.0, **common)
    assert float(e2[-1]) < 1.01 * math.pi**2 / 6 / 100  # sum 1/(100 k^2)
    assert float(e1[-1] - e1[400]) == pytest.approx(math.log(10) / 100, rel=0.01)  # harmonic: grows like log k


def test_checkable_mask():
    p = theory.gaussian.predict("trace_ratio", dim=1, samples=100, ddof=1, policy="replace", generations=1000)
    mask = theory.checkable(p.log_relative_variance, 10_000)
    assert mask[:50].all() and not mask[1000]  # k psi'(49.5) = 20 units at k = 1000: not checkable
    acc = theory.gaussian.predict("trace_ratio", dim=1, samples=10, ddof=0, policy="accumulate", generations=50)
    assert acc.log_relative_variance is None


def test_no_theory_is_said_not_faked():
    for metric, kwargs in [
        ("trace_ratio", dict(policy="accumulate-subsample")),
        ("w2_sq", dict(dim=3)),
        ("w2_sq", dict(policy="accumulate")),
        ("log_det_ratio", dict(real_fraction=0.2)),
        ("trace_ratio", dict(real_fraction=0.2, real_source="original")),
        ("trace_ratio", dict(shared_real_data=True)),
    ]:
        config = dict(dim=1, samples=10, ddof=0, policy="replace", generations=5) | kwargs
        assert isinstance(theory.gaussian.predict(metric, **config), theory.NoTheory)
