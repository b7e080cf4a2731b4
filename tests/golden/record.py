"""Record (or check) the golden arrays of `tests/golden/cases.py`.

python -m tests.golden.record            # write tests/golden/golden.npz
python -m tests.golden.record --check    # rerun and say, per case, whether it is bit-identical
python -m tests.golden.record --fast-compile [--check]   # the same with the default tier's XLA flag
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

from tests.golden.cases import CASES, SMALL

FAST_COMPILE = "--xla_backend_optimization_level=0"  # the default test tier's flag (tests/conftest.py)


def golden_path(fast_compile: bool) -> str:
    """The arrays recorded with LLVM's optimisations off (the default tier) or on (users, the slow tier)."""
    return os.path.join(os.path.dirname(__file__), "golden-O0.npz" if fast_compile else "golden.npz")


SUMMARY_FIELDS = ("mean", "se", "std", "theory")


def run_case(name: str) -> dict[str, np.ndarray]:
    """The arrays of one case: per-chain metrics (chains.npz) and the summary's per-generation fields."""
    import jax

    from collapse_jax.simulate import simulate

    setting, overrides = CASES[name]
    x64 = jax.config.jax_enable_x64
    with tempfile.TemporaryDirectory() as out:
        try:
            summary = simulate(setting, {**SMALL, **overrides}, out=out, save_chains=True)
        finally:
            jax.config.update("jax_enable_x64", x64)  # a case with x64 must not change the next ones
        with np.load(os.path.join(out, "chains.npz")) as chains:
            arrays = {f"{name}/chains/{key}": chains[key] for key in chains.files}
    for metric, record in summary["metrics"].items():
        for field in SUMMARY_FIELDS:
            values = record.get(field)
            if values is not None:
                arrays[f"{name}/{field}/{metric}"] = np.asarray(
                    [np.nan if v is None else v for v in values], np.float64
                )
    return arrays


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--fast-compile", action="store_true", help="as the default test tier compiles")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if f != FAST_COMPILE and "device_count" not in f]
    os.environ["XLA_FLAGS"] = " ".join(flags + [FAST_COMPILE] * args.fast_compile)  # before JAX starts
    path = golden_path(args.fast_compile)
    names = args.names or list(CASES)
    if not args.check:
        arrays = {}
        for name in names:
            try:
                arrays.update(run_case(name))
            except Exception as error:  # say every failing case at once
                print("FAILED", name, type(error).__name__, error, flush=True)
                continue
            print("recorded", name, flush=True)
        np.savez_compressed(path, **arrays)
        return 0
    with np.load(path) as golden:
        stored = {key: golden[key] for key in golden.files}
    failures = 0
    for name in names:
        arrays = run_case(name)
        expected = {k: v for k, v in stored.items() if k.startswith(name + "/")}
        same = set(arrays) == set(expected) and all(
            np.array_equal(arrays[k], expected[k], equal_nan=True) for k in arrays
        )
        failures += not same
        print(("bit-identical " if same else "DIFFERS       ") + name, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
