"""Benchmarks of augment (see benchmarks/README.md)."""
