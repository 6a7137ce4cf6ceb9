"""Structural checks of a written Deployment Operations Report, for any test that writes one.

``assert_valid_report(md_path)`` checks a report and its twins as a reader would:

* every heading and label of the seed's template is there, in order (the template is read from
  the seed file itself when it exists, else from the copy shipped in ``zerodown/report``; an
  English report is held to ``template.en.md``), and the ``Next Actions`` checklist keeps the
  template's items verbatim;
* no ``{placeholder}`` is left;
* every number in a field of the Markdown is a number of that field in the JSON twin (or of the
  release it describes), and the headline figures (health score, CPU, memory, storage,
  availability, error rate, throughput) are exactly the JSON's;
* the SVG chart is linked from the Markdown, parses as XML and loads nothing from outside.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from zerodown.report.figures import FIELD_PATHS, SCHEMA

__all__ = [
    "SEED_PATH",
    "assert_valid_report",
    "check_report",
    "field_blocks",
    "number_tokens",
    "seed_template",
    "template_for",
]

SEED_PATH = (
    Path(__file__).parents[3] / ".." / "shared" / "seed" / "deployment-operations-engineer.md"
)

_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])\d+(?:\.\d+)?(?![A-Za-z0-9_])")
_PLACEHOLDER = re.compile(r"(?<!\\)\{[^{}\n]*(?<!\\)\}")
_SVG = "{http://www.w3.org/2000/svg}svg"


def seed_template(seed: Path = SEED_PATH) -> str | None:
    """The Markdown block of the seed's 輸出規範 section, or None without the seed file."""
    if not seed.exists():
        return None
    text = seed.read_text(encoding="utf-8")
    section = text[text.index("## 輸出規範") :]
    match = re.search(r"```markdown\n(.*?)\n```", section, re.DOTALL)
    assert match is not None, f"no ```markdown block in the 輸出規範 section of {seed}"
    return match.group(1) + "\n"


def template_for(lang: str) -> str:
    """The template a report in ``lang`` must follow (the seed's own for Chinese)."""
    if lang == "en":
        return files("zerodown.report").joinpath("template.en.md").read_text(encoding="utf-8")
    seed = seed_template()
    if seed is not None:
        return seed
    return files("zerodown.report").joinpath("template.md").read_text(encoding="utf-8")


def number_tokens(text: str) -> list[float]:
    """Numbers standing on their own in ``text`` (not inside ``p95``, ``5xx`` or ``load_1m``)."""
    return [float(token) for token in _NUMBER.findall(text)]


def _numbers_in(node: Any) -> Iterator[float]:
    if isinstance(node, bool) or node is None:
        return
    if isinstance(node, int | float):
        yield float(node)
    elif isinstance(node, str):
        yield from number_tokens(node)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _numbers_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _numbers_in(value)


