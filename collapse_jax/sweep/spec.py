"""Reading and validating a sweep spec, and its cells: `load_spec` and `parse_spec` check a TOML spec (or a
dict) parameter by parameter with errors that name the offending key, `expand` resolves every cell of the
Cartesian product of its axes, and `cell_id` gives each cell its stable id (see `collapse_jax.sweep`)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import tomllib

from collapse_jax.settings import RUN_PARAMETERS, SETTINGS, get_setting

SWEEP_SCHEMA = "collapse-jax/sweep/2"  # /2: cell ids by `cell_id` (ID_SCHEMA); /1: ids of the whole config
LEGACY_SCHEMAS = ("collapse-jax/sweep/1",)  # read, and migrated when a run joins the folder
ID_SCHEMA = "collapse-jax/cell-id/2"
SPEC_KEYS = ("setting", "name", "description", "save_chains", "fixed", "axes")
NOT_AN_AXIS = tuple(p.name for p in RUN_PARAMETERS)


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep. `axes` keeps the written order; `cells` are full configs."""

    setting: str
    name: str
    fixed: dict
    axes: dict
    save_chains: bool
    description: str = ""

    def as_dict(self) -> dict:
        return {
            "setting": self.setting,
            "name": self.name,
            "description": self.description,
            "save_chains": self.save_chains,
            "fixed": self.fixed,
            "axes": self.axes,
        }


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of a sweep: its position on the axes, its full config and its stable id."""

    id: str
    index: tuple[int, ...]
    values: dict
    config: dict


def load_spec(path: str) -> SweepSpec:
    """Parse and validate a TOML spec file (see the docstring of `collapse_jax.sweep`)."""
    try:
        with open(path, "rb") as stream:
            raw = tomllib.load(stream)
    except FileNotFoundError:
        raise ValueError(f"spec: {path}: no such file") from None
    except OSError as error:
        raise ValueError(f"spec: cannot read {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not valid TOML: not UTF-8 text") from None
    raw.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    return parse_spec(raw)


_TOML_TYPES = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
)


def _got(value) -> str:
    """`value` and its TOML type, for error messages: `5 (an integer)`."""
    kind = next((name for t, name in _TOML_TYPES if isinstance(value, t)), type(value).__name__)
    return f"{value!r} ({kind})"


def _allowed(parameter) -> str:
    """What a parameter accepts, in TOML words."""
    choices = f" (one of {', '.join(map(str, parameter.choices))})" if parameter.choices else ""
    if parameter.kind is bool:
        return "true or false"
    if parameter.kind is int:
        return "an integer" + choices
    if parameter.kind is float:
        return "a number"
    if parameter.kind == "list":
        names = f" from {', '.join(parameter.choices)}" if parameter.choices else ""
        return f"an array of names{names} (or one comma-separated string)"
    return "a string" + choices


def _has_type(parameter, value) -> bool:
    if parameter.kind is bool:
        return isinstance(value, bool)
    if parameter.kind in (int, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if parameter.kind == "list":
        return isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value))
    return isinstance(value, str)


def _check_value(parameter, value, where: str):
    """The parameter's check, after a type check whose error names `where` and what is allowed."""
    if not _has_type(parameter, value):
        raise ValueError(f"{where}: must be {_allowed(parameter)}, got {_got(value)}")
    try:
        return plain_value(parameter.check(value))
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def parse_spec(raw: dict) -> SweepSpec:
    """Validate a spec given as a dict; errors name the offending key (e.g. `axes.dim[2]`)."""
    if not isinstance(raw, dict):
        raise ValueError(f"a sweep spec must be a table, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key in the spec (allowed: {', '.join(SPEC_KEYS)})")
    if "setting" not in raw:
        raise ValueError(f"setting: missing; name one of {', '.join(SETTINGS)}")
    setting = raw["setting"]
    if not isinstance(setting, str) or setting not in SETTINGS:
        raise ValueError(f"setting: must be a string, one of {', '.join(SETTINGS)}; got {_got(setting)}")
    for key, kind, allowed in (
        ("name", str, "a non-empty string"),
        ("description", str, "a string"),
        ("save_chains", bool, "true or false"),
    ):
        if key in raw and (not isinstance(raw[key], kind) or (key == "name" and not raw[key])):
            raise ValueError(f"{key}: must be {allowed}, got {_got(raw[key])}")
    definition = get_setting(setting)
    known = {p.name: p for p in definition.all_parameters}
    fixed, axes = raw.get("fixed", {}), raw.get("axes", {})
    for section, table in (("fixed", fixed), ("axes", axes)):
        if not isinstance(table, dict):
            what = "parameter = value" if section == "fixed" else "parameter = [values]"
            raise ValueError(f"{section}: must be a table of {what} ([{section}]), got {_got(table)}")
        for key in table:
            if key not in known:
                raise ValueError(
                    f"{section}.{key}: unknown parameter of setting {setting!r} (known: {', '.join(known)})"
                )
    checked_fixed = {key: _check_value(known[key], value, f"fixed.{key}") for key, value in fixed.items()}
    checked_axes = {}
    for key, values in axes.items():
        if key in fixed:
            raise ValueError(f"axes.{key}: also given in [fixed]; a parameter is either fixed or an axis")
        if key in NOT_AN_AXIS:
            raise ValueError(f"axes.{key}: a run option, not an axis; put it in [fixed]")
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"axes.{key}: must be a non-empty list of values (each {_allowed(known[key])}), got {_got(values)}"
            )
        checked = [_check_value(known[key], value, f"axes.{key}[{i}]") for i, value in enumerate(values)]
        if len({json.dumps(v) for v in checked}) != len(checked):
            raise ValueError(f"axes.{key}: repeated values {checked!r}")
        checked_axes[key] = checked
    name = raw.get("name", setting)
    save_chains = raw.get("save_chains", False)
    spec = SweepSpec(setting, name, checked_fixed, checked_axes, save_chains, raw.get("description", ""))
    expand(spec)  # every cell must resolve: errors name the cell before anything runs
    return spec


