"""Every setting's theory answers every metric it can record, under every pool rule, with a Prediction or a
NoTheory: never an exception, and never a prediction for a pool rule it does not know (a made-up rule,
"sliding-window", must get NoTheory everywhere). And the metric names a theory module knows are names the
simulation records. Pure NumPy calls on small resolved configs, no simulation: a few seconds."""

from __future__ import annotations

import pytest

import theory
from collapse_jax.options import POLICIES, REWARD_METRIC
from collapse_jax.settings import SETTINGS
from theory.common import NoTheory, Prediction

UNKNOWN_POLICY = "sliding-window"  # a pool rule no theory was derived for
NO_PREDICTOR: list[str] = []  # settings without an entry in theory.PREDICTORS (none today)

# small configs per setting, tried in order for each (metric, policy): the first that resolves is used (a
# metric may need an option, e.g. a reward or a downstream model, and a policy may need another option)
SMALL = dict(samples=24, generations=3, chains=4)
CANDIDATES = {
    "gaussian": [dict(dim=2), dict(dim=2, reward="linear:1")],
    "regression": [dict(dim=4), dict(dim=4, downstream_samples=24)],
    "logistic": [dict(dim=3)],
    "discrete": [dict(categories=8), dict(categories=8, reward="linear:1")],
    "tails": [dict(categories=50, train_sizes="10,20")],
    "kde": [dict(test_points=16)],
    "diffusion": [dict()],
    "gmm": [dict(em_steps=2)],
    "verification": [dict(dim=4)],
    "mixture": [dict(dim=4), dict(dim=4, synthetic_law="previous")],
    "neural": [
        dict(task="regression", depth=0, teacher_depth=0, dim=4),
        dict(task="regression"),
        dict(task="eigen"),
        dict(task="lm", model="bigram"),
        dict(task="lm", model="transformer"),
    ],
}
# the metric names each theory module knows (kde, gmm: none, every metric is NoTheory)
THEORY_METRICS = {
    "gaussian": theory.gaussian.METRICS + (theory.gaussian.REWARD_METRIC,),
    "regression": theory.regression.METRICS,
    "logistic": theory.logistic.METRICS,
    "discrete": theory.discrete.METRICS + (theory.discrete.REWARD_METRIC,),
    "tails": theory.tails.METRICS,
    "kde": (),
    "diffusion": theory.diffusion.METRICS,
    "gmm": (),
    "verification": theory.verification.METRICS,
    "mixture": theory.mixture.METRICS,
    "neural": theory.neural.METRICS,
}


def recordable(name: str) -> tuple[str, ...]:
    """The metric names the setting can record: the `metrics` parameter's choices, else its default (and
    the resolved default, which may depend on other options), and the curation's reward metric."""
    definition = SETTINGS[name]
    parameter = definition.parameter("metrics")
    names = tuple(parameter.choices or parameter.default)
    names += tuple(m for m in definition.resolve({**SMALL, **CANDIDATES[name][0]})["metrics"] if m not in names)
    if definition.reward is not None and REWARD_METRIC not in names:
        names += (REWARD_METRIC,)
    return names


def resolved(name: str, metric: str, policy: str):
    """The first candidate config of `name` recording `metric` under `policy` that resolves, or None."""
    for candidate in CANDIDATES[name]:
        try:
            return SETTINGS[name].resolve({**SMALL, **candidate, "policy": policy, "metrics": (metric,)})
        except ValueError:
            continue
    return None


def test_every_setting_is_covered():
    assert set(CANDIDATES) == set(SETTINGS) == set(THEORY_METRICS)
    assert set(theory.PREDICTORS) == set(SETTINGS) - set(NO_PREDICTOR)
    for name in NO_PREDICTOR:
        assert name not in theory.PREDICTORS


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_metric_and_policy_gets_prediction_or_no_theory(name):
    if name in NO_PREDICTOR:
        pytest.skip(f"{name}: no predictor (listed in NO_PREDICTOR)")
    predictor = theory.PREDICTORS[name]
    for metric in recordable(name):
        configs = {policy: resolved(name, metric, policy) for policy in POLICIES}
        assert any(c is not None for c in configs.values()), f"{name}: no candidate config records {metric}"
        for policy, config in configs.items():
            if config is None:  # the simulation refuses this metric under this policy
                continue
            result = predictor(metric, **config)
            assert isinstance(result, (Prediction, NoTheory)), (name, metric, policy, result)
            if isinstance(result, Prediction):
                assert result.mean.shape == (config["generations"] + 1,), (name, metric, policy)
        config = next(c for c in configs.values() if c is not None)
        result = predictor(metric, **{**config, "policy": UNKNOWN_POLICY})
        assert isinstance(result, NoTheory), f"{name}: {metric} under {UNKNOWN_POLICY!r} gave {result!r}"


@pytest.mark.parametrize("name", list(SETTINGS))
def test_theory_metric_names_are_recorded_names(name):
    extra = set(THEORY_METRICS[name]) - set(recordable(name))
    assert not extra, f"{name}: theory names metrics the simulation does not record: {sorted(extra)}"
