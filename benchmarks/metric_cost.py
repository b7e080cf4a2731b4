"""Benchmark: what each default metric adds to a run.

For each configuration, the run (`simulate.prepare`, then `runner.execute`, compilation apart) is timed
with the setting's default metrics and with the defaults less one metric, for every default metric:
`ratio = time(defaults) / time(defaults without the metric)`. A default metric should keep the ratio at
or below 1.5. Each timing is the median of `--repeats` executions of one compiled program; the chain
count is calibrated per configuration so that the run with the default metrics takes 1-5 s.

Configurations: the Gaussian setting under replace for d in {1, 10, 100} and M in {10, 1000}, method
"samples" and "sufficient"; the other settings (regression, discrete, tails, kde, gmm) at their
default sizes.

Usage:
  PYTHONPATH=. python benchmarks/metric_cost.py --out benchmarks/results/metric_cost_cpu2
  PYTHONPATH=. python benchmarks/metric_cost.py --only gaussian --quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time

LIMIT = 1.5
TARGET_SECONDS = (1.0, 5.0)


# seconds per chain and generation of the run without w2_sq (2-core CPU), a first guess of the chain count
_GAUSSIAN_COST = {
    ("samples", 1): 2e-6,
    ("samples", 10): 1.2e-5,
    ("samples", 100): 8e-5,
    ("sufficient", 1): 2e-6,
    ("sufficient", 10): 1.2e-5,
    ("sufficient", 100): 2e-4,
}


def gaussian_configs() -> list[tuple[str, dict, int]]:
    configs = []
    for method in ("samples", "sufficient"):
        for d in (1, 10, 100):
            for m in (10, 1000):
                cost = _GAUSSIAN_COST[method, d] * (max(1.0, m * d / 3e3) if method == "samples" else 1.0)
                configs.append(
                    (
                        "gaussian",
                        {"policy": "replace", "dim": d, "samples": m, "method": method},
                        max(8, int(2.0 / (100 * cost)) // 8 * 8),
                    )
                )
    return configs


def other_configs() -> list[tuple[str, dict, int]]:
    return [(name, {}, 1000) for name in ("regression", "discrete", "tails", "kde", "gmm")]


def time_run(setting: str, overrides: dict, repeats: int, prepared=None) -> tuple[float, object]:
    """Median seconds of `repeats` executions of one compiled run (a first, untimed execution warms up),
    and the prepared run (pass it back to time the same program again)."""
    from collapse_jax.runner import execute
    from collapse_jax.simulate import prepare

    if prepared is None:
        _, prepared = prepare(setting, overrides)
        execute(prepared)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        execute(prepared)
        times.append(time.perf_counter() - start)
    return (statistics.median(times) if times else float("nan")), prepared


def calibrate(setting: str, overrides: dict, chains: int) -> tuple[int, object]:
    """A chain count whose run takes 1-5 s (from a first guess, rescaled at most twice), and its program."""
    low, high = TARGET_SECONDS
    for attempt in range(3):
        seconds, prepared = time_run(setting, {**overrides, "chains": chains}, 1)
        if low <= seconds <= high or (seconds > high and chains <= 8) or attempt == 2:
            break
        chains = max(8, int(chains * 2.0 / max(seconds, 1e-3)) // 8 * 8)
    return chains, prepared


def candidate_metrics(setting: str, overrides: dict) -> tuple[str, ...]:
    """The metrics a config records by default, and for the Gaussian setting every metric of its default
    list (w2_sq is measured where the cost rule keeps it out of the defaults too)."""
    from collapse_jax.settings import SETTINGS

    definition = SETTINGS[setting]
    if setting == "gaussian":
        return tuple(definition.parameter("metrics").default)
    return tuple(definition.resolve(overrides)["metrics"])


def measure(setting: str, overrides: dict, repeats: int, chains: int) -> dict:
    """Time the run with every candidate metric and without each one; the variants are compiled first
    and then executed in turn, `repeats` rounds, so that a change in the machine's load hits them alike."""
    defaults = candidate_metrics(setting, overrides)
    chains, prepared = calibrate(setting, {**overrides, "metrics": ",".join(defaults)}, chains)
    base = {**overrides, "chains": chains}
    variants = {None: prepared}
    for metric in defaults:
        rest = tuple(m for m in defaults if m != metric)
        if rest:  # the only metric has no run without it
            variants[metric] = time_run(setting, {**base, "metrics": ",".join(rest)}, 0)[1]
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, program in variants.items():
            times[name].append(time_run(setting, base, 1, program)[0])
    full = statistics.median(times[None])
    row = {
        "setting": setting,
        "config": overrides,
        "chains": chains,
        "metrics": list(defaults),
        "seconds_default": full,
        "without": {},
    }
    for metric in defaults:
        if metric not in variants:
            row["without"][metric] = None
            continue
        seconds = statistics.median(times[metric])
        row["without"][metric] = {"seconds": seconds, "ratio": full / seconds, "all_seconds": times[metric]}
    row["all_seconds_default"] = times[None]
    return row


