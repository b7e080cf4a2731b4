"""The neural setting: its parameter table and builder (JAX is imported inside the builder)."""

from __future__ import annotations

from collapse_jax.options import (
    LM_MODELS,
    OPTIMIZERS,
    TASKS,
)
from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
)

NEURAL_METRICS = {
    "regression": ("test_mse",),
    "eigen": ("accuracy", "accuracy_each", "relative_error"),
    "lm": ("cross_entropy", "kl_to_true", "rare_token_mass", "rare_transition_mass", "first_token_support"),
}


NEURAL_DEFAULTS = {  # per task, used where the command line does not set them
    "regression": dict(
        samples=100, generations=10, chains=64, width=32, depth=1, steps=300, batch_size=0, learning_rate=0.01
    ),
    "eigen": dict(
        samples=2000, generations=8, chains=16, width=128, depth=2, steps=1000, batch_size=128, learning_rate=0.002
    ),
    "lm": dict(
        samples=2048,
        generations=6,
        chains=16,
        width=32,
        depth=1,
        steps=300,
        batch_size=64,
        learning_rate=0.003,
        gradient_clip=1.0,
    ),
}


every_metric = tuple(dict.fromkeys(m for names in NEURAL_METRICS.values() for m in names))


def complete(config, overrides):
    task = config["task"]
    config = {**config, **{k: v for k, v in NEURAL_DEFAULTS[task].items() if k not in overrides}}
    if "metrics" not in overrides:
        names = NEURAL_METRICS[task]
        if task == "lm" and config["model"] != "bigram":
            names = names[:-1]
        config = {**config, "metrics": names}
    return config


def check(config):
    task, model = config["task"], config["model"]
    allowed = NEURAL_METRICS[task]
    bad = [m for m in config["metrics"] if m not in allowed]
    if bad:
        raise ValueError(f"metrics (--metrics) for task {task} must be from {', '.join(allowed)}; got {', '.join(bad)}")
    if task == "lm" and model == "transformer" and "first_token_support" in config["metrics"]:
        raise ValueError("metrics (--metrics): first_token_support is defined for --model bigram only")
    if task != "lm" and model != "transformer":
        raise ValueError(f"model (--model) {model} is a language model: use it with --task lm")
    if config["x64"]:
        raise ValueError("x64 (--x64): networks train in float32; the neural setting does not run in float64")
    if config["verifier"] != "none" and task != "eigen":
        raise ValueError("verifier (--verifier) oracle is defined for --task eigen")
    if (
        config["verifier"] == "oracle"
        and config["verifier_tolerance"] == 0
        and config["best_of"] == 1
        and config["verified_budget"] == "refill"
    ):
        raise ValueError(
            "verifier_tolerance (--verifier-tolerance) is 0: no sampled label passes and a refill "
            "would never end; give it a value > 0"
        )
    if config["best_of"] > 1 and config["verifier"] == "none":
        raise ValueError("best_of (--best-of) > 1 needs a verifier (--verifier oracle)")
    if task == "lm" and model == "transformer" and config["width"] % config["heads"]:
        raise ValueError(f"heads (--heads) must divide width (--width) = {config['width']}, got {config['heads']}")
    if task == "lm" and model == "transformer" and config["depth"] < 1:
        raise ValueError("depth (--depth) must be >= 1 for a transformer (its number of blocks)")
    if task == "eigen" and config["depth"] < 1:
        raise ValueError("depth (--depth) must be >= 1 for the eigen task (a mean-and-variance MLP)")
    if config["optimizer"] == "sgd" and config["weight_decay"] > 0:
        raise ValueError("weight_decay (--weight-decay) applies to --optimizer adamw only")


def build(config):
    import jax
    import jax.numpy as jnp

    from collapse_jax.models.neural.eigen import eigen_oracle_verifier, make_eigen_task
    from collapse_jax.models.neural.language import make_lm_task
    from collapse_jax.models.neural.regression import make_regression_task
    from collapse_jax.models.neural.training import Training
    from collapse_jax.types import Setting

    task = config["task"]
    training = Training(
        steps=config["steps"],
        batch_size=config["batch_size"],
        optimizer=config["optimizer"],
        learning_rate=jnp.asarray(config["learning_rate"], jnp.float32),
        weight_decay=jnp.asarray(config["weight_decay"], jnp.float32),
        gradient_clip=config["gradient_clip"],
        warm_start=config["warm_start"],
    )
    names = tuple(config["metrics"])

    def chosen(metrics):
        return lambda key, *args: {n: v for n, v in metrics(key, *args).items() if n in names}

    verifier = None
    if task == "regression":
        neural_task = make_regression_task(
            dim=config["dim"],
            width=config["width"],
            depth=config["depth"],
            teacher_width=config["teacher_width"],
            teacher_depth=config["teacher_depth"],
            noise_var=config["noise_var"],
            test_size=config["test_size"],
            training=training,
        )
    elif task == "eigen":
        size = config["matrix_size"]
        neural_task = make_eigen_task(
            size=size,
            width=config["width"],
            depth=config["depth"],
            tolerance=config["tolerance"],
            verifier_noise=config["verifier_noise"],
            test_size=config["test_size"],
            training=training,
        )
        if config["verifier"] == "oracle":
            tolerance = jnp.asarray(config["verifier_tolerance"], jnp.float32)
            verifier = eigen_oracle_verifier(size, tolerance, config["tolerance"])
    else:
        neural_task = make_lm_task(
            model=config["model"],
            vocab=config["vocab"],
            length=config["context"],
            zipf=config["zipf"],
            width=config["width"],
            depth=config["depth"],
            heads=config["heads"],
            smoothing=config["smoothing"],
            temperature=jnp.asarray(config["temperature"], jnp.float32),
            test_size=config["test_size"],
            training=training,
        )

    def setting(truth, per_chain=None):
        return Setting(
            "neural",
            neural_task.estimator,
            truth,
            chosen(neural_task.metrics),
            per_chain,
            random_metrics=True,
            sample_real=neural_task.sample_real(truth),
            verifier=verifier,
            truth_metrics=chosen(neural_task.truth_metrics),
        )

    def per_chain(key_chain, key_shared):  # one truth for all chains (the seed's)
        del key_chain
        return setting(neural_task.draw_truth(key_shared))

    return setting(neural_task.draw_truth(jax.random.key(0)), per_chain)


