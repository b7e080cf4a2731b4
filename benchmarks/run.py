"""Every benchmark workload in one run: where its time goes, its floor measured in the same process, and
NumPy references, written as one JSON and one markdown table with the device named.

For each single-run workload (one `collapse-jax simulate` configuration):

  profile   trace + compile (`simulate.prepare`, persistent cache off), run (`runner.execute`: of which
            the compiled chunk calls, the rest being host-side streaming statistics and quantiles), the
            default metrics (run time with them minus run time with the cheapest one), theory
            (`predictions_for`), summary building and writing;
  floor     the same random numbers drawn by one jitted program with the same generator, shapes, devices,
            `fold_in` keys, chunking and XLA flags, reduced to one sum per device (nothing else computed);
  numpy     float64 NumPy, vectorised over chains and/or a loop per chain (one BLAS thread, timed on
            a subset of the chains and scaled);
  command   the whole CLI command in a fresh process, warm compilation cache: wall time against the
            compile + run it reports.

Sweeps (`--sweeps`): the Collapse-or-Thrive grids from `examples/` run by `collapse-jax sweep` in fresh
processes, with an empty compilation cache and again with the cache it left. Times are medians of
`--repeat` calls; ratios are taken within this run. Fixed costs (`import jax`, `import collapse_jax`,
`--help`) are timed in fresh processes.

Usage:
  python benchmarks/run.py --quick                 # every workload at reduced size (a few minutes)
  python benchmarks/run.py                         # full sizes (the issue's targets)
  python benchmarks/run.py --only gaussian-samples,regression-fixed --repeat 5
  python benchmarks/run.py --sweeps                # also the two 75-cell sweeps (cold and warm cache)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ONE_BLAS_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")}


def median_time(fn: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    """Median wall seconds of `repeat` calls of `fn` (which blocks until its work is done)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def fresh_process_seconds(code: str, repeat: int, env: dict | None = None) -> float:
    """Median wall time of `python -c code` in a fresh process."""

    def once():
        subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)

    return median_time(once, repeat)[0]


# ----------------------------------------------------------------------------------------------- floors


