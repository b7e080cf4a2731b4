"""`NeuralTask`, what each task's factory returns (`make_regression_task`, `make_eigen_task`,
`make_lm_task`).

Three tasks (rows are float arrays; see each factory):
  regression  teacher-student: x ~ N(0, I_d), y = teacher(x) + noise; row `[x, y]`.
  eigen       sorted eigenvalues of random symmetric matrices (Feng et al. 2024, after Charton 2022);
              row `[upper triangle, label, true eigenvalues, oracle reading]`.
  lm          a Zipfian Markov language with a known law and a small causal transformer (or the
              bigram count model); row `[tokens]` (token ids stored as floats).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from collapse_jax.estimator import Estimator
from collapse_jax.models.neural.networks import Network


class NeuralTask(NamedTuple):
    """A task of the neural setting.

    estimator: the model class fitted each generation.
    draw_truth: `key -> true params`, the real law (regression: a teacher network; lm: a Markov language,
      both drawn from the key; eigen: a constant marker, the key unused).
    metrics: `(key, params, true_params) -> dict`, the metrics of a fitted model (the EVALUATE key).
    truth_metrics: `(key, true_params) -> dict`, the same metrics for the real law itself (generation 0).
    sample_real: `true_params -> ((key, n) -> rows)`, draws from the real law.
    network: the estimator's network (None: the bigram count model).
    """

    estimator: Estimator
    draw_truth: Callable
    metrics: Callable
    truth_metrics: Callable
    sample_real: Callable
    network: Network | None
