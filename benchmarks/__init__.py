"""Benchmarks and simulations, run from a checkout (`python -m benchmarks.<name>`); not shipped."""
