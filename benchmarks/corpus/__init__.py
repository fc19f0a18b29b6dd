"""Benchmarks of corpus (see benchmarks/README.md)."""
