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
    CATEGORICAL_METRICS,
    CHAIN_METRICS,
    CLASSIFIERS,
    CURATIONS,
    DATASET_NAMES,
    DESIGNS,
    DOWNSTREAM_METRICS,
    EXTRA_GAUSSIAN_METRICS,
    GAUSSIAN_METRICS,
    LM_MODELS,
    LOGISTIC_METRICS,
    METHODS,
    OPTIMIZERS,
    POLICIES,
    REAL_DRAWS,
    REAL_SOURCES,
    REGRESSION_METRICS,
    REWARD_METRIC,
    TASKS,
    VERIFICATION_METRICS,
    VERIFIED_BUDGETS,
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


def _smallest_fit(config: dict) -> int:
    """The fewest points a fit sees: M, or M_1 (--first-samples) for model 1 when smaller."""
    return min(config["samples"], config["first_samples"] or config["samples"])


def _check_model_size(config: dict, setting: str) -> None:
    """Models that hold their training points (an empirical law, a KDE) have the size of their sample:
    under replace, model 1 (M_1 points) must have the size of the later models (M points)."""
    first, samples = config["first_samples"], config["samples"]
    if config["policy"] == "replace" and first not in (0, samples):
        raise ValueError(
            f"first_samples (--first-samples) must be 0 or samples (--samples) = {samples} for the "
            f"{setting} setting under policy replace (its model holds its training points, so model "
            f"1 must have the size of the later models; accumulate policies allow any M_1), got {first}"
        )


def _gaussian_definition() -> SettingDefinition:
    def check(config):
        if config["samples"] < config["ddof"] + 1:
            raise ValueError(
                f"samples (--samples) must be >= {config['ddof'] + 1} with ddof={config['ddof']} "
                f"(the covariance divides by M - ddof), got {config['samples']}"
            )
        if 0 < config["first_samples"] < config["ddof"] + 1:
            raise ValueError(
                f"first_samples (--first-samples) must be 0 (M) or >= {config['ddof'] + 1} with ddof={config['ddof']} "
                f"(model 1's covariance divides by M_1 - ddof), got {config['first_samples']}"
            )

    def build(config):
        import jax.numpy as jnp

        from collapse_jax.chain import Setting
        from collapse_jax.models.gaussian import gaussian_metrics, gaussian_params, make_gaussian

        dtype = jnp.float64 if config["x64"] else jnp.float32
        dim = config["dim"]
        true = gaussian_params(jnp.zeros(dim, dtype), jnp.eye(dim, dtype=dtype))
        names = tuple(config["metrics"])
        full_rank = config["_full_rank"] if "_full_rank" in config else full_rank_of(config)
        well_conditioned = config["_well_conditioned"] if "_well_conditioned" in config else well_conditioned_of(config)
        sufficient = config["method"] == "sufficient"
        columns = config["_w2_columns"] if "_w2_columns" in config else w2_columns_of(config)

        def metrics(params, true_params):  # generation 0 is metrics(truth, truth): all d columns
            return gaussian_metrics(params, true_params, names, columns=None if params is true_params else columns)

        setting = Setting(
            "gaussian",
            make_gaussian(ddof=config["ddof"], full_rank=full_rank, well_conditioned=well_conditioned),
            true,
            metrics,
            sample_size=jnp.asarray(config["samples"], dtype) if sufficient else None,
        )
        return setting, chain_spec(config)

    def reward(config):
        dim = config["dim"]
        a = parse_reward(config["reward"], dim, lambda value: value * np.eye(dim)[0], "linear:A or linear:a_1,...,a_d")
        if a is None:
            return None
        from collapse_jax.models.gaussian import linear_reward

        return linear_reward(a)

    def full_rank_of(config):  # model 1 (M_1 points) and every later fit (M points) have more than d points
        return _smallest_fit(config) - 1 >= config["dim"]

    def well_conditioned_of(config):  # every fit has at least 4d points: scatters far from singular
        return _smallest_fit(config) >= 4 * config["dim"]

    def complete(config, overrides):
        if "metrics" not in overrides and not w2_is_cheap(config):
            config = {**config, "metrics": tuple(m for m in config["metrics"] if m != "w2_sq")}
        return config

    def notes(config):
        if "w2_sq" in config["metrics"] or w2_is_cheap(config):
            return ()
        return (
            "w2_sq is not among this configuration's default metrics: it would cost more than half the run "
            "(it is a default where d <= 2, or with method samples and M >= 100 d); --metrics "
            "mean_error_sq,trace_ratio,log_det_ratio,w2_sq records it",
        )

    def w2_is_cheap(config):  # w2_sq adds at most half the run without it (benchmarks/metric_cost.py)
        return config["dim"] <= 2 or (config["method"] == "samples" and config["samples"] >= 100 * config["dim"])

    def w2_columns_of(config):  # a fit on n <= d points has a root with n nonzero columns (w2_sq's cost)
        points = max(config["samples"], config["first_samples"])
        if config["policy"] == "accumulate":
            points = (config["first_samples"] or config["samples"]) + (config["generations"] - 1) * config["samples"]
        if config["sample_growth"] > 0 or points >= config["dim"]:
            return config["dim"]
        if config["method"] == "sufficient":  # M is traced there: a power of 2, fewer programs in a sweep over M
            return min(config["dim"], 1 << (points - 1).bit_length())
        return points

    return SettingDefinition(
        name="gaussian",
        description="recursive fitting of a d-dimensional Gaussian (real distribution N(0, I_d))",
        parameters=(
            Parameter("dim", int, 1, "d, dimension", low=1, high=4096),
            Parameter("ddof", int, 1, "covariance divisor M - ddof: 0 = MLE, 1 = unbiased", choices=(0, 1)),
            Parameter(
                "metrics",
                "list",
                GAUSSIAN_METRICS,
                "metrics to record (default: all but kl_divergence = KL(truth || model), which is on request; "
                "w2_sq, 16 matrix-product steps on a d x min(M, d) block per generation, only where that "
                "costs at most half the run: d <= 2, or method samples with M >= 100 d; ask for it with "
                "--metrics elsewhere)",
                choices=GAUSSIAN_METRICS + EXTRA_GAUSSIAN_METRICS + (REWARD_METRIC,),
            ),
        ),
        build=build,
        check=check,
        complete=complete,
        notes=notes,
        traced_sample_size=True,
        tempers=True,
        reward=reward,
        reward_help="r(x) = a . x, a reward that curates the synthetic points (Ferbach et al. 2024): none, "
        "linear:A (a = A e_1, the first coordinate) or linear:a_1,...,a_d; with --best-of K or --curation "
        f"tilted (the mean then moves by Sigma a per generation); records {REWARD_METRIC} = a . mu_k",
        static_extras=lambda config: {
            "_full_rank": full_rank_of(config),
            "_well_conditioned": well_conditioned_of(config),
            "_w2_columns": w2_columns_of(config),
        },
    )


def parse_spectrum(text: str, dim: int):
    """`(kind, value)` of a `--spectrum` string: ("isotropic", None), ("power", beta) or ("file", array)
    (a `(d,)` vector of eigenvalues or a `(d, d)` covariance, .npy or text). Raises ValueError."""
    where = "spectrum (--spectrum)"
    if text == "isotropic":
        return "isotropic", None
    if text.startswith("power:"):
        return "power", _prefixed_number(text, "power:", "BETA", 10, where, "isotropic, power:BETA or file:PATH")
    if text.startswith("file:"):
        import numpy as np

        values = _load_array(text[len("file:") :], where)
        if values.shape == (dim,):
            if not np.all(values > 0):
                raise ValueError(f"{where}: eigenvalues must all be > 0")
        elif values.shape == (dim, dim):
            if not np.allclose(values, values.T) or np.linalg.eigvalsh(values).min() <= 0:
                raise ValueError(f"{where}: the covariance must be symmetric positive definite")
        else:
            raise ValueError(
                f"{where}: the file must hold ({dim},) eigenvalues or a ({dim}, {dim}) matrix, got shape {values.shape}"
            )
        return "file", values
    raise ValueError(f"{where} must be isotropic, power:BETA or file:PATH; got {text!r}")


def parse_true_weights(text: str, dim: int, spectrum_kind: str):
    """`(kind, value)` of a `--true-weights` string: ("random", None), ("source", r) or ("file", (d,))."""
    where = "true_weights (--true-weights)"
    if text == "random":
        return "random", None
    if text.startswith("source:"):
        source = _prefixed_number(text, "source:", "R", 2, where, "random, source:R or file:PATH")
        if spectrum_kind != "power":
            raise ValueError(f"{where}: source:R needs a power-law spectrum (--spectrum power:BETA)")
        return "source", source
    if text.startswith("file:"):
        values = _load_array(text[len("file:") :], where)
        if values.shape != (dim,):
            raise ValueError(f"{where}: the file must hold a ({dim},) vector, got shape {values.shape}")
        return "file", values
    raise ValueError(f"{where} must be random, source:R or file:PATH; got {text!r}")


def _prefixed_number(text: str, prefix: str, name: str, high: float, where: str, forms: str) -> float:
    """The number X of a `prefix:X` option value, in (0, high]; ValueError naming the option otherwise."""
    try:
        value = float(text[len(prefix) :])
    except ValueError:
        raise ValueError(f"{where} must be {forms}; got {text!r}") from None
    if not 0 < value <= high:
        raise ValueError(f"{where}: {name} in {prefix}{name} must be in (0, {high:g}], got {value:g}")
    return value


def _load_array(path: str, where: str):
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


