"""Discrete laws: the tails and the minorities vanish first (Shumailov et al. 2024; Kazdan et al. 2024;
Kanabar & Gastpar 2025).

(a) support size of a Zipf(1.5) law over K = 1000 categories under replace (Wright-Fisher drift: a
    lost category never returns) and accumulate (nothing seen is ever lost), exact theory;
(b) a minority group (10 of 100 equally likely categories) under replace: its expected mass stays
    0.1 (a martingale) while the probability that it has vanished grows to 0.9, exact theory;
(c) the l2 risk with Kanabar & Gastpar's mixture draws (each point real with probability alpha):
    replace collapses to a point mass for alpha = 0 and settles for alpha > 0; accumulate stays below
    pi^2/6 times the one-fit risk, exact recursions;
(d) Gini-Simpson diversity 1 - sum p^2, exact (1 - 1/M)^k decay under replace.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "discrete-zipf"
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (5000 chains: standard errors below 0.5 % of most means), "quick" (2000 chains), "smoke" (seconds, for tests) or "paper" (as full,
    see below)."""
    # paper: papers.md's discrete sizes (Kazdan et al.: K and n in 10..10^5, 100 seeds, replace until the
    # entropy is below 1e-8) are for a grid this figure does not draw; its K = 1000, M <= 1000 lie within
    # them, so paper mode keeps full's generations, with 10^4 chains (more than 100 seeds)
    chains = {"full": 5000, "quick": 2000, "smoke": 64, "paper": 10_000}[mode]
    generations = {"full": 200, "quick": 100, "smoke": 10, "paper": 200}[mode]
    zipf = dict(
        law="zipf:1.5",
        categories=1000,
        generations=generations,
        chains=chains,
        seed=0,
        metrics="support_size,lost_mass,gini_simpson",
    )
    support = {
        "replace M=100": dict(zipf, samples=100, policy="replace"),
        "replace M=1000": dict(zipf, samples=1000, policy="replace"),
        "accumulate M=100": dict(zipf, samples=100, policy="accumulate"),
    }
    minority = dict(
        law="uniform",
        categories=100,
        samples=100,
        policy="replace",
        generations=generations,
        chains=chains,
        seed=1,
        groups="majority:1-90,minority:91-100",
        metrics="group_mass.minority,group_extinct.minority",
    )
    risk = {
        f"{policy} alpha={alpha:g}": dict(
            law="zipf:1",
            categories=10,
            samples=50,
            policy=policy,
            real_fraction=alpha,
            real_draw="mixture",
            generations=min(generations, 50),
            chains=chains,
            seed=2,
            metrics="l2_risk",
        )
        for policy in ("replace", "accumulate")
        for alpha in (0.0, 0.3)
    }
    cells = {("support", k): ("discrete", c, f"{out_dir}/{k.replace(' ', '_')}") for k, c in support.items()}
    cells[("minority", "")] = ("discrete", minority, f"{out_dir}/minority")
    cells |= {("risk", k): ("discrete", c, f"{out_dir}/risk_{k.replace(' ', '_')}") for k, c in risk.items()}
    summaries = simulate_cells(cells, progress=progress)

    curves = []
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for (label, _), color in zip(support.items(), COLORS):
        summary = summaries["support", label]
        curves += curves_from_summary(NAME, label, summary, ("support_size", "lost_mass", "gini_simpson"))
        plot_metric(axes[0, 0], summary, "support_size", label=label, color=color, positive=True)
        plot_metric(axes[1, 1], summary, "gini_simpson", label=label, color=color)
    summary = summaries["minority", ""]
    curves += curves_from_summary(NAME, "minority 10/100", summary, ("group_mass.minority", "group_extinct.minority"))
    plot_metric(axes[0, 1], summary, "group_mass.minority", label="minority mass", color=COLORS[0])
    plot_metric(
        axes[0, 1], summary, "group_extinct.minority", label="P(minority extinct)", color=COLORS[3], bands=False
    )
    for (label, _), color in zip(risk.items(), COLORS):
        summary = summaries["risk", label]
        curves += curves_from_summary(NAME, label, summary, ("l2_risk",))
        plot_metric(axes[1, 0], summary, "l2_risk", label=label, color=color, positive=True, bands=False)
    style_axes(axes[0, 0], title="support size, Zipf(1.5), K = 1000", ylabel="categories with mass > 0", logy=True)
    style_axes(axes[0, 1], title="a 10% minority (uniform law, M = 100, replace)", ylabel="mass / probability")
    style_axes(
        axes[1, 0],
        title=r"$\|\hat p_k - p\|^2$, mixture draws (Kanabar & Gastpar), K = 10, M = 50",
        ylabel="l2 risk",
        logy=True,
    )
    style_axes(axes[1, 1], title="Gini-Simpson diversity $1-\\sum_i \\hat p_i^2$", ylabel="Gini-Simpson")
    for ax in axes.flat:
        ax.legend(fontsize=8)
    paths = finish_figure(
        fig, f"Discrete laws lose their tails and minorities first ({chains} chains per curve)", out_dir, NAME
    )
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(NAME, "Discrete (Zipf) laws: support, minority extinction, l2 risk with mixture draws", run)
