"""The gaussian setting: its parameter table and builder (JAX is imported inside the builder)."""

from __future__ import annotations

import numpy as np

from collapse_jax.curation import parse_reward
from collapse_jax.options import (
    EXTRA_GAUSSIAN_METRICS,
    GAUSSIAN_METRICS,
    REWARD_METRIC,
)
from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
    smallest_fit,
)


def check(config):
    if config["samples"] < config["ddof"] + 1:
        raise ValueError(
            f"samples (--samples) must be >= {config['ddof'] + 1} with ddof={config['ddof']} "
            f"(the covariance divides by M - ddof), got {config['samples']}"
        )
    if 0 < config["first_samples"] < config["ddof"] + 1:
        raise ValueError(
            f"first_samples (--first-samples) must be 0 (M) or >= {config['ddof'] + 1} with ddof={config['ddof']} "
            f"(model 1's covariance divides by M_1 - ddof), got {config['first_samples']}"
        )


def build(config):
    import jax.numpy as jnp

    from collapse_jax.models.gaussian.model import gaussian_metrics, gaussian_params, make_gaussian
    from collapse_jax.types import Setting

    dtype = jnp.float64 if config["x64"] else jnp.float32
    dim = config["dim"]
    true = gaussian_params(jnp.zeros(dim, dtype), jnp.eye(dim, dtype=dtype))
    names = tuple(config["metrics"])
    full_rank, well_conditioned, columns = config["full_rank"], config["well_conditioned"], config["w2_columns"]
    sufficient = config["method"] == "sufficient"

    def metrics(params, true_params):  # a fitted model: its root has `columns` nonzero columns
        return gaussian_metrics(params, true_params, names, columns=columns)

    def truth_metrics(true_params):  # generation 0: the truth's root has all d columns
        return gaussian_metrics(true_params, true_params, names, columns=None)

    setting = Setting(
        "gaussian",
        make_gaussian(ddof=config["ddof"], full_rank=full_rank, well_conditioned=well_conditioned),
        true,
        metrics,
        sample_size=jnp.asarray(config["samples"], dtype) if sufficient else None,
        truth_metrics=truth_metrics,
    )
    return setting


def reward_direction(text, values):
    """a `(d,)` of a `--reward` string (None for none)."""
    dim = values["dim"]
    return parse_reward(text, dim, lambda value: value * np.eye(dim)[0], "linear:A or linear:a_1,...,a_d")


def reward(values):
    if values["reward"] is None:
        return None
    from collapse_jax.models.gaussian.model import linear_reward

    return linear_reward(values["reward"])


def derive(values):
    """Static facts of the fits, from concrete values (M may be traced in the program): full_rank (model 1
    on M_1 points and every later fit on M points have more than d points), well_conditioned (every fit
    has at least 3d points: scatters far from singular) and w2_columns (`w2_columns_of`; d where w2_sq is
    not recorded, so that sizes it alone would tell apart share one program). Where no scatter is
    factorised (`factorises_scatters`) the first two choose nothing and take fixed values."""
    if not factorises_scatters(values):  # the flags choose nothing: one program for every size
        return {"full_rank": True, "well_conditioned": False, "w2_columns": _w2_columns(values)}
    return {
        "full_rank": smallest_fit(values) - 1 >= values["dim"],
        "well_conditioned": smallest_fit(values) >= 3 * values["dim"],
        "w2_columns": _w2_columns(values),
    }


def _w2_columns(values):
    return w2_columns_of(values) if "w2_sq" in values["metrics"] else values["dim"]


def factorises_scatters(values):
    """Whether the chain roots a scatter of points or merges two pools (where full_rank and
    well_conditioned choose the QR or the Cholesky): not on the sufficient path without real points or a
    tilt, whose draws are Bartlett factors in the model's frame and whose pools grow in their own frame
    (`Estimator.merge_own_draws`)."""
    reward = values.get("reward")  # the option string, or its parsed direction (None for none)
    untilted = reward is None or (isinstance(reward, str) and reward == "none")
    return not (values["method"] == "sufficient" and values["real_fraction"] == 0 and untilted)


def complete(config, overrides):
    if "metrics" not in overrides and not w2_is_cheap(config):
        config = {**config, "metrics": tuple(m for m in config["metrics"] if m != "w2_sq")}
    return config


def notes(config):
    if "w2_sq" in config["metrics"] or w2_is_cheap(config):
        return ()
    return (
        "w2_sq is not among this configuration's default metrics: it would cost more than half the run "
        "(it is a default where d <= 2, or with method samples and M >= 100 d); --metrics "
        "mean_error_sq,trace_ratio,log_det_ratio,w2_sq records it",
    )


def w2_is_cheap(config):  # w2_sq adds at most half the run without it (benchmarks/metric_cost.py)
    return config["dim"] <= 2 or (config["method"] == "samples" and config["samples"] >= 100 * config["dim"])


def w2_columns_of(config):  # a fit on n <= d points has a root with n nonzero columns (w2_sq's cost)
    points = max(config["samples"], config["first_samples"])
    if config["policy"] == "accumulate":
        points = (config["first_samples"] or config["samples"]) + (config["generations"] - 1) * config["samples"]
    if config["sample_growth"] > 0 or points >= config["dim"]:
        return config["dim"]
    if config["method"] == "sufficient":  # M is traced there: a power of 2, fewer programs in a sweep over M
        return min(config["dim"], 1 << (points - 1).bit_length())
    return points


DEFINITION = SettingDefinition(
    sufficient_path=True,
    name="gaussian",
    description="recursive fitting of a d-dimensional Gaussian (real distribution N(0, I_d))",
    parameters=(
        Parameter("dim", int, 1, "d, dimension", low=1, high=4096),
        Parameter("ddof", int, 1, "covariance divisor M - ddof: 0 = MLE, 1 = unbiased", choices=(0, 1)),
        Parameter(
            "metrics",
            "list",
            GAUSSIAN_METRICS,
            "metrics to record (default: all but kl_divergence = KL(truth || model), which is on request; "
            "w2_sq, 16 matrix-product steps on a d x min(M, d) block per generation, only where that "
            "costs at most half the run: d <= 2, or method samples with M >= 100 d; ask for it with "
            "--metrics elsewhere)",
            choices=GAUSSIAN_METRICS + EXTRA_GAUSSIAN_METRICS + (REWARD_METRIC,),
        ),
    ),
    build=build,
    check=check,
    complete=complete,
    notes=notes,
    traced_sample_size=True,
    tempers=True,
    reward=reward,
    reward_parse=reward_direction,
    reward_help="r(x) = a . x, a reward that curates the synthetic points (Ferbach et al. 2024): none, "
    "linear:A (a = A e_1, the first coordinate) or linear:a_1,...,a_d; with --best-of K or --curation "
    f"tilted (the mean then moves by Sigma a per generation); records {REWARD_METRIC} = a . mu_k",
    derive=derive,
)
