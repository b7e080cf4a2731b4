"""Golden cases: small runs covering every setting, pool rule, real-data option and verifier.

`python -m tests.golden.record` writes their per-chain metric arrays and summary arrays to
`tests/golden/golden.npz`; `tests/test_golden.py` reruns them and compares (bit-identical on the machine
that recorded them, `python -m tests.golden.record --check`; within float32 rounding elsewhere).
"""

SMALL = {"chains": 6, "generations": 3, "seed": 3}

CASES = {
    # gaussian: pool rules, both paths, real data options, temperature, curation
    "gaussian-replace": ("gaussian", {"dim": 2, "samples": 8}),
    "gaussian-accumulate-sufficient": (
        "gaussian",
        {"dim": 2, "samples": 8, "policy": "accumulate", "method": "sufficient"},
    ),
    "gaussian-subsample-mle": ("gaussian", {"dim": 3, "samples": 6, "ddof": 0, "policy": "accumulate-subsample"}),
    "gaussian-real-fresh": (
        "gaussian",
        {"dim": 2, "samples": 10, "real_fraction": 0.3, "metrics": "mean_error_sq,kl_divergence"},
    ),
    "gaussian-real-mixture": (
        "gaussian",
        {"dim": 1, "samples": 10, "real_fraction": 0.5, "real_draw": "mixture"},
    ),
    "gaussian-real-original": ("gaussian", {"dim": 2, "samples": 10, "real_fraction": 0.5, "real_source": "original"}),
    "gaussian-real-weight-shared": (
        "gaussian",
        {"dim": 1, "samples": 10, "real_fraction": 0.3, "real_weight": 0.6, "shared_real_data": True},
    ),
    "gaussian-growth": (
        "gaussian",
        {"dim": 1, "samples": 10, "method": "sufficient", "sample_growth": 1.0},
    ),
    "gaussian-first-samples": ("gaussian", {"dim": 1, "samples": 10, "first_samples": 20}),
    "gaussian-temperature": ("gaussian", {"dim": 2, "samples": 8, "temperature": 0.7}),
    "gaussian-best-of": ("gaussian", {"dim": 2, "samples": 8, "reward": "linear:0.5", "best_of": 3}),
    "gaussian-tilted": ("gaussian", {"dim": 2, "samples": 8, "reward": "linear:0.5", "curation": "tilted"}),
    "gaussian-x64": ("gaussian", {"dim": 2, "samples": 8, "x64": True}),
    # regression: designs, pool rules, ridge, spectrum, downstream, verifier and budgets
    "regression-fixed": ("regression", {"dim": 4, "samples": 12}),
    "regression-fresh-accumulate": ("regression", {"dim": 4, "samples": 12, "design": "fresh", "policy": "accumulate"}),
    "regression-subsample-ridge-power": (
        "regression",
        {"dim": 4, "samples": 12, "policy": "accumulate-subsample", "ridge": 0.1, "spectrum": "power:1"},
    ),
    "regression-sufficient": ("regression", {"dim": 4, "samples": 12, "method": "sufficient", "policy": "accumulate"}),
    "regression-downstream": (
        "regression",
        {"dim": 4, "samples": 12, "downstream_samples": 10, "metrics": "excess_risk,downstream_excess_risk"},
    ),
    "regression-verifier-refill": (
        "regression",
        {"dim": 4, "samples": 12, "design": "fresh", "verifier": "residual", "best_of": 2},
    ),
    "regression-verifier-prune": (
        "regression",
        {
            "dim": 4,
            "samples": 12,
            "design": "fresh",
            "verifier": "residual",
            "verified_budget": "prune",
            "real_fraction": 0.25,
        },
    ),
    "regression-weight-budget": (
        "regression",
        {"dim": 4, "samples": 12, "design": "fresh", "verifier": "residual", "verified_budget": "weight"},
    ),
    "regression-real-weight": (
        "regression",
        {"dim": 4, "samples": 12, "design": "fresh", "real_fraction": 0.25, "real_weight": 0.5},
    ),
    # logistic
    "logistic-fixed": ("logistic", {"dim": 3, "samples": 60}),
    "logistic-fresh-accumulate": ("logistic", {"dim": 3, "samples": 60, "design": "fresh", "policy": "accumulate"}),
    # discrete
    "discrete-replace": ("discrete", {"categories": 20, "samples": 30}),
    "discrete-accumulate-groups": (
        "discrete",
        {"categories": 20, "samples": 30, "policy": "accumulate", "smoothing": 0.5, "groups": "head:1-5,tail:6-20"},
    ),
    "discrete-real-tempered": (
        "discrete",
        {"categories": 20, "samples": 30, "real_fraction": 0.2, "real_source": "original", "temperature": 1.3},
    ),
    "discrete-tilted": ("discrete", {"categories": 20, "samples": 30, "reward": "linear:0.3", "curation": "tilted"}),
    # tails
    "tails-empirical": ("tails", {"categories": 200, "samples": 50, "train_sizes": "10,100"}),
    "tails-shrinking": ("tails", {"categories": 200, "samples": 50, "chain": "shrinking", "train_sizes": "10,100"}),
    # kde, diffusion, gmm
    "kde-moons": ("kde", {"samples": 20, "test_points": 30}),
    "kde-accumulate-fixed": ("kde", {"samples": 20, "test_points": 30, "policy": "accumulate", "bandwidth": "0.3"}),
    "diffusion-gaussian": ("diffusion", {"samples": 20, "test_points": 30}),
    "diffusion-moons": ("diffusion", {"samples": 20, "test_points": 30, "dataset": "moons", "policy": "accumulate"}),
    "gmm": ("gmm", {"samples": 40, "em_steps": 10}),
    # verification: verifiers, budgets, generators, classifiers
    "verification-oracle": ("verification", {"dim": 5, "samples": 20, "verifier": "oracle", "keep_wrong": 0.2}),
    "verification-linear-prune": (
        "verification",
        {"dim": 5, "samples": 20, "verifier": "linear", "verifier_angle": 0.3, "verified_budget": "prune"},
    ),
    "verification-fitted-logistic": (
        "verification",
        {"dim": 5, "samples": 20, "generator": "fitted", "classifier": "logistic", "logistic_steps": 10},
    ),
    # mixture
    "mixture-shifted": ("mixture", {"dim": 4, "samples": 20}),
    "mixture-previous": ("mixture", {"dim": 4, "samples": 20, "synthetic_law": "previous", "policy": "accumulate"}),
    # neural
    "neural-regression": ("neural", {"task": "regression", "samples": 16, "steps": 5, "width": 8, "test_size": 16}),
    "neural-eigen": ("neural", {"task": "eigen", "samples": 16, "steps": 5, "width": 8, "test_size": 16}),
    "neural-lm": (
        "neural",
        {"task": "lm", "model": "bigram", "samples": 4, "steps": 5, "test_size": 4, "vocab": 8, "context": 4},
    ),
}
