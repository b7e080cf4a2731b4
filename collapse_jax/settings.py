"""Registered settings: their parameters (names, defaults, allowed ranges) and how to build a chain.

One table per setting drives the command line (`collapse-jax simulate <setting>`), the validation of
every entry point (errors name the parameter and its allowed range before anything compiles), and the
`config` block of `summary.json`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from collapse_jax.options import (
    CURATIONS,
    METHODS,
    POLICIES,
    REAL_DRAWS,
    REAL_SOURCES,
    REWARD_METRIC,
)

if TYPE_CHECKING:  # the engine (JAX) is imported where a chain is built or checked, not to read the tables
    from collapse_jax.chain import ChainSpec, Reward, Setting


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One parameter of a setting. `kind` is int, float, str, bool or "list" (comma-separated names).

    Numbers must lie in [low, high] (finite; integers as integers, NumPy scalars accepted) or be one
    of `also` (e.g. 0 meaning "the default"). `traced` parameters enter the compiled program as array
    values (they change no shape or code path), so a sweep over them runs inside one compile; the
    others are static.
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
            if not _is_number(value):
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
        if _is_number(value) and not isinstance(value, (int, np.integer)):
            value = float(value)
            if not (math.isfinite(value) and value.is_integer()):
                raise ValueError(f"{self.where} must be an integer {self.allowed()}, got {original!r}")
            outside = (self.low is not None and value < self.low) or (self.high is not None and value > self.high)
            if outside and value not in self.also:  # before int(): 1e30 is reported as given
                raise ValueError(f"{self.where} must be an integer {self.allowed()}, got {original!r}")
        elif not _is_number(value):
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


def _is_number(value) -> bool:
    """A real number (Python or NumPy), not a boolean."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


CHAIN_PARAMETERS = (
    Parameter("policy", str, "replace", "pool rule: what model k is fitted on", choices=POLICIES),
    Parameter(
        "samples",
        int,
        100,
        "M, points per generation (M_1 with --sample-growth); a run whose one "
        "chain needs more than the free memory is refused",
        low=1,
        high=10**9,
    ),
    Parameter("generations", int, 100, "G, number of fitted models (generations 1..G)", low=1, high=10**6),
    Parameter(
        "chains", int, 1000, "number of independent chains (chain ids are 32-bit: at most 2^32)", low=1, high=2**32
    ),
    Parameter("seed", int, 0, "root seed", low=0, high=2**32 - 1),
    Parameter("real_fraction", float, 0.0, "alpha: round(alpha*M) real points per generation k >= 2", low=0, high=1),
    Parameter(
        "real_weight",
        float,
        -1.0,
        "w: share of each batch's weight carried by its real points (He, Xu & Cheng 2025): each real point "
        "weighs w*M/r, each synthetic (1-w)*M/(M-r); needs 0 < round(alpha*M) < M; -1: every point weighs 1",
        low=0,
        high=1,
        also=(-1.0,),
    ),
    Parameter(
        "real_source",
        str,
        "fresh",
        "real points: fresh draws or draws from the generation-1 sample",
        choices=REAL_SOURCES,
    ),
    Parameter(
        "real_draw",
        str,
        "fixed",
        "fixed: exactly round(alpha*M) real points; mixture: each point real with "
        "probability alpha (Kanabar & Gastpar)",
        choices=REAL_DRAWS,
    ),
    Parameter(
        "method",
        str,
        "samples",
        "samples: draw points; sufficient: draw exact sufficient statistics (cost "
        "independent of M); auto: sufficient where the setting and pool rule have that path, else samples "
        "(summary.json records the one used)",
        choices=METHODS + ("auto",),
    ),
    Parameter("sample_growth", float, 0.0, "a: M_k = round(M k^a) (sufficient path)", low=0, high=4),
    Parameter("shared_real_data", bool, False, "all chains share the same real draws (results conditional on them)"),
    Parameter(
        "first_samples",
        int,
        0,
        "M_1: real points model 1 is fitted on (0: M); with --real-source original "
        "and --real-fraction M_1/M every generation reuses exactly them",
        low=0,
        high=10**9,
    ),
)

# the engine's sampling temperature, for settings whose estimator has `temper` (SettingDefinition.tempers)
TEMPERATURE = Parameter(
    "temperature",
    float,
    1.0,
    "tau: every model is sampled at temperature tau (Marchi et al. 2024; a Gaussian's covariance times tau, "
    "a categorical law raised to 1/tau); real points are not tempered",
    low=1e-3,
    high=100,
    traced=True,
)

