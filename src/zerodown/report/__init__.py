"""The Deployment Operations Report, rendered from the store's records and measured metrics.

After every deployment or operation the service layer fills a ``ReportInput`` and calls
``write_report``: a Markdown report following the seed's template (``template.md``), a JSON
twin with the same figures (``report_json``) and an SVG chart (``render_svg``). This package
reads plain data only; it imports nothing from the store, the engine or the data plane.
"""

from __future__ import annotations

from zerodown.report.chart import render_svg
from zerodown.report.files import ReportPaths, report_stem, write_report
from zerodown.report.json_twin import report_json
from zerodown.report.model import ReportInput
from zerodown.report.render import render_markdown

__all__ = [
    "ReportInput",
    "ReportPaths",
    "render_markdown",
    "render_svg",
    "report_json",
    "report_stem",
    "write_report",
]
