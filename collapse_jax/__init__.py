"""collapse-jax: recursive fit -> sample -> refit chains ("model collapse") as jitted, vmapped JAX programs.

Public surface:
  Estimator                      the estimator protocol (fit / sample, optional sufficient statistics)
  ChainSpec, Setting             static chain configuration; model class + truth + metrics
  make_chain_fn                  one chain as a pure function of (key, chain_id)
  run_chains, RunResult          many chains, sharded over devices, chunked, streamed
  simulate                       validated entry point that writes summary.json
  run_sweep, load_sweep, plot_sweep   grids of runs (resumable), read back by axes, plotted
  Cells, prepare_program, execute_cells   one compiled program over a table of cells (traced values)
  make_gaussian, gaussian_params the Gaussian estimator
"""

from collapse_jax.chain import ChainSpec, Setting, make_chain_fn
from collapse_jax.estimator import Estimator
from collapse_jax.models.gaussian import gaussian_metrics, gaussian_params, make_gaussian
from collapse_jax.models.regression import make_linear_regression, regression_metrics
from collapse_jax.results import load_sweep, plot_sweep
from collapse_jax.runner import Cells, RunResult, execute_cells, prepare_program, run_chains
from collapse_jax.simulate import simulate
from collapse_jax.sweep import run_sweep

__all__ = [
    "Cells",
    "ChainSpec",
    "execute_cells",
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
