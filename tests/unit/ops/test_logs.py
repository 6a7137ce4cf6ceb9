"""The log book: aggregated, timestamped lines with cursors that survive a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zerodown.ops.log_levels import Level
from zerodown.ops.logs import LogBook


def _append(book: LogBook, lines: list[str], *, ts: float, cursor: str, inst: str = "i1") -> None:
    book.append("web", instance=inst, revision=1, version="v1", lines=lines, cursor=cursor, ts=ts)


def test_lines_are_read_back_in_order_with_offsets(tmp_path: Path) -> None:
    book = LogBook(tmp_path)
    _append(book, ["a", "b"], ts=10.0, cursor="4")
    page = book.read("web")
    assert [e.line for e in page.entries] == ["a", "b"]
    _append(book, ["c"], ts=11.0, cursor="6")
    later = book.read("web", offset=page.next_offset)
    assert [e.line for e in later.entries] == ["c"]


def test_cursor_survives_a_new_log_book(tmp_path: Path) -> None:
    _append(LogBook(tmp_path), ["a"], ts=1.0, cursor="2")
    assert LogBook(tmp_path).cursor("web", "i1") == "2"


def test_filters_by_time_instance_pattern_and_tail(tmp_path: Path) -> None:
    book = LogBook(tmp_path)
    _append(book, ["GET / 200", "ERROR boom"], ts=10.0, cursor="1", inst="i1")
    _append(book, ["GET /x 200"], ts=20.0, cursor="1", inst="i2")
    assert [e.line for e in book.read("web", since=15.0).entries] == ["GET /x 200"]
    assert [e.line for e in book.read("web", instance="i1").entries] == ["GET / 200", "ERROR boom"]
    assert [e.line for e in book.read("web", pattern="ERROR").entries] == ["ERROR boom"]
    assert [e.line for e in book.read("web", tail=1).entries] == ["GET /x 200"]


def test_unknown_service_reads_empty(tmp_path: Path) -> None:
    page = LogBook(tmp_path).read("nothing", offset=7)
    assert page.entries == [] and page.next_offset == 7


def test_forget_drops_the_cursor(tmp_path: Path) -> None:
    book = LogBook(tmp_path)
    _append(book, ["a"], ts=1.0, cursor="2")
    book.forget("web", "i1")
    assert LogBook(tmp_path).cursor("web", "i1") is None


def _add(
    book: LogBook,
    lines: list[str],
    *,
    ts: float,
    inst: str = "i1",
    revision: int = 1,
    version: str = "v1",
) -> None:
    cursor = str(ts)
    book.append(
        "web",
        instance=inst,
        revision=revision,
        version=version,
        lines=lines,
        cursor=cursor,
        ts=ts,
    )


def test_every_entry_is_stored_with_its_level(tmp_path: Path) -> None:
    book = LogBook(tmp_path)
    _add(book, ["GET / 200", "ERROR boom", "  at frame", '{"level":"warn","msg":"slow"}'], ts=1.0)
    assert [e.level for e in book.read("web").entries] == [
        Level.INFO,
        Level.ERROR,
        Level.ERROR,
        Level.WARNING,
    ]
    stored = [json.loads(line) for line in (tmp_path / "web" / "service.jsonl").open()]
    assert [s["level"] for s in stored] == ["info", "error", "error", "warning"]
    assert book.read("web").entries[1].to_dict()["level"] == "error"


def test_a_continuation_keeps_the_level_across_appends_of_the_same_instance(
    tmp_path: Path,
) -> None:
    book = LogBook(tmp_path)
    _add(book, ["Traceback (most recent call last):"], ts=1.0, inst="i1")
    _add(book, ["GET / 200"], ts=1.5, inst="i2")
    _add(book, ['  File "app.py", line 3'], ts=2.0, inst="i1")
    assert [e.level for e in book.read("web").entries] == [Level.ERROR, Level.INFO, Level.ERROR]


def test_filters_by_minimum_level_version_and_combinations(tmp_path: Path) -> None:
    book = LogBook(tmp_path)
    _add(book, ["INFO up", "WARN slow", "ERROR boom"], ts=10.0, version="v1")
    _add(book, ["ERROR db timeout", "CRITICAL oom", "DEBUG x"], ts=20.0, version="v2", revision=2)

    def lines(**kw: Any) -> list[str]:
        return [e.line for e in book.read("web", **kw).entries]

    assert lines(min_level=Level.WARNING) == [
        "WARN slow",
        "ERROR boom",
        "ERROR db timeout",
        "CRITICAL oom",
    ]
    assert lines(min_level=Level.ERROR, version="v2") == ["ERROR db timeout", "CRITICAL oom"]
    assert lines(min_level=Level.ERROR, pattern="db|boom", since=15.0) == ["ERROR db timeout"]
    assert lines(version="v3") == []
    assert lines(min_level=Level.ERROR, tail=1) == ["CRITICAL oom"]


def test_entries_written_before_levels_were_stored_are_read_with_an_inferred_level(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "web"
    folder.mkdir()
    old = [
        {"ts": 1.0, "instance": "i1", "revision": 1, "version": "v1", "line": "GET / 200"},
        {"ts": 2.0, "instance": "i1", "revision": 1, "version": "v1", "line": "ERROR boom"},
    ]
    (folder / "service.jsonl").write_text("".join(json.dumps(o) + "\n" for o in old))
    (folder / "cursors.json").write_text(json.dumps({"i1": "42"}))
    book = LogBook(tmp_path)
    assert [(e.line, e.level) for e in book.read("web").entries] == [
        ("GET / 200", Level.INFO),
        ("ERROR boom", Level.ERROR),
    ]
    assert [e.line for e in book.read("web", min_level=Level.ERROR).entries] == ["ERROR boom"]
    # The old cursors are kept and the counts rebuilt from the old lines, once.
    assert book.cursor("web", "i1") == "42"
    assert book.error_lines("web") == {1: 1}
    _add(book, ["ERROR again"], ts=3.0)
    assert not (folder / "cursors.json").exists()
    assert LogBook(tmp_path).error_lines("web") == {1: 2}


def test_line_counts_only_grow_and_survive_a_new_log_book(tmp_path: Path) -> None:
    book = LogBook(tmp_path)
    _add(book, ["INFO a", "ERROR b", "CRITICAL c"], ts=1.0)
    _add(book, ["ERROR d"], ts=2.0, inst="i2", revision=2, version="v2")
    book.forget("web", "i1")
    again = LogBook(tmp_path)
    assert again.error_lines("web") == {1: 2, 2: 1}
    counts = {(c.revision, c.version, c.level.value): c.count for c in again.line_counts("web")}
    assert counts == {
        (1, "v1", "info"): 1,
        (1, "v1", "error"): 1,
        (1, "v1", "critical"): 1,
        (2, "v2", "error"): 1,
    }


def test_samples_publish_lines_per_service_version_and_level(tmp_path: Path) -> None:
    book = LogBook(tmp_path)
    _add(book, ["INFO a", "ERROR b"], ts=1.0, revision=1, version="v1")
    _add(book, ["ERROR c"], ts=2.0, inst="i2", revision=2, version="v1")  # same version again
    book.append("api", instance="a1", revision=1, version="7", lines=["x"], cursor="1", ts=1.0)
    samples = {
        (s.labels["service"], s.labels["version"], s.labels["level"]): s.value
        for s in book.samples()
    }
    assert samples == {
        ("web", "v1", "info"): 1.0,
        ("web", "v1", "error"): 2.0,
        ("api", "7", "info"): 1.0,
    }
    sample = book.samples()[0]
    assert sample.name == "zerodown_log_lines_total" and sample.kind == "counter"
    assert LogBook(tmp_path / "missing").samples() == []
