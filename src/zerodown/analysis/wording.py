"""Numbers as the judges write them in verdicts: percentages, latencies, ratios.

A verdict's reason is read by a human deciding what to do, so a number and the limit it is
compared with are printed with just enough decimals to show that they differ: ``5.1 % > 5 %``,
``99.95 % < 99.99 %``, never ``5 % > 5 %``.
"""

from __future__ import annotations

import math

__all__ = ["percent", "percent_pair", "ratio", "seconds"]

_MAX_DECIMALS = 4


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent_pair(value: float, limit: float) -> tuple[str, str]:
    """``value`` and ``limit`` (fractions) as percentages that differ in print when they differ.

    One decimal unless more are needed to tell them apart (or to show a small non-zero value).
    """
    value_pct, limit_pct = value * 100, limit * 100
    for decimals in range(1, _MAX_DECIMALS + 1):
        shown_value = f"{value_pct:.{decimals}f}"
        shown_limit = f"{limit_pct:.{decimals}f}"
        differ_ok = value == limit or shown_value != shown_limit
        nonzero_ok = value == 0 or float(shown_value) != 0
        if differ_ok and nonzero_ok:
            break
    return f"{_trim(shown_value)} %", f"{_trim(shown_limit)} %"


def percent(value: float) -> str:
    """A fraction as a percentage with one decimal (more for small non-zero values)."""
    return percent_pair(value, value)[0]


def seconds(value: float) -> str:
    """A latency in the unit that reads best: ``850 µs``, ``12.3 ms``, ``1.25 s``."""
    if math.isinf(value):
        return "∞"
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{_trim(f'{value * 1e3:.3g}')} ms" if value < 0.1 else f"{value * 1e3:.0f} ms"
    if value < 100:
        return f"{_trim(f'{value:.3g}')} s"
    return f"{value:.0f} s"


def ratio(value: float) -> str:
    """A ratio limit as written in specs: ``2.0``, ``1.5``, ``1.25``."""
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"
