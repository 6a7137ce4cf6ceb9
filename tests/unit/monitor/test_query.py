"""``zerodown metrics``: counter increases, histogram quantiles and per-version figures."""

from __future__ import annotations

import math

import pytest

from zerodown.monitor.history import StoredSeries
from zerodown.monitor.query import bucket_quantile, counter_increase, service_figures
from zerodown.ops import promql
from zerodown.ops.series import STALE_NAN, SeriesStore, label_set


def test_a_counter_s_increase_counts_a_drop_as_a_restart_from_zero() -> None:
    points = [(0.0, 10.0), (10.0, 15.0), (20.0, 3.0), (30.0, 8.0)]
    assert counter_increase(points, 0.0, 30.0) == 5 + 3 + 5
    assert counter_increase(points, 10.0, 20.0) == 3  # from the sample at the start
    assert counter_increase(points, -5.0, 10.0) == 5  # the first sample's value is not counted
    assert counter_increase([(0.0, 1.0), (5.0, STALE_NAN), (9.0, 4.0), (12.0, 6.0)], 0, 20) == 2


@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_bucket_quantiles_agree_with_histogram_quantile(q: float) -> None:
    buckets = [(0.1, 2.0), (0.25, 10.0), (0.5, 11.0), (1.0, 18.0), (math.inf, 20.0)]
    store = SeriesStore()
    for bound, count in buckets:
        le = "+Inf" if math.isinf(bound) else repr(bound)
        store.append("h_bucket", {"le": le}, count, 100.0)
    [expected] = promql.evaluate_vector(f"histogram_quantile({q}, h_bucket)", store, 100.0)
    assert bucket_quantile(q, buckets) == pytest.approx(expected.value)


def test_no_observations_no_quantile() -> None:
    assert bucket_quantile(0.95, [(1.0, 0.0), (math.inf, 0.0)]) is None
    assert bucket_quantile(0.95, [(1.0, 3.0)]) is None  # no +Inf bucket


def _series(name: str, points: list[tuple[float, float]], **labels: str) -> StoredSeries:
    return StoredSeries(label_set({"__name__": name, **labels}), "counter", points)


def test_service_figures_per_version_and_step() -> None:
    def requests(code: str, per_step: float) -> StoredSeries:
        points = [(t, per_step * t / 10) for t in (0.0, 10.0, 20.0, 30.0)]
        return _series("zerodown_requests_total", points, version="v1", code_class=code)

    series = [
        requests("2xx", 90),
        requests("5xx", 10),
        _series(
            "zerodown_requests_unavailable_total",
            [(t, t / 10) for t in (0.0, 10.0, 20.0, 30.0)],
            version="v1",
        ),
        _series(
            "zerodown_request_duration_seconds_sum",
            [(t, 2.0 * t) for t in (0.0, 10.0, 20.0, 30.0)],
            version="v1",
        ),
        _series(
            "zerodown_request_duration_seconds_count",
            [(t, 10.0 * t) for t in (0.0, 10.0, 20.0, 30.0)],
            version="v1",
        ),
        StoredSeries(
            label_set({"__name__": "zerodown_instance_healthy", "instance": "i1", "version": "v1"}),
            "gauge",
            [(25.0, 0.0)],
        ),
    ]
    figures = service_figures(series, service="web", since=0.0, until=30.0, step=10.0)
    v1 = figures["versions"]["v1"]
    assert v1["requests_total"] == 300
    window = v1["window"]
    assert window["requests"] == 300 and window["request_rate"] == pytest.approx(10.0)
    assert window["error_rate"] == pytest.approx(0.1)
    assert window["availability"] == pytest.approx(0.99)
    assert window["latency_avg_s"] == pytest.approx(0.2)
    assert [p["t"] for p in v1["points"]] == [10.0, 20.0, 30.0]
    assert all(p["requests"] == 100 for p in v1["points"])
    assert figures["instances"] == [{"instance": "i1", "version": "v1", "healthy": False}]
