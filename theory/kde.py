"""KDE chains: no closed-form theory.

A recursive KDE convolves its law with the kernel and resamples its centres every generation. No closed form
is known for the expected held-out NLL, so `predict` says so and the simulation stands alone (the diffusion
setting, a KDE of fixed bandwidth with Gaussian real data, has one: theory.diffusion).
"""

from __future__ import annotations

from theory.common import NoTheory

REASON = "recursive KDE: no closed form for the expected held-out NLL is known (simulation only)"


def predict(metric: str, **_ignored) -> NoTheory:
    """NoTheory for every KDE metric, whatever the configuration (see the module docstring)."""
    return NoTheory(REASON)
