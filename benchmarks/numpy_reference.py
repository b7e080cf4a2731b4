"""Plain per-run NumPy reference for two model-collapse grids: the baseline a JAX sweep is timed against.

Written the way the papers' own code is written: one run = one seed = one Python loop over
generations, and runs launched one after another (no vectorisation over seeds or cells).

  * Gaussian: mirrors Kazdan et al. 2024, "Collapse or Thrive?" (multivariate Gaussian fitting).
  * Linear regression, fixed design: mirrors Gerstgrasser et al. 2024 / Kazdan et al. 2024.

Conventions (shared by both models):
  * generation 1 fits the model on M real points;
  * generation k >= 2 draws M synthetic points from model k-1, then the pool rule picks the fit data:
      "replace"              the M points of generation k,
      "accumulate"           all points of generations 1..k (k*M points),
      "accumulate-subsample" M points drawn without replacement from that pool of k*M points;
  * G generations (models 1..G); metrics have length G+1, index 0 being the truth.

Timings depend on BLAS threading (OPENBLAS_NUM_THREADS etc., recorded in the JSON) and machine load.

Usage:
  python benchmarks/numpy_reference.py --grid gaussian --seeds-timed 1 --generations 100 --out g.json
  python benchmarks/numpy_reference.py --grid regression --seeds-timed 1 --generations 100 --out r.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time

import numpy as np

POLICIES = ("replace", "accumulate", "accumulate-subsample")
PAPER_GAUSSIAN = dict(dims=[1, 3, 10, 31, 100], sample_sizes=[10, 32, 100, 316, 1000], policies=list(POLICIES))
PAPER_REGRESSION = dict(
    dims=[1, 3, 10, 32, 100],
    sample_sizes=[10, 32, 100, 316, 1000],
    noise_vars=[0.1, 1.0, 10.0],
    policies=list(POLICIES),
)
TOTAL_SEEDS = 100


def _pool(rng, chunks, policy, m):
    """Fit data of generation k = len(chunks) from the per-generation chunks (arrays of m rows each)."""
    if policy == "replace":
        return chunks[-1]
    pooled = np.concatenate(chunks, axis=0)
    if policy == "accumulate":
        return pooled
    if policy == "accumulate-subsample":
        return pooled[rng.choice(len(pooled), size=m, replace=False)]
    raise ValueError(f"unknown policy {policy!r}")


def gaussian_run(dim, samples, policy, generations, seed):
    """One Gaussian run (Kazdan et al. 2024 code style): truth N(0, I_d), MLE fit, G generations.

    Fit: mean = data.mean(0), cov = np.cov(data, rowvar=False, bias=True) (1x1 matrix when d=1);
    sample: rng.multivariate_normal(mean, cov, size=M). Returns arrays of length G+1:
    mean_error_sq = ||mean||^2, trace_ratio = trace(cov)/d, log_det_ratio = log det(cov) (-inf if singular).
    """
    rng = np.random.default_rng(seed)
    out = {k: np.zeros(generations + 1) for k in ("mean_error_sq", "trace_ratio", "log_det_ratio")}
    out["trace_ratio"][0] = 1.0
    mean, cov = np.zeros(dim), np.eye(dim)
    chunks = []
    for k in range(1, generations + 1):
        chunks.append(rng.multivariate_normal(mean, cov, size=samples))  # k == 1: the real data
        data = _pool(rng, chunks, policy, samples)
        mean = data.mean(0)
        cov = np.atleast_2d(np.cov(data, rowvar=False, bias=True))
        sign, logdet = np.linalg.slogdet(cov)
        out["mean_error_sq"][k] = mean @ mean
        out["trace_ratio"][k] = np.trace(cov) / dim
        out["log_det_ratio"][k] = logdet if sign != 0 else -np.inf
    return out


def regression_run(dim, samples, noise_var, policy, generations, seed):
    """One fixed-design linear-regression run (Gerstgrasser et al. 2024 / Kazdan et al. 2024 code style).

    X (T x d, i.i.d. N(0,1)) is drawn once and reused; w* ~ N(0, I_d)/sqrt(d); test set 1000 x d.
    Generation 1 labels: y = X w* + sqrt(s2) noise; generation k >= 2: y = X w_{k-1} + fresh noise.
    The pool stacks (X, y) of the generations per the pool rule; w_k = pinv(X_pool) @ y_pool.
    Returns arrays of length G+1: excess_risk = ||w_k - w*||^2 and
    test_mse = mean((X_test w_k - X_test w*)^2) (both 0 at generation 0).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, dim))
    w_star = rng.standard_normal(dim) / np.sqrt(dim)
    x_test = rng.standard_normal((1000, dim))
    y_test = x_test @ w_star
    out = {k: np.zeros(generations + 1) for k in ("excess_risk", "test_mse")}
    w = w_star
    chunks = []
    for k in range(1, generations + 1):
        y = x @ w + np.sqrt(noise_var) * rng.standard_normal(samples)
        chunks.append(np.column_stack([x, y]))
        data = _pool(rng, chunks, policy, samples)
        w = np.linalg.pinv(data[:, :dim]) @ data[:, dim]
        out["excess_risk"][k] = np.sum((w - w_star) ** 2)
        out["test_mse"][k] = np.mean((x_test @ w - y_test) ** 2)
    return out


