"""The report's layout: the seed's template (``template.md``) and its English twin.

``template.md`` is the block of the seed's 輸出規範 section, verbatim; ``template.en.md`` has the
same lines with English labels. The renderer walks a template line by line: a line with a
``{placeholder}`` becomes its label followed by the measured value, every other line (headings,
the ``Next Actions`` checklist) is copied as it stands. So the report's headings, labels and
their order are the template's by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Final

from zerodown.core.errors import InputError

__all__ = ["LANGUAGES", "TemplateLine", "parse_template", "template_text"]

LANGUAGES: Final = {"zh-TW": "template.md", "en": "template.en.md"}


def template_text(lang: str) -> str:
    """The template for ``lang`` (``zh-TW`` or ``en``)."""
    name = LANGUAGES.get(lang)
    if name is None:
        known = ", ".join(sorted(LANGUAGES))
        raise InputError(f"no report template for language {lang!r} (known: {known})")
    return files("zerodown.report").joinpath(name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class TemplateLine:
    """One template line: ``label`` is everything before its ``{placeholder}``, if it has one."""

    text: str
    label: str | None

    @property
    def indent(self) -> int:
        return len(self.text) - len(self.text.lstrip(" "))

    @property
    def detail_indent(self) -> int:
        """Indentation of the lines nested under this one (3 under ``1.``, else 2)."""
        stripped = self.text.lstrip(" ")
        marker = stripped.split(" ", 1)[0]
        return self.indent + (len(marker) + 1 if marker[:-1].isdigit() else 2)

    @property
    def is_checklist(self) -> bool:
        return self.text.lstrip(" ").startswith("- [ ]")


def parse_template(text: str) -> list[TemplateLine]:
    lines = []
    for raw in text.rstrip("\n").split("\n"):
        brace = raw.find("{")
        lines.append(TemplateLine(raw, raw[:brace] if brace >= 0 else None))
    return lines
