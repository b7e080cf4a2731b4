"""Discrete and Tale-of-Tails theory in float64: the published check tables (theory.md D, F.1, F.2),
closed forms against recursions, asymptotics against exact sums, and exact expectations against small
independent NumPy Monte Carlo runs (fixed seeds, 5 standard errors), with near-miss formulas rejected."""

import math

import jax
import numpy as np
import pytest

from tests.helpers import within_se
from theory import discrete as td
from theory import tails as tt
from theory.common import NoTheory

Z = 5.0


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


# --------------------------------------------------------------------------------- NumPy Monte Carlo


def _hypergeometric_subsample(rng, pool, m):
    """Counts of m points drawn without replacement from pools of counts (R, K)."""
    out = np.zeros_like(pool)
    left_total = pool.sum(1)
    need = np.full(pool.shape[0], m)
    for i in range(pool.shape[1]):
        good = pool[:, i]
        bad = left_total - good
        take = rng.hypergeometric(good, bad, need)
        out[:, i] = take
        need = need - take
        left_total = bad
    return out


def simulate_discrete(
    p,
    *,
    samples,
    generations,
    policy,
    real_fraction=0.0,
    real_draw="fixed",
    smoothing=0.0,
    masks=(),
    group_masks=(),
    chains=20000,
    seed=0,
):
    """Metrics (chains, G+1) of the discrete chain, simulated with NumPy multinomials."""
    rng = np.random.default_rng(seed)
    p = np.asarray(p, float)
    k, m = p.size, samples
    r = math.floor(real_fraction * m + 0.5)
    mixture = real_draw == "mixture" and real_fraction > 0
    out = {
        name: np.zeros((chains, generations + 1))
        for name in ("support_size", "lost_mass", "l2_risk", "gini_simpson", "tail", "group_mass", "group_extinct")
    }

    def record(g, law):
        out["support_size"][:, g] = (law > 0).sum(1)
        out["lost_mass"][:, g] = (p * (law <= 0)).sum(1)
        out["l2_risk"][:, g] = ((law - p) ** 2).sum(1)
        out["gini_simpson"][:, g] = 1 - (law**2).sum(1)
        for mask in masks:
            out["tail"][:, g] = law @ mask
        for mask in group_masks:
            out["group_mass"][:, g] = law @ mask
            out["group_extinct"][:, g] = law @ mask <= 0

    def fit(counts):
        n = counts.sum(1, keepdims=True)
        return (counts + smoothing) / (n + k * smoothing)

    record(0, np.broadcast_to(p, (chains, k)))
    pool = rng.multinomial(m, p, size=chains)
    law = fit(pool)
    record(1, law)
    for g in range(2, generations + 1):
        if mixture:
            batch = rng.multinomial(m, real_fraction * p + (1 - real_fraction) * law)
        else:
            batch = rng.multinomial(m - r, law)
            if r:
                batch = batch + rng.multinomial(r, p, size=chains)
        if policy == "replace":
            pool = batch
            law = fit(pool)
        elif policy == "accumulate":
            pool = pool + batch
            law = fit(pool)
        else:
            pool = pool + batch
            law = fit(_hypergeometric_subsample(rng, pool, m))
        record(g, law)
    return out


# --------------------------------------------------------------------------------- F.1 check table


