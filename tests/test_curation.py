"""Curation by a reward (`reward`, `curation`, `best_of`; Ferbach, Bertrand, Bose & Gidel 2024) as an engine
feature: best-of-K with Bradley-Terry or best choice, and its K -> infinity limit, the tilted law. Exact
theory (our derivations) against simulation with power against plausible wrong formulas, the limits, and
clear errors."""

import numpy as np
import pytest

import theory
from collapse_jax.settings import get_setting
from collapse_jax.simulate import simulate
from collapse_jax.summary import compare

K = 5.0


def _checked(summary, names):
    """Every named metric has exact theory and passes at K standard errors; returns the generations compared."""
    compared = 0
    for name in names:
        entry = summary["metrics"][name]
        assert entry["theory_kind"] == "exact", (name, entry["theory_kind"])
        verdict = compare(entry, K)
        assert verdict["status"] == "pass", (name, verdict)
        compared += verdict["compared"]
    return compared


def _max_z(entry, wrong):
    mean, se = np.asarray(entry["mean"], float), np.asarray(entry["se"], float)
    wrong = np.asarray(wrong, float)
    return float(np.max(np.abs(mean - wrong)[1:] / np.maximum(se[1:], 1e-12)))


@pytest.mark.statistical
@pytest.mark.parametrize("method", ["samples", "sufficient"])
def test_tilted_gaussian_chain_matches_its_exact_theory(method):
    config = dict(dim=2, samples=20, generations=8, chains=3000, seed=3, reward="linear:0.5", curation="tilted")
    summary = simulate("gaussian", dict(config, method=method))
    assert _checked(summary, ("expected_reward", "mean_error_sq", "trace_ratio", "log_det_ratio")) >= 4 * 8
    # power: E ||mu_k||^2 with Sigma_j replaced by its mean (the second moments e_j ignored) is rejected
    a, n, m = np.array([0.5, 0.0]), 19.0, 19.0
    c = n / m
    wrong = [0.0] + [
        2 / 20 * sum(c**j for j in range(k)) + sum(c ** (i + j) * a @ a for i in range(1, k) for j in range(1, k))
        for k in range(1, 9)
    ]
    assert _max_z(summary["metrics"]["mean_error_sq"], wrong) > 2 * K
    # and the reward of the untilted chain (a . mu_0 = 0 throughout) is rejected
    assert _max_z(summary["metrics"]["expected_reward"], np.zeros(9)) > 2 * K


@pytest.mark.statistical
@pytest.mark.parametrize(
    "case",
    [
        dict(best_of=4, curation="bradley-terry"),
        dict(curation="tilted", real_fraction=0.2),
        dict(best_of=3, curation="best", real_fraction=0.3, real_draw="mixture"),
    ],
    ids=["bradley-terry-4", "tilted-real", "best-of-3-mixture"],
)
def test_curated_two_category_chain_matches_its_exact_count_chain(case):
    config = dict(categories=2, law="zipf:1.5", samples=40, generations=8, chains=3000, seed=5, reward="linear:1")
    summary = simulate("discrete", dict(config, **case))
    names = ("expected_reward", "tv_distance", "entropy", "l2_risk", "support_size")
    assert _checked(summary, names) >= 5 * 8
    # power: the K -> infinity (tilted) choice probability used at finite K, or the reverse, is rejected
    other = "tilted" if case["curation"] != "tilted" else "bradley-terry"
    wrong = theory.discrete.predict(
        "expected_reward",
        **{**config, **case, "curation": other, "best_of": 4 if other != "tilted" else 1},
        policy="replace",
        tail_rank=1,
    ).mean
    assert _max_z(summary["metrics"]["expected_reward"], wrong) > 2 * K


@pytest.mark.statistical
def test_bradley_terry_reward_rises_with_k_toward_the_tilted_limit():
    """Finite K has no closed form: simulated, the expected reward rises over generations and with K, and
    stays below the exact K -> infinity curve."""
    base = dict(dim=1, samples=30, generations=5, chains=1000, seed=11, reward="linear:0.5")
    rewards = {
        k: np.asarray(
            simulate("gaussian", dict(base, best_of=k, curation="bradley-terry"))["metrics"]["expected_reward"]["mean"]
        )
        for k in (2, 16)
    }
    limit = simulate("gaussian", dict(base, curation="tilted"))["metrics"]["expected_reward"]
    assert np.all(np.diff(rewards[2][1:]) > 0) and np.all(np.diff(rewards[16][1:]) > 0)
    assert np.all(rewards[2][2:] < rewards[16][2:])
    assert np.all(rewards[16][2:] < np.asarray(limit["theory"])[2:])
    assert simulate("gaussian", dict(base, best_of=16))["metrics"]["expected_reward"]["mean"][-1] > rewards[16][-1]