# the engine's curation by a reward (Ferbach et al. 2024), for settings with a reward (SettingDefinition.rewards);
# the setting gives the help of `reward` (its forms)
CURATION = Parameter(
    "curation",
    str,
    "best",
    "with --reward: best (best-of-K keeps the highest reward), bradley-terry (best-of-K keeps candidate j "
    "with probability e^r_j / sum_i e^r_i) or tilted (the K -> infinity limit: draws from the model's law "
    "times e^r, renormalised; leave --best-of at 1)",
    choices=CURATIONS,
)
REWARD_BEST_OF = Parameter(
    "best_of",
    int,
    1,
    "K: with --reward, each synthetic point is picked among K candidates (1: no curation)",
    low=1,
    high=1024,
)

RUN_PARAMETERS = (
    Parameter("chunk_size", int, 0, "chains per compiled call (0: sized from free memory)", low=0, high=2**32),
    Parameter(
        "quantile_chains",
        int,
        10_000,
        "quantiles are computed from the first N chains (their histories are held in host memory)",
        low=1,
        high=10**6,
    ),
    Parameter("x64", bool, False, "simulate in float64"),
)


@dataclasses.dataclass(frozen=True)
class SettingDefinition:
    """A registered setting: its own parameters and a builder `build(config) -> (Setting, ChainSpec)`."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    build: Callable[[dict], tuple[Setting, ChainSpec]]
    check: Callable[[dict], None] = lambda config: None
    traced_sample_size: bool = False  # on method="sufficient", M is traced (Setting.sample_size)
    static_extras: Callable[[dict], dict] = lambda config: {}  # static values derived from traced ones
    complete: Callable[[dict, dict], dict] = lambda config, overrides: config  # defaults that depend on others
    report_generations: bool = False  # the chain reports each finished generation (slow generations)
    notes: Callable[[dict], tuple[str, ...]] = lambda config: ()  # said in summary.json (e.g. a default left out)
    tempers: bool = False  # the estimator samples at a temperature: the engine's `temperature` parameter
    # `reward(config) -> chain.Reward | None` (None: --reward none) and the help of its `reward` parameter:
    # the engine's curation (`reward`, `curation`, `best_of`; see `curated`)
    reward: Callable[[dict], Reward | None] | None = None
    reward_help: str = ""

    @property
    def own_parameters(self) -> tuple[Parameter, ...]:
        curation = ()
        if self.reward is not None:
            curation = (Parameter("reward", str, "none", self.reward_help), CURATION, REWARD_BEST_OF)
        return self.parameters + ((TEMPERATURE,) if self.tempers else ()) + curation

    @property
    def all_parameters(self) -> tuple[Parameter, ...]:
        return CHAIN_PARAMETERS + self.own_parameters + RUN_PARAMETERS

    def tempered(self, config: dict) -> bool:
        """Whether this config samples its models at a temperature other than 1 (`ChainSpec.tempered`)."""
        return self.tempers and config["temperature"] != 1.0

    @property
    def traced_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.own_parameters if p.traced)

    def parameter(self, name: str) -> Parameter:
        for p in self.all_parameters:
            if p.name == name:
                return p
        raise ValueError(f"unknown parameter for setting {self.name!r}: {name}")

    def traced_for(self, config: dict) -> tuple[str, ...]:
        """The parameters that enter this config's program as arrays (the others fix the program)."""
        extra = ("samples",) if self.traced_sample_size and config["method"] == "sufficient" else ()
        if weighs_real_points(config):
            extra += ("real_weight",)
        return self.traced_names + extra

    def program_key(self, config: dict) -> str:
        """Configs with equal keys share one compiled program (they differ in traced values only)."""
        import json

        shape_free = set(self.traced_for(config)) | {"seed", "chains"}
        static = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items() if k not in shape_free}
        tempered = {"_tempered": True} if self.tempered(config) else {}  # tau is traced, tempering is not
        return json.dumps({**static, **self.static_extras(config), **tempered}, sort_keys=True)

    def program(self, config: dict):
        """`(setting_fn, spec)` of a resolved config: `setting_fn(hyper)` builds the setting with the
        traced parameters (`traced_for(config)`) taken from `hyper` (concrete or traced values)."""
        extras = self.static_extras(config)
        spec = dataclasses.replace(
            chain_spec(config), report_generations=self.report_generations, tempered=self.tempered(config)
        )
        if "samples" in self.traced_for(config):
            spec = dataclasses.replace(spec, samples=1)  # the sufficient path reads Setting.sample_size

        def setting_fn(hyper: dict) -> Setting:
            merged = {**config, **extras, **hyper}
            setting = self.build(merged)[0]
            if spec.real_weighted:
                setting = setting._replace(real_weight=merged["real_weight"])
            if spec.tempered:
                setting = setting._replace(temperature=merged["temperature"])
            if self.reward is not None and merged["reward"] != "none":
                setting = curated(setting, self.reward(merged), merged)
            return setting

        return setting_fn, spec

    def resolve(self, overrides: dict | None = None) -> dict:
        """Full config (defaults filled in), validated. Unknown names raise ValueError."""
        overrides = dict(overrides or {})
        table = {p.name: p for p in self.all_parameters}
        unknown = sorted(set(overrides) - set(table))
        if unknown:
            raise ValueError(f"unknown parameter(s) for setting {self.name!r}: {', '.join(unknown)}")
        config = {name: p.check(overrides.get(name, p.default)) for name, p in table.items()}
        config = self.complete(config, overrides)
        from collapse_jax.chain import validate_spec

        if config["method"] == "auto":
            config = {**config, "method": self.fastest_method(config)}
        if self.reward is not None:
            config = _complete_curation(config, overrides)
        validate_spec(chain_spec(config))  # combinations of chain options, as the engine checks them
        if self.reward is not None:
            _check_curation(config)
            self.reward(config)  # parses the reward: a bad form is refused here, before anything compiles
        self.check(config)
        return config

    def fastest_method(self, config: dict) -> str:
        """ "sufficient" where this config passes every check with it (the setting's estimator has exact
        sufficient statistics and the pool rule, real data and options allow them), else "samples"."""
        import warnings

        from collapse_jax.chain import validate_spec

        candidate = {**config, "method": "sufficient"}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                validate_spec(chain_spec(candidate))
                if self.reward is not None:
                    _check_curation(candidate)
                self.check(candidate)
        except ValueError:
            return "samples"
        return "sufficient"


