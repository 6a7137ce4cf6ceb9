"""Error-pattern mining: log lines grouped into templates with Drain (the ``drain3`` package).

Ten thousand ``ERROR payment failed for order 1234: card declined`` lines are one problem, not
ten thousand: Drain groups lines of the same shape into a *template* such as ``ERROR payment
failed for order <NUM>: card declined`` and counts them. For each template and version this
module reports how many lines it matched, when the first and the last were written, and up to
three example lines, so ``zerodown logs web --patterns --level error`` answers "what is going
wrong, since when, and only in the new version?".

Before Drain sees a line, variable parts are masked so they do not split one shape into many:
times (``<TIME>``), UUIDs (``<UUID>``), IPv4 addresses with an optional port (``<IP>``),
hexadecimal ids (``0x1f``, and runs of 8 or more hex digits holding a digit and a letter:
``<HEX>``) and numbers (``<NUM>``). Drain then replaces the words that differ between lines of
one group with ``<*>``. For a JSON line the message field (``msg``, ``message``, ``@m``,
``error``, ``event``) is mined rather than the whole object; the examples keep whole lines.

One Drain model is fed the lines of every version in time order, so a template keeps its
``cluster`` number across versions: a cluster found only under ``v2`` is new in ``v2``. Drain
is configured here in code (no ``drain3.ini``): similarity threshold 0.4, tree depth 4,
at most ``max_clusters`` templates (the least recently matched is dropped past that).

Known limit: Drain compares lines with the same number of words, so one message whose variable
part has a varying number of words (a free-text reason) can yield a template per word count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from zerodown.ops.log_levels import Level
from zerodown.ops.logs import LogEntry

__all__ = ["MASKS", "LogPattern", "PatternReport", "masked", "message_of", "mine_patterns"]

MAX_EXAMPLES = 3
MAX_CLUSTERS = 1000
MAX_MESSAGE_CHARS = 2000
MAX_EXAMPLE_CHARS = 1000

MASKS: tuple[tuple[str, str], ...] = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
    (
        r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?"
        r"|(?<![\w.:])\d\d:\d\d:\d\d(?:[.,]\d+)?(?![\w:])",
        "TIME",
    ),
    (r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w.])", "IP"),
    (r"(?<![\w])0[xX][0-9a-fA-F]+(?![\w])", "HEX"),
    (r"(?<![\w])(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}(?![\w])", "HEX"),
    (r"(?<![\w.<])[-+]?\d+(?:\.\d+)?", "NUM"),
)
"""``(regex, name)`` pairs applied in this order; a match becomes ``<name>``."""

_MESSAGE_KEYS = ("msg", "message", "@m", "@mt", "error", "err", "event")


@dataclass(frozen=True, kw_only=True)
class LogPattern:
    """One template's lines under one version."""

    cluster: int
    template: str
    version: str
    level: Level
    """The most severe level among the lines."""
    count: int
    first_seen: float
    last_seen: float
    examples: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "template": self.template,
            "version": self.version,
            "level": self.level.value,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "examples": list(self.examples),
        }


@dataclass(frozen=True, kw_only=True)
class PatternReport:
    """The most frequent templates of ``lines`` mined lines (``truncated``: more were left)."""

    patterns: list[LogPattern]
    lines: int
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "patterns": [p.to_dict() for p in self.patterns],
            "lines": self.lines,
            "truncated": self.truncated,
        }


@dataclass
class _Tally:
    count: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    level: Level = Level.DEBUG
    examples: list[str] = field(default_factory=list)


def message_of(line: str) -> str:
    """What to mine in a line: a JSON object's message field, else the line itself."""
    text = line.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return text
        if isinstance(data, dict):
            for key in _MESSAGE_KEYS:
                value = data.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
    return text


def mine_patterns(
    entries: Iterable[LogEntry],
    *,
    examples: int = MAX_EXAMPLES,
    max_clusters: int = MAX_CLUSTERS,
) -> list[LogPattern]:
    """Templates of ``entries`` per version, most frequent first (see the module docstring).

    Entries are mined in the order given (oldest first, as the log book reads them). Blank
    lines are skipped.
    """
    miner = _miner(max_clusters)
    templates: dict[int, str] = {}
    tallies: dict[tuple[int, str], _Tally] = {}
    for entry in entries:
        message = message_of(entry.line)[:MAX_MESSAGE_CHARS]
        if not message:
            continue
        result = miner.add_log_message(message)
        cluster = int(result["cluster_id"])
        templates[cluster] = str(result["template_mined"])  # the newest form is the final one
        tally = tallies.get((cluster, entry.version))
        if tally is None:
            tally = tallies[(cluster, entry.version)] = _Tally(first_seen=entry.ts)
        tally.count += 1
        tally.first_seen = min(tally.first_seen, entry.ts)
        tally.last_seen = max(tally.last_seen, entry.ts)
        if entry.level.rank > tally.level.rank:
            tally.level = entry.level
        if len(tally.examples) < examples:
            tally.examples.append(entry.line[:MAX_EXAMPLE_CHARS])
    patterns = [
        LogPattern(
            cluster=cluster,
            template=templates[cluster],
            version=version,
            level=tally.level,
            count=tally.count,
            first_seen=tally.first_seen,
            last_seen=tally.last_seen,
            examples=tuple(tally.examples),
        )
        for (cluster, version), tally in tallies.items()
    ]
    patterns.sort(key=lambda p: (-p.count, p.first_seen, p.cluster, p.version))
    return patterns


def _miner(max_clusters: int) -> Any:
    """A Drain template miner configured in code: no ini file, no persistence."""
    # Imported here: drain3 takes ~80 ms to import and only mining needs it.
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.drain_sim_th = 0.4
    config.drain_depth = 4
    config.drain_max_children = 100
    config.drain_max_clusters = max_clusters
    config.parametrize_numeric_tokens = True
    config.masking_instructions = [MaskingInstruction(regex, name) for regex, name in MASKS]
    config.mask_prefix = "<"
    config.mask_suffix = ">"
    config.profiling_enabled = False
    return TemplateMiner(persistence_handler=None, config=config)


def masked(text: str) -> str:
    """``text`` with the ``MASKS`` applied, as Drain sees it (for tests and explanations)."""
    for regex, name in _COMPILED:
        text = regex.sub(f"<{name}>", text)
    return text


_COMPILED = tuple((re.compile(regex), name) for regex, name in MASKS)
