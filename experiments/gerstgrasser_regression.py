"""Gerstgrasser et al. 2024 ("Is Model Collapse Inevitable?"), linear regression: replace vs accumulate.

Their figure: OLS refits of a fixed design X (T x d, reused every iteration, isotropic Gaussian rows),
d = 32, T in {100, 316, 1000}, label noise sigma^2, 50 iterations; test error against noiseless targets
on a log axis. Replace grows linearly, E_n = n sigma^2 d/(T - d - 1); accumulate stays bounded,
E_n = sigma^2 d/(T - d - 1) sum_{i<=n} 1/i^2 <= (pi^2/6) sigma^2 d/(T - d - 1). Iteration 1 is the fit on
real data. At d = 32, T = 100, sigma^2 = 1: replace 23.88 at n = 50, accumulate 0.776 (limit 0.786).

Simulated: the chains (metric `excess_risk` = ||w_n - w*||^2), on the exact sufficient-statistic path
(the fixed design enters through a fixed Wishart root of X^T X, so the cost does not grow with T), for
sigma^2 in {0.1, 1, 10} (the paper also shows 0.01 and 100; the curves only scale with sigma^2).
Theory (thin solid black, exact, theory.regression): the two closed forms above; thin dotted horizontal
lines mark the accumulate limit (pi^2/6) sigma^2 d/(T - d - 1). Every cell uses seed 0, so the chains
are common random numbers across sigma^2 (the OLS error is exactly proportional to sigma^2 chain by
chain) and across T within a policy.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "gerstgrasser-regression"
DIM = 32
SIZES = (100, 316, 1000)
NOISES = (0.1, 1.0, 10.0)
PAPER_NOISES = (0.01, 0.1, 1.0, 10.0, 100.0)  # the paper's sigma^2 grid (paper mode)
POLICIES = ("replace", "accumulate")
COLORS = {100: "#d62728", 316: "#1f77b4", 1000: "#2ca02c"}
STYLES = {"replace": "-", "accumulate": "--"}
METRICS = ("excess_risk",)


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (10^4 chains), "quick" (1000 replace, 500 accumulate chains), "smoke" (T = 100,
    sigma^2 in {0.1, 1}, 5 generations) or "paper" (the paper's sigma^2 in {0.01, 0.1, 1, 10, 100}, d = 32,
    T in {100, 316, 1000}, 50 iterations; 10^4 chains)."""
    # paper: no seed count stated; paper mode keeps full's 10^4 chains
    chains = {"full": 10_000, "quick": 1000, "smoke": 64, "paper": 10_000}[mode]
    # measured on a 2-core CPU: an accumulate chain costs about 5x a replace chain (d = 32, 50 generations)
    accumulate_chains = chains // 2 if mode == "quick" else chains
    generations = 5 if mode == "smoke" else 50
    sizes, noises = {"smoke": ((100,), (0.1, 1.0)), "paper": (SIZES, PAPER_NOISES)}.get(mode, (SIZES, NOISES))
    base = dict(
        dim=DIM,
        design="fixed",
        ridge=0.0,
        method="sufficient",
        generations=generations,
        chains=chains,
        seed=0,
        metrics=METRICS,
    )
    cells = {}
    for policy in POLICIES:
        for noise in noises:
            for t in sizes:
                config = {
                    **base,
                    "policy": policy,
                    "samples": t,
                    "noise_var": noise,
                    "chains": accumulate_chains if policy == "accumulate" else chains,
                }
                cells[policy, noise, t] = ("regression", config, f"{out_dir}/{policy}-T{t}-s{noise:g}")
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    for (policy, noise, t), summary in summaries.items():
        curves += curves_from_summary(NAME, f"{policy} T={t} sigma2={noise:g}", summary, METRICS)

    fig, axes = plt.subplots(1, len(noises), figsize=(4.6 * len(noises), 4.4), sharex=True, squeeze=False)
    for col, noise in enumerate(noises):
        ax = axes[0, col]
        for (policy, s2, t), summary in summaries.items():
            if s2 != noise:
                continue
            plot_metric(
                ax,
                summary,
                "excess_risk",
                positive=True,
                label=f"{policy}, T={t}",
                color=COLORS[t],
                linestyle=STYLES[policy],
            )
        for t in sizes:
            limit = math.pi**2 / 6 * noise * DIM / (t - DIM - 1)
            ax.axhline(limit, color=COLORS[t], lw=0.7, linestyle=":")
        style_axes(
            ax,
            title=rf"$\sigma^2$ = {noise:g}",
            ylabel=r"test error $\|\hat w_n - w^*\|^2$" if col == 0 else None,
            logy=True,
        )
        ax.set_xlabel("model-fitting iteration n")
        ax.set_xlim(1, generations)  # iteration 0 is the truth itself (error 0, off a log axis)
    handles, labels = axes[0, 0].get_legend_handles_labels()  # one legend below the panels: none covers a curve
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, bbox_to_anchor=(0.5, 0.0))
    title = (
        f"Linear regression, d = {DIM}, fixed design, OLS: replace (solid) grows linearly, accumulate (dashed) "
        rf"stays below $\pi^2/6$ x one fit (dotted); {chains} (replace), {accumulate_chains} (accumulate) chains"
    )
    paths = finish_figure(fig, title, out_dir, NAME, bottom=0.08)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(NAME, "Gerstgrasser et al. 2024: regression, replace (linear) vs accumulate (bounded)", run)
