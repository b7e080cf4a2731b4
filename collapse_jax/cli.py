"""The `collapse-jax` command line: simulate, sweep, reproduce, list."""

from __future__ import annotations

import argparse
import os
import sys

from collapse_jax.options import LAPACK_ENV
from collapse_jax.settings import SETTINGS


def _number(text: str):
    """A numeric option's value: an int or float when it reads as one, else the text, which the
    parameter's check refuses with its name and range (one line, like every other bad value)."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _add_parameter(parser: argparse.ArgumentParser, parameter) -> None:
    if parameter.kind is bool:
        parser.add_argument(parameter.flag, dest=parameter.name, action="store_true", default=None, help=parameter.help)
        return
    kind = _number if parameter.kind in (int, float) else str
    default = ",".join(parameter.default) if parameter.kind == "list" else parameter.default
    allowed = parameter.allowed() if parameter.choices is None else ""
    parser.add_argument(
        parameter.flag,
        dest=parameter.name,
        type=kind,
        default=None,
        metavar=parameter.name.upper(),
        help=f"{parameter.help} (default: {default}{'; allowed: ' + allowed if allowed else ''})",
    )


def _add_cpu_devices(parser: argparse.ArgumentParser, ignored: str = "") -> None:
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=0,
        metavar="N",
        help="on a CPU-only install, run the chains on N CPU devices, one thread each (XLA runs a program on one "
        "core per device), with LAPACK's factorisations one matrix per call; 0 (default): one per core, at most "
        f"{MAX_AUTO_CPU_DEVICES}; 1: one device. The same draws on any count (metrics equal up to float32 rounding). "
        f"Ignored {ignored}on GPU or TPU, or "
        "when XLA_FLAGS sets a device count",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="collapse-jax", description="Model collapse: simulation and theory.")
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser("simulate", help="run chains of one setting and write summary.json")
    settings = simulate.add_subparsers(dest="setting", required=True)
    for definition in SETTINGS.values():
        sub = settings.add_parser(definition.name, help=definition.description, description=definition.description)
        for parameter in definition.all_parameters:
            _add_parameter(sub, parameter)
        sub.add_argument("--out", required=True, help="output directory (summary.json, chains.npz)")
        sub.add_argument("--save-chains", action="store_true", help="also write per-chain metrics to chains.npz")
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
        _add_cpu_devices(sub)

    sweep = commands.add_parser("sweep", help="run a grid of runs from a TOML spec (resumable, cell by cell)")
    sweep.add_argument("spec", help="sweep spec (TOML): setting, [fixed] parameters, [axes] lists")
    sweep.add_argument("--out", help="output directory (default: sweeps/<name>)")
    sweep.add_argument("--resume", action="store_true", help="continue the sweep in --out, skipping finished cells")
    sweep.add_argument("--quiet", action="store_true", help="no progress output (for logs)")
    sweep.add_argument(
        "--shard",
        metavar="I/N",
        help="run the I-th of N disjoint parts of the cells (0-based: 0 <= I < N; whole program groups), as one "
        "of N independent processes filling --out (e.g. --shard $SLURM_ARRAY_TASK_ID/N with --array=0-(N-1)); "
        "shards join the folder's manifest (same spec) and skip finished cells",
    )
    sweep.add_argument(
        "--status",
        action="store_true",
        help="print the finished and missing cells of --out (per shard with --shard N or I/N, or where the "
        "cells record it) and exit; runs and compiles nothing",
    )
    sweep.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-host run (jax.distributed; COLLAPSE_JAX_COORDINATOR, "
        "COLLAPSE_JAX_NUM_PROCESSES, COLLAPSE_JAX_PROCESS_ID or the cluster's environment)",
    )
    _add_cpu_devices(sweep, "ignored with --distributed, ")

    reproduce = commands.add_parser("reproduce", help="run registered figure experiments")
    reproduce.add_argument("names", nargs="*", help="experiments to run (default: all)")
    reproduce.add_argument(
        "--mode",
        choices=REPRODUCE_MODES,
        help="full (default: the shipped gallery, at most 10 minutes per experiment on a 2-core CPU), quick "
        "(minutes on a laptop), smoke (tiny: checks the pipeline runs) or paper (the papers' own sizes, meant "
        "for a GPU or TPU; hours on a CPU)",
    )
    reproduce.add_argument("--quick", action="store_true", help="the same as --mode quick")
    reproduce.add_argument("--smoke", action="store_true", help="the same as --mode smoke")
    reproduce.add_argument("--out", required=True, help="output directory (figures, report.md)")
    reproduce.add_argument("--quiet", action="store_true", help="no progress output")
    reproduce.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="experiments run at once, each in its own process (default 1; on a 2-core CPU, 2 makes quick "
        "mode about a fifth faster, full mode no faster; same figures and report)",
    )
    reproduce.add_argument(
        "--resume",
        action="store_true",
        help="read back every run whose summary.json under --out has exactly its configuration instead of "
        "running it (an interrupted figure continues; a plotting change costs no simulation); run without it "
        "after a change to the engine",
    )

    commands.add_parser("list", help="list the registered experiments")
    return parser


def _print_simulation(summary: dict, out: str) -> None:
    g = summary["generations"][-1]
    print(
        f"{summary['setting']}: {summary['num_chains']} chains x {g} generations on {summary['device']}"
        f" ({summary['timing']['compile_seconds']:.1f} s compile, {summary['timing']['run_seconds']:.1f} s run)"
    )
    width = max([16] + [len(name) + 2 for name in summary["metrics"]])
    print(f"{'metric':<{width}}{'mean at G':>14}{'+- 1.96 SE':>12}{'theory at G':>14}  comparison")
    for name, entry in summary["metrics"].items():
        mean, se, theory = entry["mean"][-1], entry["se"][-1], entry["theory"][-1]
        theory = (entry.get("theory_infinite") or [None])[-1] or theory  # "-inf" where the theory is -inf
        fmt = lambda v: "null" if v is None else v if isinstance(v, str) else f"{v:.6g}"
        detail = entry["comparison"]["message"]  # status, max SE, and every non-finite chain counted
        if entry["nonfinite_chains"][-1]:
            detail += f"; {entry['nonfinite_chains'][-1]} non-finite chains at G"
        print(f"{name:<{width}}{fmt(mean):>14}{fmt(None if se is None else 1.96 * se):>12}{fmt(theory):>14}  {detail}")
    print(f"wrote {out}/summary.json")


def _cache_note(report) -> str:
    """ "h of n compilations from the cache, " when the persistent cache was asked (else nothing); n counts
    every compiled computation (a program's variants and small setup computations too)."""
    return (
        f"{report.cache_hits} of {report.cache_requests} compilations from the cache, " if report.cache_requests else ""
    )


def _accelerator_plugin_installed() -> bool:
    import importlib.util

    return any(
        importlib.util.find_spec(name) is not None
        for name in ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "libtpu")
    )


