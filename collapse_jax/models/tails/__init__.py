"""Slice of the tails setting: Hutter's memoriser on Zipf data and tail cuts (Dohmatob et al. 2024, A Tale of Tails)."""
