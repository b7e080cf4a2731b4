"""Slice of the neural setting: small neural networks: teacher-student MLPs, an eigenvalue MLP, a tiny transformer language model."""