def _complete_curation(config: dict, overrides: dict) -> dict:
    """With a reward, its metric `expected_reward` is recorded unless --metrics says otherwise."""
    if config["reward"] != "none" and "metrics" not in overrides and REWARD_METRIC not in config["metrics"]:
        config = {**config, "metrics": tuple(config["metrics"]) + (REWARD_METRIC,)}
    return config


def _check_curation(config: dict) -> None:
    """The combinations of `reward`, `curation` and `best_of` the engine runs (ValueError otherwise)."""
    if config["reward"] == "none":
        if config["curation"] != "best" or config["best_of"] != 1:
            raise ValueError("curation (--curation) and best_of (--best-of) need a reward (--reward)")
        if REWARD_METRIC in config["metrics"]:
            raise ValueError(f"metrics (--metrics): {REWARD_METRIC} needs a reward (--reward)")
        return
    if config["best_of"] > 1 and config["method"] != "samples":  # best-of-K compares drawn candidates
        raise ValueError(
            f"method (--method) must be 'samples' with best_of (--best-of) = {config['best_of']} "
            "(the candidates are drawn points); curation tilted runs on either path"
        )


def curated(setting: Setting, reward: Reward, config: dict) -> Setting:
    """`setting` with its synthetic points curated by `reward` as `config` says (`curation`, `best_of`):
    best-of-K through a verifier that keeps every candidate and scores it by the reward, or the tilted law
    (K -> infinity); with `expected_reward` among the metrics, E r under each model is recorded."""
    import jax.numpy as jnp

    from collapse_jax.chain import Verifier

    if config["curation"] == "tilted":
        if reward.tilt is None:
            raise ValueError(f"curation (--curation) tilted: this reward's tilted law has no form in {setting.name}")
        setting = setting._replace(tilt=reward.tilt)
    elif config["best_of"] > 1:
        verifier = Verifier(keep_probability=lambda points: jnp.ones(points.shape[:1]), score=reward.score)
        setting = setting._replace(verifier=verifier)
    if REWARD_METRIC not in config["metrics"]:
        return setting
    metrics = setting.metrics
    if setting.random_metrics:

        def with_reward(key, params, true):
            return {**metrics(key, params, true), REWARD_METRIC: reward.expected(params)}
    else:

        def with_reward(params, true):
            return {**metrics(params, true), REWARD_METRIC: reward.expected(params)}

    return setting._replace(metrics=with_reward)


