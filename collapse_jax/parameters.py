"""`Parameter`: one option of a setting (name, type, default, allowed range, traced or static), how a
value given for it is checked and normalised, and how an option string becomes a typed value (`parse`,
once, at resolution). JAX-free: the command line and the documentation read it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One parameter of a setting. `kind` is int, float, str, bool or "list" (comma-separated names).

    Numbers must lie in [low, high] (finite; integers as integers, NumPy scalars accepted) or be one
    of `also` (e.g. 0 meaning "the default"). `traced` parameters enter the compiled program as array
    values (they change no shape or code path), so a sweep over them runs inside one compile; the
    others are static.

    `parse(value, above)` turns an option string (`power:1.5`, `file:PATH`) into its typed value (an
    `Option`, an array, numbers), given the typed values of the parameters above it in the setting's
    table; it raises ValueError naming the parameter. It runs once per resolved config
    (`SettingDefinition.values`): the config itself, `summary.json` and sweep cell ids keep the user's
    string; builders, checks and theory see only the typed value.
    """

    name: str
    kind: Any
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    traced: bool = False
    also: tuple = ()
    parse: Callable[[Any, dict], Any] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def where(self) -> str:
        return f"{self.name} ({self.flag})"

    def check(self, value) -> Any:
        """Return the value (normalised to a plain Python value) or raise ValueError naming the
        parameter and its allowed range. NaN, +-inf, booleans as numbers and non-integral integers are
        refused; NumPy scalars (and 0-d arrays) are accepted."""
        where = self.where
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if self.kind is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{where} must be true or false, got {value!r}")
            return bool(value)
        if self.kind is int:
            value = self._integer(value)
        elif self.kind is float:
            if not is_number(value):
                raise ValueError(f"{where} must be a number {self.allowed()}, got {value!r}")
            if not math.isfinite(float(value)):
                raise ValueError(f"{where} must be a finite number {self.allowed()}, got {value!r}")
            value = float(value)
        elif self.kind == "list":
            return self._list(value)
        elif self.kind is str:
            if not isinstance(value, str):
                raise ValueError(f"{where} must be a string, got {value!r}")
            value = str(value)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{where} must be one of {', '.join(map(str, self.choices))}; got {value!r}")
        if value in self.also:
            return value
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            kind = "an integer " if self.kind is int else ""
            raise ValueError(f"{where} must be {kind}{self.allowed()}, got {value!r}")
        return value

    def _integer(self, value) -> int:
        original = value
        if is_number(value) and not isinstance(value, (int, np.integer)):
            value = float(value)
            if not (math.isfinite(value) and value.is_integer()):
                raise ValueError(f"{self.where} must be an integer {self.allowed()}, got {original!r}")
            outside = (self.low is not None and value < self.low) or (self.high is not None and value > self.high)
            if outside and value not in self.also:  # before int(): 1e30 is reported as given
                raise ValueError(f"{self.where} must be an integer {self.allowed()}, got {original!r}")
        elif not is_number(value):
            raise ValueError(f"{self.where} must be an integer {self.allowed()}, got {original!r}")
        return int(value)

    def _list(self, value) -> tuple:
        where = self.where
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        try:
            items = list(value)
        except TypeError:
            items = None
        if items is not None:
            items = [
                str(int(v)) if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) else v
                for v in items
            ]
        if items is None or not items or not all(isinstance(v, str) for v in items):
            allowed = f" from {', '.join(self.choices)}" if self.choices else ""
            raise ValueError(f"{where} must be a non-empty comma-separated list of names{allowed}; got {value!r}")
        value = tuple(str(v) for v in items)
        bad = [v for v in value if self.choices and v not in self.choices]
        if bad:
            raise ValueError(f"{where} must be a non-empty list from {', '.join(self.choices)}; got {value!r}")
        return value

    def allowed(self) -> str:
        """The allowed range in words, e.g. "in [1, 4096]" or "0 or in [0.01, 100]" ("" if unbounded)."""
        number = (lambda v: str(int(v))) if self.kind is int else (lambda v: f"{v:g}")
        if self.low is not None and self.high is not None:
            text = f"in [{number(self.low)}, {number(self.high)}]"
        elif self.low is not None:
            text = f">= {number(self.low)}"
        elif self.high is not None:
            text = f"<= {number(self.high)}"
        else:
            return ""
        if self.also:
            text = " or ".join(number(v) for v in self.also) + " or " + text
        return text


class Option(NamedTuple):
    """The typed value of an option string `KIND[:NUMBERS]`: `Option("power", 1.5)` for `power:1.5`,
    `Option("isotropic")` for `isotropic`, `Option("file", array)` for `file:PATH` (the file read once).
    A plain tuple: theory unpacks it without importing this package."""

    kind: str
    value: Any = None


def is_number(value) -> bool:
    """A real number (Python or NumPy), not a boolean."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
