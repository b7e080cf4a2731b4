"""Bad input gets a clear ValueError naming the parameter and its range, before anything compiles."""

import pytest

import collapse_jax.runner as runner
from collapse_jax import cli
from collapse_jax.settings import get_setting
from collapse_jax.simulate import simulate

BAD = [
    (dict(samples=1, ddof=1), "samples"),
    (dict(samples=-5), "samples"),
    (dict(samples=2.5), "samples"),
    (dict(chains=0), "chains"),
    (dict(generations=0), "generations"),
    (dict(real_fraction=1.5), "real_fraction"),
    (dict(real_fraction=-0.1), "real_fraction"),
    (dict(policy="keep-everything"), "policy"),
    (dict(real_source="elsewhere"), "real_source"),
    (dict(method="magic"), "method"),
    (dict(ddof=2), "ddof"),
    (dict(dim=0), "dim"),
    (dict(seed=-1), "seed"),
    (dict(sample_growth=1.0), "sample_growth"),
    (dict(method="sufficient", policy="accumulate-subsample"), "method"),
    (dict(method="sufficient", real_fraction=0.1, real_source="original"), "method"),
    (dict(metrics="trace_ratio,entropy"), "metrics"),
    (dict(colour="blue"), "colour"),
]


@pytest.mark.parametrize("overrides,name", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_parameters_raise_before_compiling(overrides, name, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("compiled or ran despite a bad parameter")

    monkeypatch.setattr(runner, "prepare_chains", must_not_run)
    with pytest.raises(ValueError, match=name):
        simulate("gaussian", overrides)


def test_error_names_the_allowed_range():
    with pytest.raises(ValueError, match=r"real_fraction \(--real-fraction\) must be in \[0, 1\]"):
        get_setting("gaussian").resolve({"real_fraction": 2.0})
    with pytest.raises(ValueError, match=r"policy \(--policy\) must be one of replace, accumulate, accumulate-subsample"):
        get_setting("gaussian").resolve({"policy": "nope"})


def test_unknown_setting():
    with pytest.raises(ValueError, match="setting must be one of"):
        simulate("zipf", {})


@pytest.mark.parametrize("argv,fragment", [
    (["--samples", "1", "--ddof", "1"], "samples (--samples) must be >= 2"),
    (["--real-fraction", "3"], "real_fraction (--real-fraction) must be in [0, 1]"),
    (["--policy", "bogus"], "policy (--policy) must be one of"),
    (["--chains", "-3"], "chains (--chains) must be an integer >= 1"),
])
def test_command_line_reports_bad_arguments(argv, fragment, capsys, tmp_path):
    code = cli.main(["simulate", "gaussian", *argv, "--out", str(tmp_path)])
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "summary.json").exists()


def test_command_line_rejects_non_integer_sizes(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["simulate", "gaussian", "--samples", "1.5", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--samples" in capsys.readouterr().err
