"""Dohmatob, Feng, Yang, Charton & Kempe 2024, "A Tale of Tails": Hutter's memorisation model on
Zipf(2) data (K = 10^5 items).

(a) Loss of scaling: test error vs training size T when the training law is the real law cut at rank k
    (k = 10^2, 10^3, 10^4) or narrowed to Zipf(3): the clean law T^-(1-1/beta) flattens into the
    floor sum_{i > k} p_i ~ k^-(beta-1); narrowing changes the exponent to (beta-1)/beta'.
(b) Mixing: T_real real draws plus a fixed N draws from a rank-k cut law (full: N = 10^6, k = 100;
    quick: N = 10^5, k = 30): a plateau at the tail mass while T_real << k^beta, then recovery to the
    clean law ("grokking").
(c) Iterated generations (full T0 = 5000, quick 2000), the two natural chains of theory.md D.5: each
    generator the empirical law of T0 draws from the previous one (Wright-Fisher; exact theory), or the
    true law restricted to the items seen in those draws (support-shrinking; simulation and the D.5
    approximation). The lost mass grows like n^c (Wright-Fisher) or slower (shrinking), far below the
    n T0^-c law attributed to the paper; the figure prints the fitted log-log slopes.
Theory: exact sums (thin solid black), the asymptotic laws and limits (grey dash-dot, floors lighter).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from experiments.common import (
    EXACT_STYLE,
    LIMIT_STYLE,
    curves_from_summary,
    finish_figure,
    plot_metric,
    simulate_cells,
    style_axes,
)

NAME = "tale-of-tails"
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
BETA = 2.0
LAST_THEORY_EXPONENT = 9  # panel (a) draws the exact sums to T = 10^9, where every cut has reached its floor


def _at(summary, metric, generation):
    entry = summary["metrics"][metric]
    values = [entry[key][generation] for key in ("mean", "se", "theory")]
    return [np.nan if v is None else v for v in values]


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (300 chains per point in (a), 200 in (b), 400 per chain in (c): standard errors below 2.5 %
    of every mean at T = 10 and 0.5 % from T = 10^4; about 3 minutes on a 2-core CPU), "quick" (200, 200,
    100), "smoke" (seconds, for tests) or "paper" (full's sizes, papers.md
    giving none for the memoriser (their experiments are transformers); 4000 chains per point in (a), 1000
    in (b): full's counts are set by the CPU budget)."""
    import theory.tails as tails

    paper, mode = mode == "paper", "full" if mode == "paper" else mode  # paper: full's sizes, more chains

    chains = 4000 if paper else {"full": 300, "quick": 200, "smoke": 8}[mode]
    mix_chains = 1000 if paper else {"full": 200, "quick": 200, "smoke": 8}[mode]  # T_real up to 10^7 draws per chain
    chain_chains = {"full": 400, "quick": 100, "smoke": 8}[mode]
    k_items = {"full": 100_000, "quick": 100_000, "smoke": 2000}[mode]
    sizes = [10**e for e in range(1, 7 if mode == "full" else 6 if mode == "quick" else 4)]
    train = ",".join(map(str, sizes))
    base = dict(
        law=f"zipf:{BETA:g}", categories=k_items, samples=1000, generations=1, chains=chains, seed=0, train_sizes=train
    )
    cuts = (100, 1000, 10_000) if mode != "smoke" else (10, 100)
    generators = {f"cut:{k}": f"cut k={k}" for k in cuts} | {"narrow:3": "narrow beta'=3"}
    cells = {("cut", g): ("tails", dict(base, generator=g), f"{out_dir}/{g.replace(':', '')}") for g in generators}
    mix_rank = 100 if mode == "full" else 30
    mix_sizes = ",".join(str(10**e) for e in range(1, {"full": 7, "quick": 6, "smoke": 4}[mode]))
    fixed = {"full": 10**6, "quick": 10**5, "smoke": 1000}[mode]
    cells[("mix", "")] = (
        "tails",
        dict(
            base,
            generator=f"cut:{mix_rank}",
            train_sizes=mix_sizes,
            train_real_fraction=1.0,
            fixed_synthetic=fixed,
            chains=mix_chains,
        ),
        f"{out_dir}/mixing",
    )
    generations = {"full": 100, "quick": 40, "smoke": 4}[mode]
    t0 = {"full": 5000, "quick": 2000, "smoke": 100}[mode]
    cells[("chain", "")] = (
        "tails",
        dict(
            base,
            generator="empirical",
            samples=t0,
            generations=generations,
            train_sizes=str(t0),
            chains=chain_chains,
        ),
        f"{out_dir}/chain",
    )
    cells[("shrink", "")] = (
        "tails",
        dict(
            base,
            generator="empirical",
            chain="shrinking",
            samples=t0,
            generations=generations,
            train_sizes=str(t0),
            chains=chain_chains,
        ),
        f"{out_dir}/shrinking",
    )
    summaries = simulate_cells(cells, progress=progress)

    curves = []
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    ax = axes[0]
    t = np.array(sizes, float)
    clean = summaries["cut", next(iter(generators))]
    for i, (g, label) in enumerate([(None, "clean (real data)")] + list(generators.items())):
        summary = clean if g is None else summaries["cut", g]
        generation = 0 if g is None else 1
        points = np.array([_at(summary, f"test_error.{n}", generation) for n in sizes])
        ax.errorbar(t, points[:, 0], yerr=1.96 * points[:, 1], fmt="o", ms=4, color=COLORS[i], label=label)
        law = tails.zipf_law(BETA, k_items) if g is None else tails.generator_law(g, k_items, BETA)[1]
        beyond = np.logspace(1, LAST_THEORY_EXPONENT, 60)  # exact sums past the simulated sizes
        exact = tails.memoriser_error(tails.zipf_law(BETA, k_items), law, beyond)
        ax.plot(beyond, exact, **EXACT_STYLE, label="exact (sums over the law)" if g is None else None)
        if g is not None:  # generations 0 (clean) and 1 (this generator) of each run
            curves += curves_from_summary(NAME, label, summary, [f"test_error.{n}" for n in sizes] + ["lost_mass"])
    ax.axvspan(sizes[-1] * 1.5, 10**LAST_THEORY_EXPONENT, color="0.94", zorder=0, lw=0)
    ax.text(
        10 ** ((np.log10(sizes[-1] * 1.5) + LAST_THEORY_EXPONENT) / 2),
        0.62,
        f"exact theory only:\nT > 10^{round(np.log10(sizes[-1]))} draws per\nchain not simulated",
        ha="center",
        fontsize=7,
        color="0.3",
        transform=ax.get_xaxis_transform(),
    )
    fine = np.logspace(1, LAST_THEORY_EXPONENT, 50)
    ax.plot(
        fine, tails.clean_error_asymptotic(fine, BETA), **LIMIT_STYLE, label=r"$C_\beta T^{-(1-1/\beta)}$ (large T)"
    )
    for i, k in enumerate(cuts):
        floor = dict(LIMIT_STYLE, lw=0.6, color="0.7")
        ax.axhline(
            tails.tail_mass_asymptotic(k, BETA), **floor, label=r"floors $\asymp k^{-(\beta-1)}$" if i == 0 else None
        )
    style_axes(
        ax,
        title=r"(a) loss of scaling: tail cut at rank $k$, narrowing",
        xlabel="training size T",
        ylabel="test error",
        logx=True,
        logy=True,
    )

    ax = axes[1]
    summary = summaries["mix", ""]
    real = np.array([int(x) for x in mix_sizes.split(",")], float)
    points = np.array([_at(summary, f"test_error.{int(n)}", 1) for n in real])
    ax.errorbar(
        real,
        points[:, 0],
        yerr=1.96 * points[:, 1],
        fmt="o",
        ms=4,
        color=COLORS[0],
        label=f"{fixed:.0e} synthetic (cut k={mix_rank}) + T_real real",
    )
    ax.plot(real, points[:, 2], **EXACT_STYLE, label="exact")
    fine = np.logspace(1, np.log10(real[-1]), 50)
    ax.plot(fine, tails.clean_error_asymptotic(fine, BETA), **LIMIT_STYLE, label="clean law (large T)")
    ax.axhline(
        tails.tail_mass_asymptotic(mix_rank, BETA),
        **dict(LIMIT_STYLE, lw=0.6, color="0.7"),
        label="plateau (tail mass)",
    )
    ax.axvline(
        float(tails.mixing_recovery_point(mix_rank, BETA)),
        color="0.6",
        lw=0.6,
        linestyle=":",
        label=r"recovery point $\asymp k^\beta$",
    )
    curves += curves_from_summary(NAME, "mixing", summary, [f"test_error.{int(n)}" for n in real])
    style_axes(
        ax,
        title="(b) mixing real data: plateau, then recovery",
        xlabel="real training draws T_real",
        ylabel="test error",
        logx=True,
        logy=True,
    )

    ax = axes[2]
    summary, shrink = summaries["chain", ""], summaries["shrink", ""]
    curves += curves_from_summary(NAME, f"empirical chain T0={t0}", summary, ("lost_mass", f"test_error.{t0}"))
    curves += curves_from_summary(NAME, f"shrinking chain T0={t0}", shrink, ("lost_mass",))
    plot_metric(
        ax, summary, "lost_mass", label="lost mass, empirical (Wright-Fisher) chain", color=COLORS[0], positive=True
    )
    plot_metric(
        ax,
        summary,
        f"test_error.{t0}",
        label=f"test error (T = {t0}), empirical chain",
        color=COLORS[1],
        positive=True,
        bands=False,
    )
    plot_metric(ax, shrink, "lost_mass", label="lost mass, support-shrinking chain", color=COLORS[2], positive=True)
    n = np.arange(1, generations + 1)
    p = tails.zipf_law(BETA, k_items)
    ax.plot(
        n,
        [float(tails.wf_lost_mass_asymptotic(t0, g, BETA)) for g in n],
        **LIMIT_STYLE,
        label=r"$C_\beta (T_0 q_{n-1})^{-c}$ (WF, large $T_0$)",
    )
    ax.plot(
        n,
        [float(tails.shrinking_chain_lost_mass(p, t0, g)) for g in n],
        **dict(LIMIT_STYLE, color="0.75"),
        label=r"$\sum_i p_i[1-(1-(1-p_i)^{T_0})^n]$ (shrinking, approx.)",
    )
    ax.plot(
        n,
        n * float(tails.clean_error_asymptotic(t0, BETA)),
        color="0.6",
        lw=0.9,
        linestyle=":",
        label=r"$n\,C_\beta T_0^{-c}$ (unverified law)",
    )
    slopes = []
    for chain_summary in (summary, shrink):
        lost = np.array(chain_summary["metrics"]["lost_mass"]["mean"][1:], float)
        half = max(len(n) // 2, 1)
        slopes.append(np.polyfit(np.log(n[half - 1 :]), np.log(lost[half - 1 :]), 1)[0] if len(n) > 2 else np.nan)
    ax.text(
        0.98,
        0.03,
        f"log-log slopes (last half):\nWright-Fisher {slopes[0]:.2f} (c = {1 - 1 / BETA:g})\n"
        f"shrinking {slopes[1]:.2f}\nunverified law 1",
        transform=ax.transAxes,
        fontsize=7,
        ha="right",
        va="bottom",
        bbox=dict(facecolor="white", edgecolor="0.8", alpha=0.9),
    )
    style_axes(ax, title=f"(c) iterated generations, T0 = {t0}", ylabel="mass", logy=True)
    axes[0].legend(fontsize=7, loc="lower left")
    for a in axes[1:]:
        a.legend(fontsize=7)
    paths = finish_figure(
        fig,
        f"A Tale of Tails: memorisation on Zipf({BETA:g}) data ({chains} chains per point in (a), {mix_chains} in (b), "
        f"{chain_chains} per chain in (c))",
        out_dir,
        NAME,
    )
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    NAME, "Dohmatob et al. 2024 (Tale of Tails): loss of scaling, mixing, iterated generations", run
)
