"""Benchmark: the 1-D Gaussian "replace" chain, collapse-jax against two plain NumPy implementations.

Workload (defaults): C = 10^4 chains x G = 100 generations x M = 100 samples per generation, unbiased
estimator (ddof=1). Generation 1 draws M points from N(0, 1); generation k >= 2 draws M points from
N(mean_{k-1}, var_{k-1}); every generation refits the mean and the variance (np.mean / np.var(ddof=1)).

Timed in one run:
  (a) collapse-jax, `run_chains` with method="samples": compilation and execution separately
      (RunResult.compile_seconds / run_seconds), then a second full call (wall time);
  (b) a plain NumPy loop per chain and per generation, timed on a subset of the chains and scaled
      linearly to C;
  (c) NumPy vectorised over chains, one (C, M) array per generation;
  (d) collapse-jax, method="sufficient" against method="samples" at a large sample size
      (default 10^3 chains x G generations x M = 10^4).
A reference line times the random draws alone (C*G*M normals with jax.random in one compiled program),
the floor of any implementation of (a) that draws the points.

Sanity check: the unbiased variance is a martingale, so the mean over chains of the variance ratio at
the last generation is 1 for every implementation; the three estimates agree only statistically.

Usage:
  PYTHONPATH=. python benchmarks/bench_gaussian.py
  PYTHONPATH=. python benchmarks/bench_gaussian.py --quick
  PYTHONPATH=. python benchmarks/bench_gaussian.py --json results/bench_gaussian.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time

import numpy as np

TARGET_VS_LOOP = 30.0
TARGET_VS_VECTORISED = 2.0
TARGET_SUFFICIENT = 50.0


class Timer:
    """Wall time and process CPU time (user + system, all threads) of a block, and the load average after."""

    def __enter__(self):
        self._times = os.times()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._start
        end = os.times()
        self.cpu = (end.user - self._times.user) + (end.system - self._times.system)
        self.load = load_average()
        return False


def load_average():
    """The 1/5/15-minute load averages, rounded, or None where the platform has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _summary(values) -> dict:
    """Mean and standard error of the mean of a 1-D array of per-chain values."""
    values = np.asarray(values, np.float64)
    n = values.size
    se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return {"mean": float(values.mean()), "standard_error": se, "chains": int(n)}


# --------------------------------------------------------------------------------------------------
# NumPy implementations
# --------------------------------------------------------------------------------------------------


def numpy_loop(num_chains: int, generations: int, samples: int, seed: int) -> np.ndarray:
    """One chain at a time, one generation at a time (float64). Returns the last variance per chain."""
    rng = np.random.default_rng(seed)
    last = np.empty(num_chains)
    for chain in range(num_chains):
        mu, var = 0.0, 1.0
        for _ in range(generations):
            x = rng.normal(mu, math.sqrt(var), samples)
            mu, var = x.mean(), x.var(ddof=1)
        last[chain] = var
    return last


def numpy_vectorised(num_chains: int, generations: int, samples: int, seed: int, dtype=np.float64) -> np.ndarray:
    """All chains at once, a (C, M) array per generation. Returns the last variance per chain."""
    rng = np.random.default_rng(seed)
    mu = np.zeros((num_chains, 1), dtype)
    sd = np.ones((num_chains, 1), dtype)
    var = np.ones((num_chains,), dtype)
    for _ in range(generations):
        x = rng.standard_normal((num_chains, samples), dtype=dtype)
        x *= sd
        x += mu
        mu = x.mean(axis=1, keepdims=True)
        var = x.var(axis=1, ddof=1)
        sd = np.sqrt(var)[:, None]
    return var


# --------------------------------------------------------------------------------------------------
# collapse-jax
# --------------------------------------------------------------------------------------------------


def gaussian_setting():
    import jax.numpy as jnp

    from collapse_jax.models.gaussian.model import gaussian_metrics, gaussian_params, make_gaussian
    from collapse_jax.types import Setting

    est = make_gaussian(ddof=1)
    true = gaussian_params(jnp.zeros(1), jnp.eye(1))
    return Setting("gaussian", est, true, lambda p, t: gaussian_metrics(p, t, ("trace_ratio", "mean_error_sq")))