def _regression_definition() -> SettingDefinition:
    def check(config):
        import warnings

        dim, samples = config["dim"], config["samples"]
        if config["design"] == "fixed" and config["real_fraction"] > 0:
            raise ValueError(
                "real_fraction (--real-fraction) must be 0 with design=fixed (the fixed design is "
                "relabelled by the model; real points need fresh rows: use --design fresh)"
            )
        kind, _ = parse_spectrum(config["spectrum"], dim)
        parse_true_weights(config["true_weights"], dim, kind)
        if config["verifier"] != "none":
            if config["design"] != "fresh" or config["method"] != "samples":
                raise ValueError(
                    "verifier (--verifier) residual selects rows: it needs design (--design) fresh "
                    "and method (--method) samples"
                )
            tracking = [m for m in config["metrics"] if m in ("excess_bias", "excess_variance")]
            if tracking:
                raise ValueError(
                    f"metrics (--metrics): {', '.join(tracking)} split the risk of an unselected chain; "
                    "with a verifier record excess_risk"
                )
        downstream = [m for m in config["metrics"] if m in DOWNSTREAM_METRICS]
        if downstream and config["downstream_samples"] < 1:
            raise ValueError(
                f"metrics (--metrics): {', '.join(downstream)} need a downstream model: set "
                "downstream_samples (--downstream-samples) >= 1"
            )
        if config["ridge"] == 0 and dim + 2 > samples > dim - 2:
            warnings.warn(
                f"samples={samples} with dim={dim}: OLS has an infinite expected excess risk for "
                f"d - 1 <= T <= d + 1 (theory needs T >= d + 2 or T <= d - 2); simulating anyway",
                stacklevel=2,
            )

    def complete(config, overrides):
        if "metrics" not in overrides and config["downstream_samples"] > 0:
            config = {**config, "metrics": tuple(config["metrics"]) + DOWNSTREAM_METRICS}
        if "metrics" not in overrides and config["verifier"] != "none":
            config = {
                **config,
                "metrics": tuple(m for m in config["metrics"] if m not in ("excess_bias", "excess_variance")),
            }
        return config

    def full_rank_of(config):
        return _smallest_fit(config) > config["dim"] and config["policy"] != "accumulate-subsample"

    def build(config):
        import jax
        import jax.numpy as jnp
        import numpy as np

        from collapse_jax.chain import Setting, Verifier
        from collapse_jax.models.regression import (
            MEAN_TRACKING_METRICS,
            downstream_metrics,
            draw_features,
            make_linear_regression,
            regression_metrics,
            wishart_root,
        )

        dtype = jnp.float64 if config["x64"] else jnp.float32
        dim, samples, design = config["dim"], config["samples"], config["design"]
        sufficient = config["method"] == "sufficient"
        noise_std = jnp.sqrt(jnp.asarray(config["noise_var"], dtype))
        ridge = jnp.asarray(config["ridge"], dtype)
        full_rank = config["_full_rank"] if "_full_rank" in config else full_rank_of(config)
        names = tuple(config["metrics"])
        labels = 2 if any(m in MEAN_TRACKING_METRICS for m in names) else 1
        spectrum_kind, spectrum = parse_spectrum(config["spectrum"], dim)
        weights_kind, weights_value = parse_true_weights(config["true_weights"], dim, spectrum_kind)
        if spectrum_kind == "isotropic":
            root = None
        elif spectrum_kind == "file" and spectrum.ndim == 2:
            root = jnp.asarray(np.linalg.cholesky(spectrum), dtype)
        else:  # diagonal Sigma: power-law or given eigenvalues
            eigenvalues = np.arange(1, dim + 1, dtype=float) ** -spectrum if spectrum_kind == "power" else spectrum
            root = jnp.diag(jnp.asarray(np.sqrt(eigenvalues), dtype))
        if weights_kind == "source":
            # source condition: lambda_i c_i^2 ~ i^(-1 - 2 r beta), normalised to ||w*|| = 1; random signs
            i = np.arange(1, dim + 1, dtype=float)
            magnitude = i ** ((spectrum - 1 - 2 * weights_value * spectrum) / 2)
            magnitude = jnp.asarray(magnitude / np.linalg.norm(magnitude), dtype)
        downstream = tuple(m for m in names if m in DOWNSTREAM_METRICS)
        chain_names = tuple(m for m in names if m not in DOWNSTREAM_METRICS)
        downstream_rank = config["downstream_samples"] > dim
        downstream_ridge = jnp.asarray(config["downstream_ridge"], dtype)
        downstream_std = jnp.sqrt(jnp.asarray(config["downstream_noise_var"], dtype))

        def chain_metrics(weights, true_weights):
            return regression_metrics(weights, true_weights, chain_names, root)

        def metrics(key, weights, true_weights):
            values = chain_metrics(weights, true_weights)
            values.update(
                downstream_metrics(
                    key,
                    weights,
                    true_weights,
                    samples=config["downstream_samples"],
                    ridge=downstream_ridge,
                    noise_std=downstream_std,
                    covariance_root=root,
                    full_rank=downstream_rank,
                    names=downstream,
                )
            )
            return {name: values[name] for name in names}

        def true_weights_of(key):
            if weights_kind == "random":
                return jax.random.normal(key, (dim,), dtype) / jnp.sqrt(jnp.asarray(dim, dtype))
            if weights_kind == "source":
                return magnitude * jax.random.rademacher(key, (dim,), dtype)
            return jnp.asarray(weights_value, dtype)

        # every fit sees whole copies of the fixed design: its matrix is factorised once per chain
        fixed_fits = (
            design == "fixed"
            and config["policy"] in ("replace", "accumulate")
            and config["first_samples"] in (0, samples)
            and config["sample_growth"] == 0
        )

        def estimator(x, x_root):
            return make_linear_regression(
                dim,
                ridge=ridge,
                noise_std=noise_std,
                covariance_root=root,
                design=x,
                design_root=x_root,
                full_rank=full_rank,
                labels=labels,
                design_rows=jnp.asarray(samples, dtype),
                fixed_design_fits=fixed_fits,
            )

        tolerance = jnp.asarray(config["verifier_tolerance"], dtype)
        centre_shift = jnp.asarray(config["verifier_bias"], dtype)

        def residual_verifier(centre):
            """Keeps (x, y) iff |y - x.w_v| <= tau (Yi et al. 2025); diagnostics: none."""
            return Verifier(
                lambda points: (jnp.abs(points[:, dim] - points[:, :dim] @ centre) <= tolerance).astype(points.dtype)
            )

        def setting(true_weights, x, x_root, per_chain=None, verifier=None):
            return Setting(
                "regression",
                estimator(x, x_root),
                jnp.tile(true_weights[:, None], (1, labels)),
                metrics if downstream else chain_metrics,
                per_chain,
                sample_size=jnp.asarray(samples, dtype) if sufficient else None,
                random_metrics=bool(downstream),
                verifier=verifier,
            )

        fixed_sample = design == "fixed" and not sufficient
        fixed_root = design == "fixed" and sufficient

        verified = config["verifier"] != "none"

        def per_chain(key_chain, key_shared):
            key = key_shared if config["shared_design"] else key_chain
            key_weights, key_design = jax.random.split(key)
            x = draw_features(key_design, samples, dim, root, dtype) if fixed_sample else None
            x_root = wishart_root(key_design, samples, dim, root, dtype) if fixed_root else None
            true_weights = true_weights_of(key_weights)
            verifier = None
            if verified:  # the knowledge centre w_v = w* + bias u, u a uniform unit vector of the chain
                u = jax.random.normal(jax.random.fold_in(key_chain, 1), (dim,), dtype)
                verifier = residual_verifier(true_weights + centre_shift * u / jnp.sqrt(jnp.sum(u * u)))
            return setting(true_weights, x, x_root, verifier=verifier)

        representative = setting(
            jnp.zeros((dim,), dtype),
            jnp.zeros((samples, dim), dtype) if fixed_sample else None,
            jnp.zeros((dim, dim), dtype) if fixed_root else None,
            per_chain,
            verifier=residual_verifier(jnp.zeros((dim,), dtype)) if verified else None,
        )
        return representative, chain_spec(config)

    return SettingDefinition(
        name="regression",
        description="recursive linear regression: OLS / ridge / min-norm fits relabelling their data "
        "(x ~ N(0, Sigma), w* drawn per chain, label noise variance sigma^2), with an optional "
        "downstream ridge model trained on each generation's labels",
        parameters=(
            Parameter("dim", int, 10, "d, number of features", low=1, high=4096),
            Parameter(
                "noise_var",
                float,
                1.0,
                "sigma^2, label noise variance (real and synthetic labels)",
                low=0,
                high=1e6,
                traced=True,
            ),
            Parameter(
                "ridge",
                float,
                0.0,
                "lambda, ridge penalty on (1/n) sum of squares (0: OLS / min-norm)",
                low=0,
                high=1e6,
                traced=True,
            ),
            Parameter(
                "design",
                str,
                "fixed",
                "fixed: relabel the same X every generation; fresh: new X each time",
                choices=DESIGNS,
            ),
            Parameter(
                "spectrum",
                str,
                "isotropic",
                "Sigma: isotropic, power:BETA (eigenvalues i^-BETA) or file:PATH ((d,) eigenvalues or (d, d) matrix)",
            ),
            Parameter(
                "true_weights",
                str,
                "random",
                "w*: random (N(0, I/d) per chain), source:R (power-law source "
                "condition, |w*_i| ~ i^((BETA-1-2R BETA)/2), ||w*|| = 1, random signs) or file:PATH",
            ),
            Parameter("shared_design", bool, False, "all chains share one X and w* (results conditional on them)"),
            Parameter(
                "downstream_samples",
                int,
                0,
                "T of a downstream ridge model fitted on each generation's labels (0: none)",
                low=0,
                high=10**6,
            ),
            Parameter(
                "downstream_ridge", float, 0.0, "lambda of the downstream ridge model", low=0, high=1e6, traced=True
            ),
            Parameter(
                "downstream_noise_var",
                float,
                1.0,
                "noise variance of the downstream labels",
                low=0,
                high=1e6,
                traced=True,
            ),
            Parameter(
                "verifier",
                str,
                "none",
                "residual: keep a synthetic (x, y) iff |y - x.w_v| <= "
                "--verifier-tolerance, w_v = w* + --verifier-bias (random direction) the verifier's knowledge "
                "centre (Yi et al. 2025); needs --design fresh",
                choices=("none", "residual"),
            ),
            Parameter(
                "verifier_tolerance",
                float,
                1.0,
                "tau, the residual verifier's acceptance half-width",
                low=1e-6,
                high=1e6,
                traced=True,
            ),
            Parameter(
                "verifier_bias", float, 0.0, "||w_v - w*||, the residual verifier's bias", low=0, high=1e6, traced=True
            ),
            Parameter(
                "best_of", int, 1, "K: with a verifier and K > 1, the best of K candidates per point", low=1, high=1024
            ),
            Parameter(
                "verified_budget",
                str,
                "refill",
                "with a verifier: refill (propose until M - r pass), prune or weight",
                choices=VERIFIED_BUDGETS,
            ),
            Parameter(
                "metrics",
                "list",
                CHAIN_METRICS,
                "metrics to record (downstream_* need --downstream-samples; default: all that apply)",
                choices=REGRESSION_METRICS,
            ),
        ),
        build=build,
        check=check,
        complete=complete,
        traced_sample_size=True,
        static_extras=lambda config: {"_full_rank": full_rank_of(config)},
    )