def _chain_ids_program(draw_chain: Callable, chunk: int):
    """A jitted `ids (chunk,) -> per-device sums`: `draw_chain(chain_key)` for every id, the ids sharded over
    every device as the run shards its lanes (`shard_map`, no collective)."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec

    from collapse_jax import parallel
    from collapse_jax.keys import chain_key

    def lane(chain_id):
        return draw_chain(chain_key(jax.random.key(0), chain_id))

    lanes = PartitionSpec(parallel.CHAIN_AXIS)
    mesh = parallel.chain_mesh()
    local = jax.shard_map(
        lambda ids: jnp.sum(jax.vmap(lane)(ids))[None], mesh=mesh, in_specs=lanes, out_specs=lanes, check_vma=False
    )
    ids = jax.ShapeDtypeStruct((chunk,), jnp.int32, sharding=parallel.chain_sharding(mesh))
    return jax.jit(local).lower(ids).compile()


def _scan_generations(generations: int, draw: Callable):
    """`key_chain -> scalar`: the sum of `draw(key)` over generations 1..G, keyed like the chain's
    synthetic draws (`generation_key(key_chain, g, SYNTHETIC)`)."""
    import jax
    import jax.numpy as jnp

    from collapse_jax.keys import Purpose, generation_key

    def chain(key_chain):
        def step(total, generation):
            return total + jnp.sum(draw(generation_key(key_chain, generation, Purpose.SYNTHETIC))), None

        return jax.lax.scan(step, jnp.float32(0), jnp.arange(1, generations + 1))[0]

    return chain


def floor_program(workload: str, config: dict, chunk: int):
    """The random numbers a workload draws, alone, for one chunk of chains (see the module docstring)."""
    import jax
    import jax.numpy as jnp

    from collapse_jax.linalg import bartlett_factor

    G, M, d = config["generations"], config["samples"], config.get("dim", 1)
    if workload.startswith("gaussian") and config["method"] == "samples":
        draw = lambda key: jax.random.normal(key, (M, d))
    elif workload.startswith("gaussian"):  # sufficient: the mean's normals and a Bartlett factor's chi-squares

        def draw(key):
            key_mean, key_scatter = jax.random.split(key)
            return jnp.sum(jax.random.normal(key_mean, (d,))) + jnp.sum(
                bartlett_factor(key_scatter, M - 1.0, d, jnp.float32)
            )
    elif config["design"] == "fixed" and config["method"] == "samples":  # the labels' noise only
        draw = lambda key: jax.random.normal(jax.random.split(key)[1], (M, 1))
    elif config["method"] == "samples":  # fresh rows and their noise

        def draw(key):
            key_x, key_noise = jax.random.split(key)
            return jnp.sum(jax.random.normal(key_x, (M, d))) + jnp.sum(jax.random.normal(key_noise, (M, 1)))
    else:  # a Wishart Gram matrix (Bartlett) and the noise moment

        def draw(key):
            key_gram, key_noise = jax.random.split(key)
            return jnp.sum(bartlett_factor(key_gram, float(M), d, jnp.float32)) + jnp.sum(
                jax.random.normal(key_noise, (d,))
            )

    return _chain_ids_program(_scan_generations(G, draw), chunk)


def time_floor(workload: str, config: dict, chunk: int, repeat: int) -> float:
    """Median seconds to draw a workload's random numbers for all its chains, chunk by chunk."""
    import jax
    import numpy as np

    from collapse_jax import parallel

    program = floor_program(workload, config, chunk)
    sharding = parallel.chain_sharding(parallel.chain_mesh())
    inputs = [
        parallel.put_global(np.arange(first, first + chunk, dtype=np.int32), sharding)
        for first in range(0, config["chains"], chunk)
    ]

    def run():
        for ids in inputs:
            jax.block_until_ready(program(ids))

    run()
    return median_time(run, repeat)[0]


# ----------------------------------------------------------------------------------------------- NumPy


