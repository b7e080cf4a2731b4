"""Dey & Donoho 2024 ("Universality of the pi^2/6 Pathway"): the risk ratio to one real-data fit.

Their claim: under the augment (accumulate) workflow the risk after k generations is at most pi^2/6 ~
1.645 times the risk of the fit on real data alone (sum_{i<=k} 1/i^2, an asymptotic relative efficiency
>= 6/pi^2), under discard (replace) it grows linearly (ratio k), and under the fixed-budget subsample
workflow it plateaus higher; their repository's Gaussian-process figure shows it at about 2.9 by
generation 100, the limit being pi^2/2 - 2 ~ 2.93 (theory.md A.4).

Simulated: OLS linear regression with a fixed design (d = 4, T = 400, sigma^2 = 1, 100 generations),
replace and accumulate on the exact sufficient-statistic path, accumulate-subsample on the sample path;
metric `excess_risk` = ||w_k - w*||^2, plotted divided by the one-fit error sigma^2 d/(T - d - 1).
Theory (thin solid black, theory.regression): exact for replace (ratio k) and accumulate (ratio
sum_{i<=k} 1/i^2, for every T, not only asymptotically); for accumulate-subsample the Gaussian-process
(large-T) limit V_k = 1 + sum_{j=2}^k (2 - 1/(j-1))/j^2 + (1 - 1/k), kind "asymptotic" (at T = 400 the
chain is within a few percent of it). Horizontal lines: pi^2/6 and pi^2/2 - 2. The report compares the
raw metric with the raw theory, so the ratio only rescales both.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "dey-donoho-pathway"
DIM = 4
SAMPLES = 400
NOISE = 1.0
POLICIES = ("replace", "accumulate", "accumulate-subsample")
COLORS = {"replace": "#d62728", "accumulate": "#1f77b4", "accumulate-subsample": "#2ca02c"}
LABELS = {
    "replace": "replace (discard)",
    "accumulate": "accumulate (augment)",
    "accumulate-subsample": "accumulate-subsample",
}
METRICS = ("excess_risk",)
ONE_FIT = NOISE * DIM / (SAMPLES - DIM - 1)


def chains_for(policy: str, mode: str) -> int:
    if mode == "smoke":
        return 64
    if mode == "paper":  # the 10^6 Monte-Carlo paths of their Gaussian-process simulation, every workflow
        return 1_000_000
    if policy == "accumulate-subsample":  # sample path: a pool of up to G T rows per chain
        return {"quick": 1000, "full": 10_000}[mode]
    return {"quick": 4000, "full": 100_000}[mode]


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (10^5 chains, 10^4 for subsample), "quick" (4000 / 1000), "smoke" (10 generations) or
    "paper" (their G = 100 generations and 10^6 paths, for every workflow)."""
    generations = 10 if mode == "smoke" else 100
    cells = {}
    for policy in POLICIES:
        config = dict(
            dim=DIM,
            samples=SAMPLES,
            noise_var=NOISE,
            ridge=0.0,
            design="fixed",
            policy=policy,
            generations=generations,
            chains=chains_for(policy, mode),
            seed=0,
            metrics=METRICS,
            method="samples" if policy == "accumulate-subsample" else "sufficient",
        )
        cells[policy] = ("regression", config, f"{out_dir}/{policy}")
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    for policy, summary in summaries.items():
        curves += curves_from_summary(NAME, f"{policy} d={DIM} T={SAMPLES}", summary, METRICS)

    def ratio(x):
        return x / ONE_FIT

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for policy, summary in summaries.items():
        chains = summary["num_chains"]
        label = f"{LABELS[policy]} ({chains} chains)"
        plot_metric(axes[0], summary, "excess_risk", label=label, color=COLORS[policy], transform=ratio, positive=True)
        if policy != "replace":  # the zoom: chain means and SE bands only (the 5-95% spread is in the left panel)
            plot_metric(
                axes[1], summary, "excess_risk", label=label, color=COLORS[policy], transform=ratio, bands=False
            )
    for ax in axes:
        ax.axhline(math.pi**2 / 6, color="0.25", lw=0.9, linestyle=":")
        ax.axhline(math.pi**2 / 2 - 2, color="0.55", lw=0.9, linestyle=":")
        ax.set_xlim(1, generations)
    axes[1].text(generations, math.pi**2 / 6, r"$\pi^2/6 \approx 1.645$ ", ha="right", va="bottom", fontsize=8)
    axes[1].text(generations, math.pi**2 / 2 - 2, r"$\pi^2/2 - 2 \approx 2.935$ ", ha="right", va="bottom", fontsize=8)
    style_axes(
        axes[0],
        title="all three workflows (log scale): discard grows like k",
        ylabel=r"risk / one-fit risk $\sigma^2 d/(T-d-1)$",
        logy=True,
    )
    style_axes(
        axes[1],
        title=r"bounded workflows: augment $\to\pi^2/6$, subsample $\to\pi^2/2-2$",
        ylabel=r"risk / one-fit risk",
    )
    axes[1].set_ylim(0, 3.5)
    axes[0].legend(fontsize=8, loc="upper left")
    title = (
        f"The $\\pi^2/6$ pathway: OLS regression, d = {DIM}, T = {SAMPLES}, fixed design, "
        f"risk relative to the fit on real data"
    )
    paths = finish_figure(fig, title, out_dir, NAME)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    NAME, "Dey & Donoho 2024: risk ratio -> pi^2/6 (accumulate), k (replace), ~2.93 (subsample)", run
)
