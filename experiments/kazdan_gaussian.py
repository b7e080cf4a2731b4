"""Kazdan et al. 2024 ("Collapse or Thrive?"), multivariate Gaussian: replace vs accumulate vs
accumulate-subsample.

MLE refits (ddof = 0) of N(0, I_d), d in {1, 10, 100}, M in {10, 100, 1000}, 100 generations; metrics
tr Sigma_k / tr Sigma_0, log det Sigma_k - log det Sigma_0 (the paper's det Sigma ratio, as a log: -inf
where M - 1 < d, a singular fit) and ||mu_k - mu_0||^2. Replace collapses (trace -> 0, mean error ->
tr Sigma_0); accumulate plateaus (trace -> sin(pi/sqrt M)/(pi/sqrt M), mean error <= pi^2/6 tr
Sigma_0/M); accumulate-subsample plateaus above accumulate: no closed form, but its mean error has the
large-M limit V_k tr Sigma_0 / M, V_k -> pi^2/2 - 2 (theory.md A.4), drawn as a limit.
replace and accumulate run on the exact sufficient-statistic path; accumulate-subsample needs the points.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from experiments.common import (
    EXACT_STYLE,
    LIMIT_STYLE,
    curves_from_summary,
    finish_figure,
    plot_metric,
    simulate_cells,
    style_axes,
)

NAME = "kazdan-gaussian"
DIMS = (1, 10, 100)
SIZES = (10, 100, 1000)
PAPER_DIMS = (1, 3, 10, 31, 100)  # the paper's grids (paper mode)
PAPER_SIZES = (10, 32, 100, 316, 1000)
POLICIES = ("replace", "accumulate", "accumulate-subsample")
COLORS = {10: "#d62728", 32: "#ff7f0e", 100: "#1f77b4", 316: "#9467bd", 1000: "#2ca02c"}
STYLES = {"replace": "-", "accumulate": "--", "accumulate-subsample": ":"}
METRICS = ("trace_ratio", "log_det_ratio", "mean_error_sq")


def chains_for(dim: int, policy: str, samples: int, mode: str) -> int:
    """Chains per cell: the sample-level subsample path at d = 100, M = 1000 is the costly one."""
    quick = mode == "quick"
    if mode == "smoke":
        return 32
    if mode == "paper":  # the paper's 100 seeds are fewer: full's uncut counts at every size
        return 2000 if policy == "accumulate-subsample" else 20_000
    if policy == "accumulate-subsample":
        cost = dim * samples
        if quick:
            return 16 if cost >= 10_000 else (64 if samples >= 1000 else 256)
        return 200 if cost >= 10_000 else 2000
    # d = 100 with M <= 100 merges pools by a pivoted 201 x 100 QR per generation (about 0.25 s per chain
    # over 100 generations on a 2-core CPU): 500 chains keep the full figure within its budget
    return {1: 2000, 10: 500, 100: 100}[dim] if quick else {1: 20_000, 10: 10_000, 100: 500}[dim]


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full", "quick" (fewer chains), "smoke" (d in {1, 10}, M in {10, 100}, 10 generations) or
    "paper" (the paper's d in {1, 3, 10, 31, 100}, M in {10, 32, 100, 316, 1000}, 100 generations;
    2 10^4 chains, 2000 for accumulate-subsample)."""
    dims, sizes = {
        "smoke": ((1, 10), (10, 100)),
        "quick": (DIMS, (10, 1000)),  # quick is compile-bound: the two ends of M
        "paper": (PAPER_DIMS, PAPER_SIZES),
    }.get(mode, (DIMS, SIZES))
    cells = {}
    for dim in dims:
        for policy in POLICIES:
            for m in sizes:
                config = dict(
                    dim=dim,
                    samples=m,
                    ddof=0,
                    policy=policy,
                    generations=10 if mode == "smoke" else 100,
                    seed=0,
                    metrics=METRICS,
                    chains=chains_for(dim, policy, m, mode),
                    method="samples" if policy == "accumulate-subsample" else "sufficient",
                )
                cells[dim, policy, m] = ("gaussian", config, f"{out_dir}/d{dim}-{policy}-M{m}")
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    for (dim, policy, m), summary in summaries.items():
        curves += curves_from_summary(NAME, f"d={dim} {policy} M={m}", summary, METRICS)

    fig, axes = plt.subplots(3, len(dims), figsize=(5 * max(3, len(dims)), 11.5), sharex=True)
    rows = {
        "trace_ratio": (r"tr $\Sigma_k$ / tr $\Sigma_0$", True),
        "log_det_ratio": (r"$\log\det\Sigma_k - \log\det\Sigma_0$", False),
        "mean_error_sq": (r"$\|\mu_k-\mu_0\|^2$", True),
    }
    for col, dim in enumerate(dims):
        singular = []
        for (d, policy, m), summary in summaries.items():
            if d != dim:
                continue
            for row, (metric, (_, positive)) in enumerate(rows.items()):
                means = summary["metrics"][metric]["mean"][1:]
                if metric == "log_det_ratio" and all(v is None for v in means):  # -inf: every fit singular
                    singular.append(f"{policy}, M={m}")
                    continue
                plot_metric(
                    axes[row, col],
                    summary,
                    metric,
                    positive=positive,
                    label=f"{policy}, M={m}",
                    color=COLORS[m],
                    linestyle=STYLES[policy],
                )
        for row, (ylabel, positive) in enumerate(rows.values()):
            style_axes(
                axes[row, col], title=f"d = {dim}" if row == 0 else None, ylabel=ylabel, logy=positive, xlabel=""
            )
        axes[0, col].set_ylim(1e-4, 3)
        if singular:
            axes[1, col].text(
                0.02,
                0.03,
                "-inf at every generation (M - 1 < d, singular fits):\n" + "\n".join(singular),
                transform=axes[1, col].transAxes,
                fontsize=7,
                color="0.3",
            )
        axes[-1, col].set_xlabel("generation")
    handles = [Line2D([], [], color=COLORS[m], lw=1.4, label=f"M = {m}") for m in sizes]
    handles += [Line2D([], [], color="0.3", lw=1.4, linestyle=STYLES[p], label=p) for p in POLICIES]
    handles += [
        Line2D([], [], **EXACT_STYLE, label="exact theory"),
        Line2D([], [], **LIMIT_STYLE, label="large-M limit (accumulate-subsample, theory.md A.4)"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, 0.02))
    title = "Multivariate Gaussian, MLE refits: replace (solid) vs accumulate (dashed) vs accumulate-subsample (dotted)"
    paths = finish_figure(fig, title, out_dir, NAME, bottom=0.07)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(NAME, "Kazdan et al. 2024: multivariate Gaussian, replace vs accumulate vs subsample", run)
