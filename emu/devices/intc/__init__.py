"""Interrupt controllers."""
