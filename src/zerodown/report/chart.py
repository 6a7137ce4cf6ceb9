"""The report's chart: traffic weight, error rate and p95 latency per version over the rollout.

A self-contained SVG (no external fonts, styles or scripts) drawn from the ``rollout.sample``
events: three panels sharing the time axis (seconds since the release started), one line per
version, dashed markers where traffic switched, a rollback began and the release ended, and the
error-rate limit as a dashed line. Weights are shown as each version's share of the total
weight (a rolling update weighs versions by ready instances). The error rate is per sampling
interval (the difference of the cumulative counts), so a spike shows where it happened; p95 is
the cumulative figure the engine samples. Without samples the chart says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from zerodown.report.figures import Facts
from zerodown.report.model import ReportInput

__all__ = ["render_svg"]

WIDTH: Final = 800
LEFT: Final = 70
RIGHT: Final = 20
PANEL_HEIGHT: Final = 140
PANEL_GAP: Final = 46
TOP: Final = 104
COLOURS: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
MARKERS: Final = {
    "traffic.switch": ("switch", "#555555"),
    "bluegreen.switched": ("switch", "#555555"),
    "rollback.started": ("rollback", "#d62728"),
    "release.succeeded": ("succeeded", "#2ca02c"),
    "release.rolled_back": ("rolled back", "#d62728"),
    "release.failed": ("failed", "#d62728"),
}

Point = tuple[float, float | None]


@dataclass(frozen=True)
class _Series:
    key: str
    label: str
    colour: str
    weight: list[Point]
    error_rate: list[Point]
    p95_ms: list[Point]


def render_svg(data: ReportInput) -> str:
    """The chart for ``data`` as SVG text."""
    f = Facts(data)
    title = _title(f)
    if not f.samples:
        return _empty(title)
    series = _series(f)
    markers = [
        (e.offset, *MARKERS[e.kind])
        for e in f.events
        if e.kind in MARKERS and e.offset is not None and e.offset >= 0
    ]
    span = max([f.samples[-1].t - f.started, *(offset for offset, _, _ in markers), 1e-9])
    x_max = _axis_end(span)
    height = TOP + 3 * PANEL_HEIGHT + 2 * PANEL_GAP + 56
    parts = [_header(title, height, _description(f))]
    parts.append(_legend(series))
    limit = f.limits.max_error_rate * 100
    panels: list[tuple[str, str, Callable[[_Series], list[Point]], float, float | None]] = [
        ("traffic weight", "%", lambda s: s.weight, 100.0, None),
        (
            "error rate per interval",
            "%",
            lambda s: s.error_rate,
            _top(series, "error_rate", limit),
            limit,
        ),
        ("p95 latency since start", "ms", lambda s: s.p95_ms, _top(series, "p95_ms", 0.0), None),
    ]
    for index, (name, unit, pick, y_max, line) in enumerate(panels):
        top = TOP + index * (PANEL_HEIGHT + PANEL_GAP)
        parts.append(_panel(name, unit, top, x_max, y_max, [(s, pick(s)) for s in series], line))
    bottom = TOP + 3 * PANEL_HEIGHT + 2 * PANEL_GAP
    parts.append(_x_axis(bottom, x_max))
    parts.append(_markers(markers, x_max))
    parts.append("</svg>\n")
    return "\n".join(parts)


def _title(f: Facts) -> str:
    version = f" ({f.version})" if f.version else ""
    return f"{f.data.service}: revision {f.new}{version}, {f.strategy or f.operation}, {f.status}"


def _description(f: Facts) -> str:
    return (
        f"{len(f.samples)} samples over {f.samples[-1].t - f.started:.1f} s: traffic weight, "
        "error rate and p95 latency per version"
    )


def _header(title: str, height: int, description: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12" role="img">\n'
        f"<title>{escape(title)}</title>\n<desc>{escape(description)}</desc>\n"
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>\n'
        f'<text x="{LEFT}" y="26" font-size="16" font-weight="bold" fill="#222222">'
        f"{escape(title)}</text>"
    )


def _empty(title: str) -> str:
    height = 140
    note = "No samples: this operation recorded no traffic samples (rollout.sample events)."
    return "\n".join(
        [
            _header(title, height, note),
            f'<rect x="{LEFT}" y="44" width="{WIDTH - LEFT - RIGHT}" height="70" fill="#f6f6f6" '
            'stroke="#cccccc"/>',
            f'<text x="{WIDTH / 2}" y="84" text-anchor="middle" fill="#555555">'
            f"{escape(note)}</text>",
            "</svg>\n",
        ]
    )


def _number(value: float | None) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _series(f: Facts) -> list[_Series]:
    keys: list[str] = []
    for candidate in (f.stable, f.new):
        if candidate is not None and any(str(candidate) in s.versions for s in f.samples):
            keys.append(str(candidate))
    for sample in f.samples:
        keys.extend(k for k in sample.versions if k not in keys)
    result = []
    for index, key in enumerate(keys):
        weight: list[Point] = []
        errors: list[Point] = []
        p95: list[Point] = []
        previous: tuple[float, float] | None = None
        for sample in f.samples:
            x = sample.t - f.started
            total = sum(_number(v.get("weight")) or 0.0 for v in sample.versions.values())
            figures = sample.versions.get(key, {})
            own = _number(figures.get("weight")) or 0.0
            weight.append((x, 100 * own / total if total > 0 else 0.0))
            requests = _number(figures.get("requests"))
            failed = _number(figures.get("errors"))
            rate = None
            if requests is not None and failed is not None:
                before = previous or (0.0, 0.0)
                served = requests - before[0]
                if served > 0:
                    rate = 100 * max(failed - before[1], 0.0) / served
                previous = (requests, failed)
            errors.append((x, rate))
            p95.append((x, _number(figures.get("p95_ms"))))
        final = _final_weight(f, key)
        if final is not None:
            weight.append(final)
        result.append(
            _Series(
                key=key,
                label=_label(f, key),
                colour=COLOURS[index % len(COLOURS)],
                weight=weight,
                error_rate=errors,
                p95_ms=p95,
            )
        )
    return result


def _final_weight(f: Facts, key: str) -> Point | None:
    """The weights recorded when the release ended, as a last point after the samples."""
    weights = f.state.get("weights")
    if f.finished is None or not isinstance(weights, dict) or f.finished <= f.samples[-1].t:
        return None
    total = sum(_number(v) or 0.0 for v in weights.values())
    own = _number(weights.get(key)) or 0.0
    return (f.finished - f.started, 100 * own / total if total > 0 else 0.0)


def _label(f: Facts, key: str) -> str:
    if key == str(f.new):
        return f"revision {key}" + (f" ({f.version})" if f.version else "") + " new"
    if key == str(f.stable):
        version = f" ({f.stable_version})" if f.stable_version else ""
        return f"revision {key}{version} previous"
    return f"revision {key}"


def _top(series: Sequence[_Series], field: str, floor: float) -> float:
    values = [y for s in series for _, y in getattr(s, field) if y is not None]
    return _nice(max([*values, floor, 1e-9]))


def _nice(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return float(step * power)
    return float(10 * power)


def _axis_end(span: float) -> float:
    """The end of the time axis: the first multiple of a nice quarter step at or after ``span``."""
    step = _nice(span / 4)
    return step * math.ceil(span / step - 1e-9)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _legend(series: Sequence[_Series]) -> str:
    parts = []
    x = LEFT
    for s in series:
        parts.append(
            f'<rect x="{x}" y="44" width="14" height="4" fill="{s.colour}"/>'
            f'<text x="{x + 20}" y="50" fill="#222222">{escape(s.label)}</text>'
        )
        x += 30 + 7 * len(s.label)
    parts.append(
        f'<text x="{LEFT}" y="68" fill="#666666" font-size="11">dashed lines: traffic switch, '
        "rollback start, end of the release; red dashed line in the error panel: the "
        "rollback limit</text>"
    )
    return "\n".join(parts)


def _panel(
    name: str,
    unit: str,
    top: float,
    x_max: float,
    y_max: float,
    lines: Sequence[tuple[_Series, list[Point]]],
    limit: float | None,
) -> str:
    inner = WIDTH - LEFT - RIGHT
    bottom = top + PANEL_HEIGHT

    def sx(x: float) -> float:
        return LEFT + inner * min(max(x / x_max, 0.0), 1.0)

    def sy(y: float) -> float:
        return bottom - PANEL_HEIGHT * min(max(y / y_max, 0.0), 1.0)

    parts = [
        f'<text x="{LEFT}" y="{top - 8}" font-weight="bold" fill="#222222">'
        f"{escape(name)} ({escape(unit)})</text>",
        f'<rect x="{LEFT}" y="{top}" width="{inner}" height="{PANEL_HEIGHT}" fill="none" '
        'stroke="#bbbbbb"/>',
    ]
    for tick in (0.0, y_max / 2, y_max):
        y = sy(tick)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + inner}" y2="{y:.1f}" stroke="#eeeeee"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#444444">'
            f"{_fmt(tick)}</text>"
        )
    if limit is not None and limit <= y_max:
        y = sy(limit)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + inner}" y2="{y:.1f}" stroke="#d62728" '
            'stroke-dasharray="6 4"/>'
            f'<text x="{LEFT + inner - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#d62728" '
            f'font-size="11">limit {_fmt(limit)} %</text>'
        )
    for s, points in lines:
        step = unit == "%" and name.startswith("traffic")
        path = _path(points, sx, sy, step=step)
        if path:
            parts.append(f'<path d="{path}" fill="none" stroke="{s.colour}" stroke-width="2"/>')
        if len(points) <= 60:
            for px, py in points:
                if py is not None:
                    parts.append(
                        f'<circle cx="{sx(px):.1f}" cy="{sy(py):.1f}" r="2.5" fill="{s.colour}">'
                        f"<title>{escape(s.label)}: {_fmt(py)} {escape(unit)} at "
                        f"{_fmt(px)} s</title></circle>"
                    )
    return "\n".join(parts)


def _path(
    points: Sequence[Point],
    sx: Callable[[float], float],
    sy: Callable[[float], float],
    *,
    step: bool,
) -> str:
    commands = []
    pen_down = False
    last_y: float | None = None
    for x, y in points:
        if y is None:
            pen_down = False
            continue
        if not pen_down:
            commands.append(f"M{sx(x):.1f},{sy(y):.1f}")
            pen_down = True
        else:
            if step and last_y is not None:
                commands.append(f"L{sx(x):.1f},{sy(last_y):.1f}")
            commands.append(f"L{sx(x):.1f},{sy(y):.1f}")
        last_y = y
    return " ".join(commands)


def _x_axis(bottom: float, x_max: float) -> str:
    inner = WIDTH - LEFT - RIGHT
    parts = []
    for i in range(5):
        value = x_max * i / 4
        x = LEFT + inner * i / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#444444"/>'
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" fill="#444444">'
            f"{_fmt(value)} s</text>"
        )
    parts.append(
        f'<text x="{LEFT + inner / 2}" y="{bottom + 38}" text-anchor="middle" fill="#222222">'
        "seconds since the release started</text>"
    )
    return "\n".join(parts)


def _markers(markers: Sequence[tuple[float, str, str]], x_max: float) -> str:
    inner = WIDTH - LEFT - RIGHT
    top = TOP
    bottom = TOP + 3 * PANEL_HEIGHT + 2 * PANEL_GAP
    parts = []
    for offset, label, colour in markers:
        x = LEFT + inner * min(max(offset / x_max, 0.0), 1.0)
        # A label that would run past the right edge goes on the line's left instead.
        fits = x + 3 + 6.5 * len(label) <= WIDTH
        anchor, text_x = ("start", x + 3) if fits else ("end", x - 3)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{colour}" '
            'stroke-dasharray="3 3"/>'
            f'<text x="{text_x:.1f}" y="{top + 12}" text-anchor="{anchor}" '
            f'fill={quoteattr(colour)} font-size="11">{escape(label)}</text>'
        )
    return "\n".join(parts)
