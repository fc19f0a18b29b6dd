"""Benchmarks of bf16 (see benchmarks/README.md)."""
