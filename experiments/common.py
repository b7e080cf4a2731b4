"""Shared pieces of the figure experiments: curve records, plotting style, the agreement report."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from collapse_jax.summary import compare, verdict_text


@dataclasses.dataclass
class Curve:
    """One simulated curve of a figure and its comparison with theory."""

    experiment: str
    label: str
    metric: str
    verdict: dict


def curves_from_summary(experiment: str, label: str, summary: dict, metrics) -> list[Curve]:
    return [Curve(experiment, label, m, compare(summary["metrics"][m])) for m in metrics]


def simulate_cells(cells: dict, *, progress: bool = False, workers: int = 2) -> dict:
    """Run `{name: (setting, config, out_dir)}` cells and return `{name: summary}`.

    Programs are compiled two at a time in threads (XLA compiles in C++ without the Python lock, and
    compiling is most of a quick figure's time); they are then executed one after another, because
    concurrent executions on one CPU device can deadlock in the XLA CPU runtime.
    """
    import time
    from concurrent.futures import ThreadPoolExecutor

    from collapse_jax.simulate import finish, prepare

    start = time.perf_counter()
    # Cells that differ only in traced parameters (e.g. the regression's noise_var, ridge, downstream_ridge)
    # compile to the same program. Compile one cell of each program first and the others after all of
    # those are done, so that with the on-disk compilation cache (enabled by the command line) the
    # others are cache hits instead of being compiled concurrently by the other thread.
    first, rest = {}, []
    for name, (setting, config, _) in cells.items():
        key = _program_key(setting, config)
        if key in first.values():
            rest.append(name)
        else:
            first[name] = key
    prepared = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for names in (list(first), rest):
            prepared |= dict(zip(names, pool.map(lambda name: prepare(cells[name][0], cells[name][1]), names)))
    summaries = {}
    for done, (name, (setting, _, out)) in enumerate(cells.items(), 1):
        config, run = prepared[name]
        summaries[name] = finish(setting, config, run, out=out)
        if progress:
            elapsed = time.perf_counter() - start
            print(
                f"  [{done}/{len(cells)}] {os.path.relpath(out)} ({summaries[name]['num_chains']} chains) "
                f"elapsed {elapsed:.0f} s",
                flush=True,
            )
    return summaries


def _program_key(setting: str, config: dict) -> tuple:
    """Cells with equal keys compile to the same program (`program_key`; the chain count is kept, as it
    can set the chunk shape)."""
    from collapse_jax.settings import get_setting

    definition = get_setting(setting)
    resolved = definition.resolve(config)
    return setting, definition.program_key(resolved), resolved["chains"]


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def plot_metric(
    ax,
    summary: dict,
    metric: str,
    *,
    label: str,
    color,
    linestyle="-",
    bands=True,
    theory=True,
    transform=None,
    positive=False,
):
    """Chain mean with its 95% band (mean +- 1.96 SE), the 5-95% band of the chains, theory as a line.

    Theory is solid where the mean is checkable and dotted where heavy tails make the sample mean
    uninformative (see theory.common.checkable). `positive`: the metric is non-negative and drawn on a
    log axis, so band edges below zero are drawn at the axis floor instead of being dropped.
    """
    entry = summary["metrics"][metric]
    g = np.asarray(summary["generations"])
    f = transform or (lambda x: x)
    mean, se = _array(entry["mean"]), _array(entry["se"])
    # on a log axis, an SE band edge at or below zero is drawn three decades under the mean (off the chart)
    floor = (lambda lo: np.maximum(lo, 1e-3 * mean)) if positive else (lambda lo: lo)
    ax.plot(g, f(mean), color=color, linestyle=linestyle, lw=1.4, label=label)
    ax.fill_between(g, f(floor(mean - 1.96 * se)), f(mean + 1.96 * se), color=color, alpha=0.35, lw=0)
    if bands and entry["quantiles"]:
        lo, hi = _array(entry["quantiles"]["0.05"]), _array(entry["quantiles"]["0.95"])
        ax.fill_between(g, f(lo), f(hi), color=color, alpha=0.08, lw=0)
    if theory and entry["theory_kind"] is not None:
        t = _array(entry["theory"])
        checkable = np.asarray(entry["checkable"] or [True] * len(g), bool)
        solid = np.where(checkable, f(t), np.nan)
        dotted = np.where(~checkable | np.roll(~checkable, -1), f(t), np.nan)
        ax.plot(g, solid, color="black", lw=0.9, linestyle="--")
        ax.plot(g, dotted, color="black", lw=0.9, linestyle=":")


def plot_final_means(ax, summaries: list[dict], xs, metric: str, *, color) -> None:
    """Each summary's chain mean of `metric` at its last generation against `xs` (a swept parameter),
    with 95% bars (mean +- 1.96 SE)."""
    mean = np.array([s["metrics"][metric]["mean"][-1] for s in summaries], float)
    se = np.array([s["metrics"][metric]["se"][-1] for s in summaries], float)
    ax.errorbar(xs, mean, yerr=1.96 * se, fmt="s", ms=3.5, color=color, capsize=2, lw=1)


def style_axes(ax, *, title=None, xlabel="generation", ylabel=None, logy=False, logx=False):
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.25, lw=0.5)


def finish_figure(fig, title: str, out_dir: str, name: str) -> list[str]:
    """Title, the band legend, layout; save as PNG and PDF under `out_dir`, close; return the paths."""
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=11)
    fig.text(
        0.01,
        0.005,
        "line: chain mean; dark band: mean +- 1.96 SE; light band: 5-95% of chains; "
        "black dashed: theory (dotted where the mean is not checkable by simulation)",
        fontsize=7,
        color="0.3",
    )
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = os.path.join(out_dir, f"{name}.{ext}")
        fig.savefig(path, dpi=130 if ext == "png" else None, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def report_markdown(curves: list[Curve], figures: dict[str, list[str]], out_dir: str, k: float) -> str:
    lines = [
        "# collapse-jax reproduction report",
        "",
        "Each curve's chain mean is compared with theory at every checkable generation; the largest",
        f"|simulation - theory| is given in standard errors of the chain mean (pass: <= {k:g} SE).",
        "'not checkable by simulation': the metric is a heavy-tailed product of chi-squares there, so a",
        "sample mean over the chains does not estimate its expectation (see docs/theory.md, 'Heavy tails').",
        "Non-finite chains are always counted: a curve whose chains went non-finite (NaN, or an infinity the",
        "theory does not give) at a generation where theory has a value fails ('fail: k of C chains",
        "non-finite from generation g', k the most at any one generation); infinities that are the exact",
        "value (the theory's own -inf, or one the metric takes by definition, e.g. KL = +inf for a singular",
        "covariance) are named with their reason instead.",
        "",
        "| experiment | curve | metric | status | max abs(sim - theory) / SE | at generation | generations compared | not checkable |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in curves:
        v = c.verdict
        status = verdict_text(
            {**v, "status": {"not checkable": "not checkable by simulation"}.get(v["status"], v["status"])},
            with_z=False,
        ).replace("|", "\\|")
        z = "" if v["max_z"] is None else f"{v['max_z']:.2f}"
        at = "" if v["at_generation"] is None else str(v["at_generation"])
        lines.append(
            f"| {c.experiment} | {c.label} | {c.metric} | {status} | {z} | {at} | {v['compared']} | {v['not_checkable']} |"
        )
    lines += ["", "## Figures", ""]
    for name, paths in figures.items():
        for p in paths:
            if p.endswith(".png"):
                lines.append(f"![{name}]({os.path.relpath(p, out_dir)})")
    failed = [c for c in curves if c.verdict["status"] == "fail"]
    nonfinite = [c for c in curves if c.verdict.get("nonfinite_chains_max")]
    lines += [
        "",
        f"**{len(curves)} curves, {len(failed)} failed, {len(nonfinite)} with unexplained non-finite chains.**",
        "",
    ]
    return "\n".join(lines)
