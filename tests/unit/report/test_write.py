"""Writing a report: three files named after the time and service, valid, never overwritten."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.report.checks import assert_valid_report
from tests.unit.report.fixtures import FIXTURES
from zerodown.report import ReportInput, write_report

ALL = pytest.mark.parametrize("build", FIXTURES.values(), ids=FIXTURES.keys())


@ALL
@pytest.mark.parametrize("lang", ["zh-TW", "en"])
def test_every_written_report_passes_the_structural_checks(
    build: Callable[[], ReportInput], lang: str, tmp_path: Path
) -> None:
    paths = write_report(build(), directory=tmp_path, lang=lang)
    assert_valid_report(paths.markdown)


def test_files_are_named_after_the_utc_time_and_the_service(tmp_path: Path) -> None:
    data = FIXTURES["canary_succeeded"]()
    paths = write_report(data, directory=tmp_path / "reports" / "deployment")
    assert paths.markdown.name == "deployment-20240501T120034Z-checkout.md"
    assert paths.json.name == "deployment-20240501T120034Z-checkout.json"
    assert paths.svg.name == "deployment-20240501T120034Z-checkout.svg"
    assert "](deployment-20240501T120034Z-checkout.svg)" in paths.markdown.read_text()
    document = json.loads(paths.json.read_text())
    assert document["lang"] == "zh-TW"
    assert document["files"]["svg"] == paths.svg.name


def test_a_second_report_of_the_same_second_gets_a_suffix(tmp_path: Path) -> None:
    data = FIXTURES["canary_succeeded"]()
    first = write_report(data, directory=tmp_path)
    before = first.markdown.read_bytes()
    second = write_report(data, directory=tmp_path, lang="en")
    third = write_report(data, directory=tmp_path)
    assert second.markdown.name == "deployment-20240501T120034Z-checkout-2.md"
    assert third.markdown.name == "deployment-20240501T120034Z-checkout-3.md"
    assert first.markdown.read_bytes() == before
    assert "](deployment-20240501T120034Z-checkout-2.svg)" in second.markdown.read_text()
    assert_valid_report(second.markdown)


def test_a_stray_twin_of_the_name_is_not_overwritten_either(tmp_path: Path) -> None:
    data = FIXTURES["initial_up"]()
    stray = tmp_path / "deployment-20240501T120002Z-web.svg"
    stray.write_text("not mine")
    paths = write_report(data, directory=tmp_path)
    assert paths.markdown.name == "deployment-20240501T120002Z-web-2.md"
    assert stray.read_text() == "not mine"


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    write_report(FIXTURES["rolling_with_restart"](), directory=tmp_path)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".md", ".svg"]


def test_unsafe_characters_in_a_service_name_do_not_reach_the_file_name(tmp_path: Path) -> None:
    data = FIXTURES["initial_up"]()
    odd = ReportInput(**{**data.__dict__, "service": "../web svc"})
    paths = write_report(odd, directory=tmp_path)
    assert paths.markdown.parent == tmp_path
    assert paths.markdown.name == "deployment-20240501T120002Z-web-svc.md"
