"""Fixed costs: what `import collapse_jax`, the command line's help and `list`, and theory load."""

import importlib
import subprocess
import sys

HEAVY = ("jax", "flax", "optax", "matplotlib", "rich")


def _loaded_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running `code`."""
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1].split()  # the last line: help and listings print before it


def test_import_loads_no_network_plotting_or_progress_library():
    assert not set(_loaded_after("import collapse_jax")) & {"flax", "optax", "matplotlib", "rich"}


def test_help_and_list_load_no_jax():
    code = """
from collapse_jax.cli import main
for argv in (["--help"], ["simulate", "--help"], ["simulate", "gaussian", "--help"], ["simulate", "neural", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
assert main(["list"]) == 0
"""
    assert _loaded_after(code) == []


def test_public_names_resolve():
    import collapse_jax

    for name in collapse_jax.__all__:
        assert getattr(collapse_jax, name) is not None
    assert callable(collapse_jax.simulate)


def test_listing_matches_the_experiment_modules():
    """`list` reads each experiment's name and description from its source; they match the modules'."""
    from experiments import MODULES, REGISTRY

    for module in MODULES:
        experiment = importlib.import_module(f"experiments.{module}").EXPERIMENT
        assert REGISTRY[experiment.name].description == experiment.description
    assert len(REGISTRY) == len(MODULES)


def test_theory_compiles_nothing():
    """Theory for a command-line run is NumPy: no XLA program is compiled for it."""
    code = """
import jax
import numpy as np
from collapse_jax.settings import get_setting
from collapse_jax.simulate import predictions_for
runs = [("gaussian", {"dim": 1, "method": "sufficient"}), ("gaussian", {"dim": 3, "policy": "accumulate"}),
        ("regression", {}), ("regression", {"downstream_samples": 50}), ("discrete", {}),
        ("discrete", {"policy": "accumulate"}), ("tails", {}), ("verification", {}), ("mixture", {})]
compiled = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: compiled.append(event) if "compil" in event else None)
for setting, overrides in runs:
    predictions_for(setting, get_setting(setting).resolve(overrides))
assert not compiled, compiled
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_special_functions_match_scipy():
    """theory.special (NumPy, no compile) agrees with SciPy to rounding on the arguments theory uses."""
    import numpy as np
    import scipy.special

    from theory import special

    x = np.concatenate([np.linspace(0.5, 30.0, 300), np.geomspace(0.5, 1e9, 300)])
    np.testing.assert_allclose(special.digamma(x), scipy.special.digamma(x), rtol=1e-13, atol=1e-14)
    for order in (1, 2, 3):
        np.testing.assert_allclose(special.polygamma(order, x), scipy.special.polygamma(order, x), rtol=1e-13)
    np.testing.assert_allclose(special.gammaln(x), scipy.special.gammaln(x), rtol=1e-14, atol=1e-14)
    for s in (1.001, 1.1, 1.5, 2.0, 3.0, 7.5, 40.0):
        assert abs(special.zeta(s) / scipy.special.zeta(s, 1) - 1) < 1e-14
    assert abs(special.normal_quantile(0.95) - np.sqrt(2) * scipy.special.erfinv(0.9)) < 1e-14
