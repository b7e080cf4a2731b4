"""Dey & Donoho 2024 ("Universality of the pi^2/6 pathway in avoiding model collapse", arXiv 2410.22812)
beyond OLS: logistic regression refitted on its own labels on a fixed design.

Their claim, for a broad class of M-estimators in the large-sample limit: discarding old data (replace)
makes the risk after k generations k times the one-fit risk; augmenting (accumulate) keeps it below
pi^2/6 ~ 1.645 times it (sum_{j<=k} 1/j^2).

Simulated: the `logistic` setting, d = 10, ||beta*|| = 1 (uniform direction per chain), a fixed design of
T in {200, 400, 1600} rows per chain (T/d = 20, 40, 160), replace and accumulate, 30 generations, MLE by
Newton to a tolerance. Metrics: ||beta_k - beta*||^2 and the excess log-loss (exact quadrature over the
population), each plotted relative to the chain mean at generation 1 (the fit on real labels), so the
paper's ratios k and sum 1/j^2 are the reference lines: grey dash-dot, a large-M limit, not a finite-T
theory (none exists for the logistic MLE). (e) The fraction of fits flagged `separated` (no MLE). (f) The
one-fit errors against their asymptotic values tr(I^-1)/T and d/(2T) (theory.logistic): the relative gap
against d/T, which shrinks like 1/T. The report compares each raw curve with theory.logistic's asymptotic
prediction (one-fit value times k or sum 1/j^2): "deviates (asymptotic)" is expected where T/d is small.

What it shows (full mode): accumulate follows sum 1/j^2 within a few percent and plateaus near pi^2/6 with
no separated fit; replace starts on the line k and then grows faster (the MLE's overestimate of ||beta||
compounds from generation to generation) until the chains' data become separable: 92 % of the chains by
generation 30 at T = 200, 8.5 % at T = 400, none at T = 1600, whose curve stays nearest to k.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import theory
from experiments.common import curves_from_summary, finish_figure, simulate_cells, style_axes

NAME = "dey-donoho-logistic"
DIM = 10
SIGNAL = 1.0
SAMPLES = (200, 400, 1600)
# paper mode: their logistic simulation (logistic_discard_synthetic.R: d = 5, n = 10^4, 50 iterations,
# 10^4 repetitions), beside full's T/d = 20, 40, 160 at d = 5
PAPER = dict(dim=5, samples=(100, 200, 800, 10_000), generations=50, chains=10_000)
POLICIES = ("replace", "accumulate")
METRICS = ("param_error_sq", "excess_log_loss")
SHADES = {20: "#fcae91", 40: "#fb6a4a", 160: "#a50f15", 2000: "#67000d"}  # by T/d
BLUES = {20: "#9ecae1", 40: "#4292c6", 160: "#08306b", 2000: "#041b3d"}
LIMIT = dict(color="0.5", lw=1.2, linestyle="-.")
TITLES = {"param_error_sq": r"$\|\beta_k-\beta^*\|^2$", "excess_log_loss": "excess log-loss"}


def _plot_ratio(ax, summary: dict, metric: str, *, label: str, color) -> None:
    """The chain mean relative to its generation-1 mean, with its 95% band (+- 1.96 SE, scaled alike)
    drawn only where it is resolved (1.96 SE < mean): once separated chains dominate a replace curve, its
    mean is off the chart and its band would be a stripe down to zero."""
    entry = summary["metrics"][metric]
    mean = np.array([np.nan if v is None else v for v in entry["mean"]], float)
    se = np.array([np.nan if v is None else v for v in entry["se"]], float)
    g = np.arange(len(mean))
    ratio, half = mean / mean[1], 1.96 * se / mean[1]
    resolved = half < ratio
    ax.plot(g[1:], ratio[1:], color=color, lw=1.4, label=label)
    ax.fill_between(g[1:], (ratio - half)[1:], (ratio + half)[1:], where=resolved[1:], color=color, alpha=0.35, lw=0)


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (1000 chains, 30 generations), "quick" (200 chains, 20 generations), "smoke" (16
    chains, 4 generations, T = 200 only) or "paper" (`PAPER`: d = 5, T in {100, 200, 800, 10^4}, 50
    generations, 10^4 chains)."""
    generations = {"full": 30, "quick": 20, "smoke": 4, "paper": PAPER["generations"]}[mode]
    chains = {"full": 1000, "quick": 200, "smoke": 16, "paper": PAPER["chains"]}[mode]
    samples = {"smoke": SAMPLES[:1], "paper": PAPER["samples"]}.get(mode, SAMPLES)
    dim = PAPER["dim"] if mode == "paper" else DIM
    cells = {}
    for policy in POLICIES:
        for t in samples:
            config = dict(
                dim=dim,
                samples=t,
                signal=SIGNAL,
                design="fixed",
                policy=policy,
                generations=generations,
                chains=chains,
                seed=0,
            )
            cells[(policy, t)] = ("logistic", config, f"{out_dir}/{policy}-T{t}")
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    for (policy, t), summary in summaries.items():
        curves += curves_from_summary(NAME, f"{policy} d={dim} T={t}", summary, METRICS)

    g = np.arange(generations + 1)
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for row, metric in enumerate(METRICS):
        for (policy, t), summary in summaries.items():
            ax = axes[row, 0 if policy == "replace" else 1]
            colors = SHADES if policy == "replace" else BLUES
            _plot_ratio(ax, summary, metric, label=f"T = {t} (T/d = {t // dim})", color=colors[t // dim])
        axes[row, 0].plot(g[1:], g[1:], **LIMIT, label="large-M limit: k")
        partial = theory.logistic.pathway_ratio("accumulate", generations)
        axes[row, 1].plot(g[1:], partial[1:], **LIMIT, label=r"large-M limit: $\sum_{j\leq k} 1/j^2$")
        axes[row, 1].axhline(math.pi**2 / 6, color="0.25", lw=0.8, linestyle=":")
        axes[row, 1].text(generations, math.pi**2 / 6, r"$\pi^2/6$ ", ha="right", va="bottom", fontsize=8)
        style_axes(
            axes[row, 0],
            title=f"replace (discard): {TITLES[metric]} / its generation-1 mean",
            ylabel="risk / one-fit risk",
        )
        axes[row, 0].set_ylim(0, 2 * generations)
        style_axes(
            axes[row, 1],
            title=f"accumulate (augment): {TITLES[metric]} / its generation-1 mean",
            ylabel="risk / one-fit risk",
        )
        axes[row, 1].set_ylim(0.9, 1.95)
        for ax in axes[row, :2]:  # the lower right is empty: replace rises above k, accumulate above 1.3
            ax.set_xlim(1, generations)
            ax.legend(fontsize=8, loc="lower right")

    ax = axes[0, 2]
    for (policy, t), summary in summaries.items():
        separated = np.asarray(summary["metrics"]["separated"]["mean"], float)
        colors = SHADES if policy == "replace" else BLUES
        style = "-" if policy == "replace" else "--"
        ax.plot(g, separated, color=colors[t // dim], linestyle=style, lw=1.4, label=f"{policy}, T = {t}")
    style_axes(ax, title="fraction of fits flagged separated (no MLE)", ylabel="fraction of chains")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(0, generations)
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[1, 2]  # generation 1 is the fit on real labels: the same in both policies' runs (same keys)
    for marker, color, offset, metric in zip(("o", "s"), (SHADES[160], BLUES[160]), (0.96, 1.04), METRICS):
        gaps, bars = [], []
        for t in samples:
            entry = summaries[("accumulate", t)]["metrics"][metric]
            one = theory.logistic.one_fit(metric, dim=dim, samples=t, signal=SIGNAL)
            gaps.append(entry["mean"][1] / one - 1)
            bars.append(1.96 * entry["se"][1] / one)
        x = np.array([dim / t for t in samples]) * offset
        ax.errorbar(x, gaps, yerr=bars, fmt=marker, ms=4, capsize=2, lw=1, color=color, label=TITLES[metric])
    ax.axhline(0, **LIMIT, label="large-M limit")
    style_axes(
        ax,
        title="generation 1 against its large-M value\n" + r"($\mathrm{tr}(I^{-1})/T$ and $d/(2T)$)",
        xlabel="d / T (log scale)",
        ylabel="simulated / asymptotic - 1",
        logx=True,
    )
    ax.set_xticks([dim / t for t in samples], [f"1/{t // dim}" for t in samples])
    ax.minorticks_off()
    ax.legend(fontsize=8, loc="upper left")
    title = (
        f"The $\\pi^2/6$ pathway beyond OLS: logistic regression (MLE), d = {dim}, $\\|\\beta^*\\|$ = {SIGNAL:g}, "
        f"fixed design, {summaries[(POLICIES[0], samples[0])]['num_chains']} chains per curve; "
        "grey dash-dot: large-M limits (no finite-T theory)"
    )
    paths = finish_figure(fig, title, out_dir, NAME)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    NAME,
    "Dey & Donoho 2024 beyond OLS: logistic MLE, risk ratio -> pi^2/6 (accumulate) vs k (replace)",
    run,
)