def _logistic_definition() -> SettingDefinition:
    """Recursive logistic regression (Dey & Donoho 2024's universality of the pi^2/6 pathway beyond OLS)."""

    def check(config):
        import warnings

        dim, samples = config["dim"], config["samples"]
        if config["method"] == "sufficient":
            raise ValueError(
                "method (--method) must be 'samples' for the logistic setting (logistic regression has no "
                "finite sufficient statistics of a fresh batch to draw: the labels are the data)"
            )
        if config["design"] == "fixed":
            if config["real_fraction"] > 0:
                raise ValueError(
                    "real_fraction (--real-fraction) must be 0 with design=fixed (the fixed design is "
                    "relabelled by the model; real points need fresh rows: use --design fresh)"
                )
            if config["first_samples"] not in (0, samples):
                raise ValueError(
                    f"first_samples (--first-samples) must be 0 or samples (--samples) = {samples} with "
                    f"design=fixed (every generation relabels the same {samples} design rows), got "
                    f"{config['first_samples']}"
                )
        if _smallest_fit(config) < 2 * dim:
            warnings.warn(
                f"samples={_smallest_fit(config)} with dim={dim}: fewer than 2 d points, so the data are "
                "linearly separable (no maximum-likelihood estimate) with high probability; such fits are "
                "stopped and recorded as separated = 1; simulating anyway",
                stacklevel=2,
            )

    def build(config):
        import jax
        import jax.numpy as jnp

        from collapse_jax.chain import Setting
        from collapse_jax.models.logistic import (
            LogisticParams,
            draw_features,
            logistic_metrics,
            make_logistic_regression,
        )

        dtype = jnp.float64 if config["x64"] else jnp.float32
        dim, samples = config["dim"], config["samples"]
        fixed = config["design"] == "fixed"
        signal = jnp.asarray(config["signal"], dtype)
        names = tuple(config["metrics"])

        def metrics(params, true_params):
            values = logistic_metrics(params, true_params, names)
            return {name: values[name] for name in names}

        def setting(coef, x, per_chain=None):
            estimator = make_logistic_regression(dim, design=x, max_iterations=config["max_iterations"])
            truth = LogisticParams(coef, jnp.zeros((), dtype))
            return Setting("logistic", estimator, truth, metrics, per_chain)

        def per_chain(key_chain, key_shared):
            del key_shared
            key_coef, key_design = jax.random.split(key_chain)
            direction = jax.random.normal(key_coef, (dim,), dtype)
            coef = signal * direction / jnp.sqrt(jnp.sum(direction * direction))  # uniform on the sphere
            x = draw_features(key_design, samples, dim, None, dtype) if fixed else None
            return setting(coef, x)

        representative = setting(
            jnp.zeros((dim,), dtype), jnp.zeros((samples, dim), dtype) if fixed else None, per_chain
        )
        return representative, chain_spec(config)

    return SettingDefinition(
        name="logistic",
        description="recursive logistic regression: maximum-likelihood fits (Newton to a tolerance) "
        "relabelling their data, x ~ N(0, I_d), beta* uniform on the sphere of radius --signal per chain "
        "(Dey & Donoho 2024's pi^2/6 pathway beyond OLS); with samples M < 2d, or M/d small for a large "
        "signal, the data are often separable (no MLE): such fits are flagged by the metric separated; under "
        "replace the fits grow more confident from generation to generation and chains end in separable "
        "data (most of them within 30 generations at d = 10, samples = 200, signal = 1)",
        parameters=(
            Parameter(
                "dim",
                int,
                10,
                "d, number of features; keep samples/d large: below samples = 2d the data are separable "
                "(no MLE, metric separated = 1) with high probability, and a larger signal needs a larger "
                "samples/d (Candes & Sur 2020)",
                low=1,
                high=1024,
            ),
            Parameter(
                "design",
                str,
                "fixed",
                "fixed: relabel the same X (T = samples rows, one per chain) every generation (Dey & Donoho); "
                "fresh: new X each time",
                choices=DESIGNS,
            ),
            Parameter(
                "signal",
                float,
                1.0,
                "||beta*||: beta* is drawn per chain uniformly on the sphere of this radius (at most 5: "
                "the excess log-loss quadrature is accurate to 1e-4 there)",
                low=0,
                high=5,
                traced=True,
            ),
            Parameter(
                "max_iterations",
                int,
                50,
                "cap on the Newton steps of a fit; a fit that reaches it is recorded as separated",
                low=1,
                high=1000,
            ),
            Parameter(
                "metrics",
                "list",
                LOGISTIC_METRICS,
                "metrics to record",
                choices=LOGISTIC_METRICS,
            ),
        ),
        build=build,
        check=check,
    )


def parse_law(text: str, categories: int, where: str = "law (--law)"):
    """The probability vector `(K,)` (float64 NumPy) of a `--law` string: zipf:BETA (p_i ~ i^-BETA),
    uniform, or file:PATH (K non-negative numbers summing to 1, .npy or text). Raises ValueError."""
    import numpy as np

    if text == "uniform":
        return np.full(categories, 1.0 / categories)
    if text.startswith("zipf:"):
        beta = _prefixed_number(text, "zipf:", "BETA", 10, where, "zipf:BETA, uniform or file:PATH")
        weights = np.arange(1, categories + 1, dtype=np.float64) ** -beta
        return weights / weights.sum()
    if text.startswith("file:"):
        values = _load_array(text[len("file:") :], where).astype(np.float64)
        if values.shape != (categories,):
            raise ValueError(
                f"{where}: the file must hold a ({categories},) vector (--categories), got shape {values.shape}"
            )
        if not np.isfinite(values).all() or np.any(values < 0):
            raise ValueError(f"{where}: probabilities must be finite and >= 0")
        if abs(values.sum() - 1.0) > 1e-6:
            raise ValueError(f"{where}: probabilities must sum to 1 (within 1e-6), got sum {values.sum():.9g}")
        return values / values.sum()
    raise ValueError(f"{where} must be zipf:BETA, uniform or file:PATH; got {text!r}")


def parse_groups(text: str, categories: int) -> tuple[tuple[str, int, int], ...]:
    """`((name, first, last), ...)` of a `--groups` string "NAME:FIRST-LAST,..." (1-based inclusive
    category indices; disjoint ranges; names of letters, digits, '_' and '-'). Raises ValueError."""
    import re

    where = "groups (--groups)"
    groups, taken = [], set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        match = re.fullmatch(r"([A-Za-z0-9_\-]+):(\d+)-(\d+)", part)
        if not match:
            raise ValueError(f"{where} must be NAME:FIRST-LAST[,NAME:FIRST-LAST...]; got {part!r}")
        name, first, last = match.group(1), int(match.group(2)), int(match.group(3))
        if not 1 <= first <= last <= categories:
            raise ValueError(
                f"{where}: {name} needs 1 <= FIRST <= LAST <= categories = {categories}, got {first}-{last}"
            )
        if name in {g[0] for g in groups}:
            raise ValueError(f"{where}: group name {name!r} appears twice")
        span = set(range(first, last + 1))
        if span & taken:
            raise ValueError(f"{where}: group {name!r} overlaps another group (groups must be disjoint)")
        taken |= span
        groups.append((name, first, last))
    return tuple(groups)


def _categorical_metric_names(config, base_names):
    groups = parse_groups(config["groups"], config["categories"])
    return (
        tuple(base_names) + tuple(f"group_mass.{g[0]}" for g in groups) + tuple(f"group_extinct.{g[0]}" for g in groups)
    )


