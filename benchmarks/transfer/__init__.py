"""Benchmarks of transfer (see benchmarks/README.md)."""
