"""Prometheus' text exposition format 0.0.4: what ``GET /metrics`` answers.

Samples (``zerodown.core.samples.MetricSample``) are grouped into metric families, each written
once with its ``# HELP`` and ``# TYPE`` lines and all its samples together, as the format
requires. A histogram needs no type of its own: samples named ``<base>_bucket`` (each with an
``le`` label), ``<base>_sum`` and ``<base>_count`` make up the histogram family ``<base>``, its
buckets in increasing ``le`` order per label set, followed by the sum and the count.

Escaping follows the format: in HELP text a backslash and a line feed; in label values also a
double quote. Values are Go's float notation (``NaN``, ``+Inf``, ``-Inf``; integers without a
decimal point). Samples with a name or label name Prometheus would refuse are left out
(``sample_problem`` says why; the monitor logs it once), so one bad collector cannot make the
whole page unreadable; of two samples with the same name and labels the later one wins.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from zerodown.core.samples import MetricSample

__all__ = [
    "CONTENT_TYPE",
    "FamilyKind",
    "MetricFamily",
    "escape_help",
    "escape_label_value",
    "families",
    "format_bound",
    "format_value",
    "render",
    "sample_problem",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

FamilyKind = Literal["counter", "gauge", "histogram"]

_METRIC_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_HISTOGRAM_SUFFIXES: Final = ("_bucket", "_sum", "_count")

Labels = tuple[tuple[str, str], ...]


@dataclass
class MetricFamily:
    """One family as written: name, type, help and its samples (full name, labels, value)."""

    name: str
    kind: FamilyKind
    help: str = ""
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """``value`` as the format writes it: ``3``, ``0.25``, ``1e-06``, ``NaN``, ``+Inf``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def format_bound(bound: float) -> str:
    """A histogram bucket's ``le`` label: ``0.005``, ``1``, ``+Inf``."""
    return format_value(bound)


def sample_problem(sample: MetricSample) -> str | None:
    """Why Prometheus would refuse ``sample`` (a bad metric or label name), or None."""
    if not _METRIC_NAME.fullmatch(sample.name):
        return f"{sample.name!r} is not a valid metric name"
    for name in sample.labels:
        if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
            return f"{sample.name}: {name!r} is not a valid label name"
    return None


def _labels(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _histogram_bases(samples: list[MetricSample]) -> set[str]:
    """Names ``<base>`` that have ``<base>_bucket`` samples, every one with an ``le`` label."""
    with_le: dict[str, bool] = {}
    for sample in samples:
        if sample.name.endswith("_bucket"):
            base = sample.name[: -len("_bucket")]
            with_le[base] = with_le.get(base, True) and "le" in sample.labels
    return {base for base, ok in with_le.items() if ok and base}


def _le_order(labels: Labels) -> float:
    raw = dict(labels).get("le", "+Inf")
    try:
        return float(raw)
    except ValueError:
        return math.inf


def families(samples: Iterable[MetricSample]) -> list[MetricFamily]:
    """The valid ``samples`` grouped into families, sorted by family name."""
    valid = [s for s in samples if sample_problem(s) is None]
    bases = _histogram_bases(valid)
    found: dict[str, MetricFamily] = {}
    latest: dict[tuple[str, str, Labels], float] = {}
    for sample in valid:
        family_name: str = sample.name
        kind: FamilyKind = sample.kind
        for suffix in _HISTOGRAM_SUFFIXES:
            if sample.name.endswith(suffix) and sample.name[: -len(suffix)] in bases:
                family_name, kind = sample.name[: -len(suffix)], "histogram"
                break
        family = found.get(family_name)
        if family is None:
            family = found[family_name] = MetricFamily(family_name, kind)
        if not family.help and sample.help:
            family.help = sample.help
        latest[(family_name, sample.name, _labels(sample.labels))] = float(sample.value)
    for (family_name, name, labels), value in latest.items():
        found[family_name].samples.append((name, labels, value))
    for family in found.values():
        if family.kind == "histogram":
            family.samples.sort(key=lambda item: _histogram_order(family.name, item))
        else:
            family.samples.sort(key=lambda item: item[1])
    return [found[name] for name in sorted(found)]


def _histogram_order(base: str, item: tuple[str, Labels, float]) -> tuple[Labels, int, float]:
    name, labels, _ = item
    without_le = tuple(pair for pair in labels if pair[0] != "le")
    suffix = name[len(base) :]
    return without_le, _HISTOGRAM_SUFFIXES.index(suffix), _le_order(labels)


def _sample_line(name: str, labels: Labels, value: float) -> str:
    if not labels:
        return f"{name} {format_value(value)}"
    body = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)
    return f"{name}{{{body}}} {format_value(value)}"


def render(samples: Iterable[MetricSample]) -> str:
    """The exposition of ``samples`` (invalid ones left out), ending with a line feed."""
    out: list[str] = []
    for family in families(samples):
        if family.help:
            out.append(f"# HELP {family.name} {escape_help(family.help)}")
        out.append(f"# TYPE {family.name} {family.kind}")
        out.extend(_sample_line(name, labels, value) for name, labels, value in family.samples)
    return "\n".join(out) + "\n" if out else ""
