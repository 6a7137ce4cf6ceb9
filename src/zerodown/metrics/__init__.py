"""Metrics providers: per-version request metrics and system resources."""
