"""Error-pattern mining with Drain: shapes become templates with exact counts and times."""

from __future__ import annotations

import random
import uuid

from zerodown.ops.log_levels import Level, LevelReader
from zerodown.ops.logmine import LogPattern, masked, message_of, mine_patterns
from zerodown.ops.logs import LogEntry

PAYMENT = "ERROR payment failed for order <NUM>: card declined"
DATABASE = "ERROR database timeout after <NUM>s on <IP>"
SESSION = "ERROR session <UUID> expired for user <NUM>"


def _mixed_log(seed: int = 7, lines: int = 600) -> tuple[list[LogEntry], dict[str, int]]:
    """Info lines interleaved with 3 error shapes whose variable parts change every time."""
    rnd = random.Random(seed)
    reader = LevelReader()
    entries: list[LogEntry] = []
    expected = {PAYMENT: 0, DATABASE: 0, SESSION: 0}
    for i in range(lines):
        stamp = f"2024-05-01 12:{i // 60 % 60:02d}:{i % 60:02d},{rnd.randint(100, 999)}"
        pick = rnd.random()
        if pick < 0.55:
            path = rnd.choice(["items", "users", "cart"])
            text = f"INFO GET /api/{path}/{rnd.randint(1, 999)} 200 in {rnd.randint(1, 90)}ms"
        elif pick < 0.7:
            text = f"ERROR payment failed for order {rnd.randint(1000, 99999)}: card declined"
            expected[PAYMENT] += 1
        elif pick < 0.85:
            ip = f"10.{rnd.randint(0, 9)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
            text = f"ERROR database timeout after {rnd.randint(1, 30)}s on {ip}:5432"
            expected[DATABASE] += 1
        else:
            user = uuid.UUID(int=rnd.getrandbits(128))
            text = f"ERROR session {user} expired for user {rnd.randint(1, 500)}"
            expected[SESSION] += 1
        line = f"{stamp} {text}"
        entries.append(
            LogEntry(
                ts=1000.0 + i,
                instance=f"web-r1-{i % 3}",
                revision=1,
                version="v1",
                line=line,
                level=reader.read(line),
            )
        )
    return entries, expected


def test_three_error_shapes_among_info_lines_give_exactly_three_templates_with_exact_counts() -> (
    None
):
    entries, expected = _mixed_log()
    errors = [e for e in entries if e.level.at_least(Level.ERROR)]
    patterns = mine_patterns(errors)
    assert len(patterns) == 3
    found = {p.template.removeprefix("<TIME> "): p.count for p in patterns}
    assert found == expected
    assert sum(found.values()) == len(errors)
    for pattern in patterns:
        mine = [e for e in errors if pattern.template.split()[2] in e.line]
        assert pattern.first_seen == mine[0].ts and pattern.last_seen == mine[-1].ts
        assert pattern.examples == tuple(e.line for e in mine[:3])
        assert pattern.level is Level.ERROR and pattern.version == "v1"
    assert [p.count for p in patterns] == sorted(found.values(), reverse=True)


def test_the_error_templates_keep_their_counts_when_info_lines_are_mined_too() -> None:
    entries, expected = _mixed_log(seed=11)
    patterns = mine_patterns(entries)
    errors = {
        p.template.removeprefix("<TIME> "): p.count for p in patterns if p.level is Level.ERROR
    }
    assert errors == expected
    assert sum(p.count for p in patterns) == len(entries)


def test_masks_replace_times_ids_addresses_and_numbers() -> None:
    line = (
        "2024-05-01T12:00:00.5Z req 0x1f3a from 192.168.1.20:443 "
        "id 3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b sha 9fceb02d0ae598e95dc970b74767f19372d61af8 "
        "took 12.5 ms at 12:00:01"
    )
    assert masked(line) == (
        "<TIME> req <HEX> from <IP> id <UUID> sha <HEX> took <NUM> ms at <TIME>"
    )
    assert masked("user42 order-17 deadbeef") == "user42 order-<NUM> deadbeef"


def test_json_lines_are_mined_by_their_message() -> None:
    assert message_of('{"level":"error","msg":"db timeout after 3s","ts":1}') == (
        "db timeout after 3s"
    )
    assert message_of('{"level":"error"}') == '{"level":"error"}'
    assert message_of("plain") == "plain"
    entries = [
        LogEntry(
            ts=float(i),
            instance="i",
            revision=1,
            version="v1",
            line=f'{{"level":"error","msg":"db timeout after {i}s","req":"{uuid.uuid4()}"}}',
            level=Level.ERROR,
        )
        for i in range(5)
    ]
    (pattern,) = mine_patterns(entries)
    assert pattern.template == "db timeout after <NUM>s" and pattern.count == 5


def test_one_shape_under_two_versions_is_one_cluster_with_a_row_per_version() -> None:
    def entry(ts: float, version: str, line: str) -> LogEntry:
        return LogEntry(ts=ts, instance=version, revision=1, version=version, line=line)

    entries = [
        entry(1, "v1", "ERROR cache miss for key 1"),
        entry(2, "v2", "ERROR cache miss for key 2"),
        entry(3, "v2", "ERROR cache miss for key 3"),
        entry(4, "v2", "ERROR cannot open /data/x: permission denied"),
    ]
    patterns = mine_patterns(entries)
    by_version = {(p.template, p.version): p for p in patterns}
    v1 = by_version[("ERROR cache miss for key <NUM>", "v1")]
    v2 = by_version[("ERROR cache miss for key <NUM>", "v2")]
    assert v1.cluster == v2.cluster and (v1.count, v2.count) == (1, 2)
    assert (v2.first_seen, v2.last_seen) == (2, 3)
    only_v2 = [p for p in patterns if p.cluster != v1.cluster]
    assert [(p.version, p.count) for p in only_v2] == [("v2", 1)]
    assert patterns[0] == v2  # most frequent first
    assert set(LogPattern.__dataclass_fields__) <= set(v2.to_dict()) | {"level"}


def test_no_entries_no_patterns_and_blank_lines_are_skipped() -> None:
    assert mine_patterns([]) == []
    blank = LogEntry(ts=1, instance="i", revision=1, version="v1", line="   ")
    assert mine_patterns([blank]) == []