NUMPY_SCRIPT = r"""
import json, math, sys, time
import numpy as np
kind, chains, G, M, d, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), 0
rng = np.random.default_rng(seed)
start = time.perf_counter()
if kind == "gaussian-vectorised":
    mu, sd = np.zeros((chains, 1)), np.ones((chains, 1))
    for _ in range(G):
        x = rng.standard_normal((chains, M)) * sd + mu
        mu, sd = x.mean(axis=1, keepdims=True), x.std(axis=1, ddof=1, keepdims=True)
elif kind == "gaussian-loop":
    for _ in range(chains):
        mu, var = 0.0, 1.0
        for _ in range(G):
            x = rng.normal(mu, math.sqrt(var), M)
            mu, var = x.mean(), x.var(ddof=1)
elif kind == "gaussian-loop-nd":  # the papers' style: np.mean, np.cov, multivariate_normal
    for _ in range(chains):
        mu, cov = np.zeros(d), np.eye(d)
        for _ in range(G):
            x = rng.multivariate_normal(mu, cov, M)
            mu, cov = x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False, bias=True))
elif kind in ("regression-fixed-loop", "regression-fresh-loop"):
    for _ in range(chains):
        w_star = rng.standard_normal(d) / math.sqrt(d)
        w, x = w_star, rng.standard_normal((M, d))
        for _ in range(G):
            if kind == "regression-fresh-loop":
                x = rng.standard_normal((M, d))
            y = x @ w + rng.standard_normal(M)
            w = np.linalg.solve(x.T @ x, x.T @ y)
else:
    raise SystemExit("unknown kind " + kind)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def time_numpy(kind: str, chains: int, generations: int, samples: int, dim: int) -> float:
    """Seconds of one NumPy reference in a fresh process with one BLAS thread (float64)."""
    done = subprocess.run(
        [sys.executable, "-c", NUMPY_SCRIPT, kind, str(chains), str(generations), str(samples), str(dim)],
        env=dict(os.environ, **ONE_BLAS_THREAD),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


# ----------------------------------------------------------------------------------------------- workloads


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    setting: str
    overrides: dict
    quick_chains: int
    numpy: tuple[tuple[str, int], ...]  # (NumPy reference kind, chains it is timed on; scaled to the run's)
    target: str
    cheap_metric: str


WORKLOADS = (
    Workload(
        "gaussian-samples",
        "gaussian",
        dict(policy="replace", dim=1, samples=100, ddof=1, generations=100, chains=100_000, method="samples"),
        10_000,
        (("gaussian-vectorised", 100_000), ("gaussian-loop", 1_000)),
        "run <= 1.3x floor; command <= run + compile + 1.5 s",
        "mean_error_sq",
    ),
    Workload(
        "gaussian-sufficient",
        "gaussian",
        dict(policy="replace", dim=1, samples=1000, ddof=1, generations=100, chains=10_000, method="sufficient"),
        10_000,
        (("gaussian-vectorised", 1_000),),
        "command <= 3 s wall, warm cache",
        "mean_error_sq",
    ),
    Workload(
        "gaussian-d100",
        "gaussian",
        dict(policy="replace", dim=100, samples=10, ddof=0, generations=100, chains=4000, method="samples"),
        400,
        (("gaussian-loop-nd", 40),),
        "default metrics <= 1.5x the run without them",
        "mean_error_sq",
    ),
    Workload(
        "regression-fixed",
        "regression",
        dict(
            policy="replace",
            dim=50,
            samples=200,
            generations=50,
            chains=4000,
            design="fixed",
            metrics="excess_risk",
            method="samples",
        ),
        1000,
        (("regression-fixed-loop", 200),),
        ">= 5x the NumPy loop per chain",
        "excess_risk",
    ),
    Workload(
        "regression-fresh",
        "regression",
        dict(
            policy="replace",
            dim=50,
            samples=200,
            generations=50,
            chains=4000,
            design="fresh",
            metrics="excess_risk",
            method="samples",
        ),
        1000,
        (("regression-fresh-loop", 200),),
        "run <= 1.3x floor",
        "excess_risk",
    ),
)


def profile_workload(workload: Workload, quick: bool, repeat: int, out_dir: str) -> dict:
    import importlib

    import jax

    simulate = importlib.import_module("collapse_jax.simulate")
    from collapse_jax import parallel
    from collapse_jax.runner import _Lanes, execute
    from collapse_jax.summary import build_summary, write_summary

    overrides = dict(workload.overrides, chains=workload.quick_chains if quick else workload.overrides["chains"])
    start = time.perf_counter()
    config, prepared = simulate.prepare(workload.setting, overrides)
    prepare_seconds = time.perf_counter() - start
    execute(prepared)  # first call: allocations, thread pools
    run_seconds, run_times = median_time(lambda: execute(prepared), repeat)

    # the compiled chunk calls alone (the rest of the run is host-side statistics)
    lanes = _Lanes(prepared.cells)
    sharding = parallel.chain_sharding(prepared.program.mesh)
    calls = []
    for first in range(0, lanes.total, prepared.chunk):
        cell, chain_ids, valid = lanes.chunk(first, prepared.chunk)
        with_history = bool((chain_ids[valid] < prepared.quantile_chains).any())
        inputs = [parallel.put_global(a, sharding) for a in (cell, chain_ids, valid)]
        calls.append((prepared.program.compiled(prepared.table, prepared.chunk, with_history), inputs))
    program_seconds, _ = median_time(
        lambda: [jax.block_until_ready(fn(*prepared.table, *inputs)) for fn, inputs in calls], repeat
    )

    # the default metrics: the run with only the cheapest metric
    cheap = dict(overrides, metrics=workload.cheap_metric)
    _, cheap_prepared = simulate.prepare(workload.setting, cheap)
    execute(cheap_prepared)
    cheap_seconds, _ = median_time(lambda: execute(cheap_prepared), repeat)

    result = execute(prepared)
    start = time.perf_counter()
    predictions = simulate.predictions_for(workload.setting, config)
    theory_seconds = time.perf_counter() - start
    start = time.perf_counter()
    summary = build_summary(workload.setting, config, result, predictions)
    write_summary(summary, os.path.join(out_dir, f"{workload.name}.json"))
    writing_seconds = time.perf_counter() - start

    floor_seconds = time_floor(workload.name, config, prepared.chunk, repeat)
    numpy = {}
    for kind, chains in workload.numpy:
        chains = min(chains, config["chains"])
        seconds = time_numpy(kind, chains, config["generations"], config["samples"], config.get("dim", 1))
        numpy[kind] = {"timed_chains": chains, "seconds": seconds * config["chains"] / chains}
    verdicts = {name: entry["comparison"]["status"] for name, entry in summary["metrics"].items()}
    return {
        "workload": workload.name,
        "setting": workload.setting,
        "config": {k: config[k] for k in overrides},
        "metrics": list(config["metrics"]),
        "chunk": prepared.chunk,
        "target": workload.target,
        "profile": {
            "trace_and_compile": prepared.compile_seconds,
            "prepare_total": prepare_seconds,
            "run": run_seconds,
            "run_times": run_times,
            "compiled_calls": program_seconds,
            "host_statistics": max(run_seconds - program_seconds, 0.0),
            "run_with_cheapest_metric": cheap_seconds,
            "metrics": max(run_seconds - cheap_seconds, 0.0),
            "theory": theory_seconds,
            "summary_and_writing": writing_seconds,
        },
        "floor_seconds": floor_seconds,
        "numpy": numpy,
        "verdicts": verdicts,
        "load_average": load_average(),
    }


def command_args(workload: Workload, quick: bool, out: str) -> list[str]:
    overrides = dict(workload.overrides, chains=workload.quick_chains if quick else workload.overrides["chains"])
    args = [sys.executable, "-m", "collapse_jax", "simulate", workload.setting, "--out", out, "--quiet"]
    args += ["--cpu-devices", str(_jax_device_count())]  # the devices this process measured with
    for name, value in overrides.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    return args


def _jax_device_count() -> int:
    import jax

    return jax.device_count()


def time_command(workload: Workload, quick: bool, cache: str) -> dict:
    """The CLI command in fresh processes: once to fill the compilation cache, then timed warm."""
    env = dict(os.environ, COLLAPSE_JAX_CACHE_DIR=cache)
    env.pop("COLLAPSE_JAX_NO_CACHE", None)
    out = tempfile.mkdtemp()
    subprocess.run(command_args(workload, quick, out), env=env, check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(command_args(workload, quick, out), env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    with open(os.path.join(out, "summary.json")) as stream:
        timing = json.load(stream)["timing"]
    inside = timing["compile_seconds"] + timing["run_seconds"]
    return {
        "wall_warm": wall,
        "compile_warm": timing["compile_seconds"],
        "run": timing["run_seconds"],
        "overhead": wall - inside,
    }


# ----------------------------------------------------------------------------------------------- sweeps


SWEEPS = {
    "collapse-or-thrive-gaussian": (
        "examples/collapse_or_thrive_gaussian.toml",
        {},
        "<= 100 s cold, <= 60 s warm (authors' code: 1,637 s)",
    ),
    "collapse-or-thrive-regression-1": (
        "examples/collapse_or_thrive_regression.toml",
        {"noise_var": [1.0]},
        "<= 100 s cold (authors' code: 4,940 s for 74 cells)",
    ),
}


def _sweep_spec(path: str, axes: dict, quick: bool, work: str) -> str:
    import tomllib

    with open(os.path.join(ROOT, path), "rb") as stream:
        spec = tomllib.load(stream)
    spec["axes"].update(axes)
    if quick:
        spec["fixed"]["generations"] = 20
        spec["axes"].update({"dim": spec["axes"]["dim"][:3], "samples": spec["axes"]["samples"][:3]})
    lines = [f'setting = "{spec["setting"]}"', f'name = "{spec["name"]}"', "[fixed]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in spec["fixed"].items()]
    lines += ["[axes]"] + [f"{k} = {json.dumps(v)}" for k, v in spec["axes"].items()]
    target = os.path.join(work, os.path.basename(path))
    with open(target, "w") as stream:
        stream.write("\n".join(lines) + "\n")
    return target


def time_sweep(name: str, quick: bool) -> dict:
    path, axes, target = SWEEPS[name]
    work = tempfile.mkdtemp()
    spec = _sweep_spec(path, axes, quick, work)
    env = dict(os.environ, COLLAPSE_JAX_CACHE_DIR=os.path.join(work, "cache"))
    env.pop("COLLAPSE_JAX_NO_CACHE", None)
    runs = {}
    for label in ("cold", "warm"):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "collapse_jax", "sweep", spec, "--out", os.path.join(work, label), "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs[label] = {"seconds": time.perf_counter() - start, "output": done.stdout.strip()}
    return {"sweep": name, "spec": path, "axes_changed": axes, "target": target, **runs, "load_average": load_average()}


# ----------------------------------------------------------------------------------------------- report


def device_name() -> str:
    import jax

    devices = jax.devices()
    kind = devices[0].device_kind
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as stream:
            cpu = next(line.split(":", 1)[1].strip() for line in stream if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{len(devices)} x {kind} ({jax.default_backend()}); host CPU {cpu}, {os.cpu_count()} cores"


def markdown(report: dict) -> str:
    lines = [
        f"# Benchmarks: {report['device']}",
        "",
        f"{report['date']}, jax {report['jax']}, {'quick' if report['quick'] else 'full'} sizes, medians of "
        f"{report['repeat']} calls. Load average at the start {report['load_start']}, at the end {report['load_end']}.",
        "",
        "## Time against the floor and NumPy",
        "",
        "| workload | chains | run (s) | floor (s) | x floor | NumPy (s, float64) | NumPy / run | command, warm (s) | overhead (s) | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["workloads"]:
        run, floor = row["profile"]["run"], row["floor_seconds"]
        numpy = "; ".join(f"{k} {v['seconds']:.2f}" for k, v in row["numpy"].items())
        ratio = "; ".join(f"{v['seconds'] / run:.1f}x" for v in row["numpy"].values())
        command = row.get("command", {})
        lines.append(
            f"| {row['workload']} | {row['config']['chains']} | {run:.3f} | {floor:.3f} | {run / floor:.2f} | "
            f"{numpy} | {ratio} | {command.get('wall_warm', float('nan')):.2f} | "
            f"{command.get('overhead', float('nan')):.2f} | {row['target']} |"
        )
    lines += [
        "",
        "## Where the time goes (seconds)",
        "",
        "| workload | trace + compile | run | compiled calls | host statistics | metrics | theory | summary + writing |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["workloads"]:
        p = row["profile"]
        lines.append(
            f"| {row['workload']} | {p['trace_and_compile']:.2f} | {p['run']:.3f} | {p['compiled_calls']:.3f} | "
            f"{p['host_statistics']:.3f} | {p['metrics']:.3f} | {p['theory']:.3f} | {p['summary_and_writing']:.3f} |"
        )
    fixed = report["fixed_costs"]
    lines += [
        "",
        "## Fixed costs (fresh processes)",
        "",
        f"`import jax` {fixed['import_jax']:.2f} s; `import collapse_jax` {fixed['import_collapse_jax']:.2f} s (it "
        f"loads no JAX); `import collapse_jax, jax` {fixed['import_both']:.2f} s "
        f"({fixed['import_both'] - fixed['import_jax']:+.2f} s over `import jax`; target <= +0.3 s); "
        f"`collapse-jax --help` {fixed['help']:.2f} s.",
    ]
    if report["sweeps"]:
        lines += [
            "",
            "## Sweeps (fresh processes)",
            "",
            "| sweep | cold cache (s) | warm cache (s) | target | closing line (cold) |",
            "|---|---|---|---|---|",
        ]
        for row in report["sweeps"]:
            lines.append(
                f"| {row['sweep']} | {row['cold']['seconds']:.1f} | {row['warm']['seconds']:.1f} | {row['target']} | "
                f"{row['cold']['output']} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced chain counts (and a reduced sweep grid)")
    parser.add_argument("--only", default="", help="comma-separated workload names (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="calls per timing (the median is reported)")
    parser.add_argument("--sweeps", action="store_true", help="also time the Collapse-or-Thrive sweeps")
    parser.add_argument("--no-command", action="store_true", help="skip the fresh-process command timings")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for the JSON and markdown")
    parser.add_argument("--tag", default="", help="file name suffix (default: cpu<cores> or the accelerator)")
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=0,
        help="CPU devices, as `collapse-jax simulate --cpu-devices` (default 0: one per core, as the command line)",
    )
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    sys.path.insert(0, ROOT)
    os.environ.setdefault("COLLAPSE_JAX_NO_CACHE", "1")  # in-process compiles are measured, not loaded
    from collapse_jax.cli import cpu_compile_flags, cpu_device_count, cpu_devices_flags

    cpu_compile_flags()  # the flags the command line uses, and its CPU devices (inherited by the commands timed)
    cpu_devices_flags(cpu_device_count(args.cpu_devices))
    import jax

    names = [n for n in args.only.split(",") if n] or [w.name for w in WORKLOADS]
    unknown = set(names) - {w.name for w in WORKLOADS}
    if unknown:
        raise SystemExit(f"unknown workload(s): {', '.join(sorted(unknown))}")
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "jax": jax.__version__,
        "device": device_name(),
        "quick": args.quick,
        "repeat": args.repeat,
        "load_start": load_average(),
        "workloads": [],
        "sweeps": [],
    }
    report["fixed_costs"] = {
        "import_jax": fresh_process_seconds("import jax", args.repeat),
        "import_collapse_jax": fresh_process_seconds("import collapse_jax", args.repeat),
        "import_both": fresh_process_seconds("import collapse_jax, jax", args.repeat),
        "help": fresh_process_seconds(
            "import sys; sys.argv=['collapse-jax','--help']\nfrom collapse_jax.cli import main\n"
            "try: main()\nexcept SystemExit: pass",
            args.repeat,
        ),
    }
    with tempfile.TemporaryDirectory() as work:
        cache = os.path.join(work, "cache")
        for workload in WORKLOADS:
            if workload.name not in names:
                continue
            print(f"{workload.name} ...", file=sys.stderr, flush=True)
            row = profile_workload(workload, args.quick, args.repeat, work)
            if not args.no_command:
                row["command"] = time_command(workload, args.quick, cache)
            report["workloads"].append(row)
            p = row["profile"]
            print(
                f"  run {p['run']:.3f} s, floor {row['floor_seconds']:.3f} s ({p['run'] / row['floor_seconds']:.2f}x), "
                f"compile {p['trace_and_compile']:.2f} s, metrics {p['metrics']:.3f} s",
                file=sys.stderr,
                flush=True,
            )
    if args.sweeps:
        for name in SWEEPS:
            print(f"sweep {name} ...", file=sys.stderr, flush=True)
            report["sweeps"].append(time_sweep(name, args.quick))
    report["load_end"] = load_average()
    tag = args.tag or (
        f"cpu{os.cpu_count()}" if jax.default_backend() == "cpu" else jax.devices()[0].device_kind.replace(" ", "-")
    )
    suffix = f"{tag}{'-quick' if args.quick else ''}"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"benchmarks_{suffix}.json"), "w") as stream:
        json.dump(report, stream, indent=1)
    with open(os.path.join(args.out, f"benchmarks_{suffix}.md"), "w") as stream:
        stream.write(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