def test_no_curation_is_the_uncurated_chain_and_its_reward_is_exact():
    base = dict(dim=2, samples=10, generations=4, chains=200, seed=2)
    plain = simulate("gaussian", base)["metrics"]
    rewarded = simulate("gaussian", dict(base, reward="linear:1,2"))["metrics"]
    for name in plain:
        assert np.array_equal(plain[name]["mean"], rewarded[name]["mean"]), name
    assert rewarded["expected_reward"]["theory_kind"] == "exact"
    assert compare(rewarded["expected_reward"], K)["status"] == "pass"


def test_limits():
    """The infinite-sample limits agree with the exact theory as M grows, and the stability condition."""
    a = np.array([0.3, 0.0])
    reward, _ = theory.gaussian.tilted_moments(a, samples=10**7, ddof=1, num_generations=6)
    limit = theory.gaussian.tilted_limit(a, real_fraction=0.0, num_generations=6)
    np.testing.assert_allclose(reward, limit["expected_reward"], atol=1e-6)
    np.testing.assert_allclose(limit["expected_reward"], 0.09 * np.maximum(np.arange(7) - 1, 0), atol=1e-12)
    settling = theory.gaussian.tilted_limit([0.1], real_fraction=0.5, num_generations=400)["expected_reward"]
    assert theory.gaussian.tilted_limit_settles(0.1, 0.5) and abs(settling[-1] - settling[-2]) < 1e-12
    s = (1 - np.sqrt(1 - 4 * 0.5 * 0.01 / 0.25)) / (2 * 0.5 * 0.01 / 0.25)  # the smaller fixed-point root
    np.testing.assert_allclose(settling[-1], 0.1 * 0.5 * s * 0.1 / 0.5, rtol=1e-9)
    assert not theory.gaussian.tilted_limit_settles(0.5, 0.5)
    # two categories: the exact count chain approaches the infinite-sample law as M grows
    p, rewards = np.array([0.7, 0.3]), np.array([0.0, 1.0])
    law = theory.discrete.curated_law_limit(p, rewards, real_fraction=0.2, generations=8)[:, 1]
    gaps = []
    for samples in (50, 500):
        chain = theory.discrete.curated_binary_distribution(
            0.3, rewards, samples, 8, curation="tilted", real_fraction=0.2
        )
        gaps.append(np.max(np.abs(chain[1:] @ (np.arange(samples + 1) / samples) - law[1:])))
    assert gaps[1] < gaps[0] / 5 and gaps[1] < 2e-3


def test_bad_curation_options_are_refused_before_compiling():
    gaussian, discrete = get_setting("gaussian"), get_setting("discrete")
    cases = [
        (gaussian, dict(curation="tilted"), "need a reward"),
        (gaussian, dict(best_of=4), "need a reward"),
        (gaussian, dict(reward="linear:1", curation="tilted", best_of=4), "best_of must be 1"),
        (gaussian, dict(reward="quadratic:1"), "reward \\(--reward\\) must be none or linear"),
        (gaussian, dict(reward="linear:1,2,3", dim=2), "2 numbers"),
        (gaussian, dict(reward="linear:nan"), "finite"),
        (gaussian, dict(metrics="mean_error_sq,expected_reward"), "expected_reward needs a reward"),
        (gaussian, dict(reward="linear:1", best_of=2, method="sufficient"), "method \\(--method\\) must be 'samples'"),
        (discrete, dict(reward="linear:1,2", categories=3), "3 numbers"),
        (discrete, dict(curation="bradley-terry"), "need a reward"),
        (gaussian, dict(reward="linear:1", curation="softmax"), "curation"),
    ]
    for definition, overrides, message in cases:
        with pytest.raises(ValueError, match=message):
            definition.resolve(overrides)
    assert gaussian.resolve(dict(reward="linear:1", best_of=2, method="auto"))["method"] == "samples"
    assert gaussian.resolve(dict(reward="linear:1", curation="tilted", method="auto"))["method"] == "sufficient"


def test_categorical_reweighting_is_the_tempered_and_the_tilted_law():
    """`reweighted_law` (the categorical's temper and tilt): q^(1/tau) e^r / Z in integer tickets, each
    probability within float32 rounding (relative 1e-6) and the tickets' 2^-30 of the exact one."""
    import jax.numpy as jnp

    from collapse_jax.models.discrete.model import category_reward, make_categorical

    counts = np.array([50, 30, 15, 5, 0])
    estimator = make_categorical(5)
    params = estimator.fit(None, jnp.repeat(jnp.arange(5), jnp.asarray(counts)), jnp.ones(100))
    q = counts / 100

    def law(p):
        return np.diff(np.concatenate([[0], np.asarray(p.tickets)])) / float(p.tickets[-1])

    tempered = q ** (1 / 0.7)
    np.testing.assert_allclose(law(estimator.temper(params, 0.7)), tempered / tempered.sum(), rtol=1e-6, atol=2**-30)
    rewards = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    tilted = q * np.exp(rewards)
    reward = category_reward(rewards)
    np.testing.assert_allclose(law(reward.tilt(params)), tilted / tilted.sum(), rtol=1e-6, atol=2**-30)
    assert float(reward.expected(params)) == pytest.approx(q @ rewards, rel=1e-6)
