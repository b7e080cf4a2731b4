"""He, Xu & Cheng 2025 ("Golden Ratio Weighting Prevents Model Collapse"): weight the real data.

Their claim: when each generation trains on r fresh real points and M - r synthetic points from the
previous model, giving the real points the share w of the total weight bounds the error, and the best
share solves w^2 + k w - k = 0 with k = r/(M - r): the inverse golden ratio 0.618 when the counts are
equal (their stationary analysis of a Gaussian mean with a known variance).

Simulated: 1-D Gaussian chains (mean and variance refitted, unbiased variance), M = 100 points per
generation of which r = round(alpha M) are real, replace, 60 generations, real points weighing w M / r
and synthetic ones (1 - w) M / (M - r) (`--real-weight w`), on the exact sufficient-statistic path (each
part's drawn statistics weighed, then merged). Metric `mean_error_sq` = (mu_k - mu_0)^2.

(a) The error at generation 60 against w for alpha in {0.25, 0.5, 0.75}: chain means with 95% bars,
the exact finite-M theory (thin black; theory.gaussian.first_moments, our derivation: the weighted
recursion of the mean error and the fitted variance), and the paper's known-variance stationary limit
(grey dash-dot, a limit: it ignores the refitted variance). Vertical lines: the paper's optimum w*;
open circles: equal weights (w = r/M, the unweighted mixture); dotted horizontal lines: the real-only
estimator (w = 1, error sigma^2/r).
(b) For alpha = 0.5: the error over generations at w* = 0.618, at equal weights and at w = 0.2, against
the exact theory; every curve of (a) and (b) is checked against the exact theory in the report.
(c) Weighted OLS (regression setting, fresh isotropic design, d = 5, alpha = 0.5, sigma^2 = 1): the
stationary excess risk, scaled by M / (sigma^2 d), against w for M = 40 and 400, beside the paper's
large-M statement (their unified expression, theory.regression.weighted_ols_limit, a limit): no
finite-M closed form is known, so these points are simulation only; the gap closes as d / M.
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

NAME = "he-golden-ratio"
SAMPLES = 100
DDOF = 1
FRACTIONS = (0.25, 0.5, 0.75)
COLORS = {0.25: "#1f77b4", 0.5: "#d62728", 0.75: "#2ca02c"}
METRICS = ("mean_error_sq",)
PANEL_B = {"w* = 0.618": None, "equal weights (w = 0.5)": 0.5, "w = 0.2": 0.2}
PANEL_B_COLORS = ("#d62728", "#7f7f7f", "#9467bd")
OLS_DIM = 5
OLS_SAMPLES = (40, 400)  # weighted OLS (panel c): no finite-M theory; the gap to the limit closes as d / M


def _weights(alpha: float, mode: str) -> list[float]:
    """The w grid of one alpha: 0.1 .. 0.9 (fewer in smoke and quick), the optimum and equal weights."""
    real = round(alpha * SAMPLES)
    grid = {"smoke": [0.2, 0.618, 0.8], "quick": [0.1, 0.3, 0.5, 0.7, 0.9]}.get(mode) or [
        round(0.1 * i, 1) for i in range(1, 10)
    ]
    extra = [float(theory.gaussian.optimal_real_weight(real, SAMPLES - real)), real / SAMPLES]
    return sorted(set(grid) | {round(w, 6) for w in extra})


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (20 000 chains), "quick" (1000), "smoke" (64 chains, 8 generations, 3 weights) or
    "paper" (the paper code's T = 200 generations at n = M = 100; 10^5 chains)."""
    generations = {"smoke": 8, "paper": 200}.get(mode, 60)
    chains = {"smoke": 64, "quick": 1000, "full": 20_000, "paper": 100_000}[mode]
    base = dict(dim=1, samples=SAMPLES, ddof=DDOF, policy="replace", generations=generations, chains=chains)
    base |= dict(seed=0, metrics=METRICS, method="sufficient")  # each part's drawn statistics, weighed
    cells = {}
    for alpha in FRACTIONS:
        for w in _weights(alpha, mode):
            config = dict(base, real_fraction=alpha, real_weight=w)
            cells[(alpha, w)] = ("gaussian", config, f"{out_dir}/alpha{alpha}-w{w:.3f}")
    regression = dict(
        dim=OLS_DIM, design="fresh", policy="replace", real_fraction=0.5, generations=generations, chains=chains // 4
    )
    regression |= dict(seed=0, metrics="excess_risk", method="sufficient")  # weighed Wishart statistics
    for samples in OLS_SAMPLES:
        for w in _weights(0.5, mode):
            config = dict(regression, samples=samples, real_weight=w)
            cells[("ols", samples, w)] = ("regression", config, f"{out_dir}/ols-M{samples}-w{w:.3f}")
    summaries = simulate_cells(cells, progress=progress)
    ols = {key: summaries.pop(key) for key in list(summaries) if key[0] == "ols"}
    curves = []
    for (alpha, w), summary in summaries.items():
        curves += curves_from_summary(NAME, f"alpha={alpha} w={w:.3f} M={SAMPLES}", summary, METRICS)

    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    ax = axes[0]
    fine = np.linspace(0.02, 1.0, 197)
    for alpha in FRACTIONS:
        real = round(alpha * SAMPLES)
        color = COLORS[alpha]
        ws = [w for (a, w) in summaries if a == alpha]
        plot_final_means(ax, [summaries[(alpha, w)] for w in ws], ws, "mean_error_sq", color=color)
        exact = [
            theory.gaussian.first_moments(
                samples=SAMPLES,
                ddof=DDOF,
                policy="replace",
                num_generations=generations,
                real_fraction=alpha,
                real_weight=w,
            )[0][-1]
            for w in fine
        ]
        ax.plot(fine, exact, color="black", lw=0.8)
        limit = theory.gaussian.weighted_mean_error_limit(fine, real=real, synthetic=SAMPLES - real)
        ax.plot(fine, limit, color="0.55", lw=1.0, linestyle="-.")
        best = float(theory.gaussian.optimal_real_weight(real, SAMPLES - real))
        ax.axvline(best, color=color, lw=0.8, linestyle="--")
        equal = real / SAMPLES
        equal_error = summaries[(alpha, round(equal, 6))]["metrics"]["mean_error_sq"]["mean"][-1]
        ax.plot([equal], [equal_error], "o", mfc="none", mec=color, ms=9, mew=1.3)
        ax.axhline(1.0 / real, color=color, lw=0.8, linestyle=":")
        ax.plot(
            [],
            [],
            "s-",
            color=color,
            ms=3.5,
            label=f"alpha = {alpha} (r = {real}, k = {real / (SAMPLES - real):.2g}), w* = {best:.3f}",
        )
    ax.plot([], [], color="black", lw=0.8, label=f"exact theory at generation {generations} (ours)")
    ax.plot([], [], color="0.55", lw=1.0, linestyle="-.", label="limit, variance known (He et al.)")
    ax.plot([], [], "o", mfc="none", mec="0.3", ms=9, label="equal weights w = r/M (unweighted mixture)")
    ax.plot([], [], color="0.3", lw=0.8, linestyle=":", label=r"real data only (w = 1): $\sigma^2/r$")
    ax.plot([], [], color="0.3", lw=0.8, linestyle="--", label=r"optimum $w^*$: $w^2 + kw - k = 0$")
    style_axes(
        ax,
        title=f"(a) mean error at generation {generations} against the real share w",
        xlabel="w: share of each batch's weight on its real points",
        ylabel=r"$E(\mu_k - \mu_0)^2$ (with $\sigma_0^2 = 1$)",
        logy=True,
    )
    ax.set_xlim(0, 1.02)
    ax.legend(fontsize=7, loc="upper right")

    ax = axes[1]
    real = round(0.5 * SAMPLES)
    best = round(float(theory.gaussian.optimal_real_weight(real, SAMPLES - real)), 6)
    for (label, w), color in zip(PANEL_B.items(), PANEL_B_COLORS):
        w = best if w is None else w
        if (0.5, w) not in summaries:
            continue
        summary = summaries[(0.5, w)]
        label = f"{label} ({summary['num_chains']} chains)"
        plot_metric(ax, summary, "mean_error_sq", label=label, color=color, bands=False)
    ax.axhline(1.0 / real, color="0.3", lw=0.8, linestyle=":", label=r"real data only: $\sigma^2/r$")
    style_axes(
        ax,
        title="(b) alpha = 0.5 over generations: mean +- 1.96 SE, thin black: exact theory",
        ylabel=r"$E(\mu_k - \mu_0)^2$",
    )
    ax.set_xlim(0, generations)
    ax.set_ylim(0, None)
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[2]
    last = max(1, generations // 6)  # stationary: the mean over the last generations (relaxation (1 - w)^2 each)
    for samples, color in zip(OLS_SAMPLES, ("#9467bd", "#2ca02c")):
        ws = sorted(w for (_, m, w) in ols if m == samples)
        scale = samples / OLS_DIM  # M E / (sigma^2 d): free of M in the limit
        means = [scale * np.mean(ols[("ols", samples, w)]["metrics"]["excess_risk"]["mean"][-last:]) for w in ws]
        bars = [scale * np.max(ols[("ols", samples, w)]["metrics"]["excess_risk"]["se"][-last:]) for w in ws]
        chains_used = ols[("ols", samples, ws[0])]["num_chains"]
        ax.errorbar(
            ws,
            means,
            yerr=1.96 * np.asarray(bars),
            fmt="s",
            ms=3.5,
            color=color,
            capsize=2,
            lw=1,
            label=f"simulated, M = {samples} ({chains_used} chains; no exact theory)",
        )
    half = OLS_SAMPLES[-1] // 2  # M E / (sigma^2 d) of the limit is the same for every even M with r = M / 2
    shown = fine[fine >= 0.08]
    limit = theory.regression.weighted_ols_limit(shown, real=half, synthetic=half, dim=OLS_DIM) * 2 * half / OLS_DIM
    ax.plot(shown, limit, color="0.55", lw=1.0, linestyle="-.", label="large-M limit (He et al.'s unified expression)")
    best = float(theory.gaussian.optimal_real_weight(1, 1))
    ax.axvline(best, color="0.3", lw=0.8, linestyle="--", label=f"w* = {best:.3f}")
    style_axes(
        ax,
        title=f"(c) weighted OLS, fresh design, d = {OLS_DIM}, alpha = 0.5: stationary risk",
        xlabel="w: share of each batch's weight on its real points",
        ylabel=r"$M\,E\,\|\hat w_k - w^*\|^2 / (\sigma^2 d)$, last generations",
    )
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, None)
    ax.legend(fontsize=7, loc="upper right")
    title = f"Golden-ratio weighting of real data: 1-D Gaussian, M = {SAMPLES}, replace, mean and variance refitted"
    paths = finish_figure(fig, title, out_dir, NAME)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(NAME, "He, Xu & Cheng 2025: weighting real data; optimum w* = 0.618 for equal counts", run)
