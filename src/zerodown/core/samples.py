"""Metric samples handed to the monitor by collectors.

A collector is any callable returning an iterable of ``MetricSample``: the monitor calls every
registered collector at each scrape, stores the samples as time series and exposes them at
``/metrics`` in Prometheus text format. Keeping the type here lets any part of zerodown (the
log book, the backup scheduler ...) publish metrics without importing the monitor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Collector", "MetricKind", "MetricSample"]

MetricKind = Literal["counter", "gauge"]


@dataclass(frozen=True, kw_only=True)
class MetricSample:
    """One value of one series: ``name{labels} value``.

    ``name`` follows Prometheus conventions (``zerodown_`` prefix, ``_total`` for counters,
    base units such as ``_seconds`` and ``_bytes``); ``help`` is the series' one-line description.
    """

    name: str
    value: float
    kind: MetricKind = "gauge"
    labels: Mapping[str, str] = field(default_factory=dict)
    help: str = ""


Collector = Callable[[], Iterable[MetricSample]]
"""Returns the current value of every series it owns; must be cheap and must not raise."""
