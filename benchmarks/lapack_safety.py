"""Does LAPACK inside collapse-jax's scans hang on CPU? Run each LAPACK-using workload many times.

Each run is a fresh process (`python benchmarks/lapack_safety.py --child WORKLOAD`) that runs one or
more `collapse-jax simulate` commands through the command line's own entry point (persistent
compilation cache on, in a cache folder of its own, so that only the first run of a workload compiles)
with `COLLAPSE_JAX_CPU_LAPACK=force` (LAPACK's factorisations, one matrix per call, on every CPU device
count) or, with `--lapack batched`, jaxlib's batched calls (the form that hung). Runs go one at
a time, workloads interleaved (run 1 of every workload, then run 2, ...), so that a partial campaign
still covers every workload and the machine's load falls on all of them alike.

A run is watched through the CPU time of its process (/proc): it is "hung" when that time has not grown
by `--idle-cpu` seconds over the last `--idle-seconds` (the XLA runtime deadlocks with every thread
idle), "timeout" when it is still busy after `--timeout` seconds, "failed" on a non-zero exit status.
Either way the process group is killed. The results (per device count and workload: runs, finished,
hung, median seconds, load averages) are rewritten after every run to `--out`.

Usage:
  python benchmarks/lapack_safety.py                                  # 50 runs, one CPU device
  python benchmarks/lapack_safety.py --devices 2,4 --runs 5           # the multi-device check
  python benchmarks/lapack_safety.py --lapack batched --runs 3        # the batched calls that hung
  python benchmarks/lapack_safety.py --workloads regression-wishart --runs 10
  python benchmarks/lapack_safety.py --speed --runs 3                 # LAPACK against the pure route
  python benchmarks/lapack_safety.py --markdown benchmarks/results/lapack_safety_cpu2.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name -> (what it exercises, list of `collapse-jax simulate` argument lists run in one process)
_GAUSSIAN_METRICS = "mean_error_sq,trace_ratio,log_det_ratio,w2_sq,kl_divergence"
WORKLOADS: dict[str, tuple[str, list[list[str]]]] = {
    "gaussian-d10": (
        "Gaussian d = 10, M = 100, sample path, replace, accumulate and accumulate-subsample in one process: "
        "Cholesky of the standardised draws (M >= 4d), SVD (w2_sq), Cholesky solve (kl_divergence)",
        [
            [
                "gaussian",
                "--dim",
                "10",
                "--samples",
                "100",
                "--generations",
                "30",
                "--chains",
                "500",
                "--policy",
                policy,
                "--metrics",
                _GAUSSIAN_METRICS,
            ]
            for policy in ("replace", "accumulate", "accumulate-subsample")
        ],
    ),
    "gaussian-d32": (
        "Gaussian d = 32, M = 200, sample path, replace, well-conditioned fits: Cholesky, SVD, Cholesky solve",
        [
            [
                "gaussian",
                "--dim",
                "32",
                "--samples",
                "200",
                "--generations",
                "20",
                "--chains",
                "300",
                "--metrics",
                _GAUSSIAN_METRICS,
            ]
        ],
    ),
    "regression-wishart": (
        "regression, sufficient (exact Wishart) path, d = 32, T = 100, fresh design: Cholesky solve of the "
        "Bartlett Gram matrix (the configuration that hung with several devices)",
        [
            [
                "regression",
                "--method",
                "sufficient",
                "--dim",
                "32",
                "--samples",
                "100",
                "--design",
                "fresh",
                "--generations",
                "50",
                "--chains",
                "1000",
            ]
        ],
    ),
    "regression-samples": (
        "regression, sample path, fresh design, d = 32, T = 100: Cholesky solve",
        [
            [
                "regression",
                "--dim",
                "32",
                "--samples",
                "100",
                "--design",
                "fresh",
                "--generations",
                "30",
                "--chains",
                "500",
            ]
        ],
    ),
    "regression-downstream": (
        "regression, sample path, fresh design, d = 32, T = 100, with a downstream ridge fit on 100 points: "
        "two independent Cholesky solves in one step (the chain's fit and the downstream fit)",
        [
            [
                "regression",
                "--dim",
                "32",
                "--samples",
                "100",
                "--design",
                "fresh",
                "--generations",
                "30",
                "--chains",
                "500",
                "--downstream-samples",
                "100",
                "--downstream-ridge",
                "0.1",
                "--metrics",
                "excess_risk,downstream_excess_risk,downstream_bias,downstream_variance,downstream_synthetic",
            ]
        ],
    ),
    "regression-minnorm": (
        "regression, min-norm interpolator (T = 20 < d = 32, fixed design): pivoted root, then two "
        "Cholesky solves per fit",
        [["regression", "--dim", "32", "--samples", "20", "--generations", "30", "--chains", "500"]],
    ),
    "mixture": (
        "strong model collapse (random-projection regression, width 16 of d = 32): Cholesky solves of the "
        "projected Gram matrix",
        [["mixture", "--generations", "20", "--chains", "500"]],
    ),
    "classifier": (
        "verification setting with the least-squares classifier (d = 50, M = 200, fitted generator, "
        "oracle verifier): a Cholesky solve per fit",
        [
            [
                "verification",
                "--classifier",
                "least-squares",
                "--generator",
                "fitted",
                "--verifier",
                "oracle",
                "--samples",
                "200",
                "--generations",
                "20",
                "--chains",
                "500",
            ]
        ],
    ),
    "gmm": (
        "control without LAPACK: Gaussian mixture EM (d = 2, pure-array Cholesky unrolled over d)",
        [["gmm", "--samples", "200", "--generations", "20", "--chains", "200", "--em-steps", "20"]],
    ),
}


SPEED_WORKLOADS = {
    "regression-fresh-d50": [
        "regression",
        "--design",
        "fresh",
        "--dim",
        "50",
        "--samples",
        "200",
        "--generations",
        "50",
        "--chains",
        "4000",
        "--metrics",
        "excess_risk",
    ],
    "regression-wishart-d50": [
        "regression",
        "--method",
        "sufficient",
        "--design",
        "fresh",
        "--dim",
        "50",
        "--samples",
        "200",
        "--generations",
        "50",
        "--chains",
        "4000",
        "--metrics",
        "excess_risk",
    ],
}


def speed_child(name: str, repeats: int) -> int:
    """Run a speed workload `repeats` times in this process; print the execution seconds of each (JSON)."""
    sys.path.insert(0, ROOT)
    from collapse_jax.cli import main

    seconds = []
    with tempfile.TemporaryDirectory() as out:
        for number in range(repeats):
            folder = os.path.join(out, str(number))
            code = main(["simulate", *SPEED_WORKLOADS[name], "--out", folder, "--quiet"])
            if code:
                return code
            with open(os.path.join(folder, "summary.json")) as f:
                timing = json.load(f)["timing"]
            seconds.append(timing["run_seconds"])
    print("SECONDS" + json.dumps(seconds))
    return 0


def speed(results: dict, repeats: int, cache_dir: str) -> None:
    """Execution time (compile apart) of LAPACK against the pure route on one CPU device, median of `repeats`."""
    table = results.setdefault("speed", {})
    for name in SPEED_WORKLOADS:
        entry = {"command": SPEED_WORKLOADS[name]}
        for route, value in (("lapack", "1"), ("pure", "0")):
            env = dict(
                os.environ, COLLAPSE_JAX_CPU_LAPACK=value, COLLAPSE_JAX_CACHE_DIR=os.path.join(cache_dir, "speed")
            )
            env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
            env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
            load = os.getloadavg()[0]
            done = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--speed-child", name, "--runs", str(repeats)],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
            seconds = json.loads(done.stdout.split("SECONDS", 1)[1])
            entry[route] = {
                "seconds": seconds,
                "median_seconds": round(statistics.median(seconds), 2),
                "load": [round(load, 2), round(os.getloadavg()[0], 2)],
            }
            print(f"speed {name} {route}: {seconds}", flush=True)
        entry["pure_over_lapack"] = round(entry["pure"]["median_seconds"] / entry["lapack"]["median_seconds"], 2)
        table[name] = entry


def child(name: str) -> int:
    """Run one workload's commands in this process (the run being timed)."""
    sys.path.insert(0, ROOT)
    from collapse_jax.cli import main

    with tempfile.TemporaryDirectory() as out:
        for number, args in enumerate(WORKLOADS[name][1]):
            code = main(["simulate", *args, "--out", os.path.join(out, str(number)), "--quiet"])
            if code:
                return code
    return 0


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_once(
    name: str, devices: int, *, timeout: float, idle_seconds: float, idle_cpu: float, cache_dir: str, lapack: str
) -> dict:
    """One run in a fresh process group; returns its status, wall seconds and CPU seconds."""
    env = dict(os.environ)
    env["COLLAPSE_JAX_CPU_LAPACK"] = lapack
    env["COLLAPSE_JAX_CACHE_DIR"] = os.path.join(cache_dir, f"devices{devices}")
    env.pop("COLLAPSE_JAX_NO_CACHE", None)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    if devices > 1:
        flags.append(f"--xla_force_host_platform_device_count={devices}")
    env["XLA_FLAGS"] = " ".join(flags)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    load_start = os.getloadavg()[0]
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", name],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    samples: list[tuple[float, float]] = []  # (elapsed, cpu seconds)
    status = None
    output = b""
    while True:
        try:
            output, _ = process.communicate(timeout=0.5)
            status = "finished" if process.returncode == 0 else "failed"
            break
        except subprocess.TimeoutExpired:
            pass
        elapsed = time.monotonic() - start
        cpu = _cpu_seconds(process.pid)
        if cpu is not None:
            samples.append((elapsed, cpu))
        window = [cpu_then for t, cpu_then in samples if t <= elapsed - idle_seconds]
        if cpu is not None and window and cpu - window[-1] < idle_cpu:
            status = "hung"
        elif elapsed > timeout:
            status = "timeout"
        if status:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            break
    wall = time.monotonic() - start
    record = {
        "status": status,
        "seconds": round(wall, 2),
        "cpu_seconds": samples[-1][1] if samples else None,
        "load_start": round(load_start, 2),
        "load_end": round(os.getloadavg()[0], 2),
    }
    if status == "failed":
        record["output_tail"] = output.decode(errors="replace")[-2000:]
    return record


