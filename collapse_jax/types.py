"""The types a chain is built from: `Setting` (a model class, its truth and metrics), `ChainSpec` (what fixes
a chain's shapes and code paths), `Verifier` and `Reward`. JAX-free to import: the settings' builders and
the command line use them without loading JAX (see `collapse_jax.chain` for the engine that runs them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import jax

    from collapse_jax.estimator import Estimator


def round_half_up(x: float) -> int:
    """The rounding used for counts such as round(alpha * M)."""
    return int(math.floor(x + 0.5))


class Verifier(NamedTuple):
    """Selects a generation's synthetic points (see the module docstring).

    keep_probability(points) -> `(n,)` in [0, 1]: the chance that each candidate passes.
    score(points) -> `(n,)`: what best-of-K maximises (default: the keep probability; ties go to the
      first candidate, i.e. uniformly at random among tied candidates).
    diagnostics(points) -> {name: `(n,)`}: per-point values averaged over the kept points and recorded
      per generation (e.g. `p_star`: 1 where the label is correct); generations 0 and 1 record their
      average over the generation-1 real sample.
    """

    keep_probability: Callable[[Any], jax.Array]
    score: Callable[[Any], jax.Array] | None = None
    diagnostics: Callable[[Any], dict] | None = None


class Reward(NamedTuple):
    """A reward r on points that curates a model's samples (Ferbach, Bertrand, Bose & Gidel 2024).

    score(points) -> `(n,)`: r at each point (the Bradley-Terry logits of best-of-K).
    expected(params) -> `()`: E r(x) for x drawn from a fitted model (or from the setting's true
      parameters, generation 0, unless `expected_truth` is given), exactly.
    tilt(params) -> params: the model's law times e^r, renormalised, as parameters of the same class
      (the K -> infinity limit of Bradley-Terry best-of-K); None where that law leaves the class.
    expected_truth(true_params) -> `()`: E r(x) for x drawn from the real distribution (generation 0),
      recorded beside `Setting.truth_metrics` when the setting has them; None: `expected(true_params)`.
    """

    score: Callable[[Any], jax.Array]
    expected: Callable[[Any], jax.Array]
    tilt: Callable[[Any], Any] | None = None
    expected_truth: Callable[[Any], jax.Array] | None = None


class Setting(NamedTuple):
    """A model class, the real distribution (as true parameters of that class) and its metrics.

    metrics(params, true_params) -> dict of scalar arrays, one per metric name; with `random_metrics`,
      metrics(key, params, true_params), the key being the chain's (generation, EVALUATE) key, for
      metrics that draw (a downstream model fitted on fresh points, a held-out sample).
    per_chain: optional `(chain_key, shared_key) -> Setting`, for settings whose real distribution is
      itself drawn (a design matrix, a true weight vector): each chain calls it once with keys of
      purpose TRUTH (its own, and the one all chains share) and runs on the setting it returns, whose
      estimator, true parameters and metrics must have the shapes of this one's.
    sample_size: optional scalar (may be traced) that replaces `ChainSpec.samples` on the sufficient
      path, whose shapes do not depend on M: a sweep over M then runs inside one program.
    sample_real: optional `(key, n) -> data`, n static: draws from the real distribution when it is not
      a member of the model class (a 2-D dataset under a KDE, a Zipf law under an empirical law); by
      default real points are `estimator.sample(key, true_params, n)`. `true_params` is then whatever
      the metrics need of the truth, and `metrics(true_params, true_params)` gives generation 0 (or
      `truth_metrics`).
    first_model: optional parameters of model 1, given instead of fitted on real points (a fixed
      generator, e.g. a tail-cut law); `replace` only.
    verifier: optional `Verifier` that filters the synthetic points (sample path only).
    real_weight: w in [0, 1] (may be traced), read when `ChainSpec.real_weighted`: the share of each
      batch's weight M carried by its r real points (He, Xu & Cheng 2025): each real point has weight
      w M / r, each synthetic point (1 - w) M / (M - r). Taken from the setting a cell builds (not from
      `per_chain`), so a sweep over w runs inside one program.
    temperature: tau > 0 (may be traced), read when `ChainSpec.tempered`: synthetic points are drawn from
      `estimator.temper(params, tau)`; taken from the setting a cell builds, as `real_weight`.
    tilt: optional `params -> params`: synthetic points are drawn from `tilt(params)` (after the
      temperature), e.g. `Reward.tilt`, the K -> infinity limit of Bradley-Terry curation; real points
      are never tilted.
    metric_bytes: memory one chain's metrics hold at once beyond the batch and the parameters (their own
      draws, e.g. a memoriser's training sample), counted by `chain_bytes_estimate` to size chunks.
    truth_metrics: optional `truth_metrics(true_params) -> dict` (with `random_metrics`:
      `truth_metrics(key, true_params)`, the key being the chain's (0, EVALUATE) key): the metrics of
      generation 0, the real distribution itself, with the names and shapes of `metrics`; None:
      `metrics(true_params, true_params)`. Lets `metrics` assume its `params` is a fitted model.
    """

    name: str
    estimator: Estimator
    true_params: Any
    metrics: Callable[[Any, Any], dict]
    per_chain: Callable[[jax.Array, jax.Array], Setting] | None = None
    sample_size: Any = None
    random_metrics: bool = False
    sample_real: Callable[[jax.Array, int], Any] | None = None
    first_model: Any = None
    verifier: Verifier | None = None
    metric_bytes: float = 0.0
    real_weight: Any = None
    temperature: Any = None
    tilt: Callable[[Any], Any] | None = None
    truth_metrics: Callable[..., dict] | None = None


@dataclasses.dataclass(frozen=True)
class ChainSpec:
    """Everything that fixes shapes or code paths of a chain (hashable; one compile per spec).

    Attributes:
      num_generations: G, the number of fitted models (generations 1..G).
      samples: M, points per generation (M_1 when `sample_growth` > 0).
      policy: pool rule, one of POLICIES.
      real_fraction: alpha in [0, 1]; r = round(alpha M) real points per generation k >= 2.
      real_source: "fresh" (new real draws) or "original" (from the generation-1 sample).
      real_draw: "fixed" (exactly round(alpha M) real points per generation k >= 2) or "mixture" (each
        point real with probability alpha; fresh real points only).
      method: "samples" or "sufficient".
      shared_real_data: all chains share the same real draws (results are then conditional on them).
      sample_growth: a >= 0, M_k = round(M k^a) (sufficient path only).
      accumulate_with_statistics: under `accumulate`, merge sufficient statistics (O(1) memory) when the
        estimator has them, instead of keeping a buffer of all points. Both give the same fits.
      best_of: K >= 1; with a verifier and K > 1, each synthetic point is the best of K candidates.
      curation: how best-of-K picks: "best" (the highest score) or "bradley-terry" (at random with
        probabilities softmax(scores)); "tilted" marks the K -> infinity limit, drawn from `Setting.tilt`
        (then best_of must be 1).
      verified_budget: with a verifier and K = 1, "refill" (propose until M - r pass), "prune" or
        "weight" (keep all, weighted by the keep probability).
      max_refill_rounds: cap on the refill rounds of M - r candidates each; a generation that does not
        fill within it trains on the points kept so far (recorded in `synthetic_kept`).
      report_generations: call the listeners of `listen_to_generations` as each generation k >= 2
        finishes (a host callback per generation: for slow generations, such as network training).
      real_weighted: weight the real and synthetic points of each batch k >= 2 by `Setting.real_weight`
        (fixed real draw with 0 < r < M, sample path); False: every point has weight 1.
      tempered: draw every synthetic batch at `Setting.temperature` (the estimator's `temper`).
      first_samples: M_1, the real points model 1 is fitted on (0: M; sample path). With
        `real_source="original"` and r = M_1, every later generation reuses exactly those real points
        beside M - M_1 synthetic ones (Kazdan et al.'s real x synthetic counts).
    """

    num_generations: int
    samples: int
    policy: str = "replace"
    real_fraction: float = 0.0
    real_source: str = "fresh"
    real_draw: str = "fixed"
    method: str = "samples"
    shared_real_data: bool = False
    sample_growth: float = 0.0
    accumulate_with_statistics: bool = True
    best_of: int = 1
    curation: str = "best"
    verified_budget: str = "refill"
    max_refill_rounds: int = 10_000
    first_samples: int = 0
    report_generations: bool = False
    real_weighted: bool = False
    tempered: bool = False

    @property
    def first_count(self) -> int:
        return self.first_samples or self.samples

    @property
    def real_count(self) -> int:
        return round_half_up(self.real_fraction * self.samples)
