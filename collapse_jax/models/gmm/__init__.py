"""Slice of the gmm setting: Gaussian mixtures fitted by EM (Shumailov et al. 2024)."""
