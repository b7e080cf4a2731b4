"""Verdicts cannot pass on NaN: non-finite chains fail where theory has a value, exact infinities are
named, and every non-finite chain is counted (compare on hand-made entries, and one tiny run)."""

import json

from collapse_jax import cli
from collapse_jax.summary import EXACT_INFINITIES, compare, verdict_text

C = 20


def entry(mean, theory, *, nan=None, posinf=None, neginf=None, theory_infinite=None, kind="exact", exact=None, se=0.1):
    """A summary entry over len(mean) generations of C chains; non-finite counts per generation."""
    n = len(mean)
    nan, posinf, neginf = (list(x or [0] * n) for x in (nan, posinf, neginf))
    bad = [a + b + c for a, b, c in zip(nan, posinf, neginf)]
    return {
        "mean": list(mean),
        "se": [se] * n,
        "theory": list(theory),
        "theory_kind": kind,
        "theory_infinite": theory_infinite or [None] * n,
        "checkable": [True] * n,
        "theory_std": None,
        "finite_chains": [C - b for b in bad],
        "nonfinite_chains": bad,
        "nonfinite": {"nan": nan, "+inf": posinf, "-inf": neginf},
        "exact_infinities": exact or {},
    }


def test_finite_pass_still_passes():
    v = compare(entry([1.0, 1.05, 0.98], [1.0, 1.0, 1.0]))
    assert v["status"] == "pass" and v["compared"] == 3 and abs(v["max_z"] - 0.5) < 1e-9
    assert v["nonfinite_chains_max"] == 0 and v["nonfinite_from_generation"] is None
    assert v["legitimate_infinite"] == {} and v["message"] == "pass (max 0.50 SE over 3 generations)"


def test_all_nan_fails():
    """Every chain NaN from generation 1: nothing left to compare but generation 0, and it fails."""
    v = compare(entry([0.0, None, None], [0.0, 0.5, 0.5], nan=[0, C, C]))
    assert v["status"] == "fail"
    assert (v["nonfinite_from_generation"], v["nonfinite_chains_max"], v["chains"]) == (1, C, C)
    assert v["nonfinite_kinds"] == ["nan"] and v["skipped"] == 2
    assert v["message"].startswith(f"fail: {C} of {C} chains non-finite from generation 1 (NaN)")
    assert set(("status", "max_z", "at_generation", "compared", "skipped", "not_checkable")) <= set(v)


def test_some_nan_fails_with_counts():
    """k is the most non-finite chains at any one generation, g the first generation with one."""
    v = compare(entry([1.0, 1.0, 1.0, 1.0, 1.0], [1.0] * 5, nan=[0, 0, 3, 2, 5], posinf=[0, 0, 0, 1, 0]))
    assert v["status"] == "fail"
    assert (v["nonfinite_chains_max"], v["chains"], v["nonfinite_from_generation"]) == (5, C, 2)
    assert v["nonfinite_kinds"] == ["nan", "+inf"]
    assert v["message"].startswith(f"fail: 5 of {C} chains non-finite from generation 2 (NaN, +inf)")
    # an asymptotic theory fails too: non-finite chains are not a deviation of the mean
    v = compare(entry([1.0, 1.0], [1.0, 1.0], nan=[0, 1], kind="asymptotic"))
    assert v["status"] == "fail"


def test_minus_inf_where_theory_is_minus_inf_is_exempt_and_named():
    exact = EXACT_INFINITIES["log_det_ratio"]
    v = compare(
        entry(
            [0.0, None, None], [0.0, None, None], neginf=[0, C, C], exact=exact, theory_infinite=[None, "-inf", "-inf"]
        )
    )
    assert v["status"] == "pass" and v["nonfinite_chains_max"] == 0
    record = v["legitimate_infinite"]["-inf"]
    assert (record["chains_max"], record["from_generation"]) == (C, 1) and "theory -inf" in record["reason"]
    assert f"-inf at {C} of {C} chains from generation 1, exact (theory -inf" in v["message"]
    # NaN or the other infinity where theory is -inf: not exempt
    v = compare(
        entry([0.0, None], [0.0, None], nan=[0, 1], neginf=[0, C - 1], exact=exact, theory_infinite=[None, "-inf"])
    )
    assert (
        v["status"] == "fail"
        and v["nonfinite_chains_max"] == 1
        and v["legitimate_infinite"]["-inf"]["chains_max"] == C - 1
    )
    v = compare(entry([0.0, None], [0.0, None], posinf=[0, C], theory_infinite=[None, "-inf"]))
    assert v["status"] == "fail" and v["nonfinite_kinds"] == ["+inf"]