def parse_reward(text: str, size: int, scalar: Callable[[float], np.ndarray], forms: str) -> np.ndarray | None:
    """A `--reward` string: "none" (None) or "linear:" followed by one number A (`scalar(A)` gives the
    `(size,)` coefficients) or `size` comma-separated coefficients; finite, at most 1e4 in size (e^r is
    taken in float32 through logits). Raises ValueError naming reward (--reward) and `forms`."""
    if text == "none":
        return None
    error = f"reward (--reward) must be none or {forms}; got {text!r}"
    if not text.startswith("linear:"):
        raise ValueError(error)
    try:
        values = [float(part) for part in text[len("linear:") :].split(",")]
    except ValueError:
        raise ValueError(error) from None
    if len(values) not in (1, size) or not all(math.isfinite(v) and abs(v) <= 1e4 for v in values):
        raise ValueError(f"{error} (one number, or {size} numbers, each finite with |a| <= 1e4)")
    return scalar(values[0]) if len(values) == 1 else np.asarray(values, np.float64)


def weighs_real_points(config: dict) -> bool:
    """Whether a config weights its real points (`real_weight` set, -1 meaning unset)."""
    return config.get("real_weight", -1.0) >= 0


def chain_spec(config: dict) -> ChainSpec:
    from collapse_jax.chain import ChainSpec

    return ChainSpec(
        num_generations=config["generations"],
        samples=config["samples"],
        policy=config["policy"],
        real_fraction=config["real_fraction"],
        real_source=config["real_source"],
        real_draw=config["real_draw"],
        method=config["method"],
        shared_real_data=config["shared_real_data"],
        sample_growth=config["sample_growth"],
        first_samples=config["first_samples"],
        real_weighted=weighs_real_points(config),
        best_of=config.get("best_of", 1),
        curation=config.get("curation", "best"),
        verified_budget=config.get("verified_budget", "refill"),
    )


def smallest_fit(config: dict) -> int:
    """The fewest points a fit sees: M, or M_1 (--first-samples) for model 1 when smaller."""
    return min(config["samples"], config["first_samples"] or config["samples"])


def check_model_size(config: dict, setting: str) -> None:
    """Models that hold their training points (an empirical law, a KDE) have the size of their sample:
    under replace, model 1 (M_1 points) must have the size of the later models (M points)."""
    first, samples = config["first_samples"], config["samples"]
    if config["policy"] == "replace" and first not in (0, samples):
        raise ValueError(
            f"first_samples (--first-samples) must be 0 or samples (--samples) = {samples} for the "
            f"{setting} setting under policy replace (its model holds its training points, so model "
            f"1 must have the size of the later models; accumulate policies allow any M_1), got {first}"
        )


def prefixed_number(text: str, prefix: str, name: str, high: float, where: str, forms: str) -> float:
    """The number X of a `prefix:X` option value, in (0, high]; ValueError naming the option otherwise."""
    try:
        value = float(text[len(prefix) :])
    except ValueError:
        raise ValueError(f"{where} must be {forms}; got {text!r}") from None
    if not 0 < value <= high:
        raise ValueError(f"{where}: {name} in {prefix}{name} must be in (0, {high:g}], got {value:g}")
    return value


def load_array(path: str, where: str):
    """A finite real array from a .npy or text file; ValueError naming `where` and the file otherwise."""
    try:
        values = np.load(path) if path.endswith(".npy") else np.loadtxt(path, ndmin=1)
    except (OSError, ValueError) as error:
        raise ValueError(f"{where}: cannot read {path!r}: {error}") from None
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise ValueError(f"{where}: {path!r} must hold real numbers, got dtype {values.dtype}")
    if not np.isfinite(values).all():
        raise ValueError(f"{where}: {path!r} holds non-finite values (inf or NaN); every entry must be finite")
    return values.astype(np.float64)


def __getattr__(name: str):
    """`SETTINGS` (name -> SettingDefinition), read from the model slices' registry on first use."""
    if name == "SETTINGS":
        from collapse_jax.models import SETTINGS

        return SETTINGS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_setting(name: str) -> SettingDefinition:
    """The registered setting `name` (ValueError naming the registered ones otherwise)."""
    from collapse_jax.models import get_setting as registered

    return registered(name)
