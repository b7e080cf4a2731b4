"""Benchmark: many tiny language models trained recursively in one program, against a Python loop over
the same chains.

Workload (defaults): the neural setting's lm task, a causal transformer (width 32, one block, two heads)
on a Zipfian Markov language (V = 24, L = 12), 64 chains x 3 generations, replace; each fit is 100 Adam
steps on minibatches of 64 sequences drawn from M = 512 sequences; each generation samples M sequences
autoregressively (L forward passes) and evaluates on 128 real and 128 generated sequences.

Timed in one run, compile apart from execution:
  (a) one program: `jax.jit(jax.vmap(chain))` over the C chain ids;
  (b) a Python loop over chains: `jax.jit(chain)` compiled once, called once per chain id (what a
      per-seed script does, minus process start-up).
Both run the same chains with the same keys; their final cross-entropies are compared (allclose: vmapped
and single matrix products differ in rounding only).

Reported: seconds, the speed-up of (a) over (b), training examples (sequences) per second and an
estimate of the training FLOP rate (6 x parameters x tokens, forward and backward; sampling and
evaluation not counted), to compare with the device's peak where one is known.

Usage:
  PYTHONPATH=. python benchmarks/bench_neural.py --out benchmarks/results/bench_neural_cpu2.json
  PYTHONPATH=. python benchmarks/bench_neural.py --quick      # smoke test (small sizes)
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_gaussian import Timer, load_average


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=64)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--test-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.chains, args.generations, args.samples, args.steps, args.test_size = 4, 2, 64, 5, 16

    import jax
    import jax.numpy as jnp
    from flax import nnx

    from collapse_jax.chain import make_chain_fn
    from collapse_jax.keys import root_key
    from collapse_jax.models.neural.networks import CausalTransformer
    from collapse_jax.settings import get_setting

    config = dict(
        task="lm",
        vocab=24,
        context=12,
        width=args.width,
        depth=args.depth,
        heads=2,
        steps=args.steps,
        batch_size=args.batch_size,
        samples=args.samples,
        generations=args.generations,
        test_size=args.test_size,
        policy="replace",
        chains=args.chains,
    )
    definition = get_setting("neural")
    config = definition.resolve(config)
    setting, spec = definition.instantiate(config)
    chain = make_chain_fn(setting, spec)
    key = root_key(0)
    ids = jnp.arange(args.chains)

    batched = jax.jit(jax.vmap(chain, in_axes=(None, 0)))
    single = jax.jit(chain)
    with Timer() as compile_batched:
        batched_exe = batched.lower(key, ids).compile()
    with Timer() as compile_single:
        single_exe = single.lower(key, ids[0]).compile()
    with Timer() as run_batched:
        out_batched = jax.block_until_ready(batched_exe(key, ids))
    with Timer() as run_loop:
        out_loop = [jax.block_until_ready(single_exe(key, i)) for i in ids]
    final_batched = np.asarray(out_batched["cross_entropy"][:, -1])
    final_loop = np.array([float(o["cross_entropy"][-1]) for o in out_loop])
    agree = bool(np.allclose(final_batched, final_loop, rtol=2e-3, atol=2e-3))

    model = CausalTransformer(24, 12, args.width, args.depth, 2, rngs=nnx.Rngs(0))
    parameters = int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param))))
    fits = args.chains * args.generations
    sequences = fits * args.steps * args.batch_size
    tokens = sequences * 12
    train_flops = 6.0 * parameters * tokens
    devices = jax.devices()
    result = {
        "benchmark": "bench_neural",
        "date": datetime.date.today().isoformat(),
        "device": f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})",
        "machine": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "workload": {
            k: config[k]
            for k in (
                "vocab",
                "context",
                "width",
                "depth",
                "heads",
                "steps",
                "batch_size",
                "samples",
                "generations",
                "test_size",
                "policy",
            )
        }
        | {"chains": args.chains, "parameters_per_model": parameters},
        "one_program": {"compile_s": compile_batched.wall, "run_s": run_batched.wall, "cpu_s": run_batched.cpu},
        "python_loop": {"compile_s": compile_single.wall, "run_s": run_loop.wall, "cpu_s": run_loop.cpu},
        "speedup_one_program_vs_loop": run_loop.wall / run_batched.wall,
        "training_sequences_per_s": {
            "one_program": sequences / run_batched.wall,
            "python_loop": sequences / run_loop.wall,
        },
        "training_gflops_estimate": {
            "one_program": train_flops / run_batched.wall / 1e9,
            "python_loop": train_flops / run_loop.wall / 1e9,
        },
        "final_cross_entropy_mean": float(final_batched.mean()),
        "batched_equals_loop": agree,
        "load_average": load_average(),
    }
    print(
        f"{args.chains} tiny LMs x {args.generations} generations ({parameters} parameters each) on {result['device']}"
    )
    print(f"  one program : compile {compile_batched.wall:6.1f} s, run {run_batched.wall:7.2f} s")
    print(f"  Python loop : compile {compile_single.wall:6.1f} s, run {run_loop.wall:7.2f} s")
    print(
        f"  speed-up {result['speedup_one_program_vs_loop']:.2f}x; training sequences/s: "
        f"{result['training_sequences_per_s']['one_program']:.0f} vs {result['training_sequences_per_s']['python_loop']:.0f}; "
        f"training GFLOP/s (estimate) {result['training_gflops_estimate']['one_program']:.1f}"
    )
    print(f"  same chains, same results: {agree}")
    if args.out:
        with open(args.out, "w") as stream:
            json.dump(result, stream, indent=1)
    return result


if __name__ == "__main__":
    main()
