"""Writing a report: the Markdown, its JSON twin and the chart, side by side, never overwritten.

The three files share one name, ``deployment-<UTC timestamp>-<service>``, with ``-2``, ``-3``...
appended when a report of that name exists. Each file is written to a temporary name, flushed,
then hard-linked to its final name, which fails instead of replacing an existing file (the
directory may be shared by several controllers); the Markdown is linked last, so whoever sees
it finds its JSON and chart already there.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from zerodown.core.errors import InputError
from zerodown.report.chart import render_svg
from zerodown.report.json_twin import report_json
from zerodown.report.model import ReportInput
from zerodown.report.render import render_from_json

__all__ = ["ReportPaths", "report_stem", "write_report"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_ATTEMPTS = 1000


@dataclass(frozen=True)
class ReportPaths:
    """Where one report was written."""

    markdown: Path
    json: Path
    svg: Path


def report_stem(data: ReportInput) -> str:
    """``deployment-20240501T120455Z-checkout``: the name the three files share."""
    service = _UNSAFE.sub("-", data.service).strip("-.") or "service"
    return f"deployment-{data.generated_at:%Y%m%dT%H%M%SZ}-{service}"


def write_report(data: ReportInput, *, directory: Path, lang: str = "zh-TW") -> ReportPaths:
    """Write the report of ``data`` into ``directory`` (created if missing)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create report directory {directory}: {exc.strerror}") from exc
    figures = report_json(data)
    svg = render_svg(data)
    stem = report_stem(data)
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        name = stem if attempt == 1 else f"{stem}-{attempt}"
        paths = ReportPaths(
            markdown=directory / f"{name}.md",
            json=directory / f"{name}.json",
            svg=directory / f"{name}.svg",
        )
        if any(p.exists() for p in (paths.markdown, paths.json, paths.svg)):
            continue
        markdown = render_from_json(figures, lang=lang, chart_name=paths.svg.name)
        document = {**figures, "lang": lang, "files": _names(paths)}
        contents = [
            (paths.svg, svg),
            (paths.json, json.dumps(document, ensure_ascii=False, indent=2) + "\n"),
            (paths.markdown, markdown),
        ]
        if _claim_all(contents):
            return paths
    raise InputError(f"no free report name for {stem} in {directory}")


def _names(paths: ReportPaths) -> dict[str, str]:
    return {"markdown": paths.markdown.name, "json": paths.json.name, "svg": paths.svg.name}


def _claim_all(contents: list[tuple[Path, str]]) -> bool:
    """Create every file or none: False when one of the names was taken meanwhile."""
    created: list[Path] = []
    for path, text in contents:
        if not _create(path, text):
            for done in created:
                with contextlib.suppress(OSError):
                    done.unlink()
            return False
        created.append(path)
    return True


def _create(path: Path, text: str) -> bool:
    """Write ``text`` to a new file ``path`` atomically; False if ``path`` already exists."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # A file system without hard links: an exclusive create keeps the no-overwrite rule,
            # then the rename fills it in one step.
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                return False
            os.replace(tmp, path)
        return True
    except OSError as exc:
        raise InputError(f"cannot write report file {path}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
