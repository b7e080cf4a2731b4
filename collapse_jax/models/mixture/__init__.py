"""Slice of the mixture setting: mixes of real and synthetic data in regression (Dohmatob, Feng & Kempe 2024, strong model collapse)."""
