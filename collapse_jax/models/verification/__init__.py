"""Slice of the verification setting: verified synthetic data: a classifier's labels filtered by a verifier (Feng et al. 2024)."""
