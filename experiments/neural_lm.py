"""A tiny language model trained on its predecessors' text (the TinyStories experiment of Gerstgrasser
et al. 2024 in miniature), on a Zipfian Markov language whose law is known exactly.

(a) cross-entropy on fresh real text (nats per token): it rises under replace and stays flat under
    accumulate, as the paper's language models do; subsample lies in between. Solid: a small causal
    transformer; dashed: the bigram count model (the maximum-likelihood estimator of this language).
(b) KL from the true language to the model (per token, estimated on real text; 0 at generation 0).
(c) share of transitions in the model's own text that are rare (rank > V/2 in their row); the dotted
    line is the real language's. The bigram's mean tail mass is preserved in expectation (its fit is
    unbiased) while its support shrinks; the under-trained transformer instead spreads mass, so its
    tail share grows as its KL grows.
(d) the bigram's first-token support: its first tokens are an empirical law refitted on its own draws,
    the discrete setting's Wright-Fisher chain (theory.discrete, exact, thin solid black), checked curve by curve.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from experiments.common import curves_from_summary, finish_figure, plot_metric, simulate_cells, style_axes

NAME = "neural-lm"
POLICIES = {"replace": "#d62728", "accumulate": "#2ca02c", "accumulate-subsample": "#1f77b4"}
LANGUAGE = dict(task="lm", vocab=24, context=12, zipf=1.2)
MODES = {
    # within the CPU budget (the whole gallery in an hour): three transformer cells of 12 chains x 6 generations
    "full": dict(
        transformer=dict(chains=12, generations=6, samples=2048, steps=400, test_size=1024),
        bigram=dict(chains=2000, generations=6),
        support=dict(chains=4000, generations=60, samples=200),
    ),
    # for an accelerator: a wider, deeper transformer trained longer (Gerstgrasser et al.'s TinyStories models
    # are out of scope; papers.md 1)
    "paper": dict(
        transformer=dict(chains=64, generations=10, samples=4096, steps=1000, width=64, depth=2, test_size=1024),
        bigram=dict(chains=2000, generations=10),
        support=dict(chains=4000, generations=60, samples=200),
    ),
    "quick": dict(
        transformer=dict(chains=4, generations=3, samples=1536, steps=150, test_size=192),
        transformer_policies=("replace", "accumulate"),  # compile-bound: each transformer is a costly program
        bigram=dict(chains=200, generations=3),
        support=dict(chains=1000, generations=30, samples=200),
    ),
    "smoke": dict(
        transformer=dict(chains=2, generations=2, samples=64, steps=5, test_size=32),
        bigram=dict(chains=4, generations=2),
        support=dict(chains=16, generations=3, samples=20),
    ),
}


def run(out_dir: str, mode: str = "full", progress: bool = True):
    m = MODES[mode]
    cells = {}
    for policy in POLICIES:
        if policy in m.get("transformer_policies", POLICIES):
            cells["transformer", policy] = (
                "neural",
                {**LANGUAGE, **m["transformer"], "policy": policy, "seed": 0},
                f"{out_dir}/transformer_{policy}",
            )
        bigram = {
            **LANGUAGE,
            "model": "bigram",
            "samples": m["transformer"]["samples"],
            "seed": 0,
            "test_size": m["transformer"]["test_size"],
        }
        cells["bigram", policy] = ("neural", {**bigram, **m["bigram"], "policy": policy}, f"{out_dir}/bigram_{policy}")
        if policy != "accumulate-subsample":
            cells["support", policy] = (
                "neural",
                {**bigram, **m["support"], "policy": policy, "seed": 1, "metrics": ["first_token_support"]},
                f"{out_dir}/bigram_support_{policy}",
            )
    summaries = simulate_cells(cells, progress=progress)
    curves = []
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    axes = axes.ravel()
    for (model, policy), summary in summaries.items():
        color = POLICIES[policy]
        if model == "support":
            curves += curves_from_summary(NAME, f"bigram support {policy}", summary, ("first_token_support",))
            plot_metric(
                axes[3], summary, "first_token_support", label=f"{policy} (M={m['support']['samples']})", color=color
            )
            continue
        style = "-" if model == "transformer" else "--"
        label = f"{model} {policy}"
        names = ("cross_entropy", "kl_to_true", "rare_transition_mass", "rare_token_mass")
        curves += curves_from_summary(NAME, label, summary, names)
        for ax, metric in zip(axes[:3], names):
            plot_metric(ax, summary, metric, label=label, color=color, linestyle=style, bands=model == "transformer")
    real_tail = summaries["bigram", "replace"]["metrics"]["rare_transition_mass"]["mean"][0]
    real_line = axes[2].axhline(real_tail, color="0.4", lw=1.0, linestyle=":", label="real text")
    style_axes(axes[0], title="(a) cross-entropy on real text", ylabel="nats per token")
    style_axes(axes[1], title="(b) KL(true language || model)", ylabel="nats per token")
    style_axes(axes[2], title="(c) rare transitions in the model's own text", ylabel="share of transitions")
    style_axes(
        axes[3], title="(d) bigram first-token support vs Wright-Fisher theory", ylabel="tokens with positive count"
    )
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    # one legend for (a)-(c), which draw the same six curves: solid transformer, dashed bigram
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].legend(handles, labels, fontsize=8, loc="upper left", ncol=2)
    axes[2].legend([real_line], ["real text"], fontsize=8, loc="upper left")
    axes[3].legend(fontsize=8, loc="upper right")
    t = m["transformer"]
    paths = finish_figure(
        fig,
        f"Tiny language model (V={LANGUAGE['vocab']}, L={LANGUAGE['context']}, "
        f"M={t['samples']} sequences per generation): replace degrades, accumulate does not",
        out_dir,
        NAME,
    )
    return curves, paths


from experiments import Experiment  # noqa: E402

EXPERIMENT = Experiment(NAME, "Tiny transformer and bigram language models on their own text", run)
