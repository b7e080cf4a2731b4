"""Model slices: one package per setting, each holding what that setting is.

    collapse_jax/models/<name>/setting.py   its parameter table and builder (`DEFINITION`), JAX-free to import
    collapse_jax/models/<name>/model.py     its estimator (fit, sample, sufficient statistics) and metrics

A slice whose model class is another slice's (tails: the discrete empirical law; diffusion: the KDE's
smoothed law; mixture: the regression estimators) imports that slice's `model`. The registry below is the
only place that names every slice; the framework (`collapse_jax.settings`) and the engine know none.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collapse_jax.settings import SettingDefinition

# the registered settings, in the order `collapse-jax list` and the documentation show them
SLICES = (
    "gaussian",
    "regression",
    "logistic",
    "discrete",
    "tails",
    "kde",
    "diffusion",
    "gmm",
    "verification",
    "mixture",
    "neural",
)


@functools.cache
def registered_settings() -> dict[str, SettingDefinition]:
    """Setting name -> its definition (each slice's `setting.DEFINITION`; imports no JAX)."""
    return {name: importlib.import_module(f"collapse_jax.models.{name}.setting").DEFINITION for name in SLICES}


def get_setting(name: str) -> SettingDefinition:
    """The registered setting `name` (ValueError naming the registered ones otherwise)."""
    settings = registered_settings()
    if name not in settings:
        raise ValueError(f"setting must be one of {', '.join(settings)}; got {name!r}")
    return settings[name]


def __getattr__(name: str):
    if name == "SETTINGS":  # read on first use: importing one model does not import every slice
        return registered_settings()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