def is_default(setting: str, config: dict, metric: str) -> bool:
    from collapse_jax.settings import SETTINGS

    return metric in SETTINGS[setting].resolve(config)["metrics"]


def markdown(rows: list[dict], header: dict) -> str:
    lines = [
        f"# Cost of each default metric ({header['date']})",
        "",
        f"jax {header['jax']}, {header['device']}, {header['cpu']}; no GPU. Times: median of "
        f"{header['repeats']} executions (compilation apart), the variants of a configuration executed in "
        f"turn; ratio = time with all the metrics / time without the metric (limit {LIMIT}); ratio of "
        f"fastest: the same with the fastest execution of each (less sensitive to the machine's load). "
        f"default here: whether the metric is among the configuration's default metrics.",
        "",
        "| setting | config | chains | all metrics (s) | metric | without it (s) | ratio | ratio of fastest | "
        "default here |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        config = ", ".join(f"{k}={v}" for k, v in row["config"].items()) or "defaults"
        for metric, value in row["without"].items():
            if value is None:
                lines.append(
                    f"| {row['setting']} | {config} | {row['chains']} | {row['seconds_default']:.2f} | "
                    f"{metric} | (only metric) | - | - | yes |"
                )
                continue
            flag = "" if value["ratio"] <= LIMIT else " **over**"
            fastest = min(row["all_seconds_default"]) / min(value["all_seconds"])
            default = "yes" if is_default(row["setting"], row["config"], metric) else "no"
            lines.append(
                f"| {row['setting']} | {config} | {row['chains']} | {row['seconds_default']:.2f} | "
                f"{metric} | {value['seconds']:.2f} | {value['ratio']:.2f}{flag} | {fastest:.2f} | "
                f"{default} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write OUT.json and OUT.md")
    parser.add_argument("--only", choices=("gaussian", "others"), help="one group of configurations")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="d = 10 and M = 10 only, one repeat (a smoke run)")
    parser.add_argument("--render", action="store_true", help="only rewrite OUT.md from OUT.json")
    parser.add_argument("--dim", type=int, action="append", help="only Gaussian configurations of this d")
    parser.add_argument("--samples", type=int, action="append", help="only Gaussian configurations of this M")
    args = parser.parse_args(argv)
    if args.render:
        with open(args.out + ".json") as handle:
            saved = json.load(handle)
        with open(args.out + ".md", "w") as handle:
            handle.write(markdown(saved["rows"], saved))
        return saved["rows"]

    import jax

    configs = []
    if args.only in (None, "gaussian"):
        configs += gaussian_configs()
    if args.only in (None, "others"):
        configs += other_configs()
    if args.dim:
        configs = [(s, o, c) for s, o, c in configs if o.get("dim") in args.dim]
    if args.samples:
        configs = [(s, o, c) for s, o, c in configs if o.get("samples") in args.samples]
    if args.quick:
        configs = [(s, o, c) for s, o, c in configs if o.get("dim") == 10 and o.get("samples") == 10]
        args.repeats = 1
    rows = []
    for setting, overrides, chains in configs:
        row = measure(setting, overrides, args.repeats, chains)
        worst = max((v["ratio"] for v in row["without"].values() if v), default=1.0)
        print(
            f"{setting} {overrides} chains={row['chains']} default={row['seconds_default']:.2f}s "
            f"worst ratio={worst:.2f}",
            flush=True,
        )
        rows.append(row)
        if args.out:
            with open(args.out + ".partial.json", "w") as handle:
                json.dump(rows, handle, indent=1)
    header = {
        "date": datetime.date.today().isoformat(),
        "jax": jax.__version__,
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "cpu": f"{platform.processor() or platform.machine()}, 2 cores",
        "repeats": args.repeats,
    }
    if args.out:
        with open(args.out + ".json", "w") as handle:
            json.dump({**header, "limit": LIMIT, "rows": rows}, handle, indent=1)
        with open(args.out + ".md", "w") as handle:
            handle.write(markdown(rows, header))
    return rows


if __name__ == "__main__":
    main()
