"""Dohmatob et al. 2024 ("Strong Model Collapse"): a constant share of synthetic data leaves an error
floor that more data does not remove; larger models amplify it. Kazdan et al. 2024: with few real
points some synthetic data helps, with many it only hurts (cardinality vs proportion).

Setting (theory.md C; `collapse-jax simulate mixture`): x ~ N(0, I_d), real labels x.w1 + noise,
synthetic labels x.w2 + noise with ||w2 - w1|| = c (random directions per chain, ||w1|| = 1); the fit
sees N points, a share q of them synthetic. Metric: test_error = ||w_hat - w1||^2.

(a) OLS, d = 10, sigma^2 = 1, c = 1: test error against N for several q, the paper's q = 1/1000 among
    them. Theory (exact finite-N formula, theory.strong_collapse) as lines, continued to N = 10^8 in a
    shaded region where only theory is drawn; the floor q^2 c^2 dotted: for q > 0 the error stops
    falling (q = 1/1000 reaches its floor 10^-6 only near N = 10^7, out of reach of the simulation).
(b) random-projection model of width m, d = 60, q = 0.3, sigma^2 = 0.25, c = 5: error against m at
    N = 40 and N = 2000. Exact finite-N theory where N >= min(m, d) + 2; grey dash-dot: the N -> infinity
    formula (1 - m/d) + q^2 (m/d) c^2 (theory.md C.3), which grows with m: a larger model copies more of
    the synthetic shift. At N = 40 the min-norm fit peaks at the interpolation threshold m = N and falls
    after it, six widths past the threshold (double descent in width; simulation only there: no closed
    form is derived past the threshold).
(c) real x synthetic counts (OLS, d = 10, sigma^2 = 1, c = 1): the exact test error surface (colour,
    log scale) and, per real count, the synthetic count that minimises it (white line); simulated cells
    as circles whose colour is the simulated error. With 20 real points about 20 synthetic ones help;
    from about 100 real points on, any synthetic share hurts.
(d) the same grid for a Gaussian (d = 5, MLE): model 1 is fitted on the real points, model 2 on those
    same points plus synthetic ones drawn from model 1 (`--first-samples`, `--real-source original`);
    metric KL(truth || model 2), the expected test NLL above its minimum (simulation only). Synthetic
    points drawn from a fit of the same real data carry no new information: adding them never helps, and
    very many of them bring model 2 back to model 1.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from experiments.common import LIMIT_STYLE, curves_from_summary, finish_figure, simulate_cells, style_axes
from theory import strong_collapse as theory

NAME = "dohmatob-strong-collapse"
COLORS = ("#1f77b4", "#9467bd", "#2ca02c", "#ff7f0e", "#d62728")
THEORY_SIZE = 10**8  # panel (a): exact theory continues to this N, past the simulated sizes
GAUSS_DIM = 5  # panel (d)
WIDTH_SHIFT = 5.0  # panel (b): q^2 c^2 = 2.25 > ||w1||^2 = 1, so the infinite-data error grows with m
MODES = {
    "full": dict(
        chains=1500,  # standard errors below 1 % of most means (5 % at most); paper: 20 000
        sizes=(20, 40, 100, 300, 1000, 3000, 10000),
        shares=(0.0, 0.001, 0.02, 0.1, 0.3),
        widths=(5, 10, 20, 30, 34, 36, 38, 42, 44, 46, 50, 55, 60),
        real=(20, 40, 100, 400),
        synthetic=(0, 10, 30, 100, 300),
        gauss_real=(10, 20, 50, 200),
        gauss_synthetic=(0, 10, 30, 100, 300, 1000),
    ),
    # the paper's share 1/1000 simulated to N = 10^6 (its floor 10^-6 is near reach there); papers.md 7 gives no
    # sizes for its Gaussian model (its experiments are MNIST and GPT-2), so the rest is full with more chains
    "paper": dict(
        chains=20_000,
        sizes=(20, 40, 100, 300, 1000, 3000, 10_000, 100_000, 1_000_000),
        shares=(0.0, 0.001, 0.02, 0.1, 0.3),
        widths=(5, 10, 20, 30, 34, 36, 38, 42, 44, 46, 50, 55, 60),
        real=(20, 40, 100, 400, 1000),
        synthetic=(0, 10, 30, 100, 300, 1000),
        gauss_real=(10, 20, 50, 200),
        gauss_synthetic=(0, 10, 30, 100, 300, 1000),
    ),
    "quick": dict(
        chains=500,
        sizes=(20, 1000),  # quick is compile-bound: every sample size is a program
        shares=(0.0, 0.001, 0.3),
        widths=(5, 36, 60),
        real=(20, 100),
        synthetic=(0, 100),
        gauss_real=(10, 100),
        gauss_synthetic=(0, 1000),
    ),
    "smoke": dict(
        chains=16,
        sizes=(20,),
        shares=(0.1,),
        widths=(5,),
        real=(20,),
        synthetic=(10,),
        gauss_real=(10,),
        gauss_synthetic=(5,),
    ),
}


def _mixture(n_real: int, n_synthetic: int) -> dict:
    n = n_real + n_synthetic
    return dict(samples=n, synthetic_fraction=n_synthetic / n)


def run(out_dir: str, mode: str = "full", progress: bool = True):
    m = MODES[mode]
    base = dict(chains=m["chains"], seed=0, noise_var=1.0, shift=1.0, dim=10)
    cells = {
        ("floor", q, n): ("mixture", dict(base, samples=n, synthetic_fraction=q), f"{out_dir}/floor/q{q:g}_N{n}")
        for q in m["shares"]
        for n in m["sizes"]
    }
    for n in (40, 2000):
        for width in m["widths"]:
            config = dict(
                base,
                dim=60,
                samples=n,
                synthetic_fraction=0.3,
                noise_var=0.25,
                shift=WIDTH_SHIFT,
                model=f"projection:{width}",
            )
            cells[("width", n, width)] = ("mixture", config, f"{out_dir}/width/N{n}_m{width}")
    for n_real in m["real"]:
        for n_synthetic in m["synthetic"]:
            cells[("grid", n_real, n_synthetic)] = (
                "mixture",
                dict(base, **_mixture(n_real, n_synthetic)),
                f"{out_dir}/grid/real{n_real}_synthetic{n_synthetic}",
            )
    for n_real in m["gauss_real"]:
        for n_synthetic in m["gauss_synthetic"]:
            n = n_real + n_synthetic
            config = dict(
                dim=GAUSS_DIM,
                ddof=0,
                samples=n,
                first_samples=n_real,
                real_fraction=n_real / n,
                real_source="original",
                generations=2,
                chains=m["chains"],
                seed=0,
                metrics="kl_divergence",
            )
            cells[("gauss", n_real, n_synthetic)] = (
                "gaussian",
                config,
                f"{out_dir}/gaussian_grid/real{n_real}_synthetic{n_synthetic}",
            )
    summaries = simulate_cells(cells, progress=progress)

    def point(key, metric="test_error"):
        entry = summaries[key]["metrics"][metric]
        return entry["mean"][2], entry["se"][2]

    curves = []
    for key, summary in summaries.items():
        curves += curves_from_summary(
            NAME, " ".join(map(str, key)), summary, ("kl_divergence",) if key[0] == "gauss" else ("test_error",)
        )
    fig, axes = plt.subplots(2, 2, figsize=(13, 10.5))
    axes = axes.ravel()

    ax = axes[0]
    fine = np.unique(np.geomspace(14, THEORY_SIZE, 160).astype(int))
    simulated_to = max(m["sizes"]) * 1.5
    ax.axvspan(simulated_to, THEORY_SIZE, color="0.93", lw=0, zorder=0)
    ax.text(
        np.sqrt(simulated_to * THEORY_SIZE),
        3.0,
        "exact theory only\n(beyond the simulation)",
        ha="center",
        va="top",
        fontsize=8,
        color="0.35",
    )
    for q, color in zip(m["shares"], COLORS):
        values = np.array([point(("floor", q, n)) for n in m["sizes"]])
        ax.errorbar(
            m["sizes"],
            values[:, 0],
            yerr=1.96 * values[:, 1],
            fmt="o",
            ms=4,
            color=color,
            capsize=2,
            label=f"q = {q:g}",
        )
        exact = [theory.ols_mixture_error_exact(10, n, n - int(np.floor((1 - q) * n + 0.5)), 1.0, 1.0) for n in fine]
        ax.plot(fine, exact, color=color, lw=0.9)
        if q > 0:
            ax.axhline(theory.synthetic_floor(q, 1.0), color=color, lw=0.8, linestyle=":")
    ax.plot([], [], color="0.3", lw=0.9, label="exact theory (finite N)")
    ax.plot([], [], color="0.3", lw=0.8, linestyle=":", label="floor q^2 c^2 (N -> infinity)")
    style_axes(
        ax,
        title="(a) OLS on a mix: any share q > 0 leaves the floor q^2 c^2 (dotted)",
        xlabel="training points N",
        ylabel="test error ||w - w1||^2",
        logx=True,
        logy=True,
    )
    ax.set_ylim(5e-8, 5)
    ax.legend(fontsize=7.5, loc="lower left", ncol=2)

    ax = axes[1]
    for n, color in zip((40, 2000), ("#d62728", "#1f77b4")):
        values = np.array([point(("width", n, w)) for w in m["widths"]])
        ax.errorbar(
            m["widths"],
            values[:, 0],
            yerr=1.96 * values[:, 1],
            fmt="o",
            ms=4,
            color=color,
            capsize=2,
            label=f"simulation, N = {n}",
        )
        widths = np.arange(1, 61)
        exact = [
            theory.projection_mixture_error(60, w, n, n - int(np.floor(0.7 * n + 0.5)), 0.25, WIDTH_SHIFT)
            if n >= min(w, 60) + 2
            else np.nan
            for w in widths
        ]
        ax.plot(widths, exact, color=color, lw=1.0, label=f"exact theory, N = {n}")
    ax.plot(
        np.arange(1, 61),
        [theory.projection_limit(60, w, 0.3, WIDTH_SHIFT) for w in range(1, 61)],
        **LIMIT_STYLE,
        label="N -> infinity (theory.md C.3)",
    )
    ax.axvline(40, color="0.6", lw=0.6, linestyle=":")
    ax.text(40.5, 1.05, "m = N = 40", fontsize=7, color="0.4")
    style_axes(
        ax,
        title=f"(b) width m (d = 60, q = 0.3, c = {WIDTH_SHIFT:g}): N = 40 peaks at m = N, then descends",
        xlabel="width m",
        ylabel="test error",
        logy=True,
    )
    ax.legend(fontsize=7)

    ax = axes[2]
    real = np.unique(np.geomspace(20, 1000, 40).astype(int))
    synthetic = np.unique(np.concatenate([[0], np.geomspace(1, 3000, 50).astype(int)]))
    surface = np.array([[theory.ols_mixture_error_exact(10, r + s, s, 1.0, 1.0) for r in real] for s in synthetic])
    shown = synthetic + 1  # log axis: one more than the synthetic count
    mesh = ax.pcolormesh(
        real, shown, surface, norm=LogNorm(vmin=surface.min(), vmax=1.0), shading="nearest", cmap="viridis"
    )
    ax.plot(real, shown[np.argmin(surface, axis=0)], color="white", lw=1.5, label="theory: best synthetic count")
    for n_real in m["real"]:
        for n_synthetic in m["synthetic"]:
            value, _ = point(("grid", n_real, n_synthetic))
            ax.scatter(
                [n_real],
                [n_synthetic + 1],
                c=[value],
                norm=mesh.norm,
                cmap="viridis",
                s=70,
                edgecolors="white",
                linewidths=1.0,
            )
        best = min(m["synthetic"], key=lambda s: point(("grid", n_real, s))[0])
        ax.scatter([n_real], [best + 1], marker="x", color="red", s=50, zorder=3)
    ax.scatter([], [], marker="x", color="red", label="simulation: best of the simulated counts")
    fig.colorbar(mesh, ax=ax, label="test error")
    style_axes(
        ax,
        title="(c) real x synthetic counts (d = 10, sigma^2 = 1, c = 1)",
        xlabel="real points",
        ylabel="synthetic points + 1",
        logx=True,
        logy=True,
    )
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[3]
    grid = np.array(
        [[point(("gauss", r, n), "kl_divergence")[0] for r in m["gauss_real"]] for n in m["gauss_synthetic"]]
    )
    image = ax.imshow(grid, origin="lower", cmap="viridis", norm=LogNorm(), aspect="auto")
    for i, n in enumerate(m["gauss_synthetic"]):
        for j, r in enumerate(m["gauss_real"]):
            mean, se = point(("gauss", r, n), "kl_divergence")
            ax.text(j, i, f"{mean:.3g}\n+-{1.96 * se:.2g}", ha="center", va="center", fontsize=7, color="white")
    best = np.argmin(grid, axis=0)
    ax.plot(np.arange(len(m["gauss_real"])), best - 0.3, "r^", ms=7)  # under the cell's numbers
    ax.set_xticks(range(len(m["gauss_real"])), [str(r) for r in m["gauss_real"]])
    ax.set_yticks(range(len(m["gauss_synthetic"])), [str(n) for n in m["gauss_synthetic"]])
    fig.colorbar(image, ax=ax, label="KL(truth || model 2)")
    ax.set_xlabel("real points (model 1 fitted on them; reused by model 2)")
    ax.set_ylabel("synthetic points from model 1")
    ax.set_title(
        f"(d) Gaussian, d = {GAUSS_DIM} (MLE), simulation only; red triangle: the best synthetic count", fontsize=10
    )
    paths = finish_figure(
        fig,
        f"Strong model collapse: a synthetic share leaves a floor ({m['chains']} chains per "
        "point; markers: simulation with 95% bars; lines: exact theory)",
        out_dir,
        NAME,
    )
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(NAME, "Strong model collapse: the floor, width amplification, real x synthetic counts", run)
