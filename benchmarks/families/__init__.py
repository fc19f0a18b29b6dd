"""Benchmarks of families (see benchmarks/README.md)."""
