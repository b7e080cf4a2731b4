"""Alias of theory.mixture (the mixture setting's theory), kept for existing imports."""

from theory.mixture import *  # noqa: F403
