"""Benchmark: whole sweeps against per-run NumPy loops, and chains per second against chains and devices.

Grids (Kazdan et al. 2024, "Collapse or Thrive?"), 100 generations, 100 chains (seeds) per cell:
  gaussian    d in {1,3,10,31,100} x M in {10,32,100,316,1000} x 3 pool rules (MLE), 75 cells;
  regression  d in {1,3,10,32,100} x T in {10,32,100,316,1000} x sigma^2 in {0.1,1,10} x 3 pool rules,
              fixed design, 225 cells.

Timed in one run:
  collapse-jax  `collapse-jax sweep` in a fresh process, wall time including start-up and compilation,
                with an empty persistent compilation cache ("cold") and again with the cache it left
                ("warm"). For the Gaussian grid also with replace/accumulate on the exact
                sufficient-statistic path (`method = "sufficient"`, same law, cost independent of M,
                every M of a (d, rule) in one program) and accumulate-subsample on samples.
  NumPy         `numpy_reference.py`: one Python loop per run, fit with np.mean/np.cov (or pinv), sample
                with multivariate_normal, as the papers' code does; `--numpy-seeds` runs per cell are
                timed and scaled to 100, in a process with one BLAS thread (OPENBLAS_NUM_THREADS=1:
                multi-threaded BLAS stalls on small matrices on a loaded 2-core machine). The ratio
                is also given against that time divided by the CPU count (runs spread over one process
                per core, as W&B agents would be), which is the fairer baseline.

Scaling: chains per second of one compiled program (Gaussian d=1, M=10, G=10, replace) for 10^2 ...
10^7 chains (peak RSS recorded: summaries stream, so memory does not grow with the chain count), and
for 10^6 chains on 1, 2, 4, 8 forced CPU devices.

Usage:
  PYTHONPATH=. python benchmarks/bench_sweep.py grid --grid gaussian --json benchmarks/results/sweep_gaussian_cpu2.json
  PYTHONPATH=. python benchmarks/bench_sweep.py grid --grid regression --numpy-seeds 1 --json ...
  PYTHONPATH=. python benchmarks/bench_sweep.py scaling --json benchmarks/results/sweep_scaling_cpu2.json
  add --quick for a small version of either (a smoke test)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = 50.0

GRIDS = {
    "gaussian": {
        "setting": "gaussian",
        "fixed": {
            "generations": 100,
            "chains": 100,
            "ddof": 0,
            "metrics": ["mean_error_sq", "trace_ratio", "log_det_ratio"],
        },
        "axes": {
            "dim": [1, 3, 10, 31, 100],
            "samples": [10, 32, 100, 316, 1000],
            "policy": ["replace", "accumulate", "accumulate-subsample"],
        },
    },
    "regression": {
        "setting": "regression",
        "fixed": {"generations": 100, "chains": 100, "design": "fixed"},
        "axes": {
            "dim": [1, 3, 10, 32, 100],
            "samples": [10, 32, 100, 316, 1000],
            "noise_var": [0.1, 1.0, 10.0],
            "policy": ["replace", "accumulate", "accumulate-subsample"],
        },
    },
}
QUICK_AXES = {"dim": [1, 10], "samples": [10, 100]}


def _toml(spec: dict) -> str:
    def value(v):
        return json.dumps(v)  # TOML accepts JSON strings, numbers, booleans and arrays of them

    lines = [f'setting = "{spec["setting"]}"', f'name = "{spec["name"]}"', "[fixed]"]
    lines += [f"{k} = {value(v)}" for k, v in spec["fixed"].items()]
    lines += ["[axes]"] + [f"{k} = {value(v)}" for k, v in spec["axes"].items()]
    return "\n".join(lines) + "\n"


def _environment(cache: str, **extra) -> dict:
    env = dict(os.environ, COLLAPSE_JAX_CACHE_DIR=cache, PYTHONPATH=ROOT, **extra)
    env.pop("COLLAPSE_JAX_NO_CACHE", None)
    return env


def time_sweeps(specs: list[dict], work: str, cache: str) -> dict:
    """Wall time of `collapse-jax sweep` over the specs, one fresh process each."""
    total, report = 0.0, []
    for spec in specs:
        path = os.path.join(work, spec["name"] + ".toml")
        with open(path, "w") as stream:
            stream.write(_toml(spec))
        out = tempfile.mkdtemp(dir=work)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "collapse_jax", "sweep", path, "--out", out, "--quiet"],
            env=_environment(cache),
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        total += seconds
        report.append({"spec": spec, "seconds": seconds, "output": done.stdout.strip(), "out": out})
    return {"seconds": total, "runs": report}


def grid_specs(grid: str, quick: bool, sufficient: bool) -> list[dict]:
    base = json.loads(json.dumps(GRIDS[grid]))
    if quick:
        base["axes"].update(QUICK_AXES)
        base["fixed"]["generations"] = 20
    base["name"] = grid
    if not sufficient:
        return [base]
    exact = json.loads(json.dumps(base))
    exact["name"], exact["fixed"]["method"] = grid + "-sufficient", "sufficient"
    exact["axes"]["policy"] = ["replace", "accumulate"]
    subsample = json.loads(json.dumps(base))
    subsample["name"], subsample["axes"]["policy"] = grid + "-subsample", ["accumulate-subsample"]
    return [exact, subsample]


def time_numpy(grid: str, seeds: int, quick: bool, generations: int) -> dict:
    """numpy_reference in a process with one BLAS thread; returns its JSON report."""
    axes = GRIDS[grid]["axes"] | (QUICK_AXES if quick else {})
    script = f"""
