"""The pool rules are declared once (collapse_jax.policies): the option names, validation and the chain's
memory estimate read that table."""

import pytest

from collapse_jax.options import POLICIES
from collapse_jax.policies import POOL_RULES, keeps_buffer, keeps_statistics, pool_rule, rules_with


def test_policy_names_are_the_table():
    assert tuple(POOL_RULES) == POLICIES
    assert all(rule.name == name for name, rule in POOL_RULES.items())


def test_unknown_policy_names_the_option_and_the_rules():
    with pytest.raises(ValueError, match="policy must be one of replace, accumulate, accumulate-subsample"):
        pool_rule("keep-all")


def test_declared_flags_are_consistent():
    for rule in POOL_RULES.values():
        assert not rule.subsamples or rule.grows  # a subsample is drawn from a growing pool
        assert not rule.subsamples or not rule.merges_statistics  # a subsample needs the points
        assert not rule.sufficient_path or rule.merges_statistics  # the sufficient path has statistics only
    assert rules_with("sufficient_path") == ("replace", "accumulate")
    assert rules_with("given_first_model") == ("replace",)


@pytest.mark.parametrize(
    ("policy", "with_statistics", "buffer", "statistics"),
    [
        ("replace", True, False, False),
        ("replace", False, False, False),
        ("accumulate", True, False, True),
        ("accumulate", False, True, False),
        ("accumulate-subsample", True, True, False),
        ("accumulate-subsample", False, True, False),
    ],
)
def test_pool_storage(policy, with_statistics, buffer, statistics):
    rule = pool_rule(policy)
    assert keeps_buffer(rule, with_statistics, True) == buffer
    assert keeps_statistics(rule, with_statistics, True) == statistics
    assert keeps_buffer(rule, True, False) == rule.grows  # no statistics: a growing pool keeps its points
