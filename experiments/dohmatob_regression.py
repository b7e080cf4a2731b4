"""Dohmatob, Feng & Kempe 2024 ("Model Collapse Demystified"): linear growth, changed scaling laws, and
adaptive regularisation, in recursive linear regression with a fresh design every generation.

Their figures show (a) the test error of a model trained after n generations of synthetic data growing
linearly in n, E_n = sigma^2 d/(T - d - 1) n for OLS (two-stage: a downstream model's error is its clean
error plus n sigma0^2 rho), and exponentially fast loss of signal for over-parameterised min-norm
interpolators (d > T); (b) under a power-law spectrum (capacity l_i = i^-beta, source condition r) the
downstream ridge error at the best lambda follows a fast scaling law in T on clean data but a slower
one, flattening into a plateau, with synthetic generations; (c) a ridge lambda that grows with the
number of synthetic generations n (adaptive regularisation) keeps the error bounded where the lambda
that is optimal on clean data lets it grow linearly.

Simulated (replace chains, fresh Gaussian design, w* drawn per chain; exact sufficient-statistic path
except the min-norm chain):
  (a) `excess_risk` of OLS chains, d = 32, T in {2d, 4d, 8d} = {64, 128, 256}, sigma^2 = 1 (theory exact,
      theory.md B.2); of min-norm chains d = 64, T = 32, sigma^2 in {0, 1} (exact, B.6: the mean weight
      is (T/d)^n w*, so a noiseless chain loses its signal geometrically and its error tends to ||w*||^2);
      and `downstream_excess_risk` of a ridge model (lambda = phi sigma'^2, phi = d/T' = 2/3) trained on
      T' = 48 fresh points labelled by the T = 128 chain's generation-n model (theory asymptotic, B.4).
  (b) power law beta = 2, source r = 0.5 (theory.ridge.power_law_spectrum / source_coefficients_sq),
      d = 32 (quick; 64 full), chain T0 = 2d, sigma0^2 = sigma'^2 = 0.1: the downstream ridge error at
      n in {0, 1, 5} against the downstream sample size T', at lambda*(T', n) from
      theory.ridge.optimal_ridge. The x axis is T', so each T' is its own cell (downstream_samples
      changes array shapes) and each (T', n) is its own cell (its own lambda); the point at (T', n) is
      that cell's chain mean at generation n with its 95% bar. Lines: optimal_ridge's E*(T', n) on a fine
      grid. With T0 fixed, the synthetic error acts like label noise that grows with T', so the n >= 1
      curves flatten to a plateau instead of following the clean rate (grey guide: T'^-2/3, the noisy
      clean rate 2 r beta / (2 r beta + 1) of theory.ridge.power_law_rate).
  (c) isotropic, d = 32, chain T0 = 64, downstream T' = 48, sigma0^2 = sigma'^2 = 0.25, ||w*||^2 = 1 in
      mean: ridgeless downstream OLS (exact), the clean optimum lambda*(0) = phi sigma'^2 fixed for every
      n, and the generation-aware lambda_n of theory.ridge.adaptive_ridge. One chain run has one scalar
      downstream_ridge, so the generation-aware choice is simulated as one cell per lambda_n, read at its
      own generation n (markers with 95% bars; faint lines: the same cells at every generation, each
      best near its own n). Theory for it: the B.4 total at lambda_n (theory.ridge.ridge_two_stage).
  (d) theory only: the fast -> slow crossover (theory.md B.5). Noiseless downstream labels, power law
      beta = 2, r = 0.5, d = 4000 >> T': the clean error at the best ridge falls like T'^-2 (fast);
      after n synthetic generations (sigma0^2 = 1e-4, T0 = 2d) it bends to T'^-2/3 (slow), from a T'
      near 1 / sigma_fake that falls as n grows.
The ridge theory is a deterministic equivalent with O(1/d) error: at d = 32 its curves can sit a few
standard errors from the simulation (report: "deviates (asymptotic)"), most at small T'.
"""

from __future__ import annotations

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes
from theory import ridge as ridge_theory

