"""Slice of the logistic setting: logistic regression by Newton steps with Bernoulli label resampling (Dey & Donoho 2024)."""
