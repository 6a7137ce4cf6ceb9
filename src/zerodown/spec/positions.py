"""Where each key and value of a YAML document sits, so every problem can name its line.

The loader records, for every path into the document (``("strategy", "canary", "steps", 2)``),
the 1-based line and column of the key that names it and of its value. ``validation.py`` asks
for positions by path; a path that does not exist (a missing key) falls back to the nearest
ancestor that does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["DocPath", "Position", "SourceMap", "format_path"]

DocPath = tuple[str | int, ...]
"""Keys and list indexes from the document root to one value."""


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in the spec text."""

    line: int
    column: int


def format_path(path: DocPath) -> str:
    """The dotted form used in messages.

    ``("strategy", "canary", "steps", 2, "setWeight")`` -> ``strategy.canary.steps[2].setWeight``
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True)
class SourceMap:
    """Positions of the keys and values of one document."""

    root: Position = Position(1, 1)
    keys: Mapping[DocPath, Position] = field(default_factory=dict)
    values: Mapping[DocPath, Position] = field(default_factory=dict)

    def value(self, path: DocPath) -> Position:
        """Where the value at ``path`` is written (a null value: its key).

        A path that is not in the document gives the key of its nearest existing ancestor.
        """
        exact = self.values.get(path)
        if exact:
            return exact
        for length in range(len(path) - 1, 0, -1):
            prefix = path[:length]
            found = self.keys.get(prefix) or self.values.get(prefix)
            if found:
                return found
        return self.root

    def key(self, path: DocPath) -> Position:
        """Where the key naming ``path`` is written (the item itself for a list item)."""
        return self.keys.get(path) or self.value(path)

    def container(self, path: DocPath) -> Position:
        """Where the mapping at ``path`` is introduced: its key, or the document's first line."""
        return self.key(path) if path else self.root
