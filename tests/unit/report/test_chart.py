"""The SVG chart: self-contained, parseable, one line per version, and honest without samples."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from tests.unit.report.fixtures import FIXTURES
from zerodown.report import ReportInput, render_svg

SVG = "{http://www.w3.org/2000/svg}"
ALL = pytest.mark.parametrize("build", FIXTURES.values(), ids=FIXTURES.keys())


def tooltips(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text or "" for c in root.iter(f"{SVG}circle") for t in c.iter(f"{SVG}title")]


@ALL
def test_parses_as_a_self_contained_svg(build: Callable[[], ReportInput]) -> None:
    svg = render_svg(build())
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title") is not None
    assert "href" not in svg and "<script" not in svg and "@import" not in svg


def test_without_samples_the_chart_says_so() -> None:
    svg = render_svg(FIXTURES["initial_up"]())
    assert "No samples: this operation recorded no traffic samples" in svg
    assert "<path" not in svg


def test_one_line_per_version_in_each_of_the_three_panels() -> None:
    svg = render_svg(FIXTURES["canary_rolled_back"]())
    root = ET.fromstring(svg)
    assert len(root.findall(f"{SVG}path")) == 3 * 2
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "traffic weight (%)" in texts
    assert "error rate per interval (%)" in texts
    assert "p95 latency since start (ms)" in texts
    assert "revision 4 (v1.6.0) new" in texts
    assert "revision 3 (v1.5.0) previous" in texts
    assert "rollback" in texts
    assert "limit 5 %" in texts


def test_error_rate_is_per_interval_from_the_cumulative_counts() -> None:
    points = tooltips(render_svg(FIXTURES["canary_rolled_back"]()))
    # 5 errors in the first 40 requests, then 0 in the next 1.
    assert "revision 4 (v1.6.0) new: 12.5 % at 8 s" in points
    assert "revision 4 (v1.6.0) new: 0 % at 10 s" in points


def test_rolling_weights_are_shares_of_the_ready_instances() -> None:
    points = tooltips(render_svg(FIXTURES["rolling_with_restart"]()))
    weights = [
        float(m.group(1))
        for p in points
        if (m := re.search(r"new: ([\d.]+) % at", p)) and "revision 5" in p
    ]
    assert weights and all(0 <= w <= 100 for w in weights)


def test_text_is_escaped() -> None:
    data = FIXTURES["canary_succeeded"]()
    odd = ReportInput(**{**data.__dict__, "service": "a<b&c"})
    svg = render_svg(odd)
    ET.fromstring(svg)
    assert "a&lt;b&amp;c" in svg
