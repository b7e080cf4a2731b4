"""Marchi, Soatto, Chaudhari & Tabuada 2024 ("Heat death of generative models in closed-loop learning"):
sampling temperature in the loop.

Their claim: a model retrained on its own samples drawn at temperature tau collapses onto its modes when
tau < 1 and flattens when tau > 1, unless enough real data enters each generation; in the
infinite-sample limit of a Gaussian the variance obeys tr Sigma_k = (1 - alpha) tau tr Sigma_{k-1} +
alpha tr Sigma_0, stable exactly when (1 - alpha) tau < 1.

Simulated: 1-D Gaussian chains (mean and variance refitted, unbiased variance), M = 100 points per
generation, replace, models sampled at temperature tau (`--temperature`; real points are not tempered), on
the exact sufficient-statistic path (the tempered model's drawn mean and Bartlett factor).

(a) No real data, tau in {0.9, 0.97, 1, 1.03, 1.1}, 100 generations: E log(sigma_k^2 / sigma_0^2), the
checkable statistic (the variance itself is a product of scaled chi-squares with heavy tails), against
its exact theory: Bartlett's log chi-squares shifted by (k - 1) log tau (our derivation). Even tau = 1
collapses almost surely (the slope psi((M-1)/2) + log(2/(M-1)) < 0); tau moves the slope by log tau.
(b) With a fresh real fraction alpha in {0.1, 0.3, 0.5}: E tr Sigma_100 / tr Sigma_0 against tau, the
exact finite-M value at generation 100 (thin black, our derivation), the infinite-sample limit
alpha / (1 - (1 - alpha) tau) (grey dash-dot) and the boundary tau = 1/(1 - alpha) (dotted).
(c) A categorical law (Zipf(1.2) over K = 100 categories, empirical refits on M = 10^4 draws, replace)
sampled at tau in {0.8, 0.9, 1, 1.1, 1.25}: the entropy of model k against the infinite-sample limit
p^(tau^-(k-1)) normalised (grey dash-dot, theory.discrete.tempered_law_limit; a limit: at finite M the
Wright-Fisher drift also removes entropy, as the tau = 1 curve shows). No finite-M theory is derived.
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

NAME = "marchi-heat-death"
SAMPLES = 100
DDOF = 1
COLD_HOT = (0.9, 0.97, 1.0, 1.03, 1.1)
COLD_HOT_COLORS = ("#08519c", "#6baed6", "0.35", "#fc9272", "#cb181d")
FRACTIONS = (0.1, 0.3, 0.5)
FRACTION_COLORS = {0.1: "#1f77b4", 0.3: "#2ca02c", 0.5: "#d62728"}
TAUS = (0.5, 0.8, 1.0, 1.05, 1.1, 1.2, 1.3, 1.4, 1.6, 1.8, 1.9)
DISCRETE_TAUS = (0.8, 0.9, 1.0, 1.1, 1.25)
DISCRETE = dict(law="zipf:1.2", categories=100, samples=10_000, policy="replace", metrics=("entropy",))


def _stable_taus(alpha: float, mode: str) -> list[float]:
    """Temperatures whose infinite-sample chain settles, (1 - alpha) tau <= 0.96 (fewer in smoke)."""
    taus = [t for t in TAUS if (1 - alpha) * t <= 0.96]
    return taus[::3] if mode == "smoke" else taus


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (20 000 Gaussian and 1000 categorical chains), "quick" (1000 and 100), "smoke" (64 chains, 10
    generations) or "paper" (as full, 2000 categorical chains: papers.md gives no sizes for this paper)."""
    generations = 10 if mode == "smoke" else 100
    chains = {"smoke": 64, "quick": 1000, "full": 20_000, "paper": 20_000}[mode]
    base = dict(dim=1, samples=SAMPLES, ddof=DDOF, policy="replace", generations=generations, chains=chains, seed=0)
    base |= dict(method="sufficient")
    discrete_chains = {"smoke": 6, "quick": 100, "full": 1000, "paper": 2000}[mode]  # entropy: SE below 0.5 %
    cells = {}
    for tau in COLD_HOT:
        config = dict(base, temperature=tau, metrics=("log_det_ratio",))
        cells[("a", tau)] = ("gaussian", config, f"{out_dir}/no-real-tau{tau}")
    for alpha in FRACTIONS:
        for tau in _stable_taus(alpha, mode):
            config = dict(base, temperature=tau, real_fraction=alpha, metrics=("trace_ratio",))
            cells[(alpha, tau)] = ("gaussian", config, f"{out_dir}/alpha{alpha}-tau{tau}")
    discrete_generations = 8 if mode == "smoke" else 30
    for tau in DISCRETE_TAUS:
        config = dict(DISCRETE, temperature=tau, generations=discrete_generations, chains=discrete_chains, seed=0)
        cells[("c", tau)] = ("discrete", config, f"{out_dir}/discrete-tau{tau}")
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    for (panel, tau), summary in summaries.items():
        if panel == "c":  # no finite-M theory: drawn against the infinite-sample limit, not compared
            continue
        metric = "log_det_ratio" if panel == "a" else "trace_ratio"
        label = f"tau={tau}" + ("" if panel == "a" else f" alpha={panel}")
        curves += curves_from_summary(NAME, f"{label} M={SAMPLES}", summary, (metric,))

    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    ax = axes[0]
    for tau, color in zip(COLD_HOT, COLD_HOT_COLORS):
        summary = summaries[("a", tau)]
        label = f"tau = {tau} ({summary['num_chains']} chains)"
        plot_metric(ax, summary, "log_det_ratio", label=label, color=color, bands=False)
    ax.axhline(0.0, color="0.6", lw=0.6)
    style_axes(
        ax,
        title=r"(a) no real data: $E \log(\sigma_k^2/\sigma_0^2)$; thin black: exact theory",
        ylabel=r"$E \log(\sigma_k^2 / \sigma_0^2)$",
    )
    ax.set_xlim(0, generations)
    ax.legend(fontsize=7, loc="lower left")

    ax = axes[1]
    fine = np.linspace(0.4, 2.0, 161)
    for alpha in FRACTIONS:
        color = FRACTION_COLORS[alpha]
        taus = [t for (a, t) in summaries if a == alpha]
        plot_final_means(ax, [summaries[(alpha, t)] for t in taus], taus, "trace_ratio", color=color)
        boundary = 1 / (1 - alpha)
        below = fine[fine < boundary]
        exact = [
            theory.gaussian.first_moments(
                samples=SAMPLES,
                ddof=DDOF,
                policy="replace",
                num_generations=generations,
                real_fraction=alpha,
                temperature=t,
            )[1][-1]
            for t in below
        ]
        ax.plot(below, exact, color="black", lw=0.8)
        ax.plot(
            below,
            theory.gaussian.tempered_variance_limit(below, real_fraction=alpha),
            color="0.55",
            lw=1.0,
            linestyle="-.",
        )
        ax.axvline(boundary, color=color, lw=0.9, linestyle=":")
        ax.plot([], [], "s", color=color, ms=3.5, label=f"alpha = {alpha}: boundary tau = {boundary:.3g}")
    ax.plot([], [], color="black", lw=0.8, label=f"exact at generation {generations}, M = {SAMPLES} (ours)")
    ax.plot([], [], color="0.55", lw=1.0, linestyle="-.", label=r"limit $M\to\infty$: $\alpha/(1-(1-\alpha)\tau)$")
    ax.plot([], [], color="0.3", lw=0.9, linestyle=":", label=r"boundary $(1-\alpha)\tau = 1$")
    style_axes(
        ax,
        title=f"(b) with fresh real data: variance at generation {generations} against tau",
        xlabel="sampling temperature tau",
        ylabel=r"$E\,\sigma_k^2 / \sigma_0^2$",
        logy=True,
    )
    ax.set_xlim(0.4, 2.05)
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[2]
    p = theory.discrete.parse_law(DISCRETE["law"], DISCRETE["categories"])
    for tau, color in zip(DISCRETE_TAUS, COLD_HOT_COLORS):
        summary = summaries[("c", tau)]
        label = f"tau = {tau} ({summary['num_chains']} chains)"
        plot_metric(ax, summary, "entropy", label=label, color=color, bands=False, theory=False)
        limit = theory.discrete.entropy(theory.discrete.tempered_law_limit(p, tau, discrete_generations))
        ax.plot(np.arange(discrete_generations + 1), limit, color="0.45", lw=1.0, linestyle="-.")
    ax.plot([], [], color="0.45", lw=1.0, linestyle="-.", label=r"limit $M\to\infty$: $p^{\tau^{-(k-1)}}$ normalised")
    style_axes(
        ax,
        title=f"(c) Zipf(1.2), K = {DISCRETE['categories']}, M = {DISCRETE['samples']}: entropy of model k",
        ylabel="entropy (nats)",
    )
    ax.set_xlim(0, discrete_generations)
    ax.legend(fontsize=7, loc="center right", bbox_to_anchor=(1.0, 0.36))  # between the collapsed and flat curves
    title = f"Heat death: models sampled at temperature tau (Gaussian: M = {SAMPLES}; categorical: M = 10^4), replace"
    paths = finish_figure(fig, title, out_dir, NAME)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    NAME, "Marchi et al. 2024: sampling temperature; collapse below 1, blow-up past (1 - alpha) tau = 1", run
)
