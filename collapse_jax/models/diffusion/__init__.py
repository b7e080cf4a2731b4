"""Slice of the diffusion setting: diffusion models with an exact score, stopped at t0 (Khelifa, Turner & Venkataramanan 2026)."""