import json, sys
sys.path.insert(0, {HERE!r})
import numpy_reference as ref
axes = {json.dumps(axes)}
if {grid!r} == "gaussian":
    cells = ref.gaussian_grid(axes["dim"], axes["samples"], axes["policy"], {generations})
    run = ref.gaussian_run
else:
    cells = ref.regression_grid(axes["dim"], axes["samples"], axes["noise_var"], axes["policy"], {generations})
    run = ref.regression_run
print(json.dumps(ref.time_grid(run, cells, {seeds}, 100)))
"""
    threads = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=dict(os.environ, **threads), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_grid(args) -> dict:
    generations = 20 if args.quick else 100
    cpus = os.cpu_count() or 1
    result = {"grid": args.grid, "generations": generations, "chains_per_cell": 100, "quick": args.quick}
    with tempfile.TemporaryDirectory() as work:
        variants = [("samples", False)] + ([("sufficient", True)] if args.grid == "gaussian" else [])
        for label, sufficient in variants:
            cache = os.path.join(work, "cache-" + label)
            specs = grid_specs(args.grid, args.quick, sufficient)
            cold = time_sweeps(specs, work, cache)
            warm = time_sweeps(specs, work, cache)
            result[f"collapse_jax_{label}"] = {
                "cold_seconds": cold["seconds"],
                "warm_seconds": warm["seconds"],
                "programs_and_output": [r["output"] for r in cold["runs"]],
            }
            print(
                f"collapse-jax ({label}): cold cache {cold['seconds']:.1f} s, warm cache {warm['seconds']:.1f} s",
                flush=True,
            )
    numpy = time_numpy(args.grid, args.numpy_seeds, args.quick, generations)
    numpy_all = numpy["estimated_seconds_all_seeds"]
    result["numpy"] = {
        "measured_seconds": numpy["measured_seconds"],
        "seeds_timed_per_cell": args.numpy_seeds,
        "estimated_seconds_100_seeds": numpy_all,
        "per_core_parallel_seconds": numpy_all / cpus,
        "blas_threads": 1,
    }
    print(
        f"NumPy per-run loop: {numpy['measured_seconds']:.1f} s for {args.numpy_seeds} seed(s) per cell "
        f"-> {numpy_all:.0f} s for 100 (one process), {numpy_all / cpus:.0f} s over {cpus} processes",
        flush=True,
    )
    ratios = {}
    for label in [v for v in ("samples", "sufficient") if f"collapse_jax_{v}" in result]:
        timing = result[f"collapse_jax_{label}"]
        for cache in ("cold", "warm"):
            seconds = timing[f"{cache}_seconds"]
            ratios[f"{label}_{cache}"] = {
                "vs_one_process": numpy_all / seconds,
                "vs_per_core": numpy_all / cpus / seconds,
            }
            print(
                f"  ratio NumPy / collapse-jax ({label}, {cache} cache): {numpy_all / seconds:.1f}x "
                f"(one NumPy process), {numpy_all / cpus / seconds:.1f}x (NumPy on every core); target {TARGET:g}x"
            )
    result["ratios"] = ratios
    return result


# ---------------------------------------------------------------------------------------------- scaling


def _scaling_chains(chain_counts) -> list[dict]:
    from collapse_jax.runner import execute, prepare_chains
    from collapse_jax.settings import get_setting

    definition = get_setting("gaussian")
    rows = []
    for chains in chain_counts:
        config = definition.resolve(
            {"samples": 10, "generations": 10, "chains": chains, "metrics": "trace_ratio,mean_error_sq"}
        )
        setting, spec = definition.instantiate(config)
        prepared = prepare_chains(setting, spec, seed=0, num_chains=chains, quantile_chains=1000)
        start = time.perf_counter()
        result = execute(prepared)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "chains": chains,
                "seconds": seconds,
                "compile_seconds": prepared.compile_seconds,
                "chunk_size": prepared.chunk,
                "chains_per_second": chains / seconds,
                "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                "mean_trace_ratio_at_G": float(result.mean("trace_ratio")[-1]),
            }
        )
        print(
            f"  {chains:>9} chains: {seconds:7.2f} s, {chains / seconds:12.0f} chains/s, chunk {prepared.chunk}, "
            f"peak RSS {rows[-1]['peak_rss_gib']:.2f} GiB",
            flush=True,
        )
    return rows


def run_scaling(args) -> dict:
    counts = [10**k for k in range(2, 6 if args.quick else 8)]
    print("chains per second against the number of chains (Gaussian d=1, M=10, G=10, replace):", flush=True)
    by_chains = _scaling_chains(counts)
    per_device = []
    device_chains = 10**5 if args.quick else 10**6
    print(f"chains per second against forced CPU devices ({device_chains} chains):", flush=True)
    for devices in (1, 2, 4, 8):
        script = (
            f"import json, sys; sys.path.insert(0, {HERE!r}); import bench_sweep as b; "
            f"print(json.dumps(b._scaling_chains([{device_chains}])[0]))"
        )
        flags = f"--xla_force_host_platform_device_count={devices}"
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=dict(os.environ, XLA_FLAGS=flags, PYTHONPATH=ROOT),
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        row = json.loads(done.stdout.strip().splitlines()[-1]) | {"devices": devices}
        per_device.append(row)
        print(f"  {devices} device(s): {row['chains_per_second']:.0f} chains/s", flush=True)
    return {"by_chains": by_chains, "by_devices": per_device}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("grid", "scaling"))
    parser.add_argument("--grid", choices=tuple(GRIDS), default="gaussian")
    parser.add_argument("--numpy-seeds", type=int, default=2, help="NumPy runs timed per cell (scaled to 100)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    import jax
    import numpy

    header = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()})",
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "numpy": numpy.__version__,
        "load_average_start": os.getloadavg(),
    }
    print(f"{header['device']}, {header['cpu_count']} CPUs, load {header['load_average_start']}", flush=True)
    body = run_grid(args) if args.what == "grid" else run_scaling(args)
    result = header | body | {"load_average_end": os.getloadavg()}
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(result, stream, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