DEFINITION = SettingDefinition(
    name="neural",
    description="small flax networks trained with optax, one per chain, inside one program: teacher-student "
    "regression, eigenvalues of symmetric matrices (Feng et al. 2024) with an oracle verifier, "
    "and a tiny language model on a Zipfian Markov language (Gerstgrasser et al. 2024)",
    parameters=(
        Parameter(
            "task",
            str,
            "regression",
            "regression (teacher-student MLP), eigen (sorted eigenvalues of "
            "symmetric matrices) or lm (tiny language model)",
            choices=TASKS,
        ),
        Parameter(
            "model",
            str,
            "transformer",
            "lm only: transformer (causal) or bigram (the count model); regression and eigen use an MLP",
            choices=LM_MODELS,
        ),
        Parameter(
            "width",
            int,
            32,
            "hidden width (MLP) or embedding width (transformer); default per task",
            low=1,
            high=4096,
        ),
        Parameter(
            "depth",
            int,
            1,
            "hidden layers (MLP; 0: linear, no bias) or blocks (transformer); default per task",
            low=0,
            high=64,
        ),
        Parameter("heads", int, 2, "attention heads (transformer; must divide --width)", low=1, high=64),
        Parameter(
            "steps",
            int,
            300,
            "optimiser steps per fit (the same under every pool rule); default per task",
            low=1,
            high=1_000_000,
        ),
        Parameter(
            "batch_size",
            int,
            0,
            "rows per step, drawn with replacement in proportion to the pool "
            "weights (0: the whole weighted pool); default per task",
            low=0,
            high=1_000_000,
        ),
        Parameter("optimizer", str, "adam", "optax optimiser", choices=OPTIMIZERS),
        Parameter("learning_rate", float, 0.01, "learning rate (default per task)", low=1e-9, high=100, traced=True),
        Parameter("weight_decay", float, 0.0, "adamw weight decay", low=0, high=10, traced=True),
        Parameter("gradient_clip", float, 0.0, "clip gradients to this global norm (0: no clipping)", low=0, high=1e6),
        Parameter(
            "warm_start",
            bool,
            False,
            "start each fit k >= 2 from model k-1 (default: a fresh initialisation each generation)",
        ),
        Parameter(
            "test_size",
            int,
            512,
            "held-out points (matrices, sequences) drawn per generation for the metrics",
            low=1,
            high=1_000_000,
        ),
        Parameter("dim", int, 8, "regression: input dimension d", low=1, high=4096),
        Parameter("teacher_width", int, 32, "regression: teacher hidden width", low=1, high=4096),
        Parameter(
            "teacher_depth",
            int,
            1,
            "regression: teacher hidden layers (0: linear teacher, no bias)",
            low=0,
            high=64,
        ),
        Parameter(
            "noise_var",
            float,
            0.1,
            "regression: label noise variance sigma^2 (real and synthetic)",
            low=0,
            high=1e6,
            traced=True,
        ),
        Parameter("matrix_size", int, 5, "eigen: matrix size", low=2, high=10),
        Parameter(
            "tolerance",
            float,
            0.05,
            "eigen: relative error counted as correct by the accuracy metrics",
            low=1e-6,
            high=10,
        ),
        Parameter(
            "verifier",
            str,
            "none",
            "eigen: none, or oracle (keeps a synthetic label within "
            "--verifier-tolerance relative L1 error of the true eigenvalues, read with "
            "--verifier-noise)",
            choices=("none", "oracle"),
        ),
        Parameter(
            "verifier_tolerance",
            float,
            0.05,
            "eigen: the oracle's relative L1 tolerance",
            low=0,
            high=100,
            traced=True,
        ),
        Parameter(
            "verifier_noise",
            float,
            0.0,
            "eigen: sd of the noise on the oracle's eigenvalues",
            low=0,
            high=100,
            traced=True,
        ),
        Parameter("vocab", int, 24, "lm: vocabulary size V", low=2, high=4096),
        Parameter("context", int, 12, "lm: sequence length L", low=2, high=1024),
        Parameter(
            "zipf", float, 1.2, "lm: Zipf exponent of the initial law and of every transition row", low=0, high=10
        ),
        Parameter(
            "temperature",
            float,
            1.0,
            "lm: sampling temperature of the models' corpora",
            low=1e-3,
            high=100,
            traced=True,
        ),
        Parameter(
            "smoothing",
            float,
            0.01,
            "lm, bigram: add-s counts used when scoring real text (it samples from its raw counts)",
            low=0,
            high=100,
        ),
        Parameter(
            "metrics",
            "list",
            every_metric,
            "metrics (default: the task's): regression test_mse; eigen "
            "accuracy, accuracy_each, relative_error; lm cross_entropy, kl_to_true, rare_token_mass, "
            "rare_transition_mass, first_token_support (bigram)",
            choices=every_metric,
        ),
    ),
    build=build,
    verified_budget="prune",
    check=check,
    complete=complete,
    report_generations=True,  # network generations are slow: progress per generation while training
)
