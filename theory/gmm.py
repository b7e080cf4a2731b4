"""Gaussian-mixture (EM) chains: no closed-form theory.

A recursive EM fit depends on the optimiser's path. No closed form is known for the L2 distance or the mode
weights, so `predict` says so and the simulation stands alone.
"""

from __future__ import annotations

from theory.common import NoTheory

REASON = "recursive EM fits of a mixture: no closed form is known (simulation only)"


def predict(metric: str, **_ignored) -> NoTheory:
    """NoTheory for every mixture metric, whatever the configuration (see the module docstring)."""
    return NoTheory(REASON)
