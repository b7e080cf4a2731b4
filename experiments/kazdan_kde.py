"""Kazdan et al. 2024, "Collapse or Thrive?": recursive kernel density estimation of a 2-D dataset.

Gaussian-kernel KDEs (Scott's bandwidth, refitted every generation) of the two-moons dataset, M in
{10, 100, 1000} points per generation, 100 generations, under replace, accumulate and
accumulate-subsample. Metric: the negative log-likelihood of 500 fresh held-out real points per
generation (generation 0: the true density, computed by quadrature along the moons). Replace
diverges (each generation adds a kernel's worth of blur and loses points); accumulate stays flat or
improves; accumulate-subsample sits in between. No closed form exists for the NLL of a recursive KDE:
simulation only.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "kazdan-kde"
POLICIES = ("replace", "accumulate", "accumulate-subsample")
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c")


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (M up to 1000, 100 generations, 256 chains, 500 test points), "quick" (M in {10, 100},
    50 generations, 32 chains, 200 test points) or "smoke"."""
    chains = {"full": 256, "quick": 32, "smoke": 4}[mode]
    sizes = {"full": (10, 100, 1000), "quick": (10, 100), "smoke": (10,)}[mode]
    generations = {"full": 100, "quick": 50, "smoke": 5}[mode]
    base = dict(
        dataset="moons",
        bandwidth="scott",
        generations=generations,
        chains=chains,
        seed=0,
        test_points={"full": 500, "quick": 200, "smoke": 50}[mode],
    )
    cells = {(p, m): ("kde", dict(base, policy=p, samples=m), f"{out_dir}/{p}_M{m}") for p in POLICIES for m in sizes}
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharey=True)
    for ax, policy in zip(axes, POLICIES):
        for m, color in zip(sizes, COLORS):
            summary = summaries[policy, m]
            curves += curves_from_summary(NAME, f"{policy} M={m}", summary, ("held_out_nll",))
            plot_metric(ax, summary, "held_out_nll", label=f"M={m}", color=color)
        style_axes(ax, title=policy, ylabel="held-out NLL (nats)" if policy == POLICIES[0] else None)
        ax.axhline(
            summaries[POLICIES[0], sizes[0]]["metrics"]["held_out_nll"]["mean"][0],
            color="black",
            lw=0.8,
            linestyle=":",
            label="true density",
        )
        ax.legend(fontsize=8)
    paths = finish_figure(
        fig, f"Recursive KDE of two moons, Scott bandwidth ({chains} chains per curve)", out_dir, NAME
    )
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(NAME, "Kazdan et al. 2024: recursive KDE (two moons), replace vs accumulate vs subsample", run)
