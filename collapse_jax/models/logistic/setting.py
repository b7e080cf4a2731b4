"""The logistic setting: its parameter table and builder (JAX is imported inside the builder).

Recursive logistic regression (Dey & Donoho 2024's universality of the pi^2/6 pathway beyond OLS)."""

from __future__ import annotations

from collapse_jax.options import (
    DESIGNS,
    LOGISTIC_METRICS,
)
from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
    smallest_fit,
)


def check(config):
    import warnings

    dim, samples = config["dim"], config["samples"]
    if config["design"] == "fixed":
        if config["real_fraction"] > 0:
            raise ValueError(
                "real_fraction (--real-fraction) must be 0 with design=fixed (the fixed design is "
                "relabelled by the model; real points need fresh rows: use --design fresh)"
            )
        if config["first_samples"] not in (0, samples):
            raise ValueError(
                f"first_samples (--first-samples) must be 0 or samples (--samples) = {samples} with "
                f"design=fixed (every generation relabels the same {samples} design rows), got "
                f"{config['first_samples']}"
            )
    if smallest_fit(config) < 2 * dim:
        warnings.warn(
            f"samples={smallest_fit(config)} with dim={dim}: fewer than 2 d points, so the data are "
            "linearly separable (no maximum-likelihood estimate) with high probability; such fits are "
            "stopped and recorded as separated = 1; simulating anyway",
            stacklevel=2,
        )


def build(config):
    import jax
    import jax.numpy as jnp

    from collapse_jax.models.logistic.model import (
        LogisticParams,
        draw_features,
        logistic_metrics,
        make_logistic_regression,
    )
    from collapse_jax.types import Setting

    dtype = jnp.float64 if config["x64"] else jnp.float32
    dim, samples = config["dim"], config["samples"]
    fixed = config["design"] == "fixed"
    signal = jnp.asarray(config["signal"], dtype)
    names = tuple(config["metrics"])

    def metrics(params, true_params):
        values = logistic_metrics(params, true_params, names)
        return {name: values[name] for name in names}

    def setting(coef, x, per_chain=None):
        estimator = make_logistic_regression(dim, design=x, max_iterations=config["max_iterations"])
        truth = LogisticParams(coef, jnp.zeros((), dtype))
        return Setting("logistic", estimator, truth, metrics, per_chain)

    def per_chain(key_chain, key_shared):
        del key_shared
        key_coef, key_design = jax.random.split(key_chain)
        direction = jax.random.normal(key_coef, (dim,), dtype)
        coef = signal * direction / jnp.sqrt(jnp.sum(direction * direction))  # uniform on the sphere
        x = draw_features(key_design, samples, dim, None, dtype) if fixed else None
        return setting(coef, x)

    representative = setting(jnp.zeros((dim,), dtype), jnp.zeros((samples, dim), dtype) if fixed else None, per_chain)
    return representative


DEFINITION = SettingDefinition(
    samples_only_reason="logistic regression has no finite sufficient statistics of a fresh batch to draw: the labels are the data",
    name="logistic",
    description="recursive logistic regression: maximum-likelihood fits (Newton to a tolerance) "
    "relabelling their data, x ~ N(0, I_d), beta* uniform on the sphere of radius --signal per chain "
    "(Dey & Donoho 2024's pi^2/6 pathway beyond OLS); with samples M < 2d, or M/d small for a large "
    "signal, the data are often separable (no MLE): such fits are flagged by the metric separated; under "
    "replace the fits grow more confident from generation to generation and chains end in separable "
    "data (most of them within 30 generations at d = 10, samples = 200, signal = 1)",
    parameters=(
        Parameter(
            "dim",
            int,
            10,
            "d, number of features; keep samples/d large: below samples = 2d the data are separable "
            "(no MLE, metric separated = 1) with high probability, and a larger signal needs a larger "
            "samples/d (Candes & Sur 2020)",
            low=1,
            high=1024,
        ),
        Parameter(
            "design",
            str,
            "fixed",
            "fixed: relabel the same X (T = samples rows, one per chain) every generation (Dey & Donoho); "
            "fresh: new X each time",
            choices=DESIGNS,
        ),
        Parameter(
            "signal",
            float,
            1.0,
            "||beta*||: beta* is drawn per chain uniformly on the sphere of this radius (at most 5: "
            "the excess log-loss quadrature is accurate to 1e-4 there)",
            low=0,
            high=5,
            traced=True,
        ),
        Parameter(
            "max_iterations",
            int,
            50,
            "cap on the Newton steps of a fit; a fit that reaches it is recorded as separated",
            low=1,
            high=1000,
        ),
        Parameter(
            "metrics",
            "list",
            LOGISTIC_METRICS,
            "metrics to record",
            choices=LOGISTIC_METRICS,
        ),
    ),
    build=build,
    check=check,
)
