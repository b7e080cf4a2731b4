"""Slice of the kde setting: kernel density estimates on 2-D datasets (Kazdan et al. 2025)."""