def cpu_compile_flags() -> None:
    """On CPU-only installs, compile with LLVM optimisation level 1 unless XLA_FLAGS says otherwise:
    about half the compile time of the default level for the same run time (measured; see README)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags and not _accelerator_plugin_installed():
        os.environ["XLA_FLAGS"] = (flags + " --xla_backend_optimization_level=1").strip()


def cpu_device_count(requested: int) -> int:
    """The CPU devices a simulation or sweep runs on: `requested` (`--cpu-devices`), or for 0 one per core this
    process may use, at most MAX_AUTO_CPU_DEVICES. ValueError naming the option outside [0, 64]."""
    if check_count(requested, "cpu_devices", 0, 64):
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_AUTO_CPU_DEVICES))


def cpu_devices_flags(count: int) -> None:
    """Before JAX starts (a fresh process, CPU-only install, no device count in XLA_FLAGS), give the CPU backend
    `count` devices and, with several, LAPACK one matrix per call (`COLLAPSE_JAX_CPU_LAPACK=force` unless set:
    a call on one matrix runs inline and never waits on the thread pool, see `linalg.lapack_is_safe`). A
    simulation's or sweep's lanes are sharded over the devices, each run by its own thread: on 2 cores the
    Collapse-or-Thrive Gaussian grid took 95 s cold and 48 s warm on 2 devices (113 s and 59 s on one), the
    fresh-design regression benchmark 12.4 s (16.4 s)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if count <= 1 or "jax" in sys.modules or "xla_force_host_platform_device_count" in flags:
        return
    if _accelerator_plugin_installed():  # GPU or TPU: their devices, not the CPU's
        return
    os.environ["XLA_FLAGS"] = (flags + f" --xla_force_host_platform_device_count={count}").strip()
    os.environ.setdefault(LAPACK_ENV, "force")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    cpu_compile_flags()  # before the first computation initialises the backend
    status_only = args.command == "sweep" and args.status
    try:
        if args.command == "simulate" or (args.command == "sweep" and not status_only and not args.distributed):
            cpu_devices_flags(cpu_device_count(args.cpu_devices))  # before JAX starts (the cache below starts it)
        if (
            args.command in ("simulate", "sweep", "reproduce")
            and not status_only
            and not os.environ.get("COLLAPSE_JAX_NO_CACHE")
        ):
            from collapse_jax.parallel import enable_compilation_cache

            enable_compilation_cache()
        if args.command == "list":
            for provider in figure_providers():
                for name, experiment in provider.REGISTRY.items():
                    print(f"{name:<28}{experiment.description}")
            return 0
        if args.command == "simulate":
            from collapse_jax.simulate import simulate

            definition = SETTINGS[args.setting]
            overrides = {
                p.name: getattr(args, p.name) for p in definition.all_parameters if getattr(args, p.name) is not None
            }
            summary = simulate(
                args.setting, overrides, out=args.out, save_chains=args.save_chains, progress=not args.quiet
            )
            _print_simulation(summary, args.out)
            return 0
        if args.command == "sweep":
            from collapse_jax.sweep import parse_shard, run_sweep, sweep_status

            if args.status:
                print("\n".join(sweep_status(args.spec, args.out, shard=args.shard).lines()))
                return 0
            parse_shard(args.shard)  # a bad value is refused before anything starts
            if args.distributed:
                from collapse_jax.parallel import initialize_distributed

                initialize_distributed(auto=not os.environ.get("COLLAPSE_JAX_COORDINATOR"))
            report = run_sweep(
                args.spec, args.out, resume=args.resume, progress=False if args.quiet else "auto", shard=args.shard
            )
            verdicts = ", ".join(f"{n} {status}" for status, n in sorted(report.comparisons.items())) or "none"
            part = f" shard {report.shard} ({report.cells} of {report.sweep_cells} cells)" if report.shard else ""
            busy = f", {report.busy_programs} programs left to other runs" if report.busy_programs else ""
            print(
                f"sweep {report.out}{part}: {report.ran} cells run, {report.skipped} already finished{busy}, "
                f"{report.programs} programs ({_cache_note(report)}{report.compile_seconds:.1f} s preparing them, "
                f"overlapping the runs), {report.seconds:.1f} s; theory comparisons (cell x metric): {verdicts}"
            )
            return 0
        if args.command == "reproduce":
            from collapse_jax.simulate import check_output_directory

            providers = figure_providers()
            known = {name: provider for provider in providers for name in provider.REGISTRY}
            unknown = [name for name in args.names if name not in known]
            if unknown:
                raise ValueError(
                    f"unknown experiment(s) {', '.join(unknown)}; `collapse-jax list` shows: {', '.join(known)}"
                )
            check_output_directory(args.out)
            mode = reproduce_mode(args.mode, args.quick, args.smoke)
            check_jobs(args.jobs)  # also here: a provider is handed jobs only above 1
            failed = []
            for provider in providers:
                names = [name for name in args.names if known[name] is provider]
                if args.names and not names:
                    continue
                failed += provider.reproduce(
                    names,
                    out=args.out,
                    mode=mode,
                    verbose=not args.quiet,
                    resume=args.resume,
                    **({"jobs": args.jobs} if args.jobs > 1 else {}),  # a provider may not run experiments at once
                )
            return 1 if failed else 0
    except ValueError as error:
        print(f"collapse-jax: error: {error}", file=sys.stderr)
        return 2
    return 0