def _discrete_definition() -> SettingDefinition:
    def allowed(config):
        rewarded = (REWARD_METRIC,) if config["reward"] != "none" else ()
        return set(_categorical_metric_names(config, CATEGORICAL_METRICS)) | set(rewarded)

    def reward(config):
        k = config["categories"]
        values = parse_reward(
            config["reward"], k, lambda value: value * np.arange(k) / (k - 1), "linear:A or linear:r_1,...,r_K"
        )
        if values is None:
            return None
        from collapse_jax.models.categorical import category_reward

        return category_reward(values)

    def check(config):
        law = parse_law(config["law"], config["categories"])
        parse_groups(config["groups"], config["categories"])
        if not 1 <= config["tail_rank"] < config["categories"]:
            raise ValueError(
                f"tail_rank (--tail-rank) must be in [1, categories - 1 = {config['categories'] - 1}], "
                f"got {config['tail_rank']}"
            )
        bad = [m for m in config["metrics"] if m not in allowed(config)]
        if bad:
            raise ValueError(
                f"metrics (--metrics): unknown {', '.join(bad)}; allowed: {', '.join(sorted(allowed(config)))}"
            )
        if config["smoothing"] > 0 and "kl_to_original" in config["metrics"] and (law == 0).any():
            raise ValueError(
                "metrics (--metrics): kl_to_original is infinite with smoothing > 0 and a law with "
                "zero-probability categories; drop it or set smoothing (--smoothing) to 0"
            )
        if config["method"] == "sufficient":
            raise ValueError(
                "method (--method) must be 'samples' for the discrete setting (counts are drawn point by point)"
            )
        _check_model_size(config, "discrete")

    def complete(config, overrides):
        if "tail_rank" not in overrides:
            config = {**config, "tail_rank": max(1, min(config["tail_rank"], config["categories"] - 1))}
        if "metrics" not in overrides:
            config = {**config, "metrics": _categorical_metric_names(config, CATEGORICAL_METRICS)}
        return config

    def build(config):
        from collapse_jax.chain import Setting
        from collapse_jax.models.categorical import (
            alias_table,
            categorical_metrics,
            make_categorical,
            sample_alias,
            true_law,
        )

        k = config["categories"]
        law = parse_law(config["law"], k)
        groups = parse_groups(config["groups"], k)
        truth = true_law(law, tail_rank=config["tail_rank"], groups=[(g[1], g[2]) for g in groups])
        table = alias_table(law)
        names = tuple(config["metrics"])
        group_names = tuple(g[0] for g in groups)
        setting = Setting(
            "discrete",
            make_categorical(k, smoothing=config["smoothing"]),
            truth,
            lambda params, true: categorical_metrics(params, true, names, group_names),
            sample_real=lambda key, n: sample_alias(key, table, n),
        )
        return setting, chain_spec(config)

    return SettingDefinition(
        name="discrete",
        description="recursive fitting of a categorical law by its empirical frequencies (Wright-Fisher drift "
        "under replace): the tails and minorities vanish first",
        parameters=(
            Parameter(
                "law", str, "zipf:1.5", "true law: zipf:BETA (p_i ~ i^-BETA), uniform or file:PATH (K probabilities)"
            ),
            Parameter("categories", int, 1000, "K, number of categories", low=2, high=10**6),
            Parameter("smoothing", float, 0.0, "add-k (Lidstone) pseudo-count per category", low=0, high=1e6),
            Parameter(
                "tail_rank",
                int,
                10,
                "r: tail_mass is the mass of the categories of rank > r in the true law "
                "(default 10, or K - 1 when K <= 10)",
                low=1,
                high=10**6,
            ),
            Parameter(
                "groups",
                str,
                "",
                "groups of categories, NAME:FIRST-LAST,... (1-based indices; "
                "metrics group_mass.NAME, group_extinct.NAME)",
            ),
            Parameter(
                "metrics",
                "list",
                CATEGORICAL_METRICS,
                "metrics to record (default: all, with group_mass.NAME and group_extinct.NAME for each group)",
            ),
        ),
        build=build,
        check=check,
        complete=complete,
        tempers=True,
        reward=reward,
        reward_help="r(i), a reward on the categories that curates the synthetic points (Ferbach et al. "
        "2024): none, linear:A (r(i) = A (i - 1) / (K - 1), category i = 1..K) or linear:r_1,...,r_K; with "
        f"--best-of K or --curation tilted (q e^r / Z); records {REWARD_METRIC} = sum_i q_i r(i)",
    )


MAX_TAIL_DRAWS = 10**7  # draws per chain and generation of the tails metrics (fixed_synthetic, max train size)
TAIL_DRAW_BYTES = 100  # measured memory per such draw (the alias sampler's temporaries)


def parse_generator(text: str, categories: int, beta: float):
    """`(kind, law)` of a tails `--generator` string: ("empirical", None), ("cut", p restricted to ranks
    <= k, renormalised) or ("narrow", Zipf(BETA2) over the same categories, BETA2 > beta)."""

    where = "generator (--generator)"
    forms = "empirical, cut:K or narrow:BETA2"
    if text == "empirical":
        return "empirical", None
    if text.startswith("cut:"):
        try:
            rank = int(text[len("cut:") :])
        except ValueError:
            raise ValueError(f"{where} must be {forms}; got {text!r}") from None
        if not 1 <= rank < categories:
            raise ValueError(f"{where}: K in cut:K must be in [1, categories - 1 = {categories - 1}], got {rank}")
        law = parse_law(f"zipf:{beta!r}", categories)
        law[rank:] = 0.0
        return "cut", law / law.sum()
    if text.startswith("narrow:"):
        narrow = _prefixed_number(text, "narrow:", "BETA2", 10, where, forms)
        if narrow <= beta:
            raise ValueError(f"{where}: BETA2 in narrow:BETA2 must be > the law's BETA = {beta:g}, got {narrow:g}")
        return "narrow", parse_law(f"zipf:{narrow!r}", categories)
    raise ValueError(f"{where} must be {forms}; got {text!r}")


def _tails_definition() -> SettingDefinition:
    def beta_of(config):
        text = config["law"]
        if not text.startswith("zipf:"):
            raise ValueError(f"law (--law) must be zipf:BETA for the tails setting, got {text!r}")
        beta = _prefixed_number(text, "zipf:", "BETA", 10, "law (--law)", "zipf:BETA")
        if beta <= 1:
            raise ValueError(f"law (--law): BETA must be > 1 (Zipf's law with a finite scaling constant), got {beta:g}")
        return beta

    def metric_names(config):
        return tuple(f"test_error.{t}" for t in config["train_sizes"]) + ("lost_mass",)

    def check(config):
        kind, _ = parse_generator(config["generator"], config["categories"], beta_of(config))
        if config["chain"] == "shrinking" and kind != "empirical":
            raise ValueError(
                "chain (--chain) shrinking needs generator (--generator) empirical (model 1 is the "
                "true law restricted to the items seen in T0 real draws)"
            )
        if kind != "empirical" and config["policy"] != "replace":
            raise ValueError(
                f"policy (--policy) must be replace with generator {config['generator']} (model 1 is the "
                "given generator; each later model is the empirical law of the previous one's draws)"
            )
        bad = [m for m in config["metrics"] if m not in metric_names(config)]
        if bad:
            raise ValueError(
                f"metrics (--metrics): unknown {', '.join(bad)}; allowed: {', '.join(metric_names(config))}"
            )
        if config["method"] == "sufficient":
            raise ValueError("method (--method) must be 'samples' for the tails setting")
        if kind == "empirical" and config["chain"] == "empirical":
            _check_model_size(config, "tails")

    def complete(config, overrides):
        sizes = config["train_sizes"]
        try:
            sizes = tuple(sorted({int(t) for t in sizes}))
        except ValueError:
            raise ValueError(
                f"train_sizes (--train-sizes) must be positive integers, got {config['train_sizes']!r}"
            ) from None
        if not sizes or sizes[0] < 1 or sizes[-1] > MAX_TAIL_DRAWS:
            raise ValueError(
                f"train_sizes (--train-sizes) must be integers in [1, {MAX_TAIL_DRAWS}] (each chain "
                f"holds about {TAIL_DRAW_BYTES} bytes per draw), got {config['train_sizes']!r}"
            )
        config = {**config, "train_sizes": sizes}
        if "metrics" not in overrides:
            config = {**config, "metrics": metric_names(config)}
        return config

    def build(config):
        import jax
        import jax.numpy as jnp

        from collapse_jax.chain import Setting
        from collapse_jax.models.categorical import (
            CategoricalParams,
            SupportParams,
            alias_table,
            categorical_metrics,
            given_law,
            make_categorical,
            make_support_restriction,
            sample_alias,
            true_law,
        )

        k = config["categories"]
        law = parse_law(config["law"], k)
        kind, generator = parse_generator(config["generator"], k, beta_of(config))
        truth = true_law(law, tail_rank=1)
        table = alias_table(law)
        shrinking = config["chain"] == "shrinking"
        estimator = make_support_restriction(law) if shrinking else make_categorical(k, base=generator)
        sizes = tuple(config["train_sizes"])
        names = tuple(config["metrics"])
        real_share, fixed = config["train_real_fraction"], config["fixed_synthetic"]

        def sample_real(key, n):
            return sample_alias(key, table, n)

        def sample_model(key, params, n):
            if isinstance(params, (CategoricalParams, SupportParams)):
                return estimator.sample(key, params, n)
            return sample_real(key, n)

        def metrics(key, params, true):
            key_model, key_real, key_mix, key_fixed = jax.random.split(key, 4)
            longest = sizes[-1]
            draws = sample_model(key_model, params, longest)
            if real_share > 0:
                is_real = jax.random.bernoulli(key_mix, real_share, (longest,))
                draws = jnp.where(is_real, sample_real(key_real, longest), draws)
            first_seen = jnp.full((k,), longest, jnp.int32).at[draws].min(jnp.arange(longest, dtype=jnp.int32))
            unseen_mass = true.probabilities
            if fixed > 0:
                seen = jnp.zeros((k,), bool).at[sample_model(key_fixed, params, fixed)].set(True)
                unseen_mass = jnp.where(seen, 0.0, unseen_mass)
            values = {f"test_error.{t}": jnp.sum(jnp.where(first_seen >= t, unseen_mass, 0.0)) for t in sizes}
            values.update(
                categorical_metrics(
                    params,
                    true,
                    ("lost_mass",),
                    base=None if generator is None else jnp.asarray(generator, jnp.float32),
                )
            )
            return {name: values[name] for name in names}

        first_model = None
        if kind != "empirical":
            first_model = given_law(k, config["samples"])
        setting = Setting(
            "tails",
            estimator,
            truth,
            metrics,
            random_metrics=True,
            sample_real=sample_real,
            first_model=first_model,
            metric_bytes=TAIL_DRAW_BYTES * (sizes[-1] + fixed),
        )
        return setting, chain_spec(config)

    return SettingDefinition(
        name="tails",
        description="Hutter's memorisation model on Zipf data (Dohmatob et al. 2024, A Tale of Tails): a learner "
        "that memorises T draws from a tail-cut, tail-narrowed or recursively re-estimated law, "
        "tested on the real law",
        parameters=(
            Parameter("law", str, "zipf:2", "true law zipf:BETA, BETA > 1"),
            Parameter("categories", int, 100_000, "K, number of items (the Zipf law's support)", low=2, high=10**7),
            Parameter(
                "generator",
                str,
                "empirical",
                "model 1: empirical (law of T0 = --samples real draws), cut:K "
                "(ranks <= K, renormalised) or narrow:BETA2 (Zipf(BETA2), BETA2 > BETA)",
            ),
            Parameter(
                "chain",
                str,
                "empirical",
                "models k >= 2: empirical (the empirical law of T0 draws from the "
                "previous model: Wright-Fisher) or shrinking (the true law restricted to the items seen in "
                "T0 draws from the previous model)",
                choices=("empirical", "shrinking"),
            ),
            Parameter(
                "train_sizes",
                "list",
                ("100", "1000", "10000"),
                "T: the memoriser's training sizes (one metric "
                f"test_error.T each), integers in [1, {MAX_TAIL_DRAWS}]: every generation draws the largest T "
                f"points per chain (about {TAIL_DRAW_BYTES} bytes each)",
            ),
            Parameter(
                "train_real_fraction", float, 0.0, "each training draw is real with this probability", low=0, high=1
            ),
            Parameter(
                "fixed_synthetic",
                int,
                0,
                "N extra training draws from the generator (fixed amount); every "
                f"generation draws them per chain, about {TAIL_DRAW_BYTES} bytes each (10^7: 1 GB per chain)",
                low=0,
                high=MAX_TAIL_DRAWS,
            ),
            Parameter("metrics", "list", ("lost_mass",), "metrics (default: test_error.T for each T, and lost_mass)"),
        ),
        build=build,
        check=check,
        complete=complete,
    )


