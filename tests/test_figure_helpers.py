"""The shared figure helpers of experiments/common.py: the footer's key describes only what a figure
draws, and `simulate_cells` keeps only a few compiled cells alive at a time."""

from __future__ import annotations

import threading

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from experiments import common


def _summary(theory_kind):
    generations = [0, 1, 2]
    return {
        "generations": generations,
        "metrics": {
            "m": {
                "mean": [1.0, 2.0, 3.0],
                "se": [0.1, 0.1, 0.1],
                "theory_kind": theory_kind,
                "theory": [1.0, 2.0, 3.0] if theory_kind else None,
                "checkable": [True, True, True] if theory_kind else None,
                "quantiles": {"0.05": [0.5, 1.5, 2.5], "0.5": [1.0, 2.0, 3.0], "0.95": [1.5, 2.5, 3.5]},
            }
        },
    }


@pytest.mark.parametrize(
    "theory_kind, present, absent",
    [
        ("exact", ["chain mean", "5-95%", "exact theory"], ["asymptotic"]),
        ("asymptotic", ["chain mean", "asymptotic"], ["exact theory"]),
        (None, ["chain mean", "5-95%"], ["exact theory", "asymptotic", "theory's median"]),
    ],
)
def test_the_footer_describes_only_what_the_figure_draws(theory_kind, present, absent):
    fig, ax = plt.subplots()
    common.plot_metric(ax, _summary(theory_kind), "m", label="curve", color="C0")
    key = common.figure_key(fig)
    plt.close(fig)
    assert all(text in key for text in present), key
    assert not any(text in key for text in absent), key


def test_a_figure_without_the_shared_encodings_has_an_empty_key():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], color="black", lw=2.0)  # black, but not the exact-theory style
    ax.errorbar([0, 1], [1, 2], yerr=[0.1, 0.1], fmt="o")
    assert common.figure_key(fig) == ""
    ax.plot([0, 1], [1, 0], color="0.5", lw=1.1, linestyle="-.")  # a limit drawn by hand in a nearby grey
    assert common.figure_key(fig) == "grey dash-dot: an asymptotic formula or limit"
    ax.plot([0, 1], [1, 0], color="C1", lw=1.0, linestyle="-.")  # coloured dash-dot adds nothing
    assert common.figure_key(fig) == "grey dash-dot: an asymptotic formula or limit"
    plt.close(fig)


def test_a_black_dotted_reference_line_is_not_called_the_theory_median():
    """A true value drawn black dotted (as the GMM and diffusion figures do) has the median's style but is
    not the theory's median: the key names the median only where `plot_metric` drew one."""
    fig, ax = plt.subplots()
    ax.axhline(1.0, color="black", lw=0.7, linestyle=":")
    assert "median" not in common.figure_key(fig)
    summary = _summary("exact")
    summary["metrics"]["m"]["checkable"] = [True, False, False]  # heavy tails: the medians are drawn
    summary["metrics"]["m"]["theory_quantiles"] = {"0.5": [1.0, 1.5, 2.0]}
    common.plot_metric(ax, summary, "m", label="curve", color="C0")
    assert "the theory's median" in common.figure_key(fig)
    plt.close(fig)


def test_simulate_cells_compiles_only_a_few_cells_ahead(monkeypatch, tmp_path):
    """Hundreds of cells must not hold hundreds of executables: at most workers + 1 are prepared and
    not yet finished at any time; summaries come back in the cells' order."""
    import importlib

    simulate = importlib.import_module("collapse_jax.simulate")  # the module, not the function

    lock, live, peak = threading.Lock(), [0], [0]

    def prepare(setting, config):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        return config, object()

    def finish(setting, config, run, out):
        with lock:
            live[0] -= 1
        return {"num_chains": config["chains"], "samples": config["samples"]}

    monkeypatch.setattr(simulate, "prepare", prepare)
    monkeypatch.setattr(simulate, "finish", finish)
    cells = {
        n: ("gaussian", dict(samples=n, chains=4, generations=2), str(tmp_path / str(n)))
        for n in (12, 5, 40, 7, 9, 30, 11, 6, 8, 10, 20, 13)
    }
    summaries = common.simulate_cells(cells, workers=2)
    assert list(summaries) == list(cells)
    assert [s["samples"] for s in summaries.values()] == list(cells)
    assert 1 <= peak[0] <= 3, peak[0]
