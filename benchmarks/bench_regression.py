"""Benchmark: OLS "replace" chains (linear regression, fresh design), collapse-jax against a NumPy loop.

Workload (defaults, the size the project promises): C = 10^4 chains x G = 50 generations, d = 50
features, T = 200 rows per generation, fresh design (new X every generation), isotropic features
x ~ N(0, I_d), w* ~ N(0, I_d / d) drawn per chain, label noise sigma^2 = 1, OLS (ridge 0), replace.
Generation 1 fits y = X w* + noise; generation k >= 2 fits y = X w_{k-1} + noise on fresh rows X.
Metric: excess risk ||w_k - w*||^2, whose exact mean is k sigma^2 d / (T - d - 1) (T >= d + 2).

Timed in one run:
  (a) collapse-jax, method="samples": `collapse_jax.simulate.prepare` (validation and compilation,
      timed apart) then `collapse_jax.runner.execute` (the execution, the number the ratio uses);
  (b) a plain NumPy loop per chain and per generation, float64, with one BLAS thread
      (OPENBLAS/MKL/OMP_NUM_THREADS=1, set before NumPy is imported unless already set, as
      bench_sweep.py does for numpy_reference.py): X = rng.standard_normal((T, d));
      y = X @ w + sigma * rng.standard_normal(T); w = np.linalg.solve(X.T @ X, X.T @ y);
      ||w - w*||^2. Timed on --numpy-chains chains and scaled linearly to C;
  (c) collapse-jax, method="sufficient" (X^T X drawn from its Wishart law through a Bartlett factor,
      X^T noise from N(0, X^T X): exact, cost independent of T) on the same C chains;
  (d) both methods at T = 200 and at a larger T (default 2000) on --large-chains chains (default
      500: the sample path at T = 2000 costs about ten times the main run per chain), showing that
      the sample path grows with T and the sufficient path does not;
  (e) a breakdown of one generation's arithmetic in stand-alone compiled programs (draws only; draws
      and X^T X; draws, X^T X and the pure-array Cholesky solve collapse-jax uses on CPU; the solve
      alone; the Bartlett factor alone), next to the same pieces in NumPy. With --lapack-reference,
      the chain's arithmetic with LAPACK's Cholesky instead (in a child process with a timeout:
      LAPACK calls inside scans can deadlock the XLA CPU runtime, which is why collapse-jax avoids
      them on CPU).

Check: the mean excess risk of every implementation is compared with k sigma^2 d / (T - d - 1) at
every generation k = 1..G (z = (mean - theory) / SE; fails beyond 5 SE), so a fast but wrong kernel
cannot pass unnoticed.

Usage:
  PYTHONPATH=. python benchmarks/bench_regression.py --out benchmarks/results/bench_regression_cpu2.json
  PYTHONPATH=. python benchmarks/bench_regression.py --quick      # smoke test (small sizes)
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before NumPy loads its BLAS: the NumPy loop runs on one thread

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from bench_gaussian import Timer, load_average  # noqa: E402  (this script's directory is on sys.path)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET_VS_LOOP = 20.0
Z_LIMIT = 5.0
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def theory_mean(generations: int, dim: int, samples: int, noise_var: float) -> np.ndarray:
    """E ||w_k - w*||^2 = k sigma^2 d / (T - d - 1) for k = 0..G (OLS, replace, fresh design, T >= d + 2)."""
    return np.arange(generations + 1) * noise_var * dim / (samples - dim - 1)


def check_theory(mean: np.ndarray, se: np.ndarray, theory: np.ndarray, chains: int) -> dict:
    """z-scores of the chain mean against theory at generations 1..G."""
    z = (mean[1:] - theory[1:]) / se[1:]
    worst = int(np.argmax(np.abs(z)))
    return {
        "chains": chains,
        "mean_at_G": float(mean[-1]),
        "standard_error_at_G": float(se[-1]),
        "theory_at_G": float(theory[-1]),
        "relative_error_at_G": float(mean[-1] / theory[-1] - 1.0),
        "z_at_G": float(z[-1]),
        "max_abs_z": float(abs(z[worst])),
        "generation_of_max_abs_z": worst + 1,
        "ok": bool(np.all(np.isfinite(z)) and np.max(np.abs(z)) <= Z_LIMIT),
    }


# --------------------------------------------------------------------------------------------------
# NumPy
# --------------------------------------------------------------------------------------------------


def numpy_loop(num_chains: int, generations: int, dim: int, samples: int, noise_var: float, seed: int) -> np.ndarray:
    """One chain at a time, one generation at a time (float64). Returns excess risks `(chains, G + 1)`."""
    rng = np.random.default_rng(seed)
    noise_sd = math.sqrt(noise_var)
    risk = np.zeros((num_chains, generations + 1))
    for chain in range(num_chains):
        w_star = rng.standard_normal(dim) / math.sqrt(dim)
        w = w_star
        for k in range(1, generations + 1):
            x = rng.standard_normal((samples, dim))
            y = x @ w + noise_sd * rng.standard_normal(samples)
            w = np.linalg.solve(x.T @ x, x.T @ y)
            diff = w - w_star
            risk[chain, k] = diff @ diff
    return risk


def numpy_pieces(dim: int, samples: int, repeats: int, seed: int) -> dict:
    """Seconds per generation of the NumPy loop's pieces (float64, one BLAS thread)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, dim))
    y = rng.standard_normal(samples)
    gram, moment = x.T @ x, x.T @ y
    pieces = {
        "draws (X and noise)": lambda: (rng.standard_normal((samples, dim)), rng.standard_normal(samples)),
        "X^T X and X^T y": lambda: (x.T @ x, x.T @ y),
        "np.linalg.solve (d x d)": lambda: np.linalg.solve(gram, moment),
    }
    out = {}
    for label, fn in pieces.items():
        fn()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        out[label] = (time.perf_counter() - start) / repeats
    return out