def test_minus_inf_where_theory_is_finite_fails_even_if_declared():
    """A declared exact infinity does not excuse a chain where the theory value is finite."""
    v = compare(entry([0.0, -1.0], [0.0, -1.0], neginf=[0, 2], exact=EXACT_INFINITIES["log_det_ratio"]))
    assert v["status"] == "fail" and v["message"].startswith(
        f"fail: 2 of {C} chains non-finite from generation 1 (-inf)"
    )


def test_plus_inf_kl_for_singular_is_exempt():
    exact = EXACT_INFINITIES["kl_divergence"]
    v = compare(entry([0.0, None, None], [None] * 3, posinf=[0, C, C], kind=None, exact=exact))
    assert v["status"] == "no theory" and v["nonfinite_chains_max"] == 0
    assert v["legitimate_infinite"]["+inf"]["reason"] == exact["+inf"]
    assert v["message"].startswith(f"no theory; +inf at {C} of {C} chains from generation 1, exact (singular")
    # but NaN KL is counted
    v = compare(entry([0.0, 1.0, 1.0], [None] * 3, nan=[0, 0, 7], kind=None, exact=exact))
    assert (
        v["status"] == "no theory" and v["message"] == f"no theory; 7 of {C} chains non-finite from generation 2 (NaN)"
    )


def test_no_theory_counts_nonfinite_chains():
    v = compare(entry([1.0] * 6, [None] * 6, nan=[0, 0, 0, 0, 0, 17], kind=None))
    assert v["status"] == "no theory" and v["nonfinite_from_generation"] == 5
    assert v["message"] == f"no theory; 17 of {C} chains non-finite from generation 5 (NaN)"
    # a generation without a theory value inside a curve that has theory elsewhere: counted, not failed
    v = compare(entry([1.0, 1.0, 1.0], [1.0, 1.0, None], nan=[0, 0, 4]))
    assert (
        v["status"] == "pass"
        and v["message"] == f"pass (max 0.00 SE over 2 generations); 4 of {C} chains non-finite from generation 2 (NaN)"
    )


def test_overflowed_mean_with_finite_chains_still_fails():
    e = entry([0.0, None], [0.0, 1.0])
    v = compare(e)
    assert v["status"] == "fail" and v["overflow_at_generation"] == 1 and "overflowed at generation 1" in v["message"]


def test_verdict_text_without_z():
    v = compare(entry([1.0, None], [1.0, 1.0], nan=[0, C]))
    assert verdict_text(v, with_z=False) == f"fail: {C} of {C} chains non-finite from generation 1 (NaN)"


def test_report_counts_nonfinite(tmp_path):
    from experiments.common import Curve, report_markdown

    bad = compare(entry([1.0, None], [1.0, 1.0], nan=[0, C]))
    report = report_markdown([Curve("e", "c", "m", bad)], {}, str(tmp_path), 5.0)
    assert f"| fail: {C} of {C} chains non-finite from generation 1 (NaN) |" in report
    assert "1 curves, 1 failed, 0 deviate from an asymptotic formula, 1 with unexplained non-finite chains" in report