def gaussian_grid(dims, sample_sizes, policies, generations):
    """Cells (kwargs of gaussian_run without seed), nested dims > sample_sizes > policies."""
    return [
        dict(dim=d, samples=m, policy=p, generations=generations)
        for d, m, p in itertools.product(dims, sample_sizes, policies)
    ]


def regression_grid(dims, sample_sizes, noise_vars, policies, generations):
    """Cells (kwargs of regression_run without seed), nested dims > sample_sizes > noise_vars > policies."""
    return [
        dict(dim=d, samples=t, noise_var=s2, policy=p, generations=generations)
        for d, t, s2, p in itertools.product(dims, sample_sizes, noise_vars, policies)
    ]


def time_grid(run_fn, cells, seeds_per_cell, total_seeds):
    """Run seeds 0..seeds_per_cell-1 of every cell one after another; scale each cell to total_seeds."""
    rows, measured = [], 0.0
    for cell in cells:
        start = time.perf_counter()
        for seed in range(seeds_per_cell):
            run_fn(**cell, seed=seed)
        sec = time.perf_counter() - start
        measured += sec
        rows.append(dict(cell=cell, measured_seconds=sec, estimated_seconds=sec * total_seeds / seeds_per_cell))
    return {
        "cells": rows,
        "measured_seconds": measured,
        "estimated_seconds_all_seeds": measured * total_seeds / seeds_per_cell,
        "seeds_timed_per_cell": seeds_per_cell,
        "seeds_per_cell": total_seeds,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", choices=("gaussian", "regression"), required=True)
    ap.add_argument("--seeds-timed", type=int, default=1, help="seeds actually run per cell")
    ap.add_argument("--generations", type=int, default=100)
    ap.add_argument("--out", required=True, help="JSON output file")
    args = ap.parse_args(argv)
    if args.grid == "gaussian":
        run_fn, cells = gaussian_run, gaussian_grid(**PAPER_GAUSSIAN, generations=args.generations)
    else:
        run_fn, cells = regression_run, regression_grid(**PAPER_REGRESSION, generations=args.generations)
    result = time_grid(run_fn, cells, args.seeds_timed, TOTAL_SEEDS)
    result.update(
        grid=args.grid,
        generations=args.generations,
        numpy=np.__version__,
        python=platform.python_version(),
        machine=platform.platform(),
        cpu_count=os.cpu_count(),
        blas_threads={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
    )
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(
        f"{args.grid}: {len(cells)} cells, measured {result['measured_seconds']:.1f} s "
        f"({args.seeds_timed} seed(s)/cell), estimated {result['estimated_seconds_all_seeds']:.1f} s "
        f"for {TOTAL_SEEDS} seeds/cell"
    )


if __name__ == "__main__":
    main()
