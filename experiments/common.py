"""Shared pieces of the figure experiments: curve records, plotting style, the agreement report."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from collapse_jax.summary import compare, verdict_text


@dataclasses.dataclass
class Curve:
    """One simulated curve of a figure and its comparison with theory.

    generations: the points of the curve (generations 0..G: G + 1), of which `verdict["compared"]` were
    compared; run: the identity of the run that made it (setting and resolved configuration, seed and
    chains included), so that one run drawn twice (e.g. M_k = 100 k^0 beside M = 100) is counted once;
    theory_kind: what the chain mean was compared with ("exact", "asymptotic", ...; None without theory).
    """

    experiment: str
    label: str
    metric: str
    verdict: dict
    generations: int | None = None
    run: str | None = None
    theory_kind: str | None = None


def run_identity(summary: dict) -> str:
    """The setting and resolved configuration of a summary, as a string (the output folder left out)."""
    import json

    config = {k: v for k, v in summary.get("config", {}).items() if k != "out"}
    return json.dumps({"setting": summary.get("setting"), **config}, sort_keys=True, default=str)


def curves_from_summary(experiment: str, label: str, summary: dict, metrics) -> list[Curve]:
    run = run_identity(summary)
    count = len(summary.get("generations", ())) or None
    return [
        Curve(
            experiment,
            label,
            m,
            compare(summary["metrics"][m]),
            generations=count,
            run=run,
            theory_kind=summary["metrics"][m].get("theory_kind"),
        )
        for m in metrics
    ]


STAMP: dict = {}  # set by `reproduce` while an experiment runs: printed in its figures' footer
RESUME = {"on": False}  # set by `reproduce(resume=True)`: cells whose summary.json matches are not rerun


def finished_summary(setting: str, config: dict, out: str) -> dict | None:
    """The summary a previous run wrote to `out`, if it ran exactly this setting and resolved configuration
    (seed and chains included); None otherwise (missing, unreadable or different)."""
    import json

    from collapse_jax.settings import get_setting

    path = os.path.join(out, "summary.json")
    try:
        with open(path) as stream:
            summary = json.load(stream)
    except (OSError, ValueError):
        return None
    resolved = get_setting(setting).resolve(config)
    wanted = json.loads(json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in resolved.items()}))
    return summary if summary.get("setting") == setting and summary.get("config") == wanted else None


def simulate_cells(cells: dict, *, progress: bool = False, workers: int = 2) -> dict:
    """Run `{name: (setting, config, out_dir)}` cells and return `{name: summary}`.

    Programs are compiled two at a time in threads (XLA compiles in C++ without the Python lock, and
    compiling is most of a quick figure's time), at most `workers + 1` cells ahead of the cell being
    run, so a figure of hundreds of cells never holds more than a few executables; they are executed
    one after another, because concurrent executions on one CPU device can deadlock in the XLA CPU
    runtime. With `RESUME["on"]`
    (`collapse-jax reproduce --resume`), a cell whose folder holds the summary of exactly its setting and
    configuration is read back instead of run: an interrupted figure continues where it stopped, and a
    change to the plotting alone costs no simulation (after a change to the engine, run without it).
    """
    import time
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from collapse_jax.simulate import finish, prepare

    start = time.perf_counter()
    order = list(cells)  # the summaries are returned in the cells' order, read back or run
    done_before = {}
    if RESUME["on"]:
        for name, (setting, config, out) in cells.items():
            summary = finished_summary(setting, config, out)
            if summary is not None:
                done_before[name] = summary
        cells = {name: cell for name, cell in cells.items() if name not in done_before}
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
    queue = iter(list(first) + rest)
    summaries = dict(done_before)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = deque()

        def submit_next():
            name = next(queue, None)
            if name is not None:
                pending.append((name, pool.submit(prepare, cells[name][0], cells[name][1])))

        for _ in range(workers + 1):  # compile at most this many cells ahead of the one running
            submit_next()
        done = 0
        while pending:
            name, compiled = pending.popleft()
            config, run = compiled.result()
            submit_next()
            setting, _, out = cells[name]
            summaries[name] = finish(setting, config, run, out=out)
            del config, run  # the executable is released once its cell is written
            done += 1
            if progress:
                elapsed = time.perf_counter() - start
                print(
                    f"  [{done}/{len(cells)}] {os.path.relpath(out)} ({summaries[name]['num_chains']} chains) "
                    f"elapsed {elapsed:.0f} s",
                    flush=True,
                )
    if STAMP:  # the footer states the chain counts behind the figure
        STAMP.setdefault("chains", set()).update(int(summary["num_chains"]) for summary in summaries.values())
    return {name: summaries[name] for name in order}


def _program_key(setting: str, config: dict) -> tuple:
    """Cells with equal keys compile to the same program (`program_key`; the chain count is kept, as it
    can set the chunk shape)."""
    from collapse_jax.settings import get_setting

    definition = get_setting(setting)
    resolved = definition.resolve(config)
    return setting, definition.program_key(resolved), resolved["chains"]


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


# theory is drawn under the chain means (zorder 1.5 < 2), so a dashed or dotted mean keeps its style
EXACT_STYLE = dict(color="black", lw=0.8, linestyle="-", zorder=1.5)  # exact theory: thin solid black
LIMIT_STYLE = dict(color="0.55", lw=1.0, linestyle="-.", zorder=1.5)  # an asymptotic formula, a limit or a bound
QUANTILE_STYLE = dict(
    color="black", lw=0.7, linestyle=":", zorder=1.5
)  # the theory's median, beside the chains' median
_THEORY_MEDIAN = "theory-median"  # the gid of the theory's median line (black dotted is common for references)
_SE_ALPHA, _QUANTILE_ALPHA = 0.35, 0.08  # the two bands of `plot_metric` (mean +- 1.96 SE; 5-95% of chains)


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
    median=False,
):
    """Chain mean with its 95% band (mean +- 1.96 SE), the 5-95% band of the chains, and theory.

    `median`: draw the chains' median and 5-95% band only (no mean, no theory): for a metric whose
    expectation is infinite, where a chain mean is meaningless at every generation.

    Theory: exact theory is a thin solid black line (`EXACT_STYLE`), an asymptotic formula or a limit a
    grey dash-dot line (`LIMIT_STYLE`). Where the mean is not checkable (a heavy-tailed metric whose
    sample mean does not estimate its expectation, theory.common.checkable), no mean and no SE band are
    drawn there; a curve with such generations also shows the chains' median at every generation (a
    thinner line), beside the theory's median (`QUANTILE_STYLE`) where it has quantiles. `positive`: the metric is non-negative and drawn on a log
    axis, so band edges below zero are drawn at the axis floor instead of being dropped.
    """
    entry = summary["metrics"][metric]
    g = np.asarray(summary["generations"])
    f = transform or (lambda x: x)
    if median:
        quantiles = entry["quantiles"]
        ax.plot(g, f(_array(quantiles["0.5"])), color=color, linestyle=linestyle, lw=1.2, label=label)
        if bands:
            ax.fill_between(
                g, f(_array(quantiles["0.05"])), f(_array(quantiles["0.95"])), color=color, alpha=_QUANTILE_ALPHA, lw=0
            )
        return
    mean, se = _array(entry["mean"]), _array(entry["se"])
    has_theory = entry["theory_kind"] is not None
    checkable = np.asarray(entry["checkable"] or [True] * len(g), bool) if has_theory else np.ones(len(g), bool)
    # on a log axis, an SE band edge at or below zero is drawn three decades under the mean (off the chart)
    floor = (lambda lo: np.maximum(lo, 1e-3 * mean)) if positive else (lambda lo: lo)
    shown = np.where(checkable, mean, np.nan)
    ax.plot(g, f(shown), color=color, linestyle=linestyle, lw=1.4, label=label)
    lo, hi = np.where(checkable, floor(mean - 1.96 * se), np.nan), np.where(checkable, mean + 1.96 * se, np.nan)
    ax.fill_between(g, f(lo), f(hi), color=color, alpha=_SE_ALPHA, lw=0)
    quantiles = entry.get("quantiles") or {}
    if not checkable.all() and "0.5" in quantiles:  # the median at every generation, thinner than the mean
        ax.plot(g, f(_array(quantiles["0.5"])), color=color, linestyle=linestyle, lw=0.8)
    if bands and quantiles:
        lo, hi = _array(quantiles["0.05"]), _array(quantiles["0.95"])
        ax.fill_between(g, f(lo), f(hi), color=color, alpha=_QUANTILE_ALPHA, lw=0)
    if theory and has_theory:
        t = _array(entry["theory"])
        style = EXACT_STYLE if entry["theory_kind"] == "exact" else LIMIT_STYLE
        ax.plot(g, f(np.where(checkable, t, np.nan)), **style)
        theory_quantiles = entry.get("theory_quantiles") or {}
        if not checkable.all() and "0.5" in theory_quantiles:
            median = np.where(~checkable, _array(theory_quantiles["0.5"]), np.nan)
            ax.plot(g, f(median), **QUANTILE_STYLE, gid=_THEORY_MEDIAN)


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


def _is_exact(line) -> bool:
    """Thin solid black: `EXACT_STYLE`, or a hand-drawn exact line in its spirit (lw <= 1)."""
    from matplotlib.colors import to_rgba

    return (
        to_rgba(line.get_color()) == (0.0, 0.0, 0.0, 1.0)
        and line.get_linestyle() == "-"
        and line.get_linewidth() <= 1.0
    )


def _is_limit(line) -> bool:
    """Grey dash-dot: `LIMIT_STYLE`, or any grey dash-dot line (a limit drawn by hand in a nearby grey)."""
    from matplotlib.colors import to_rgba

    red, green, blue, _ = to_rgba(line.get_color())
    return line.get_linestyle() == "-." and red == green == blue and 0.3 <= red <= 0.8


def figure_key(fig) -> str:
    """The footer's key to the encodings this figure actually draws (found by their styles: thin solid
    black, grey dash-dot; the theory's median by its gid, as black dotted is common for reference values;
    so a figure without theory does not describe theory lines): the chain mean with its SE band, the 5-95% band of
    the chains, exact theory, its median, and asymptotic formulas or limits. Empty when none is drawn."""
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    alphas = {collection.get_alpha() for ax in fig.axes for collection in ax.collections}
    parts = []
    if _SE_ALPHA in alphas:
        parts.append(
            "coloured line: chain mean, drawn only where checkable (thinner: the chains' median, where heavy "
            "tails make some means uncheckable); dark band: mean +- 1.96 SE"
        )
    if _QUANTILE_ALPHA in alphas:
        parts.append("light band: 5-95% of chains")
    if any(_is_exact(line) for line in lines):
        parts.append("thin solid black: exact theory")
    if any(line.get_gid() == _THEORY_MEDIAN for line in lines):
        parts.append("black dotted: the theory's median")
    if any(_is_limit(line) for line in lines):
        parts.append("grey dash-dot: an asymptotic formula or limit")
    return "; ".join(parts)


def finish_figure(fig, title: str, out_dir: str, name: str, *, bottom: float = 0.02) -> list[str]:
    """Title, the band legend, layout; save as PNG and PDF under `out_dir`, close; return the paths.
    `bottom`: the figure's fraction kept free at the bottom (for a figure-wide legend)."""
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=11)
    import textwrap

    footer = figure_key(fig)
    if STAMP:
        footer += (
            f"{'. ' if footer else ''}Made by collapse-jax {STAMP['collapse_jax']} (reproduce {STAMP['name']} in {STAMP['mode']} mode, "
            f"source {STAMP['source_hash']}), JAX {STAMP['jax']}"
        )
        chains = sorted(STAMP.get("chains", ()))
        if chains:
            footer += f"; {chains[0]}" + (f" to {chains[-1]}" if chains[-1] != chains[0] else "") + " chains per run"
    width = max(60, int(fig.get_figwidth() * 17))  # characters of 7-point text per line across the figure
    fig.text(0.01, 0.0, textwrap.fill(footer, width), fontsize=7, color="0.3", va="top")  # below the panels
    fig.tight_layout(rect=(0, bottom, 1, 0.97))
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = os.path.join(out_dir, f"{name}.{ext}")
        fig.savefig(path, dpi=130 if ext == "png" else None, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


_STATUS_ORDER = {"fail": 0, "deviates (asymptotic)": 1, "not checkable": 2, "pass": 3, "no theory": 4}


def repeated_curves(curves: list[Curve]) -> dict[int, Curve]:
    """{index: first curve} for each curve drawn from the same run and metric as an earlier one."""
    first, same = {}, {}
    for index, curve in enumerate(curves):
        if curve.run is None:
            continue
        key = (curve.experiment, curve.run, curve.metric)
        if key in first:
            same[index] = first[key]
        else:
            first[key] = curve
    return same


def report_markdown(curves: list[Curve], figures: dict[str, list[str]], out_dir: str, k: float) -> str:
    """The agreement report: one line per experiment, then every curve, failures and deviations first.

    Each curve's chain mean is compared with its theory at every checkable generation ("k of G + 1
    points"); a curve drawn twice from one run (the same setting, configuration and metric) is listed
    once, its other labels named beside it, and counted once.
    """
    same = repeated_curves(curves)
    unique = [c for i, c in enumerate(curves) if i not in same]
    also = {}
    for index, original in same.items():
        also.setdefault(id(original), []).append(curves[index].label)
    lines = [
        "# collapse-jax reproduction report",
        "",
        "Each curve's chain mean is compared with its theory at every checkable generation ('checked': k of",
        "the curve's G + 1 points); the largest |simulation - theory| is given in standard errors of the chain",
        f"mean (pass: <= {k:g} SE over those points; they are correlated generations of the same chains, so the",
        "maximum is a conservative summary). 'statistic' says what the chain mean was compared with: exact",
        "theory (a failure is a disagreement) or an asymptotic formula or limit (a gap is reported as",
        "'deviates (asymptotic)', not as a failure). 'not checkable by simulation': the metric is a",
        "heavy-tailed product of chi-squares there, so a sample mean over the chains does not estimate its",
        "expectation (see docs/theory.md, 'Heavy tails'). Non-finite chains are always counted: a curve whose",
        "chains went non-finite (NaN, or an infinity the theory does not give) at a generation where theory",
        "has a value fails ('fail: k of C chains non-finite from generation g', k the most at any one",
        "generation); infinities that are the exact value (the theory's own -inf, or one the metric takes by",
        "definition, e.g. KL = +inf for a singular covariance) are named with their reason instead. Failures",
        "and deviations are listed first; a curve drawn twice from one run is listed and counted once.",
        "",
        "| experiment | curves | pass | fail | deviates (asymptotic) | not checkable | no theory |",
        "|---|---|---|---|---|---|---|",
    ]
    for experiment in dict.fromkeys(c.experiment for c in unique):
        mine = [c for c in unique if c.experiment == experiment]
        counts = [sum(c.verdict["status"] == s for c in mine) for s in _STATUS_ORDER]
        fail, deviates, unchecked, passed, none = counts
        lines.append(f"| {experiment} | {len(mine)} | {passed} | {fail} | {deviates} | {unchecked} | {none} |")
    lines += [
        "",
        "| experiment | curve | metric | status | statistic | max abs(sim - theory) / SE | at generation | checked | not checkable |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ordered = sorted(unique, key=lambda c: _STATUS_ORDER.get(c.verdict["status"], 5))
    for c in ordered:
        v = c.verdict
        status = verdict_text(
            {**v, "status": {"not checkable": "not checkable by simulation"}.get(v["status"], v["status"])},
            with_z=False,
        ).replace("|", "\\|")
        z = "" if v["max_z"] is None else f"{v['max_z']:.2f}"
        at = "" if v["at_generation"] is None else str(v["at_generation"])
        checked = f"{v['compared']} of {c.generations}" if c.generations else str(v["compared"])
        statistic = f"mean vs {c.theory_kind} theory" if c.theory_kind else ""
        label = c.label + (f" (also drawn as: {'; '.join(also[id(c)])})" if id(c) in also else "")
        lines.append(
            f"| {c.experiment} | {label} | {c.metric} | {status} | {statistic} | {z} | {at} | {checked} | "
            f"{v['not_checkable']} |"
        )
    lines += ["", "## Figures", ""]
    for name, paths in figures.items():
        for p in paths:
            if p.endswith(".png"):
                lines.append(f"![{name}]({os.path.relpath(p, out_dir)})")
    failed = [c for c in unique if c.verdict["status"] == "fail"]
    nonfinite = [c for c in unique if c.verdict.get("nonfinite_chains_max")]
    deviating = [c for c in unique if c.verdict["status"] == "deviates (asymptotic)"]
    lines += [
        "",
        f"**{len(unique)} curves, {len(failed)} failed, {len(deviating)} deviate from an asymptotic formula, "
        f"{len(nonfinite)} with unexplained non-finite chains"
        + (f"; {len(same)} drawn twice from one run, counted once" if same else "")
        + ".**",
        "",
    ]
    return "\n".join(lines)
