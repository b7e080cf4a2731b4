"""Slice of the regression setting: linear regression: OLS, ridge, min-norm, a downstream model, a residual verifier (Gerstgrasser et al. 2024; Dohmatob et al. 2024)."""
