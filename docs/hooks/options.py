"""MkDocs hook: option, metric and setting tables built from `collapse_jax.settings`, so they cannot drift.

A page asks for a table with an HTML comment on a line of its own:

    <!-- options: gaussian -->      the parameters the gaussian setting adds to the common ones
    <!-- options: gaussian all -->  every parameter of `collapse-jax simulate gaussian`
    <!-- options: chain -->         the chain parameters every setting shares
    <!-- options: run -->           the run parameters every setting shares
    <!-- metrics: gaussian -->      the metric names of a setting (its `metrics` parameter)
    <!-- settings -->               the registered settings, each linked to its page
    <!-- neural-defaults -->        the neural setting's defaults and metrics per task (`NEURAL_DEFAULTS`)
    <!-- command: sweep -->         the arguments of a subcommand (sweep, reproduce, list), from the parser
    <!-- command: simulate -->      the arguments every `simulate SETTING` takes besides the parameters

The tables are read from the same `Parameter` objects that build `collapse-jax simulate <setting> --help`
and validate every entry point, and from the command line's own parser (`collapse_jax.cli.build_parser`).
Reading them imports no JAX. An unknown name fails the build.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # the repository's own package, also when it is not installed
    sys.path.insert(0, _ROOT)

from collapse_jax.cli import build_parser  # noqa: E402
from collapse_jax.models import SETTINGS  # noqa: E402
from collapse_jax.models.neural.setting import NEURAL_DEFAULTS, NEURAL_METRICS  # noqa: E402
from collapse_jax.settings import CHAIN_PARAMETERS, RUN_PARAMETERS  # noqa: E402

# the page of each registered setting, relative to docs/settings/
SETTING_PAGES = {
    "gaussian": "gaussian.md",
    "regression": "regression.md",
    "logistic": "logistic.md",
    "discrete": "discrete.md",
    "tails": "tails.md",
    "kde": "kde-gmm.md",
    "diffusion": "diffusion.md",
    "gmm": "kde-gmm.md",
    "verification": "verification.md",
    "mixture": "mixture.md",
    "neural": "neural.md",
}

_MARKER = re.compile(
    r"^<!--\s*(options|metrics|settings|neural-defaults|command)\s*:?\s*([\w-]*)\s*(all)?\s*-->[ \t]*$", re.MULTILINE
)

_KINDS = {int: "integer", float: "number", str: "text", bool: "flag", "list": "list of names"}


def _cell(text: str) -> str:
    """Plain text safe inside a markdown table cell: no pipes, emphasis or HTML read into it."""
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _code(text: str) -> str:
    """A code span; a pipe inside one does not split a table cell."""
    return "`" + str(text) + "`"


def _default(parameter) -> str:
    if parameter.kind is bool:
        return "off"
    if parameter.kind == "list":
        return _code(",".join(parameter.default))
    if parameter.default == "":
        return "none"
    return _code(parameter.default)


def _allowed(parameter) -> str:
    if parameter.choices is not None:
        return ", ".join(_code(choice) for choice in parameter.choices)
    return _cell(parameter.allowed())  # the words of `--help`: "in [1, 4096]", "0 or in [0.01, 100]"


def options_table(parameters) -> str:
    """A markdown table of parameters: the name used in Python and sweep specs, the command-line flag,
    type, default, allowed values, whether a sweep over it shares one compiled program, and the help."""
    lines = [
        "| parameter | flag | type | default | allowed | traced | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in parameters:
        kind = "choice" if p.kind is str and p.choices is not None else _KINDS[p.kind]
        lines.append(
            f"| {_code(p.name)} | {_code(p.flag)} | {kind} | {_default(p)} | {_allowed(p)} "
            f"| {'yes' if p.traced else ''} | {_cell(p.help)} |"
        )
    return "\n".join(lines)


def parameters_of(name: str, everything: bool = False):
    """The parameters a marker names: "chain", "run", or a setting (its own, or with `everything` all)."""
    if name == "chain":
        return CHAIN_PARAMETERS
    if name == "run":
        return RUN_PARAMETERS
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r} in an options marker; one of chain, run, {', '.join(SETTINGS)}")
    definition = SETTINGS[name]
    return definition.all_parameters if everything else definition.own_parameters


def metrics_list(name: str) -> str:
    """The metric names of a setting, from its `metrics` parameter: defaults, and those on request."""
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r} in a metrics marker; one of {', '.join(SETTINGS)}")
    parameter = SETTINGS[name].parameter("metrics")
    default = list(parameter.default)
    extra = [m for m in parameter.choices or () if m not in default]
    lines = [f"- **Recorded by default:** {', '.join(_code(m) for m in default)}"]
    if extra:
        lines.append(f"- **Also available** (`--metrics`): {', '.join(_code(m) for m in extra)}")
    lines.append(f"- `--metrics`: {_cell(parameter.help)}")
    return "\n".join(lines)


def settings_table() -> str:
    """The registered settings, each linked to its page (a page of docs/settings/)."""
    missing = [name for name in SETTINGS if name not in SETTING_PAGES]
    if missing:
        raise ValueError(f"setting(s) without a documentation page: {', '.join(missing)} (docs/hooks/options.py)")
    lines = ["| setting | page | description |", "|---|---|---|"]
    for name, definition in SETTINGS.items():
        page = SETTING_PAGES[name]
        title = page[: -len(".md")]
        lines.append(f"| {_code(name)} | [{title}]({page}) | {_cell(definition.description)} |")
    return "\n".join(lines)


def neural_defaults_table() -> str:
    """The neural setting's per-task defaults (they replace the parameter defaults where a run does not
    set them) and each task's metrics."""
    tasks = list(NEURAL_DEFAULTS)
    names = list(dict.fromkeys(name for task in tasks for name in NEURAL_DEFAULTS[task]))
    lines = ["| parameter | " + " | ".join(_code(task) for task in tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for name in names:
        cells = [_code(NEURAL_DEFAULTS[task][name]) if name in NEURAL_DEFAULTS[task] else "" for task in tasks]
        lines.append(f"| {_code(name)} | " + " | ".join(cells) + " |")
    metrics = [", ".join(_code(m) for m in NEURAL_METRICS[task]) for task in tasks]
    lines.append("| metrics | " + " | ".join(metrics) + " |")
    return "\n".join(lines)


def _subcommand(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if name not in commands.choices:
        raise ValueError(f"unknown command {name!r} in a command marker; one of {', '.join(commands.choices)}")
    return commands.choices[name]


def command_table(name: str) -> str:
    """The arguments of `collapse-jax NAME` as its parser (`--help`) has them. For `simulate`, the arguments
    every setting's subcommand takes besides the setting's parameters (those are the options tables)."""
    parser = _subcommand(name)
    skip = set()
    if name == "simulate":
        (settings,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = settings.choices[next(iter(SETTINGS))]
        skip = {p.name for p in SETTINGS[next(iter(SETTINGS))].all_parameters}
    lines = ["| argument | description |", "|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.dest in skip:
            continue
        if action.option_strings:
            takes_value = action.nargs != 0
            argument = " ".join(action.option_strings) + (
                f" {action.metavar or action.dest.upper()}" if takes_value else ""
            )
        else:
            argument = action.dest.upper() + (" ..." if action.nargs in ("*", "+") else "")
        required = " (required)" if action.required and action.option_strings else ""
        lines.append(f"| {_code(argument)} | {_cell(action.help or '')}{required} |")
    if len(lines) == 2:
        return f"`collapse-jax {name}` takes no arguments."
    return "\n".join(lines)


def render(markdown: str) -> str:
    """The page with every marker replaced by its table."""

    def replace(match: re.Match) -> str:
        kind, name, everything = match.group(1), match.group(2), bool(match.group(3))
        if kind == "options":
            return options_table(parameters_of(name, everything))
        if kind == "metrics":
            return metrics_list(name)
        if kind == "neural-defaults":
            return neural_defaults_table()
        if kind == "command":
            return command_table(name)
        return settings_table()

    return _MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, **kwargs) -> str:
    return render(markdown)