def test_wright_fisher_check_table():
    m = 100
    s = td.survival_probability([0.005, 0.1], m, 400)
    exact = {
        (0.005, 1): 0.39423,
        (0.005, 5): 0.14594,
        (0.005, 20): 0.04644,
        (0.005, 100): 0.01157,
        (0.005, 400): 0.00526,
        (0.1, 20): 0.62631,
        (0.1, 100): 0.21431,
        (0.1, 400): 0.10476,
    }
    suresh = {1: 0.39347, 5: 0.09516, 20: 0.02469, 100: 0.00499, 400: 0.00125}
    branching = {
        (0.005, 1): 0.39347,
        (0.005, 5): 0.14447,
        (0.005, 20): 0.04479,
        (0.005, 100): 0.00972,
        (0.005, 400): 0.00248,
        (0.1, 20): 0.60006,
        (0.1, 100): 0.17752,
        (0.1, 400): 0.04844,
    }
    kimura = {
        (0.005, 5): 0.18292,
        (0.005, 20): 0.05047,
        (0.005, 100): 0.01180,
        (0.005, 400): 0.00527,
        (0.1, 20): 0.65732,
        (0.1, 100): 0.21812,
        (0.1, 400): 0.10495,
    }
    for (q, n), value in exact.items():
        got = float(s[0 if q == 0.005 else 1, n])
        assert got == pytest.approx(value, abs=6e-6)
        assert float(td.branching_survival_probability(q, m, n)) == pytest.approx(branching[q, n], abs=6e-6)
        lower = float(td.suresh_survival_lower_bound(q, m, n))
        assert lower <= got <= float(td.markov_survival_bound(q, m))
        if q == 0.005:
            assert lower == pytest.approx(suresh[n], abs=6e-6)
        if (q, n) in kimura:
            assert float(td.kimura_survival_probability(q, m, n)) == pytest.approx(kimura[q, n], abs=6e-6)
    assert float(s[0, 1]) == pytest.approx(1 - 0.995**100, rel=1e-12)  # lost in generation 1: (1-q)^M
    assert np.all(np.diff(np.asarray(s[1])) <= 1e-15)
    # Kimura's diffusion series is within 0.3% of the exact chain at n = 400 (n >~ 20 regime)
    assert float(td.kimura_survival_probability(0.1, m, 400)) == pytest.approx(float(s[1, 400]), rel=3e-3)


def test_gini_simpson_survivors_and_absorption_times():
    q = np.array([0.5, 0.3, 0.15, 0.05])
    gini = td.gini_simpson_replace(float(q @ q), 100, 30)
    assert float(gini[30]) == pytest.approx(0.46971, abs=6e-6)
    assert float(td.expected_support_size(q, 100, 30)[30]) == pytest.approx(2.80940, abs=6e-6)
    # the general recursion agrees with the closed form
    pred = td.predict("gini_simpson", categories=4, samples=100, policy="replace", generations=30, law="uniform").mean
    np.testing.assert_allclose(pred, td.gini_simpson_replace(0.25, 100, 30), rtol=1e-12)
    for x, exact, diffusion in ((0.5, 136.60, 138.63), (0.1, 63.45, 65.02), (0.01, 10.54, 11.20)):
        assert float(td.mean_absorption_time(100, round(100 * x))) == pytest.approx(exact, abs=6e-3)
        assert float(td.kimura_ohta_absorption_time(100, x)) == pytest.approx(diffusion, abs=6e-3)
    # absorption time = sum_{n>=0} P(still transient after n steps), by brute-force matrix powers
    m, start = 12, 3
    matrix = np.asarray(td.transition_matrix(m))
    dist, total = np.eye(m + 1)[start], 0.0
    for _ in range(4000):
        total += dist[1:m].sum()
        dist = dist @ matrix
    assert float(td.mean_absorption_time(m, start)) == pytest.approx(total, rel=1e-9)
    # conditional extinction time: E[T 1{loss}] / P(loss) from the first-passage distribution
    dist, prev_zero, acc = np.eye(m + 1)[start], 0.0, 0.0
    for n in range(1, 4000):
        dist = dist @ matrix
        acc += n * (dist[0] - prev_zero)
        prev_zero = dist[0]
    assert float(td.mean_extinction_time(m, start)) == pytest.approx(acc / (1 - start / m), rel=1e-9)


# --------------------------------------------------------------------------------- F.2 check table


F2_TABLE = [
    ("accumulate", 0.0, 1, 0.018052),
    ("accumulate", 0.0, 5, 0.021460),
    ("accumulate", 0.0, 20, 0.022965),
    ("accumulate", 0.3, 1, 0.014066),
    ("accumulate", 0.3, 5, 0.010498),
    ("accumulate", 0.3, 20, 0.006126),
    ("replace", 0.0, 5, 0.082764),
    ("replace", 0.0, 20, 0.250665),
    ("replace", 0.3, 5, 0.027553),
    ("replace", 0.3, 20, 0.027895),
]


