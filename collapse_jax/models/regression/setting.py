"""The regression setting: its parameter table and builder (JAX is imported inside the builder)."""

from __future__ import annotations

import numpy as np

from collapse_jax.options import (
    CHAIN_METRICS,
    DESIGNS,
    DOWNSTREAM_METRICS,
    REGRESSION_METRICS,
)
from collapse_jax.parameters import Option
from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
    load_array,
    prefixed_number,
    smallest_fit,
)


def parse_spectrum(text: str, above: dict) -> Option:
    """The `Option` of a `--spectrum` string: ("isotropic", None), ("power", beta) or ("file", array)
    (a `(d,)` vector of eigenvalues or a `(d, d)` covariance, .npy or text). Raises ValueError."""
    where = "spectrum (--spectrum)"
    dim = above["dim"]
    if text == "isotropic":
        return Option("isotropic")
    if text.startswith("power:"):
        return Option("power", prefixed_number(text, "power:", "BETA", 10, where, "isotropic, power:BETA or file:PATH"))
    if text.startswith("file:"):
        values = load_array(text[len("file:") :], where)
        if values.shape == (dim,):
            if not np.all(values > 0):
                raise ValueError(f"{where}: eigenvalues must all be > 0")
        elif values.shape == (dim, dim):
            if not np.allclose(values, values.T) or np.linalg.eigvalsh(values).min() <= 0:
                raise ValueError(f"{where}: the covariance must be symmetric positive definite")
        else:
            raise ValueError(
                f"{where}: the file must hold ({dim},) eigenvalues or a ({dim}, {dim}) matrix, got shape {values.shape}"
            )
        return Option("file", values)
    raise ValueError(f"{where} must be isotropic, power:BETA or file:PATH; got {text!r}")


def parse_true_weights(text: str, above: dict) -> Option:
    """The `Option` of a `--true-weights` string: ("random", None), ("source", r) or ("file", (d,))."""
    where = "true_weights (--true-weights)"
    dim = above["dim"]
    if text == "random":
        return Option("random")
    if text.startswith("source:"):
        source = prefixed_number(text, "source:", "R", 2, where, "random, source:R or file:PATH")
        if above["spectrum"].kind != "power":
            raise ValueError(f"{where}: source:R needs a power-law spectrum (--spectrum power:BETA)")
        return Option("source", source)
    if text.startswith("file:"):
        values = load_array(text[len("file:") :], where)
        if values.shape != (dim,):
            raise ValueError(f"{where}: the file must hold a ({dim},) vector, got shape {values.shape}")
        return Option("file", values)
    raise ValueError(f"{where} must be random, source:R or file:PATH; got {text!r}")


def check(config):
    import warnings

    dim, samples = config["dim"], config["samples"]
    if config["design"] == "fixed" and config["real_fraction"] > 0:
        raise ValueError(
            "real_fraction (--real-fraction) must be 0 with design=fixed (the fixed design is "
            "relabelled by the model; real points need fresh rows: use --design fresh)"
        )
    if config["verifier"] != "none":
        if config["design"] != "fresh" or config["method"] != "samples":
            raise ValueError(
                "verifier (--verifier) residual selects rows: it needs design (--design) fresh "
                "and method (--method) samples"
            )
        tracking = [m for m in config["metrics"] if m in ("excess_bias", "excess_variance")]
        if tracking:
            raise ValueError(
                f"metrics (--metrics): {', '.join(tracking)} split the risk of an unselected chain; "
                "with a verifier record excess_risk"
            )
    downstream = [m for m in config["metrics"] if m in DOWNSTREAM_METRICS]
    if downstream and config["downstream_samples"] < 1:
        raise ValueError(
            f"metrics (--metrics): {', '.join(downstream)} need a downstream model: set "
            "downstream_samples (--downstream-samples) >= 1"
        )
    if config["ridge"] == 0 and dim + 2 > samples > dim - 2:
        warnings.warn(
            f"samples={samples} with dim={dim}: OLS has an infinite expected excess risk for "
            f"d - 1 <= T <= d + 1 (theory needs T >= d + 2 or T <= d - 2); simulating anyway",
            stacklevel=2,
        )


def complete(config, overrides):
    if "metrics" not in overrides and config["downstream_samples"] > 0:
        config = {**config, "metrics": tuple(config["metrics"]) + DOWNSTREAM_METRICS}
    if "metrics" not in overrides and config["verifier"] != "none":
        config = {
            **config,
            "metrics": tuple(m for m in config["metrics"] if m not in ("excess_bias", "excess_variance")),
        }
    return config


