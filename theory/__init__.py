"""Closed-form predictions for recursive estimation, independent of the simulation package.

`theory` never imports `collapse_jax`: it takes plain keyword arguments (the simulation's parameter
names) and returns arrays over generations, so that a shared bug cannot make both sides agree.
"""

from theory import (
    diffusion,
    discrete,
    gaussian,
    gmm,
    kde,
    logistic,
    mixture,
    neural,
    regression,
    tails,
    verification,
)
from theory.common import NoTheory, Prediction, checkable


def _first_fit_on_samples(predict):
    """Every prediction assumes model 1 is fitted on M = `samples` real points: a different
    `first_samples` (M_1) gets NoTheory."""

    def guarded(metric, **config):
        first = config.get("first_samples", 0)
        if first not in (0, config.get("samples")):
            return NoTheory(f"model 1 fitted on first_samples = {first} != samples real points: not derived")
        return predict(metric, **config)

    return guarded


_PREDICTORS = {
    "gaussian": gaussian.predict,
    "regression": regression.predict,
    "logistic": logistic.predict,
    "discrete": discrete.predict,
    "tails": tails.predict,
    "kde": kde.predict,
    "diffusion": diffusion.predict,
    "gmm": gmm.predict,
    "verification": verification.predict_setting,
    "mixture": mixture.predict,
    "neural": neural.predict,
}


def _engine_options_not_derived(predict):
    """Real points weighted by `real_weight` (>= 0), or models sampled at the engine's `temperature`
    (!= 1; the neural setting's language models have a sampling temperature of their own, which changes
    the bigram's first-token law too): only the Gaussian theory derives them; the other settings get
    NoTheory."""

    def guarded(metric, **config):
        weight = config.get("real_weight", -1.0)
        if weight is not None and weight >= 0:
            return NoTheory(f"real points weighted (real_weight = {weight:g}): not derived for this setting")
        temperature = config.get("temperature", 1.0)
        if temperature != 1.0:
            return NoTheory(f"models sampled at temperature {temperature:g}: not derived for this setting")
        return predict(metric, **config)

    return guarded


_DERIVES_ENGINE_OPTIONS = {"gaussian"}
PREDICTORS = {
    name: _first_fit_on_samples(predict if name in _DERIVES_ENGINE_OPTIONS else _engine_options_not_derived(predict))
    for name, predict in _PREDICTORS.items()
}

__all__ = [
    "diffusion",
    "discrete",
    "gaussian",
    "gmm",
    "kde",
    "logistic",
    "mixture",
    "neural",
    "regression",
    "tails",
    "verification",
    "NoTheory",
    "Prediction",
    "checkable",
    "PREDICTORS",
]
