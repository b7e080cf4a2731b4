"""Kazdan et al. 2024 ("Collapse or Thrive?"), recursive kernel density estimation of 2-D datasets.

Their claim: Gaussian-kernel KDEs refitted on their own samples, with a fixed bandwidth, collapse under
replace (the negative log-likelihood of held-out real data grows without bound), stay near their first
fit under accumulate, and sit in between under accumulate-subsample (a growing pool, M points
subsampled from it per fit).

Simulated: the `kde` setting on its four datasets (blobs, circles, moons, swiss roll, at their default
noise), fixed bandwidths h in {0.1, 0.5, 1.0}, M = 100 points per generation, under the three policies.
Metric: the NLL (nats) of fresh held-out real points, drawn anew at every generation; generation 0 is
the true density itself (exact, or by quadrature along the curve), drawn as a dotted reference line.
No closed form exists for a recursive KDE's NLL: simulation only ("no theory" in the report).

Modes (chains and generations per curve; every cell M = 100):
  full   4 datasets x 3 bandwidths; replace 1000 generations (128 chains), accumulate-subsample 1000
         generations (64 chains), accumulate 200 generations (8 chains); 100 test points per generation.
         Accumulate is shorter because its KDE holds the whole pool (kM points at generation k, in a
         buffer of GM slots, all of them evaluated), so a chain costs O(G^2 M) per test point: its 12
         cells are half of the full run's time. About 7 minutes on a shared 2-core CPU.
  quick  blobs and moons x h in {0.1, 1.0}; replace and subsample 100 generations (32 and 16 chains),
         accumulate 50 generations (4 chains). About 20 s.
  smoke  moons, h = 0.5, 5 generations, 4 chains, 20 test points.

Figure: one row per dataset, one column per bandwidth, policies as colours; chain means with their
95% band (mean +- 1.96 SE) and the 5-95% band of the chains, on a log NLL axis; a dot marks where
accumulate stops. Each panel's title gives every policy's mean NLL at accumulate's last generation
(a like-for-like comparison) and at the last one. What the full run shows (in a note under the
legend): replace grows without bound, to about 490 nats at k = 1000 whatever h and dataset (more at
h = 0.1 on blobs and swiss roll); accumulate improves on its first fit at h = 0.1 and drifts up slowly
at h >= 0.5, where the kernel dominates and accumulate-subsample nearly coincides with it.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "kazdan-kde"
DATASETS = ("blobs", "circles", "moons", "swiss_roll")
BANDWIDTHS = ("0.1", "0.5", "1.0")
POLICIES = ("replace", "accumulate", "accumulate-subsample")
COLORS = {"replace": "#d62728", "accumulate": "#1f77b4", "accumulate-subsample": "#2ca02c"}
SHORT = {"replace": "replace", "accumulate": "accumulate", "accumulate-subsample": "subsample"}
DRAW_ORDER = ("replace", "accumulate-subsample", "accumulate")
SAMPLES = 100

# per mode: datasets, bandwidths, test points, and per policy (generations, chains)
MODES = {
    "full": (
        DATASETS,
        BANDWIDTHS,
        100,
        {"replace": (1000, 128), "accumulate": (200, 8), "accumulate-subsample": (1000, 64)},
    ),
    "quick": (
        ("blobs", "moons"),  # quick is compile-bound: each dataset and bandwidth is a program
        ("0.1", "1.0"),
        100,
        {"replace": (100, 32), "accumulate": (50, 4), "accumulate-subsample": (100, 16)},
    ),
    "smoke": (("moons",), ("0.5",), 20, {p: (5, 4) for p in POLICIES}),
    # the paper: h in {0.1, 0.5, 1.0} plus the Scott and Silverman rules, 1000 iterations, 500 held-out points,
    # 100 seeds (full's 128 kept for every policy); M = 100 is the slice of its n grid this figure draws
    "paper": (
        DATASETS,
        BANDWIDTHS + ("scott", "silverman"),
        500,
        {p: (1000, 128) for p in POLICIES},
    ),
}


NOTE = (
    "Replace: the kernel centres random-walk away from the data and the NLL measures that distance in units of h, "
    "so it grows without bound, to about 490 nats at k = 1000 whatever h and the dataset (more at h = 0.1 on "
    "the widest data, blobs and swiss roll). Accumulate keeps every batch: at h = 0.1 it improves on its first "
    "fit (a growing pool covers the data better); at h >= 0.5 the kernel dominates and it drifts up slowly (the "
    "pool's variance grows by h^2/k at generation k), and subsample stays within 0.2 nats of it at k = 200 "
    "(0.02 on circles and moons): a KDE of 100 points blurred by a wide kernel is nearly the pool's."
)


def _number(value) -> str:
    """A mean NLL for a panel title: three significant digits, no exponent."""
    return "inf" if value is None else f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _final_means(summaries, dataset, h, runs) -> str:
    """Panel title lines: each policy's mean NLL at accumulate's last generation, then at the last one."""
    lines = []
    for k in sorted({g for g, _ in runs.values()}):
        values = []
        for policy in POLICIES:
            mean = summaries[dataset, h, policy]["metrics"]["held_out_nll"]["mean"]
            if k < len(mean):
                values.append(f"{SHORT[policy]} {_number(mean[k])}")
        lines.append(f"k = {k}: " + ", ".join(values))
    return "\n".join(lines)


def _plain_log_labels(ax) -> None:
    """Tick labels of a log axis as plain numbers (1.5, 2, 300), the minor ticks labelled too when the
    panel spans less than a decade and a half (else it would show one or no label)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    low, high = ax.get_ylim()
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain if high / low < 30 else NullFormatter())
    ax.tick_params(axis="y", which="minor", labelsize=7)


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full", "quick", "smoke" or "paper" (module docstring; paper: `MODES["paper"]`)."""
    datasets, bandwidths, test_points, runs = MODES[mode]
    cells = {}
    for dataset in datasets:
        for h in bandwidths:
            for policy in POLICIES:
                generations, chains = runs[policy]
                config = dict(
                    dataset=dataset,
                    bandwidth=h,
                    policy=policy,
                    samples=SAMPLES,
                    generations=generations,
                    chains=chains,
                    test_points=test_points,
                    seed=0,
                )
                cells[dataset, h, policy] = ("kde", config, f"{out_dir}/{dataset}-h{h}-{policy}")
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    for (dataset, h, policy), summary in summaries.items():
        curves += curves_from_summary(NAME, f"{dataset} h={h} {policy} M={SAMPLES}", summary, ("held_out_nll",))

    rows, cols = len(datasets), len(bandwidths)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols + 0.6, 3.5 * rows + 1.2), squeeze=False)
    for r, dataset in enumerate(datasets):
        truth = summaries[dataset, bandwidths[0], POLICIES[0]]["metrics"]["held_out_nll"]["mean"][0]
        for c, h in enumerate(bandwidths):
            ax = axes[r, c]
            for policy in DRAW_ORDER:  # accumulate on top: it often lies under subsample's band
                summary = summaries[dataset, h, policy]
                plot_metric(ax, summary, "held_out_nll", label=policy, color=COLORS[policy], positive=True)
            end = runs["accumulate"][0]  # accumulate stops here: a dot marks its last point
            ax.plot(
                end,
                summaries[dataset, h, "accumulate"]["metrics"]["held_out_nll"]["mean"][-1],
                "o",
                ms=3.5,
                color=COLORS["accumulate"],
                zorder=3,
            )
            ax.axhline(truth, color="black", lw=0.9, linestyle=":", zorder=1.5)
            style_axes(
                ax,
                title=f"{dataset.replace('_', ' ')}, h = {h}\n" + _final_means(summaries, dataset, h, runs),
                ylabel="held-out NLL (nats)" if c == 0 else None,
                xlabel="generation k" if r == rows - 1 else "",
                logy=True,
            )
            ax.title.set_fontsize(9)
            _plain_log_labels(ax)
            ax.set_xlim(0, max(g for g, _ in runs.values()))
    handles = [
        Line2D([], [], color=COLORS[p], lw=1.6, label=f"{p}: {runs[p][0]} generations, {runs[p][1]} chains")
        for p in POLICIES
    ]
    handles += [
        Line2D([], [], color="black", lw=0.9, linestyle=":", label="true density (generation 0)"),
        Patch(color="0.5", alpha=0.4, label="95% band of the chain mean"),
        Patch(color="0.5", alpha=0.12, label="5-95% of chains"),
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=3,
        fontsize=9,
        bbox_to_anchor=(0.5, 0.035 if mode == "full" else 0.0),
        frameon=False,
    )
    if mode == "full":  # its numbers are the full run's
        import textwrap

        note = textwrap.fill(NOTE, int(fig.get_figwidth() * 13))
        fig.text(0.5, 0.003, note, ha="center", va="bottom", fontsize=8.5, color="0.15")
    title = (
        f"Recursive Gaussian KDE, fixed bandwidth h, M = {SAMPLES} points per generation: replace vs accumulate "
        f"vs accumulate-subsample\nheld-out NLL of {test_points} fresh real points per generation (panel titles: "
        "each policy's mean NLL at generation k)"
    )
    paths = finish_figure(fig, title, out_dir, NAME, bottom=(0.085 if mode == "full" else 0.06) if rows > 1 else 0.2)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    NAME, "Kazdan et al. 2024: recursive KDE of four 2-D datasets, replace vs accumulate vs subsample", run
)