# --------------------------------------------------------------------------------------------------
# collapse-jax
# --------------------------------------------------------------------------------------------------


def collapse_jax_run(
    chains: int, generations: int, dim: int, samples: int, noise_var: float, method: str, seed: int, chunk_size: int = 0
) -> dict:
    """`simulate.prepare` (compile) then `runner.execute` for the regression setting; timings and check."""
    from collapse_jax.runner import execute
    from collapse_jax.simulate import prepare

    overrides = {
        "dim": dim,
        "samples": samples,
        "generations": generations,
        "chains": chains,
        "noise_var": noise_var,
        "ridge": 0.0,
        "design": "fresh",
        "spectrum": "isotropic",
        "true_weights": "random",
        "policy": "replace",
        "method": method,
        "metrics": "excess_risk",
        "seed": seed,
        "chunk_size": chunk_size,
        # every chunk then carries histories, so execute runs the one program prepare compiled
        "quantile_chains": chains,
    }
    with Timer() as prepare_timer:
        _, prepared = prepare("regression", overrides)
    with Timer() as execute_timer:
        result = execute(prepared)
    theory = theory_mean(generations, dim, samples, noise_var)
    return {
        "method": method,
        "chains": chains,
        "generations": generations,
        "samples": samples,
        "dim": dim,
        "chunk_size": result.chunk_size,
        "device": result.device,
        "compile_seconds": prepared.compile_seconds,
        "prepare_wall_seconds": prepare_timer.wall,
        "execute_seconds": execute_timer.wall,
        "execute_cpu_seconds": execute_timer.cpu,
        "run_seconds": result.run_seconds,
        "microseconds_per_chain_generation": execute_timer.wall / (chains * generations) * 1e6,
        "load_average_after": execute_timer.load,
        "check": check_theory(result.mean("excess_risk"), result.standard_error("excess_risk"), theory, chains),
    }