KDE_BANDWIDTH_RANGE = (1e-6, 1e6)  # a fixed bandwidth h: h^2 and |x - p|^2 / h^2 stay finite in float32
MIN_KDE_NOISE = 0.01  # below it a curve dataset's log-density (nodes spaced by the noise) costs minutes


def parse_bandwidth(text: str):
    """A `--bandwidth` string: "scott", "silverman" or a number > 0 (returned as float). Raises ValueError."""
    import math

    if text in ("scott", "silverman"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"bandwidth (--bandwidth) must be scott, silverman or a number in "
            f"[{KDE_BANDWIDTH_RANGE[0]:g}, {KDE_BANDWIDTH_RANGE[1]:g}]; got {text!r}"
        ) from None
    low, high = KDE_BANDWIDTH_RANGE
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(
            f"bandwidth (--bandwidth) must be scott, silverman or a number in [{low:g}, {high:g}] "
            f"(float32 squares it), got {value:g}"
        )
    return value


def _check_kde_size(config: dict, setting: str) -> None:
    """A KDE holds its training points: model 1 the size of the later models under replace, and fewer than
    2^23 points in all (its cumulative weights are float32)."""
    _check_model_size(config, setting)
    first = config["first_samples"] or config["samples"]
    rows = max(first, config["samples"])  # the points one KDE holds: a batch, or the whole accumulated pool
    if config["policy"] == "accumulate":
        rows = first + (config["generations"] - 1) * config["samples"]
    if rows >= 2**23:
        raise ValueError(
            f"samples (--samples) and generations (--generations): a KDE must hold fewer than 2^23 "
            f"points (float32 cumulative weights), got {rows} under policy {config['policy']}"
        )


def _kde_definition() -> SettingDefinition:
    def check(config):
        bandwidth = parse_bandwidth(config["bandwidth"])
        if config["method"] == "sufficient":
            raise ValueError("method (--method) must be 'samples' for the kde setting")
        if isinstance(bandwidth, str) and config["samples"] < 2:
            raise ValueError(
                f"samples (--samples) must be >= 2 with bandwidth {bandwidth} (the rule scales the "
                f"points' spread, 0 for one point), got {config['samples']}"
            )
        _check_kde_size(config, "kde")

    def build(config):
        import jax.numpy as jnp

        from collapse_jax.chain import Setting
        from collapse_jax.datasets import make_dataset
        from collapse_jax.models.kde import KDEParams, held_out_nll, make_kde

        dataset = make_dataset(config["dataset"], config["noise"] or None)
        test_points = config["test_points"]

        def metrics(key, params, true):
            del true
            test = dataset.sample(key, test_points)
            if isinstance(params, KDEParams):
                return {"held_out_nll": held_out_nll(params, test, batch_size=256)}
            return {"held_out_nll": -jnp.mean(dataset.log_density(test))}  # generation 0: the true density

        setting = Setting(
            "kde",
            make_kde(parse_bandwidth(config["bandwidth"])),
            jnp.zeros(()),
            metrics,
            random_metrics=True,
            sample_real=dataset.sample,
        )
        return setting, chain_spec(config)

    return SettingDefinition(
        name="kde",
        description="recursive Gaussian kernel density estimation of a 2-D dataset (Kazdan et al. 2024)",
        parameters=(
            Parameter("dataset", str, "moons", "real 2-D law", choices=DATASET_NAMES),
            Parameter(
                "noise",
                float,
                0.0,
                "noise standard deviation of the dataset (0: its default: blobs 1, "
                "others 0.1); the moons and swiss roll log-densities average over a curve with nodes spaced "
                "by the noise, so their cost grows as 1/noise: 0.01 is 10x the default's",
                low=MIN_KDE_NOISE,
                high=100,
                also=(0.0,),
            ),
            Parameter(
                "bandwidth",
                str,
                "scott",
                "kernel bandwidth: scott, silverman (rules of thumb, refitted every "
                f"generation) or a number in [{KDE_BANDWIDTH_RANGE[0]:g}, {KDE_BANDWIDTH_RANGE[1]:g}]",
            ),
            Parameter(
                "test_points", int, 500, "held-out real points drawn for each generation's NLL", low=1, high=10**6
            ),
            Parameter("metrics", "list", ("held_out_nll",), "metrics to record", choices=("held_out_nll",)),
        ),
        build=build,
        check=check,
    )


DIFFUSION_T0_RANGE = (1e-6, 1e4)  # sqrt(t0) is a KDE bandwidth within KDE_BANDWIDTH_RANGE


def _diffusion_definition() -> SettingDefinition:
    """Diffusion with an exact score (Khelifa, Turner & Venkataramanan 2026): the model of a training set
    stopped at time t0 (variance-exploding) is the KDE of its points with bandwidth sqrt(t0)."""
    from collapse_jax.options import DATASET_NAMES, DIFFUSION_DATASETS, DIFFUSION_METRICS, GAUSSIAN_DATASET

    def check(config):
        if config["method"] == "sufficient":
            raise ValueError("method (--method) must be 'samples' for the diffusion setting")
        if config["dataset"] in DATASET_NAMES and config["dim"] != 2:
            raise ValueError(
                f"dim (--dim) must be 2 with the 2-D dataset {config['dataset']} (dataset (--dataset)); "
                f"only the gaussian dataset takes any dim in [1, 64], got {config['dim']}"
            )
        _check_kde_size(config, "diffusion")

    def build(config):
        import jax.numpy as jnp

        from collapse_jax.chain import Setting
        from collapse_jax.datasets import law_moments, make_dataset
        from collapse_jax.models.kde import KDEParams, held_out_nll, kde_moments, make_kde

        noise = config["noise"] or None
        dataset = make_dataset(config["dataset"], noise, dim=config["dim"])
        real_mean, real_variance = law_moments(config["dataset"], noise, dim=config["dim"])
        names, test_points = tuple(config["metrics"]), config["test_points"]

        def metrics(key, params, true):
            del true
            if not isinstance(params, KDEParams):  # generation 0: the real law itself
                values = {
                    "variance": jnp.asarray(real_variance, jnp.float32),
                    "mean_error_sq": jnp.zeros((), jnp.float32),
                }
                if "held_out_nll" in names:
                    values["held_out_nll"] = -jnp.mean(dataset.log_density(dataset.sample(key, test_points)))
                return {name: values[name] for name in names}
            values = kde_moments(params, real_mean)
            if "held_out_nll" in names:
                values["held_out_nll"] = held_out_nll(params, dataset.sample(key, test_points), batch_size=256)
            return {name: values[name] for name in names}

        setting = Setting(
            "diffusion",
            make_kde(jnp.sqrt(config["t0"])),
            jnp.zeros(()),
            metrics,
            random_metrics=True,
            sample_real=dataset.sample,
        )
        return setting, chain_spec(config)

    low, high = DIFFUSION_T0_RANGE
    return SettingDefinition(
        name="diffusion",
        description="diffusion model with an exact score, stopped at time t0: a KDE of bandwidth sqrt(t0) "
        "(Khelifa, Turner & Venkataramanan 2026)",
        parameters=(
            Parameter(
                "t0",
                float,
                0.1,
                "t0: early-stopping time of the variance-exploding diffusion; each model is its training set "
                "convolved with N(0, t0 I) (a KDE of bandwidth sqrt(t0))",
                low=low,
                high=high,
                traced=True,
            ),
            Parameter(
                "dataset",
                str,
                GAUSSIAN_DATASET,
                "real law: gaussian, N(0, sigma^2 I_d) in d = --dim dimensions, or a 2-D dataset (needs --dim 2)",
                choices=DIFFUSION_DATASETS,
            ),
            Parameter("dim", int, 2, "d, dimension of the gaussian dataset (the 2-D datasets need 2)", low=1, high=64),
            Parameter(
                "noise",
                float,
                0.0,
                "sigma: standard deviation of the gaussian dataset, or the noise of a 2-D one (0: the "
                "default: gaussian and blobs 1, others 0.1)",
                low=MIN_KDE_NOISE,
                high=100,
                also=(0.0,),
            ),
            Parameter(
                "test_points", int, 500, "held-out real points drawn for each generation's NLL", low=1, high=10**6
            ),
            Parameter("metrics", "list", DIFFUSION_METRICS, "metrics to record", choices=DIFFUSION_METRICS),
        ),
        build=build,
        check=check,
    )


