"""Strategies as pure planners: rolling, blue-green, canary."""
