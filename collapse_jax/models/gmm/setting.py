"""The gmm setting: its parameter table and builder (JAX is imported inside the builder)."""

from __future__ import annotations

from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
)

# the metric names for the two-component truth (model.gmm_metric_names(2, extra=...), spelled out here so
# that the table imports no JAX): the default ones, and the component variances recorded on request
GMM_METRICS = ("l2_distance", "weight.0", "weight.1", "dead_components")
EXTRA_GMM_METRICS = ("variance.0", "variance.1")
MAX_GMM_DIM = 16  # unrolled Cholesky and substitutions: compile time about 5 s at d = 2, 25 s at 16, 40 s at 32


def check(config):
    from collapse_jax.models.gmm.model import check_gmm_config

    check_gmm_config(config["components"], config["samples"])
    if 0 < config["first_samples"] < config["components"]:
        raise ValueError(
            f"first_samples (--first-samples) must be 0 (M) or >= components (--components) = "
            f"{config['components']} (a component needs at least one point), "
            f"got {config['first_samples']}"
        )
    allowed = set(GMM_METRICS + EXTRA_GMM_METRICS)
    bad = [m for m in config["metrics"] if m not in allowed]
    if bad:
        raise ValueError(f"metrics (--metrics): unknown {', '.join(bad)}; allowed: {', '.join(sorted(allowed))}")


def metric_names():
    """The default metrics (the variances are recorded on request only)."""
    return GMM_METRICS


def complete(config, overrides):
    if "metrics" not in overrides:
        config = {**config, "metrics": metric_names()}
    return config


def build(config):
    import jax.numpy as jnp

    from collapse_jax.models.gmm.model import gmm_metrics, gmm_params, make_gmm
    from collapse_jax.types import Setting

    dtype = jnp.float64 if config["x64"] else jnp.float32
    dim, minor = config["dim"], config["minor_weight"]
    offset = jnp.zeros((dim,), dtype).at[0].set(config["separation"] / 2)
    true = gmm_params(
        jnp.asarray([1 - minor, minor], dtype),
        jnp.stack([-offset, offset]),
        jnp.broadcast_to(jnp.eye(dim, dtype=dtype), (2, dim, dim)),
    )
    names = tuple(config["metrics"])
    setting = Setting(
        "gmm",
        make_gmm(config["components"], em_steps=config["em_steps"], reg_covar=config["reg_covar"]),
        true,
        lambda params, true_params: {k: v for k, v in gmm_metrics(params, true_params).items() if k in names},
    )
    return setting


DEFINITION = SettingDefinition(
    name="gmm",
    description="recursive EM fits of a Gaussian mixture (Shumailov et al. 2024): the true law is a "
    "major and a minor unit-covariance component at distance --separation",
    parameters=(
        Parameter(
            "dim",
            int,
            2,
            "d, dimension; the linear algebra is unrolled over d, so compile time grows "
            f"with it (about 25 s at d = {MAX_GMM_DIM} on a CPU)",
            low=1,
            high=MAX_GMM_DIM,
        ),
        Parameter("minor_weight", float, 0.2, "weight of the minor true component", low=0.001, high=0.5),
        Parameter("separation", float, 4.0, "distance between the two true means", low=0, high=100),
        Parameter("components", int, 2, "C, components of the fitted mixture (<= samples)", low=1, high=64),
        Parameter(
            "em_steps",
            int,
            100,
            "EM steps per fit (after a k-means++ start; fewer leave a bias: 20 steps "
            "overstate the minor weight 0.2 by 0.03 at M = 1000)",
            low=1,
            high=10_000,
        ),
        Parameter("reg_covar", float, 1e-6, "variance floor added to each covariance diagonal", low=1e-12, high=1e3),
        Parameter(
            "metrics",
            "list",
            GMM_METRICS,
            "metrics (default: l2_distance, weight.0 (major), weight.1 (minor), dead_components; on request: "
            "variance.0, variance.1, the weight-averaged tr(S)/d of the fitted components at each true mode)",
            choices=GMM_METRICS + EXTRA_GMM_METRICS,
        ),
    ),
    build=build,
    check=check,
    complete=complete,
)
