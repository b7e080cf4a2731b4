"""Independent float64 NumPy reference for the Gaussian grid of Kazdan et al. 2024 ("Collapse or Thrive?").

Written the way the paper's scripts are written: one Python loop per chain and generation, each chain
seeded on its own (`np.random.default_rng([seed, d, M, rule, chain])`), the pooled data kept for the
accumulating rules. It does not import collapse_jax; a run with N chains gives the same numbers for
those N chains whatever `--workers` is.

Chain (README "Conventions"): real distribution N(0, I_d); model 1 is fitted on M real points; every
generation k >= 2 draws M points from model k-1 (x = mean + L z, L a root of the fitted covariance);
the fit (np.mean and np.cov(bias=True), MLE) uses
  replace               the M points of generation k,
  accumulate            all k*M points of generations 1..k (the real ones included),
  accumulate-subsample  M points drawn uniformly without replacement from those k*M points.
Metrics at generation k = 0..G: mean_error_sq = ||mu_k||^2, trace_ratio = tr(Sigma_k)/d,
log_det_ratio = log det Sigma_k (Sigma_0 = I); -inf when the fitted points span fewer than d
dimensions (always so when M - 1 < d).

Three details keep float64 exact where the chain collapses (under `replace` with M close to d the
condition number of Sigma_k grows like exp(k * (psi((M-1)/2) - psi((M-d)/2))), e.g. about e^470
after 100 generations at d = 31, M = 32, far past float64's 1e16; a covariance formed from points
then loses its small eigenvalues and its log det, and the chain falsely becomes singular):
  * replace (`--replace-fit frame`, default): the M points of generation k are x_i = mu + L z_i, so
    np.mean(x) = mu + L mean(z) and np.cov(x) = L np.cov(z) L^T exactly; the fit is made from the
    standard draws z: L_k = L_{k-1} chol(np.cov(z)), log det Sigma_k = log det Sigma_{k-1} +
    log det np.cov(z). These are the same draws and the same fit as the paper's, in exact arithmetic
    (with Cholesky roots, L_k is exactly the Cholesky factor of Sigma_k).
    `--replace-fit points` forms x and np.cov(x) as the paper does (it shows where float64 fails).
  * log det and singularity come from the singular values of the centred fitted points (numpy's
    matrix_rank tolerance), not from eigenvalues of the formed covariance: a subsample of M = d + 1
    points has condition number above 1e10 in about one fit in a thousand, and such a fit is not
    singular. A singular fit is drawn from with its eigen-root restricted to its rank, so its draws
    stay in the fitted points' affine span (-inf stays exact).
  * accumulate: the pool's covariance is merged from per-batch np.mean / np.cov (Chan et al.'s
    pairwise update) instead of np.cov over k*M rows every generation (same value up to rounding;
    O(M d^2) per generation instead of O(k M d^2)); its singular values come from an R factor of the
    pool's centred points, updated by QR of [R; centred batch; weighted mean shift]. The pool itself
    is kept.
The largest condition number of any non-singular fit (for frame replace: of np.cov(z)) is reported
per cell (`max_log10_cond`).

Output JSON: per cell, per metric, per generation: mean and standard error over finite chains
(se = std(ddof=1)/sqrt(n_finite)), median (infinities count as values), finite chain count and the
non-finite counts by kind (nan, +inf, -inf); plus per-cell wall time and the whole run's.

Usage:
  python benchmarks/reference_collapse_or_thrive.py --out benchmarks/results/reference_collapse_or_thrive.json
  python benchmarks/reference_collapse_or_thrive.py --dims 3 31 --samples 10 32 --chains 200 \
      --generations 30 --out /tmp/ref.json
  python benchmarks/reference_collapse_or_thrive.py --cells 31:32:replace,100:1000:accumulate-subsample ...
  python benchmarks/reference_collapse_or_thrive.py --compare-sweep SWEEP_DIR \
      --reference benchmarks/results/reference_collapse_or_thrive.json \
      --md benchmarks/results/collapse_or_thrive_reference.md   # reads the sweep's files; no collapse_jax
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import sys
import time

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # one BLAS thread per process (use --workers for parallelism)

import numpy as np  # noqa: E402

POLICIES = ("replace", "accumulate", "accumulate-subsample")
DIMS = (1, 3, 10, 31, 100)
SAMPLES = (10, 32, 100, 316, 1000)
METRICS = ("mean_error_sq", "trace_ratio", "log_det_ratio")


# ------------------------------------------------------------------------------------------- one chain


def _cov(x):
    """MLE covariance of the rows of x, always (d, d)."""
    return np.atleast_2d(np.cov(x, rowvar=False, bias=True))


def _spectrum(rows, count):
    """(log det, rank, log10 condition) of the MLE covariance of `count` points whose centred scatter
    is rows^T rows, from the singular values of `rows` (numpy's matrix_rank tolerance:
    sigma_max * max(count, d) * eps). Singular values of the points are accurate where an eigenvalue
    of a formed covariance (their squares) is not: a fit with condition number 1e12 is still
    non-singular here."""
    d = rows.shape[1]
    sigma = np.linalg.svd(rows, compute_uv=False)
    tol = sigma[0] * max(count, d) * np.finfo(float).eps
    rank = int(np.sum(sigma > tol))
    if rank < d:
        return -np.inf, rank, 0.0  # singular: no condition number
    logdet = 2.0 * float(np.sum(np.log(sigma))) - d * math.log(count)
    return logdet, rank, 2.0 * float(np.log10(sigma[0] / sigma[-1]))


def _root(cov, rank):
    """A root L (L L^T = cov) to draw with: Cholesky for a non-singular fit; for a singular one the
    eigen-root of its top `rank` eigenvalues (the rest set to exactly 0, so draws stay in the span of
    the fitted points)."""
    d = cov.shape[0]
    if rank == d:
        try:
            return np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            pass
    w, v = np.linalg.eigh(cov)
    w = np.where(np.arange(d) >= d - rank, np.maximum(w, 0.0), 0.0)
    return v * np.sqrt(w)


def run_chain(dim, samples, policy, generations, seed, chain, replace_fit="frame"):
    """One chain: (metrics (3, G+1) float64, max log10 condition number of a non-singular fit)."""
    rule = POLICIES.index(policy)
    rng = np.random.default_rng([seed, dim, samples, rule, chain])
    out = np.empty((3, generations + 1))
    out[:, 0] = (0.0, 1.0, 0.0)
    mu, root, logdet = np.zeros(dim), np.eye(dim), 0.0
    worst = 0.0
    m = samples
    if policy != "replace":
        pool = np.empty((generations * m, dim))  # the pooled data of generations 1..k
        pool_mean, pool_scatter = np.zeros(dim), np.zeros((dim, dim))
        pool_rows = np.zeros((0, dim))  # pool scatter = pool_rows^T pool_rows (accumulate)
    for k in range(1, generations + 1):
        z = rng.standard_normal((m, dim))
        if policy == "replace" and replace_fit == "frame":
            zbar = z.mean(0)
            s = _cov(z)
            s_logdet, rank, cond = _spectrum(z - zbar, m)
            mu = mu + root @ zbar
            root = root @ _root(s, rank)
            logdet = logdet + s_logdet
            trace = float(np.sum(root * root))
        else:
            x = mu + z @ root.T  # M points of generation k (k == 1: the real data)
            if policy == "replace":
                data_mean, cov = x.mean(0), _cov(x)
                logdet, rank, cond = _spectrum(x - data_mean, m)
            elif policy == "accumulate":
                pool[(k - 1) * m : k * m] = x
                b_mean, b_scatter = x.mean(0), m * _cov(x)
                n_old = (k - 1) * m
                weight = n_old * m / (n_old + m)
                delta = b_mean - pool_mean
                pool_scatter = pool_scatter + b_scatter + np.outer(delta, delta) * weight
                pool_mean = pool_mean + delta * (m / (n_old + m))
                data_mean, cov = pool_mean, pool_scatter / (k * m)
                stacked = np.vstack([pool_rows, x - b_mean, math.sqrt(weight) * delta[None]])
                pool_rows = np.linalg.qr(stacked, mode="r")
                logdet, rank, cond = _spectrum(pool_rows, k * m)
            elif policy == "accumulate-subsample":
                pool[(k - 1) * m : k * m] = x
                chosen = pool[rng.choice(k * m, size=m, replace=False)]
                data_mean, cov = chosen.mean(0), _cov(chosen)
                logdet, rank, cond = _spectrum(chosen - data_mean, m)
            else:
                raise ValueError(f"unknown policy {policy!r}")
            mu = data_mean
            root = _root(cov, rank)
            trace = float(np.trace(cov))
        worst = max(worst, cond)
        out[0, k] = mu @ mu
        out[1, k] = trace / dim
        out[2, k] = logdet
    return out, worst


# ----------------------------------------------------------------------------------------- statistics


def _json_list(values):
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, float)]


def summarise(values):
    """Per-generation statistics of one metric over chains; values: (chains, G+1)."""
    finite = np.isfinite(values)
    n = finite.sum(0)
    safe = np.where(finite, values, 0.0)
    mean = np.where(n > 0, safe.sum(0) / np.maximum(n, 1), np.nan)
    dev = np.where(finite, values - mean, 0.0)
    std = np.where(n > 1, np.sqrt((dev * dev).sum(0) / np.maximum(n - 1, 1)), np.nan)
    se = std / np.sqrt(np.maximum(n, 1))
    with np.errstate(invalid="ignore"):
        median = np.nanquantile(values, 0.5, axis=0, method="inverted_cdf")
    return {
        "mean": _json_list(mean),
        "se": _json_list(se),
        "median": [
            None if np.isnan(v) else (float(v) if np.isfinite(v) else ("-inf" if v < 0 else "+inf")) for v in median
        ],
        "finite_chains": [int(c) for c in n],
        "nonfinite": {
            "nan": [int(c) for c in np.isnan(values).sum(0)],
            "+inf": [int(c) for c in np.isposinf(values).sum(0)],
            "-inf": [int(c) for c in np.isneginf(values).sum(0)],
        },
    }


# --------------------------------------------------------------------------------------------- driver


def _cell_task(args):
    dim, samples, policy, generations, seed, chains, replace_fit = args
    start = time.perf_counter()
    results = [run_chain(dim, samples, policy, generations, seed, c, replace_fit) for c in chains]
    return np.stack([r[0] for r in results]), max(r[1] for r in results), time.perf_counter() - start


def run_cells(
    cells,
    generations,
    seed=0,
    chains=100,
    big_chains=None,
    big_cost=None,
    workers=1,
    replace_fit="frame",
    progress=False,
):
    """Run every (dim, samples, policy) cell; returns the JSON-ready dict.

    big_chains/big_cost: cells whose cost d^2 * M * (G if accumulate-subsample else 1) is at least
    big_cost run big_chains chains instead of `chains` (None: every cell runs `chains`)."""
    start = time.perf_counter()
    plan = []
    for dim, samples, policy in cells:
        n = chains
        if big_chains is not None and big_cost is not None:
            cost = dim * dim * samples * (generations / 10 if policy == "accumulate-subsample" else 1)
            if cost >= big_cost:
                n = min(chains, big_chains)
        plan.append((dim, samples, policy, n))
    # tasks: blocks of chains, so that workers stay busy on the big cells
    block = 10
    tasks, owners = [], []
    for index, (dim, samples, policy, n) in enumerate(plan):
        for lo in range(0, n, block):
            tasks.append((dim, samples, policy, generations, seed, list(range(lo, min(n, lo + block))), replace_fit))
            owners.append(index)
    pieces = [[] for _ in plan]
    if workers > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for i, res in enumerate(pool.imap(_cell_task, tasks)):
                pieces[owners[i]].append(res)
                if progress:
                    print(f"\r{i + 1}/{len(tasks)} blocks", end="", file=sys.stderr, flush=True)
    else:
        for i, task in enumerate(tasks):
            pieces[owners[i]].append(_cell_task(task))
            if progress:
                print(f"\r{i + 1}/{len(tasks)} blocks", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    out_cells = []
    for (dim, samples, policy, n), parts in zip(plan, pieces):
        values = np.concatenate([p[0] for p in parts])
        out_cells.append(
            {
                "dim": dim,
                "samples": samples,
                "policy": policy,
                "chains": n,
                "generations": generations,
                "cpu_seconds": round(sum(p[2] for p in parts), 3),
                "max_log10_cond": round(max(p[1] for p in parts), 2),
                "singular_fit": samples - 1 < dim,
                "metrics": {name: summarise(values[:, i]) for i, name in enumerate(METRICS)},
            }
        )
    return {
        "schema": "collapse-or-thrive-reference/1",
        "description": "float64 NumPy reference (benchmarks/reference_collapse_or_thrive.py)",
        "seed": seed,
        "generations": generations,
        "replace_fit": replace_fit,
        "wall_seconds": round(time.perf_counter() - start, 2),
        "workers": workers,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cells": out_cells,
    }


# ------------------------------------------------------------------------------------------ comparison


def load_sweep_files(sweep_dir):
    """A collapse-jax sweep folder read with json / np.load only (no collapse_jax import):
    {(dim, samples, policy): {metric: {statistic: array}}, "_summary": cell summary}."""
    with open(os.path.join(sweep_dir, "manifest.json")) as stream:
        manifest = json.load(stream)
    cells = {}
    for entry in manifest["cells"]:
        path = os.path.join(sweep_dir, "cells", entry["id"])
        if not os.path.exists(path + ".json"):
            continue
        with open(path + ".json") as stream:
            summary = json.load(stream)
        v = entry["values"]
        with np.load(path + ".npz", allow_pickle=False) as data:
            metrics = {}
            for key in data.files:
                if "." in key:
                    name, stat = key.split(".", 1)
                    metrics.setdefault(name, {})[stat] = np.asarray(data[key], float)
        metrics["_summary"] = summary
        cells[(v["dim"], v["samples"], v["policy"])] = metrics
    return manifest, cells


def _arr(values):
    return np.asarray([np.nan if v is None else v for v in values], float)


def _median_z(metric, jax_q05, jax_med, jax_q95, ref_med, n_jax, n_ref):
    """A robust check for heavy tails: |T(median_jax) - T(median_ref)| over its standard error, on the
    scale T where the metric is roughly normal (log for the positive metrics, identity for log det).
    SE of a median: 1.2533 sigma / sqrt(n), sigma from collapse-jax's 5% and 95% quantiles
    ((T(q95) - T(q05)) / 3.29, normal shape on the T scale)."""
    values = [jax_q05, jax_med, jax_q95, ref_med]
    if any(v is None or isinstance(v, str) or not np.isfinite(v) for v in values):
        return np.nan
    if metric != "log_det_ratio":
        if min(values) <= 0:
            return np.nan
        values = [math.log(v) for v in values]
    q05, med, q95, rmed = values
    sigma = (q95 - q05) / 3.29
    se = 1.2533 * sigma * math.sqrt(1.0 / n_jax + 1.0 / n_ref)
    return abs(med - rmed) / se if se > 0 else np.nan


def compare_cell(jax_metrics, ref_cell, generations, k=5.0):
    """Per metric: z = |mean_jax - mean_ref| / sqrt(se_jax^2 + se_ref^2) at `generations` where both
    means are finite and the combined se is positive (and the median z of `_median_z`); non-finite
    chain counts of both sides."""
    out = {}
    for name in METRICS:
        j, r = jax_metrics[name], ref_cell["metrics"][name]
        rm, rs = _arr(r["mean"]), _arr(r["se"])
        rnf = {kind: np.asarray(r["nonfinite"][kind]) for kind in ("nan", "+inf", "-inf")}
        jm, js = j["mean"], j["se"]
        jnf = j["nonfinite_chains"]
        nan = np.full(len(jm), np.nan)
        rows = []
        for g in generations:
            se = math.hypot(js[g], rs[g]) if np.isfinite(js[g]) and np.isfinite(rs[g]) else np.nan
            z = abs(jm[g] - rm[g]) / se if np.isfinite(jm[g]) and np.isfinite(rm[g]) and se > 0 else np.nan
            n_jax = int(j["finite_chains"][g] + jnf[g])
            zmed = _median_z(
                name,
                j.get("q0.05", nan)[g],
                j.get("q0.5", nan)[g],
                j.get("q0.95", nan)[g],
                r["median"][g],
                n_jax,
                ref_cell["chains"],
            )
            rows.append(
                {
                    "generation": g,
                    "jax_mean": jm[g],
                    "ref_mean": rm[g],
                    "jax_se": js[g],
                    "ref_se": rs[g],
                    "z": z,
                    "jax_median": j.get("q0.5", nan)[g],
                    "ref_median": r["median"][g],
                    "median_z": zmed,
                    "jax_finite": int(j["finite_chains"][g]),
                    "ref_finite": int(r["finite_chains"][g]),
                    "jax_nonfinite": int(jnf[g]),
                    "ref_nonfinite": {kind: int(v[g]) for kind, v in rnf.items()},
                }
            )
        zs = [row["z"] for row in rows if np.isfinite(row["z"])]
        zmeds = [row["median_z"] for row in rows if np.isfinite(row["median_z"])]
        out[name] = {
            "rows": rows,
            "max_z": max(zs) if zs else np.nan,
            "max_median_z": max(zmeds) if zmeds else np.nan,
            "fail": bool(zs) and max(zs) > k,
            "jax_nonfinite_any": int(np.nanmax(jnf)) if len(jnf) else 0,
            "ref_nonfinite_any": int(max(int(np.max(v)) for v in rnf.values())),
        }
    return out


def _fmt(x, digits=2):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def write_comparison(sweep_dir, reference_path, k=5.0):
    """Markdown table: cells x metrics, z at G and max z over the checked generations, finite chains."""
    manifest, jax_cells = load_sweep_files(sweep_dir)
    with open(reference_path) as stream:
        ref = json.load(stream)
    lines, failures, nonfinite_notes, compared = [], [], [], 0
    header_cells = (
        "| d | M | rule | "
        + " | ".join(f"{m}: z@G (max z); med" for m in METRICS)
        + " | finite chains at G jax/ref (log det) |"
    )
    lines.append(header_cells)
    lines.append("|" + "---|" * (3 + len(METRICS) + 1))
    for cell in ref["cells"]:
        key = (cell["dim"], cell["samples"], cell["policy"])
        if key not in jax_cells:
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join("not in sweep" for _ in METRICS) + " | |")
            continue
        g_max = min(cell["generations"], len(jax_cells[key][METRICS[0]]["mean"]) - 1)
        gens = sorted({g for g in (1, 10, 50, 100, g_max) if g <= g_max})
        res = compare_cell(jax_cells[key], cell, gens, k)
        compared += 1
        parts = []
        for name in METRICS:
            r = res[name]
            z_g = r["rows"][-1]["z"]
            singular_ld = name == "log_det_ratio" and cell["singular_fit"]
            if singular_ld and not np.isfinite(r["max_z"]):
                text = "−inf both (M−1<d, exact)"
            else:
                text = f"{_fmt(z_g)} ({_fmt(r['max_z'])}); med {_fmt(r['max_median_z'], 1)}"
                if r["fail"]:
                    text = f"**{text}**"
                    failures.append((key, name, r))
            parts.append(text)
            if r["jax_nonfinite_any"] or r["ref_nonfinite_any"]:
                nonfinite_notes.append((key, name, r, singular_ld))
        last = res["log_det_ratio"]["rows"][-1]
        parts.append(f"{last['jax_finite']}/{last['ref_finite']}")
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(parts) + " |")
    return {
        "table": "\n".join(lines),
        "failures": failures,
        "nonfinite": nonfinite_notes,
        "compared": compared,
        "manifest": manifest,
        "jax_cells": jax_cells,
        "reference": ref,
    }


def _sweep_times(sweep_dir, jax_cells):
    """(sum of compile seconds, sum of run seconds, wall seconds from the manifest to the last cell)."""
    import datetime

    compile_s = sum(c["_summary"]["timing"]["compile_seconds"] or 0 for c in jax_cells.values())
    run_s = sum(c["_summary"]["timing"]["run_seconds"] or 0 for c in jax_cells.values())
    with open(os.path.join(sweep_dir, "manifest.json")) as stream:
        created = json.load(stream)["created"]
    stamps = [datetime.datetime.fromisoformat(c["_summary"]["created"]) for c in jax_cells.values()]
    wall = (max(stamps) - datetime.datetime.fromisoformat(created)).total_seconds() if stamps else float("nan")
    return compile_s, run_s, wall


def markdown_report(sweep_dir, reference_path, k=5.0, points_reference=None):
    """The comparison as markdown (see write_comparison), with its method, run times and lists of the
    failing cells and of every cell with non-finite chains."""
    result = write_comparison(sweep_dir, reference_path, k)
    ref, jax_cells = result["reference"], result["jax_cells"]
    any_summary = next(iter(jax_cells.values()))["_summary"] if jax_cells else {}
    compile_s, run_s, wall = _sweep_times(sweep_dir, jax_cells) if jax_cells else (0, 0, 0)
    zs, zmeds = [], []
    for cell in ref["cells"]:
        key = (cell["dim"], cell["samples"], cell["policy"])
        if key in jax_cells:
            g_max = min(cell["generations"], len(jax_cells[key][METRICS[0]]["mean"]) - 1)
            gens = sorted({g for g in (1, 10, 50, 100, g_max) if g <= g_max})
            for r in compare_cell(jax_cells[key], cell, gens, k).values():
                zs += [row["z"] for row in r["rows"] if np.isfinite(row["z"])]
                zmeds += [row["median_z"] for row in r["rows"] if np.isfinite(row["median_z"])]
    zs, zmeds = np.asarray(zs), np.asarray(zmeds)
    chains = sorted({c["chains"] for c in ref["cells"]})
    config = any_summary.get("config", {})
    commits = {}
    for c in sorted(jax_cells.values(), key=lambda c: c["_summary"]["created"]):
        commit = str(c["_summary"].get("git_commit"))[:7]
        commits[commit] = commits.get(commit, 0) + 1
    lines = [
        "# Collapse or Thrive? Gaussian grid: collapse-jax against an independent NumPy reference",
        "",
        f"collapse-jax sweep `{sweep_dir}` (spec `{result['manifest']['spec'].get('name')}`: "
        f"{any_summary.get('num_chains')} chains, G = {config.get('generations')}, ddof {config.get('ddof')}, "
        f"seed {config.get('seed')}, {'float64' if config.get('x64') else 'float32'}, "
        f"{any_summary.get('device')}; its cells record the HEAD at the time each was written: "
        f"{', '.join(f'{c} ({n})' for c, n in commits.items())}; the process runs the code it imported "
        f"when it started: the first of these, plus whatever was uncommitted then) against `{os.path.relpath(reference_path)}` "
        f"(`benchmarks/reference_collapse_or_thrive.py`: float64 NumPy, one loop per chain and generation, "
        f"chains seeded by `default_rng([seed, d, M, rule, chain])`, seed {ref['seed']}, "
        f"{'/'.join(map(str, chains))} chains per cell, G = {ref['generations']}, replace fitted "
        f"`{ref['replace_fit']}`). The two use unrelated random streams: agreement is statistical.",
        "",
        f"**Method.** For every cell and metric, at generations 1, 10, 50, 100 (and G): "
        f"z = |mean_jax − mean_ref| / sqrt(se_jax² + se_ref²), means and SEs over finite chains; "
        f"a cell fails a metric when z > {k:g} at any of them (where both means are finite). "
        f"Table: z at G, in brackets the largest z over the checked generations, and `med`: the largest "
        f"z of the medians over those generations (a check that heavy tails cannot hide: the median "
        f"compared on the log scale for mean_error_sq and trace_ratio, with the SE of a median, "
        f"1.2533 sigma / sqrt(n), sigma from collapse-jax's 5%/95% quantiles; an approximation, "
        f"reported, not a pass/fail criterion). "
        f"log_det_ratio is −inf in every chain, on both sides, exactly when M − 1 < d (a singular fit; "
        f"the pool of the accumulating rules then lies in the real points' affine span, so it stays "
        f"singular); those entries are marked and not compared.",
        "",
        f"**Run times** (2-core machine, loaded: the sweep and the reference ran at the same time). "
        f"Reference: {ref['wall_seconds']:.0f} s wall with {ref['workers']} worker processes, "
        f"{sum(c['cpu_seconds'] for c in ref['cells']):.0f} s of chain CPU time in all "
        f"(largest cell: {max(ref['cells'], key=lambda c: c['cpu_seconds'])['cpu_seconds']:.0f} s, "
        f"d = {max(ref['cells'], key=lambda c: c['cpu_seconds'])['dim']}, "
        f"M = {max(ref['cells'], key=lambda c: c['cpu_seconds'])['samples']}, "
        f"{max(ref['cells'], key=lambda c: c['cpu_seconds'])['policy']}). "
        f"collapse-jax sweep: {wall:.0f} s wall from its manifest to its last cell; its cells report "
        f"{compile_s:.0f} s compiling and {run_s:.0f} s running.",
        "",
        f"**Result.** {result['compared']} of {len(ref['cells'])} cells compared; "
        f"{len(result['failures'])} (cell, metric) pairs fail at z > {k:g}. Over all {len(zs)} finite "
        f"comparisons (cell x metric x generation; correlated within a cell): largest z "
        f"{(zs.max() if len(zs) else float('nan')):.2f}, {int(np.sum(zs > 2))} above 2 and "
        f"{int(np.sum(zs > 3))} above 3 (a normal |z| exceeds 2 in 4.6% and 3 in 0.27% of draws: "
        f"{0.046 * len(zs):.1f} and {0.0027 * len(zs):.1f} expected if they were independent). "
        f"Medians: largest z {(zmeds.max() if len(zmeds) else float('nan')):.2f} over {len(zmeds)}, "
        f"{int(np.sum(zmeds > 3))} above 3.",
        "",
        "**Reading the z's.** The z's are not independent: the checked generations of a cell share its "
        "chains, and collapse-jax's cells share their random streams (a chain's draws depend only on "
        "(seed, chain, generation, purpose), so every cell with seed 0 reuses them), so its errors move "
        "together across cells; the reference seeds each cell's chains apart. Fewer large z's than "
        "independent normals would give is therefore expected. trace_ratio (and mean_error_sq) under "
        "replace at small M are heavy tailed over 100 generations (E trace_ratio = ((M-1)/M)^G is carried "
        "by rare chains): both sides' 100-chain means sit far below it, with SEs that understate the "
        "error, so for those the mean z says only that the two samples look alike; the median z is the "
        "more meaningful check there.",
        "",
        result["table"],
        "",
    ]
    if result["failures"]:
        lines += ["## Failures", ""]
        for key, name, r in result["failures"]:
            rows = "; ".join(
                f"g{row['generation']}: jax {row['jax_mean']:.4g} ± {row['jax_se']:.2g}, ref "
                f"{row['ref_mean']:.4g} ± {row['ref_se']:.2g}, z {row['z']:.2f}, medians "
                f"{row['jax_median']:.4g} / {row['ref_median']}"
                for row in r["rows"]
            )
            lines.append(f"- d = {key[0]}, M = {key[1]}, {key[2]}, {name}: {rows}")
        lines.append("")
    lines += ["## Non-finite chains", ""]
    if not result["nonfinite"]:
        lines.append("None on either side.")
    for key, name, _r, singular in result["nonfinite"]:
        summary_entry = jax_cells[key]["_summary"]["metrics"][name]["nonfinite"]
        jax_kinds = {kind: max(v) for kind, v in summary_entry.items() if max(v)}
        ref_cell = next(c for c in ref["cells"] if (c["dim"], c["samples"], c["policy"]) == key)
        ref_kinds = {kind: max(v) for kind, v in ref_cell["metrics"][name]["nonfinite"].items() if max(v)}
        why = (
            "exact: M − 1 < d, every fit singular from generation 1"
            if singular and set(jax_kinds) <= {"-inf"} and set(ref_kinds) <= {"-inf"}
            else "NOT explained by a singular fit"
        )
        lines.append(
            f"- d = {key[0]}, M = {key[1]}, {key[2]}, {name}: collapse-jax {jax_kinds} of "
            f"{jax_cells[key]['_summary']['num_chains']} chains, reference {ref_kinds} of "
            f"{ref_cell['chains']} ({why})"
        )
    lines.append("")
    if points_reference:
        lines += points_section(reference_path, points_reference)
    return "\n".join(lines)


def points_section(frame_path, points_path):
    """How the paper's literal float64 fit (np.cov of the points) fares under replace, against the
    frame fit: chains whose log det went -inf without a singular fit, and z of the means at G."""
    with open(frame_path) as stream:
        frame = {(c["dim"], c["samples"], c["policy"]): c for c in json.load(stream)["cells"]}
    with open(points_path) as stream:
        points = json.load(stream)
    lines = [
        "## The paper's literal float64 fit under `replace`",
        "",
        f"`--replace-fit points` (x = mu + L z formed, np.cov(x), log det from its points; "
        f"{points['wall_seconds']:.0f} s wall) against the frame fit used above, "
        f"log_det_ratio at G = {points['generations']}. Cells where the two differ:",
        "",
    ]
    found = False
    for c in points["cells"]:
        key = (c["dim"], c["samples"], c["policy"])
        if key not in frame or c["singular_fit"]:
            continue
        f = frame[key]["metrics"]["log_det_ratio"]
        q = c["metrics"]["log_det_ratio"]
        g = points["generations"]
        bad = q["nonfinite"]["-inf"][g]
        first = next((i for i, v in enumerate(q["nonfinite"]["-inf"]) if v), None)
        fm, fs, qm, qs = f["mean"][g], f["se"][g], q["mean"][g], q["se"][g]
        z = (abs(fm - qm) / math.hypot(fs, qs)) if None not in (fm, fs, qm, qs) else float("nan")
        if bad or not (z <= 5):
            found = True
            lines.append(
                f"- d = {key[0]}, M = {key[1]}: {bad} of {c['chains']} chains falsely singular "
                f"(log det −inf) at G, the first from generation {first}; mean log det of the finite "
                f"ones {_fmt(qm, 1)} vs {_fmt(fm, 1)} (z {_fmt(z)})"
            )
    if not found:
        lines.append("None.")
    lines.append("")
    return lines


def parse_cells(text):
    cells = []
    for item in text.split(","):
        d, m, p = item.strip().split(":")
        if p not in POLICIES:
            raise SystemExit(f"--cells: policy must be one of {POLICIES}; got {p!r}")
        cells.append((int(d), int(m), p))
    return cells


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=list(DIMS))
    parser.add_argument("--samples", type=int, nargs="+", default=list(SAMPLES))
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--cells", help="explicit cells d:M:policy,... (overrides --dims/--samples/--policies)")
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--big-chains", type=int, help="chains for the costly cells (see --big-cost)")
    parser.add_argument(
        "--big-cost",
        type=float,
        default=1e7,
        help="a cell is costly when d^2 * M (x G/10 for accumulate-subsample) >= this",
    )
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--replace-fit", choices=("frame", "points"), default="frame")
    parser.add_argument("--out", help="reference JSON to write")
    parser.add_argument(
        "--compare-sweep",
        metavar="DIR",
        help="compare a finished collapse-jax sweep with --reference and write --md (runs nothing)",
    )
    parser.add_argument("--reference", help="reference JSON for --compare-sweep")
    parser.add_argument("--points-reference", help="optional JSON of a --replace-fit points run for --compare-sweep")
    parser.add_argument("--md", help="markdown output of --compare-sweep")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    if args.compare_sweep:
        if not (args.reference and args.md):
            parser.error("--compare-sweep needs --reference and --md")
        text = markdown_report(args.compare_sweep, args.reference, points_reference=args.points_reference)
        os.makedirs(os.path.dirname(os.path.abspath(args.md)), exist_ok=True)
        with open(args.md, "w") as stream:
            stream.write(text)
        print(f"-> {args.md}")
        return text
    if not args.out:
        parser.error("--out is required")
    cells = parse_cells(args.cells) if args.cells else list(itertools.product(args.dims, args.samples, args.policies))
    result = run_cells(
        cells,
        args.generations,
        seed=args.seed,
        chains=args.chains,
        big_chains=args.big_chains,
        big_cost=args.big_cost,
        workers=args.workers,
        replace_fit=args.replace_fit,
        progress=args.progress,
    )
    result["command"] = " ".join(
        ["python", "benchmarks/reference_collapse_or_thrive.py"] + list(argv if argv is not None else sys.argv[1:])
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as stream:
        json.dump(result, stream, allow_nan=False)
    print(f"{len(cells)} cells, {result['wall_seconds']} s wall ({args.workers} workers) -> {args.out}")
    return result


if __name__ == "__main__":
    main()
