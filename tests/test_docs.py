"""The documentation: option tables generated from the settings' parameter tables, pages and README links.

Fast and JAX-free: the hook (docs/hooks/options.py) reads `collapse_jax.settings` only; nothing compiles.
"""

import importlib.util
import os
import re
import subprocess
import sys

import pytest
import yaml

from collapse_jax.settings import CHAIN_PARAMETERS, RUN_PARAMETERS, SETTINGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
HOOK = os.path.join(DOCS, "hooks", "options.py")


def _load_hook():
    spec = importlib.util.spec_from_file_location("docs_options_hook", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = _load_hook()


def _names_in(table: str) -> set:
    """The parameter names of a generated table (its first column)."""
    return {m.group(1) for m in re.finditer(r"^\| `([\w.-]+)` \|", table, re.MULTILINE)}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_options_table_lists_every_parameter(name):
    definition = SETTINGS[name]
    own = hook.render(f"<!-- options: {name} -->")
    assert _names_in(own) == {p.name for p in definition.own_parameters}
    everything = hook.render(f"<!-- options: {name} all -->")
    assert _names_in(everything) == {p.name for p in definition.all_parameters}
    for parameter in definition.all_parameters:
        assert f"`{parameter.flag}`" in everything
    assert "<!--" not in own + everything


def test_common_tables_list_every_parameter():
    assert _names_in(hook.render("<!-- options: chain -->")) == {p.name for p in CHAIN_PARAMETERS}
    assert _names_in(hook.render("<!-- options: run -->")) == {p.name for p in RUN_PARAMETERS}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_metrics_list_names_the_default_metrics(name):
    text = hook.render(f"<!-- metrics: {name} -->")
    for metric in SETTINGS[name].parameter("metrics").default:
        assert f"`{metric}`" in text


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_command_tables_list_every_argument(command):
    import argparse

    from collapse_jax.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    table = hook.render(f"<!-- command: {command} -->")
    for action in commands.choices[command]._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert f"`{flag}" in table


def test_simulate_table_lists_the_arguments_that_are_not_parameters():
    table = hook.render("<!-- command: simulate -->")
    assert all(f"`{flag}" in table for flag in ("--out", "--save-chains", "--quiet"))
    assert "--policy" not in table


def test_unknown_marker_name_fails_the_build():
    with pytest.raises(ValueError, match="unknown setting"):
        hook.render("<!-- options: no-such-setting -->")


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_setting_has_a_page_with_its_tables(name):
    path = os.path.join(DOCS, "settings", hook.SETTING_PAGES[name])
    with open(path, encoding="utf-8") as stream:
        page = stream.read()
    assert f"<!-- options: {name} -->" in page
    assert f"<!-- metrics: {name} -->" in page
    assert f"`{name}`" in hook.render("<!-- settings -->")


def _nav_pages(entries):
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from _nav_pages(value)
        else:
            yield value


def test_every_nav_page_exists():
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as stream:
        config = yaml.safe_load(stream)
    pages = list(_nav_pages(config["nav"]))
    assert pages
    missing = [page for page in pages if not os.path.isfile(os.path.join(DOCS, page))]
    assert not missing


def test_readme_links_into_docs_exist():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as stream:
        readme = stream.read()
    targets = re.findall(r"\]\((?:\./)?(docs/[^)\s#]+)", readme)
    assert targets, "the README links into docs/"
    missing = [target for target in targets if not os.path.isfile(os.path.join(ROOT, target))]
    assert not missing


def test_hook_imports_no_jax():
    code = f"import importlib.util, sys; s = importlib.util.spec_from_file_location('h', {HOOK!r}); "
    code += (
        "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); m.render('<!-- options: neural all -->'); "
    )
    code += "assert 'jax' not in sys.modules, 'the docs hook imported JAX'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_shipped_figures_in_the_manifest_are_current():
    """docs/manifest.json records, for each figure made with the current conventions, the hash of the
    code that makes it (its experiment module and experiments/common.py, docstrings and formatting left
    out): a change to that code makes the shipped figure stale until it is made again."""
    import json

    from experiments import source_hash

    with open(os.path.join(DOCS, "manifest.json"), encoding="utf-8") as stream:
        manifest = json.load(stream)
    assert manifest, "docs/manifest.json lists the shipped figures"
    stale = [name for name, entry in manifest.items() if entry["source_hash"] != source_hash(name)]
    assert not stale, (
        f"figures older than their code: {', '.join(stale)}; run `collapse-jax reproduce NAME --out DIR` "
        "and copy DIR/NAME/NAME.png and DIR/manifest.json's entries into docs/"
    )
    for name, entry in manifest.items():
        assert os.path.exists(os.path.join(DOCS, f"{name}.png")), name
        assert entry["mode"] == "full" and entry.get("fail", 0) == 0, (name, entry)


def test_source_hash_ignores_docstrings_and_formatting(tmp_path, monkeypatch):
    import experiments

    code = 'def run(x):\n    """doc"""\n    return x + 1\n'
    for name, text in (("a", code), ("b", code.replace('"""doc"""', '"""other doc"""').replace("x + 1", "x+1"))):
        (tmp_path / f"{name}.py").write_text(text)
    (tmp_path / "common.py").write_text("")
    monkeypatch.setattr(experiments, "_module_of", lambda name: name)
    monkeypatch.setattr(experiments.os.path, "dirname", lambda path: str(tmp_path))
    assert experiments.source_hash("a") == experiments.source_hash("b")
    (tmp_path / "b.py").write_text(code.replace("x + 1", "x + 2"))
    assert experiments.source_hash("a") != experiments.source_hash("b")