NAME = "dohmatob-regression"
NOISE_A = 1.0  # panel (a): chain and downstream label noise
DOWN_FACTOR = 1.5  # downstream T' = 1.5 d in panels (a) and (c)
BETA, SOURCE, NOISE_B = 2.0, 0.5, 0.1  # panel (b)
NOISE_C = 0.25  # panel (c)
# panel (d), theory only: d, chain noise, synthetic generations and downstream sizes of the crossover
CROSS_DIM, CROSS_NOISE, CROSS_N, CROSS_SIZES = 4000, 1e-4, (0, 1, 10, 100), (2.0, 1000.0)
COLORS_CROSS = ("#1f77b4", "#ff7f0e", "#d62728", "#8c564b")
COLORS_T = ("#d62728", "#1f77b4", "#2ca02c")
COLORS_N = {0: "#1f77b4", 1: "#ff7f0e", 5: "#d62728"}
DOWN = ("excess_risk", "downstream_excess_risk")

MODES = {
    # d, G: dimension and generations of panels (a) and (c); ols: OLS chains T = factor x d in (a) (the 4d one
    # carries the two-stage curve); minnorm: (d, T) and noise levels; power_*: panel (b); ridgeless: panel (c)
    "full": dict(
        d=32,
        G=20,
        chains=10_000,
        ols=(2, 4, 8),
        minnorm=(64, 32),
        minnorm_noises=(0.0, 1.0),
        minnorm_chains=4000,
        power_dim=64,
        power_sizes=(16, 32, 64, 128, 256, 512, 1024),
        power_n=(0, 1, 5),
        power_chains=2000,
        adaptive_n=(1, 2, 5, 10, 20),
        ridgeless=True,
    ),
    "quick": dict(
        d=32,
        G=10,
        chains=600,
        ols=(2, 4, 8),
        minnorm=(64, 32),
        minnorm_noises=(0.0, 1.0),
        minnorm_chains=300,
        power_dim=32,
        power_sizes=(8, 64, 512),
        power_n=(0, 1, 5),
        power_chains=500,
        adaptive_n=(1, 3, 10),
        ridgeless=True,
    ),
    # smoke: one cell per panel element (without the compilation cache every cell compiles)
    "smoke": dict(
        d=16,
        G=3,
        chains=64,
        ols=(4,),
        minnorm=(16, 8),
        minnorm_noises=(1.0,),
        minnorm_chains=64,
        power_dim=16,
        power_sizes=(64,),
        power_n=(1,),
        power_chains=64,
        adaptive_n=(1,),
        ridgeless=False,
    ),
}


# papers.md 4 gives no sizes (Gaussian simulations and kernel ridge on MNIST): full with more chains, and
# panel (b) at d = 128 (a smaller O(1/d) error of the deterministic equivalent) to T' = 2048
MODES["paper"] = dict(
    MODES["full"],
    chains=50_000,
    minnorm_chains=50_000,
    power_dim=128,
    power_sizes=(16, 32, 64, 128, 256, 512, 1024, 2048),
    power_chains=10_000,
)


def _chain_risk(n, noise, dim, samples):
    """Exact OLS replace chain excess risk after n fits (theory.md B.2)."""
    return np.asarray(n, float) * noise * dim / (samples - dim - 1)


def _power_law_optimum(dim: int, sizes, noise_var, chain) -> tuple[np.ndarray, np.ndarray]:
    """lambda*(T', n) and the downstream error there, each `(len(sizes), len(chain))`: theory.ridge's
    optimal_ridge at every downstream size T' in `sizes`, for the power law (BETA, SOURCE) in dimension
    `dim`, chain excess risks `chain` (one per n), in float64."""
    with jax.enable_x64(True):
        eig = ridge_theory.power_law_spectrum(dim, BETA)
        coef = ridge_theory.source_coefficients_sq(dim, BETA, SOURCE)
        pairs = [
            ridge_theory.optimal_ridge(
                eigenvalues=eig,
                weight_coefficients_sq=coef,
                downstream_samples=float(t),
                downstream_noise_var=noise_var,
                chain_excess_risk=chain,
            )
            for t in sizes
        ]
        return tuple(np.array([np.asarray(pair[k]) for pair in pairs]) for k in (0, 1))


