"""Benchmarks: scripts run by hand (``python -m benchmarks.<area>.<name>``), never by ``make test``."""
