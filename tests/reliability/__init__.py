"""Reliability tests: hostile inputs, faults and failures, and what the package does with them."""
