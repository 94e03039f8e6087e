"""Benchmarks behind ``scripts/bench-*``: each measures its baseline in the same run."""