@pytest.mark.parametrize("policy,alpha,t,value", F2_TABLE)
def test_kanabar_gastpar_check_table(policy, alpha, t, value):
    """F.2's t counts generations after its real-data fit E_0 = our model 1: their t is our model t + 1."""
    p = np.array([0.4, 0.25, 0.2, 0.1, 0.05])
    e = td.l2_risk(float(p @ p), 50, 21, policy=policy, real_fraction=alpha, real_draw="mixture")
    assert float(e[1]) == pytest.approx(0.0145, abs=1e-12)
    assert float(e[t + 1]) == pytest.approx(value, abs=6e-7)
    if abs(float(e[t + 1] - e[t])) > 1e-5:  # before the fixed point, the off-by-one reading is wrong
        assert float(e[t]) != pytest.approx(value, abs=6e-7)
    pred = td.predict(
        "l2_risk",
        categories=5,
        samples=50,
        policy=policy,
        generations=21,
        law="file:" + _law_file(p),
        real_fraction=alpha,
        real_draw="mixture",
    )
    np.testing.assert_allclose(pred.mean, e, rtol=1e-12)


_FILES = {}


def _law_file(p):
    import tempfile

    key = tuple(p)
    if key not in _FILES:
        handle = tempfile.NamedTemporaryFile(suffix=".npy", delete=False)
        np.save(handle, np.asarray(p, float))
        handle.close()
        _FILES[key] = handle.name
    return _FILES[key]


def test_pi_squared_over_six_pathway():
    p = np.array([0.4, 0.25, 0.2, 0.1, 0.05])
    norm, m = float(p @ p), 50
    e = np.asarray(td.l2_risk(norm, m, 3000, policy="accumulate"))
    np.testing.assert_allclose(e, td.accumulate_l2_closed_form(norm, m, 3000), rtol=1e-10, atol=1e-15)
    e1, limit = e[1], td.accumulate_l2_limit(norm, m)
    assert np.all(np.diff(e[1:]) > 0)  # increases
    assert limit < math.pi**2 / 6 * e1 and e[-1] < limit  # to a limit below (pi^2/6) E_1
    assert e[-1] == pytest.approx(limit, rel=3e-4)  # the product converges like 1/(kM)
    assert math.pi**2 / 6 * e1 == pytest.approx(0.023852, abs=1e-6)
    # replace fixed points (mixture and fixed counts)
    for draw in ("mixture", "fixed"):
        long = td.l2_risk(norm, m, 400, policy="replace", real_fraction=0.3, real_draw=draw)
        assert float(long[-1]) == pytest.approx(td.replace_l2_fixed_point(norm, m, 0.3, draw), rel=1e-10)


@pytest.mark.parametrize("policy", td.POLICIES)
@pytest.mark.parametrize("draw,alpha", [("fixed", 0.0), ("fixed", 0.25), ("mixture", 0.3)])
def test_smoothing_engine_reduces_to_unbiased_recursions(policy, draw, alpha):
    """Two separate derivations: the raw-moment engine at s = 0 against the centred recursions."""
    p = td.parse_law("zipf:1.2", 12)
    mask = td.tail_mask(p, 4).astype(float)
    got = td.moment_recursion(p, 20, 15, policy=policy, real_fraction=alpha, real_draw=draw, functionals=(mask,))
    np.testing.assert_allclose(
        got["l2_risk"],
        td.l2_risk(float(p @ p), 20, 15, policy=policy, real_fraction=alpha, real_draw=draw),
        rtol=1e-9,
        atol=1e-15,
    )
    np.testing.assert_allclose(got["functional"][0], p @ mask, rtol=1e-12)


# ------------------------------------------------------------------------- Monte Carlo vs predict


