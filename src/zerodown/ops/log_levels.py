"""The level of a log line: ``debug``, ``info``, ``warning``, ``error`` or ``critical``.

Applications mark their levels in many ways; the first marker found decides, in this order:

1. **JSON lines**: the ``level``, ``lvl``, ``severity``, ``levelname``, ``loglevel``, ``@l`` or
   ``log.level`` field (also nested as ``{"log": {"level": ...}}``). Names are matched without
   case (``ERROR``, ``Warn``, ``fatal`` ...). Numbers follow pino and bunyan from 10 up (10
   trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal) and syslog severities from 0 to 7
   (0-2 critical, 3 error, 4 warning, 5-6 info, 7 debug), as GELF writes them.
2. **logfmt**: ``level=error``, ``lvl=warn``, ``severity=ERROR`` anywhere on the line.
3. **glog/klog**: ``E0102 15:04:05.000000 ...`` (``I``, ``W``, ``E``, ``F`` then month and day).
4. **A marker in the first 160 characters**, the leftmost one winning: a level word in
   brackets, angle brackets or parentheses in any case (``[error]``, ``<WARN>``); an upper-case
   level word standing alone (``ERROR:root:...`` from Python's logging, ``2024-05-01 12:00:00
   WARNING ...``, ``[2024-05-01T12:00:00Z ERROR app] ...``, uvicorn's ``ERROR:    ...``); a
   capitalised ``Error:`` / ``Warning:`` / ``Fatal:``; a lower-case level word opening the line
   and followed by a colon (``error: ...``, ``warning[E0001]: ...``).
5. **Exceptions**: ``Traceback (most recent call last):`` and an exception's own line
   (``ValueError: ...``, ``java.lang.IllegalStateException: ...``) are errors.
6. **Continuations**: a line that starts with white space or ``Caused by:`` and carries no marker
   of its own belongs to the record above it (a stack frame, a wrapped message) and takes the
   level of the previous line of the same instance.
7. Anything else is ``info`` (``DEFAULT_LEVEL``). The platforms hand over stdout and stderr
   merged (the local platform writes both into one file, container logs are read with both
   streams), so which stream a line came from is not known: an unmarked line on stderr is
   ``info`` too. An application that wants its errors counted marks them (``ERROR ...``).

Aliases: ``trace``, ``verbose`` -> debug; ``notice`` -> info; ``warn`` -> warning; ``err``,
``severe`` -> error; ``fatal``, ``panic``, ``crit``, ``alert``, ``emerg`` -> critical.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any

__all__ = [
    "DEFAULT_LEVEL",
    "LEVEL_NAMES",
    "Level",
    "LevelReader",
    "level_of",
    "parse_level",
]


class Level(StrEnum):
    """Severity of a log line, lowest first; compare with ``rank``."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Level) -> bool:
        """True when this level is ``other`` or more severe."""
        return self.rank >= other.rank


_RANK = {level: index for index, level in enumerate(Level)}

DEFAULT_LEVEL = Level.INFO
"""The level of a line that carries no marker (see the module docstring, rule 7)."""

_ALIASES: dict[str, Level] = {
    "trace": Level.DEBUG,
    "verbose": Level.DEBUG,
    "debug": Level.DEBUG,
    "dbg": Level.DEBUG,
    "info": Level.INFO,
    "information": Level.INFO,
    "informational": Level.INFO,
    "notice": Level.INFO,
    "warn": Level.WARNING,
    "warning": Level.WARNING,
    "error": Level.ERROR,
    "err": Level.ERROR,
    "severe": Level.ERROR,
    "critical": Level.CRITICAL,
    "crit": Level.CRITICAL,
    "fatal": Level.CRITICAL,
    "panic": Level.CRITICAL,
    "alert": Level.CRITICAL,
    "emerg": Level.CRITICAL,
    "emergency": Level.CRITICAL,
}

LEVEL_NAMES: tuple[str, ...] = tuple(level.value for level in Level)
"""The canonical names, lowest first (what ``--level`` offers and entries carry)."""