def piece_program(kind: str, chains: int, generations: int, dim: int, samples: int):
    """A stand-alone compiled program doing one piece of a generation's arithmetic for `chains` x
    `generations` (vmapped chains, scanned generations, float32, per-chain keys as the chain uses)."""
    import jax
    import jax.numpy as jnp

    from collapse_jax.linalg import bartlett_factor, spd_solve

    def chain(key):
        base = jnp.eye(dim) * samples + 0.1 * jax.random.normal(jax.random.fold_in(key, 1 << 30), (dim, dim))
        base = 0.5 * (base + base.T)

        def step(w, generation):
            key_x, key_noise = jax.random.split(jax.random.fold_in(key, generation))
            if kind == "solve":  # the d x d solve alone, on a matrix that depends on the carry
                matrix = base + jnp.diag(1e-3 * w * w)
                return spd_solve(matrix, matrix @ w + 1.0), None
            if kind == "bartlett":  # the sufficient path's draw of X^T X
                root = bartlett_factor(key_x, samples, dim, w.dtype)
                return w + 1e-6 * (root @ root.T)[0], None
            x = jax.random.normal(key_x, (samples, dim))
            y = x @ w + jax.random.normal(key_noise, (samples,))
            if kind == "draws":
                return w + 1e-6 * (jnp.sum(x, axis=0) + y[:dim]), None
            gram, moment = x.T @ x, x.T @ y
            if kind == "gram":
                return w + 1e-6 * (gram[0] + moment), None
            if kind == "chain":
                return spd_solve(gram, moment), None
            if kind == "chain-lapack":
                return jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(gram), True), moment), None
            raise ValueError(kind)

        w, _ = jax.lax.scan(step, jnp.zeros((dim,)), jnp.arange(generations))
        return jnp.sum(w * w)

    keys = jax.random.split(jax.random.key(0), chains)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(chain)).lower(keys).compile()
    return compiled, keys, time.perf_counter() - start


def time_piece(kind: str, chains: int, generations: int, dim: int, samples: int) -> dict:
    import jax

    compiled, keys, compile_seconds = piece_program(kind, chains, generations, dim, samples)
    with Timer() as timer:
        jax.block_until_ready(compiled(keys))
    return {
        "piece": kind,
        "compile_seconds": compile_seconds,
        "execute_seconds": timer.wall,
        "cpu_seconds": timer.cpu,
        "microseconds_per_chain_generation": timer.wall / (chains * generations) * 1e6,
        "load_average_after": timer.load,
    }


