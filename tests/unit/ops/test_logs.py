"""The log book: aggregated, timestamped lines with cursors that survive a restart."""

from __future__ import annotations

from pathlib import Path

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
