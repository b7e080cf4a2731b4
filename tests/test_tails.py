"""The tails setting's theory (theory.tails; Dohmatob et al. 2024, A Tale of Tails): the memoriser's
exact sums and their asymptotics, the generation approximations, and predict against Monte Carlo."""

import jax
import numpy as np
import pytest

import theory
from collapse_jax.simulate import simulate
from collapse_jax.summary import compare
from tests.helpers import within_se, z_scores
from theory import tails as tt
from theory.common import NoTheory

Z = 5.0


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


# ------------------------------------------------------------------------------------ Tale of Tails


@pytest.fixture(scope="module")
def zipf2():
    return tt.zipf_law(2.0, 2_000_000)


def test_tails_clean_cut_narrow_and_mixing_checks(zipf2):
    """theory.md D checks (support 10^7 there, 2 x 10^6 here: the truncation moves the values by < 1e-6)."""
    p = zipf2
    clean = np.asarray(tt.memoriser_error(p, p, [1e3, 1e4, 1e6]))
    np.testing.assert_allclose(clean, [0.021843, 0.006910, 0.000691], atol=1.5e-6)
    assert tt.clean_constant(2.0) == pytest.approx(0.690988, abs=1e-6)
    # asymptote vs exact sum: within 0.1% for 10^3 <= T <= 10^5 (beta = 2)
    for t in (1e3, 1e4, 1e5):
        assert float(tt.clean_error_asymptotic(t, 2.0)) == pytest.approx(float(tt.memoriser_error(p, p, t)), rel=1e-3)
    narrow = np.asarray(tt.memoriser_error(p, tt.zipf_law(3.0, p.size), [1e3, 1e5, 1e7]))
    np.testing.assert_allclose(narrow, [0.057708, 0.012436, 0.002679], atol=1.5e-6)
    np.testing.assert_allclose(tt.narrow_error_asymptotic(np.array([1e3, 1e5, 1e7]), 2.0, 3.0), narrow, rtol=5e-4)
    cut = tt.cut_law(p, 1000)
    assert float(tt.memoriser_error(p, cut, 1e7)) == pytest.approx(0.000608, abs=1e-6)
    assert float(tt.tail_mass_asymptotic(1000, 2.0)) == pytest.approx(0.000608, abs=1e-6)
    mixing = [float(tt.memoriser_error_fixed_counts(p, cut, t, 1e8)) for t in (1e3, 1e5, 1e6, 1e7, 1e8)]
    np.testing.assert_allclose(mixing[:2], 6.0e-4, atol=1e-5)  # the plateau
    np.testing.assert_allclose(mixing[2:], [5.04e-4, 2.18e-4, 6.90e-5], rtol=5e-3)  # then the clean law
    assert float(tt.mixing_plateau_asymptotic(1000, 2.0)) == pytest.approx(6.08e-4, abs=1e-6)
    assert float(tt.mixing_plateau(p, 1000, 1e3)) == pytest.approx(mixing[0], rel=1e-6)
    assert 1e6 < float(tt.mixing_recovery_point(1000, 2.0)) < 1e7
    assert float(tt.clean_error_asymptotic(1e8, 2.0)) == pytest.approx(mixing[-1], rel=1e-2)
    # the Bernoulli-mixed form (each draw real with probability pi) at pi = 1 is the clean law
    assert float(tt.memoriser_error(p, cut, 1e4, real_fraction=1.0)) == pytest.approx(clean[1], rel=1e-12)


def test_tails_generation_approximations():
    """D.5 table (beta = 2, T0 = 10^5, support 10^6): the WF and shrinking-chain predictions."""
    p = tt.zipf_law(2.0, 1_000_000)
    wf = {1: 2.18e-3, 2: 2.75e-3, 8: 4.77e-3, 64: 1.26e-2}
    shrink = {1: 2.18e-3, 2: 2.82e-3, 8: 3.97e-3, 64: 5.33e-3}
    for n in wf:
        assert float(tt.wf_lost_mass_approximation(p, 10**5, n)) == pytest.approx(wf[n], rel=6e-3)
        assert float(tt.shrinking_chain_lost_mass(p, 10**5, n)) == pytest.approx(shrink[n], rel=6e-3)
        upper = float(tt.generations_law_unverified(np.inf, 10**5, n, 2.0)) * tt.clean_constant(2.0)
        assert float(tt.shrinking_chain_lost_mass(p, 10**5, n)) <= upper * 1.001
    assert float(tt.wf_lost_mass_asymptotic(10**5, 8, 2.0)) == pytest.approx(wf[8], rel=2e-2)


def test_tails_exact_chain_vs_wright_fisher_approximation():
    """Exact WF lost mass vs the branching approximation sum p exp(-T0 p q_{n-1}): within 4% for n <= 4
    at T0 = 400 (the approximation needs n << T0 and small T0 p_i)."""
    p = tt.zipf_law(2.0, 20_000)
    exact = np.asarray(tt.chain_expectations(p, p, 400, 4)["lost_mass"])
    approx = [float(tt.wf_lost_mass_approximation(p, 400, n)) for n in range(1, 5)]
    np.testing.assert_allclose(exact, approx, rtol=4e-2)
    assert exact[0] == pytest.approx(float(np.sum(p * (1 - p) ** 400)), rel=1e-10)


