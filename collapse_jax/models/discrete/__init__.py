"""Slice of the discrete setting: discrete laws: the empirical (Wright-Fisher) estimator on K categories."""