MAX_GMM_DIM = 16  # unrolled Cholesky and substitutions: compile time about 5 s at d = 2, 25 s at 16, 40 s at 32


def _gmm_definition() -> SettingDefinition:
    def check(config):
        from collapse_jax.models.gmm import check_gmm_config

        check_gmm_config(config["components"], config["samples"])
        if 0 < config["first_samples"] < config["components"]:
            raise ValueError(
                f"first_samples (--first-samples) must be 0 (M) or >= components (--components) = "
                f"{config['components']} (a component needs at least one point), "
                f"got {config['first_samples']}"
            )
        if config["method"] == "sufficient":
            raise ValueError("method (--method) must be 'samples' for the gmm setting")
        allowed = set(metric_names())
        bad = [m for m in config["metrics"] if m not in allowed]
        if bad:
            raise ValueError(f"metrics (--metrics): unknown {', '.join(bad)}; allowed: {', '.join(sorted(allowed))}")

    def metric_names():
        from collapse_jax.models.gmm import gmm_metric_names

        return gmm_metric_names(2)

    def complete(config, overrides):
        if "metrics" not in overrides:
            config = {**config, "metrics": metric_names()}
        return config

    def build(config):
        import jax.numpy as jnp

        from collapse_jax.chain import Setting
        from collapse_jax.models.gmm import gmm_metrics, gmm_params, make_gmm

        dtype = jnp.float64 if config["x64"] else jnp.float32
        dim, minor = config["dim"], config["minor_weight"]
        offset = jnp.zeros((dim,), dtype).at[0].set(config["separation"] / 2)
        true = gmm_params(
            jnp.asarray([1 - minor, minor], dtype),
            jnp.stack([-offset, offset]),
            jnp.broadcast_to(jnp.eye(dim, dtype=dtype), (2, dim, dim)),
        )
        names = tuple(config["metrics"])
        setting = Setting(
            "gmm",
            make_gmm(config["components"], em_steps=config["em_steps"], reg_covar=config["reg_covar"]),
            true,
            lambda params, true_params: {k: v for k, v in gmm_metrics(params, true_params).items() if k in names},
        )
        return setting, chain_spec(config)

    return SettingDefinition(
        name="gmm",
        description="recursive EM fits of a Gaussian mixture (Shumailov et al. 2024): the true law is a "
        "major and a minor unit-covariance component at distance --separation",
        parameters=(
            Parameter(
                "dim",
                int,
                2,
                "d, dimension; the linear algebra is unrolled over d, so compile time grows "
                f"with it (about 25 s at d = {MAX_GMM_DIM} on a CPU)",
                low=1,
                high=MAX_GMM_DIM,
            ),
            Parameter("minor_weight", float, 0.2, "weight of the minor true component", low=0.001, high=0.5),
            Parameter("separation", float, 4.0, "distance between the two true means", low=0, high=100),
            Parameter("components", int, 2, "C, components of the fitted mixture (<= samples)", low=1, high=64),
            Parameter(
                "em_steps",
                int,
                100,
                "EM steps per fit (after a k-means++ start; fewer leave a bias: 20 steps "
                "overstate the minor weight 0.2 by 0.03 at M = 1000)",
                low=1,
                high=10_000,
            ),
            Parameter(
                "reg_covar", float, 1e-6, "variance floor added to each covariance diagonal", low=1e-12, high=1e3
            ),
            Parameter(
                "metrics",
                "list",
                ("l2_distance",),
                "metrics (default: l2_distance, weight.0 (major), weight.1 (minor), dead_components)",
            ),
        ),
        build=build,
        check=check,
        complete=complete,
    )


VERIFIERS = ("none", "oracle", "linear")


def _verification_definition() -> SettingDefinition:
    metric_choices = ("accuracy",) + VERIFICATION_METRICS + ("p_star",)

    def complete(config, overrides):
        if "generations" not in overrides:
            config = {**config, "generations": 2 if config["generator"] == "oracle" else 20}
        return config

    def check(config):
        if config["method"] == "sufficient":
            raise ValueError("method (--method) must be 'samples' for the verification setting")
        if config["real_draw"] == "mixture":
            raise ValueError("real_draw (--real-draw) must be 'fixed' with a verifier")
        if config["generator"] == "oracle" and config["policy"] != "replace":
            raise ValueError("generator (--generator) oracle is a given model 1: it needs policy replace")
        if config["verifier"] == "linear" and config["verifier_angle"] != 0 and config["dim"] < 2:
            raise ValueError("verifier_angle (--verifier-angle) != 0 needs dim (--dim) >= 2")
        if (
            config["verifier"] != "none"
            and config["keep_correct"] == 0
            and config["keep_wrong"] == 0
            and config["best_of"] == 1
            and config["verified_budget"] == "refill"
        ):
            raise ValueError(
                "keep_correct (--keep-correct) and keep_wrong (--keep-wrong) are both 0: a refill "
                "would never end; give one of them a value in (0, 1]"
            )

    def build(config):
        import math

        import jax.numpy as jnp

        from collapse_jax.chain import Setting
        from collapse_jax.models.classifier import (
            ClassifierParams,
            accuracy,
            linear_verifier,
            make_mixture_classifier,
            oracle_verifier,
            real_points,
        )

        dtype = jnp.float64 if config["x64"] else jnp.float32
        dim = config["dim"]
        mean = jnp.zeros((dim,), dtype).at[0].set(config["mean_norm"])
        estimator = make_mixture_classifier(
            mean,
            label_noise=jnp.asarray(config["label_noise"], dtype),
            classifier=config["classifier"],
            logistic_steps=config["logistic_steps"],
        )
        phi, rho = jnp.asarray(config["keep_correct"], dtype), jnp.asarray(config["keep_wrong"], dtype)
        if config["verifier"] == "none":
            verifier = oracle_verifier(jnp.ones((), dtype), jnp.ones((), dtype))
        elif config["verifier"] == "oracle":
            verifier = oracle_verifier(phi, rho)
        else:
            angle = math.radians(config["verifier_angle"])
            direction = jnp.zeros((dim,), dtype).at[0].set(math.cos(angle))
            if dim > 1:
                direction = direction.at[1].set(math.sin(angle))
            verifier = linear_verifier(direction, phi, rho)
        names = tuple(m for m in config["metrics"] if m == "accuracy")
        oracle = ClassifierParams(jnp.zeros((dim,), dtype), jnp.ones((), dtype))
        setting = Setting(
            "verification",
            estimator,
            ClassifierParams(mean, jnp.zeros((), dtype)),
            lambda params, true: {name: accuracy(params, true.weights) for name in names},
            sample_real=lambda key, n: real_points(key, mean, n),
            first_model=oracle if config["generator"] == "oracle" else None,
            verifier=verifier,
        )
        return setting, chain_spec(config)

    return SettingDefinition(
        name="verification",
        description="Gaussian-mixture classification trained on synthetic labels selected by a verifier "
        "(Feng et al. 2024; theory.md E): x | y ~ N(y mu, I), labels flipped with --label-noise",
        parameters=(
            Parameter("dim", int, 50, "d, dimension", low=1, high=4096),
            Parameter("mean_norm", float, 1.0, "||mu||, class-mean norm (Bayes accuracy Phi(||mu||))", low=0, high=100),
            Parameter(
                "generator",
                str,
                "oracle",
                "model 1: oracle (knows the true class; its labels are flipped "
                "with --label-noise; default generations: 2) or fitted (a classifier fitted on real points; "
                "default generations: 20); later models are the classifiers, each labelling the next generation",
                choices=("oracle", "fitted"),
            ),
            Parameter(
                "label_noise",
                float,
                0.0,
                "epsilon: every synthetic label is flipped with this probability",
                low=0,
                high=1,
                traced=True,
            ),
            Parameter(
                "verifier",
                str,
                "none",
                "none; oracle: keeps a synthetic point with probability "
                "--keep-correct if its label is the true class, --keep-wrong if not; linear: the same with "
                "'correct' meaning sign(v . x), v at --verifier-angle degrees from mu",
                choices=VERIFIERS,
            ),
            Parameter(
                "keep_correct",
                float,
                1.0,
                "phi: keep probability of a point the verifier judges correct",
                low=0,
                high=1,
                traced=True,
            ),
            Parameter(
                "keep_wrong",
                float,
                0.0,
                "rho: keep probability of a point the verifier judges wrong",
                low=0,
                high=1,
                traced=True,
            ),
            Parameter(
                "verifier_angle", float, 0.0, "angle (degrees) between the linear verifier's v and mu", low=0, high=180
            ),
            Parameter(
                "best_of",
                int,
                1,
                "K: with K > 1 the generator proposes K candidates per point and the "
                "verifier picks the best (no pruning)",
                low=1,
                high=1024,
            ),
            Parameter(
                "verified_budget",
                str,
                "refill",
                "refill: propose until M - r points pass; prune: keep the "
                "passing ones of M - r; weight: keep all M - r, each weighted by its keep probability",
                choices=VERIFIED_BUDGETS,
            ),
            Parameter(
                "classifier",
                str,
                "mean",
                "fit: mean (mean difference), least-squares, logistic (optax Adam)",
                choices=CLASSIFIERS,
            ),
            Parameter("logistic_steps", int, 200, "Adam steps of a logistic fit", low=1, high=100_000),
            Parameter(
                "metrics",
                "list",
                metric_choices,
                "metrics to record (accuracy: exact, on the real law; "
                "kept_fraction, synthetic_kept and p_star (share of kept synthetic labels that are correct) "
                "are always recorded)",
                choices=metric_choices,
            ),
        ),
        build=build,
        check=check,
        complete=complete,
    )


