"""Diffusion with an exact score (Khelifa, Turner & Venkataramanan 2026): the `diffusion` setting is a KDE of
bandwidth sqrt(t0). The exact finite-M moment recursion (our derivation, theory.diffusion) against
simulation, with power against plausible wrong recursions; the paper's M -> infinity limit against the
recursion at large M and its NLL quadrature against Monte Carlo; one program across t0; clear errors."""

import numpy as np
import pytest

import theory
from collapse_jax.settings import get_setting
from collapse_jax.simulate import simulate
from collapse_jax.summary import compare
from theory import diffusion

K = 5.0


def _wrong_variance(*, samples, real_fraction, t0, generations, extra_t0=True, bessel=True):
    """E variance_k from a deliberately wrong recursion: the synthetic points' variance without the
    kernel's t0 (`extra_t0=False`), or the spread without the factor (1 - 1/M) (`bessel=False`)."""
    M, r = samples, theory.common.real_count(samples, real_fraction)
    a, shrink = r / M, (1 - 1 / M) if bessel else 1.0
    s, m = [1.0 - t0, shrink], [0.0, 1.0 / M]
    for k in range(1, generations):
        spread = a + (1 - a) * (s[k] + (t0 if extra_t0 else 0.0))
        s.append(shrink * spread + a * (1 - a) * m[k])
        m.append((1 - a) ** 2 * m[k] + spread / M)
    return np.asarray(s) + t0


@pytest.mark.statistical
@pytest.mark.parametrize(
    "case",
    [
        dict(real_fraction=0.0, t0=0.2, dim=2, samples=10),
        dict(real_fraction=0.3, t0=0.05, dim=3, samples=10),
        dict(real_fraction=0.5, t0=1.0, dim=1, samples=7),
    ],
    ids=["no-real", "alpha0.3-d3", "alpha0.5-d1-odd-M"],
)
def test_exact_recursion_matches_simulation_and_wrong_ones_are_rejected(case):
    summary = simulate(
        "diffusion",
        dict(case, generations=8, chains=2500, seed=11, test_points=8, metrics="variance,mean_error_sq,held_out_nll"),
    )
    metrics = summary["metrics"]
    for name in ("variance", "mean_error_sq"):
        verdict = compare(metrics[name], K)
        assert metrics[name]["theory_kind"] == "exact"
        assert verdict["status"] == "pass" and verdict["compared"] == 9, (name, verdict)
    assert metrics["held_out_nll"]["theory_kind"] is None  # no finite-M closed form
    assert "held_out_nll_limit" in metrics["held_out_nll"]["theory_note"]
    mean, se = np.asarray(metrics["variance"]["mean"], float), np.asarray(metrics["variance"]["se"], float)
    assert mean[0] == pytest.approx(1.0) and metrics["mean_error_sq"]["mean"][0] == 0.0  # generation 0: the law
    plain = dict(samples=case["samples"], real_fraction=case["real_fraction"], t0=case["t0"], generations=8)
    for wrong in (dict(extra_t0=False), dict(bessel=False)):  # power: each plausible slip is rejected
        z = np.abs(mean - _wrong_variance(**plain, **wrong))[1:] / se[1:]
        assert np.max(z) > 2 * K, wrong


def test_metrics_of_one_model_against_numpy():
    """`variance` and `mean_error_sq` of a weighted KDE against a direct NumPy computation."""
    import jax.numpy as jnp

    from collapse_jax.models.kde.model import KDEParams, kde_moments

    rng = np.random.default_rng(0)
    points, weights = rng.normal(size=(30, 3)), rng.uniform(size=30) * (rng.uniform(size=30) > 0.2)
    real_mean = np.array([0.1, -0.2, 0.3])
    got = kde_moments(KDEParams(jnp.asarray(points), jnp.asarray(weights), jnp.asarray(0.5)), real_mean)
    mean = weights @ points / weights.sum()
    spread = weights @ np.sum((points - mean) ** 2, axis=1) / weights.sum()
    np.testing.assert_allclose(float(got["variance"]), spread / 3 + 0.25, rtol=1e-5)
    np.testing.assert_allclose(float(got["mean_error_sq"]), np.sum((mean - real_mean) ** 2), rtol=1e-5)


