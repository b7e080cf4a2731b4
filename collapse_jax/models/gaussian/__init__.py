"""Slice of the gaussian setting: the d-dimensional Gaussian (Shumailov et al. 2024; Kazdan et al. 2025)."""