def parse_mixture_model(text: str, dim: int):
    """A `--model` string: ("ols", None), ("ridge", LAMBDA >= 0) or ("projection", M >= 1). Raises ValueError."""
    import math

    where = "model (--model)"
    if text == "ols":
        return "ols", None
    kind, _, value = text.partition(":")
    if kind not in ("ridge", "projection") or not value:
        raise ValueError(f"{where} must be ols, ridge:LAMBDA or projection:M; got {text!r}")
    try:
        number = float(value) if kind == "ridge" else int(value)
    except ValueError:
        raise ValueError(f"{where}: {kind}:{value} needs a {'number' if kind == 'ridge' else 'whole number'}") from None
    if kind == "ridge" and not (math.isfinite(number) and 0 <= number <= 1e6):
        raise ValueError(f"{where}: LAMBDA in ridge:LAMBDA must be in [0, 1e6], got {value}")
    if kind == "projection" and not 1 <= number <= 100_000:
        raise ValueError(f"{where}: M in projection:M (the width m) must be in [1, 100000], got {value}")
    return kind, number


def _mixture_definition() -> SettingDefinition:
    def complete(config, overrides):
        if "generations" not in overrides:
            config = {**config, "generations": 2 if config["synthetic_law"] == "shifted" else 20}
        if (
            "synthetic_fraction" in overrides
            and "real_fraction" in overrides
            and (abs(config["synthetic_fraction"] + config["real_fraction"] - 1) > 1e-12)
        ):
            raise ValueError(
                "synthetic_fraction (--synthetic-fraction) and real_fraction (--real-fraction) "
                "are the two shares of one training set: they must add up to 1; give one of them"
            )
        if "real_fraction" in overrides and "synthetic_fraction" not in overrides:
            return {**config, "synthetic_fraction": 1.0 - config["real_fraction"]}
        return {**config, "real_fraction": 1.0 - config["synthetic_fraction"]}

    def check(config):
        parse_mixture_model(config["model"], config["dim"])
        if config["method"] == "sufficient":
            raise ValueError("method (--method) must be 'samples' for the mixture setting")
        if config["synthetic_law"] == "shifted" and config["policy"] != "replace":
            raise ValueError("synthetic_law (--synthetic-law) shifted is a given model 1: it needs policy replace")

    def build(config):
        import jax
        import jax.numpy as jnp

        from collapse_jax.chain import Setting
        from collapse_jax.models.regression import make_linear_regression, make_projected_regression

        dtype = jnp.float64 if config["x64"] else jnp.float32
        dim = config["dim"]
        noise_std = jnp.sqrt(jnp.asarray(config["noise_var"], dtype))
        shift = jnp.asarray(config["shift"], dtype)
        kind, value = parse_mixture_model(config["model"], dim)
        shifted = config["synthetic_law"] == "shifted"
        smallest = _smallest_fit(config)  # model 1 is fitted on M_1 points

        def estimator(projection):
            if kind == "projection":
                return make_projected_regression(projection, noise_std=noise_std, full_rank=value < smallest)
            ridge = jnp.asarray(value if kind == "ridge" else 0.0, dtype)
            return make_linear_regression(dim, ridge=ridge, noise_std=noise_std, full_rank=smallest > dim)

        def metrics(weights, true_weights):
            return {"test_error": jnp.sum((weights - true_weights) ** 2)}

        def unit(key):
            v = jax.random.normal(key, (dim, 1), dtype)
            return v / jnp.sqrt(jnp.sum(v**2))

        def setting(true_weights, generator, projection, per_chain=None):
            return Setting(
                "mixture",
                estimator(projection),
                true_weights,
                metrics,
                per_chain,
                first_model=generator if shifted else None,
            )

        width = value if kind == "projection" else 1

        def per_chain(key_chain, key_shared):
            del key_shared
            key_w, key_shift, key_projection = jax.random.split(key_chain, 3)
            true_weights = unit(key_w)
            projection = jax.random.normal(key_projection, (dim, width), dtype)
            return setting(true_weights, true_weights + shift * unit(key_shift), projection)

        zeros = jnp.zeros((dim, 1), dtype)
        return setting(zeros, zeros, jnp.zeros((dim, width), dtype), per_chain), chain_spec(config)

    return SettingDefinition(
        name="mixture",
        description="strong model collapse (Dohmatob et al. 2024; theory.md C): regression on a mix of real "
        "labels y = x.w1 + noise and a synthetic share from w2 = w1 + Delta (or from the previous "
        "generation); x ~ N(0, I), ||w1|| = 1 drawn per chain",
        parameters=(
            Parameter("dim", int, 10, "d, number of features", low=1, high=4096),
            Parameter(
                "synthetic_fraction",
                float,
                0.2,
                "q: share of synthetic points in each training set k >= 2 "
                "(real_fraction = 1 - q; theory.md C calls it p)",
                low=0,
                high=1,
            ),
            Parameter(
                "noise_var",
                float,
                1.0,
                "sigma^2, label noise variance of real and synthetic labels",
                low=0,
                high=1e6,
                traced=True,
            ),
            Parameter(
                "shift",
                float,
                1.0,
                "c = ||w2 - w1||, the synthetic law's distance (random direction per chain)",
                low=0,
                high=1e6,
                traced=True,
            ),
            Parameter(
                "synthetic_law",
                str,
                "shifted",
                "shifted: model 1 is the given w2 and generation 2 trains on "
                "the mix (default generations: 2); previous: a chain, each model labelling the next synthetic "
                "share (default generations: 20)",
                choices=("shifted", "previous"),
            ),
            Parameter(
                "model",
                str,
                "ols",
                "fit: ols, ridge:LAMBDA (penalty on the mean squared error, LAMBDA in "
                "[0, 1e6]) or projection:M (random projection of width M in [1, 100000], min-norm least "
                "squares)",
            ),
            Parameter(
                "metrics",
                "list",
                ("test_error",),
                "test_error = ||w_hat - w1||^2 (excess error on the real law, noiseless targets)",
                choices=("test_error",),
            ),
        ),
        build=build,
        check=check,
        complete=complete,
    )


NEURAL_METRICS = {
    "regression": ("test_mse",),
    "eigen": ("accuracy", "accuracy_each", "relative_error"),
    "lm": ("cross_entropy", "kl_to_true", "rare_token_mass", "rare_transition_mass", "first_token_support"),
}
NEURAL_DEFAULTS = {  # per task, used where the command line does not set them
    "regression": dict(
        samples=100, generations=10, chains=64, width=32, depth=1, steps=300, batch_size=0, learning_rate=0.01
    ),
    "eigen": dict(
        samples=2000, generations=8, chains=16, width=128, depth=2, steps=1000, batch_size=128, learning_rate=0.002
    ),
    "lm": dict(
        samples=2048,
        generations=6,
        chains=16,
        width=32,
        depth=1,
        steps=300,
        batch_size=64,
        learning_rate=0.003,
        gradient_clip=1.0,
    ),
}