def _crossover_panel(ax) -> None:
    """(d), theory only: the fast -> slow crossover of the scaling law (theory.md B.5). Noiseless
    downstream labels (sigma' = 0), power-law spectrum, T' << d: on clean data the error at the best ridge
    falls at the fast rate T'^-(2 r beta); after n synthetic generations (chain noise sigma0^2, T0 = 2d)
    the fake label noise sigma_fake^2 ~ n sigma0^2 turns it to the slow rate T'^-(2 r beta/(2 r beta + 1)),
    from a T' that falls as n grows. d = 4000 is out of reach of a simulation sweep here, so the panel
    draws the deterministic equivalent alone (ASYMPTOTIC, O(1/d))."""
    t0 = 2 * CROSS_DIM
    grid = np.geomspace(*CROSS_SIZES, 36)
    chain = _chain_risk(np.asarray(CROSS_N), CROSS_NOISE, CROSS_DIM, t0)
    _, best = _power_law_optimum(CROSS_DIM, grid, 0.0, chain)
    for i, (n, color) in enumerate(zip(CROSS_N, COLORS_CROSS)):
        label = "n = 0 (clean)" if n == 0 else rf"n = {n}: $\sigma_{{fake}}^2$ ~ {n * CROSS_NOISE:g}"
        ax.plot(grid, best[:, i], color=color, lw=1.2, linestyle="-.", label=label)
    fast = 2 * SOURCE * BETA
    slow = float(ridge_theory.power_law_rate(BETA, SOURCE))
    guides = (
        (fast, 0.5 * best[0, 0], 0, ":", f"guide: fast rate $T'^{{-{fast:g}}}$"),  # under the clean curve
        (slow, 2.0 * best[-1, 1], -1, "--", f"guide: slow rate $T'^{{-{slow:.2g}}}$"),  # over n = 1, at its end
    )
    for rate, level, at, style, text in guides:
        ax.plot(grid, level * (grid / grid[at]) ** -rate, color="0.6", lw=0.8, linestyle=style, label=text)
    style_axes(
        ax,
        title=(
            rf"(d) fast -> slow crossover, theory only: d={CROSS_DIM}, T0=2d, $\sigma'$=0, $\sigma_0^2$={CROSS_NOISE:g}"
        ),
        xlabel="downstream sample size T' (T' << d)",
        ylabel=r"downstream test error at $\lambda^*(T', n)$",
        logx=True,
        logy=True,
    )
    ax.legend(fontsize=7, loc="lower left", title="deterministic equivalent (B.4-B.5)", title_fontsize=7)


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full", "paper" (more chains, panel (b) at d = 128), "quick" (d = 32, fewer chains) or "smoke"
    (d = 16, 1-3 generations)."""
    p = MODES[mode]
    d, G = p["d"], p["G"]
    down = int(DOWN_FACTOR * d)  # T' of panels (a) and (c); >= d + 2
    base = dict(policy="replace", design="fresh", ridge=0.0, seed=0)
    # panels (a) and (c) share one program (d, G, T' fixed; samples, noise and ridges are traced)
    shared = dict(
        base, dim=d, method="sufficient", generations=G, chains=p["chains"], downstream_samples=down, metrics=DOWN
    )
    cells = {}
    sizes_a = tuple(f * d for f in p["ols"])
    lam_a = d / down * NOISE_A  # clean optimum phi sigma'^2 / ||w*||^2 (E||w*||^2 = 1)
    for t in sizes_a:
        cells["ols", t] = (
            "regression",
            dict(shared, samples=t, noise_var=NOISE_A, downstream_ridge=lam_a, downstream_noise_var=NOISE_A),
            f"{out_dir}/a-ols-T{t}",
        )
    md, mt = p["minnorm"]
    for noise in p["minnorm_noises"]:
        config = dict(
            base,
            dim=md,
            samples=mt,
            noise_var=noise,
            method="samples",
            generations=G,
            chains=p["minnorm_chains"],
            metrics=("excess_risk",),
        )
        cells["minnorm", noise] = ("regression", config, f"{out_dir}/a-minnorm-s{noise:g}")

    # panel (b): one cell per (T', n) at lambda*(T', n)
    pd_ = p["power_dim"]
    t0_b = 2 * pd_
    power_n = p["power_n"]
    chain_b = _chain_risk(power_n, NOISE_B, pd_, t0_b)
    lam_b = dict(zip(p["power_sizes"], _power_law_optimum(pd_, p["power_sizes"], NOISE_B, chain_b)[0]))
    for t in p["power_sizes"]:
        for i, n in enumerate(power_n):
            config = dict(
                base,
                dim=pd_,
                samples=t0_b,
                noise_var=NOISE_B,
                method="sufficient",
                generations=max(max(power_n), 1),
                chains=p["power_chains"],
                spectrum=f"power:{BETA:g}",
                true_weights=f"source:{SOURCE:g}",
                downstream_samples=t,
                downstream_ridge=float(lam_b[t][i]),
                downstream_noise_var=NOISE_B,
                metrics=("downstream_excess_risk",),
            )
            cells["power", t, n] = ("regression", config, f"{out_dir}/b-power-T{t}-n{n}")

    # panel (c): ridgeless, fixed clean optimum, and one cell per generation-aware lambda_n
    t0_c = 2 * d
    lam_c0 = d / down * NOISE_C
    adaptive_n = p["adaptive_n"]
    with jax.enable_x64(True):
        lam_adaptive = np.asarray(
            ridge_theory.adaptive_ridge(
                dim=d,
                downstream_samples=down,
                downstream_noise_var=NOISE_C,
                weight_norm_sq=1.0,
                chain_excess_risk=_chain_risk(np.arange(G + 1), NOISE_C, d, t0_c),
            )
        )
    ridges_c = ({"ridgeless": 0.0} if p["ridgeless"] else {}) | {"fixed": lam_c0}
    ridges_c |= {("adaptive", n): float(lam_adaptive[n]) for n in adaptive_n}
    for key, lam in ridges_c.items():
        tag = key if isinstance(key, str) else f"adaptive-n{key[1]}"
        cells["iso", key] = (
            "regression",
            dict(shared, samples=t0_c, noise_var=NOISE_C, downstream_ridge=lam, downstream_noise_var=NOISE_C),
            f"{out_dir}/c-{tag}",
        )

    summaries = simulate_cells(cells, progress=progress)
    curves = []
    for t in sizes_a:
        metrics = DOWN if t == 4 * d else ("excess_risk",)
        curves += curves_from_summary(
            NAME,
            f"(a) OLS d={d} T={t}" + (f", downstream ridge T'={down}" if t == 4 * d else ""),
            summaries["ols", t],
            metrics,
        )
    for noise in p["minnorm_noises"]:
        curves += curves_from_summary(
            NAME, f"(a) min-norm d={md} T={mt} sigma2={noise:g}", summaries["minnorm", noise], ("excess_risk",)
        )
    for t in p["power_sizes"]:
        for n in power_n:
            curves += curves_from_summary(
                NAME, f"(b) power d={pd_} T'={t} lambda*(n={n})", summaries["power", t, n], ("downstream_excess_risk",)
            )
    for key in ridges_c:
        label = key if isinstance(key, str) else f"adaptive lambda_{key[1]}"
        metrics = DOWN if key == "ridgeless" else ("downstream_excess_risk",)
        curves += curves_from_summary(NAME, f"(c) isotropic d={d} T'={down} {label}", summaries["iso", key], metrics)

    fig, axes = plt.subplots(2, 2, figsize=(14, 10.5))
    axes = axes.ravel()
    # (a)
    ax = axes[0]
    for t, color in zip(sizes_a, COLORS_T if len(sizes_a) > 1 else COLORS_T[1:]):
        plot_metric(ax, summaries["ols", t], "excess_risk", label=f"OLS chain, d={d}, T={t}", color=color, bands=False)
    for noise in p["minnorm_noises"]:
        plot_metric(
            ax,
            summaries["minnorm", noise],
            "excess_risk",
            color="#9467bd" if noise else "#8c564b",
            linestyle="-" if noise else "-.",
            bands=False,
            label=f"min-norm chain, d={md}, T={mt}" + ("" if noise == NOISE_A else f", $\\sigma^2$={noise:g}"),
        )
    plot_metric(
        ax,
        summaries["ols", 4 * d],
        "downstream_excess_risk",
        color="#17becf",
        linestyle="--",
        bands=False,
        label=f"two-stage: ridge ($\\lambda$={lam_a:.2g}, T'={down}) on the T={4 * d} chain",
    )
    style_axes(
        ax,
        title=f"(a) test error grows linearly in n ($\\sigma^2$ = {NOISE_A:g} unless noted)",
        xlabel="generation n",
        ylabel=r"test error $\|\hat w - w^*\|_\Sigma^2$",
    )
    ax.set_xlim(0, G)
    ax.set_ylim(0, None)
    ax.legend(fontsize=7, loc="upper left")
    # (b)
    ax = axes[1]
    grid = np.geomspace(min(p["power_sizes"]), max(p["power_sizes"]), 40)
    _, best = _power_law_optimum(pd_, grid, NOISE_B, chain_b)
    for i, n in enumerate(power_n):
        color = COLORS_N.get(n, "0.3")
        ax.plot(grid, best[:, i], color=color, lw=1.0, linestyle="-.")
        mean = np.array(
            [summaries["power", t, n]["metrics"]["downstream_excess_risk"]["mean"][n] for t in p["power_sizes"]]
        )
        se = np.array(
            [summaries["power", t, n]["metrics"]["downstream_excess_risk"]["se"][n] for t in p["power_sizes"]]
        )
        ax.errorbar(
            p["power_sizes"],
            mean,
            yerr=1.96 * se,
            color=color,
            marker="o",
            ms=4,
            lw=0,
            elinewidth=1.2,
            capsize=2,
            label=f"n = {n}" + (" (clean)" if n == 0 else ""),
        )
    rate = float(ridge_theory.power_law_rate(BETA, SOURCE))
    ax.plot(
        grid,
        best[0, 0] * (grid / grid[0]) ** -rate,
        color="0.6",
        lw=0.8,
        linestyle=":",
        label=f"guide: T'^-{rate:.2g} (the n = 0 rate, noisy labels)",
    )
    style_axes(
        ax,
        title=f"(b) power law $\\beta$={BETA:g}, r={SOURCE:g}, d={pd_}, T0={t0_b}: error at $\\lambda^*(T', n)$",
        xlabel="downstream sample size T'",
        ylabel="downstream test error",
        logx=True,
        logy=True,
    )
    ax.plot([], [], color="0.3", lw=1.0, linestyle="-.", label="dash-dot: deterministic equivalent (B.4)")
    ax.legend(fontsize=7, loc="lower left", title="synthetic generations", title_fontsize=7)
    # (c)
    ax = axes[2]
    if p["ridgeless"]:
        plot_metric(
            ax,
            summaries["iso", "ridgeless"],
            "downstream_excess_risk",
            label="ridgeless (OLS) downstream",
            color="#d62728",
            bands=False,
        )
    plot_metric(
        ax,
        summaries["iso", "fixed"],
        "downstream_excess_risk",
        color="#1f77b4",
        bands=False,
        label=f"fixed $\\lambda^*(0) = \\phi\\sigma^2$ = {lam_c0:.3g}",
    )
    g = np.arange(G + 1)
    with jax.enable_x64(True):
        adaptive_theory = np.array(
            [
                float(
                    ridge_theory.ridge_two_stage(
                        eigenvalues=np.ones(d),
                        weight_coefficients_sq=np.full(d, 1.0 / d),
                        ridge=float(lam_adaptive[n]),
                        downstream_samples=down,
                        downstream_noise_var=NOISE_C,
                        chain_excess_risk=float(_chain_risk(n, NOISE_C, d, t0_c)),
                    )["total"]
                )
                for n in g
            ]
        )
    ax.plot(g, adaptive_theory, color="#2ca02c", lw=1.0, linestyle="-.", label=r"theory at adaptive $\lambda_n$")
    ax.axhline(1.0, color="0.5", lw=0.8, linestyle=":", label=r"null predictor $w = 0$: $\|w^*\|^2 = 1$")
    points = [(0, summaries["iso", "fixed"])] + [(n, summaries["iso", ("adaptive", n)]) for n in adaptive_n]
    for _n, summary in points[1:]:
        entry = summary["metrics"]["downstream_excess_risk"]
        ax.plot(g, np.array(entry["mean"], float), color="#2ca02c", lw=0.6, alpha=0.35)
    mean = np.array([s["metrics"]["downstream_excess_risk"]["mean"][n] for n, s in points])
    se = np.array([s["metrics"]["downstream_excess_risk"]["se"][n] for n, s in points])
    ax.errorbar(
        [n for n, _ in points],
        mean,
        yerr=1.96 * se,
        color="#2ca02c",
        marker="o",
        ms=4,
        lw=0,
        elinewidth=1.2,
        capsize=2,
        label=r"adaptive $\lambda_n$ (cell per n, read at n)",
    )
    style_axes(
        ax,
        title=f"(c) adaptive regularisation: isotropic, d={d}, T0={t0_c}, T'={down}, $\\sigma^2$={NOISE_C:g}",
        xlabel="generation n",
        ylabel="downstream test error",
    )
    ax.set_xlim(0, G)
    ax.set_ylim(0, None)
    ax.legend(fontsize=7, loc="upper left")
    _crossover_panel(axes[3])
    title = (
        f"Model collapse demystified (regression, fresh design, replace): {p['chains']} chains per curve in (a) "
        f"and (c), {p['minnorm_chains']} for min-norm, {p['power_chains']} per point in (b)"
    )
    paths = finish_figure(fig, title, out_dir, NAME)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(NAME, "Dohmatob et al. 2024: linear growth, scaling-law change, adaptive ridge", run)
