"""Read ``zerodown.yaml``: text -> YAML with line numbers -> validated ``ServiceSpec``.

ruamel.yaml's round-trip loader keeps the line and column of every key and value. The loader
turns its tree into plain Python data (what the models validate) plus a ``SourceMap`` (what the
error messages cite), so no ruamel type travels beyond this module. YAML syntax errors, an empty
file and a file that cannot be read become zerodown errors here; nothing from ruamel leaks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from zerodown.core.errors import InputError, SpecError, SpecProblem
from zerodown.spec.models import ServiceSpec
from zerodown.spec.positions import DocPath, Position, SourceMap
from zerodown.spec.validation import validate_document

__all__ = ["LoadedSpec", "load_spec", "parse_spec", "read_yaml"]


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and the exact text it came from."""

    spec: ServiceSpec
    text: str
    """The file's text, verbatim: this is what a release records."""
    path: Path | None
    """The absolute path of the file; None for a spec parsed from a string."""
    spec_hash: str
    """sha256 hex digest of ``text`` (UTF-8)."""

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the spec start from: the file's folder, else the cwd."""
        return self.path.parent if self.path is not None else Path.cwd()

    @property
    def workdir(self) -> Path:
        """``run.workdir`` resolved against ``base_dir`` (``base_dir`` itself if not set)."""
        return (self.base_dir / (self.spec.run.workdir or ".")).resolve()


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate the spec file at ``path``.

    ``InputError`` if the file cannot be read; ``SpecError`` listing every problem otherwise.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"spec file not found: {file}") from None
    except IsADirectoryError:
        raise InputError(f"{file} is a folder; expected a zerodown.yaml file") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"spec file {file} is not UTF-8 text (bad byte at offset {exc.start})"
        ) from exc
    except OSError as exc:
        raise InputError(f"cannot read spec file {file}: {exc.strerror or exc}") from exc
    return _build(text, filename=str(path), path=file.resolve())


def parse_spec(text: str, *, filename: str = "<string>") -> LoadedSpec:
    """Validate spec ``text``; ``filename`` is only used in problem reports."""
    return _build(text, filename=filename, path=None)


def _build(text: str, *, filename: str, path: Path | None) -> LoadedSpec:
    data, source = read_yaml(text, filename=filename)
    spec = validate_document(data, source=source, filename=filename)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedSpec(spec=spec, text=text, path=path, spec_hash=digest)


def read_yaml(text: str, *, filename: str = "<string>") -> tuple[Any, SourceMap]:
    """Plain data and its source map; ``SpecError`` for bad YAML or an empty document."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "the text is not valid YAML"
        hint = exc.context if exc.problem and exc.context else None
        if isinstance(exc, DuplicateKeyError):
            problem = problem.split(" with value ")[0]
            hint = "each key may appear only once in a mapping"
        raise SpecError(
            [
                SpecProblem(
                    file=filename,
                    line=mark.line + 1 if mark is not None else None,
                    column=mark.column + 1 if mark is not None else None,
                    path="",
                    message=f"invalid YAML: {problem}",
                    hint=hint,
                )
            ]
        ) from exc
    except YAMLError as exc:
        raise SpecError(
            [SpecProblem(file=filename, line=None, path="", message=f"invalid YAML: {exc}")]
        ) from exc
    if tree is None:
        raise SpecError(
            [
                SpecProblem(
                    file=filename,
                    line=1,
                    column=1,
                    path="",
                    message="the spec is empty; expected a mapping with at least "
                    "'service' and 'run'",
                )
            ]
        )
    keys: dict[DocPath, Position] = {}
    values: dict[DocPath, Position] = {}
    root = _position(tree.lc.line, tree.lc.col) if hasattr(tree, "lc") else Position(1, 1)
    data = _plain(tree, (), keys, values)
    return data, SourceMap(root=root, keys=keys, values=values)


def _position(line: Any, column: Any) -> Position:
    return Position(int(line) + 1, int(column) + 1)


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return str(key)
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _plain(
    node: Any, path: DocPath, keys: dict[DocPath, Position], values: dict[DocPath, Position]
) -> Any:
    """``node`` as dicts, lists and scalars, recording positions below ``path``."""
    if isinstance(node, CommentedMap):
        here = _position(node.lc.line, node.lc.col)
        mapping: dict[str, Any] = {}
        for raw_key, raw_value in node.items():
            key = _key_text(raw_key)
            child = (*path, key)
            try:
                key_at = _position(*node.lc.key(raw_key))
                value_at = _position(*node.lc.value(raw_key))
            except (KeyError, TypeError):  # keys merged in with ``<<: *anchor`` have no position
                key_at = value_at = here
            keys[child] = key_at
            # A null value has no text of its own: point at its key.
            values[child] = key_at if raw_value is None else value_at
            mapping[key] = _plain(raw_value, child, keys, values)
        return mapping
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, raw_item in enumerate(node):
            child = (*path, index)
            try:
                values[child] = _position(*node.lc.item(index))
            except (KeyError, TypeError):
                values[child] = _position(node.lc.line, node.lc.col)
            items.append(_plain(raw_item, child, keys, values))
        return items
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, TaggedScalar):
        return str(node.value)
    return node