def parse_level(text: str) -> Level:
    """A level from its name or an alias, any case (``WARN`` -> warning); ``ValueError`` if none.

    For user input such as ``--level``; the message lists the names accepted.
    """
    level = _ALIASES.get(text.strip().lower())
    if level is None:
        raise ValueError(f"unknown log level {text!r}: choose one of {', '.join(LEVEL_NAMES)}")
    return level


_JSON_KEYS = ("level", "lvl", "severity", "levelname", "loglevel", "log.level", "@l")
_LOGFMT = re.compile(r"(?:^|\s)(?i:level|lvl|severity|loglevel)=[\"']?([A-Za-z]+)")
_GLOG = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d")
_GLOG_LEVELS = {"I": Level.INFO, "W": Level.WARNING, "E": Level.ERROR, "F": Level.CRITICAL}
_WORDS = "|".join(sorted(_ALIASES, key=len, reverse=True))
_UPPER_WORDS = (
    "TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|ERR|SEVERE|CRITICAL|CRIT|FATAL|PANIC|EMERG"
)
_MARKER = re.compile(
    rf"[\[<(](?P<bracketed>(?i:{_WORDS}))[\])>]"
    rf"|(?<![\w/.])(?P<upper>{_UPPER_WORDS})(?![\w/])"
    r"|(?<![\w/.])(?P<capital>Error|Warning|Fatal|Critical)(?=:)"
    rf"|^(?P<opening>{_WORDS})(?:\[[^\]]*\])?:"
)
_PREFIX_CHARS = 160
_TRACEBACK = "Traceback (most recent call last)"
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w$]*\.)*[A-Za-z_]\w*(?:Error|Exception)(?::|$)")
_CAUSED_BY = ("Caused by:", "During handling of the above exception")


def level_of(line: str) -> Level | None:
    """The level a line states itself (rules 1 to 5); None when it states none."""
    stripped = line.lstrip()
    if stripped.startswith("{"):
        found = _json_level(stripped)
        if found is not None:
            return found
    match = _LOGFMT.search(line)
    if match is not None:
        found = _ALIASES.get(match.group(1).lower())
        if found is not None:
            return found
    match = _GLOG.match(line)
    if match is not None:
        return _GLOG_LEVELS[match.group(1)]
    match = _MARKER.search(line[:_PREFIX_CHARS])
    if match is not None:
        word = next(group for group in match.groups() if group is not None)
        return _ALIASES[word.lower()]
    if stripped.startswith(_TRACEBACK) or _EXCEPTION.match(line):
        return Level.ERROR
    return None


def _json_level(text: str) -> Level | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    lowered = {str(key).lower(): value for key, value in data.items()}
    for key in _JSON_KEYS:
        if key in lowered:
            return _json_value_level(lowered[key])
    nested = lowered.get("log")
    if isinstance(nested, dict) and "level" in nested:
        return _json_value_level(nested["level"])
    return None


def _json_value_level(value: Any) -> Level | None:
    if isinstance(value, str):
        return _ALIASES.get(value.strip().lower())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = int(value)
    if 0 <= number <= 7:  # syslog severities, as GELF carries them
        return (
            Level.CRITICAL
            if number <= 2
            else Level.ERROR
            if number == 3
            else Level.WARNING
            if number == 4
            else Level.INFO
            if number <= 6
            else Level.DEBUG
        )
    if number >= 10:  # pino and bunyan: 10 trace ... 60 fatal
        return (
            Level.DEBUG
            if number < 30
            else Level.INFO
            if number < 40
            else Level.WARNING
            if number < 50
            else Level.ERROR
            if number < 60
            else Level.CRITICAL
        )
    return None


class LevelReader:
    """Levels of consecutive lines of one stream, so continuation lines join their record.

    Keep one reader per instance: ``read`` remembers the level of the previous line.
    """

    def __init__(self) -> None:
        self.previous: Level | None = None

    def read(self, line: str) -> Level:
        level = level_of(line)
        if level is None:
            continuation = line[:1] in (" ", "\t") or line.startswith(_CAUSED_BY)
            level = self.previous if continuation and self.previous is not None else DEFAULT_LEVEL
        self.previous = level
        return level
