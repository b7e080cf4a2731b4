"""Bad input gets a clear ValueError naming the parameter and its range, before anything compiles;
on the command line a one-line error (exit status 2), no traceback."""

import math
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import collapse_jax.runner as runner
from collapse_jax import cli
from collapse_jax.settings import SETTINGS, get_setting
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
    with pytest.raises(
        ValueError, match=r"policy \(--policy\) must be one of replace, accumulate, accumulate-subsample"
    ):
        get_setting("gaussian").resolve({"policy": "nope"})


def test_unknown_setting():
    with pytest.raises(ValueError, match="setting must be one of"):
        simulate("zipf", {})


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--samples", "1", "--ddof", "1"], "samples (--samples) must be >= 2"),
        (["--real-fraction", "3"], "real_fraction (--real-fraction) must be in [0, 1]"),
        (["--policy", "bogus"], "policy (--policy) must be one of"),
        (["--chains", "-3"], "chains (--chains) must be an integer in [1, 4294967296]"),
    ],
)
def test_command_line_reports_bad_arguments(argv, fragment, capsys, tmp_path):
    code = cli.main(["simulate", "gaussian", *argv, "--out", str(tmp_path)])
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize("text", ["1.5", "1e30", "many", "nan"])
def test_command_line_rejects_non_integer_sizes(text, capsys, tmp_path):
    code = cli.main(["simulate", "gaussian", "--samples", text, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "samples (--samples) must be an integer in [1, 1000000000], got" in err


# ------------------------------------------------------------------ every parameter at its boundaries
# Generated from the settings' Parameter definitions: a new parameter is covered without a new row.


def _parameters():
    return [(setting, p) for setting, definition in SETTINGS.items() for p in definition.all_parameters]


def _outside(p):
    """Values just outside p's range (the next integer, or the next float)."""
    values = []
    if p.low is not None:
        values.append(p.low - 1 if p.kind is int else float(np.nextafter(p.low, -np.inf)))
    if p.high is not None:
        values.append(p.high + 1 if p.kind is int else float(np.nextafter(p.high, np.inf)))
    return [v for v in values if v not in p.also]


def _wrong_type(p):
    return {
        int: ["3", 2.5, None, [1]],
        float: ["0.5", None, [0.5]],
        str: [5, None, ["a"]],
        bool: ["yes", 1, None],
        "list": [5, None, [], ""],
    }[p.kind]


def _rows():
    rows = []
    for setting, p in _parameters():
        if p.kind in (int, float):
            rows += [(setting, p.name, v, "outside") for v in _outside(p)]
            rows += [(setting, p.name, v, "nonfinite") for v in (math.nan, math.inf, -math.inf)]
            rows += [(setting, p.name, v, "nonfinite") for v in (np.float32(np.nan), np.float64(np.inf))]
        rows += [(setting, p.name, v, "type") for v in _wrong_type(p)]
        if p.choices is not None and p.kind is not bool:
            rows.append((setting, p.name, "no-such-choice" if p.kind is not int else 99, "choice"))
    return rows


ROWS = _rows()


def test_every_number_has_a_stated_range():
    """Every numeric parameter has both bounds (so --help and the errors state its range)."""
    for setting, p in _parameters():
        if p.kind in (int, float) and p.choices is None:
            assert p.low is not None and p.high is not None, f"{setting}.{p.name} has no bounds"
            assert p.allowed() in _help(setting), f"{setting}.{p.name}: --help does not state {p.allowed()!r}"


@pytest.mark.parametrize("setting,name,value,why", ROWS, ids=[f"{r[0]}.{r[1]}.{r[3]}{i}" for i, r in enumerate(ROWS)])
def test_bad_value_is_refused_by_the_api(setting, name, value, why):
    p = get_setting(setting).parameter(name)
    with pytest.raises(ValueError, match=re.escape(f"{name} ({p.flag})")) as error:
        get_setting(setting).resolve({name: value})
    if why in ("outside", "nonfinite"):
        assert p.allowed() in str(error.value)


BOUNDARIES = [(s, p.name) for s, p in _parameters() if p.kind in (int, float, str, bool)]


@pytest.mark.parametrize("setting,name", BOUNDARIES, ids=[f"{s}.{n}" for s, n in BOUNDARIES])
def test_boundaries_and_numpy_scalars_are_accepted(setting, name):
    """The bounds themselves pass `Parameter.check`, as Python and NumPy scalars, and come back as
    plain Python values; the default as a NumPy scalar passes the whole setting's validation."""
    p = get_setting(setting).parameter(name)
    if p.kind is bool:
        assert p.check(np.bool_(True)) is True
        numpy_default = np.bool_(p.default)
    elif p.kind is str:
        assert type(p.check(np.str_(p.default))) is str
        numpy_default = np.str_(p.default)
    else:
        wrap = np.int64 if p.kind is int else np.float64
        for bound in (p.low, p.high, *p.also):
            if bound is not None and (p.choices is None or bound in p.choices):
                for value in (bound, wrap(bound), np.array(bound)):
                    checked = p.check(value)
                    assert checked == bound and type(checked) is p.kind
        numpy_default = wrap(p.default)
        if p.kind is float and np.float32(p.default) == p.default:
            assert type(p.check(np.float32(p.default))) is float
        if p.kind is int:
            assert p.check(np.float32(p.default)) == p.default  # an integral float is an integer
    config = get_setting(setting).resolve({name: numpy_default})
    assert config[name] == p.default and type(config[name]) is type(p.default)


def _help(setting):
    with pytest.raises(SystemExit):
        cli.main(["simulate", setting, "--help"])
    return " ".join(_CAPTURED.pop().split())


_CAPTURED = []


@pytest.fixture(autouse=True)
def _capture_help(monkeypatch):
    import argparse

    def print_help(self, file=None):
        _CAPTURED.append(self.format_help())

    monkeypatch.setattr(argparse.ArgumentParser, "print_help", print_help)


CLI_ROWS = []
for _setting, _p in _parameters():
    if _p.kind is float:
        CLI_ROWS += [(_setting, _p, "nan"), (_setting, _p, "-inf")]
    if _p.kind in (int, float) and _outside(_p):
        CLI_ROWS += [(_setting, _p, str(_outside(_p)[-1])), (_setting, _p, "abc")]


@pytest.mark.parametrize("setting,p,text", CLI_ROWS, ids=[f"{r[0]}.{r[1].name}={r[2]}" for r in CLI_ROWS])
def test_bad_value_on_the_command_line_is_one_line(setting, p, text, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "prepare_program", _must_not_compile)
    out = tmp_path / "out"
    code = cli.main(["simulate", setting, f"{p.flag}={text}", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("collapse-jax: error: ") and "Traceback" not in err
    assert f"{p.name} ({p.flag})" in err and p.allowed() in err
    assert not out.exists()  # refused before the output directory is made


def _must_not_compile(*args, **kwargs):
    raise AssertionError("compiled despite a bad argument")


# --------------------------------------------------------------------------------- the specific cases


@pytest.mark.parametrize(
    "setting,overrides,fragment",
    [
        (
            "gaussian",
            dict(first_samples=1, ddof=1),
            "first_samples (--first-samples) must be 0 (M) or >= 2 with ddof=1",
        ),
        ("discrete", dict(first_samples=1, samples=10), "first_samples (--first-samples) must be 0 or samples"),
        ("tails", dict(first_samples=1, samples=10), "first_samples (--first-samples) must be 0 or samples"),
        ("kde", dict(first_samples=1, samples=10), "first_samples (--first-samples) must be 0 or samples"),
        ("gmm", dict(first_samples=1, components=2), "first_samples (--first-samples) must be 0 (M) or >= components"),
        ("kde", dict(samples=1), "samples (--samples) must be >= 2 with bandwidth scott"),
        ("kde", dict(samples=1, bandwidth="silverman"), "samples (--samples) must be >= 2"),
        (
            "kde",
            dict(bandwidth="1e30"),
            "bandwidth (--bandwidth) must be scott, silverman or a number in [1e-06, 1e+06]",
        ),
        ("kde", dict(bandwidth="1e-30"), "bandwidth (--bandwidth) must be"),
        ("kde", dict(bandwidth="nan"), "bandwidth (--bandwidth) must be"),
        ("kde", dict(bandwidth="inf"), "bandwidth (--bandwidth) must be"),
        ("kde", dict(noise=1e-5), "noise (--noise) must be 0 or in [0.01, 100]"),
        ("kde", dict(samples=10**6, generations=100, policy="accumulate"), "a KDE must hold fewer than 2^23 points"),
        ("kde", dict(samples=2**23), "a KDE must hold fewer than 2^23 points"),
        (
            "tails",
            dict(fixed_synthetic=10**8),
            "fixed_synthetic (--fixed-synthetic) must be an integer in [0, 10000000]",
        ),
        ("tails", dict(train_sizes="10,100000000"), "train_sizes (--train-sizes) must be integers in [1, 10000000]"),
        ("gmm", dict(dim=64), "dim (--dim) must be an integer in [1, 16]"),
        ("gaussian", dict(samples=1e30), "samples (--samples) must be an integer in [1, 1000000000], got 1e+30"),
        ("gaussian", dict(samples=np.float64(1e30)), "samples (--samples) must be an integer"),
        ("gaussian", dict(chains=2**32 + 1), "chains (--chains) must be an integer in [1, 4294967296]"),
        (
            "gaussian",
            dict(real_fraction=float("nan")),
            "real_fraction (--real-fraction) must be a finite number in [0, 1]",
        ),
        ("mixture", dict(model="ridge:1e30"), "LAMBDA in ridge:LAMBDA must be in [0, 1e6]"),
    ],
)
def test_specific_bad_inputs(setting, overrides, fragment, monkeypatch):
    monkeypatch.setattr(runner, "prepare_program", _must_not_compile)
    with pytest.raises(ValueError) as error:
        simulate(setting, overrides)
    assert fragment in str(error.value)


def test_numpy_scalars_are_accepted_and_stored_as_python_values():
    config = get_setting("gaussian").resolve(
        dict(
            samples=np.int64(3),
            real_fraction=np.float32(0.5),
            dim=np.int32(2),
            seed=np.uint32(7),
            generations=np.float64(4.0),
        )
    )
    assert (config["samples"], config["dim"], config["seed"], config["generations"]) == (3, 2, 7, 4)
    assert config["real_fraction"] == 0.5
    assert all(type(config[k]) is int for k in ("samples", "dim", "seed", "generations"))
    assert type(config["real_fraction"]) is float


@pytest.mark.parametrize("bad", [np.inf, np.nan, -np.inf])
@pytest.mark.parametrize("option,shape", [("spectrum", (3,)), ("spectrum", (3, 3)), ("true_weights", (3,))])
def test_files_holding_nonfinite_values_are_refused(option, shape, bad, tmp_path):
    values = np.eye(3) if len(shape) == 2 else np.ones(3)
    values[(0,) * len(shape)] = bad
    for path in (tmp_path / "values.npy", tmp_path / "values.txt"):
        np.save(path, values) if path.suffix == ".npy" else np.savetxt(path, values)
        with pytest.raises(
            ValueError, match=re.escape(f"{option} (--{option.replace('_', '-')}): '{path}' holds non-finite values")
        ):
            get_setting("regression").resolve({"dim": 3, option: f"file:{path}"})


def test_law_file_holding_nan_is_refused(tmp_path):
    path = tmp_path / "law.txt"
    np.savetxt(path, [0.5, np.nan, 0.5])
    with pytest.raises(ValueError, match=re.escape(f"law (--law): '{path}' holds non-finite values")):
        get_setting("discrete").resolve(dict(categories=3, tail_rank=1, law=f"file:{path}"))


def test_kde_bandwidth_bounds_are_accepted():
    for text in ("1e-6", "1e6", "scott", "silverman"):
        get_setting("kde").resolve(dict(bandwidth=text))
    assert get_setting("kde").resolve(dict(noise=0.01))["noise"] == 0.01


def test_chain_count_is_bounded_by_32_bit_ids():
    assert get_setting("gaussian").parameter("chains").check(2**32) == 2**32
    with pytest.raises(ValueError, match=r"num_chains must be an integer in \[1, 2\*\*32\]"):
        runner.validate_cells(runner.Cells((0,), (2**32 + 1,)))
    runner.validate_cells(runner.Cells((np.uint32(0),), (np.int64(2**32),)))


def test_a_chain_larger_than_memory_is_refused_before_compiling(monkeypatch):
    monkeypatch.setattr(runner._ChunkProgram, "compiled", _must_not_compile)
    with pytest.raises(ValueError, match=r"one chain needs at least .* GiB .* more than the .* GiB free"):
        simulate(
            "gaussian",
            dict(
                policy="accumulate-subsample",
                samples=10**7,
                dim=1000,
                generations=10**4,
                chains=2,
                metrics="trace_ratio",
            ),
        )


def test_the_tails_draws_count_in_the_memory_estimate():
    from collapse_jax.chain import chain_bytes_estimate

    definition = get_setting("tails")
    small = definition.instantiate(definition.resolve(dict(categories=100, samples=10)))
    large = definition.instantiate(definition.resolve(dict(categories=100, samples=10, fixed_synthetic=10**6)))
    assert chain_bytes_estimate(*large) - chain_bytes_estimate(*small) >= 10**8  # 100 bytes a draw


# -------------------------------------------------------------------------------------------- --out


@pytest.mark.parametrize("kind", ["file", "empty", "devnull", "unwritable"])
def test_bad_output_directory_is_refused_before_the_run(kind, tmp_path, capsys, monkeypatch):
    if kind == "unwritable" and os.geteuid() == 0:
        pytest.skip("root writes to read-only directories")
    if kind == "devnull" and not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    monkeypatch.setattr(runner, "prepare_program", _must_not_compile)
    out = {"file": tmp_path / "a-file", "empty": "", "devnull": "/dev/null", "unwritable": tmp_path / "ro" / "sub"}[
        kind
    ]
    if kind == "file":
        out.write_text("x")
    if kind == "unwritable":
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o500)
    code = cli.main(["simulate", "gaussian", "--samples", "5", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "out (--out)" in err and "Traceback" not in err
    with pytest.raises(ValueError, match=re.escape("out (--out)")):
        simulate("gaussian", dict(samples=5), out=str(out))


def test_output_directory_is_created_before_compiling(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "prepare_program", _must_not_compile)
    out = tmp_path / "new" / "run"
    with pytest.raises(AssertionError, match="compiled"):
        simulate("gaussian", dict(samples=5), out=str(out))
    assert out.is_dir() and not list(out.iterdir())  # created and checked, the probe file removed


# ------------------------------------------------------------- supported edges: they run and stay finite


@pytest.mark.parametrize(
    "setting,overrides",
    [
        ("regression", dict(dim=3, samples=10, first_samples=2, design="fresh")),  # model 1 under-determined
        ("mixture", dict(dim=3, samples=10, first_samples=2, synthetic_law="previous")),
        ("gaussian", dict(dim=1, samples=10, first_samples=2, ddof=1, metrics="trace_ratio,mean_error_sq")),
        ("kde", dict(samples=10, first_samples=4, policy="accumulate")),
    ],
)
def test_small_first_samples_runs_finite(setting, overrides):
    summary = simulate(setting, dict(overrides, generations=3, chains=8, seed=1))
    for name, entry in summary["metrics"].items():
        assert entry["nonfinite_chains"] == [0] * 4, name


def test_verifier_loops_keep_int32_counters_under_x64():
    """jax_enable_x64 makes integer sums int64: the refill and subsample loops' carries stay int32."""
    from collapse_jax.chain import distinct_uniform_indices
    from collapse_jax.types import ChainSpec, Verifier
    from collapse_jax.verify import verified_sample

    verifier = Verifier(lambda points: jnp.full(points.shape[:1], 0.5, points.dtype))
    spec = ChainSpec(num_generations=2, samples=6)

    def run(key):
        sample = lambda k, n: jax.random.normal(k, (n, 2))
        points, weights, stats = verified_sample(verifier, spec, sample, key, jax.random.fold_in(key, 1), 6)
        index = distinct_uniform_indices(key, jnp.asarray(9), 4, 12)
        return points, weights, stats, index

    with jax.enable_x64(True):
        points, weights, stats, index = jax.jit(run)(jax.random.key(0))
    assert points.shape == (6, 2) and float(stats["synthetic_kept"]) == 6.0
    assert 0 < float(stats["kept_fraction"]) <= 1 and len(set(np.asarray(index).tolist())) == 4


@pytest.mark.slow
def test_a_verifier_runs_under_x64_in_its_own_process(tmp_path):
    """--x64 flips JAX's global flag (sticky), so the end-to-end run gets a fresh process: the refill
    loop and the subsample loop of a verified accumulate-subsample chain."""
    import subprocess
    import sys

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "collapse_jax",
            "simulate",
            "verification",
            "--verifier",
            "oracle",
            "--keep-wrong",
            "0.5",
            "--generator",
            "fitted",
            "--policy",
            "accumulate-subsample",
            "--dim",
            "3",
            "--samples",
            "10",
            "--generations",
            "3",
            "--chains",
            "4",
            "--x64",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "XLA_FLAGS": ""},
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "summary.json").exists()


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")
def test_kde_collapsed_onto_a_point_gives_inf_not_nan():
    """M = 2 collapses within a few dozen generations; the bandwidth floor keeps h^2 normal."""
    summary = simulate("kde", dict(samples=2, generations=120, chains=4, seed=0))
    entry = summary["metrics"]["held_out_nll"]
    assert entry["nonfinite"]["nan"][-1] == 0 and entry["nonfinite_chains"][-1] == entry["nonfinite"]["+inf"][-1]
