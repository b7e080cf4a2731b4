"""The mixture setting: its parameter table and builder (JAX is imported inside the builder)."""

from __future__ import annotations

import math

from collapse_jax.parameters import Option
from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
    smallest_fit,
)


def parse_mixture_model(text: str, values: dict) -> Option:
    """The `Option` of a `--model` string: ("ols", None), ("ridge", LAMBDA >= 0) or ("projection", M >= 1).
    Raises ValueError."""

    where = "model (--model)"
    if text == "ols":
        return Option("ols")
    kind, _, value = text.partition(":")
    if kind not in ("ridge", "projection") or not value:
        raise ValueError(f"{where} must be ols, ridge:LAMBDA or projection:M; got {text!r}")
    try:
        number = float(value) if kind == "ridge" else int(value)
    except ValueError:
        raise ValueError(f"{where}: {kind}:{value} needs a {'number' if kind == 'ridge' else 'whole number'}") from None
    if kind == "ridge" and not (math.isfinite(number) and 0 <= number <= 1e6):
        raise ValueError(f"{where}: LAMBDA in ridge:LAMBDA must be in [0, 1e6], got {value}")
    if kind == "projection" and not 1 <= number <= 100_000:
        raise ValueError(f"{where}: M in projection:M (the width m) must be in [1, 100000], got {value}")
    return Option(kind, number)


def complete(config, overrides):
    if "generations" not in overrides:
        config = {**config, "generations": 2 if config["synthetic_law"] == "shifted" else 20}
    if (
        "synthetic_fraction" in overrides
        and "real_fraction" in overrides
        and (abs(config["synthetic_fraction"] + config["real_fraction"] - 1) > 1e-12)
    ):
        raise ValueError(
            "synthetic_fraction (--synthetic-fraction) and real_fraction (--real-fraction) "
            "are the two shares of one training set: they must add up to 1; give one of them"
        )
    if "real_fraction" in overrides and "synthetic_fraction" not in overrides:
        return {**config, "synthetic_fraction": 1.0 - config["real_fraction"]}
    return {**config, "real_fraction": 1.0 - config["synthetic_fraction"]}


def check(config):
    if config["synthetic_law"] == "shifted" and config["policy"] != "replace":
        raise ValueError("synthetic_law (--synthetic-law) shifted is a given model 1: it needs policy replace")


def build(config):
    import jax
    import jax.numpy as jnp

    from collapse_jax.models.regression.model import make_linear_regression, make_projected_regression
    from collapse_jax.types import Setting

    dtype = jnp.float64 if config["x64"] else jnp.float32
    dim = config["dim"]
    noise_std = jnp.sqrt(jnp.asarray(config["noise_var"], dtype))
    shift = jnp.asarray(config["shift"], dtype)
    kind, value = config["model"]
    shifted = config["synthetic_law"] == "shifted"
    smallest = smallest_fit(config)  # model 1 is fitted on M_1 points

    def estimator(projection):
        if kind == "projection":
            return make_projected_regression(projection, noise_std=noise_std, full_rank=value < smallest)
        ridge = jnp.asarray(value if kind == "ridge" else 0.0, dtype)
        return make_linear_regression(dim, ridge=ridge, noise_std=noise_std, full_rank=smallest > dim)

    def metrics(weights, true_weights):
        return {"test_error": jnp.sum((weights - true_weights) ** 2)}

    def unit(key):
        v = jax.random.normal(key, (dim, 1), dtype)
        return v / jnp.sqrt(jnp.sum(v**2))

    def setting(true_weights, generator, projection, per_chain=None):
        return Setting(
            "mixture",
            estimator(projection),
            true_weights,
            metrics,
            per_chain,
            first_model=generator if shifted else None,
        )

    width = value if kind == "projection" else 1

    def per_chain(key_chain, key_shared):
        del key_shared
        key_w, key_shift, key_projection = jax.random.split(key_chain, 3)
        true_weights = unit(key_w)
        projection = jax.random.normal(key_projection, (dim, width), dtype)
        return setting(true_weights, true_weights + shift * unit(key_shift), projection)

    zeros = jnp.zeros((dim, 1), dtype)
    return setting(zeros, zeros, jnp.zeros((dim, width), dtype), per_chain)


DEFINITION = SettingDefinition(
    name="mixture",
    description="strong model collapse (Dohmatob et al. 2024; theory.md C): regression on a mix of real "
    "labels y = x.w1 + noise and a synthetic share from w2 = w1 + Delta (or from the previous "
    "generation); x ~ N(0, I), ||w1|| = 1 drawn per chain",
    parameters=(
        Parameter("dim", int, 10, "d, number of features", low=1, high=4096),
        Parameter(
            "synthetic_fraction",
            float,
            0.2,
            "q: share of synthetic points in each training set k >= 2 (real_fraction = 1 - q; theory.md C calls it p)",
            low=0,
            high=1,
        ),
        Parameter(
            "noise_var",
            float,
            1.0,
            "sigma^2, label noise variance of real and synthetic labels",
            low=0,
            high=1e6,
            traced=True,
        ),
        Parameter(
            "shift",
            float,
            1.0,
            "c = ||w2 - w1||, the synthetic law's distance (random direction per chain)",
            low=0,
            high=1e6,
            traced=True,
        ),
        Parameter(
            "synthetic_law",
            str,
            "shifted",
            "shifted: model 1 is the given w2 and generation 2 trains on "
            "the mix (default generations: 2); previous: a chain, each model labelling the next synthetic "
            "share (default generations: 20)",
            choices=("shifted", "previous"),
        ),
        Parameter(
            "model",
            str,
            "ols",
            "fit: ols, ridge:LAMBDA (penalty on the mean squared error, LAMBDA in "
            "[0, 1e6]) or projection:M (random projection of width M in [1, 100000], min-norm least "
            "squares)",
            parse=parse_mixture_model,
        ),
        Parameter(
            "metrics",
            "list",
            ("test_error",),
            "test_error = ||w_hat - w1||^2 (excess error on the real law, noiseless targets)",
            choices=("test_error",),
        ),
    ),
    build=build,
    check=check,
    complete=complete,
)
