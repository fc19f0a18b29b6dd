"""Benchmarks of throughput (see benchmarks/README.md)."""
