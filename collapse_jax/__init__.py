"""collapse-jax: recursive fit -> sample -> refit chains ("model collapse") as jitted, vmapped JAX programs.

Public surface:
  Estimator                      the estimator protocol (fit / sample, optional sufficient statistics)
  ChainSpec, Setting             static chain configuration; model class + truth + metrics
  make_chain_fn                  one chain as a pure function of (key, chain_id)
  run_chains, RunResult          many chains, sharded over devices, chunked, streamed
  simulate                       validated entry point that writes summary.json
  run_sweep, load_sweep, plot_sweep   grids of runs (resumable), read back by axes, plotted
  load_run                       one `simulate` output read back (both loaders have `.to_xarray()`)
  Cells, prepare_program, execute_cells   one compiled program over a table of cells (traced values)
  make_gaussian, gaussian_params the Gaussian estimator
"""

import importlib

from collapse_jax.simulate import simulate  # JAX-free to import; eager, so the name is the function, not the module

_HOMES = {  # public name -> the module that defines it, imported on first access (JAX, flax load on demand)
    "ChainSpec": "collapse_jax.types",
    "Setting": "collapse_jax.types",
    "make_chain_fn": "collapse_jax.chain",
    "Estimator": "collapse_jax.estimator",
    "gaussian_metrics": "collapse_jax.models.gaussian.model",
    "gaussian_params": "collapse_jax.models.gaussian.model",
    "make_gaussian": "collapse_jax.models.gaussian.model",
    "make_linear_regression": "collapse_jax.models.regression.model",
    "regression_metrics": "collapse_jax.models.regression.model",
    "load_run": "collapse_jax.results",
    "load_sweep": "collapse_jax.results",
    "plot_sweep": "collapse_jax.results",
    "Cells": "collapse_jax.runner",
    "RunResult": "collapse_jax.runner",
    "execute_cells": "collapse_jax.runner",
    "prepare_program": "collapse_jax.runner",
    "run_chains": "collapse_jax.runner",
    "run_sweep": "collapse_jax.sweep",
}


def __getattr__(name: str):
    """Import a public name's module on first access, so that `import collapse_jax` stays cheap."""
    if name not in _HOMES:
        raise AttributeError(f"module 'collapse_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Cells",
    "ChainSpec",
    "execute_cells",
    "load_run",
    "load_sweep",
    "make_linear_regression",
    "plot_sweep",
    "prepare_program",
    "regression_metrics",
    "run_sweep",
    "Estimator",
    "RunResult",
    "Setting",
    "gaussian_metrics",
    "gaussian_params",
    "make_chain_fn",
    "make_gaussian",
    "run_chains",
    "simulate",
]
