"""The verification setting: its parameter table and builder (JAX is imported inside the builder)."""

from __future__ import annotations

import math

from collapse_jax.options import (
    CLASSIFIERS,
    VERIFICATION_METRICS,
)
from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
)

VERIFIERS = ("none", "oracle", "linear")


metric_choices = ("accuracy",) + VERIFICATION_METRICS + ("p_star",)


def complete(config, overrides):
    if "generations" not in overrides:
        config = {**config, "generations": 2 if config["generator"] == "oracle" else 20}
    return config


def check(config):
    if config["generator"] == "oracle" and config["policy"] != "replace":
        raise ValueError("generator (--generator) oracle is a given model 1: it needs policy replace")
    if config["verifier"] == "linear" and config["verifier_angle"] != 0 and config["dim"] < 2:
        raise ValueError("verifier_angle (--verifier-angle) != 0 needs dim (--dim) >= 2")
    if (
        config["verifier"] != "none"
        and config["keep_correct"] == 0
        and config["keep_wrong"] == 0
        and config["best_of"] == 1
        and config["verified_budget"] == "refill"
    ):
        raise ValueError(
            "keep_correct (--keep-correct) and keep_wrong (--keep-wrong) are both 0: a refill "
            "would never end; give one of them a value in (0, 1]"
        )


def build(config):
    import jax.numpy as jnp

    from collapse_jax.models.verification.model import (
        ClassifierParams,
        accuracy,
        linear_verifier,
        make_mixture_classifier,
        oracle_verifier,
        real_points,
    )
    from collapse_jax.types import Setting

    dtype = jnp.float64 if config["x64"] else jnp.float32
    dim = config["dim"]
    mean = jnp.zeros((dim,), dtype).at[0].set(config["mean_norm"])
    estimator = make_mixture_classifier(
        mean,
        label_noise=jnp.asarray(config["label_noise"], dtype),
        classifier=config["classifier"],
        logistic_steps=config["logistic_steps"],
    )
    phi, rho = jnp.asarray(config["keep_correct"], dtype), jnp.asarray(config["keep_wrong"], dtype)
    if config["verifier"] == "none":
        verifier = oracle_verifier(jnp.ones((), dtype), jnp.ones((), dtype))
    elif config["verifier"] == "oracle":
        verifier = oracle_verifier(phi, rho)
    else:
        angle = math.radians(config["verifier_angle"])
        direction = jnp.zeros((dim,), dtype).at[0].set(math.cos(angle))
        if dim > 1:
            direction = direction.at[1].set(math.sin(angle))
        verifier = linear_verifier(direction, phi, rho)
    names = tuple(m for m in config["metrics"] if m == "accuracy")
    oracle = ClassifierParams(jnp.zeros((dim,), dtype), jnp.ones((), dtype))
    setting = Setting(
        "verification",
        estimator,
        ClassifierParams(mean, jnp.zeros((), dtype)),
        lambda params, true: {name: accuracy(params, true.weights) for name in names},
        sample_real=lambda key, n: real_points(key, mean, n),
        first_model=oracle if config["generator"] == "oracle" else None,
        verifier=verifier,
    )
    return setting


DEFINITION = SettingDefinition(
    name="verification",
    description="Gaussian-mixture classification trained on synthetic labels selected by a verifier "
    "(Feng et al. 2024; theory.md E): x | y ~ N(y mu, I), labels flipped with --label-noise",
    parameters=(
        Parameter("dim", int, 50, "d, dimension", low=1, high=4096),
        Parameter("mean_norm", float, 1.0, "||mu||, class-mean norm (Bayes accuracy Phi(||mu||))", low=0, high=100),
        Parameter(
            "generator",
            str,
            "oracle",
            "model 1: oracle (knows the true class; its labels are flipped "
            "with --label-noise; default generations: 2) or fitted (a classifier fitted on real points; "
            "default generations: 20); later models are the classifiers, each labelling the next generation",
            choices=("oracle", "fitted"),
        ),
        Parameter(
            "label_noise",
            float,
            0.0,
            "epsilon: every synthetic label is flipped with this probability",
            low=0,
            high=1,
            traced=True,
        ),
        Parameter(
            "verifier",
            str,
            "none",
            "none; oracle: keeps a synthetic point with probability "
            "--keep-correct if its label is the true class, --keep-wrong if not; linear: the same with "
            "'correct' meaning sign(v . x), v at --verifier-angle degrees from mu",
            choices=VERIFIERS,
        ),
        Parameter(
            "keep_correct",
            float,
            1.0,
            "phi: keep probability of a point the verifier judges correct",
            low=0,
            high=1,
            traced=True,
        ),
        Parameter(
            "keep_wrong",
            float,
            0.0,
            "rho: keep probability of a point the verifier judges wrong",
            low=0,
            high=1,
            traced=True,
        ),
        Parameter(
            "verifier_angle", float, 0.0, "angle (degrees) between the linear verifier's v and mu", low=0, high=180
        ),
        Parameter(
            "classifier",
            str,
            "mean",
            "fit: mean (mean difference), least-squares, logistic (optax Adam)",
            choices=CLASSIFIERS,
        ),
        Parameter("logistic_steps", int, 200, "Adam steps of a logistic fit", low=1, high=100_000),
        Parameter(
            "metrics",
            "list",
            metric_choices,
            "metrics to record (accuracy: exact, on the real law; "
            "kept_fraction, synthetic_kept and p_star (share of kept synthetic labels that are correct) "
            "are always recorded)",
            choices=metric_choices,
        ),
    ),
    build=build,
    verified_budget="refill",
    check=check,
    complete=complete,
)
