"""Differential test: zerodown's retention against the real ``restic forget``.

A restic repository in a temporary folder gets one snapshot of a tiny file for each of ~45
moments (``restic backup --time``) chosen to sit on the edges: ISO weeks that straddle New Year,
month ends, a leap day, the exact start of a ``--keep-within`` span and one second inside it,
several backups in one hour and one day, and one backup dated in the future. For each policy,
``restic forget --dry-run --json`` and ``apply_policy`` must keep the same snapshots, each for
the same reasons in the same order.

Debian 12 ships restic 0.14. Where later versions differ, this test compares what the installed
version does: below 0.17 restic does not keep the oldest snapshot of a rule that has room left,
so the decisions zerodown marks ``oldest`` are left out of the comparison (they are pinned by
the hand-written vectors in tests/unit/backup/test_retention.py); from 0.16 the ``unlimited``
policies are compared too. Everything runs in UTC (``TZ=UTC`` for restic, the default zone of
a policy for zerodown). Locally a missing restic skips; in CI it fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import require_component
from zerodown.backup.retention import RetentionPolicy, apply_policy
from zerodown.spec.retention import parse_calendar_span, parse_keep_count

pytestmark = pytest.mark.integration

NEWEST = "2024-03-31 12:00:00"
MOMENTS = (
    "2016-07-14 07:00:00",  # the oldest shares its hour with the next: restic 0.17 keeps both
    "2016-07-14 08:00:00",
    "2017-03-02 09:00:00",
    "2018-11-30 23:59:59",
    "2019-12-31 23:00:00",  # ISO week 1 of 2020
    "2020-12-31 12:00:00",  # ISO week 53 of 2020 ...
    "2021-01-03 12:00:00",  # ... with this Sunday
    "2021-01-04 00:00:00",  # ISO week 1 of 2021
    "2023-01-28 08:00:00",  # exactly 1y2m3d4h before the newest: outside that span
    "2023-01-28 08:00:01",  # one second inside it
    "2023-01-31 10:00:00",
    "2023-02-28 10:00:00",
    "2023-03-31 10:00:00",
    "2023-05-15 10:00:00",
    "2023-05-16 10:00:00",
    "2023-07-01 00:00:00",
    "2023-09-30 23:59:59",
    "2023-10-01 00:00:00",
    "2024-02-26 07:00:00",  # Monday
    "2024-02-29 07:00:00",  # leap day
    "2024-03-02 12:00:00",  # exactly one month before the newest (31 Feb = 2 Mar): outside
    "2024-03-02 12:00:01",
    "2024-03-03 07:00:00",  # Sunday
    "2024-03-04 07:00:00",  # Monday
    "2024-03-10 07:00:00",
    "2024-03-17 07:00:00",
    "2024-03-24 07:00:00",
    "2024-03-28 22:00:00",
    "2024-03-29 06:00:00",
    "2024-03-29 18:00:00",
    "2024-03-30 00:00:00",  # exactly 36 hours before the newest
    "2024-03-30 08:00:00",
    "2024-03-30 08:30:00",
    "2024-03-30 09:59:59",
    "2024-03-30 10:00:00",
    "2024-03-30 23:00:00",
    "2024-03-31 00:00:00",
    "2024-03-31 01:15:00",
    "2024-03-31 01:45:00",
    "2024-03-31 11:00:00",
    "2024-03-31 11:59:59",
    NEWEST,
    "2099-06-01 00:00:00",  # in the future: not the newest the spans count from
)

POLICIES: tuple[tuple[str, ...], ...] = (
    ("--keep-last", "5"),
    ("--keep-hourly", "8"),
    ("--keep-daily", "6"),
    ("--keep-weekly", "7"),
    ("--keep-weekly", "30"),
    ("--keep-monthly", "9"),
    ("--keep-yearly", "4"),
    ("--keep-yearly", "50"),
    ("--keep-within", "1m"),
    ("--keep-within", "1y2m3d4h"),
    ("--keep-within", "36h"),
    ("--keep-within-hourly", "2d"),
    ("--keep-within-daily", "1m"),
    ("--keep-within-weekly", "3m"),
    ("--keep-within-weekly", "10y"),
    ("--keep-within-monthly", "1y"),
    ("--keep-within-yearly", "10y"),
    ("--keep-daily", "3", "--keep-weekly", "4", "--keep-monthly", "6", "--keep-yearly", "3"),
    (
        "--keep-last",
        "2",
        "--keep-within",
        "3d",
        "--keep-monthly",
        "2",
        "--keep-within-weekly",
        "2m",
    ),
)
UNLIMITED_POLICIES: tuple[tuple[str, ...], ...] = (
    ("--keep-weekly", "unlimited"),
    ("--keep-last", "3", "--keep-yearly", "unlimited"),
)
"""restic 0.16 and later only."""


@dataclass(frozen=True)
class Snapshot:
    time: dt.datetime


@dataclass(frozen=True)
class Restic:
    binary: str
    version: tuple[int, int]
    env: dict[str, str]

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [self.binary, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"restic {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout


@pytest.fixture(scope="module")
def restic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restic]:
    binary = shutil.which("restic")
    if binary is None:
        require_component("restic", "install the Debian package 'restic'")
    assert binary is not None
    shown = subprocess.run([binary, "version"], capture_output=True, text=True, check=False)
    found = re.search(r"restic (\d+)\.(\d+)", shown.stdout)
    assert found, f"cannot read the restic version from {shown.stdout!r}"
    root = tmp_path_factory.mktemp("restic")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "TZ": "UTC",
        "RESTIC_REPOSITORY": str(root / "repo"),
        "RESTIC_PASSWORD": "retention-test",
        "RESTIC_CACHE_DIR": str(root / "cache"),
    }
    tool = Restic(binary, (int(found.group(1)), int(found.group(2))), env)
    tool.run("init")
    data = root / "data.txt"
    data.write_text("one small file\n")

    def backup(moment: str) -> None:
        tool.run("backup", "--quiet", "--host", "zd", "--time", moment, str(data))

    # Backups only take a shared lock: two at once halve the time (the key derivation dominates).
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(backup, MOMENTS))
    yield tool
    shutil.rmtree(root, ignore_errors=True)


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _policy_of(args: tuple[str, ...]) -> RetentionPolicy:
    values: dict[str, Any] = {}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        rule = flag.removeprefix("--keep-")
        if rule.startswith("within"):
            values[rule.replace("-", "_")] = parse_calendar_span(value)
        else:
            values[rule] = parse_keep_count(value)
    return RetentionPolicy(**values)


def _restic_decisions(restic: Restic, args: tuple[str, ...]) -> dict[dt.datetime, list[str]]:
    """Kept snapshot times and their reasons, as ``restic forget --dry-run --json`` says."""
    groups = json.loads(restic.run("--no-lock", "forget", "--dry-run", "--json", *args))
    assert len(groups) == 1, "one host and one path: one group"
    group = groups[0]
    kept = {_utc(item["snapshot"]["time"]): list(item["matches"]) for item in group["reasons"]}
    assert set(kept) == {_utc(item["time"]) for item in group["keep"] or ()}
    assert len(kept) + len(group["remove"] or ()) == len(MOMENTS)
    return kept


def _zerodown_decisions(
    args: tuple[str, ...], *, version: tuple[int, int]
) -> dict[dt.datetime, list[str]]:
    snapshots = [Snapshot(_utc(moment + "Z")) for moment in MOMENTS]
    decisions = apply_policy(snapshots, _policy_of(args), now=dt.datetime.now(dt.UTC))
    with_oldest = version >= (0, 17)
    kept: dict[dt.datetime, list[str]] = {}
    for decision in decisions:
        reasons = [str(r) for r in decision.reasons if with_oldest or not r.oldest]
        if reasons:
            kept[decision.snapshot.time] = reasons
    return kept


def test_restic_snapshots_carry_the_times_given() -> None:
    """The moments are distinct and in the past but one: the comparison keys on time."""
    assert len(set(MOMENTS)) == len(MOMENTS)
    future = [m for m in MOMENTS if _utc(m + "Z") > dt.datetime.now(dt.UTC)]
    assert future == ["2099-06-01 00:00:00"]


def test_zerodown_keeps_what_restic_forget_keeps_for_the_same_reasons(restic: Restic) -> None:
    policies = POLICIES + (UNLIMITED_POLICIES if restic.version >= (0, 16) else ())
    listed = json.loads(restic.run("--no-lock", "snapshots", "--json"))
    assert sorted(_utc(item["time"]) for item in listed) == sorted(
        _utc(moment + "Z") for moment in MOMENTS
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        theirs = list(pool.map(lambda args: _restic_decisions(restic, args), policies))
    mismatches = []
    oldest_only = 0
    for args, restic_kept in zip(policies, theirs, strict=True):
        ours = _zerodown_decisions(args, version=restic.version)
        everything = _zerodown_decisions(args, version=(99, 0))
        oldest_only += len(everything) - len(ours)
        if ours != restic_kept:
            only_restic = {f"{t:%F %T}": r for t, r in restic_kept.items() if ours.get(t) != r}
            only_ours = {f"{t:%F %T}": r for t, r in ours.items() if restic_kept.get(t) != r}
            mismatches.append(f"{' '.join(args)}: restic {only_restic} zerodown {only_ours}")
        assert restic_kept, f"{' '.join(args)} keeps nothing: a vacuous case"
        assert len(restic_kept) < len(MOMENTS), f"{' '.join(args)} forgets nothing"
    assert not mismatches, "\n".join(mismatches)
    if restic.version < (0, 17):
        # Some cases do reach restic 0.17's rule, whose decisions were left out above.
        assert oldest_only > 0
