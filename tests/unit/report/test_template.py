"""The report's templates: a verbatim copy of the seed's, and an English twin of the same shape."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from tests.conftest import require_component
from tests.unit.report.checks import SEED_PATH, seed_template
from zerodown.core.errors import InputError
from zerodown.report.figures import FIELD_PATHS
from zerodown.report.template import parse_template, template_text


def _shape(line: str) -> tuple[int, str, bool]:
    """Indentation, list marker and whether the line has a placeholder: a line minus its words."""
    stripped = line.lstrip(" ")
    marker = re.match(r"(#+ |- \[ \] |- |\d+\. |)", stripped)
    assert marker is not None
    return len(line) - len(stripped), marker.group(1), "{" in line


def test_shipped_template_is_the_seed_block_verbatim() -> None:
    seed = seed_template()
    if seed is None:
        require_component("the seed requirements", f"no seed file at {SEED_PATH}")
    shipped = files("zerodown.report").joinpath("template.md").read_text(encoding="utf-8")
    assert shipped == seed


def test_english_template_has_the_same_lines_in_the_same_shape() -> None:
    chinese = template_text("zh-TW").split("\n")
    english = template_text("en").split("\n")
    assert [_shape(line) for line in english] == [_shape(line) for line in chinese]
    # The title line is identical; only the labels are translated.
    assert english[0] == chinese[0]


@pytest.mark.parametrize("lang", ["zh-TW", "en"])
def test_every_placeholder_has_figures(lang: str) -> None:
    placeholders = [line for line in parse_template(template_text(lang)) if line.label]
    assert len(placeholders) == len(FIELD_PATHS)
    assert placeholders[0].label == "## Deployment Operations Report - "


def test_nested_lines_indent_under_their_field() -> None:
    lines = {line.text.split(":")[0]: line for line in parse_template(template_text("zh-TW"))}
    assert lines["- 部署類型"].detail_indent == 2
    assert lines["  - CPU"].detail_indent == 4
    assert lines["1. **Pre-deployment Checks**"].detail_indent == 3


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(InputError, match="no report template for language 'fr'"):
        template_text("fr")