def simulate_tails(p, first, *, samples, generations, train_size, real_fraction, fixed_synthetic, chains, seed):
    """Test error and lost mass (chains, G+1) of the memoriser, drawing every point with NumPy."""
    rng = np.random.default_rng(seed)
    k = p.size
    error, lost = np.zeros((chains, generations + 1)), np.zeros((chains, generations + 1))
    law = np.broadcast_to(p, (chains, k))
    for g in range(generations + 1):
        if g == 1:
            law = (
                np.broadcast_to(first, (chains, k))
                if first is not None
                else rng.multinomial(samples, p, size=chains) / samples
            )
        elif g >= 2:
            law = rng.multinomial(samples, law) / samples
        seen = rng.multinomial(train_size, real_fraction * p + (1 - real_fraction) * law) > 0
        if fixed_synthetic:
            seen |= rng.multinomial(fixed_synthetic, law) > 0
        error[:, g] = (p * ~seen).sum(1)
        lost[:, g] = (p * (law <= 0)).sum(1)
    return error, lost


@pytest.mark.parametrize("generator,pi,fixed", [("empirical", 0.0, 0), ("empirical", 0.3, 20), ("cut:15", 0.2, 10)])
def test_tails_predict_matches_monte_carlo(generator, pi, fixed):
    config = dict(
        law="zipf:2",
        categories=200,
        samples=30,
        generations=4,
        generator=generator,
        train_sizes=(10, 60),
        train_real_fraction=pi,
        fixed_synthetic=fixed,
    )
    p = tt.zipf_law(2.0, 200)
    first = None if generator == "empirical" else tt.parse_generator(generator, 200, 2.0)[1]
    error, lost = simulate_tails(
        p,
        first,
        samples=30,
        generations=4,
        train_size=60,
        real_fraction=pi,
        fixed_synthetic=fixed,
        chains=10000,
        seed=7,
    )
    pred = tt.predict("test_error.60", **config)
    assert pred.kind == "exact"
    assert within_se(error, pred.mean) < Z
    assert within_se(lost, tt.predict("lost_mass", **config).mean) < Z
    # power: dropping the fixed synthetic draws, or the real share, is rejected
    if fixed:
        assert within_se(error, tt.predict("test_error.60", **dict(config, fixed_synthetic=0)).mean) > Z
    if pi:
        assert within_se(error, tt.predict("test_error.60", **dict(config, train_real_fraction=0.0)).mean) > Z


def test_tails_forward_and_backward_paths_agree_and_no_theory():
    p = tt.zipf_law(2.0, 500)
    back = tt.chain_expectations(p, p, 40, 5, (10, 100), fixed_synthetic=7)
    forward = tt.chain_expectations(p, p, 40, 5, (10, 100), real_fraction=1e-14, fixed_synthetic=7)
    for name in back:
        np.testing.assert_allclose(back[name], forward[name], rtol=1e-10)
    config = dict(law="zipf:2", categories=500, samples=40, generations=3, train_sizes=(10,))
    assert isinstance(tt.predict("lost_mass", policy="accumulate", **config), NoTheory)
    assert isinstance(tt.predict("lost_mass", shared_real_data=True, **config), NoTheory)
    with pytest.raises(ValueError, match="BETA"):
        tt.predict("lost_mass", **dict(config, law="zipf:0.9"))
    gen0 = tt.predict("test_error.10", **dict(config, fixed_synthetic=5)).mean[0]
    assert float(gen0) == pytest.approx(float(np.sum(p * (1 - p) ** 15)), rel=1e-12)


# ------------------------------------------------------------------------- simulation against theory


@pytest.mark.slow
def test_tails_memoriser_matches_the_exact_sums():
    """Generation 1 with a rank-30 cut law (exact sum), and generations 2-4 of the empirical chain after it
    (exact Wright-Fisher expectation), at several training sizes and with real draws mixed in."""
    with jax.enable_x64(False):  # the run as users get it (this module's theory tests run in float64)
        summary = simulate(
            "tails",
            dict(
                law="zipf:2",
                categories=3000,
                samples=200,
                generations=4,
                chains=4000,
                generator="cut:30",
                train_sizes="10,100,1000",
                train_real_fraction=0.2,
                fixed_synthetic=50,
                seed=3,
            ),
        )
    for name, entry in summary["metrics"].items():
        verdict = compare(entry, Z)
        assert entry["theory_kind"] == "exact" and verdict["status"] == "pass", (name, verdict)
        assert verdict["compared"] == 5
    # power: without the 50 fixed synthetic draws the prediction is off by many SE at T = 10
    wrong = theory.PREDICTORS["tails"]("test_error.10", **dict(summary["config"], fixed_synthetic=0))
    entry = summary["metrics"]["test_error.10"]
    assert np.nanmax(np.abs(z_scores(dict(entry, theory=[float(v) for v in np.asarray(wrong.mean)])))) > 10
