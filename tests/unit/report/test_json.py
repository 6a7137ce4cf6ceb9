"""The JSON twin: the report's figures, structured by the template's sections."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pytest

from tests.unit.report.fixtures import FIXTURES, T0
from zerodown.core.errors import InputError
from zerodown.report import ReportInput, report_json
from zerodown.report.figures import FIELD_PATHS, HEALTH_WEIGHTS, SCHEMA

ALL = pytest.mark.parametrize("build", FIXTURES.values(), ids=FIXTURES.keys())


@ALL
def test_is_strict_json_with_a_figure_for_every_field(build: Callable[[], ReportInput]) -> None:
    document = report_json(build())
    json.dumps(document, allow_nan=False)
    assert document["schema"] == SCHEMA
    for path in FIELD_PATHS:
        node = document
        for key in path:
            node = node[key]
        assert node is not None, path


def test_sections_follow_the_template_headings() -> None:
    sections = report_json(FIXTURES["canary_succeeded"]())["sections"]
    assert list(sections) == [
        "deployment_summary",
        "infrastructure",
        "execution",
        "monitoring",
        "performance",
        "events",
        "recommendations",
        "next_actions",
    ]


def test_health_score_is_the_weighted_mean_of_its_stated_components() -> None:
    health = report_json(FIXTURES["canary_rolled_back"]())["sections"]["infrastructure"][
        "health_score"
    ]
    components = {c["name"]: c for c in health["components"]}
    assert set(components) == set(HEALTH_WEIGHTS)
    # error rate 5/1051 against a 5 % limit: 100 × (1 − 0.004757 / 0.10) = 95.2
    assert components["error_rate"]["score"] == 95.2
    # p95 24 ms against 21 ms: ratio 1.14, 100 × (1 − 0.14 / 2) = 93
    assert components["latency"]["ratio"] == 1.14
    assert components["latency"]["score"] == 93.0
    expected = sum(c["weight"] * c["score"] for c in components.values()) / 100
    assert health["score"] == round(expected, 1)


def test_components_without_figures_are_left_out_and_say_why() -> None:
    health = report_json(FIXTURES["initial_up"]())["sections"]["infrastructure"]["health_score"]
    assert [c["name"] for c in health["components"]] == ["instances"]
    assert {m["name"]: m["reason"] for m in health["missing"]} == {
        "availability": "no_traffic",
        "error_rate": "no_traffic",
        "latency": "no_previous",
    }
    assert health["score"] == 100.0


def test_resource_usage_averages_and_peaks_the_host_samples() -> None:
    usage = report_json(FIXTURES["canary_succeeded"]())["sections"]["infrastructure"][
        "resource_usage"
    ]
    # cpu_percent = 22 + 3.5 × (index % 4) over six samples: 22, 25.5, 29, 32.5, 22, 25.5
    assert usage["cpu"]["average_percent"] == 26.1
    assert usage["cpu"]["peak_percent"] == 32.5
    assert usage["cpu"]["cpu_count"] == 8
    assert usage["memory"]["total"] == {"value": 16.0, "unit": "GiB", "bytes": 16 * 1024**3}
    # The first sample has no bandwidth yet: five rates remain.
    assert usage["network"]["samples"] == 5
    assert usage["network"]["sent_peak"]["unit"] == "KiB/s"


def test_report_input_takes_a_naive_time_as_utc_and_needs_a_revision() -> None:
    data = FIXTURES["initial_up"]()
    naive = ReportInput(**{**data.__dict__, "generated_at": datetime(2024, 5, 1, 12, 0, 2)})
    assert naive.generated_at == data.generated_at
    with pytest.raises(InputError, match="revision"):
        ReportInput(**{**data.__dict__, "release": {"version": "v1"}})
    with pytest.raises(InputError, match="service"):
        ReportInput(**{**data.__dict__, "service": ""})
    assert data.generated_at > T0
