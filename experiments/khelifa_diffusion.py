"""Khelifa, Turner & Venkataramanan 2026 (arXiv 2602.16601): diffusion models with an exact score.

Their claim: a diffusion model whose score is exact for its training set, stopped early at time t0
(variance-exploding), samples its training points convolved with N(0, t0 I); retrained on its own samples
with a fresh real fraction alpha per generation, its training data converge to a mixture of the real data
smoothed by m t0 with weights alpha (1 - alpha)^m, m = 0, 1, 2, ..., so without real data the variance
grows by t0 per generation and with alpha > 0 it settles at sigma^2 + t0 / alpha (M -> infinity).

Simulated: the `diffusion` setting (a KDE of bandwidth sqrt(t0)), real law N(0, I_2), M = 200 points per
generation of which r = round(alpha M) are fresh real ones, replace, 40 generations.

(a) The model's variance tr C_k / d over generations at t0 = 0.1 for alpha in {0, 0.1, 0.3, 0.5}: chain
means with bands, the exact finite-M recursion (thin solid black; theory.diffusion.exact_moments, our
derivation) and the paper's M -> infinity limit sigma^2 + t0 (1 - (1 - alpha)^k) / alpha (grey dash-dot).
(b) The held-out NLL of 200 fresh real points over generations, same runs (fewer chains): simulation
against the paper's limit, the cross-entropy of N(0, I) against its mixture (grey dash-dot, by
quadrature; a limit: no finite-M theory exists, so it is drawn and not compared).
(c) The variance at generation 40 against t0: exact (thin black) and limit (grey dash-dot).
(d) The held-out NLL at generation 40 against t0 for alpha in {0.1, 0.5}, against the limit.
Every variance and mean-error curve (the mean error is not drawn) is checked against the exact theory in
the report; the NLL curves have no theory ("no theory" in the report).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import theory
from experiments.common import (
    curves_from_summary,
    finish_figure,
    plot_final_means,
    plot_metric,
    simulate_cells,
    style_axes,
)

NAME = "khelifa-diffusion"
SAMPLES = 200
DIM = 2
T0 = 0.1
FRACTIONS = (0.0, 0.1, 0.3, 0.5)
NLL_FRACTIONS = (0.1, 0.5)  # panel (d)
COLORS = {0.0: "#7f7f7f", 0.1: "#1f77b4", 0.3: "#2ca02c", 0.5: "#d62728"}
T0S = (0.01, 0.03, 0.1, 0.3, 1.0)
MOMENTS = ("variance", "mean_error_sq")


def _limit_style(ax, label):
    ax.plot([], [], color="0.5", lw=1.1, linestyle="-.", label=label)


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (5000 chains for the moments, 500 for the NLL), "quick" (2000 and 100, 20
    generations), "smoke" (64 and 8 chains, 4 generations, two t0) or "paper" (full's sizes: papers.md gives
    none for this paper; 2000 NLL chains, full's 500 being set by the CPU budget)."""
    generations = {"full": 40, "quick": 20, "smoke": 4, "paper": 40}[mode]
    chains = {"full": 5000, "quick": 2000, "smoke": 64, "paper": 10_000}[mode]
    nll_chains = {"full": 500, "quick": 100, "smoke": 8, "paper": 2000}[mode]
    test_points = {"full": 200, "quick": 100, "smoke": 20, "paper": 200}[mode]
    t0s = (0.03, T0) if mode == "smoke" else T0S
    base = dict(dim=DIM, samples=SAMPLES, policy="replace", generations=generations, seed=0)
    cells = {}
    for alpha in FRACTIONS:
        for t0 in t0s:
            config = dict(base, real_fraction=alpha, t0=t0, chains=chains, metrics=MOMENTS)
            cells[("moments", alpha, t0)] = ("diffusion", config, f"{out_dir}/moments-alpha{alpha}-t0{t0}")
            if t0 == T0 or alpha in NLL_FRACTIONS:
                nll = dict(base, real_fraction=alpha, t0=t0, chains=nll_chains, test_points=test_points)
                cells[("nll", alpha, t0)] = (
                    "diffusion",
                    dict(nll, metrics=("held_out_nll",)),
                    f"{out_dir}/nll-alpha{alpha}-t0{t0}",
                )
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    for (kind, alpha, t0), summary in summaries.items():
        metrics = MOMENTS if kind == "moments" else ("held_out_nll",)
        curves += curves_from_summary(NAME, f"alpha={alpha} t0={t0} M={SAMPLES}", summary, metrics)

    g = np.arange(generations + 1)
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    ax = axes[0, 0]
    for alpha in FRACTIONS:
        summary = summaries[("moments", alpha, T0)]
        stationary = "" if alpha == 0 else f", limit -> {1 + T0 / alpha:.3g}"
        plot_metric(ax, summary, "variance", label=f"alpha = {alpha}{stationary}", color=COLORS[alpha], bands=False)
        limit = theory.diffusion.variance_limit(real_fraction=alpha, t0=T0, generations=generations)
        ax.plot(g, limit, color="0.5", lw=1.1, linestyle="-.")
    ax.plot([], [], color="black", lw=0.8, label=f"exact, M = {SAMPLES} (ours)")
    _limit_style(ax, r"limit $M\to\infty$: $\sigma^2 + t_0(1-(1-\alpha)^k)/\alpha$ (Khelifa et al.)")
    style_axes(ax, title=f"(a) variance of model k, t0 = {T0} ({chains} chains)", ylabel=r"$E\,\mathrm{tr}\,C_k / d$")
    ax.set_xlim(0, generations)
    ax.legend(fontsize=7.5, loc="upper left")

    ax = axes[0, 1]
    for alpha in FRACTIONS:
        summary = summaries[("nll", alpha, T0)]
        plot_metric(ax, summary, "held_out_nll", label=f"alpha = {alpha}", color=COLORS[alpha], bands=False)
        limit = theory.diffusion.held_out_nll_limit(real_fraction=alpha, t0=T0, dim=DIM, generations=generations)
        ax.plot(g, limit, color="0.5", lw=1.1, linestyle="-.")
    ax.axhline(
        0.5 * DIM * np.log(2 * np.pi * np.e), color="black", lw=0.7, linestyle=":", label="entropy of the real law"
    )
    _limit_style(ax, r"limit $M\to\infty$: cross-entropy of the mixture (not compared)")
    style_axes(
        ax,
        title=f"(b) held-out NLL, t0 = {T0} ({nll_chains} chains, {test_points} test points)",
        ylabel="held-out NLL (nats)",
    )
    ax.set_xlim(0, generations)
    ax.legend(fontsize=7.5, loc="upper left")

    fine = np.geomspace(min(t0s) / 1.5, max(t0s) * 1.5, 60)
    ax = axes[1, 0]
    for alpha in FRACTIONS:
        plot_final_means(ax, [summaries[("moments", alpha, t0)] for t0 in t0s], t0s, "variance", color=COLORS[alpha])
        common = dict(real_fraction=alpha, generations=generations)
        exact = [theory.diffusion.exact_moments(samples=SAMPLES, t0=t, dim=DIM, **common)[0][-1] for t in fine]
        limit = [theory.diffusion.variance_limit(t0=t, **common)[-1] for t in fine]
        ax.plot(fine, exact, color="black", lw=0.8)
        ax.plot(fine, limit, color="0.5", lw=1.1, linestyle="-.")
        ax.plot([], [], "s", color=COLORS[alpha], ms=3.5, label=f"alpha = {alpha}")
    ax.plot([], [], color="black", lw=0.8, label=f"exact at generation {generations} (ours)")
    _limit_style(ax, r"limit $M\to\infty$ (Khelifa et al.)")
    style_axes(
        ax,
        title=f"(c) variance at generation {generations} against t0",
        xlabel="t0 (early-stopping time)",
        ylabel=r"$E\,\mathrm{tr}\,C_k / d$",
        logx=True,
        logy=True,
    )
    ax.legend(fontsize=7.5, loc="upper left")

    ax = axes[1, 1]
    for alpha in NLL_FRACTIONS:
        plot_final_means(ax, [summaries[("nll", alpha, t0)] for t0 in t0s], t0s, "held_out_nll", color=COLORS[alpha])
        limit = [
            theory.diffusion.held_out_nll_limit(real_fraction=alpha, t0=t, dim=DIM, generations=generations)[-1]
            for t in fine
        ]
        ax.plot(fine, limit, color="0.5", lw=1.1, linestyle="-.")
        ax.plot([], [], "s", color=COLORS[alpha], ms=3.5, label=f"alpha = {alpha}")
    ax.axhline(
        0.5 * DIM * np.log(2 * np.pi * np.e), color="black", lw=0.7, linestyle=":", label="entropy of the real law"
    )
    _limit_style(ax, r"limit $M\to\infty$ (not compared)")
    style_axes(
        ax,
        title=f"(d) held-out NLL at generation {generations} against t0",
        xlabel="t0 (early-stopping time)",
        ylabel="held-out NLL (nats)",
        logx=True,
    )
    ax.legend(fontsize=7.5, loc="upper right")  # the small-t0 points (finite-M overfitting) sit upper left
    title = (
        f"Diffusion with an exact score stopped at t0 (a KDE of bandwidth sqrt(t0)): N(0, I_{DIM}), "
        f"M = {SAMPLES}, fresh real fraction alpha, replace"
    )
    paths = finish_figure(fig, title, out_dir, NAME)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    NAME,
    "Khelifa et al. 2026: exact-score diffusion; variance grows by t0 per generation, settles at sigma^2 + t0/alpha",
    run,
)