def plain_value(value):
    """A value as a resolved config holds it: a tuple becomes a list (as in JSON)."""
    return list(value) if isinstance(value, tuple) else value


def declared_defaults(setting: str) -> dict:
    """Each parameter's declared default, normalised as a resolved config holds it."""
    defaults = {}
    for parameter in get_setting(setting).all_parameters:
        try:
            defaults[parameter.name] = plain_value(parameter.check(parameter.default))
        except ValueError:  # a default outside the checked range (e.g. a sentinel): compared as written
            defaults[parameter.name] = plain_value(parameter.default)
    return defaults


def cell_id(setting: str, config: dict) -> str:
    """Stable id of a resolved config: a hash of the setting's name, `ID_SCHEMA` and the values that
    differ from the parameters' declared defaults (`chunk_size` never counts: it changes no result).

    A parameter added later with a default leaves every existing id unchanged; writing a default out
    (`ddof = 0` in [fixed]) gives the id of leaving it out. Changing a declared default changes what
    the ids of cells at the old and new default mean: `ID_SCHEMA` must then change too."""
    defaults = declared_defaults(setting)
    identity = {
        k: plain_value(v)
        for k, v in config.items()
        if k != "chunk_size" and (k not in defaults or plain_value(v) != defaults[k])
    }
    text = json.dumps({"ids": ID_SCHEMA, "setting": setting, "config": identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def legacy_cell_id(setting: str, config: dict) -> str:
    """The id of manifest schema `collapse-jax/sweep/1`: a hash of the setting and the whole config."""
    identity = {k: plain_value(v) for k, v in config.items() if k != "chunk_size"}
    text = json.dumps({"setting": setting, "config": identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def expand(spec: SweepSpec) -> list[Cell]:
    """Every cell of a spec, in axis order, each resolved (validated) by its setting."""
    definition = get_setting(spec.setting)
    names = list(spec.axes)
    cells = []
    for index in itertools.product(*(range(len(spec.axes[n])) for n in names)):
        values = {n: spec.axes[n][i] for n, i in zip(names, index)}
        try:
            config = definition.resolve({**spec.fixed, **values})
        except ValueError as error:
            where = ", ".join(f"{n}={v}" for n, v in values.items()) or "the only cell"
            raise ValueError(f"cell ({where}): {error}") from None
        cells.append(Cell(cell_id(spec.setting, config), tuple(index), values, config))
    return cells


def spec_and_folder(spec, out: str | None) -> tuple[SweepSpec, str]:
    """The parsed spec (a path, a dict or a SweepSpec) and its output folder (default sweeps/<name>)."""
    if isinstance(spec, str):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec)
    if out is not None and not str(out).strip():
        raise ValueError("out (--out): must name a directory, got an empty path (omit it for sweeps/<name>)")
    return spec, out or os.path.join("sweeps", spec.name)
