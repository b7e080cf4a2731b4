"""Benchmark: the Zipf chain (discrete setting, replace), collapse-jax against a NumPy loop.

Workload (defaults, the size the project promises): K = 10^4 categories, Zipf(1.5) true law,
M = 10^3 draws per generation, C = 10^4 chains, G = 100 generations, replace, all discrete metrics
(support size, lost mass, tail mass, entropy, Gini-Simpson, TV, KL, l2 risk) at every generation.

Timed in one run:
  (a) collapse-jax: `collapse_jax.simulate.prepare` (validation and compilation, timed apart) then
      `collapse_jax.runner.execute` (the execution, the number the ratios use). Sampler: integer
      tickets over cumulative counts with a binary search (exact), alias table for the true law.
  (b) NumPy, one chain at a time and one generation at a time, float64, the fastest of two exact
      samplers measured on the first chains: `rng.multinomial(M, q)` (counts directly, O(K) binomials)
      and `rng.choice(K, M, p=q)` + `np.bincount`; the same metrics. Timed on --numpy-chains chains and
      scaled linearly to C.

Check: the mean support size at G and the mean l2 risk of both implementations are compared with the
exact theory (Wright-Fisher expected support size; the l2 risk recursion), z = (mean - theory) / SE.

Usage:
  PYTHONPATH=. python benchmarks/bench_discrete.py --out benchmarks/results/bench_discrete_cpu2.json
  PYTHONPATH=. python benchmarks/bench_discrete.py --quick      # smoke test (small sizes)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_gaussian import Timer, load_average


def zipf(categories: int, beta: float) -> np.ndarray:
    weights = np.arange(1, categories + 1, dtype=np.float64) ** -beta
    return weights / weights.sum()


def numpy_metrics(q: np.ndarray, p: np.ndarray, tail: np.ndarray) -> np.ndarray:
    positive = q > 0
    log_q = np.log(np.where(positive, q, 1.0))
    return np.array(
        [
            positive.sum(),
            p[~positive].sum(),
            q[tail].sum(),
            -(q * log_q).sum(),
            1.0 - (q * q).sum(),
            0.5 * np.abs(q - p).sum(),
            (q[positive] * (log_q[positive] - np.log(p[positive]))).sum(),
            ((q - p) ** 2).sum(),
        ]
    )


def numpy_chain(rng, p, tail, samples, generations, sampler):
    """One replace chain; returns the metrics `(G + 1, 8)` (support, lost, tail, entropy, gini, tv, kl, l2)."""
    k = p.size
    out = np.empty((generations + 1, 8))
    out[0] = numpy_metrics(p, p, tail)
    q = p
    for g in range(1, generations + 1):
        if sampler == "multinomial":
            counts = rng.multinomial(samples, q)
        else:
            counts = np.bincount(rng.choice(k, samples, p=q), minlength=k)
        q = counts / samples
        out[g] = numpy_metrics(q, p, tail)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--categories", type=int, default=10_000)
    parser.add_argument("--beta", type=float, default=1.5)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=10_000)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--numpy-chains", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.categories, args.chains, args.generations, args.numpy_chains = 1000, 500, 20, 20

    import jax

    import theory
    from collapse_jax.runner import execute
    from collapse_jax.simulate import prepare

    k, m, g, c = args.categories, args.samples, args.generations, args.chains
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind} x {jax.device_count()}, numpy {np.__version__}; "
        f"K={k}, M={m}, C={c}, G={g}",
        flush=True,
    )
    config = dict(law=f"zipf:{args.beta}", categories=k, samples=m, generations=g, chains=c, tail_rank=10)
    with Timer() as compile_timer:
        resolved, prepared = prepare("discrete", config)
    with Timer() as run_timer:
        result = execute(prepared)
    print(f"collapse-jax: compile {compile_timer.wall:.1f} s, run {run_timer.wall:.1f} s", flush=True)

    p = zipf(k, args.beta)
    tail = np.arange(k) >= 10
    rng = np.random.default_rng(0)
    probe = max(2, args.numpy_chains // 10)
    sampler_seconds = {}
    for sampler in ("multinomial", "choice"):
        start = time.perf_counter()
        for _ in range(probe):
            numpy_chain(rng, p, tail, m, g, sampler)
        sampler_seconds[sampler] = (time.perf_counter() - start) / probe
    fastest = min(sampler_seconds, key=sampler_seconds.get)
    print(f"NumPy per chain: {sampler_seconds} -> {fastest}", flush=True)
    with Timer() as numpy_timer:
        numpy_runs = np.stack([numpy_chain(rng, p, tail, m, g, fastest) for _ in range(args.numpy_chains)])
    numpy_scaled = numpy_timer.wall * c / args.numpy_chains
    ratio = numpy_scaled / run_timer.wall
    print(
        f"NumPy loop: {numpy_timer.wall:.1f} s for {args.numpy_chains} chains -> {numpy_scaled:.1f} s for {c}; "
        f"ratio {ratio:.1f}x",
        flush=True,
    )

    with jax.enable_x64(True):
        support = theory.PREDICTORS["discrete"]("support_size", **resolved)
        risk = theory.PREDICTORS["discrete"]("l2_risk", **resolved)
    checks = {}
    for name, prediction, jax_mean, jax_se, numpy_values in (
        (
            "support_size",
            support,
            result.mean("support_size"),
            result.moments["support_size"].standard_error,
            numpy_runs[:, :, 0],
        ),
        ("l2_risk", risk, result.mean("l2_risk"), result.moments["l2_risk"].standard_error, numpy_runs[:, :, 7]),
    ):
        target = float(np.asarray(prediction.mean)[-1])
        numpy_mean = float(numpy_values[:, -1].mean())
        numpy_se = float(numpy_values[:, -1].std(ddof=1) / math.sqrt(numpy_values.shape[0]))
        checks[name] = {
            "theory_at_G": target,
            "collapse_jax": {"mean": float(jax_mean[-1]), "z": float((jax_mean[-1] - target) / max(jax_se[-1], 1e-12))},
            "numpy": {"mean": numpy_mean, "z": (numpy_mean - target) / max(numpy_se, 1e-12)},
        }
        print(
            f"{name} at G: theory {target:.6g}, collapse-jax {checks[name]['collapse_jax']}, numpy {checks[name]['numpy']}"
        )
    report = {
        "benchmark": "bench_discrete",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": f"{jax.devices()[0].device_kind} x {jax.device_count()}",
        "jax_version": jax.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "workload": dict(categories=k, beta=args.beta, samples=m, chains=c, generations=g, policy="replace"),
        "collapse_jax": {
            "compile_seconds": compile_timer.wall,
            "run_seconds": run_timer.wall,
            "cpu_seconds": run_timer.cpu,
            "load_after": run_timer.load,
        },
        "numpy": {
            "sampler": fastest,
            "seconds_per_chain_by_sampler": sampler_seconds,
            "chains_timed": args.numpy_chains,
            "seconds_timed": numpy_timer.wall,
            "seconds_scaled_to_all_chains": numpy_scaled,
            "load_after": numpy_timer.load,
        },
        "ratio_numpy_over_collapse_jax": ratio,
        "checks": checks,
        "load_average_at_end": load_average(),
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