def summarise(runs: list[dict]) -> dict:
    finished = [r["seconds"] for r in runs if r["status"] == "finished"]
    return {
        "runs": len(runs),
        "finished": len(finished),
        "hung": sum(r["status"] == "hung" for r in runs),
        "timeout": sum(r["status"] == "timeout" for r in runs),
        "failed": sum(r["status"] == "failed" for r in runs),
        "median_seconds": round(statistics.median(finished), 2) if finished else None,
        "max_seconds": max(finished) if finished else None,
        "mean_load": round(statistics.mean((r["load_start"] + r["load_end"]) / 2 for r in runs), 2) if runs else None,
    }


def markdown(results: dict) -> str:
    lines = [
        "| campaign | workload | runs | finished | hung | timeout | failed | median s (finished) | mean load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for devices, table in results["campaigns"].items():
        for name, entry in table.items():
            s = entry["summary"]
            median = "n/a" if s["median_seconds"] is None else f"{s['median_seconds']:.1f}"
            lines.append(
                f"| {devices} | {name} | {s['runs']} | {s['finished']} | {s['hung']} | {s['timeout']} | "
                f"{s['failed']} | {median} | {s['mean_load']} |"
            )
    for name, entry in results.get("speed", {}).items():
        lines.append(
            f"\n{name}: LAPACK {entry['lapack']['median_seconds']} s, pure {entry['pure']['median_seconds']} s "
            f"(median of {len(entry['lapack']['seconds'])}; pure / LAPACK {entry['pure_over_lapack']}x)"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per workload and device count (default 50)")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated names (default: all): " + ", ".join(WORKLOADS)
    )
    parser.add_argument("--devices", default="1", help="comma-separated CPU device counts (default 1)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a busy run is killed (60)")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=15.0,
        help="a run whose CPU time grew by less than --idle-cpu over this many seconds is hung (15)",
    )
    parser.add_argument("--idle-cpu", type=float, default=0.2, help="see --idle-seconds (0.2 CPU seconds)")
    parser.add_argument(
        "--lapack",
        default="force",
        help="COLLAPSE_JAX_CPU_LAPACK for the runs (default force: "
        "LAPACK one matrix per call on any device count; batched: jaxlib's batched calls)",
    )
    parser.add_argument(
        "--out",
        default=os.path.join(HERE, "results", "lapack_safety_cpu2.json"),
        help="JSON results; merged into an existing file (other device counts and workloads kept)",
    )
    parser.add_argument("--append", action="store_true", help="add the runs to those already in --out")
    parser.add_argument("--cache-dir", default=None, help="compilation cache root (default: a fresh temporary folder)")
    parser.add_argument("--markdown", metavar="JSON", help="print the table of a results file and exit")
    parser.add_argument(
        "--speed",
        action="store_true",
        help="instead: time LAPACK against the pure route on one device (median of --runs, "
        "d = 50, T = 200, 50 generations, 4000 chains; fresh design and Wishart path)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--speed-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    if args.speed_child:
        return speed_child(args.speed_child, args.runs)
    if args.markdown:
        with open(args.markdown) as f:
            print(markdown(json.load(f)))
        return 0
    names = [n for n in args.workloads.split(",") if n]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; known: {', '.join(WORKLOADS)}")
    device_counts = [int(n) for n in args.devices.split(",")]

    import jax

    results = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            results = json.load(f)
    results.update(
        {
            "jax": jax.__version__,
            "date": datetime.date.today().isoformat(),
            "cpu_count": os.cpu_count(),
            "watch": {
                "timeout_seconds": args.timeout,
                "idle_seconds": args.idle_seconds,
                "idle_cpu_seconds": args.idle_cpu,
            },
            "workloads": {
                name: {"description": WORKLOADS[name][0], "commands": WORKLOADS[name][1]} for name in WORKLOADS
            },
        }
    )
    campaigns = results.setdefault("campaigns", {})
    cache_root = args.cache_dir or tempfile.mkdtemp(prefix="lapack-safety-cache-")
    if args.speed:
        speed(results, args.runs, cache_root)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        return 0
    for devices in device_counts:
        table = campaigns.setdefault(
            f"{devices} device{'s' if devices > 1 else ''}, COLLAPSE_JAX_CPU_LAPACK={args.lapack}", {}
        )
        for name in names:
            if not (args.append and name in table):
                table[name] = {"runs": [], "summary": summarise([])}
        for run in range(args.runs):
            for name in names:
                record = run_once(
                    name,
                    devices,
                    timeout=args.timeout,
                    idle_seconds=args.idle_seconds,
                    idle_cpu=args.idle_cpu,
                    cache_dir=cache_root,
                    lapack=args.lapack,
                )
                table[name]["runs"].append(record)
                table[name]["summary"] = summarise(table[name]["runs"])
                print(
                    f"devices {devices} ({args.lapack}) run {run + 1}/{args.runs} {name}: {record['status']} "
                    f"{record['seconds']:.1f} s (load {record['load_end']})",
                    flush=True,
                )
                if record["status"] == "failed":
                    print(record["output_tail"], flush=True)
                with open(args.out + ".tmp", "w") as f:
                    json.dump(results, f, indent=1)
                os.replace(args.out + ".tmp", args.out)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
