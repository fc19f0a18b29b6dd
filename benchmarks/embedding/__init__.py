"""Benchmarks of embedding (see benchmarks/README.md)."""
