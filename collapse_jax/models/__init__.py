"""Model classes (estimators) that chains fit and sample from."""
