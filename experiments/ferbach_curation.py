"""Ferbach, Bertrand, Bose & Gidel 2024 ("Self-consuming generative models with curated data provably
optimize human preferences"): curation by a reward.

Their claim: when each generation keeps, of K candidate samples, one chosen with Bradley-Terry
probabilities e^{r_j} / sum_i e^{r_i}, the loop maximises the expected reward; as K -> infinity the model
law moves as p_{t+1} proportional to p_t e^r, and mixing in real data keeps the loop stable.

Simulated (`--reward linear:A --best-of K --curation bradley-terry`, and `--curation tilted` for the
exact K -> infinity sampler), pool rule replace, 60 generations:
  top row, a 1-D Gaussian (M = 100, mean and variance refitted, ddof 1) with r(x) = A x, A = 0.03: the
    tilted law is N(mu + sigma^2 A, sigma^2), so without real data the mean moves by about sigma^2 A per
    generation; metrics expected_reward = A mu_k and mean_error_sq = (mu_k - mu_0)^2;
  bottom row, two categories with p = (0.739, 0.261) (zipf:1.5) and the reward r = (0, 0.2) on the rarer
    one, M = 100: metrics expected_reward (0.2 times the model's mass on category 2) and tv_distance.
Columns: (a, d) the reward for K in {1, 2, 4, 16} and K -> infinity without real data; (b, e) the reward
with real fractions alpha in {0, 0.1, 0.5} for K = 16 and K -> infinity; (c, f) the distance to the real
law for the curves of (b, e).

Theory: thin solid black lines are exact (our derivations): the tilted Gaussian chain without real data
(theory.gaussian.tilted_moments) and the two-category count chain for every K and alpha
(theory.discrete.curated_binary_distribution); the Gaussian under finite K has no closed form and is
simulation only. Grey dash-dot lines are infinite-sample limits (M -> infinity): the fitted Gaussian of
the tilted mixture (theory.gaussian.tilted_limit) and q_{k+1} = alpha p + (1 - alpha) pi_K(q_k) for two
categories, pi_K the curated choice probability.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import theory
from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "ferbach-curation"
SAMPLES = 100
GAUSSIAN_REWARD = 0.03
DISCRETE_LAW = "zipf:1.5"
DISCRETE_REWARD = (0.0, 0.2)
BEST_OF = (2, 4, 16)
FRACTIONS = (0.0, 0.1, 0.5)
INFINITE = "inf"
K_COLORS = {1: "0.5", 2: "#9ecae1", 4: "#4292c6", 16: "#08519c", INFINITE: "#d62728"}
ALPHA_STYLES = {0.0: "-", 0.1: "--", 0.5: ":"}
ALPHA_COLORS = {0.0: "#d62728", 0.1: "#ff7f0e", 0.5: "#2ca02c"}
METRICS = {"gaussian": ("expected_reward", "mean_error_sq"), "discrete": ("expected_reward", "tv_distance")}


def _curation(k) -> dict:
    if k == INFINITE:
        return dict(curation="tilted")
    return dict(best_of=k, curation="bradley-terry")


def _cells(out_dir: str, base: dict, mode: str) -> dict:
    settings = {
        "gaussian": dict(dim=1, ddof=1, reward=f"linear:{GAUSSIAN_REWARD}", metrics=",".join(METRICS["gaussian"])),
        "discrete": dict(
            categories=2,
            law=DISCRETE_LAW,
            reward="linear:" + ",".join(str(v) for v in DISCRETE_REWARD),
            metrics=",".join(METRICS["discrete"]),
        ),
    }
    ks = (1,) + (BEST_OF[-1:] if mode in ("smoke", "quick") else BEST_OF) + (INFINITE,)  # quick: compile-bound
    cells = {}
    for setting, options in settings.items():
        for alpha in FRACTIONS:
            for k in ks if alpha == 0 else (BEST_OF[-1], INFINITE):
                config = dict(base, **options, **_curation(k), real_fraction=alpha)
                cells[(setting, k, alpha)] = (setting, config, f"{out_dir}/{setting}-K{k}-alpha{alpha}")
    return cells


def _discrete_limit(k, alpha: float, generations: int) -> np.ndarray:
    """The infinite-sample mass on category 2 of models 0..G (q_{k+1} = alpha p + (1 - alpha) pi_K(q_k))."""
    p2 = float(theory.discrete.parse_law(DISCRETE_LAW, 2)[1])
    curation = "tilted" if k == INFINITE else "bradley-terry"
    q = [p2, p2]
    for _ in range(2, generations + 1):
        chosen = theory.discrete.curated_choice_probability(q[-1], DISCRETE_REWARD, 1 if k == INFINITE else k, curation)
        q.append(alpha * p2 + (1 - alpha) * float(chosen[0]))
    return np.asarray(q[: generations + 1])


def _limits(setting: str, k, alpha: float, generations: int) -> dict | None:
    """The M -> infinity curves of one cell, or None where none is drawn (a finite K on the Gaussian)."""
    if setting == "gaussian":
        if k != INFINITE:
            return None
        return theory.gaussian.tilted_limit([GAUSSIAN_REWARD], real_fraction=alpha, num_generations=generations)
    q = _discrete_limit(k, alpha, generations)
    p2 = q[0]
    return {"expected_reward": q * DISCRETE_REWARD[1] + (1 - q) * DISCRETE_REWARD[0], "tv_distance": np.abs(q - p2)}


def _label(k) -> str:
    if k == INFINITE:
        return "K -> inf (tilted)"
    return "K = 1 (no curation)" if k == 1 else f"K = {k} (Bradley-Terry)"


def run(out_dir: str, mode: str = "full", progress: bool = True):
    """mode: "full" (10 000 chains), "quick" (500; K in {1, 16, inf}), "smoke" (64 chains, 8 generations, K = 16 only) or
    "paper" (full's sizes with 50 000 chains: papers.md gives no sizes for this paper)."""
    generations = 8 if mode == "smoke" else 60
    chains = {"smoke": 64, "quick": 500, "full": 10_000, "paper": 50_000}[mode]
    base = dict(samples=SAMPLES, policy="replace", generations=generations, chains=chains, seed=0)
    base |= dict(method="auto")  # the exact sufficient path for K = 1 and the tilted limit, points for best-of-K
    cells = _cells(out_dir, base, mode)
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    for (setting, k, alpha), summary in summaries.items():
        label = f"{setting} K={k} alpha={alpha} M={SAMPLES}"
        curves += curves_from_summary(NAME, label, summary, METRICS[setting])

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    g = np.arange(generations + 1)
    names = {
        "gaussian": {
            "expected_reward": r"$E\,r = A\,E\mu_k$",
            "mean_error_sq": r"$E(\mu_k - \mu_0)^2$",
        },
        "discrete": {"expected_reward": r"$E\,r = 0.2\,E q_k(2)$", "tv_distance": "E TV(model, real law)"},
    }
    titles = {
        "gaussian": f"1-D Gaussian, r(x) = {GAUSSIAN_REWARD} x",
        "discrete": f"two categories {DISCRETE_LAW}, r = {DISCRETE_REWARD}",
    }
    letters = {"gaussian": "abc", "discrete": "def"}
    for row, setting in enumerate(("gaussian", "discrete")):
        reward, distance = METRICS[setting]
        ax = axes[row, 0]
        for (name, k, alpha), summary in summaries.items():
            if name != setting or alpha != 0:
                continue
            plot_metric(ax, summary, reward, label=_label(k), color=K_COLORS[k], bands=False)
            limit = _limits(setting, k, 0.0, generations)
            if limit is not None:
                ax.plot(g, limit[reward], color="0.55", lw=1.0, linestyle="-.")
        ax.plot([], [], color="0.55", lw=1.0, linestyle="-.", label="M -> inf limit")
        style_axes(
            ax, title=f"({letters[setting][0]}) {titles[setting]}: reward, no real data", ylabel=names[setting][reward]
        )
        ax.legend(fontsize=7, loc="best")
        for column, metric in ((1, reward), (2, distance)):
            ax = axes[row, column]
            for (name, k, alpha), summary in summaries.items():
                if name != setting or k not in (BEST_OF[-1], INFINITE):
                    continue
                color = ALPHA_COLORS[alpha] if k == INFINITE else K_COLORS[BEST_OF[-1]]
                label = f"alpha = {alpha}, {_label(k)}"
                plot_metric(
                    ax,
                    summary,
                    metric,
                    label=label,
                    color=color,
                    linestyle=ALPHA_STYLES[alpha],
                    bands=False,
                    positive=metric == "mean_error_sq",
                )
                limit = _limits(setting, k, alpha, generations)
                if limit is not None and k == INFINITE:
                    ax.plot(g, limit[metric], color="0.55", lw=1.0, linestyle="-.")
            ax.plot([], [], color="0.55", lw=1.0, linestyle="-.", label="M -> inf limit, K -> inf")
            what = "reward" if metric == reward else "distance to the real law"
            style_axes(
                ax,
                title=f"({letters[setting][column]}) {setting}: {what}, real fraction alpha",
                ylabel=names[setting][metric],
                logy=metric == "mean_error_sq",
            )
            if setting == "discrete":  # below the alpha = 0.1 plateau, above the alpha = 0.5 one
                ax.legend(fontsize=6, loc="lower left", bbox_to_anchor=(0.4, 0.13))
            else:
                ax.legend(fontsize=6.5, loc="best")
    title = (
        f"Curation by a reward (Ferbach et al. 2024): best-of-K with Bradley-Terry choice and its K -> inf limit, "
        f"replace, M = {SAMPLES}; thin black: exact theory (ours)"
    )
    paths = finish_figure(fig, title, out_dir, NAME)
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    NAME, "Ferbach et al. 2024: curation by a reward (Bradley-Terry best-of-K) maximises it; real data stabilise", run
)