MC_CASES = [
    dict(law="zipf:1.5", categories=12, samples=20, policy="replace", generations=8),
    dict(law="zipf:1.5", categories=12, samples=20, policy="replace", generations=8, real_fraction=0.25),
    dict(
        law="zipf:1.5",
        categories=12,
        samples=20,
        policy="replace",
        generations=8,
        real_fraction=0.3,
        real_draw="mixture",
    ),
    dict(
        law="zipf:1",
        categories=10,
        samples=20,
        policy="accumulate",
        generations=8,
        real_fraction=0.3,
        real_draw="mixture",
    ),
    dict(law="zipf:1", categories=10, samples=20, policy="accumulate", generations=8, real_fraction=0.2),
    dict(law="zipf:1.5", categories=12, samples=20, policy="accumulate-subsample", generations=8),
    dict(
        law="zipf:1",
        categories=10,
        samples=20,
        policy="accumulate-subsample",
        generations=8,
        real_fraction=0.3,
        real_draw="mixture",
    ),
    dict(law="zipf:1.5", categories=12, samples=20, policy="replace", generations=8, smoothing=0.5, real_fraction=0.2),
    dict(
        law="zipf:1.5",
        categories=12,
        samples=20,
        policy="accumulate",
        generations=8,
        smoothing=0.3,
        real_fraction=0.3,
        real_draw="mixture",
    ),
    dict(law="zipf:1.5", categories=12, samples=20, policy="accumulate-subsample", generations=6, smoothing=0.4),
]


@pytest.mark.parametrize(
    "case",
    MC_CASES,
    ids=lambda c: f"{c['policy']}-a{c.get('real_fraction', 0)}-{c.get('real_draw', 'fixed')}-s{c.get('smoothing', 0)}",
)
def test_predictions_match_monte_carlo(case):
    config = dict(case, tail_rank=3, groups="head:1-2,rare:9-10")
    p = td.parse_law(config["law"], config["categories"])
    tail = td.tail_mask(p, 3).astype(float)
    rare = np.zeros(p.size)
    rare[8:10] = 1.0
    mc = simulate_discrete(
        p,
        samples=config["samples"],
        generations=config["generations"],
        policy=config["policy"],
        real_fraction=config.get("real_fraction", 0.0),
        real_draw=config.get("real_draw", "fixed"),
        smoothing=config.get("smoothing", 0.0),
        masks=(tail,),
        group_masks=(rare,),
        seed=hash(str(case)) % 2**32,
    )
    names = {
        "support_size": "support_size",
        "lost_mass": "lost_mass",
        "l2_risk": "l2_risk",
        "gini_simpson": "gini_simpson",
        "tail_mass": "tail",
        "group_mass.rare": "group_mass",
        "group_extinct.rare": "group_extinct",
    }
    checked = 0
    for metric, key in names.items():
        pred = td.predict(metric, **config)
        if isinstance(pred, NoTheory):
            assert config["policy"] == "accumulate-subsample" and config.get("smoothing", 0) == 0, (metric, pred)
            assert metric in ("support_size", "lost_mass", "group_extinct.rare"), (metric, pred)
            continue
        assert pred.kind == "exact" and pred.mean.shape == (config["generations"] + 1,)
        assert within_se(mc[key], pred.mean) < Z, (metric, np.asarray(pred.mean), mc[key].mean(0))
        checked += 1
    assert checked >= 4
    for metric in td.NO_CLOSED_FORM:
        assert isinstance(td.predict(metric, **config), NoTheory)


def test_monte_carlo_check_has_power():
    """The same 5-SE check rejects near misses: M instead of M - 1 in the replace recursion, the fixed-count
    recursion for a mixture chain, and F.2's index read as ours."""
    p = td.parse_law("zipf:1", 10)
    norm, m, g = float(p @ p), 20, 8
    mc = simulate_discrete(p, samples=m, generations=g, policy="replace", chains=20000, seed=5)["l2_risk"]
    right = td.l2_risk(norm, m, g, policy="replace")
    assert within_se(mc, right) < Z
    wrong = [0.0] + [(1 - norm) / m * k for k in range(1, g + 1)]  # E_k = V/M + E_{k-1}: n_s^2 for n_s(n_s-1)
    assert within_se(mc, wrong) > Z
    mc = simulate_discrete(
        p, samples=m, generations=g, policy="accumulate", real_fraction=0.5, real_draw="mixture", chains=20000, seed=6
    )["l2_risk"]
    right = np.asarray(td.l2_risk(norm, m, g, policy="accumulate", real_fraction=0.5, real_draw="mixture"))
    assert within_se(mc, right) < Z
    shifted = np.concatenate([right[:1], right[2:], right[-1:]])
    assert within_se(mc, shifted) > Z
    # mixture vs fixed real counts differ by alpha (1 - alpha) E_{k-1} / M per replace step: visible at M = 4
    q = np.array([0.5, 0.3, 0.2])
    mc = simulate_discrete(
        q, samples=4, generations=g, policy="replace", real_fraction=0.5, real_draw="mixture", chains=40000, seed=8
    )["l2_risk"]
    kw = dict(policy="replace", real_fraction=0.5)
    assert within_se(mc, td.l2_risk(float(q @ q), 4, g, real_draw="mixture", **kw)) < Z
    assert within_se(mc, td.l2_risk(float(q @ q), 4, g, real_draw="fixed", **kw)) > Z