def derive(values):
    """Whether every fit has more points than features (static, although M may be traced)."""
    return {"full_rank": smallest_fit(values) > values["dim"] and values["policy"] != "accumulate-subsample"}


def build(config):
    import jax
    import jax.numpy as jnp

    from collapse_jax.models.regression.model import (
        MEAN_TRACKING_METRICS,
        downstream_metrics,
        draw_features,
        make_linear_regression,
        regression_metrics,
        wishart_root,
    )
    from collapse_jax.types import Setting, Verifier

    dtype = jnp.float64 if config["x64"] else jnp.float32
    dim, samples, design = config["dim"], config["samples"], config["design"]
    sufficient = config["method"] == "sufficient"
    noise_std = jnp.sqrt(jnp.asarray(config["noise_var"], dtype))
    ridge = jnp.asarray(config["ridge"], dtype)
    full_rank = config["full_rank"]
    names = tuple(config["metrics"])
    labels = 2 if any(m in MEAN_TRACKING_METRICS for m in names) else 1
    spectrum_kind, spectrum = config["spectrum"]
    weights_kind, weights_value = config["true_weights"]
    if spectrum_kind == "isotropic":
        root = None
    elif spectrum_kind == "file" and spectrum.ndim == 2:
        root = jnp.asarray(np.linalg.cholesky(spectrum), dtype)
    else:  # diagonal Sigma: power-law or given eigenvalues
        eigenvalues = np.arange(1, dim + 1, dtype=float) ** -spectrum if spectrum_kind == "power" else spectrum
        root = jnp.diag(jnp.asarray(np.sqrt(eigenvalues), dtype))
    if weights_kind == "source":
        # source condition: lambda_i c_i^2 ~ i^(-1 - 2 r beta), normalised to ||w*|| = 1; random signs
        i = np.arange(1, dim + 1, dtype=float)
        magnitude = i ** ((spectrum - 1 - 2 * weights_value * spectrum) / 2)
        magnitude = jnp.asarray(magnitude / np.linalg.norm(magnitude), dtype)
    downstream = tuple(m for m in names if m in DOWNSTREAM_METRICS)
    chain_names = tuple(m for m in names if m not in DOWNSTREAM_METRICS)
    downstream_rank = config["downstream_samples"] > dim
    downstream_ridge = jnp.asarray(config["downstream_ridge"], dtype)
    downstream_std = jnp.sqrt(jnp.asarray(config["downstream_noise_var"], dtype))

    def chain_metrics(weights, true_weights):
        return regression_metrics(weights, true_weights, chain_names, root)

    def metrics(key, weights, true_weights):
        values = chain_metrics(weights, true_weights)
        values.update(
            downstream_metrics(
                key,
                weights,
                true_weights,
                samples=config["downstream_samples"],
                ridge=downstream_ridge,
                noise_std=downstream_std,
                covariance_root=root,
                full_rank=downstream_rank,
                names=downstream,
            )
        )
        return {name: values[name] for name in names}

    def true_weights_of(key):
        if weights_kind == "random":
            return jax.random.normal(key, (dim,), dtype) / jnp.sqrt(jnp.asarray(dim, dtype))
        if weights_kind == "source":
            return magnitude * jax.random.rademacher(key, (dim,), dtype)
        return jnp.asarray(weights_value, dtype)

    # every fit sees whole copies of the fixed design: its matrix is factorised once per chain
    fixed_fits = (
        design == "fixed"
        and config["policy"] in ("replace", "accumulate")
        and config["first_samples"] in (0, samples)
        and config["sample_growth"] == 0
    )

    def estimator(x, x_root):
        return make_linear_regression(
            dim,
            ridge=ridge,
            noise_std=noise_std,
            covariance_root=root,
            design=x,
            design_root=x_root,
            full_rank=full_rank,
            labels=labels,
            design_rows=jnp.asarray(samples, dtype),
            fixed_design_fits=fixed_fits,
        )

    tolerance = jnp.asarray(config["verifier_tolerance"], dtype)
    centre_shift = jnp.asarray(config["verifier_bias"], dtype)

    def residual_verifier(centre):
        """Keeps (x, y) iff |y - x.w_v| <= tau (Yi et al. 2025); diagnostics: none."""
        return Verifier(
            lambda points: (jnp.abs(points[:, dim] - points[:, :dim] @ centre) <= tolerance).astype(points.dtype)
        )

    def setting(true_weights, x, x_root, per_chain=None, verifier=None):
        return Setting(
            "regression",
            estimator(x, x_root),
            jnp.tile(true_weights[:, None], (1, labels)),
            metrics if downstream else chain_metrics,
            per_chain,
            sample_size=jnp.asarray(samples, dtype) if sufficient else None,
            random_metrics=bool(downstream),
            verifier=verifier,
        )

    fixed_sample = design == "fixed" and not sufficient
    fixed_root = design == "fixed" and sufficient

    verified = config["verifier"] != "none"

    def per_chain(key_chain, key_shared):
        key = key_shared if config["shared_design"] else key_chain
        key_weights, key_design = jax.random.split(key)
        x = draw_features(key_design, samples, dim, root, dtype) if fixed_sample else None
        x_root = wishart_root(key_design, samples, dim, root, dtype) if fixed_root else None
        true_weights = true_weights_of(key_weights)
        verifier = None
        if verified:  # the knowledge centre w_v = w* + bias u, u a uniform unit vector of the chain
            u = jax.random.normal(jax.random.fold_in(key_chain, 1), (dim,), dtype)
            verifier = residual_verifier(true_weights + centre_shift * u / jnp.sqrt(jnp.sum(u * u)))
        return setting(true_weights, x, x_root, verifier=verifier)

    representative = setting(
        jnp.zeros((dim,), dtype),
        jnp.zeros((samples, dim), dtype) if fixed_sample else None,
        jnp.zeros((dim, dim), dtype) if fixed_root else None,
        per_chain,
        verifier=residual_verifier(jnp.zeros((dim,), dtype)) if verified else None,
    )
    return representative


