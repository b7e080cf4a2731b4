"""The diffusion setting: its parameter table and builder (JAX is imported inside the builder).

Diffusion with an exact score (Khelifa, Turner & Venkataramanan 2026): the model of a training set
stopped at time t0 (variance-exploding) is the KDE of its points with bandwidth sqrt(t0)."""

from __future__ import annotations

from collapse_jax.models.kde.setting import MIN_KDE_NOISE, check_kde_size
from collapse_jax.options import DATASET_NAMES, DIFFUSION_DATASETS, DIFFUSION_METRICS, GAUSSIAN_DATASET
from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
)

DIFFUSION_T0_RANGE = (1e-6, 1e4)  # sqrt(t0) is a KDE bandwidth within KDE_BANDWIDTH_RANGE


def check(config):
    if config["dataset"] in DATASET_NAMES and config["dim"] != 2:
        raise ValueError(
            f"dim (--dim) must be 2 with the 2-D dataset {config['dataset']} (dataset (--dataset)); "
            f"only the gaussian dataset takes any dim in [1, 64], got {config['dim']}"
        )
    check_kde_size(config, "diffusion")


def build(config):
    import jax.numpy as jnp

    from collapse_jax.datasets import law_moments, make_dataset
    from collapse_jax.models.kde.model import dataset_metrics, make_kde
    from collapse_jax.types import Setting

    noise = config["noise"] or None
    dataset = make_dataset(config["dataset"], noise, dim=config["dim"])
    real_moments = law_moments(config["dataset"], noise, dim=config["dim"])
    metrics, truth_metrics = dataset_metrics(dataset, config["test_points"], tuple(config["metrics"]), real_moments)

    setting = Setting(
        "diffusion",
        make_kde(jnp.sqrt(config["t0"])),
        jnp.zeros(()),
        metrics,
        random_metrics=True,
        sample_real=dataset.sample,
        truth_metrics=truth_metrics,
    )
    return setting


DEFINITION = SettingDefinition(
    name="diffusion",
    description="diffusion model with an exact score, stopped at time t0: a KDE of bandwidth sqrt(t0) "
    "(Khelifa, Turner & Venkataramanan 2026)",
    parameters=(
        Parameter(
            "t0",
            float,
            0.1,
            "t0: early-stopping time of the variance-exploding diffusion; each model is its training set "
            "convolved with N(0, t0 I) (a KDE of bandwidth sqrt(t0))",
            low=DIFFUSION_T0_RANGE[0],
            high=DIFFUSION_T0_RANGE[1],
            traced=True,
        ),
        Parameter(
            "dataset",
            str,
            GAUSSIAN_DATASET,
            "real law: gaussian, N(0, sigma^2 I_d) in d = --dim dimensions, or a 2-D dataset (needs --dim 2)",
            choices=DIFFUSION_DATASETS,
        ),
        Parameter("dim", int, 2, "d, dimension of the gaussian dataset (the 2-D datasets need 2)", low=1, high=64),
        Parameter(
            "noise",
            float,
            0.0,
            "sigma: standard deviation of the gaussian dataset, or the noise of a 2-D one (0: the "
            "default: gaussian and blobs 1, others 0.1)",
            low=MIN_KDE_NOISE,
            high=100,
            also=(0.0,),
        ),
        Parameter("test_points", int, 500, "held-out real points drawn for each generation's NLL", low=1, high=10**6),
        Parameter("metrics", "list", DIFFUSION_METRICS, "metrics to record", choices=DIFFUSION_METRICS),
    ),
    build=build,
    check=check,
)
