"""The JSON twin of a report: the same figures as the Markdown, structured by its sections.

``report_json`` is what both files are rendered from. Its ``sections`` follow the template's
headings (``deployment_summary``, ``infrastructure``, ``execution``, ``monitoring``,
``performance``, ``events``, ``recommendations``, ``next_actions``); numbers are rounded exactly
as the Markdown prints them, and a figure that could not be measured says why (``"measured":
false`` and a ``reason`` code). ``FIELD_PATHS`` maps each template placeholder to its entry.
"""

from __future__ import annotations

from typing import Any

from zerodown.report.figures import SCHEMA, build_sections, release_header, report_timestamp
from zerodown.report.model import ReportInput

__all__ = ["report_json"]


def report_json(data: ReportInput) -> dict[str, Any]:
    """Every figure of the report for ``data``, JSON-ready (no NaN, no infinity)."""
    return {
        "schema": SCHEMA,
        "timestamp": report_timestamp(data),
        "service": data.service,
        "operation": data.operation,
        "replicas": data.replicas,
        **release_header(data),
        "sections": build_sections(data),
    }
