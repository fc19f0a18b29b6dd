"""Benchmarks of cache (see benchmarks/README.md)."""
