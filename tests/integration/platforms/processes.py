"""Helpers for tests that start real processes: polling with deadlines and a stray-process check.

``ProcessLedger`` remembers every instance (its process group) and every extra PID a test
started; at teardown it kills whatever is still alive and fails the test, so no test can leave a
process behind unnoticed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psutil
import pytest

from zerodown.platforms.base import Instance


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail the test with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def pid_alive(pid: int, started_at: float | None = None) -> bool:
    """Is ``pid`` a live (non-zombie) process, started at ``started_at`` if given?"""
    try:
        proc = psutil.Process(pid)
        if started_at is not None and abs(proc.create_time() - started_at) > 0.01:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return members


@dataclass
class ProcessLedger:
    """Everything a test started, checked at teardown."""

    groups: list[tuple[int, float]] = field(default_factory=list)  # (pgid, leader start time)
    pids: list[int] = field(default_factory=list)
    popens: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def instance(self, instance: Instance) -> Instance:
        assert instance.pid is not None
        self.groups.append((instance.pid, instance.started_at))
        return instance

    def pid(self, pid: int) -> int:
        self.pids.append(pid)
        return pid

    def popen(self, popen: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self.popens.append(popen)
        return popen

    def strays(self) -> list[int]:
        found: set[int] = set()
        for pgid, started_at in self.groups:
            members = group_members(pgid)
            # A group whose leader is gone is still ours only if the leader's number was not
            # taken by someone else meanwhile (it cannot be while the group exists).
            if members and (pid_alive(pgid, started_at) or not psutil.pid_exists(pgid)):
                found.update(members)
        found.update(pgid for pgid, started_at in self.groups if pid_alive(pgid, started_at))
        found.update(p for p in self.pids if pid_alive(p))
        found.update(p.pid for p in self.popens if p.poll() is None)
        return sorted(found)

    def kill_all(self, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for popen in self.popens:
            if popen.poll() is None:
                popen.kill()
            popen.wait()


@pytest.fixture
def ledger() -> Iterator[ProcessLedger]:
    """Records started processes; fails the test if any is still alive at teardown."""
    book = ProcessLedger()
    yield book
    strays = book.strays()
    book.kill_all(strays)
    assert not strays, f"the test left processes behind: {strays}"
