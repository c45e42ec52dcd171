"""Evaluation: model loading, windowed scoring through an ECC cache, the Monte Carlo sweep."""