def collapse_jax_run(setting, generations: int, samples: int, method: str, num_chains: int, seed: int):
    """One full `run_chains` call: (RunResult, Timer of the whole call)."""
    from collapse_jax.runner import run_chains
    from collapse_jax.types import ChainSpec

    spec = ChainSpec(num_generations=generations, samples=samples, policy="replace", method=method)
    with Timer() as timer:
        result = run_chains(setting, spec, seed=seed, num_chains=num_chains)
    return result, timer


def jax_rng_floor(num_chains: int, generations: int, samples: int, seed: int) -> tuple[float, float]:
    """Time C*G*M standard normals drawn by jax.random (a (C, M) block per generation, one program).

    Returns (compile seconds, execution seconds).
    """
    import jax
    import jax.numpy as jnp

    def draw_all(key):
        def step(total, generation):
            x = jax.random.normal(jax.random.fold_in(key, generation), (num_chains, samples))
            return total + x.sum(axis=1), None

        total, _ = jax.lax.scan(step, jnp.zeros((num_chains,)), jnp.arange(generations))
        return total

    key = jax.random.key(seed)
    start = time.perf_counter()
    compiled = jax.jit(draw_all).lower(key).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(key))
    return compile_seconds, time.perf_counter() - start


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time the 1-D Gaussian replace chain: collapse-jax vs a NumPy loop vs vectorised NumPy."
    )
    parser.add_argument("--chains", type=int, default=None, help="chains C (default 10000; --quick 2000)")
    parser.add_argument("--generations", type=int, default=None, help="generations G (default 100; --quick 50)")
    parser.add_argument("--samples", type=int, default=None, help="samples per generation M (default 100)")
    parser.add_argument(
        "--numpy-loop-chains",
        type=int,
        default=None,
        help="chains timed with the NumPy loop, scaled linearly to --chains (default 1000; --quick 200)",
    )
    parser.add_argument(
        "--sufficient-samples",
        type=int,
        default=None,
        help="M for the sufficient-vs-samples comparison (default 10000)",
    )
    parser.add_argument(
        "--sufficient-chains", type=int, default=None, help="chains for that comparison (default 1000; --quick 100)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON to PATH")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes and one call per collapse-jax configuration: a smoke test (about 10 s on 2 CPU cores)",
    )
    args = parser.parse_args(argv)

    quick = args.quick
    defaults = {
        "chains": 2_000 if quick else 10_000,
        "generations": 50 if quick else 100,
        "samples": 100,
        "numpy_loop_chains": 200 if quick else 1_000,
        "sufficient_samples": 10_000,
        "sufficient_chains": 100 if quick else 1_000,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in defaults:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.samples < 2 or args.sufficient_samples < 2:
        parser.error("the unbiased variance needs at least 2 samples per generation")
    args.numpy_loop_chains = min(args.numpy_loop_chains, args.chains)
    return args


def _load_average():
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def _fmt_seconds(s: float) -> str:
    return f"{s:9.3f} s"


def _fmt_rate(r: float) -> str:
    return f"{r:12.4g}"


def main(argv=None) -> dict:
    args = parse_args(argv)

    import jax

    C, G, M = args.chains, args.generations, args.samples
    work = C * G  # chain-generations
    rows = []  # (label, seconds, note)

    print(f"Gaussian replace chain, ddof=1: C={C} chains x G={G} generations x M={M} samples")
    print(
        f"jax {jax.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
        f"os.cpu_count()={os.cpu_count()}, backend={jax.default_backend()}"
    )
    load_start = _load_average()
    if load_start is not None:
        print(f"load average at start (1/5/15 min): {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    print()

    setting = gaussian_setting()

    # (a) collapse-jax, sample path.
    print("(a) collapse-jax method='samples' ...", flush=True)
    two_calls = not args.quick
    first, first_call = collapse_jax_run(setting, G, M, "samples", C, args.seed)
    if two_calls:
        second, second_call = collapse_jax_run(setting, G, M, "samples", C, args.seed)
    else:  # --quick: the first call stands in for the second
        second, second_call = first, first_call
    jax_exec = min(first.run_seconds, second.run_seconds)
    device = first.device

    # Reference: the random draws alone.
    print("    jax.random floor (draws only) ...", flush=True)
    floor_compile, floor_exec = jax_rng_floor(C, G, M, args.seed)

    # (b) NumPy loop on a subset of chains, scaled to C.
    L = args.numpy_loop_chains
    print(f"(b) NumPy loop over {L} chains (scaled x{C / L:g} to {C}) ...", flush=True)
    with Timer() as loop_timer:
        loop_last = numpy_loop(L, G, M, args.seed)
    loop_seconds = loop_timer.wall * C / L

    # (c) NumPy vectorised over chains (float64, as NumPy defaults; float32 as a reference since
    # collapse-jax computes in float32).
    print("(c) NumPy vectorised over chains ...", flush=True)
    with Timer() as vec_timer:
        vec_last = numpy_vectorised(C, G, M, args.seed)
    with Timer() as vec32_timer:
        vec32_last = numpy_vectorised(C, G, M, args.seed + 1, np.float32)

    # (d) sufficient-statistic path against the sample path at large M.
    SC, SM = args.sufficient_chains, args.sufficient_samples
    print(f"(d) method='sufficient' vs 'samples' at M={SM}, {SC} chains x {G} generations ...", flush=True)
    suff_samples, suff_samples_call = collapse_jax_run(setting, G, SM, "samples", SC, args.seed)
    suff_first, suff_first_call = collapse_jax_run(setting, G, SM, "sufficient", SC, args.seed)
    if two_calls:
        suff_second, suff_second_call = collapse_jax_run(setting, G, SM, "sufficient", SC, args.seed)
    else:
        suff_second, suff_second_call = suff_first, suff_first_call
    suff_exec = min(suff_first.run_seconds, suff_second.run_seconds)
    suff_ratio = suff_samples.run_seconds / suff_exec
    suff_ratio_wall = suff_samples_call.wall / suff_second_call.wall

    ratio_loop = loop_seconds / jax_exec
    ratio_vec = vec_timer.wall / jax_exec
    ratio_vec32 = vec32_timer.wall / jax_exec
    ratio_loop_wall = loop_seconds / second_call.wall
    ratio_vec_wall = vec_timer.wall / second_call.wall

    # ---------------------------------------------------------------------------------------------
    print()
    print(f"Device (collapse-jax): {device}; chunk size {first.chunk_size}")
    print()
    header = f"{'implementation':<52} {'time':>11} {'chain-gen/s':>12} {'CPU/wall':>9}"
    print(header)
    print("-" * len(header))

    def row(label, seconds, cpu=None, wall=None):
        util = f"{cpu / wall:9.2f}" if cpu is not None and wall else f"{'':>9}"
        print(f"{label:<52} {_fmt_seconds(seconds)} {_fmt_rate(work / seconds)} {util}")
        rows.append({"implementation": label, "seconds": seconds, "chain_generations_per_second": work / seconds})

    row("collapse-jax samples: compile (1st call)", first.compile_seconds)
    calls = "best of 2 calls" if two_calls else "1 call, --quick"
    row(f"collapse-jax samples: execute ({calls})", jax_exec)
    row("collapse-jax samples: full 1st call (wall)", first_call.wall, first_call.cpu, first_call.wall)
    if two_calls:
        row("collapse-jax samples: full 2nd call (wall)", second_call.wall, second_call.cpu, second_call.wall)
    row("  reference: jax.random draws only (execute)", floor_exec)
    row(f"NumPy loop (timed on {L} chains, scaled to {C})", loop_seconds, loop_timer.cpu, loop_timer.wall)
    row("NumPy vectorised over chains, float64", vec_timer.wall, vec_timer.cpu, vec_timer.wall)
    row("NumPy vectorised over chains, float32 (reference)", vec32_timer.wall, vec32_timer.cpu, vec32_timer.wall)
    if L < C:
        print(f"(NumPy loop: measured {loop_timer.wall:.3f} s for {L} chains, scaled linearly by {C / L:g}.)")
    if two_calls:
        print(
            f"(collapse-jax: 1st call compile {first.compile_seconds:.3f} s, execute {first.run_seconds:.3f} s; "
            f"2nd call compile {second.compile_seconds:.3f} s, execute {second.run_seconds:.3f} s.)"
        )
    print(f"(jax.random draws only: compile {floor_compile:.3f} s, execute {floor_exec:.3f} s.)")

    def verdict(value, target):
        return "meets" if value >= target else "MISSES"

    print()
    full = "full 2nd call" if two_calls else "full 1st call"
    print(f"Ratios (execution time of collapse-jax; in brackets: against its {full}, compile included)")
    print(
        f"  collapse-jax vs NumPy loop        : {ratio_loop:8.2f}x  [{ratio_loop_wall:6.2f}x]"
        f"  target >= {TARGET_VS_LOOP:g}x: {verdict(ratio_loop, TARGET_VS_LOOP)}"
    )
    print(
        f"  collapse-jax vs NumPy vectorised  : {ratio_vec:8.2f}x  [{ratio_vec_wall:6.2f}x]"
        f"  target >= {TARGET_VS_VECTORISED:g}x: {verdict(ratio_vec, TARGET_VS_VECTORISED)}"
    )
    print(f"  collapse-jax vs vectorised float32: {ratio_vec32:8.2f}x  (reference)")
    print(f"  draws-only share of collapse-jax execution: {floor_exec / jax_exec:6.1%}")

    print()
    print(f"Sufficient-statistic path vs sample path: M={SM}, {SC} chains x {G} generations")
    print(f"  samples   : compile {suff_samples.compile_seconds:8.3f} s, execute {suff_samples.run_seconds:9.3f} s")
    print(f"  sufficient: compile {suff_first.compile_seconds:8.3f} s, execute {suff_exec:9.3f} s ({calls})")
    print(
        f"  ratio (execute) {suff_ratio:8.1f}x  target >= {TARGET_SUFFICIENT:g}x: "
        f"{verdict(suff_ratio, TARGET_SUFFICIENT)};  ratio (full call wall, compile included) {suff_ratio_wall:.1f}x"
    )

    # Sanity: mean variance ratio at the last generation (a martingale: expectation 1).
    jax_tr = float(first.mean("trace_ratio")[-1])
    jax_se = float(first.standard_error("trace_ratio")[-1])
    sanity = {
        "collapse-jax samples": {"mean": jax_tr, "standard_error": jax_se, "chains": C},
        "NumPy loop": _summary(loop_last),
        "NumPy vectorised float64": _summary(vec_last),
        "NumPy vectorised float32": _summary(vec32_last),
        f"collapse-jax samples (M={SM})": {
            "mean": float(suff_samples.mean("trace_ratio")[-1]),
            "standard_error": float(suff_samples.standard_error("trace_ratio")[-1]),
            "chains": SC,
        },
        f"collapse-jax sufficient (M={SM})": {
            "mean": float(suff_first.mean("trace_ratio")[-1]),
            "standard_error": float(suff_first.standard_error("trace_ratio")[-1]),
            "chains": SC,
        },
    }
    # Exact: var_G / var_0 is a product of G independent chi2_{M-1}/(M-1) factors.
    theory_sd = math.sqrt((1.0 + 2.0 / (M - 1)) ** G - 1.0)
    print()
    print(
        f"Sanity: mean over chains of var_G / var_0 at generation G={G} (expected 1; "
        f"per-chain sd in theory {theory_sd:.3f} at M={M};\n"
        f"        the ratio is right-skewed, so standard errors from few chains are rough)"
    )
    all_ok = True
    for label, s in sanity.items():
        z = (s["mean"] - 1.0) / s["standard_error"] if s["standard_error"] > 0 else float("nan")
        ok = abs(z) <= 4.0
        all_ok &= ok
        s["z"] = z
        print(
            f"  {label:<34} {s['mean']:.4f} +- {s['standard_error']:.4f}  ({s['chains']} chains, "
            f"z = {z:+.2f}){'' if ok else '  <-- more than 4 standard errors from 1'}"
        )

    load_end = _load_average()
    if load_start is not None and load_end is not None:
        print(
            f"\nload average at end (1/5/15 min): {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}"
            f"{'  (load above 0.5 at start: other work may have slowed these timings)' if load_start[0] > 0.5 else ''}"
        )

    results = {
        "benchmark": "gaussian_replace_1d_ddof1",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "jax_version": jax.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "device": device,
        "load_average_start": list(load_start) if load_start is not None else None,
        "load_average_end": list(load_end) if load_end is not None else None,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "config": {
            "chains": C,
            "generations": G,
            "samples": M,
            "numpy_loop_chains": L,
            "sufficient_chains": SC,
            "sufficient_samples": SM,
            "seed": args.seed,
            "quick": args.quick,
            "chunk_size": first.chunk_size,
        },
        "collapse_jax_samples": {
            "first_call": {
                "compile_seconds": first.compile_seconds,
                "run_seconds": first.run_seconds,
                "wall_seconds": first_call.wall,
                "cpu_seconds": first_call.cpu,
            },
            "second_call": {
                "compile_seconds": second.compile_seconds,
                "run_seconds": second.run_seconds,
                "wall_seconds": second_call.wall,
                "cpu_seconds": second_call.cpu,
            }
            if two_calls
            else None,
            "execute_seconds": jax_exec,
        },
        "jax_random_floor": {"compile_seconds": floor_compile, "run_seconds": floor_exec},
        "numpy_loop": {
            "measured_chains": L,
            "measured_seconds": loop_timer.wall,
            "cpu_seconds": loop_timer.cpu,
            "scaled_seconds": loop_seconds,
        },
        "numpy_vectorised": {"seconds": vec_timer.wall, "cpu_seconds": vec_timer.cpu},
        "numpy_vectorised_float32": {"seconds": vec32_timer.wall, "cpu_seconds": vec32_timer.cpu},
        "sufficient_vs_samples": {
            "samples": {
                "compile_seconds": suff_samples.compile_seconds,
                "run_seconds": suff_samples.run_seconds,
                "wall_seconds": suff_samples_call.wall,
            },
            "sufficient": {
                "compile_seconds": suff_first.compile_seconds,
                "run_seconds": suff_exec,
                "first_call_wall_seconds": suff_first_call.wall,
                "second_call_wall_seconds": suff_second_call.wall if two_calls else None,
            },
            "ratio_execute": suff_ratio,
            "ratio_wall": suff_ratio_wall,
        },
        "rows": rows,
        "ratios": {
            "vs_numpy_loop": ratio_loop,
            "vs_numpy_vectorised": ratio_vec,
            "vs_numpy_vectorised_float32": ratio_vec32,
            "vs_numpy_loop_full_call": ratio_loop_wall,
            "vs_numpy_vectorised_full_call": ratio_vec_wall,
            "sufficient_vs_samples": suff_ratio,
        },
        "targets": {
            "vs_numpy_loop": {"target": TARGET_VS_LOOP, "met": ratio_loop >= TARGET_VS_LOOP},
            "vs_numpy_vectorised": {"target": TARGET_VS_VECTORISED, "met": ratio_vec >= TARGET_VS_VECTORISED},
            "sufficient_vs_samples": {"target": TARGET_SUFFICIENT, "met": suff_ratio >= TARGET_SUFFICIENT},
        },
        "sanity_last_generation_trace_ratio": sanity,
        "sanity_ok": all_ok,
    }
    if args.json:
        directory = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(directory, exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
        print(f"\nWrote {args.json}")
    return results


if __name__ == "__main__":
    main()