def test_report_lists_failures_first_says_k_of_g_and_counts_a_run_once(tmp_path):
    from experiments.common import Curve, report_markdown

    good = compare(entry([1.0, 1.02, 1.0], [1.0, 1.0, 1.0]))
    bad = compare(entry([1.0, 3.0, 1.0], [1.0, 1.0, 1.0]))
    curves = [
        Curve("e", "first", "m", good, generations=3, run="run-a", theory_kind="exact"),
        Curve("e", "second", "m", bad, generations=3, run="run-b", theory_kind="exact"),
        Curve("e", "first again", "m", good, generations=3, run="run-a", theory_kind="exact"),
    ]
    report = report_markdown(curves, {}, str(tmp_path), 5.0)
    rows = [line for line in report.splitlines() if line.startswith("| e | ")]
    assert rows[0] == "| e | 2 | 1 | 1 | 0 | 0 | 0 |"  # one line per experiment: the repeated run counted once
    assert rows[1].startswith("| e | second | m | fail")  # the failure first
    assert "| 3 of 3 |" in rows[1] and "mean vs exact theory" in rows[1]
    assert "first (also drawn as: first again)" in rows[2] and len(rows) == 3
    assert "**2 curves, 1 failed" in report and "1 drawn twice from one run, counted once" in report


def test_simulate_run_gone_nan_fails(tmp_path, capsys):
    """A residual verifier at tolerance 1e-6 keeps no synthetic row: every chain's risk is NaN from
    generation 2 (generation 1 is fit on real data). The run used to print 'pass'. (Refill: the residual
    verifier's theory covers it; with the prune budget there is no theory, and the line says so.)"""
    code = cli.main(
        [
            "simulate",
            "regression",
            "--verifier",
            "residual",
            "--verifier-tolerance",
            "1e-6",
            "--design",
            "fresh",
            "--method",
            "samples",
            "--verified-budget",
            "refill",
            "--generations",
            "3",
            "--chains",
            "8",
            "--dim",
            "2",
            "--samples",
            "8",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("excess_risk"))
    assert "fail: 8 of 8 chains non-finite from generation 2 (NaN)" in line and "pass" not in line
    comparison = json.loads((tmp_path / "summary.json").read_text())["metrics"]["excess_risk"]["comparison"]
    assert comparison["status"] == "fail"
    assert (comparison["nonfinite_from_generation"], comparison["nonfinite_chains_max"]) == (2, 8)


def test_singular_gaussian_names_its_infinities(tmp_path, capsys):
    """d = 5 from M = 4 points: log det = -inf where theory says -inf, KL = +inf; both exact, named, and pass."""
    assert (
        cli.main(
            [
                "simulate",
                "gaussian",
                "--dim",
                "5",
                "--samples",
                "4",
                "--ddof",
                "0",
                "--generations",
                "2",
                "--chains",
                "8",
                "--metrics",
                "log_det_ratio,kl_divergence",
                "--quiet",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "fail" not in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    log_det = summary["metrics"]["log_det_ratio"]
    assert log_det["theory_infinite"] == [None, "-inf", "-inf"]
    assert log_det["comparison"]["legitimate_infinite"]["-inf"]["chains_max"] == 8
    kl = summary["metrics"]["kl_divergence"]
    assert (
        kl["comparison"]["status"] == "no theory" and kl["comparison"]["legitimate_infinite"]["+inf"]["chains_max"] == 8
    )
    assert (
        "-inf at 8 of 8 chains from generation 1, exact" in out
        and "+inf at 8 of 8 chains from generation 1, exact" in out
    )


def test_resume_reads_back_only_runs_of_exactly_the_same_configuration(tmp_path, monkeypatch):
    import importlib

    from experiments import common

    module = importlib.import_module("collapse_jax.simulate")  # the package's `simulate` is the function

    config = dict(dim=1, samples=10, generations=3, chains=16, seed=1)
    cells = {"a": ("gaussian", config, str(tmp_path / "a"))}
    first = common.simulate_cells(cells)["a"]
    ran = []
    original = module.finish
    monkeypatch.setattr(module, "finish", lambda *a, **k: ran.append(1) or original(*a, **k))
    monkeypatch.setitem(common.RESUME, "on", True)
    again = common.simulate_cells(cells)["a"]
    assert ran == [] and again["metrics"] == first["metrics"]  # read back, not run
    changed = {"a": ("gaussian", dict(config, seed=2), str(tmp_path / "a"))}
    assert common.simulate_cells(changed)["a"]["seed"] == 2 and ran == [1]  # a different seed runs again
