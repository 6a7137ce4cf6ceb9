"""Prometheus' text format 0.0.4 as ``GET /metrics`` writes it.

Each test pins one rule of the format: one HELP and TYPE per family, a family's samples
together, escaping, value notation, histogram layout, and what happens to samples Prometheus
would refuse.
"""

from __future__ import annotations

import itertools
import math

from zerodown.core.samples import MetricSample
from zerodown.monitor.collect import LATENCY_BOUNDS, traffic_samples
from zerodown.monitor.exposition import (
    CONTENT_TYPE,
    families,
    format_value,
    render,
    sample_problem,
)
from zerodown.traffic.base import GroupMetrics, LatencyHistogram, latency_bucket


def sample(
    name: str, value: float, kind: str = "gauge", help: str = "", **labels: str
) -> MetricSample:
    return MetricSample(name=name, value=value, kind=kind, labels=labels, help=help)  # type: ignore[arg-type]


def test_content_type_names_the_text_format_version() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_each_family_has_one_help_and_type_and_its_samples_together() -> None:
    text = render(
        [
            sample("b_total", 1, "counter", "Bees.", x="1"),
            sample("a", 5, help="Ays."),
            sample("b_total", 2, "counter", x="2"),
        ]
    )
    assert text == (
        "# HELP a Ays.\n"
        "# TYPE a gauge\n"
        "a 5\n"
        "# HELP b_total Bees.\n"
        "# TYPE b_total counter\n"
        'b_total{x="1"} 1\n'
        'b_total{x="2"} 2\n'
    )


def test_label_values_escape_backslash_quote_and_line_feed_and_help_escapes_too() -> None:
    text = render([sample("m", 1, help="line one\nback\\slash", path='C:\\dir "x"\nnext')])
    assert "# HELP m line one\\nback\\\\slash\n" in text
    assert 'm{path="C:\\\\dir \\"x\\"\\nnext"} 1\n' in text


def test_values_are_written_in_go_float_notation() -> None:
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(1e-06) == "1e-06"
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(2.0**60) == repr(2.0**60)


def test_labels_are_sorted_by_name_and_the_later_of_two_equal_series_wins() -> None:
    text = render([sample("m", 1, z="1", a="2"), sample("m", 7, a="2", z="1")])
    assert text.splitlines()[-1] == 'm{a="2",z="1"} 7'
    assert text.count("\nm{") == 1


def test_samples_prometheus_would_refuse_are_left_out() -> None:
    bad = [sample("1starts_with_digit", 1), sample("ok", 1, **{"__reserved": "x"})]
    assert [sample_problem(s) is not None for s in bad] == [True, True]
    assert render([*bad, sample("fine", 2)]) == "# TYPE fine gauge\nfine 2\n"
    assert render([]) == ""


def test_a_histogram_is_one_family_with_buckets_in_le_order_then_sum_and_count() -> None:
    base = "req_seconds"
    parts = [
        sample(f"{base}_count", 3, "counter", v="a"),
        sample(f"{base}_bucket", 3, "counter", "Latency.", v="a", le="+Inf"),
        sample(f"{base}_bucket", 1, "counter", v="a", le="10"),
        sample(f"{base}_sum", 1.5, "counter", v="a"),
        sample(f"{base}_bucket", 0, "counter", v="a", le="0.5"),
        sample(f"{base}_bucket", 1, "counter", v="a", le="1"),
    ]
    [family] = families(parts)
    assert family.name == base and family.kind == "histogram" and family.help == "Latency."
    assert render(parts).splitlines() == [
        "# HELP req_seconds Latency.",
        "# TYPE req_seconds histogram",
        'req_seconds_bucket{le="0.5",v="a"} 0',
        'req_seconds_bucket{le="1",v="a"} 1',
        'req_seconds_bucket{le="10",v="a"} 1',
        'req_seconds_bucket{le="+Inf",v="a"} 3',
        'req_seconds_sum{v="a"} 1.5',
        'req_seconds_count{v="a"} 3',
    ]


def test_a_count_without_buckets_is_an_ordinary_family() -> None:
    [family] = families([sample("jobs_count", 4)])
    assert family.name == "jobs_count" and family.kind == "gauge"


def test_traffic_samples_make_a_valid_cumulative_histogram_per_version() -> None:
    latencies_us = [800, 1_200, 4_000, 40_000, 900_000, 90_000_000]
    counts: dict[int, int] = {}
    for micros in latencies_us:
        counts[latency_bucket(micros)] = counts.get(latency_bucket(micros), 0) + 1
    group = GroupMetrics(
        group="r1",
        requests=6,
        responses={"1xx": 0, "2xx": 5, "3xx": 0, "4xx": 0, "5xx": 1},
        connect_errors=1,
        latency=LatencyHistogram.from_counts(counts, sum(latencies_us)),
    )
    out = traffic_samples("web", {"v1": [group, group]})  # two revisions of one version add up
    by_name: dict[str, list[MetricSample]] = {}
    for s in out:
        by_name.setdefault(s.name, []).append(s)
    totals = {s.labels["code_class"]: s.value for s in by_name["zerodown_requests_total"]}
    assert totals == {"1xx": 0, "2xx": 10, "3xx": 0, "4xx": 0, "5xx": 2}
    assert by_name["zerodown_requests_unavailable_total"][0].value == 2
    buckets = by_name["zerodown_request_duration_seconds_bucket"]
    assert len(buckets) == len(LATENCY_BOUNDS) + 1
    values = [b.value for b in buckets]
    assert values == sorted(values), "cumulative buckets never go down"
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 12
    assert by_name["zerodown_request_duration_seconds_count"][0].value == 12
    assert math.isclose(by_name["zerodown_request_duration_seconds_sum"][0].value, 2 * 90.946)
    at = {b.labels["le"]: b.value for b in buckets}
    assert at["0.001"] == 2 and at["0.005"] == 6 and at["0.05"] == 8 and at["60"] == 10
    assert all(s.labels["service"] == "web" and s.labels["version"] == "v1" for s in out)


def test_neighbouring_latency_bounds_are_less_than_two_times_apart() -> None:
    """So a p95 interpolated inside one bucket can never, on its own, cross the rule's 2x."""
    assert all(b / a <= 5 / 3 + 1e-9 for a, b in itertools.pairwise(LATENCY_BOUNDS))