def _neural_definition() -> SettingDefinition:
    every_metric = tuple(dict.fromkeys(m for names in NEURAL_METRICS.values() for m in names))

    def complete(config, overrides):
        task = config["task"]
        config = {**config, **{k: v for k, v in NEURAL_DEFAULTS[task].items() if k not in overrides}}
        if "metrics" not in overrides:
            names = NEURAL_METRICS[task]
            if task == "lm" and config["model"] != "bigram":
                names = names[:-1]
            config = {**config, "metrics": names}
        return config

    def check(config):
        task, model = config["task"], config["model"]
        allowed = NEURAL_METRICS[task]
        bad = [m for m in config["metrics"] if m not in allowed]
        if bad:
            raise ValueError(
                f"metrics (--metrics) for task {task} must be from {', '.join(allowed)}; got {', '.join(bad)}"
            )
        if task == "lm" and model == "transformer" and "first_token_support" in config["metrics"]:
            raise ValueError("metrics (--metrics): first_token_support is defined for --model bigram only")
        if task != "lm" and model != "transformer":
            raise ValueError(f"model (--model) {model} is a language model: use it with --task lm")
        if config["method"] == "sufficient":
            raise ValueError("method (--method) must be 'samples' for the neural setting")
        if config["x64"]:
            raise ValueError("x64 (--x64): networks train in float32; the neural setting does not run in float64")
        if config["real_draw"] == "mixture" and config["verifier"] != "none":
            raise ValueError("real_draw (--real-draw) must be 'fixed' with a verifier")
        if config["verifier"] != "none" and task != "eigen":
            raise ValueError("verifier (--verifier) oracle is defined for --task eigen")
        if (
            config["verifier"] == "oracle"
            and config["verifier_tolerance"] == 0
            and config["best_of"] == 1
            and config["verified_budget"] == "refill"
        ):
            raise ValueError(
                "verifier_tolerance (--verifier-tolerance) is 0: no sampled label passes and a refill "
                "would never end; give it a value > 0"
            )
        if config["best_of"] > 1 and config["verifier"] == "none":
            raise ValueError("best_of (--best-of) > 1 needs a verifier (--verifier oracle)")
        if task == "lm" and model == "transformer" and config["width"] % config["heads"]:
            raise ValueError(f"heads (--heads) must divide width (--width) = {config['width']}, got {config['heads']}")
        if task == "lm" and model == "transformer" and config["depth"] < 1:
            raise ValueError("depth (--depth) must be >= 1 for a transformer (its number of blocks)")
        if task == "eigen" and config["depth"] < 1:
            raise ValueError("depth (--depth) must be >= 1 for the eigen task (a mean-and-variance MLP)")
        if config["optimizer"] == "sgd" and config["weight_decay"] > 0:
            raise ValueError("weight_decay (--weight-decay) applies to --optimizer adamw only")

    def build(config):
        import jax
        import jax.numpy as jnp

        from collapse_jax.chain import Setting
        from collapse_jax.models import neural

        task = config["task"]
        training = neural.Training(
            steps=config["steps"],
            batch_size=config["batch_size"],
            optimizer=config["optimizer"],
            learning_rate=jnp.asarray(config["learning_rate"], jnp.float32),
            weight_decay=jnp.asarray(config["weight_decay"], jnp.float32),
            gradient_clip=config["gradient_clip"],
            warm_start=config["warm_start"],
        )
        names = tuple(config["metrics"])

        def chosen(metrics):
            return lambda key, params, truth: {n: v for n, v in metrics(key, params, truth).items() if n in names}

        if task == "regression":
            teacher, estimator, metrics, sample_real = neural.make_regression_task(
                dim=config["dim"],
                width=config["width"],
                depth=config["depth"],
                teacher_width=config["teacher_width"],
                teacher_depth=config["teacher_depth"],
                noise_var=config["noise_var"],
                test_size=config["test_size"],
                training=training,
            )

            def setting(truth, per_chain=None):
                return Setting(
                    "neural",
                    estimator(),
                    truth,
                    chosen(metrics),
                    per_chain,
                    random_metrics=True,
                    sample_real=sample_real(truth),
                )

            def per_chain(key_chain, key_shared):  # one teacher for all chains (the seed's)
                del key_chain
                return setting(neural.RegressionTruth(teacher.init(key_shared)))

            return setting(neural.RegressionTruth(teacher.init(jax.random.key(0))), per_chain), chain_spec(config)
        if task == "eigen":
            size = config["matrix_size"]
            _, estimator, metrics, sample_real = neural.make_eigen_task(
                size=size,
                width=config["width"],
                depth=config["depth"],
                tolerance=config["tolerance"],
                verifier_noise=config["verifier_noise"],
                test_size=config["test_size"],
                training=training,
            )
            verifier = (
                neural.eigen_oracle_verifier(
                    size, jnp.asarray(config["verifier_tolerance"], jnp.float32), config["tolerance"]
                )
                if config["verifier"] == "oracle"
                else None
            )
            return Setting(
                "neural",
                estimator(),
                neural.EigenTruth(jnp.zeros(())),
                chosen(metrics),
                random_metrics=True,
                sample_real=sample_real,
                verifier=verifier,
            ), chain_spec(config)
        estimator, metrics, sample_real = neural.make_lm_task(
            model=config["model"],
            vocab=config["vocab"],
            length=config["context"],
            width=config["width"],
            depth=config["depth"],
            heads=config["heads"],
            smoothing=config["smoothing"],
            temperature=jnp.asarray(config["temperature"], jnp.float32),
            test_size=config["test_size"],
            training=training,
        )

        def lm_setting(language, per_chain=None):
            return Setting(
                "neural",
                estimator(),
                language,
                chosen(metrics),
                per_chain,
                random_metrics=True,
                sample_real=sample_real(language),
            )

        def language_of(key):
            return neural.make_markov_language(key, config["vocab"], config["context"], config["zipf"])

        def lm_per_chain(key_chain, key_shared):  # one language for all chains (the seed's)
            del key_chain
            return lm_setting(language_of(key_shared))

        return lm_setting(language_of(jax.random.key(0)), lm_per_chain), chain_spec(config)

    return SettingDefinition(
        name="neural",
        description="small flax networks trained with optax, one per chain, inside one program: teacher-student "
        "regression, eigenvalues of symmetric matrices (Feng et al. 2024) with an oracle verifier, "
        "and a tiny language model on a Zipfian Markov language (Gerstgrasser et al. 2024)",
        parameters=(
            Parameter(
                "task",
                str,
                "regression",
                "regression (teacher-student MLP), eigen (sorted eigenvalues of "
                "symmetric matrices) or lm (tiny language model)",
                choices=TASKS,
            ),
            Parameter(
                "model",
                str,
                "transformer",
                "lm only: transformer (causal) or bigram (the count model); regression and eigen use an MLP",
                choices=LM_MODELS,
            ),
            Parameter(
                "width",
                int,
                32,
                "hidden width (MLP) or embedding width (transformer); default per task",
                low=1,
                high=4096,
            ),
            Parameter(
                "depth",
                int,
                1,
                "hidden layers (MLP; 0: linear, no bias) or blocks (transformer); default per task",
                low=0,
                high=64,
            ),
            Parameter("heads", int, 2, "attention heads (transformer; must divide --width)", low=1, high=64),
            Parameter(
                "steps",
                int,
                300,
                "optimiser steps per fit (the same under every pool rule); default per task",
                low=1,
                high=1_000_000,
            ),
            Parameter(
                "batch_size",
                int,
                0,
                "rows per step, drawn with replacement in proportion to the pool "
                "weights (0: the whole weighted pool); default per task",
                low=0,
                high=1_000_000,
            ),
            Parameter("optimizer", str, "adam", "optax optimiser", choices=OPTIMIZERS),
            Parameter(
                "learning_rate", float, 0.01, "learning rate (default per task)", low=1e-9, high=100, traced=True
            ),
            Parameter("weight_decay", float, 0.0, "adamw weight decay", low=0, high=10, traced=True),
            Parameter(
                "gradient_clip", float, 0.0, "clip gradients to this global norm (0: no clipping)", low=0, high=1e6
            ),
            Parameter(
                "warm_start",
                bool,
                False,
                "start each fit k >= 2 from model k-1 (default: a fresh initialisation each generation)",
            ),
            Parameter(
                "test_size",
                int,
                512,
                "held-out points (matrices, sequences) drawn per generation for the metrics",
                low=1,
                high=1_000_000,
            ),
            Parameter("dim", int, 8, "regression: input dimension d", low=1, high=4096),
            Parameter("teacher_width", int, 32, "regression: teacher hidden width", low=1, high=4096),
            Parameter(
                "teacher_depth",
                int,
                1,
                "regression: teacher hidden layers (0: linear teacher, no bias)",
                low=0,
                high=64,
            ),
            Parameter(
                "noise_var",
                float,
                0.1,
                "regression: label noise variance sigma^2 (real and synthetic)",
                low=0,
                high=1e6,
                traced=True,
            ),
            Parameter("matrix_size", int, 5, "eigen: matrix size", low=2, high=10),
            Parameter(
                "tolerance",
                float,
                0.05,
                "eigen: relative error counted as correct by the accuracy metrics",
                low=1e-6,
                high=10,
            ),
            Parameter(
                "verifier",
                str,
                "none",
                "eigen: none, or oracle (keeps a synthetic label within "
                "--verifier-tolerance relative L1 error of the true eigenvalues, read with "
                "--verifier-noise)",
                choices=("none", "oracle"),
            ),
            Parameter(
                "verifier_tolerance",
                float,
                0.05,
                "eigen: the oracle's relative L1 tolerance",
                low=0,
                high=100,
                traced=True,
            ),
            Parameter(
                "verifier_noise",
                float,
                0.0,
                "eigen: sd of the noise on the oracle's eigenvalues",
                low=0,
                high=100,
                traced=True,
            ),
            Parameter(
                "best_of",
                int,
                1,
                "eigen: K > 1: the verifier picks the best of K labels sampled for each matrix (no pruning)",
                low=1,
                high=1024,
            ),
            Parameter(
                "verified_budget",
                str,
                "prune",
                "eigen: refill (propose until M - r pass), prune (keep the passing ones) or weight",
                choices=VERIFIED_BUDGETS,
            ),
            Parameter("vocab", int, 24, "lm: vocabulary size V", low=2, high=4096),
            Parameter("context", int, 12, "lm: sequence length L", low=2, high=1024),
            Parameter(
                "zipf", float, 1.2, "lm: Zipf exponent of the initial law and of every transition row", low=0, high=10
            ),
            Parameter(
                "temperature",
                float,
                1.0,
                "lm: sampling temperature of the models' corpora",
                low=1e-3,
                high=100,
                traced=True,
            ),
            Parameter(
                "smoothing",
                float,
                0.01,
                "lm, bigram: add-s counts used when scoring real text (it samples from its raw counts)",
                low=0,
                high=100,
            ),
            Parameter(
                "metrics",
                "list",
                every_metric,
                "metrics (default: the task's): regression test_mse; eigen "
                "accuracy, accuracy_each, relative_error; lm cross_entropy, kl_to_true, rare_token_mass, "
                "rare_transition_mass, first_token_support (bigram)",
                choices=every_metric,
            ),
        ),
        build=build,
        check=check,
        complete=complete,
        report_generations=True,  # network generations are slow: progress per generation while training
    )


SETTINGS: dict[str, SettingDefinition] = {
    "gaussian": _gaussian_definition(),
    "regression": _regression_definition(),
    "logistic": _logistic_definition(),
    "discrete": _discrete_definition(),
    "tails": _tails_definition(),
    "kde": _kde_definition(),
    "diffusion": _diffusion_definition(),
    "gmm": _gmm_definition(),
    "verification": _verification_definition(),
    "mixture": _mixture_definition(),
    "neural": _neural_definition(),
}


def get_setting(name: str) -> SettingDefinition:
    if name not in SETTINGS:
        raise ValueError(f"setting must be one of {', '.join(SETTINGS)}; got {name!r}")
    return SETTINGS[name]
