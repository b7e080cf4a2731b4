"""Shumailov et al. (Nature 2024), Gaussian mixture: two components, 1000 samples per generation, up
to 2000 generations of EM refits.

The true law is 0.8 N(-2 e_1, I) + 0.2 N(2 e_1, I) in 2-D. Under replace the closed-form L2 distance
to the true mixture grows and the minor mode's weight diffuses away from 0.2 (its 5-95% band spreads
to 0 in some chains and far above 0.2 in others); keeping 10% fresh real data per generation holds
the distance near its one-fit level. A variance floor (reg_covar 1e-6) keeps every
fit finite; a component whose weight reaches 0 is counted in `dead_components`. No closed form:
simulation only.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "shumailov-gmm"
METRICS = ("l2_distance", "weight.0", "weight.1", "dead_components")
RUNS = {"replace": dict(policy="replace"), "replace, 10% real": dict(policy="replace", real_fraction=0.1)}
COLORS = ("#d62728", "#1f77b4")


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (2000 generations, 256 chains, 100 EM steps), "quick" (250 generations, 32 chains, 60 EM
    steps: converged to within 1 SE of the 100-step fit's minor weight at M = 1000) or "smoke"."""
    chains = {"full": 256, "quick": 32, "smoke": 4}[mode]
    generations = {"full": 2000, "quick": 250, "smoke": 5}[mode]
    samples = 1000 if mode != "smoke" else 50
    em_steps = {"full": 100, "quick": 60, "smoke": 5}[mode]
    base = dict(samples=samples, generations=generations, chains=chains, seed=0, components=2, em_steps=em_steps)
    cells = {
        label: ("gmm", dict(base, **extra), f"{out_dir}/{label.replace(' ', '').replace(',', '_').replace('%', '')}")
        for label, extra in RUNS.items()
    }
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for (label, summary), color in zip(summaries.items(), COLORS):
        curves += curves_from_summary(NAME, label, summary, METRICS)
        plot_metric(axes[0], summary, "l2_distance", label=label, color=color, positive=True)
        plot_metric(axes[1], summary, "weight.1", label=label, color=color)
        plot_metric(axes[2], summary, "dead_components", label=label, color=color, bands=False)
    style_axes(axes[0], title="L2 distance to the true mixture", ylabel=r"$\|f_k - f_0\|_{L^2}$", logy=True)
    style_axes(axes[1], title="weight of the minor mode (true 0.2)", ylabel="weight")
    style_axes(axes[2], title="dead components (weight 0)", ylabel="count")
    for ax in axes:
        ax.legend(fontsize=8)
    paths = finish_figure(
        fig, f"Two-component GMM refitted by EM, M = {samples} ({chains} chains per curve)", out_dir, NAME
    )
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(NAME, "Shumailov et al. 2024: two-component GMM over up to 2000 generations", run)
