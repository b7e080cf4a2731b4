"""The kde setting: its parameter table and builder (JAX is imported inside the builder)."""

from __future__ import annotations

import math

from collapse_jax.options import (
    DATASET_NAMES,
)
from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
    check_model_size,
)

KDE_BANDWIDTH_RANGE = (1e-6, 1e6)  # a fixed bandwidth h: h^2 and |x - p|^2 / h^2 stay finite in float32


MIN_KDE_NOISE = 0.01  # below it a curve dataset's log-density (nodes spaced by the noise) costs minutes


def parse_bandwidth(text: str, values: dict | None = None):
    """A `--bandwidth` string: "scott", "silverman" or a number > 0 (returned as float). Raises ValueError."""

    if text in ("scott", "silverman"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"bandwidth (--bandwidth) must be scott, silverman or a number in "
            f"[{KDE_BANDWIDTH_RANGE[0]:g}, {KDE_BANDWIDTH_RANGE[1]:g}]; got {text!r}"
        ) from None
    low, high = KDE_BANDWIDTH_RANGE
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(
            f"bandwidth (--bandwidth) must be scott, silverman or a number in [{low:g}, {high:g}] "
            f"(float32 squares it), got {value:g}"
        )
    return value


def check_kde_size(config: dict, setting: str) -> None:
    """A KDE holds its training points: model 1 the size of the later models under replace, and fewer than
    2^23 points in all (its cumulative weights are float32)."""
    check_model_size(config, setting)
    first = config["first_samples"] or config["samples"]
    rows = max(first, config["samples"])  # the points one KDE holds: a batch, or the whole accumulated pool
    if config["policy"] == "accumulate":
        rows = first + (config["generations"] - 1) * config["samples"]
    if rows >= 2**23:
        raise ValueError(
            f"samples (--samples) and generations (--generations): a KDE must hold fewer than 2^23 "
            f"points (float32 cumulative weights), got {rows} under policy {config['policy']}"
        )


def check(config):
    bandwidth = config["bandwidth"]
    if isinstance(bandwidth, str) and config["samples"] < 2:
        raise ValueError(
            f"samples (--samples) must be >= 2 with bandwidth {bandwidth} (the rule scales the "
            f"points' spread, 0 for one point), got {config['samples']}"
        )
    check_kde_size(config, "kde")


def build(config):
    import jax.numpy as jnp

    from collapse_jax.datasets import make_dataset
    from collapse_jax.models.kde.model import dataset_metrics, make_kde
    from collapse_jax.types import Setting

    dataset = make_dataset(config["dataset"], config["noise"] or None)
    metrics, truth_metrics = dataset_metrics(dataset, config["test_points"], tuple(config["metrics"]))

    setting = Setting(
        "kde",
        make_kde(config["bandwidth"]),
        jnp.zeros(()),
        metrics,
        random_metrics=True,
        sample_real=dataset.sample,
        truth_metrics=truth_metrics,
    )
    return setting


DEFINITION = SettingDefinition(
    name="kde",
    description="recursive Gaussian kernel density estimation of a 2-D dataset (Kazdan et al. 2024)",
    parameters=(
        Parameter("dataset", str, "moons", "real 2-D law", choices=DATASET_NAMES),
        Parameter(
            "noise",
            float,
            0.0,
            "noise standard deviation of the dataset (0: its default: blobs 1, "
            "others 0.1); the moons and swiss roll log-densities average over a curve with nodes spaced "
            "by the noise, so their cost grows as 1/noise: 0.01 is 10x the default's",
            low=MIN_KDE_NOISE,
            high=100,
            also=(0.0,),
        ),
        Parameter(
            "bandwidth",
            str,
            "scott",
            "kernel bandwidth: scott, silverman (rules of thumb, refitted every "
            f"generation) or a number in [{KDE_BANDWIDTH_RANGE[0]:g}, {KDE_BANDWIDTH_RANGE[1]:g}]",
            parse=parse_bandwidth,
        ),
        Parameter("test_points", int, 500, "held-out real points drawn for each generation's NLL", low=1, high=10**6),
        Parameter("metrics", "list", ("held_out_nll",), "metrics to record", choices=("held_out_nll",)),
    ),
    build=build,
    check=check,
)