def test_support_predictions_for_replace_and_accumulate():
    config = dict(law="zipf:1.1", categories=300, samples=40, generations=10, groups="mid:20-40")
    p = td.parse_law(config["law"], 300)
    group = np.zeros(300)
    group[19:40] = 1.0
    mc = simulate_discrete(p, samples=40, generations=10, policy="replace", group_masks=(group,), chains=8000, seed=2)
    for metric, key in (
        ("support_size", "support_size"),
        ("lost_mass", "lost_mass"),
        ("group_extinct.mid", "group_extinct"),
    ):
        pred = td.predict(metric, policy="replace", **config)
        assert within_se(mc[key], pred.mean) < Z, metric
    assert float(td.predict("support_size", policy="replace", **config).mean[0]) == 300
    uniform = td.expected_support_size(np.full(50, 0.02), 40, 10)
    np.testing.assert_allclose(uniform, 50 * td.survival_probability([0.02], 40, 10)[0], rtol=1e-12)
    mc = simulate_discrete(
        p,
        samples=40,
        generations=10,
        policy="accumulate",
        real_fraction=0.25,
        group_masks=(group,),
        chains=4000,
        seed=3,
    )
    for metric, key in (
        ("support_size", "support_size"),
        ("lost_mass", "lost_mass"),
        ("group_extinct.mid", "group_extinct"),
    ):
        pred = td.predict(metric, policy="accumulate", real_fraction=0.25, **config)
        assert within_se(mc[key], pred.mean) < Z, metric
    smooth = td.predict("support_size", policy="replace", smoothing=0.1, **config)
    assert np.all(np.asarray(smooth.mean) == 300)
    assert isinstance(
        td.predict("support_size", policy="replace", real_fraction=0.25, real_source="original", **config), NoTheory
    )
    assert isinstance(td.predict("support_size", policy="accumulate-subsample", **config), NoTheory)
    assert isinstance(
        td.predict("l2_risk", policy="replace", real_fraction=0.25, real_source="original", **config), NoTheory
    )
    assert isinstance(td.predict("l2_risk", policy="replace", shared_real_data=True, **config), NoTheory)


def test_large_support_is_chunked():
    """K = 10^5 categories, M = 500: exact expected support in bounded memory; the lost mass of model 1 is
    sum p (1-p)^M."""
    p = td.parse_law("zipf:1.1", 100_000)
    lost = td.expected_lost_mass(p, 500, 3)
    assert float(lost[1]) == pytest.approx(float(np.sum(p * (1 - p) ** 500)), rel=1e-10)
    assert np.all(np.diff(np.asarray(lost)) > 0)


def test_input_errors_name_the_parameter():
    with pytest.raises(ValueError, match="samples"):
        td.transition_matrix(0)
    with pytest.raises(ValueError, match="policy"):
        td.l2_risk(0.5, 10, 3, policy="keep")
    with pytest.raises(ValueError, match="law"):
        td.parse_law("pareto:2", 10)
    with pytest.raises(ValueError, match="groups"):
        td.parse_groups("a:0-3", 10)
    with pytest.raises(ValueError, match="metric"):
        td.predict("bogus", categories=5, samples=5, policy="replace", generations=2, law="uniform")
    with pytest.raises(ValueError, match="beta"):
        tt.clean_constant(1.0)
    with pytest.raises(ValueError, match="beta2"):
        tt.narrow_error_asymptotic(100, 2.0, 1.5)
