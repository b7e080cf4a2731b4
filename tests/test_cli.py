"""The command line as a newcomer uses it: simulate, list, reproduce (smoke), and the summary schema."""

import json

import numpy as np
import pytest

from collapse_jax import cli
from collapse_jax.summary import SCHEMA, load_summary


def test_simulate_writes_summary_and_chains(tmp_path, capsys):
    code = cli.main(
        [
            "simulate",
            "gaussian",
            "--policy",
            "accumulate",
            "--dim",
            "2",
            "--samples",
            "20",
            "--ddof",
            "0",
            "--generations",
            "6",
            "--chains",
            "500",
            "--seed",
            "3",
            "--save-chains",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "trace_ratio" in out and "pass" in out
    summary = load_summary(tmp_path / "summary.json")
    assert summary["schema"] == SCHEMA and summary["setting"] == "gaussian"
    for key in ("config", "seed", "num_chains", "jax_version", "device", "created", "generations", "metrics"):
        assert key in summary
    assert summary["generations"] == list(range(7))
    assert summary["config"]["real_source"] == "fresh" and summary["config"]["real_fraction"] == 0.0
    for name in ("mean_error_sq", "trace_ratio", "log_det_ratio", "w2_sq"):
        entry = summary["metrics"][name]
        for field in ("mean", "se", "theory", "nonfinite_chains"):
            assert len(entry[field]) == 7
        assert set(entry["quantiles"]) == {"0.05", "0.5", "0.95"}
        assert entry["theory_kind"] in ("exact", "asymptotic", "bound", None)
    assert summary["metrics"]["trace_ratio"]["theory_kind"] == "exact"
    assert summary["metrics"]["w2_sq"]["theory_kind"] is None
    with np.load(tmp_path / "chains.npz", allow_pickle=False) as chains:
        assert chains["trace_ratio"].shape == (500, 7)
        np.testing.assert_allclose(chains["trace_ratio"].mean(0), summary["metrics"]["trace_ratio"]["mean"], rtol=1e-5)


def test_json_has_no_nan(tmp_path):
    cli.main(
        [
            "simulate",
            "gaussian",
            "--dim",
            "5",
            "--samples",
            "3",
            "--ddof",
            "0",
            "--generations",
            "3",
            "--chains",
            "16",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )
    text = (tmp_path / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    entry = json.loads(text)["metrics"]["log_det_ratio"]
    assert entry["mean"][1:] == [None] * 3 and entry["nonfinite"]["-inf"][1:] == [16] * 3


def _reproduce_smoke(tmp_path, names, flags=("--smoke",)):
    assert cli.main(["reproduce", *names, *flags, "--quiet", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    for name in names:
        assert f"| {name} |" in report
        assert (tmp_path / name / f"{name}.png").stat().st_size > 10_000
        assert (tmp_path / name / f"{name}.pdf").exists()


@pytest.fixture
def compilation_cache(tmp_path, monkeypatch):
    """The command line's persistent compilation cache, in `tmp_path/cache`, for one test (this process
    has it off: conftest.py); turned off again afterwards, so later tests in this process compile."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cache

    monkeypatch.delenv("COLLAPSE_JAX_NO_CACHE", raising=False)
    monkeypatch.setenv("COLLAPSE_JAX_CACHE_DIR", str(tmp_path / "cache"))
    yield tmp_path / "cache"
    jax.config.update("jax_compilation_cache_dir", None)
    cache.reset_cache()


def test_list_and_reproduce_smoke_alone_and_with_jobs(tmp_path, capsys, compilation_cache):
    """`list` shows every registered experiment; one runs end to end (all of them: the slow tier). With
    --jobs 2, two experiments in two worker processes give the summaries the run in this process gave,
    one report in the order asked and one manifest entry each; a bad count is refused before anything runs.
    The workers read the programs this process compiled from the compilation cache it hands them."""
    from experiments import REGISTRY

    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in REGISTRY)
    alone, together = tmp_path / "alone", tmp_path / "together"
    _reproduce_smoke(alone, ["shumailov-gaussian"], flags=("--mode", "smoke"))
    manifest = json.loads((alone / "manifest.json").read_text())
    assert manifest["shumailov-gaussian"]["mode"] == "smoke"

    _reproduce_smoke(together, ["gerstgrasser-regression", "shumailov-gaussian"], flags=("--smoke", "--jobs", "2"))
    report = (together / "report.md").read_text()
    assert report.index("| gerstgrasser-regression |") < report.index("| shumailov-gaussian |")
    assert set(json.loads((together / "manifest.json").read_text())) == {
        "gerstgrasser-regression",
        "shumailov-gaussian",
    }
    for path in sorted((alone / "shumailov-gaussian").rglob("summary.json")):
        mine = json.loads((together / path.relative_to(alone)).read_text())["metrics"]
        theirs = json.loads(path.read_text())["metrics"]
        assert {k: v["mean"] for k, v in mine.items()} == {k: v["mean"] for k, v in theirs.items()}, path
    assert cli.main(["reproduce", "shumailov-gaussian", "--jobs", "0", "--out", str(tmp_path / "none")]) == 2
    assert "jobs (--jobs) must be an integer in [1, 64]" in capsys.readouterr().err
    assert any(compilation_cache.iterdir())


def test_reproduce_mode_and_its_shorthands(tmp_path, capsys):
    assert cli.reproduce_mode(None, False, False) == "full"
    assert cli.reproduce_mode("quick", True, False) == "quick"
    assert cli.reproduce_mode(None, False, True) == "smoke"
    assert cli.main(["reproduce", "shumailov-gaussian", "--mode", "full", "--quick", "--out", str(tmp_path)]) == 2
    assert "ask for different modes (full, quick)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--mode", "huge", "--out", str(tmp_path)])


def test_reproduce_passes_the_paper_mode_to_the_experiments(tmp_path, monkeypatch):
    import experiments

    asked = {}
    monkeypatch.setattr(experiments, "reproduce", lambda names, **kwargs: asked.update(kwargs, names=names) or [])
    assert cli.reproduce_mode("paper", False, False) == "paper"
    assert cli.main(["reproduce", "he-golden-ratio", "--mode", "paper", "--out", str(tmp_path)]) == 0
    assert asked["mode"] == "paper" and asked["names"] == ["he-golden-ratio"]


@pytest.mark.slow
def test_every_experiment_reproduces_in_smoke_mode(tmp_path):
    from experiments import REGISTRY

    _reproduce_smoke(tmp_path, list(REGISTRY))


def test_x64_runs_in_float64_in_its_own_process(tmp_path):
    """--x64 flips JAX's global dtype flag, so it is checked in a fresh process (the flag is sticky)."""
    import subprocess
    import sys

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "collapse_jax",
            "simulate",
            "gaussian",
            "--x64",
            "--samples",
            "10",
            "--generations",
            "5",
            "--chains",
            "2000",
            "--quiet",
            "--save-chains",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "XLA_FLAGS": ""},
    )
    assert run.returncode == 0, run.stderr
    summary = load_summary(tmp_path / "summary.json")
    assert summary["config"]["x64"] is True
    with np.load(tmp_path / "chains.npz", allow_pickle=False) as chains:
        assert chains["trace_ratio"].dtype == np.float64
    assert all(summary["metrics"][m]["theory_kind"] == "exact" for m in ("trace_ratio", "mean_error_sq", "w2_sq"))
