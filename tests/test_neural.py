"""The neural setting: networks trained inside the chain (regression, eigen, lm tasks). Vmapped equals
separate trainings; a chain does not depend on the others; the direction of each effect with margins;
the linear and bigram limits against their theory; the engine hooks (refit, sample_candidates); bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.chain import make_chain_fn
from collapse_jax.estimator import Estimator
from collapse_jax.keys import root_key
from collapse_jax.linalg import symmetric_eigenvalues
from collapse_jax.models.neural.eigen import eigen_oracle_verifier, make_eigen_task, symmetric_from_triangle
from collapse_jax.models.neural.markov import (
    inverse_cdf_draw,
    make_markov_language,
    markov_log_probs,
    markov_sample,
    zipf_law,
)
from collapse_jax.models.neural.training import Training, minibatch_indices
from collapse_jax.runner import run_chains
from collapse_jax.settings import get_setting
from collapse_jax.simulate import simulate
from collapse_jax.summary import compare
from collapse_jax.types import ChainSpec, Setting, Verifier
from tests.helpers import assert_histories_close

TINY = {
    "regression": dict(
        task="regression",
        dim=3,
        samples=24,
        width=8,
        depth=1,
        teacher_width=8,
        steps=20,
        batch_size=8,
        test_size=64,
        generations=3,
        real_fraction=0.25,
    ),
    "eigen": dict(
        task="eigen",
        matrix_size=3,
        width=16,
        depth=1,
        steps=20,
        batch_size=16,
        samples=32,
        test_size=32,
        generations=3,
        verifier="oracle",
        verifier_tolerance=0.5,
        verified_budget="refill",
    ),
    "lm": dict(
        task="lm",
        vocab=6,
        context=5,
        width=8,
        depth=1,
        heads=2,
        steps=10,
        batch_size=8,
        samples=16,
        test_size=16,
        generations=3,
        policy="accumulate",
    ),
}
LINEAR = dict(
    task="regression",
    dim=8,
    samples=20,
    noise_var=1.0,
    depth=0,
    teacher_depth=0,
    optimizer="sgd",
    learning_rate=0.1,
    steps=600,
    batch_size=0,
    test_size=2000,
)


def _build(**overrides):
    definition = get_setting("neural")
    return definition.instantiate(definition.resolve(overrides))


def _stats(result, metric):
    values = result.chains[metric]
    return values.mean(0), values.std(0, ddof=1) / np.sqrt(values.shape[0])


# ----------------------------------------------------------------------------- building blocks


def test_jacobi_eigenvalues_match_lapack():
    rng = np.random.default_rng(0)
    for size in (2, 3, 5, 7):
        g = rng.normal(size=(50, size, size))
        a = (g + np.swapaxes(g, 1, 2)) / 2
        a[0] = np.diag(rng.normal(size=size))  # already diagonal
        a[1] = np.eye(size)  # fully degenerate
        got = jax.vmap(symmetric_eigenvalues)(jnp.asarray(a, jnp.float32))
        np.testing.assert_allclose(got, np.linalg.eigvalsh(a), atol=2e-5 * size)


def test_minibatches_are_drawn_in_proportion_to_the_weights():
    weights = jnp.array([0.0, 1.0, 3.0, 0.0, 4.0, 0.5])
    index = np.asarray(minibatch_indices(jax.random.key(0), jnp.cumsum(weights), 40_000))
    counts = np.bincount(index, minlength=6)
    p = np.asarray(weights) / float(weights.sum())
    assert counts[0] == counts[3] == 0
    se = np.sqrt(40_000 * p * (1 - p))
    assert np.all(np.abs(counts - 40_000 * p) <= 5 * np.maximum(se, 1))


def test_inverse_cdf_draws_follow_the_law():
    p = jnp.array([0.5, 0.0, 0.2, 0.3])
    draws = np.asarray(inverse_cdf_draw(jax.random.key(1), jnp.broadcast_to(jnp.cumsum(p), (50_000, 4))))
    freq = np.bincount(draws, minlength=4) / 50_000
    assert freq[1] == 0
    np.testing.assert_allclose(freq, p, atol=5 * np.sqrt(0.25 / 50_000))


def test_markov_language_is_a_proper_law_with_zipf_rows():
    language = make_markov_language(jax.random.key(0), 10, 6, 1.5)
    np.testing.assert_allclose(language.transition.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        np.sort(np.asarray(language.transition[3]))[::-1],
        np.sort(np.asarray(zipf_law(jax.random.key(9), 10, 1.5)))[::-1],
        rtol=1e-5,
    )
    assert language.rare_transitions.sum() == 10 * 5 and language.rare_tokens.sum() == 5
    tokens = markov_sample(jax.random.key(2), language, 20_000, 6)
    first = np.bincount(np.asarray(tokens[:, 0], int), minlength=10) / 20_000
    np.testing.assert_allclose(first, language.initial, atol=5 * np.sqrt(0.25 / 20_000))
    # the log-probabilities of the language's own text: its entropy rate, never -inf
    assert np.isfinite(np.asarray(markov_log_probs(language, tokens))).all()


def test_eigen_candidates_share_their_matrix_and_the_verifier_reads_the_oracle():
    training = Training(steps=1, batch_size=4, optimizer="adam", learning_rate=1e-3)
    task = make_eigen_task(size=3, width=8, depth=1, tolerance=0.05, verifier_noise=0.0, test_size=8, training=training)
    state = task.network.init(jax.random.key(0))
    rows = task.estimator.sample_candidates(jax.random.key(1), state, 5, 4)
    assert rows.shape == (20, 6 + 3 * 3)
    triangles = np.asarray(rows[:, :6]).reshape(5, 4, 6)
    assert (triangles == triangles[:, :1]).all() and not (triangles[0, 0] == triangles[1, 0]).all()
    labels = np.asarray(rows[:, 6:9]).reshape(5, 4, 3)
    assert not np.allclose(labels[:, 0], labels[:, 1])  # k different answers to one matrix
    truth = np.asarray(rows[:, 9:12])
    np.testing.assert_allclose(truth, np.asarray(rows[:, 12:15]))  # a noiseless oracle reads the truth
    np.testing.assert_allclose(
        truth[::4],
        np.linalg.eigvalsh(np.asarray(jax.vmap(lambda t: symmetric_from_triangle(t, 3))(rows[::4, :6]))),
        atol=1e-4,
    )
    verifier = eigen_oracle_verifier(3, 0.05)
    exact = rows.at[:, 6:9].set(rows[:, 9:12])
    assert (np.asarray(verifier.keep_probability(exact)) == 1).all()
    far = rows.at[:, 6:9].set(rows[:, 9:12] + 10.0)
    assert (np.asarray(verifier.keep_probability(far)) == 0).all()


# ----------------------------------------------------------------------------- engine hooks


def _counting_setting(**estimator_fields):
    """A toy estimator whose params count fits: fit gives 0, refit gives previous + 1."""
    est = Estimator(
        "counter",
        fit=lambda key, data, weights: jnp.zeros(()),
        sample=lambda key, params, n: jax.random.normal(key, (n, 1)) + params,
        **estimator_fields,
    )
    return Setting("counter", est, jnp.zeros(()), lambda params, true: {"params": params})


def test_refit_starts_each_generation_from_the_previous_model():
    spec = ChainSpec(num_generations=5, samples=4)
    warm = _counting_setting(refit=lambda key, previous, data, weights: previous + 1.0)
    history = jax.jit(make_chain_fn(warm, spec))(root_key(0), 0)
    np.testing.assert_array_equal(history["params"], [0, 0, 1, 2, 3, 4])
    cold = jax.jit(make_chain_fn(_counting_setting(), spec))(root_key(0), 0)
    np.testing.assert_array_equal(cold["params"], np.zeros(6))


def test_chains_report_each_finished_generation_to_listeners():
    import dataclasses

    from collapse_jax.chain import listen_to_generations

    spec = ChainSpec(num_generations=4, samples=3, report_generations=True)
    seen = []
    with listen_to_generations(seen.append):
        jax.block_until_ready(
            jax.jit(jax.vmap(make_chain_fn(_counting_setting(), spec), in_axes=(None, 0)))(root_key(0), jnp.arange(3))
        )
        jax.effects_barrier()
    assert set(seen) == {2, 3, 4}
    quiet = []
    with listen_to_generations(quiet.append):
        jax.jit(make_chain_fn(_counting_setting(), dataclasses.replace(spec, report_generations=False)))(root_key(0), 0)
        jax.effects_barrier()
    assert quiet == []
    definition = get_setting("neural")
    assert definition.program(definition.resolve(TINY["regression"]))[1].report_generations


def test_a_learning_rate_sweep_shares_one_program():
    definition = get_setting("neural")
    a = definition.resolve({**TINY["regression"], "learning_rate": 0.01})
    b = definition.resolve({**TINY["regression"], "learning_rate": 0.3, "weight_decay": 0.1, "optimizer": "adam"})
    assert definition.program_key(a) == definition.program_key(b)
    assert definition.program_key(a) != definition.program_key({**a, "steps": 21})


def test_best_of_k_uses_the_estimators_candidates_for_one_input():
    """With sample_candidates, best-of-k picks among the k answers to one input."""

    def candidates(key, params, n, k):
        x = jnp.repeat(jnp.arange(n, dtype=jnp.float32), k)
        return jnp.stack([x, jax.random.normal(key, (n * k,))], 1)

    est = Estimator(
        "pairs",
        fit=lambda key, data, weights: jnp.sum(data[:, 1] * weights) / jnp.sum(weights),
        sample=lambda key, params, n: candidates(key, params, n, 1),
        sample_candidates=candidates,
    )
    verifier = Verifier(
        lambda points: jnp.ones(points.shape[0]),
        score=lambda points: points[:, 1],
        diagnostics=lambda points: {"input": points[:, 0]},
    )
    setting = Setting(
        "pairs",
        est,
        jnp.zeros(()),
        lambda params, true: {"params": params},
        sample_real=lambda key, n: candidates(key, None, n, 1),
        verifier=verifier,
    )
    spec = ChainSpec(num_generations=3, samples=200, best_of=8)
    history = jax.jit(make_chain_fn(setting, spec))(root_key(0), 0)
    # each kept point is one of the 200 inputs, once each: their mean index is 99.5
    np.testing.assert_allclose(history["input"][2:], 99.5)
    # the best of 8 normals has mean 1.42 (sd 0.61); single draws (model 1's real points) have mean 0
    assert abs(float(history["params"][1])) < 5 / np.sqrt(200)
    assert abs(float(history["params"][2]) - 1.4236) < 5 * 0.61 / np.sqrt(200)


# ----------------------------------------------------------------------------- invariances


@pytest.mark.parametrize(
    "task", ["regression", pytest.param("eigen", marks=pytest.mark.slow), pytest.param("lm", marks=pytest.mark.slow)]
)
def test_vmapped_training_equals_separate_trainings(task):
    setting, spec = _build(**TINY[task])
    chain = make_chain_fn(setting, spec)
    key = root_key(5)
    batch = jax.jit(jax.vmap(chain, in_axes=(None, 0)))(key, jnp.arange(4))
    single = jax.jit(chain)
    for i in (0, 3):
        assert_histories_close(single(key, i), {k: v[i] for k, v in batch.items()}, rtol=2e-3, atol=2e-4)


@pytest.mark.slow
def test_a_chain_does_not_depend_on_the_other_chains(devices):
    setting, spec = _build(**{**TINY["regression"], "policy": "accumulate-subsample", "warm_start": True})
    alone = run_chains(setting, spec, seed=2, num_chains=5, devices=devices[:1], save_chains=True)
    sharded = run_chains(setting, spec, seed=2, num_chains=11, devices=devices, chunk_size=3, save_chains=True)
    assert_histories_close(alone.chains, {k: v[:5] for k, v in sharded.chains.items()}, rtol=2e-3, atol=2e-4)
    assert np.unique(alone.chains["test_mse"][:, -1]).size == 5


# ----------------------------------------------------------------------------- effects and theory


def test_linear_networks_follow_the_ols_chain_and_reject_a_wrong_formula():
    """Full-batch gradient descent reaches least squares: E test_mse = k sigma^2 d/(T-d-1) under replace.
    The same chains reject d/(T-d) (the denominator of a fit without the inverse-Wishart correction)."""
    import theory

    config = dict(LINEAR, policy="replace", generations=4, chains=3000)
    summary = simulate("neural", config)
    entry = summary["metrics"]["test_mse"]
    assert compare(entry, 5.0)["status"] == "pass", compare(entry, 5.0)
    mean, se = np.array(entry["mean"][1:]), np.array(entry["se"][1:])
    k = np.arange(1, 5)
    prediction = theory.PREDICTORS["neural"]("test_mse", **summary["config"])
    np.testing.assert_allclose(prediction.mean[1:], k * 8 / 11, rtol=1e-6)
    wrong = k * 8 / 12
    assert np.max(np.abs(mean - wrong) / se) > 5


@pytest.mark.slow
def test_linear_networks_under_accumulate_follow_the_fresh_design_sum():
    summary = simulate("neural", dict(LINEAR, policy="accumulate", generations=4, chains=1500))
    entry = summary["metrics"]["test_mse"]
    assert compare(entry, 5.0)["status"] == "pass", compare(entry, 5.0)
    replace_like = np.array([0, 1, 2, 3, 4]) * 8 / 11
    assert np.max(np.abs(np.array(entry["mean"][2:]) - replace_like[2:]) / np.array(entry["se"][2:])) > 5


@pytest.mark.slow
def test_mlp_students_degrade_under_replace_and_not_under_accumulate():
    base = dict(
        task="regression",
        dim=4,
        samples=60,
        width=16,
        depth=1,
        teacher_width=16,
        teacher_depth=1,
        steps=150,
        batch_size=0,
        learning_rate=0.02,
        noise_var=0.1,
        generations=5,
        chains=24,
        test_size=500,
    )
    out = {
        p: run_chains(*_build(**base, policy=p), seed=0, num_chains=24, save_chains=True)
        for p in ("replace", "accumulate")
    }
    (m_rep, se_rep), (m_acc, se_acc) = _stats(out["replace"], "test_mse"), _stats(out["accumulate"], "test_mse")
    assert m_rep[-1] - m_acc[-1] > 4 * np.hypot(se_rep[-1], se_acc[-1])
    assert m_rep[-1] - m_rep[1] > 4 * np.hypot(se_rep[-1], se_rep[1])


def test_bigram_first_token_support_follows_wright_fisher_and_rejects_no_drift():
    import theory

    config = dict(
        task="lm",
        model="bigram",
        vocab=12,
        context=4,
        zipf=1.2,
        samples=40,
        generations=15,
        chains=2000,
        metrics=["first_token_support"],
        policy="replace",
    )
    summary = simulate("neural", config)
    entry = summary["metrics"]["first_token_support"]
    assert compare(entry, 5.0)["status"] == "pass", compare(entry, 5.0)
    # no drift (every generation a fresh sample of the true law) predicts a constant support: rejected
    fresh = theory.discrete.predict(
        "support_size", categories=12, samples=40, policy="replace", generations=1, law="zipf:1.2"
    ).mean[1]
    assert np.max(np.abs(np.array(entry["mean"][2:]) - float(fresh)) / np.array(entry["se"][2:])) > 5
    acc = simulate("neural", {**config, "policy": "accumulate", "chains": 500})
    assert compare(acc["metrics"]["first_token_support"], 5.0)["status"] == "pass"


@pytest.mark.slow
def test_bigram_text_degrades_under_replace_and_not_under_accumulate():
    base = dict(task="lm", model="bigram", vocab=16, context=8, samples=100, generations=6, test_size=100)
    out = {
        p: run_chains(*_build(**base, policy=p), seed=0, num_chains=100, save_chains=True)
        for p in ("replace", "accumulate")
    }
    (m_rep, se_rep), (m_acc, se_acc) = _stats(out["replace"], "kl_to_true"), _stats(out["accumulate"], "kl_to_true")
    assert m_rep[-1] - m_acc[-1] > 5 * np.hypot(se_rep[-1], se_acc[-1])
    assert abs(m_acc[-1] - m_acc[2]) < m_rep[-1] - m_rep[2]


@pytest.mark.slow
def test_eigen_chains_collapse_without_a_verifier_and_hold_with_refill():
    base = dict(
        task="eigen",
        matrix_size=3,
        width=32,
        depth=2,
        steps=300,
        batch_size=64,
        learning_rate=0.005,
        samples=600,
        generations=4,
        test_size=400,
        tolerance=0.1,
    )
    plain = run_chains(*_build(**base), seed=0, num_chains=6, save_chains=True)
    verified = run_chains(
        *_build(**base, verifier="oracle", verifier_tolerance=0.1, verified_budget="refill"),
        seed=0,
        num_chains=6,
        save_chains=True,
    )
    (m_p, se_p), (m_v, se_v) = _stats(plain, "relative_error"), _stats(verified, "relative_error")
    assert m_p[-1] - m_p[1] > 4 * np.hypot(se_p[-1], se_p[1])  # error grows under replace
    assert m_p[-1] - m_v[-1] > 4 * np.hypot(se_p[-1], se_v[-1])  # the verifier keeps it down
    kept = verified.chains["kept_fraction"][:, 2:]
    assert (kept > 0).all() and (kept < 1).all()


@pytest.mark.slow
def test_transformer_text_degrades_under_replace_and_not_under_accumulate():
    base = dict(
        task="lm",
        vocab=16,
        context=8,
        samples=1024,
        steps=200,
        batch_size=64,
        width=32,
        depth=1,
        generations=4,
        test_size=256,
    )
    out = {
        p: run_chains(*_build(**base, policy=p), seed=0, num_chains=4, save_chains=True)
        for p in ("replace", "accumulate")
    }
    (m_rep, se_rep), (m_acc, se_acc) = _stats(out["replace"], "kl_to_true"), _stats(out["accumulate"], "kl_to_true")
    assert m_rep[-1] - m_acc[-1] > 4 * np.hypot(se_rep[-1], se_acc[-1])
    assert m_rep[-1] - m_rep[1] > 4 * np.hypot(se_rep[-1], se_rep[1])


# ----------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(width=0), r"width \(--width\) must be an integer in \[1"),
        (dict(steps=0), r"steps \(--steps\)"),
        (dict(learning_rate=0.0), r"learning_rate \(--learning-rate\)"),
        (dict(learning_rate=-1.0), r"learning_rate \(--learning-rate\)"),
        (dict(task="vision"), r"task \(--task\) must be one of regression, eigen, lm"),
        (dict(optimizer="lion"), r"optimizer \(--optimizer\) must be one of adam, adamw, sgd"),
        (dict(task="lm", width=10, heads=4), r"heads \(--heads\) must divide width"),
        (dict(task="lm", depth=0), r"depth \(--depth\) must be >= 1 for a transformer"),
        (dict(task="regression", metrics=["accuracy"]), r"metrics \(--metrics\) for task regression"),
        (dict(task="regression", verifier="oracle"), r"verifier \(--verifier\) oracle is defined for --task eigen"),
        (dict(task="eigen", best_of=3), r"best_of \(--best-of\) > 1 needs a verifier"),
        (
            dict(task="eigen", verifier="oracle", verified_budget="refill", verifier_tolerance=0.0),
            r"verifier_tolerance \(--verifier-tolerance\) is 0",
        ),
        (dict(task="regression", model="bigram"), r"model \(--model\) bigram is a language model"),
        (dict(x64=True), r"x64 \(--x64\)"),
    ],
)
def test_bad_input_names_the_parameter(overrides, match):
    with pytest.raises(ValueError, match=match):
        get_setting("neural").resolve(overrides)


def test_the_command_line_runs_a_neural_chain_and_writes_its_outputs(tmp_path, capsys):
    from collapse_jax.cli import main

    out = tmp_path / "run"
    main(
        [
            "simulate",
            "neural",
            "--task",
            "regression",
            "--chains",
            "3",
            "--generations",
            "2",
            "--steps",
            "5",
            "--samples",
            "16",
            "--dim",
            "2",
            "--save-chains",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert (out / "summary.json").exists() and (out / "chains.npz").exists()
    assert main(["simulate", "neural", "--task", "regression", "--width", "0", "--out", str(out)]) == 2
    assert "width (--width)" in capsys.readouterr().err
