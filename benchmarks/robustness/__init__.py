"""Benchmarks of robustness (see benchmarks/README.md)."""
