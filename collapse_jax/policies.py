"""The pool rules, declared once: what model k is fitted on, and what each rule needs of the chain.

The chain (`collapse_jax.chain`: the pool it sets up and updates each generation), its memory estimate
(`chain_bytes_estimate`) and `validate_spec` read these declarations, never a rule's name, so a new rule
is a new row of `POOL_RULES` (and, where its code path is new, a new flag). JAX-free to import: the
command line builds `--policy` from this table (`collapse_jax.options.POLICIES`).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PoolRule:
    """One pool rule (`ChainSpec.policy`).

    Attributes:
      name: the rule's name (`--policy`).
      description: what model k is fitted on, in words.
      grows: the pool keeps every batch (batches 1..k after generation k); False: the pool is the batch
        of generation k alone.
      subsamples: model k is fitted on M points drawn without replacement from the pool (needs `grows`);
        False: on the whole pool.
      merges_statistics: the pool may be kept as merged sufficient statistics instead of points (under
        `ChainSpec.accumulate_with_statistics`, for estimators with statistics); a rule whose fit needs
        the points themselves (a subsample) keeps a buffer of them.
      sufficient_path: allowed on `method="sufficient"` (which has statistics only, never points).
      given_first_model: allows a given model 1 (`Setting.first_model`) instead of one fitted on real points.
    """

    name: str
    description: str
    grows: bool
    subsamples: bool
    merges_statistics: bool
    sufficient_path: bool
    given_first_model: bool


POOL_RULES: dict[str, PoolRule] = {
    rule.name: rule
    for rule in (
        PoolRule(
            "replace",
            "the batch of generation k (M points)",
            grows=False,
            subsamples=False,
            merges_statistics=True,
            sufficient_path=True,
            given_first_model=True,
        ),
        PoolRule(
            "accumulate",
            "all batches of generations 1..k (kM points)",
            grows=True,
            subsamples=False,
            merges_statistics=True,
            sufficient_path=True,
            given_first_model=False,
        ),
        PoolRule(
            "accumulate-subsample",
            "M points drawn without replacement from all batches of generations 1..k",
            grows=True,
            subsamples=True,
            merges_statistics=False,
            sufficient_path=False,
            given_first_model=False,
        ),
    )
}


def pool_rule(name: str) -> PoolRule:
    """The declaration of pool rule `name`; ValueError naming `policy` and the allowed names otherwise."""
    rule = POOL_RULES.get(name) if isinstance(name, str) else None
    if rule is None:
        raise ValueError(f"policy must be one of {', '.join(POOL_RULES)}; got {name!r}")
    return rule


def rules_with(flag: str) -> tuple[str, ...]:
    """The names of the rules whose boolean attribute `flag` is true, in table order."""
    return tuple(name for name, rule in POOL_RULES.items() if getattr(rule, flag))


def keeps_statistics(rule: PoolRule, spec_uses_statistics: bool, estimator_has_statistics: bool) -> bool:
    """Whether a growing pool is kept as merged sufficient statistics (O(1) memory) rather than points
    (`spec_uses_statistics`: `ChainSpec.accumulate_with_statistics`)."""
    return rule.grows and rule.merges_statistics and spec_uses_statistics and estimator_has_statistics


def keeps_buffer(rule: PoolRule, spec_uses_statistics: bool, estimator_has_statistics: bool) -> bool:
    """Whether the pool is a buffer of every point kept so far (M_1 + (G - 1) M slots)."""
    return rule.grows and not keeps_statistics(rule, spec_uses_statistics, estimator_has_statistics)
