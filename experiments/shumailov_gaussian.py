"""Shumailov et al. (Nature 2024), single Gaussian: the variance collapses while W2 grows.

Unbiased refits (ddof = 1) of N(0, 1) under replace, M in {100, 500, 1000, 10000}, 1000 generations:
sigma_k^2 -> 0 almost surely (its typical value falls like exp(k * rate)) although E sigma_k^2 = 1
(a martingale), and E W2^2 grows linearly in k. A super-linearly growing sample size M_k = M k^a
(a > 1) keeps E W2^2 bounded (their condition); a = 1 does not. Runs on the exact sufficient-statistic
path, so M = 10^4 costs what M = 100 does.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "shumailov-gaussian"
SIZES = (100, 500, 1000, 10000)
GROWTH = (0.0, 1.0, 2.0)
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
METRICS = ("trace_ratio", "log_det_ratio", "w2_sq", "mean_error_sq")


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (10^4 chains), "quick" (2000 chains), "smoke" (a few seconds, for tests) or "paper"
    (the paper's M grid and 1000 generations, as full; 10^4 chains)."""
    # paper: one chain per M in their notebook; paper mode keeps full's 10^4
    chains = {"full": 10_000, "quick": 2000, "smoke": 64, "paper": 10_000}[mode]
    generations = 50 if mode == "smoke" else 1000
    base = dict(
        dim=1,
        ddof=1,
        policy="replace",
        generations=generations,
        chains=chains,
        method="sufficient",
        seed=0,
        metrics=METRICS,
    )
    cells = {("size", m): ("gaussian", {**base, "samples": m}, f"{out_dir}/M{m}") for m in SIZES}
    cells |= {
        ("growth", a): ("gaussian", {**base, "samples": 100, "sample_growth": a}, f"{out_dir}/growth{a:g}")
        for a in GROWTH
    }
    summaries = simulate_cells(cells, progress=progress)
    by_size = {m: summaries["size", m] for m in SIZES}
    by_growth = {a: summaries["growth", a] for a in GROWTH}
    curves = []
    for m in SIZES:
        curves += curves_from_summary(NAME, f"M={m}", by_size[m], METRICS)
    for a in GROWTH:
        curves += curves_from_summary(NAME, f"M_k=100*k^{a:g}", by_growth[a], ("w2_sq", "mean_error_sq", "trace_ratio"))

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for (m, summary), color in zip(by_size.items(), COLORS):
        plot_metric(axes[0, 0], summary, "trace_ratio", positive=True, label=f"M={m}", color=color)
        plot_metric(axes[0, 1], summary, "log_det_ratio", label=f"M={m}", color=color)
        plot_metric(axes[1, 0], summary, "w2_sq", positive=True, label=f"M={m}", color=color)
        tq = summary["metrics"]["log_det_ratio"]["theory_quantiles"]
        g = np.asarray(summary["generations"])
        for level in ("0.05", "0.95"):
            axes[0, 1].plot(g, np.array(tq[level], float), color=color, lw=0.6, linestyle="-.")
    for (a, summary), color in zip(by_growth.items(), COLORS):
        plot_metric(axes[1, 1], summary, "w2_sq", positive=True, label=f"M_k = 100 k^{a:g}", color=color)
    style_axes(
        axes[0, 0],
        title=r"variance $\sigma_k^2/\sigma_0^2$: mean stays 1, typical value collapses",
        ylabel=r"$\sigma_k^2/\sigma_0^2$",
        logy=True,
    )
    axes[0, 0].set_ylim(1e-5, 1e2)
    style_axes(
        axes[0, 1],
        title=r"$\log\sigma_k^2/\sigma_0^2$ (exact mean; dash-dot: 5/95% theory)",
        ylabel=r"$\log\sigma_k^2/\sigma_0^2$",
    )
    style_axes(axes[1, 0], title=r"$W_2^2$ to the original grows linearly (replace)", ylabel=r"$W_2^2$", logy=True)
    style_axes(
        axes[1, 1],
        title=r"growing sample size $M_k = 100\,k^a$ ($a>1$ keeps $W_2$ bounded)",
        ylabel=r"$W_2^2$",
        logy=True,
    )
    for ax in axes.flat:
        ax.legend(fontsize=8)
    paths = finish_figure(fig, f"Single Gaussian, unbiased refits, replace ({chains} chains per curve)", out_dir, NAME)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    NAME, "Shumailov et al. 2024: single Gaussian, variance collapse and W2 growth; growing M_k", run
)
