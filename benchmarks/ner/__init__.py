"""Benchmarks of ner (see benchmarks/README.md)."""