def time_piece_subprocess(kind: str, chains: int, generations: int, dim: int, samples: int, timeout: float) -> dict:
    """`time_piece` in a child process (LAPACK inside a scan may deadlock the XLA CPU runtime)."""
    script = (
        f"import json, sys; sys.path.insert(0, {HERE!r}); import bench_regression as b; "
        f"print(json.dumps(b.time_piece({kind!r}, {chains}, {generations}, {dim}, {samples})))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, PYTHONPATH=ROOT),
        )
    except subprocess.TimeoutExpired:
        return {"piece": kind, "error": f"no result within {timeout:g} s (deadlock?)"}
    if done.returncode != 0:
        return {"piece": kind, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time OLS replace chains (fresh design): collapse-jax vs a NumPy loop per chain, and the "
        "sufficient-statistic path vs the sample path."
    )
    parser.add_argument("--chains", type=int, default=None, help="chains C (default 10000; --quick 500)")
    parser.add_argument("--dim", type=int, default=50, help="features d (default 50)")
    parser.add_argument("--samples", type=int, default=200, help="rows per generation T (default 200)")
    parser.add_argument("--generations", type=int, default=None, help="generations G (default 50; --quick 10)")
    parser.add_argument("--noise-var", type=float, default=1.0, help="label noise variance sigma^2 (default 1)")
    parser.add_argument(
        "--numpy-chains",
        type=int,
        default=None,
        help="chains timed with the NumPy loop, scaled linearly to --chains (default 500; --quick 50)",
    )
    parser.add_argument(
        "--large-samples",
        type=int,
        default=None,
        help="the larger T for sufficient vs samples (default 2000; --quick 1000)",
    )
    parser.add_argument(
        "--large-chains", type=int, default=None, help="chains for the T comparison (default 500; --quick 100)"
    )
    parser.add_argument(
        "--breakdown-chains",
        type=int,
        default=None,
        help="chains for the breakdown programs (default 1000; --quick 100); 0 skips the breakdown",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=0,
        help="chains per compiled call of collapse-jax (default 0: sized from free memory)",
    )
    parser.add_argument(
        "--host-devices",
        type=int,
        default=0,
        help="force N CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=N) so that "
        "collapse-jax shards chains over N cores; default 0: JAX's default (one CPU device, "
        "which runs a program's chains on one thread)",
    )
    parser.add_argument(
        "--lapack-reference",
        action="store_true",
        help="also time the chain's arithmetic with LAPACK's Cholesky (child process, with a timeout)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", metavar="PATH", default=None, help="write the results as JSON to PATH")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "chains": 500 if quick else 10_000,
        "generations": 10 if quick else 50,
        "numpy_chains": 50 if quick else 500,
        "large_samples": 1000 if quick else 2000,
        "large_chains": 100 if quick else 500,
        "breakdown_chains": 100 if quick else 1000,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("chains", "generations", "numpy_chains", "large_chains", "dim"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.samples < args.dim + 2 or args.large_samples < args.dim + 2:
        parser.error("the OLS theory needs T >= d + 2 (--samples and --large-samples)")
    args.numpy_chains = min(args.numpy_chains, args.chains)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.host_devices > 0:
        if "jax" in sys.modules:
            raise RuntimeError("--host-devices must be set before JAX is imported")
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={args.host_devices}".strip()

    import jax

    C, G, d, T, s2 = args.chains, args.generations, args.dim, args.samples, args.noise_var
    TL, L = args.large_samples, args.large_chains
    devices = jax.devices()
    device = f"{len(devices)} x {devices[0].device_kind} ({jax.default_backend()})"
    load_start = load_average()
    print(
        f"OLS replace chains, fresh isotropic design: C={C} chains x G={G} generations, d={d}, T={T}, "
        f"sigma^2={s2:g}; theory E||w_k - w*||^2 = k sigma^2 d/(T-d-1) = {s2 * d / (T - d - 1):.5g} k"
    )
    print(
        f"jax {jax.__version__} on {device}, numpy {np.__version__}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs ({_cpu_model()}); BLAS threads for NumPy: "
        + ", ".join(f"{k}={os.environ.get(k)}" for k in BLAS_VARIABLES)
    )
    print(f"load average at start (1/5/15 min): {load_start}", flush=True)

    # (a) collapse-jax, sample path, the promised size.
    print(f"(a) collapse-jax method='samples', {C} chains ...", flush=True)
    main_run = collapse_jax_run(C, G, d, T, s2, "samples", args.seed, args.chunk_size)
    print(
        f"    compile {main_run['compile_seconds']:.2f} s, execute {main_run['execute_seconds']:.2f} s "
        f"(load {main_run['load_average_after']})",
        flush=True,
    )

    # (b) NumPy loop on a subset of chains, scaled to C.
    N = args.numpy_chains
    print(f"(b) NumPy loop over {N} chains (scaled x{C / N:g} to {C}) ...", flush=True)
    with Timer() as loop_timer:
        loop_risk = numpy_loop(N, G, d, T, s2, args.seed)
    loop_seconds = loop_timer.wall * C / N
    loop_check = check_theory(loop_risk.mean(0), loop_risk.std(0, ddof=1) / math.sqrt(N), theory_mean(G, d, T, s2), N)
    pieces_np = numpy_pieces(d, T, 2000, args.seed)
    print(
        f"    {loop_timer.wall:.2f} s for {N} chains -> {loop_seconds:.1f} s for {C} (load {loop_timer.load})",
        flush=True,
    )

    # (c) sufficient path on the same chains.
    print(f"(c) collapse-jax method='sufficient', {C} chains, T={T} ...", flush=True)
    suff_main = collapse_jax_run(C, G, d, T, s2, "sufficient", args.seed, args.chunk_size)
    print(
        f"    compile {suff_main['compile_seconds']:.2f} s, execute {suff_main['execute_seconds']:.2f} s "
        f"(load {suff_main['load_average_after']})",
        flush=True,
    )

    # (d) both paths at T and at the larger T, on L chains.
    grid = {}
    for samples in (T, TL):
        for method in ("samples", "sufficient"):
            print(f"(d) collapse-jax method={method!r}, {L} chains, T={samples} ...", flush=True)
            grid[(method, samples)] = collapse_jax_run(L, G, d, samples, s2, method, args.seed, args.chunk_size)
            run = grid[(method, samples)]
            print(
                f"    compile {run['compile_seconds']:.2f} s, execute {run['execute_seconds']:.2f} s "
                f"(load {run['load_average_after']})",
                flush=True,
            )

    # (e) breakdown of a generation's arithmetic.
    breakdown, shares = [], None
    B = args.breakdown_chains
    if B > 0:
        print(f"(e) breakdown programs, {B} chains x {G} generations ...", flush=True)
        for kind in ("draws", "gram", "chain", "solve", "bartlett"):
            breakdown.append(time_piece(kind, B, G, d, T))
        if args.lapack_reference:
            breakdown.append(time_piece_subprocess("chain-lapack", B, G, d, T, timeout=300))

    load_end = load_average()

    # ----------------------------------------------------------------------------------------- report
    jax_exec = main_run["execute_seconds"]
    jax_full = main_run["prepare_wall_seconds"] + jax_exec
    cpus = os.cpu_count() or 1
    ratio = loop_seconds / jax_exec
    ratio_full = loop_seconds / jax_full
    ratio_cpu = (loop_timer.cpu * C / N) / main_run["execute_cpu_seconds"]
    suff_ratio_main = jax_exec / suff_main["execute_seconds"]
    seconds = {key: run["execute_seconds"] for key, run in grid.items()}
    suff_ratio = {samples: seconds[("samples", samples)] / seconds[("sufficient", samples)] for samples in (T, TL)}

    def us(seconds, chains):
        return seconds / (chains * G) * 1e6

    print()
    header = f"{'implementation':<60} {'time':>10} {'us/chain-gen':>13} {'CPU/wall':>9}"
    print(header)
    print("-" * len(header))

    def row(label, seconds, chains, cpu=None):
        util = f"{cpu / seconds:9.2f}" if cpu is not None and seconds > 0 else f"{'':>9}"
        print(f"{label:<60} {seconds:8.2f} s {us(seconds, chains):13.1f} {util}")

    row(f"collapse-jax samples T={T}: compile", main_run["compile_seconds"], C)
    row(f"collapse-jax samples T={T}: execute ({C} chains)", jax_exec, C, main_run["execute_cpu_seconds"])
    row(f"NumPy loop ({N} chains timed, x{C / N:g})", loop_seconds, C, loop_timer.cpu * C / N)
    row(
        f"collapse-jax sufficient T={T}: execute ({C} chains)",
        suff_main["execute_seconds"],
        C,
        suff_main["execute_cpu_seconds"],
    )
    for (method, samples), run in grid.items():
        row(
            f"collapse-jax {method} T={samples}: execute ({L} chains)",
            run["execute_seconds"],
            L,
            run["execute_cpu_seconds"],
        )
    print(
        f"(NumPy loop measured {loop_timer.wall:.3f} s for {N} chains, {loop_timer.wall / N * 1e3:.2f} ms per chain; "
        f"collapse-jax chunk size {main_run['chunk_size']}.)"
    )

    verdict = "met" if ratio >= TARGET_VS_LOOP else "MISSED"
    print()
    print(
        f"Ratio NumPy loop / collapse-jax execute: {ratio:.2f}x (target >= {TARGET_VS_LOOP:g}x: {verdict}); "
        f"with compile: {ratio_full:.2f}x; against NumPy on all {cpus} cores: {ratio / cpus:.2f}x; "
        f"CPU-time ratio: {ratio_cpu:.2f}x"
    )
    print(
        f"Sufficient vs samples, execute: T={T}, {C} chains: {suff_ratio_main:.2f}x;  "
        f"{L} chains: T={T} {suff_ratio[T]:.2f}x, T={TL} {suff_ratio[TL]:.2f}x"
    )
    print(
        f"  samples path T={TL} / T={T}: {seconds[('samples', TL)] / seconds[('samples', T)]:.2f}x;  "
        f"sufficient path T={TL} / T={T}: {seconds[('sufficient', TL)] / seconds[('sufficient', T)]:.2f}x"
    )

    if breakdown:
        print()
        print(
            f"Breakdown: one generation's arithmetic in stand-alone programs ({B} chains x {G} generations, "
            f"float32), and the NumPy loop's pieces (float64)"
        )
        labels = {
            "draws": "draws: X (T x d) and noise (T)",
            "gram": "draws + X^T X, X^T y",
            "chain": "draws + X^T X + pure-array Cholesky solve (the chain)",
            "solve": "pure-array Cholesky solve alone",
            "bartlett": "Bartlett factor R and R R^T (sufficient path draw)",
            "chain-lapack": "draws + X^T X + LAPACK Cholesky solve (reference)",
        }
        for piece in breakdown:
            if "error" in piece:
                print(f"  {labels[piece['piece']]:<58} {piece['error']}")
            else:
                print(f"  {labels[piece['piece']]:<58} {piece['microseconds_per_chain_generation']:9.1f} us/chain-gen")
        by_kind = {p["piece"]: p["microseconds_per_chain_generation"] for p in breakdown if "error" not in p}
        if all(k in by_kind for k in ("draws", "gram", "chain")):
            chain_us = by_kind["chain"]
            shares = {
                "draws": by_kind["draws"] / chain_us,
                "gram": (by_kind["gram"] - by_kind["draws"]) / chain_us,
                "solve": (chain_us - by_kind["gram"]) / chain_us,
            }
            print(
                f"  shares of the chain's arithmetic: draws {shares['draws']:.0%}, X^T X {shares['gram']:.0%}, "
                f"pure-array Cholesky solve {shares['solve']:.0%} (differences of separately timed programs, "
                f"so a piece within the noise can come out slightly negative)"
            )
        for label, seconds in pieces_np.items():
            print(f"  NumPy: {label:<51} {seconds * 1e6:9.1f} us/generation")
        print(f"  NumPy loop, whole:{'':<41} {loop_timer.wall / (N * G) * 1e6:9.1f} us/generation")

    checks = {
        f"collapse-jax samples T={T} ({C} chains)": main_run["check"],
        f"NumPy loop ({N} chains)": loop_check,
        f"collapse-jax sufficient T={T} ({C} chains)": suff_main["check"],
    }
    for (method, samples), run in grid.items():
        checks[f"collapse-jax {method} T={samples} ({L} chains)"] = run["check"]
    print()
    print(f"Check: mean excess risk against k sigma^2 d/(T-d-1) at k = 1..{G} (fail beyond {Z_LIMIT:g} SE)")
    all_ok = True
    for label, check in checks.items():
        all_ok &= check["ok"]
        print(
            f"  {label:<44} at G: {check['mean_at_G']:.4f} +- {check['standard_error_at_G']:.4f} "
            f"(theory {check['theory_at_G']:.4f}, z {check['z_at_G']:+.2f}); max |z| {check['max_abs_z']:.2f} "
            f"{'ok' if check['ok'] else 'FAIL'}"
        )
    print(f"load average at end (1/5/15 min): {load_end}")

    results = {
        "benchmark": "regression_ols_replace_fresh_isotropic",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "jax_version": jax.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "device": device,
        "dtype": {"collapse_jax": "float32", "numpy": "float64"},
        "blas_threads": {k: os.environ.get(k) for k in BLAS_VARIABLES},
        "load_average_start": load_start,
        "load_average_end": load_end,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "config": {
            "chains": C,
            "generations": G,
            "dim": d,
            "samples": T,
            "noise_var": s2,
            "design": "fresh",
            "spectrum": "isotropic",
            "policy": "replace",
            "ridge": 0.0,
            "numpy_chains": N,
            "large_samples": TL,
            "large_chains": L,
            "breakdown_chains": B,
            "chunk_size": args.chunk_size,
            "host_devices": args.host_devices,
            "xla_flags": os.environ.get("XLA_FLAGS"),
            "seed": args.seed,
            "quick": args.quick,
        },
        "collapse_jax_samples": main_run,
        "numpy_loop": {
            "measured_chains": N,
            "measured_seconds": loop_timer.wall,
            "cpu_seconds": loop_timer.cpu,
            "seconds_per_chain": loop_timer.wall / N,
            "scaled_seconds": loop_seconds,
            "microseconds_per_chain_generation": us(loop_timer.wall, N),
            "load_average_after": loop_timer.load,
            "solver": "np.linalg.solve(X.T @ X, X.T @ y)",
            "check": loop_check,
        },
        "numpy_pieces_seconds_per_generation": pieces_np,
        "collapse_jax_sufficient": suff_main,
        "samples_vs_large_T": {f"{method}_T{samples}": run for (method, samples), run in grid.items()},
        "breakdown": breakdown,
        "breakdown_shares_of_chain": shares,
        "ratios": {
            "vs_numpy_loop": ratio,
            "vs_numpy_loop_compile_included": ratio_full,
            "vs_numpy_loop_on_every_core": ratio / cpus,
            "vs_numpy_loop_cpu_time": ratio_cpu,
            "sufficient_vs_samples_main": suff_ratio_main,
            f"sufficient_vs_samples_T{T}": suff_ratio[T],
            f"sufficient_vs_samples_T{TL}": suff_ratio[TL],
        },
        "targets": {"vs_numpy_loop": {"target": TARGET_VS_LOOP, "met": ratio >= TARGET_VS_LOOP}},
        "checks_ok": all_ok,
    }
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as stream:
            json.dump(results, stream, indent=2)
        print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
