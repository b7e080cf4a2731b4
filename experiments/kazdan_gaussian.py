"""Kazdan et al. 2024 ("Collapse or Thrive?"), multivariate Gaussian: replace vs accumulate vs
accumulate-subsample.

MLE refits (ddof = 0) of N(0, I_d), d in {1, 10, 100}, M in {10, 100, 1000}, 100 generations; metrics
tr Sigma_k / tr Sigma_0 and ||mu_k - mu_0||^2. Replace collapses (trace -> 0, mean error -> tr Sigma_0);
accumulate plateaus (trace -> sin(pi/sqrt M)/(pi/sqrt M), mean error <= pi^2/6 tr Sigma_0/M);
accumulate-subsample plateaus above accumulate (simulation only: no closed form).
replace and accumulate run on the exact sufficient-statistic path; accumulate-subsample needs the points.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "kazdan-gaussian"
DIMS = (1, 10, 100)
SIZES = (10, 100, 1000)
POLICIES = ("replace", "accumulate", "accumulate-subsample")
COLORS = {10: "#d62728", 100: "#1f77b4", 1000: "#2ca02c"}
STYLES = {"replace": "-", "accumulate": "--", "accumulate-subsample": ":"}
METRICS = ("trace_ratio", "mean_error_sq")


def chains_for(dim: int, policy: str, samples: int, mode: str) -> int:
    """Chains per cell: the sample-level subsample path at d = 100, M = 1000 is the costly one."""
    quick = mode == "quick"
    if mode == "smoke":
        return 32
    if policy == "accumulate-subsample":
        cost = dim * samples
        if quick:
            return 16 if cost >= 10_000 else (64 if samples >= 1000 else 256)
        return 200 if cost >= 10_000 else 2000
    return {1: 4000, 10: 1000, 100: 100}[dim] if quick else {1: 20_000, 10: 10_000, 100: 2000}[dim]


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full", "quick" (fewer chains) or "smoke" (d in {1, 10}, M in {10, 100}, 10 generations)."""
    dims, sizes = ((1, 10), (10, 100)) if mode == "smoke" else (DIMS, SIZES)
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

    fig, axes = plt.subplots(2, len(dims), figsize=(14, 8), sharex=True)
    for col, dim in enumerate(dims):
        for (d, policy, m), summary in summaries.items():
            if d != dim:
                continue
            label = f"{policy}, M={m}"
            plot_metric(
                axes[0, col],
                summary,
                "trace_ratio",
                positive=True,
                label=label,
                color=COLORS[m],
                linestyle=STYLES[policy],
            )
            plot_metric(
                axes[1, col],
                summary,
                "mean_error_sq",
                positive=True,
                label=label,
                color=COLORS[m],
                linestyle=STYLES[policy],
            )
        style_axes(axes[0, col], title=f"d = {dim}", ylabel=r"tr $\Sigma_k$ / tr $\Sigma_0$", logy=True)
        axes[0, col].set_ylim(1e-4, 3)
        style_axes(axes[1, col], ylabel=r"$\|\mu_k-\mu_0\|^2$", logy=True)
    axes[0, 0].legend(fontsize=7, ncol=1)
    title = "Multivariate Gaussian, MLE refits: replace (solid) vs accumulate (dashed) vs accumulate-subsample (dotted)"
    paths = finish_figure(fig, title, out_dir, NAME)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(NAME, "Kazdan et al. 2024: multivariate Gaussian, replace vs accumulate vs subsample", run)