def _get(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = document
    for key in path:
        node = node[key]
    return node


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _labels(template: str) -> list[tuple[str, bool]]:
    """(text to find, is a field) for every non-blank template line, in order."""
    out = []
    for line in template.rstrip("\n").split("\n"):
        if not line.strip():
            continue
        brace = line.find("{")
        out.append((line[:brace], True) if brace >= 0 else (line, False))
    return out


def field_blocks(markdown: str, template: str) -> list[tuple[str, str]]:
    """For each template placeholder, in order: (label, the value and its nested lines).

    Fails when a heading or label is missing or out of order.
    """
    lines = markdown.split("\n")
    position = 0
    blocks: list[tuple[str, str]] = []
    for text, is_field in _labels(template):
        found = None
        for index in range(position, len(lines)):
            line = lines[index]
            if (is_field and line.startswith(text) and line[len(text) :].strip()) or (
                not is_field and line == text
            ):
                found = index
                break
        assert found is not None, f"template line {text!r} missing or out of order"
        position = found + 1
        if is_field:
            indent = _indent(lines[found])
            block = [lines[found][len(text) :]]
            for follower in lines[found + 1 :]:
                if not follower.strip() or _indent(follower) <= indent:
                    break
                block.append(follower)
            blocks.append((text, "\n".join(block)))
    return blocks


def _extra_next_actions(markdown: str, template: str) -> list[str]:
    checklist = [line for line in template.split("\n") if line.startswith("- [ ]")]
    lines = markdown.rstrip("\n").split("\n")
    last = max(i for i, line in enumerate(lines) if line == checklist[-1])
    return [line for line in lines[last + 1 :] if line.startswith("- [ ]")]


def _leading_number(text: str) -> float | None:
    match = re.match(r"\s*(\d+(?:\.\d+)?)", text)
    return float(match.group(1)) if match else None


def _assert_numbers(label: str, text: str, allowed: set[float]) -> None:
    stray = [n for n in number_tokens(text) if n not in allowed]
    assert not stray, f"{label.strip()} shows numbers not in the JSON twin: {stray} in {text!r}"


def _headline(document: dict[str, Any], blocks: dict[tuple[str, ...], str]) -> None:
    """The numbers a reader looks at first equal the JSON's exactly."""
    sections = document["sections"]
    checks: list[tuple[tuple[str, ...], Any]] = []
    health = sections["infrastructure"]["health_score"]
    if health["measured"]:
        checks.append((("infrastructure", "health_score"), health["score"]))
    for name in ("cpu", "memory", "storage"):
        usage = sections["infrastructure"]["resource_usage"][name]
        if usage["measured"]:
            checks.append((("infrastructure", "resource_usage", name), usage["average_percent"]))
    for name, key in (
        ("availability", "percent"),
        ("error_rate", "percent"),
        ("throughput", "rps"),
    ):
        metric = sections["monitoring"][name]
        if metric["measured"]:
            checks.append((("monitoring", name), metric[key]))
    for path, expected in checks:
        shown = _leading_number(blocks[("sections", *path)])
        assert shown == float(expected), f"{path}: Markdown shows {shown}, JSON has {expected}"


def assert_valid_report(md_path: Path) -> None:
    """Fail with a precise message unless ``md_path`` and its JSON and SVG twins are valid."""
    json_path = md_path.with_suffix(".json")
    svg_path = md_path.with_suffix(".svg")
    assert json_path.exists(), f"no JSON twin next to {md_path}"
    assert svg_path.exists(), f"no SVG chart next to {md_path}"
    check_report(
        md_path.read_text(encoding="utf-8"),
        json.loads(json_path.read_text(encoding="utf-8")),
        svg=svg_path.read_text(encoding="utf-8"),
        svg_name=svg_path.name,
    )


def check_report(
    markdown: str,
    document: dict[str, Any],
    *,
    svg: str | None = None,
    svg_name: str | None = None,
) -> None:
    """The checks of ``assert_valid_report`` on texts in memory (the SVG ones when given)."""
    assert document.get("schema") == SCHEMA, f"unexpected schema {document.get('schema')!r}"
    lang = document.get("lang") or ("en" if "### Deployment Summary" in markdown else "zh-TW")
    template = template_for(lang)
    assert markdown.startswith(f"## Deployment Operations Report - {document['timestamp']}\n"), (
        "the report must open with the template's title line and the report's timestamp"
    )

    leftover = _PLACEHOLDER.findall(markdown)
    assert not leftover, f"placeholders left in the report: {leftover}"

    blocks = field_blocks(markdown, template)
    assert len(blocks) == len(FIELD_PATHS), (
        f"{len(blocks)} fields in the template, {len(FIELD_PATHS)} in the report's figures"
    )
    context = {
        *_numbers_in(document.get("release")),
        *_numbers_in(document.get("previous")),
        *_numbers_in(document.get("service")),
        *_numbers_in(document.get("timestamp")),
    }
    by_path: dict[tuple[str, ...], str] = {}
    for (label, text), path in zip(blocks, FIELD_PATHS, strict=True):
        by_path[path] = text
        _assert_numbers(label, text, set(_numbers_in(_get(document, path))) | context)
    allowed = (
        set(_numbers_in(document["sections"]["next_actions"]))
        | set(_numbers_in(document["sections"]["recommendations"]))
        | context
    )
    for line in _extra_next_actions(markdown, template):
        _assert_numbers("Next Actions", line, allowed)
    _headline(document, by_path)

    if svg is None:
        return
    assert svg_name is not None and f"]({svg_name})" in markdown, (
        "the Markdown does not link its chart"
    )
    root = ET.fromstring(svg)
    assert root.tag == _SVG, f"the chart's root element is {root.tag}, not an SVG"
    for element in root.iter():
        for name, value in element.attrib.items():
            assert not (name.endswith("href") and not value.startswith("#")), (
                f"the chart links outside itself: {name}={value!r}"
            )
        assert not element.tag.endswith(("script", "foreignObject", "image")), (
            f"the chart must be self-contained, found <{element.tag}>"
        )
