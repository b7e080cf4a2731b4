"""Predictions for the neural setting, where a closed form exists: the linear limit of the
teacher-student task and the first-token law of the bigram count model. Everything else (MLP and
transformer chains, the eigenvalue task) has no closed form: NoTheory, and the simulation stands alone.
"""

from __future__ import annotations

from theory import discrete, regression
from theory.common import METHODS, POLICIES, NoTheory, Prediction, unmodelled

METRICS = ("test_mse", "first_token_support")  # the metrics with a prediction (the others: NoTheory)


def predict(metric: str, *, task: str, policy: str, generations: int, samples: int, **config) -> Prediction | NoTheory:
    """The prediction for one neural-setting metric over generations 0..G (the simulation's names).

    regression, test_mse: with a linear teacher and a linear student (teacher_depth = depth = 0, no
      bias) trained full-batch (batch_size = 0) to convergence, each fit is the least-squares fit on
      fresh isotropic inputs, so E test_mse = E ||w_k - w*||^2 is the OLS chain with a fresh design
      (theory.regression; Gerstgrasser et al. 2024, Dohmatob et al. 2024). Assumes the optimiser has
      converged: a stopped or minibatch run sits above it, which the comparison shows. A warm start
      changes nothing there (the least-squares minimiser is unique).
    lm, first_token_support (bigram): the first tokens of the M sequences are M draws from the fitted
      first-token law, the discrete setting's empirical-law chain over a Zipf law (theory.discrete:
      Wright-Fisher under replace; exact).
    A pool rule or method outside the known ones, a verifier or best-of-K: NoTheory (the options the
    regression and discrete theories take are passed on, and they say NoTheory for what they do not model).
    """
    why = unmodelled(policy=(policy, POLICIES), method=(config.get("method", "samples"), METHODS))
    if why is not None:
        return why
    if config.get("verifier", "none") != "none" or config.get("best_of", 1) != 1:
        return NoTheory("a verifier or best-of-K selection of the synthetic points: not derived")
    if config.get("shared_real_data", False):
        return NoTheory("with a shared real sample the chain mean is conditional on it; theory is unconditional")
    if task == "regression" and metric == "test_mse":
        if config.get("depth") != 0 or config.get("teacher_depth") != 0:
            return NoTheory(
                "a non-linear (MLP) teacher or student: no closed form; the linear theory applies to "
                "depth = teacher_depth = 0 only"
            )
        if config.get("weight_decay", 0.0) != 0:
            return NoTheory(
                "weight decay moves the minimiser off the least-squares fit: the OLS theory assumes weight_decay = 0"
            )
        if config.get("batch_size", 0) != 0:
            return NoTheory(
                "minibatch training stops at a noisy point near the least-squares fit: the OLS "
                "theory assumes full-batch training to convergence (batch_size = 0)"
            )
        dim = config["dim"]
        if samples < dim + 2:
            return NoTheory(
                "fewer than d + 2 points: gradient descent from a random start does not reach the "
                "minimum-norm solution the theory describes"
            )
        result = regression.predict(
            "excess_risk",
            dim=dim,
            samples=samples,
            noise_var=config["noise_var"],
            policy=policy,
            generations=generations,
            design="fresh",
            real_fraction=config.get("real_fraction", 0.0),
            real_source=config.get("real_source", "fresh"),
            real_draw=config.get("real_draw", "fixed"),
            sample_growth=config.get("sample_growth", 0.0),
        )
        if isinstance(result, Prediction):
            return result._replace(
                note="least-squares chain, fresh isotropic inputs (assumes training converged): " + result.note
            )
        return result
    if task == "lm" and metric == "first_token_support" and config.get("model") == "bigram":
        return discrete.predict(
            "support_size",
            categories=config["vocab"],
            samples=samples,
            policy=policy,
            generations=generations,
            law=f"zipf:{config['zipf']}",
            real_fraction=config.get("real_fraction", 0.0),
            real_draw=config.get("real_draw", "fixed"),
            real_source=config.get("real_source", "fresh"),
            shared_real_data=config.get("shared_real_data", False),
            sample_growth=config.get("sample_growth", 0.0),
        )
    return NoTheory(f"{metric} of a trained network ({task}): no closed form; simulation only")
