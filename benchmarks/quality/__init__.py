"""Benchmarks of quality (see benchmarks/README.md)."""
