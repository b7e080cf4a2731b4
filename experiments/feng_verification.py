"""Feng et al. 2024 ("Beyond Model Collapse: Scaling Up with Synthesized Data Requires Verification"):
selecting synthetic data with a verifier, even an imperfect one, prevents collapse; the proxy p* (the
probability that a selected label is correct) predicts when. Setting: theory.md E (a reconstruction).

(a) accuracy of the mean-difference classifier trained on N verified synthetic points (generation 2 of
    a chain whose model 1 is the oracle labeller with flip rate eps) against eps, for verifiers of keep
    probabilities (phi, rho) and none. As N grows the curves approach a step at p* = 1/2, i.e. at
    eps* = phi / (phi + rho): Bayes accuracy Phi(||mu||) below it, 1 - Phi(||mu||) above. Markers:
    simulation (95% bars); thin black: the exact quadrature (theory.verification); grey dash-dot: the
    N -> infinity step of each verifier.
(b) the proxy decides: the same cells against p* = phi(1 - eps) / (phi(1 - eps) + rho eps). With a refill
    budget every kept set holds N points whose labels are correct with probability p*, so whatever
    (phi, rho, eps), cells of equal p* have the same accuracy: all verifiers fall on one curve per N,
    the exact accuracy of N points with a share p* of correct labels, with its N -> infinity step at
    p* = 1/2 (the paper's claim that p* predicts collapse). The measured share of correct kept labels
    (the `p_star` metric) is compared with p* in the report: that checks the sampler (Bayes' rule), not
    the claim.
(c) recursive chains: each generation's classifier labels the next generation's points (flip rate eps);
    without a verifier the accuracy decays generation after generation (collapse); with an oracle or a
    linear verifier (keeps labels that agree with sign(v.x), v at 30 degrees from mu) it stays put.
    Simulation only past generation 1 (no closed form).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from experiments.common import (
    EXACT_STYLE,
    LIMIT_STYLE,
    curves_from_summary,
    finish_figure,
    plot_metric,
    simulate_cells,
    style_axes,
)
from theory import verification as theory

NAME = "feng-verification"
DIM, MEAN_NORM = 50, 1.0
VERIFIERS = {
    "no verifier": ("none", 1.0, 1.0),
    "phi=0.9, rho=0.1": ("oracle", 0.9, 0.1),
    "phi=0.9, rho=0.3": ("oracle", 0.9, 0.3),
    "phi=rho=0.5 (blind: same law as none)": ("oracle", 0.5, 0.5),
}
COLORS = ("#7f7f7f", "#2ca02c", "#1f77b4", "#d62728")
MODES = {
    # chains per point for each N (at N = 5000 a cell draws up to 4 10^4 points per chain and its accuracy varies
    # by about 0.01 between chains, so 120 chains resolve it to 0.001; full mode stays within 5 minutes)
    "full": dict(
        chains={200: 2000, 5000: 120},
        sizes=(200, 5000),
        noise=np.linspace(0.0, 1.0, 21),
        generations=40,
        chain_chains=2000,
    ),
    "quick": dict(
        chains={200: 200, 1000: 200},
        sizes=(200, 1000),
        noise=np.array([0.05, 0.25, 0.45, 0.7, 0.95]),
        generations=10,
        chain_chains=300,
    ),
    "smoke": dict(chains={50: 16}, sizes=(50,), noise=np.array([0.2, 0.8]), generations=3, chain_chains=16),
    # papers.md gives no sizes for this task: full's grid, with 2000 chains at N = 5000 too (full's 200 are
    # set by the CPU budget)
    "paper": dict(
        chains={200: 2000, 5000: 2000},
        sizes=(200, 5000),
        noise=np.linspace(0.0, 1.0, 21),
        generations=40,
        chain_chains=2000,
    ),
}


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full", "quick", "smoke" or "paper" (`MODES`)."""
    m = MODES[mode]
    cells = {}
    for n in m["sizes"]:
        for label, (kind, phi, rho) in VERIFIERS.items():
            for eps in m["noise"]:
                config = dict(
                    dim=DIM,
                    mean_norm=MEAN_NORM,
                    samples=n,
                    generations=2,
                    chains=m["chains"][n],
                    seed=0,
                    label_noise=float(eps),
                    verifier=kind,
                    keep_correct=phi,
                    keep_wrong=rho,
                )
                cells[("sweep", n, label, float(eps))] = (
                    "verification",
                    config,
                    f"{out_dir}/N{n}/{kind}_{phi:g}_{rho:g}/eps{eps:.3f}",
                )
    chain_base = dict(
        dim=DIM,
        mean_norm=MEAN_NORM,
        samples=100,
        generations=m["generations"],
        generator="fitted",
        label_noise=0.2,
        chains=m["chain_chains"],
        seed=1,
    )
    recursive = {
        "no verifier": {},
        "oracle phi=1, rho=0.2": dict(verifier="oracle", keep_correct=1.0, keep_wrong=0.2),
        "linear verifier at 30 deg": dict(verifier="linear", verifier_angle=30.0),
    }
    for label, extra in recursive.items():
        cells[("chain", label)] = ("verification", {**chain_base, **extra}, f"{out_dir}/chain_{label.split()[0]}")
    # one batch per N (and the chains): simulate_cells holds every prepared program of a batch at once, and
    # LLVM runs out of mappable memory with all 170 cells of full mode loaded together
    summaries = {}
    for batch in (*m["sizes"], "chain"):
        part = {key: cell for key, cell in cells.items() if key[1] == batch or (batch == "chain" and key[0] == "chain")}
        summaries |= simulate_cells(part, progress=progress)

    curves = []
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.4))
    fine = np.linspace(0.0, 1.0, 81)
    markers = dict(zip(m["sizes"], ("o", "s")))
    for n in m["sizes"]:
        for (label, (_kind, phi, rho)), color in zip(VERIFIERS.items(), COLORS):
            points = [(eps, summaries["sweep", n, label, float(eps)]) for eps in m["noise"]]
            for eps, summary in points:
                curves += curves_from_summary(NAME, f"N={n} {label} eps={eps:.2f}", summary, ("accuracy", "p_star"))
            mean = np.array([s["metrics"]["accuracy"]["mean"][2] for _, s in points])
            se = np.array([s["metrics"]["accuracy"]["se"][2] for _, s in points])
            proxy = np.array([theory.p_star(eps, phi, rho) for eps in m["noise"]])
            for ax, x in ((axes[0], m["noise"]), (axes[1], proxy)):
                ax.errorbar(x, mean, yerr=1.96 * se, fmt=markers[n], ms=4, color=color, capsize=2, lw=0, elinewidth=1)
            exact = [
                theory.accuracy_mean_classifier(
                    dim=DIM, mean_norm=MEAN_NORM, samples=n, label_noise=e, phi=phi, rho=rho
                )
                for e in fine
            ]
            axes[0].plot(fine, exact, **EXACT_STYLE)
        # (b): N points whose labels are correct with probability p (no verifier, eps = 1 - p)
        by_proxy = [
            theory.accuracy_mean_classifier(dim=DIM, mean_norm=MEAN_NORM, samples=n, label_noise=1 - p) for p in fine
        ]
        axes[1].plot(fine, by_proxy, **EXACT_STYLE)
    for _label, (_kind, phi, rho) in VERIFIERS.items():
        step = [theory.accuracy_asymptotic(theory.p_star(e, phi, rho), dim=DIM, mean_norm=MEAN_NORM) for e in fine]
        axes[0].plot(fine, step, **LIMIT_STYLE)
    axes[1].plot(fine, [theory.accuracy_asymptotic(p, dim=DIM, mean_norm=MEAN_NORM) for p in fine], **LIMIT_STYLE)
    for label, color in zip(recursive, ("#7f7f7f", "#2ca02c", "#9467bd")):
        summary = summaries["chain", label]
        curves += curves_from_summary(NAME, f"recursive {label}", summary, ("accuracy",))
        plot_metric(axes[2], summary, "accuracy", label=label, color=color)
    bayes = theory.bayes_accuracy(MEAN_NORM)
    for ax in axes:
        ax.axhline(bayes, color="black", lw=0.5, linestyle=":")
    style_axes(
        axes[0],
        title=f"(a) accuracy after training on N verified synthetic labels, d={DIM}",
        xlabel="label noise eps of the generator",
        ylabel="accuracy on real data",
    )
    style_axes(
        axes[1],
        title="(b) the proxy p* decides: the same cells against p*",
        xlabel="p* = phi(1-eps) / (phi(1-eps) + rho eps): share of kept labels that are correct",
        ylabel="accuracy on real data",
    )
    style_axes(
        axes[2],
        title="(c) recursive classifiers (N=100, eps=0.2): collapse and its prevention",
        ylabel="accuracy on real data",
    )
    handles = [Line2D([], [], color=c, marker="o", lw=0, label=label) for label, c in zip(VERIFIERS, COLORS)]
    handles += [Line2D([], [], color="0.3", marker=markers[n], lw=0, label=f"N = {n}") for n in m["sizes"]]
    handles += [
        Line2D([], [], **EXACT_STYLE, label="exact theory (quadrature)"),
        Line2D([], [], **LIMIT_STYLE, label="N -> infinity: a step at p* = 1/2"),
        Line2D([], [], color="black", lw=0.5, linestyle=":", label="Bayes accuracy"),
    ]
    axes[0].legend(handles=handles, fontsize=7, loc="lower left", framealpha=0.9)
    axes[2].legend(fontsize=8, loc="lower left")
    paths = finish_figure(
        fig,
        "Verification prevents collapse; the proxy p* decides, with the transition at p* = 1/2 "
        f"({', '.join(f'{c} chains per point at N = {n}' for n, c in m['chains'].items())}; "
        f"{m['chain_chains']} per curve in (c))",
        out_dir,
        NAME,
    )
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    NAME, "Verified synthetic labels: accuracy vs label noise, the proxy p*, recursive classifiers", run
)
