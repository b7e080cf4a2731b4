"""The house rules of the layout (docs/architecture.md), checked on the source so that they stay true."""

import ast
import importlib
import os
import subprocess
import sys

import pytest

from collapse_jax.models import SLICES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "collapse_jax")
MAX_MODULE_LINES = 500


def _modules(folder):
    for directory, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def _imports(path):
    """(module imported, names imported from it) for every import statement of a file."""
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, tuple(alias.name for alias in node.names)


def test_no_module_of_the_library_exceeds_500_lines():
    long = {}
    for path in _modules(PACKAGE):
        with open(path) as file:
            lines = sum(1 for _ in file)
        if lines > MAX_MODULE_LINES:
            long[os.path.relpath(path, ROOT)] = lines
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_layers_read_downwards_only():
    """The library never imports the figure scripts (the CLI finds them through an entry point), and the
    theory never imports the library."""
    for path in _modules(PACKAGE):
        for module, _ in _imports(path):
            assert module.split(".")[0] != "experiments", f"{path} imports {module}"
    for path in _modules(os.path.join(ROOT, "theory")):
        for module, _ in _imports(path):
            assert module.split(".")[0] != "collapse_jax", f"{path} imports {module}"


def test_no_private_name_is_used_across_modules():
    """`from collapse_jax.x import _name` and `x._name` on an imported library module are refused."""
    for path in _modules(PACKAGE):
        source = open(path).read()
        imported = {}
        for module, names in _imports(path):
            if module.startswith("collapse_jax"):
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                assert not private, f"{os.path.relpath(path, ROOT)} imports private {private} from {module}"
                for name in names:
                    imported[name] = module
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                raise AssertionError(f"{os.path.relpath(path, ROOT)} uses {node.value.id}.{node.attr}")


def test_every_setting_is_a_slice_with_a_theory_of_its_name():
    from collapse_jax.models import SLICES, registered_settings

    assert list(registered_settings()) == list(SLICES)
    for name, definition in registered_settings().items():
        assert definition.name == name
        assert os.path.exists(os.path.join(PACKAGE, "models", name, "setting.py"))
        assert importlib.util.find_spec(f"theory.{name}") is not None, f"no theory/{name}.py"


def test_setting_tables_import_no_jax():
    """Reading every parameter table (the CLI's --help, the docs) must not start JAX."""
    code = (
        "import sys; from collapse_jax.models import registered_settings; registered_settings(); "
        "import collapse_jax.settings, collapse_jax.options; print('jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_figures_are_found_through_their_entry_point():
    from collapse_jax.cli import figure_providers

    providers = figure_providers()
    assert any(provider.__name__ == "experiments" for provider in providers)
    assert "shumailov-gaussian" in {name for provider in providers for name in provider.REGISTRY}


@pytest.mark.parametrize("module", ["collapse_jax.types", "collapse_jax.policies"])
def test_shared_declarations_import_no_jax(module):
    code = f"import sys, {module}; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


SMALL_CONFIGS = {"tails": {"categories": 100, "train_sizes": "10"}, "neural": {"steps": 1, "width": 4, "test_size": 4}}


@pytest.mark.parametrize("name", SLICES)
def test_declared_sufficient_path_is_the_estimators(name):
    """`SettingDefinition.sufficient_path` (read by the engine's method rule before anything is built) is
    declared only where the built estimator has exact sufficient statistics, and where it is not declared
    the method is refused with the one engine message."""
    from collapse_jax.models import get_setting

    definition = get_setting(name)
    config = definition.resolve({"chains": 2, "generations": 2, **SMALL_CONFIGS.get(name, {})})
    setting, _ = definition.instantiate(config)
    assert setting.estimator.has_sufficient_path or not definition.sufficient_path
    if not definition.sufficient_path:
        with pytest.raises(ValueError, match=r"method \(--method\) must be 'samples' for the " + name):
            definition.resolve({"method": "sufficient", **SMALL_CONFIGS.get(name, {})})
