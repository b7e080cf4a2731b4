"""The names every option may take: plain tuples, importable without JAX.

The command line builds its parser (and `--help`) from the settings' parameter tables, which need only
these names; the modules that use them (`chain`, the models, `datasets`) re-export them.
"""

from collapse_jax.policies import POOL_RULES

# the chain (collapse_jax.chain)
POLICIES = tuple(POOL_RULES)  # the pool rules, declared in collapse_jax.policies
REAL_SOURCES = ("fresh", "original")
REAL_DRAWS = ("fixed", "mixture")
VERIFIED_BUDGETS = ("refill", "prune", "weight")
CURATIONS = ("best", "bradley-terry", "tilted")  # how best-of-K picks among its candidates (verify.verified_sample)

# how CPU factorisations are made (collapse_jax.linalg.lapack_is_safe); the command line sets it for several devices
LAPACK_ENV = "COLLAPSE_JAX_CPU_LAPACK"
REWARD_METRIC = "expected_reward"  # recorded when a reward curates the synthetic points
VERIFICATION_METRICS = ("kept_fraction", "synthetic_kept")
METHODS = ("samples", "sufficient")

# the Gaussian model (collapse_jax.models.gaussian.model)
GAUSSIAN_METRICS = ("mean_error_sq", "trace_ratio", "log_det_ratio", "w2_sq")
EXTRA_GAUSSIAN_METRICS = ("kl_divergence",)  # recorded on request (--metrics), simulation only

# linear regression (collapse_jax.models.regression.model)
DESIGNS = ("fixed", "fresh")
CHAIN_METRICS = ("excess_risk", "excess_bias", "excess_variance")
DOWNSTREAM_METRICS = ("downstream_excess_risk", "downstream_bias", "downstream_variance", "downstream_synthetic")
REGRESSION_METRICS = CHAIN_METRICS + DOWNSTREAM_METRICS

# logistic regression (collapse_jax.models.logistic.model)
LOGISTIC_METRICS = ("param_error_sq", "excess_log_loss", "separated")

# the categorical model (collapse_jax.models.discrete.model)
CATEGORICAL_METRICS = (
    "support_size",
    "lost_mass",
    "tail_mass",
    "entropy",
    "gini_simpson",
    "tv_distance",
    "kl_to_original",
    "l2_risk",
)

# 2-D datasets (collapse_jax.datasets.NAMES)
DATASET_NAMES = ("blobs", "circles", "moons", "swiss_roll")
GAUSSIAN_DATASET = "gaussian"  # N(0, sigma^2 I_d) in any dimension (collapse_jax.datasets.make_dataset)

# diffusion with an exact score (the diffusion setting: a KDE of fixed bandwidth sqrt(t0))
DIFFUSION_DATASETS = (GAUSSIAN_DATASET,) + DATASET_NAMES
DIFFUSION_METRICS = ("variance", "mean_error_sq", "held_out_nll")

# classifiers (collapse_jax.models.verification.model)
CLASSIFIERS = ("mean", "least-squares", "logistic")

# neural networks (collapse_jax.models.neural)
OPTIMIZERS = ("adam", "adamw", "sgd")
TASKS = ("regression", "eigen", "lm")
LM_MODELS = ("transformer", "bigram")