def test_a_sweep_over_t0_is_one_program():
    definition = get_setting("diffusion")
    assert "t0" in definition.traced_for(definition.resolve({}))
    base = dict(samples=20, generations=4, real_fraction=0.2)
    keys = {definition.program_key(definition.resolve(dict(base, t0=t0))) for t0 in (1e-3, 0.1, 3.0)}
    assert len(keys) == 1
    assert definition.program_key(definition.resolve(dict(base, dim=3))) not in keys


@pytest.mark.parametrize("value", [0.0, -1.0, 1e-7, 2e4, float("nan"), float("inf")])
def test_bad_t0_is_refused_with_its_range(value):
    with pytest.raises(ValueError, match=r"t0 \(--t0\) must be (a (finite )?number )?in \[1e-06, 10000\]"):
        get_setting("diffusion").resolve(dict(t0=value))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(dataset="moons", dim=3), r"dim \(--dim\) must be 2 with the 2-D dataset moons"),
        (dict(dataset="swiss_roll", dim=1), r"dim \(--dim\) must be 2"),
        (dict(dataset="mnist"), r"dataset \(--dataset\) must be one of gaussian, blobs"),
        (dict(dim=65), r"dim \(--dim\) must be an integer in \[1, 64\]"),
        (dict(method="sufficient"), r"method \(--method\) must be 'samples' for the diffusion setting"),
    ],
)
def test_bad_combinations_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_setting("diffusion").resolve(overrides)


def test_the_kde_setting_still_takes_only_its_2d_datasets():
    with pytest.raises(ValueError, match=r"dataset \(--dataset\) must be one of blobs"):
        get_setting("kde").resolve(dict(dataset="gaussian"))


@pytest.mark.statistical
def test_2d_dataset_follows_the_same_recursion():
    """The recursion involves only the real law's mean and trace: on moons (mean (1/2, 1/4)) it holds with
    the law's variance; the chain starts at the law's exact moments (generation 0); no NLL limit there."""
    from collapse_jax.datasets import law_moments

    config = dict(dataset="moons", t0=0.02, samples=12, generations=6, chains=3000, real_fraction=0.25)
    summary = simulate("diffusion", dict(config, test_points=50))
    for name in ("variance", "mean_error_sq"):
        assert compare(summary["metrics"][name], K)["status"] == "pass", name
    assert summary["metrics"]["variance"]["mean"][0] == pytest.approx(law_moments("moons")[1], rel=1e-6)
    assert isinstance(diffusion.predict_limit("held_out_nll", **config), theory.NoTheory)
    for name in ("gaussian", "blobs", "circles", "moons", "swiss_roll"):  # theory's own copy of the variances
        assert diffusion.law_variance(name, 0.3) == pytest.approx(law_moments(name, 0.3, dim=2)[1], rel=1e-12)


@pytest.mark.statistical
def test_law_moments_of_the_2d_datasets_against_samples():
    import jax

    from collapse_jax.datasets import NAMES, law_moments, make_dataset

    for name in NAMES:
        x = np.asarray(make_dataset(name).sample(jax.random.key(3), 400_000), float)
        mean, variance = law_moments(name)
        se_mean = x.std(axis=0) / np.sqrt(len(x))
        assert np.all(np.abs(x.mean(axis=0) - mean) < K * se_mean), name
        per_point = np.sum((x - mean) ** 2, axis=1) / 2
        assert abs(per_point.mean() - variance) < K * per_point.std() / np.sqrt(len(x)), name


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 1.0])
def test_the_limit_is_the_recursion_at_large_samples(alpha):
    common = dict(real_fraction=alpha, t0=0.3, noise=1.5, generations=40)
    variance, error = diffusion.exact_moments(samples=10**9, dim=3, **common)
    limit = diffusion.variance_limit(**common)
    np.testing.assert_allclose(variance, limit, atol=1e-6)
    assert np.max(error) < 1e-6
    for k in (1, 2, 7, 40):  # the paper's mixture has the limit's variance
        weights, units = diffusion.limit_mixture(k, real_fraction=alpha)
        assert weights.sum() == pytest.approx(1.0)
        assert weights @ (1.5**2 + 0.3 * units) == pytest.approx(limit[k], rel=1e-12)
    if alpha > 0:
        stationary = diffusion.stationary_variance(real_fraction=alpha, t0=0.3, noise=1.5)
        assert stationary == pytest.approx(1.5**2 + 0.3 / alpha)
        assert diffusion.variance_limit(**dict(common, generations=3000))[-1] == pytest.approx(stationary)


