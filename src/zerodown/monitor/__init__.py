"""The monitor: samples metrics into time series, evaluates alert rules and routes notifications.

``Monitor`` (``monitor.py``) runs inside ``zerodown serve``; ``exposition.py`` writes
Prometheus' text format for ``GET /metrics``.
"""

from zerodown.monitor.monitor import Monitor

__all__ = ["Monitor"]