FIGURES_GROUP = "collapse_jax.figures"
MAX_AUTO_CPU_DEVICES = 8  # `simulate` and `sweep` with `--cpu-devices 0`: one CPU device per core, at most this many
REPRODUCE_MODES = ("smoke", "quick", "full", "paper")


def check_count(value, name: str, low: int, high: int) -> int:
    """A command-line count: an integer in [low, high] (not a boolean), else ValueError naming `name` and
    its option (`--name` with dashes)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} (--{name.replace('_', '-')}) must be an integer in [{low}, {high}], got {value!r}")
    return value


def check_jobs(jobs) -> int:
    """`reproduce`'s experiments at once (`--jobs`): an integer in [1, 64], else ValueError naming it."""
    return check_count(jobs, "jobs", 1, 64)


def reproduce_mode(mode: str | None, quick: bool, smoke: bool) -> str:
    """The mode of `reproduce` from `--mode` and its shorthands `--quick`, `--smoke`; ValueError when
    they disagree."""
    asked = {m for m, on in (("quick", quick), ("smoke", smoke)) if on} | ({mode} if mode else set())
    if len(asked) > 1:
        raise ValueError(f"--mode, --quick and --smoke ask for different modes ({', '.join(sorted(asked))}): give one")
    return asked.pop() if asked else "full"


def figure_providers() -> list:
    """The installed figure packages: the modules registered under the entry-point group
    `collapse_jax.figures`, each with `REGISTRY` (name -> experiment) and `reproduce(names, *, out, mode,
    verbose, resume[, jobs]) -> failed curves` (mode: one of `REPRODUCE_MODES`; `jobs` is passed only when
    --jobs asks for more than 1). The library never imports them itself: this repository's
    `experiments` package registers itself in pyproject.toml, and another package can add its own figures."""
    from importlib.metadata import entry_points

    providers = [point.load() for point in sorted(entry_points(group=FIGURES_GROUP), key=lambda p: p.name)]
    if not providers:
        raise ValueError(
            f"no figure experiments are installed (none registered under the entry-point group {FIGURES_GROUP}; "
            "install this repository with `pip install -e .`)"
        )
    return providers


if __name__ == "__main__":
    sys.exit(main())