@pytest.mark.statistical
@pytest.mark.parametrize("dim, noise, generation", [(1, 1.0, 6), (3, 0.7, 3), (16, 2.0, 12)])
def test_nll_quadrature_matches_monte_carlo(dim, noise, generation):
    """The limit NLL (quadrature over |x|) against a Monte Carlo cross-entropy of the paper's mixture."""
    alpha, t0 = 0.2, 0.4
    weights, units = diffusion.limit_mixture(generation, real_fraction=alpha)
    variances = noise**2 + t0 * units
    x = noise * np.random.default_rng(dim).normal(size=(400_000, dim))
    sq = np.sum(x**2, axis=1)[:, None]
    log_terms = np.log(weights) - 0.5 * dim * np.log(2 * np.pi * variances) - sq / (2 * variances)
    nll = -np.logaddexp.reduce(log_terms, axis=1)
    limit = diffusion.held_out_nll_limit(real_fraction=alpha, t0=t0, noise=noise, dim=dim, generations=generation)
    assert abs(nll.mean() - limit[-1]) < K * nll.std() / np.sqrt(len(nll))
    assert limit[0] == pytest.approx(0.5 * dim * np.log(2 * np.pi * np.e * noise**2), rel=1e-12)
    one = 0.5 * dim * (np.log(2 * np.pi * (noise**2 + t0)) + noise**2 / (noise**2 + t0))  # model 1: one Gaussian
    assert limit[1] == pytest.approx(one, rel=1e-10)


def test_theory_kinds_and_no_theory():
    config = dict(t0=0.1, samples=50, generations=5, dim=2)
    assert diffusion.predict("variance", **config).kind == "exact"
    assert isinstance(diffusion.predict("held_out_nll", **config), theory.NoTheory)
    assert diffusion.predict_limit("held_out_nll", **config).kind == "limit"
    for other in (
        dict(policy="accumulate"),
        dict(real_fraction=0.3, real_draw="mixture"),
        dict(real_fraction=0.3, real_source="original"),
        dict(shared_real_data=True),
    ):
        assert isinstance(theory.PREDICTORS["diffusion"]("variance", **config, **other), theory.NoTheory), other
    weighted = theory.PREDICTORS["diffusion"]("variance", **config, real_fraction=0.5, real_weight=0.6)
    assert isinstance(weighted, theory.NoTheory)


@pytest.mark.slow
@pytest.mark.statistical
def test_held_out_nll_approaches_the_limit_at_large_samples():
    """At M = 4000 the simulated NLL is within 0.01 nats of the paper's limit at every generation, and a
    limit that forgets the smoothing accumulated over generations (model k = p0 * N(0, t0)) is rejected."""
    base = dict(t0=0.2, real_fraction=0.3, dim=2, generations=6)
    summary = simulate("diffusion", dict(base, samples=4000, chains=40, test_points=2000, metrics="held_out_nll"))
    entry = summary["metrics"]["held_out_nll"]
    mean, se = np.asarray(entry["mean"], float), np.asarray(entry["se"], float)
    limit = diffusion.held_out_nll_limit(real_fraction=0.3, t0=0.2, dim=2, generations=6)
    assert np.all(np.abs(mean - limit)[1:] < 0.01 + K * se[1:])
    forgetful = np.full(7, limit[1])
    assert np.max(np.abs(mean - forgetful)[2:] / se[2:]) > 2 * K
