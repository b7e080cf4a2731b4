"""The tails setting: its parameter table and builder (JAX is imported inside the builder)."""

from __future__ import annotations

from collapse_jax.models.discrete.setting import zipf_probabilities
from collapse_jax.parameters import Option
from collapse_jax.settings import (
    Parameter,
    SettingDefinition,
    check_model_size,
    prefixed_number,
)

MAX_TAIL_DRAWS = 10**7  # draws per chain and generation of the tails metrics (fixed_synthetic, max train size)


TAIL_DRAW_BYTES = 100  # measured memory per such draw (the alias sampler's temporaries)


def parse_zipf_law(text: str, values: dict) -> Option:
    """`Option("zipf", beta)` of the tails `--law` string zipf:BETA, BETA in (1, 10]. Raises ValueError."""
    if not text.startswith("zipf:"):
        raise ValueError(f"law (--law) must be zipf:BETA for the tails setting, got {text!r}")
    beta = prefixed_number(text, "zipf:", "BETA", 10, "law (--law)", "zipf:BETA")
    if beta <= 1:
        raise ValueError(f"law (--law): BETA must be > 1 (Zipf's law with a finite scaling constant), got {beta:g}")
    return Option("zipf", beta)


def parse_generator(text: str, values: dict) -> Option:
    """The `Option` of a tails `--generator` string: ("empirical", None), ("cut", K) (the law restricted
    to ranks <= K, renormalised) or ("narrow", BETA2) (Zipf(BETA2) over the same items, BETA2 > beta)."""
    where = "generator (--generator)"
    forms = "empirical, cut:K or narrow:BETA2"
    categories, beta = values["categories"], values["law"].value
    if text == "empirical":
        return Option("empirical")
    if text.startswith("cut:"):
        try:
            rank = int(text[len("cut:") :])
        except ValueError:
            raise ValueError(f"{where} must be {forms}; got {text!r}") from None
        if not 1 <= rank < categories:
            raise ValueError(f"{where}: K in cut:K must be in [1, categories - 1 = {categories - 1}], got {rank}")
        return Option("cut", rank)
    if text.startswith("narrow:"):
        narrow = prefixed_number(text, "narrow:", "BETA2", 10, where, forms)
        if narrow <= beta:
            raise ValueError(f"{where}: BETA2 in narrow:BETA2 must be > the law's BETA = {beta:g}, got {narrow:g}")
        return Option("narrow", narrow)
    raise ValueError(f"{where} must be {forms}; got {text!r}")


def generator_law(generator: Option, beta: float, categories: int):
    """Model 1's law `(K,)` of a given generator (None for the empirical one)."""
    if generator.kind == "cut":
        law = zipf_probabilities(beta, categories)
        law[generator.value :] = 0.0
        return law / law.sum()
    if generator.kind == "narrow":
        return zipf_probabilities(generator.value, categories)
    return None


def metric_names(config):
    return tuple(f"test_error.{t}" for t in config["train_sizes"]) + ("lost_mass",)


def check(config):
    kind, value = config["generator"]
    if config["chain"] == "shrinking" and kind != "empirical":
        raise ValueError(
            "chain (--chain) shrinking needs generator (--generator) empirical (model 1 is the "
            "true law restricted to the items seen in T0 real draws)"
        )
    if kind != "empirical" and config["policy"] != "replace":
        raise ValueError(
            f"policy (--policy) must be replace with generator {kind}:{value:g} (model 1 is the "
            "given generator; each later model is the empirical law of the previous one's draws)"
        )
    bad = [m for m in config["metrics"] if m not in metric_names(config)]
    if bad:
        raise ValueError(f"metrics (--metrics): unknown {', '.join(bad)}; allowed: {', '.join(metric_names(config))}")
    if kind == "empirical" and config["chain"] == "empirical":
        check_model_size(config, "tails")


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
    from collapse_jax.models.discrete.model import (
        alias_table,
        given_law,
        make_categorical,
        make_support_restriction,
        sample_alias,
        true_law,
    )
    from collapse_jax.models.tails.model import memoriser_metrics
    from collapse_jax.types import Setting

    k = config["categories"]
    beta = config["law"].value
    law = zipf_probabilities(beta, k)
    kind = config["generator"].kind
    generator = generator_law(config["generator"], beta, k)
    truth = true_law(law, tail_rank=1)
    table = alias_table(law)
    shrinking = config["chain"] == "shrinking"
    estimator = make_support_restriction(law) if shrinking else make_categorical(k, base=generator)
    sizes = tuple(config["train_sizes"])
    names = tuple(config["metrics"])
    real_share, fixed = config["train_real_fraction"], config["fixed_synthetic"]

    def sample_real(key, n):
        return sample_alias(key, table, n)

    metrics, truth_metrics = memoriser_metrics(
        categories=k,
        train_sizes=sizes,
        names=names,
        sample_real=sample_real,
        sample_model=estimator.sample,
        train_real_fraction=real_share,
        fixed_synthetic=fixed,
        generator=generator,
    )

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
        truth_metrics=truth_metrics,
    )
    return setting


DEFINITION = SettingDefinition(
    name="tails",
    description="Hutter's memorisation model on Zipf data (Dohmatob et al. 2024, A Tale of Tails): a learner "
    "that memorises T draws from a tail-cut, tail-narrowed or recursively re-estimated law, "
    "tested on the real law",
    parameters=(
        Parameter("law", str, "zipf:2", "true law zipf:BETA, BETA > 1", parse=parse_zipf_law),
        Parameter("categories", int, 100_000, "K, number of items (the Zipf law's support)", low=2, high=10**7),
        Parameter(
            "generator",
            str,
            "empirical",
            "model 1: empirical (law of T0 = --samples real draws), cut:K "
            "(ranks <= K, renormalised) or narrow:BETA2 (Zipf(BETA2), BETA2 > BETA)",
            parse=parse_generator,
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
        Parameter("train_real_fraction", float, 0.0, "each training draw is real with this probability", low=0, high=1),
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