DEFINITION = SettingDefinition(
    sufficient_path=True,
    name="regression",
    description="recursive linear regression: OLS / ridge / min-norm fits relabelling their data "
    "(x ~ N(0, Sigma), w* drawn per chain, label noise variance sigma^2), with an optional "
    "downstream ridge model trained on each generation's labels",
    parameters=(
        Parameter("dim", int, 10, "d, number of features", low=1, high=4096),
        Parameter(
            "noise_var",
            float,
            1.0,
            "sigma^2, label noise variance (real and synthetic labels)",
            low=0,
            high=1e6,
            traced=True,
        ),
        Parameter(
            "ridge",
            float,
            0.0,
            "lambda, ridge penalty on (1/n) sum of squares (0: OLS / min-norm)",
            low=0,
            high=1e6,
            traced=True,
        ),
        Parameter(
            "design",
            str,
            "fixed",
            "fixed: relabel the same X every generation; fresh: new X each time",
            choices=DESIGNS,
        ),
        Parameter(
            "spectrum",
            str,
            "isotropic",
            "Sigma: isotropic, power:BETA (eigenvalues i^-BETA) or file:PATH ((d,) eigenvalues or (d, d) matrix)",
            parse=parse_spectrum,
        ),
        Parameter(
            "true_weights",
            str,
            "random",
            "w*: random (N(0, I/d) per chain), source:R (power-law source "
            "condition, |w*_i| ~ i^((BETA-1-2R BETA)/2), ||w*|| = 1, random signs) or file:PATH",
            parse=parse_true_weights,
        ),
        Parameter("shared_design", bool, False, "all chains share one X and w* (results conditional on them)"),
        Parameter(
            "downstream_samples",
            int,
            0,
            "T of a downstream ridge model fitted on each generation's labels (0: none)",
            low=0,
            high=10**6,
        ),
        Parameter("downstream_ridge", float, 0.0, "lambda of the downstream ridge model", low=0, high=1e6, traced=True),
        Parameter(
            "downstream_noise_var",
            float,
            1.0,
            "noise variance of the downstream labels",
            low=0,
            high=1e6,
            traced=True,
        ),
        Parameter(
            "verifier",
            str,
            "none",
            "residual: keep a synthetic (x, y) iff |y - x.w_v| <= "
            "--verifier-tolerance, w_v = w* + --verifier-bias (random direction) the verifier's knowledge "
            "centre (Yi et al. 2025); needs --design fresh",
            choices=("none", "residual"),
        ),
        Parameter(
            "verifier_tolerance",
            float,
            1.0,
            "tau, the residual verifier's acceptance half-width",
            low=1e-6,
            high=1e6,
            traced=True,
        ),
        Parameter(
            "verifier_bias", float, 0.0, "||w_v - w*||, the residual verifier's bias", low=0, high=1e6, traced=True
        ),
        Parameter(
            "metrics",
            "list",
            CHAIN_METRICS,
            "metrics to record (downstream_* need --downstream-samples; default: all that apply)",
            choices=REGRESSION_METRICS,
        ),
    ),
    build=build,
    check=check,
    complete=complete,
    traced_sample_size=True,
    derive=derive,
    verified_budget="refill",
)
