"""Registered settings: their parameters (names, defaults, allowed ranges) and how to build a chain.

One table per setting drives the command line (`collapse-jax simulate <setting>`), the validation of
every entry point (errors name the parameter and its allowed range before anything compiles), and the
`config` block of `summary.json`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from collapse_jax.curation import CURATION, REWARD_BEST_OF, check_curation, complete_curation, curated
from collapse_jax.options import (
    METHODS,
    POLICIES,
    REAL_DRAWS,
    REAL_SOURCES,
    VERIFIED_BUDGETS,
)
from collapse_jax.parameters import Parameter
from collapse_jax.policies import pool_rule

if TYPE_CHECKING:
    from collapse_jax.types import ChainSpec, Reward, Setting


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


# the engine's verifier options, for settings whose synthetic points pass a verifier
# (SettingDefinition.verified_budget gives the default budget)
VERIFIER_BEST_OF = Parameter(
    "best_of",
    int,
    1,
    "K: with a verifier and K > 1, the generator proposes K candidates per point and the verifier picks "
    "the best (no pruning)",
    low=1,
    high=1024,
)
VERIFIED_BUDGET = Parameter(
    "verified_budget",
    str,
    "refill",
    "with a verifier: refill (propose until M - r points pass), prune (keep the passing ones of M - r) or "
    "weight (keep all M - r, each weighted by its keep probability)",
    choices=VERIFIED_BUDGETS,
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
    """A registered setting: its own parameters, `check(values)` (its combinations of values; ValueError)
    and `build(values) -> Setting`, both given the typed values of a resolved config (`values`)."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    build: Callable[[dict], Setting]
    check: Callable[[dict], None] = lambda config: None
    # the estimator draws exact sufficient statistics (method="sufficient"); the engine refuses that method
    # otherwise, with `samples_only_reason` (why not) in its message
    sufficient_path: bool = False
    samples_only_reason: str = ""
    traced_sample_size: bool = False  # on method="sufficient", M is traced (Setting.sample_size)
    # static values derived from concrete plain (unparsed) parameters, added to the typed values (`values`):
    # builders read them by name where the values they depend on may be traced (e.g. whether every fit has
    # full rank); `program_key` reads them without parsing any option
    derive: Callable[[dict], dict] = lambda values: {}
    # `complete(values, overrides) -> values`: defaults that depend on others (plain parameters only; its
    # changes go back into the config)
    complete: Callable[[dict, dict], dict] = lambda values, overrides: values
    report_generations: bool = False  # the chain reports each finished generation (slow generations)
    notes: Callable[[dict], tuple[str, ...]] = lambda config: ()  # said in summary.json (e.g. a default left out)
    tempers: bool = False  # the estimator samples at a temperature: the engine's `temperature` parameter
    # `reward(values) -> Reward | None` (None: --reward none), the help of its `reward` parameter and the
    # parser of its forms (`reward_parse(text, above) -> coefficients | None`): the engine's curation
    # (`reward`, `curation`, `best_of`; see `curated`)
    reward: Callable[[dict], Reward | None] | None = None
    reward_help: str = ""
    reward_parse: Callable[[str, dict], object] | None = None
    # the setting's synthetic points pass a verifier: the engine's `best_of` and `verified_budget`
    # parameters, the latter with this default (None: no verifier)
    verified_budget: str | None = None

    @property
    def own_parameters(self) -> tuple[Parameter, ...]:
        engine = (TEMPERATURE,) if self.tempers else ()
        if self.reward is not None:
            engine += (Parameter("reward", str, "none", self.reward_help, parse=self.reward_parse), CURATION)
            engine += (REWARD_BEST_OF,)
        if self.verified_budget is not None:
            engine += (VERIFIER_BEST_OF, dataclasses.replace(VERIFIED_BUDGET, default=self.verified_budget))
        return self.parameters + engine

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
        # weighted real points keep M static: the engine checks 0 < round(alpha M) < M before compiling
        traced_size = self.traced_sample_size and config["method"] == "sufficient" and not weighs_real_points(config)
        extra = ("samples",) if traced_size else ()
        if weighs_real_points(config):
            extra += ("real_weight",)
        return self.traced_names + extra

    def program_key(self, config: dict) -> str:
        """Configs with equal keys share one compiled program (they differ in traced values only)."""
        import json

        shape_free = set(self.traced_for(config)) | {"seed", "chains"}
        static = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items() if k not in shape_free}
        tempered = {"_tempered": True} if self.tempered(config) else {}  # tau is traced, tempering is not
        derived = self.derive(config)  # plain parameters only: no option is parsed (no file read) per key
        return json.dumps({**static, **{f"derived.{k}": v for k, v in derived.items()}, **tempered}, sort_keys=True)

    def values(self, config: dict, parsed: dict | None = None) -> dict:
        """The typed values of a resolved config: every option string parsed (`Parameter.parse`, in table
        order: a parser sees the plain values and the option values above it already parsed), plus the
        setting's derived static values (`derive`). What `complete`, `check`, `build`, `reward` and theory
        receive; ValueError naming the parameter for a bad form. `parsed`: option values parsed before
        (by `resolve`), taken as they are."""
        values = dict(config)
        for parameter in self.all_parameters:
            if parameter.parse is not None and parameter.name in values:
                if parsed is not None:
                    values[parameter.name] = parsed[parameter.name]
                else:
                    values[parameter.name] = parameter.parse(config[parameter.name], values)
        return {**values, **self.derive(values)}

    def program(self, config: dict):
        """`(setting_fn, spec)` of a resolved config: `setting_fn(hyper)` builds the setting from the
        typed values (`values`), the traced parameters (`traced_for(config)`) taken from `hyper`
        (concrete or traced values)."""
        values = self.values(config)
        spec = dataclasses.replace(
            chain_spec(config), report_generations=self.report_generations, tempered=self.tempered(config)
        )
        if "samples" in self.traced_for(config):
            spec = dataclasses.replace(spec, samples=1)  # the sufficient path reads Setting.sample_size

        def setting_fn(hyper: dict) -> Setting:
            merged = {**values, **hyper}
            setting = self.build(merged)
            if spec.real_weighted:
                setting = setting._replace(real_weight=merged["real_weight"])
            if spec.tempered:
                setting = setting._replace(temperature=merged["temperature"])
            reward = self.reward(merged) if self.reward is not None else None
            if reward is not None:
                setting = curated(setting, reward, merged)
            return setting

        return setting_fn, spec

    def instantiate(self, config: dict) -> tuple[Setting, ChainSpec]:
        """`(Setting, ChainSpec)` of a resolved config exactly as a run executes them (`program`, with the
        traced values given concretely): what `simulate` compiles, for tests, benchmarks and notebooks."""
        setting_fn, spec = self.program(config)
        values = self.values(config)
        return setting_fn({name: values[name] for name in self.traced_for(config)}), spec

    def resolve(self, overrides: dict | None = None) -> dict:
        """Full config (defaults filled in), validated. Unknown names raise ValueError."""
        overrides = dict(overrides or {})
        table = {p.name: p for p in self.all_parameters}
        unknown = sorted(set(overrides) - set(table))
        if unknown:
            raise ValueError(f"unknown parameter(s) for setting {self.name!r}: {', '.join(unknown)}")
        config = {name: p.check(overrides.get(name, p.default)) for name, p in table.items()}
        parsed = self.values(config)  # every option string parsed, once: a bad form is refused here
        completed = self.complete(parsed, overrides)  # defaults that depend on others, from typed values
        config = {name: config[name] if table[name].parse else completed[name] for name in config}
        from collapse_jax.chain import validate_spec

        if config["method"] == "auto":
            config = {**config, "method": self.fastest_method(config, parsed)}
        if self.reward is not None:
            config = complete_curation(config, overrides)
        validate_spec(chain_spec(config))  # combinations of chain options, as the engine checks them
        self.check_method(config)
        if self.reward is not None:
            check_curation(config)
        self.check(self.values(config, parsed))
        return config

    def check_method(self, config: dict) -> None:
        """The engine's rule for every setting: method "sufficient" needs an estimator with exact sufficient
        statistics (declared by `sufficient_path`)."""
        if config["method"] == "sufficient" and not self.sufficient_path:
            reason = f" ({self.samples_only_reason})" if self.samples_only_reason else ""
            raise ValueError(f"method (--method) must be 'samples' for the {self.name} setting{reason}")

    def fastest_method(self, config: dict, parsed: dict | None = None) -> str:
        """ "sufficient" where this config passes every check with it (the setting's estimator has exact
        sufficient statistics and the pool rule, real data and options allow them), else "samples"."""
        import warnings

        from collapse_jax.chain import validate_spec

        candidate = {**config, "method": "sufficient"}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                validate_spec(chain_spec(candidate))
                self.check_method(candidate)
                if self.reward is not None:
                    check_curation(candidate)
                self.check(self.values(candidate, parsed))
        except ValueError:
            return "samples"
        return "sufficient"


def weighs_real_points(config: dict) -> bool:
    """Whether a config weights its real points (`real_weight` set, -1 meaning unset)."""
    return config.get("real_weight", -1.0) >= 0


def chain_spec(config: dict) -> ChainSpec:
    from collapse_jax.types import ChainSpec

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
    under a pool rule that does not grow (replace), model 1 (M_1 points) must have the size of the later
    models (M points)."""
    first, samples = config["first_samples"], config["samples"]
    if not pool_rule(config["policy"]).grows and first not in (0, samples):
        raise ValueError(
            f"first_samples (--first-samples) must be 0 or samples (--samples) = {samples} for the "
            f"{setting} setting under policy {config['policy']} (its model holds its training points, so model "
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
