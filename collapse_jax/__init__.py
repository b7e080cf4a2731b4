"""collapse-jax: recursive fit -> sample -> refit chains ("model collapse") as jitted, vmapped JAX programs.

Public surface:
  Estimator                      the estimator protocol (fit / sample, optional sufficient statistics)
  ChainSpec, Setting             static chain configuration; model class + truth + metrics
  make_chain_fn                  one chain as a pure function of (key, chain_id)
  run_chains, RunResult          many chains, sharded over devices, chunked, streamed
  simulate                       validated entry point that writes summary.json
  make_gaussian, gaussian_params the Gaussian estimator
"""

from collapse_jax.chain import ChainSpec, Setting, make_chain_fn
from collapse_jax.estimator import Estimator
from collapse_jax.models.gaussian import gaussian_metrics, gaussian_params, make_gaussian
from collapse_jax.runner import RunResult, run_chains
from collapse_jax.simulate import simulate

__all__ = [
    "ChainSpec",
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
