"""Benchmarks: load generation against the served repository, perf_analyzer, reports."""
