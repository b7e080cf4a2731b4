"""Eigenvalues of symmetric matrices learned recursively (Feng et al. 2024's transformer task, with an
MLP that outputs a mean and a variance per eigenvalue).

Each generation's network labels fresh matrices with samples from its predictive law (mean + sd * eps);
the next network trains on those labels. Accuracy: the share of test matrices whose predicted
eigenvalues are within 5% relative L1 error of the truth (Charton's criterion).

(a) no verifier, the three pool rules: accuracy decays under replace, much less under accumulate.
(b) replace with an oracle verifier (it computes the true eigenvalues, here with or without noise, and
    keeps labels within the tolerance): prune (the kept points only, so the training set shrinks),
    refill (propose until M labels pass) and best-of-4 (four labels drawn per matrix, the closest kept).
(c) the kept fraction of (b).
Generation 0 is the truth (accuracy 1 by definition) and is not drawn; generation 1 is the network
trained on real labels. Simulation only (no closed form). Quick and full use 3 x 3 matrices (full: a
wider MLP, 20000 matrices and 2500 steps per generation, 9 chains, about 5 minutes on a 2-core
CPU); the paper mode uses the paper's 5 x 5 and is meant for a GPU.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "neural-eigen"
POLICIES = {"replace": "#d62728", "accumulate": "#2ca02c", "accumulate-subsample": "#1f77b4"}
VERIFIERS = {
    "no verifier": ({}, "#7f7f7f"),
    "oracle, prune": (dict(verifier="oracle", verified_budget="prune"), "#ff7f0e"),
    "oracle, refill": (dict(verifier="oracle", verified_budget="refill"), "#2ca02c"),
    "noisy oracle (sd 0.05), refill": (
        dict(verifier="oracle", verified_budget="refill", verifier_noise=0.05),
        "#17becf",
    ),
    "oracle, best of 4": (dict(verifier="oracle", best_of=4), "#9467bd"),
}
QUICK_VERIFIERS = (
    "no verifier",
    "oracle, prune",
    "oracle, refill",
    "oracle, best of 4",
)  # compile-bound: 1 program less
MODES = {
    # 3 x 3 matrices within the CPU budget (the whole gallery in an hour): seven cells of 9 chains x 6 generations
    "full": dict(
        matrix_size=3,
        width=128,
        depth=2,
        steps=2500,
        batch_size=128,
        learning_rate=0.002,
        samples=20000,
        chains=9,
        generations=6,
        test_size=1000,
    ),
    # the paper's 5 x 5 matrices (Feng et al. 2024 after Charton 2022; papers.md 6), for an accelerator
    "paper": dict(
        matrix_size=5,
        width=256,
        depth=3,
        steps=4000,
        batch_size=256,
        learning_rate=0.001,
        samples=20000,
        chains=32,
        generations=10,
        test_size=2000,
    ),
    "quick": dict(
        matrix_size=3,
        width=64,
        depth=2,
        steps=500,
        batch_size=64,
        learning_rate=0.003,
        samples=2000,
        chains=6,
        generations=5,
        test_size=1000,
    ),
    "smoke": dict(
        matrix_size=3,
        width=16,
        depth=1,
        steps=20,
        batch_size=32,
        learning_rate=0.003,
        samples=64,
        chains=2,
        generations=2,
        test_size=64,
    ),
}


def _from_generation(summary: dict, first: int) -> dict:
    """The summary from generation `first` on: every per-generation list and quantile list is cut.
    Accuracy is drawn from generation 1 (generation 0 is the truth, accuracy 1 by definition: drawn, its
    segment to generation 1 would read as a drop); the kept fraction from generation 2, the first whose
    labels are synthetic (generation 1 trains on real labels, which nothing verifies)."""

    def cut(value):
        if isinstance(value, list):
            return value[first:]
        if isinstance(value, dict):
            return {key: cut(inner) for key, inner in value.items()}
        return value

    return dict(summary, generations=summary["generations"][first:], metrics=cut(summary["metrics"]))


def run(out_dir: str, mode: str = "full", progress: bool = True):
    base = dict(task="eigen", tolerance=0.05, verifier_tolerance=0.05, seed=0, **MODES[mode])
    cells = {}
    for policy in POLICIES:
        cells["policy", policy] = ("neural", {**base, "policy": policy}, f"{out_dir}/{policy}")
    verifiers = {k: v for k, v in VERIFIERS.items() if mode != "quick" or k in QUICK_VERIFIERS}
    for label, (extra, _) in verifiers.items():
        if extra:
            name = label.replace(",", "").replace(" ", "_").replace("(", "").replace(")", "")
            cells["verifier", label] = ("neural", {**base, **extra}, f"{out_dir}/{name}")
    summaries = simulate_cells(cells, progress=progress)
    summaries["verifier", "no verifier"] = summaries["policy", "replace"]
    curves = []
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    for policy, color in POLICIES.items():
        summary = summaries["policy", policy]
        curves += curves_from_summary(NAME, policy, summary, ("accuracy", "relative_error"))
        plot_metric(axes[0], _from_generation(summary, 1), "accuracy", label=policy, color=color)
    for label, (extra, color) in verifiers.items():
        summary = summaries["verifier", label]
        if extra:
            curves += curves_from_summary(NAME, label, summary, ("accuracy", "kept_fraction"))
            plot_metric(axes[2], _from_generation(summary, 2), "kept_fraction", label=label, color=color)
        plot_metric(axes[1], _from_generation(summary, 1), "accuracy", label=label, color=color)
    size = base["matrix_size"]
    style_axes(
        axes[0],
        title=f"(a) {size}x{size} eigenvalues, no verifier: the pool rules",
        ylabel="accuracy (5% relative L1 error)",
    )
    style_axes(
        axes[1], title="(b) replace, with and without an oracle verifier", ylabel="accuracy (5% relative L1 error)"
    )
    style_axes(axes[2], title="(c) share of proposed labels the verifier keeps", ylabel="kept fraction")
    for ax in axes:
        ax.set_xlim(0.8, base["generations"] + 0.2)
        ax.set_xlabel("generation (1: trained on real labels; 0, the truth, not drawn)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
    axes[2].set_xlim(1.8, base["generations"] + 0.2)
    axes[2].set_xlabel("generation (2: the first synthetic labels)")
    paths = finish_figure(
        fig,
        f"Recursive eigenvalue regression (MLP, M={base['samples']} matrices per "
        "generation): collapse under replace; a verifier that refills (or picks the best of 4) prevents it, "
        "pruning alone shrinks the training set",
        out_dir,
        NAME,
    )
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    NAME, "Eigenvalue networks trained on their predecessors' labels, with and without a verifier", run
)
