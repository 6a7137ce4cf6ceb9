"""Pre-deployment checks: is it safe to start changing anything?

Before a deployment touches a single instance it asks four questions, each answered by one or
more ``CheckResult`` and never by an exception (a failed check is a finding, not an error):

* **capacity**: does this machine have the CPU, memory, disk and loopback ports for the new
  instances? Measured with psutil and by binding ports for real.
* **dependencies**: do the services the release needs answer right now? Each is probed for
  real: an HTTP GET, a TCP connect, a PostgreSQL connection running ``SELECT 1`` (psycopg, from
  the ``postgres`` extra) or a Redis ``PING`` spoken over a plain socket.
* **backup**: is there a fresh backup? The configured command runs, and the newest file matching
  the ``artifacts`` glob is measured and hashed; without a command that file must be younger
  than ``maxAge``.
* **rollback plan**: is there a previous release to go back to, and does it serve?

Secrets never reach a result: passwords in dependency URLs are masked in figures and summaries.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import math
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import httpx
import psutil

from zerodown.checks.base import CheckResult, CheckStatus, describe_error, worst_status
from zerodown.core import redact
from zerodown.spec import defaults
from zerodown.spec.durations import format_duration
from zerodown.spec.models import (
    BackupCheckSpec,
    CapacityCheckSpec,
    DependencyCheckSpec,
    ServiceSpec,
    format_size,
)

__all__ = [
    "CAPACITY_HEADROOM",
    "CapacityMeasurement",
    "assess_capacity",
    "check_backup",
    "check_capacity",
    "check_dependencies",
    "check_dependency",
    "check_rollback_plan",
    "mask_url",
    "measure_capacity",
    "run_prechecks",
]

CAPACITY_HEADROOM: Final = 1.5
"""Below this multiple of what the instances need, CPU and memory are a warning."""

_OUTPUT_TAIL: Final = 4000
"""Characters of a backup command's output kept in the result, from its end."""
_MTIME_SLACK_S: Final = 2.0
"""File systems with coarse timestamps may date a file written just now a little earlier."""
_PG_MIN_CONNECT_TIMEOUT_S: Final = 2
_USER_AGENT: Final = "zerodown-check"


def _timed(run: Callable[[], CheckResult]) -> CheckResult:
    started = time.perf_counter()
    result = run()
    return replace(result, duration_s=time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# Capacity


@dataclass(frozen=True)
class CapacityMeasurement:
    """What this machine has free right now (``measure_capacity``)."""

    cpu_cores: int
    load_1m: float
    """The one-minute load average (runnable processes, over all cores)."""
    memory_available: int
    disk_free: int
    disk_path: str
    """The existing folder whose disk was measured: the state dir or its nearest parent."""
    ports_bound: int
    """How many loopback ports could be bound at once (at most the instances asked for)."""
    port_error: str | None = None

    @property
    def cpu_free(self) -> float:
        """Cores the load leaves idle: ``cores x (1 - load / cores)``, never below 0."""
        busy = min(1.0, max(0.0, self.load_1m / self.cpu_cores)) if self.cpu_cores else 1.0
        return self.cpu_cores * (1.0 - busy)


def measure_capacity(state_dir: Path, *, instances: int) -> CapacityMeasurement:
    """Measure CPU, memory, the disk at ``state_dir`` and ``instances`` free loopback ports."""
    disk_path = Path(state_dir).absolute()
    while not disk_path.exists() and disk_path != disk_path.parent:
        disk_path = disk_path.parent
    ports_bound, port_error = _bind_loopback_ports(instances)
    return CapacityMeasurement(
        cpu_cores=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        load_1m=psutil.getloadavg()[0],
        memory_available=int(psutil.virtual_memory().available),
        disk_free=int(psutil.disk_usage(str(disk_path)).free),
        disk_path=str(disk_path),
        ports_bound=ports_bound,
        port_error=port_error,
    )


def _bind_loopback_ports(count: int) -> tuple[int, str | None]:
    """Bind ``count`` ephemeral ports on 127.0.0.1 at once; how many worked, and why not."""
    bound = 0
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            try:
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                sock.bind(("127.0.0.1", 0))
            except OSError as exc:
                return bound, (exc.strerror or str(exc)).lower()
            bound += 1
    return bound, None


def assess_capacity(
    capacity: CapacityCheckSpec, measured: CapacityMeasurement, *, instances: int
) -> CheckResult:
    """Judge ``measured`` against what ``instances`` new instances need. Pure.

    Memory fails below what is needed and warns below ``CAPACITY_HEADROOM`` times it; the
    disk fails below ``diskFree``; ports fail unless all ``instances`` could be bound. CPU only
    warns: it is shared, not reserved (the new instances run, more slowly), and the load average
    it is read from lags by a minute, so a busy minute must not block a deploy.
    """
    cpu_needed = capacity.cpu_per_instance * instances
    memory_needed = capacity.memory_per_instance * instances
    each = f"{instances} instance{'s' if instances != 1 else ''}"
    findings: list[tuple[CheckStatus, str]] = []

    def judge(
        free: float, needed: float, text: str, *, headroom: bool, hard: bool = True
    ) -> None:
        if free < needed:
            findings.append(("fail" if hard else "warn", f"not enough {text}"))
        elif headroom and free < CAPACITY_HEADROOM * needed:
            findings.append(("warn", f"little {text} (less than {CAPACITY_HEADROOM:g}x)"))
        else:
            findings.append(("pass", text))

    judge(
        measured.cpu_free,
        cpu_needed,
        f"CPU: {measured.cpu_free:.2f} of {measured.cpu_cores} cores free, "
        f"{cpu_needed:.2f} needed for {each}",
        headroom=True,
        hard=False,
    )
    judge(
        measured.memory_available,
        memory_needed,
        f"memory: {format_size(measured.memory_available)} available, "
        f"{format_size(memory_needed)} needed for {each}",
        headroom=True,
    )
    judge(
        measured.disk_free,
        capacity.disk_free,
        f"disk: {format_size(measured.disk_free)} free at {measured.disk_path}, "
        f"{format_size(capacity.disk_free)} wanted",
        headroom=False,
    )
    ports = f"loopback ports: {measured.ports_bound} of {instances} could be bound"
    if measured.port_error:
        ports += f" ({measured.port_error})"
    findings.append(("fail" if measured.ports_bound < instances else "pass", ports))

    status = worst_status(s for s, _ in findings)
    if status == "pass":
        summary = f"room for {each}: " + "; ".join(text for _, text in findings)
    else:
        summary = "; ".join(text for s, text in findings if s != "pass")
    figures: dict[str, Any] = {
        "instances": instances,
        "cpu_cores": measured.cpu_cores,
        "load_1m": round(measured.load_1m, 3),
        "cpu_free": round(measured.cpu_free, 3),
        "cpu_needed": round(cpu_needed, 3),
        "memory_available_bytes": measured.memory_available,
        "memory_needed_bytes": memory_needed,
        "disk_path": measured.disk_path,
        "disk_free_bytes": measured.disk_free,
        "disk_needed_bytes": capacity.disk_free,
        "ports_needed": instances,
        "ports_bound": measured.ports_bound,
    }
    return CheckResult("capacity", status, summary, figures)


def check_capacity(spec: ServiceSpec, *, instances: int, state_dir: Path) -> CheckResult:
    """Room on this machine for ``instances`` new instances of ``spec`` (measured, then judged)."""
    return _timed(
        lambda: assess_capacity(
            spec.checks.pre.capacity,
            measure_capacity(state_dir, instances=instances),
            instances=instances,
        )
    )


# ---------------------------------------------------------------------------------------------
# Dependencies


def mask_url(url: str) -> str:
    """``url`` with any password (in the authority or a ``password=`` parameter) as ``***``."""
    return redact.mask_url(url)


def check_dependencies(spec: ServiceSpec) -> list[CheckResult]:
    """Probe every dependency of ``spec`` (at the same time); one result each, in spec order."""
    dependencies = spec.checks.pre.dependencies
    if not dependencies:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(dependencies))) as pool:
        return list(pool.map(check_dependency, dependencies))


def check_dependency(dependency: DependencyCheckSpec) -> CheckResult:
    """Probe one dependency for real; ``dependency:<name>`` passes when it answers as expected."""
    probes = {
        "http": _probe_http,
        "tcp": _probe_tcp,
        "postgresql": _probe_postgresql,
        "redis": _probe_redis,
    }
    masked = mask_url(dependency.url)
    figures: dict[str, Any] = {"kind": dependency.kind, "url": masked}
    started = time.perf_counter()
    ok, detail = probes[dependency.kind](dependency, figures)
    elapsed = time.perf_counter() - started
    figures["latency_s"] = round(elapsed, 6)
    if ok:
        summary = f"{dependency.name} ({masked}) answered in {_ms(elapsed)}: {detail}"
    else:
        summary = f"{dependency.name} ({masked}) is not available: {detail}"
    return CheckResult(
        f"dependency:{dependency.name}", "pass" if ok else "fail", summary, figures, elapsed
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _probe_http(dependency: DependencyCheckSpec, figures: dict[str, Any]) -> tuple[bool, str]:
    figures["expect_status"] = dependency.expect_status
    try:
        # Not from the environment: a probe of 127.0.0.1 must not go through HTTP_PROXY.
        with httpx.Client(timeout=dependency.timeout, trust_env=False) as client:
            response = client.get(dependency.url, headers={"User-Agent": _USER_AGENT})
    except httpx.HTTPError as exc:
        return False, describe_error(exc, dependency.timeout)
    figures["status"] = response.status_code
    if response.status_code != dependency.expect_status:
        return False, f"status {response.status_code} (expected {dependency.expect_status})"
    return True, f"status {response.status_code}"


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _probe_tcp(dependency: DependencyCheckSpec, figures: dict[str, Any]) -> tuple[bool, str]:
    host, port = _host_port(dependency.url, 0)
    figures.update(host=host, port=port)
    try:
        with socket.create_connection((host, port), timeout=dependency.timeout):
            pass
    except OSError as exc:
        return False, describe_error(exc, dependency.timeout)
    return True, "connected"


def _probe_postgresql(dependency: DependencyCheckSpec, figures: dict[str, Any]) -> tuple[bool, str]:
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return False, "needs zerodown[postgres]: pip install 'zerodown[postgres]'"
    # libpq waits at least 2 s for a connection whatever it is told; say what really applies.
    connect_timeout = max(_PG_MIN_CONNECT_TIMEOUT_S, math.ceil(dependency.timeout))
    timeout_ms = max(1, math.ceil(dependency.timeout * 1000))
    try:
        # A server-side limit on the query, added to any options the URL already sets.
        options = str(conninfo_to_dict(dependency.url).get("options") or "")
        options = f"{options} -c statement_timeout={timeout_ms}".strip()
        with psycopg.connect(
            dependency.url,
            connect_timeout=connect_timeout,
            options=options,
            autocommit=True,
        ) as connection:
            row = connection.execute("SELECT 1").fetchone()
            version = connection.info.parameter_status("server_version")
    except psycopg.errors.ConnectionTimeout:
        return False, f"timed out after {format_duration(connect_timeout)}"
    except psycopg.Error as exc:
        return False, describe_error(exc, dependency.timeout)
    if row is None or row[0] != 1:
        return False, f"SELECT 1 returned {row!r}"
    figures["server_version"] = version
    return True, f"SELECT 1 on PostgreSQL {version}"


def _probe_redis(dependency: DependencyCheckSpec, figures: dict[str, Any]) -> tuple[bool, str]:
    parts = urlsplit(dependency.url)
    host, port = _host_port(dependency.url, 6379)
    figures.update(host=host, port=port)
    deadline = time.monotonic() + dependency.timeout
    try:
        with socket.create_connection((host, port), timeout=dependency.timeout) as sock:
            if parts.password is not None:
                auth = ["AUTH", unquote(parts.password)]
                if parts.username:
                    auth.insert(1, unquote(parts.username))
                sock.sendall(_resp_command(auth))
                reply = _read_resp_line(sock, deadline)
                if reply != "+OK":
                    return False, f"AUTH refused: {reply[:200]}"
            sock.sendall(_resp_command(["PING"]))
            reply = _read_resp_line(sock, deadline)
    except (OSError, ValueError) as exc:
        return False, describe_error(exc, dependency.timeout)
    if reply == "+PONG":
        return True, "PING answered +PONG"
    if reply.startswith("-"):
        return False, f"PING answered {reply[:200]}"
    return False, f"PING answered {reply[:200]!r}, not +PONG (is it a Redis server?)"


def _resp_command(words: list[str]) -> bytes:
    """A RESP array of bulk strings: how every Redis client sends a command."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_resp_line(sock: socket.socket, deadline: float) -> str:
    """One ``\\r\\n``-terminated reply line; ``TimeoutError`` past ``deadline``."""
    data = b""
    while b"\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(512)
        if not chunk:
            raise ConnectionResetError("closed before answering")
        data += chunk
        if len(data) > 64 * 1024:
            raise ValueError("no end of line in the first 64 KiB of the answer")
    return data.split(b"\r\n", 1)[0].decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# Backup


def check_backup(
    spec: ServiceSpec,
    *,
    spec_dir: Path,
    timeout: float = defaults.DEFAULT_BACKUP_TIMEOUT_SECONDS,
) -> CheckResult:
    """Run the backup command (if any), then measure and hash the newest backup artifact.

    Fails when the command fails or times out, when no file matches ``artifacts``, when the
    newest one is empty, when the command wrote no new one, or (without a command) when it is
    older than ``maxAge``. ``warn`` when the spec configures no backup.
    """
    backup = spec.checks.pre.backup
    if backup is None:
        return CheckResult(
            "backup", "warn", "no backup configured for this service", {"configured": False}
        )
    return _timed(lambda: _check_backup(backup, Path(spec_dir), timeout))


def _check_backup(backup: BackupCheckSpec, spec_dir: Path, timeout: float) -> CheckResult:
    figures: dict[str, Any] = {"configured": True, "artifacts": backup.artifacts}
    started_wall = time.time()
    if backup.command is not None:
        figures["command"] = backup.command
        failure = _run_backup_command(backup.command, spec_dir, timeout, figures)
        if failure:
            return CheckResult("backup", "fail", failure, figures)
    else:
        figures["max_age_s"] = backup.max_age

    newest, matched = _newest_file(spec_dir, backup.artifacts)
    figures["matched_files"] = matched
    if newest is None:
        summary = f"no file matches {backup.artifacts} in {spec_dir}"
        if backup.command is not None:
            summary = f"the backup command succeeded but {summary}"
        return CheckResult("backup", "fail", summary, figures)

    stat = newest.stat()
    age = max(0.0, time.time() - stat.st_mtime)
    shown = _relative(newest, spec_dir)
    figures.update(
        path=str(newest),
        size_bytes=stat.st_size,
        sha256=_sha256(newest),
        age_s=round(age, 3),
    )
    described = f"{shown} ({format_size(stat.st_size)}, sha256 {figures['sha256'][:12]})"
    if stat.st_size == 0:
        return CheckResult("backup", "fail", f"the newest backup {shown} is empty", figures)
    if backup.command is not None:
        if stat.st_mtime < started_wall - _MTIME_SLACK_S:
            return CheckResult(
                "backup",
                "fail",
                f"the backup command succeeded but wrote no new file matching "
                f"{backup.artifacts}: the newest, {shown}, is {format_duration(round(age))} old",
                figures,
            )
        return CheckResult("backup", "pass", f"backup written: {described}", figures)
    if age > backup.max_age:
        return CheckResult(
            "backup",
            "fail",
            f"the newest backup {shown} is {format_duration(round(age))} old, older than "
            f"maxAge {format_duration(backup.max_age)}",
            figures,
        )
    return CheckResult(
        "backup",
        "pass",
        f"recent backup: {described}, {format_duration(round(age))} old "
        f"(maxAge {format_duration(backup.max_age)})",
        figures,
    )


def _run_backup_command(
    command: str, cwd: Path, timeout: float, figures: dict[str, Any]
) -> str | None:
    """Run ``command``; None if it exited 0, else why not. Output goes to ``figures``."""
    # Output goes to a file, not a pipe: a dump printed by mistake cannot fill memory, and a
    # process the command leaves behind cannot keep the check waiting for a pipe to close.
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, so a timeout stops what it started
            )
        except OSError as exc:
            return f"cannot run the backup command in {cwd}: {exc.strerror or exc}"
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
        figures["command_duration_s"] = round(time.perf_counter() - started, 3)
        figures["exit_code"] = code
        size = output.seek(0, os.SEEK_END)
        output.seek(max(0, size - _OUTPUT_TAIL))
        tail = output.read().decode("utf-8", errors="replace")
    figures["output_tail"] = tail
    if code is None:
        return f"the backup command timed out after {format_duration(timeout)}"
    if code != 0:
        last = tail.strip().splitlines()[-1:] or [""]
        reason = f"the backup command failed with exit code {code}"
        return f"{reason}: {last[0][:200]}" if last[0] else reason
    return None


def _newest_file(folder: Path, pattern: str) -> tuple[Path | None, int]:
    """The most recently modified file matching ``pattern`` (relative to ``folder``), and how
    many files match."""
    files: list[tuple[float, str]] = []
    # root_dir rather than joining: brackets in the folder's own name are not a pattern.
    for name in glob.glob(pattern, root_dir=folder, recursive=True):
        path = os.path.join(folder, name)
        with contextlib.suppress(OSError):  # gone between glob and stat
            if os.path.isfile(path):
                files.append((os.stat(path).st_mtime, path))
    if not files:
        return None, 0
    return Path(max(files)[1]), len(files)


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Rollback plan


def check_rollback_plan(
    *,
    previous_revision: int | None,
    previous_version: str | None,
    previous_ready: int,
    replicas: int,
) -> CheckResult:
    """Is there a release to roll back to, and does it serve? Pure.

    ``previous_ready`` is how many instances of the previous release serve (or can be started,
    as the caller knows). ``warn`` for a first release and for a previous release with none.
    """
    figures: dict[str, Any] = {
        "previous_revision": previous_revision,
        "previous_version": previous_version,
        "previous_ready": previous_ready,
        "replicas": replicas,
    }
    if previous_revision is None:
        return CheckResult(
            "rollback-plan", "warn", "nothing to roll back to: first release", figures
        )
    release = f"revision {previous_revision}"
    if previous_version:
        release += f" ({previous_version})"
    if previous_ready <= 0:
        return CheckResult(
            "rollback-plan",
            "warn",
            f"{release} is the rollback target, but none of its instances serves: "
            "a rollback would have to start it from scratch",
            figures,
        )
    summary = f"rollback to {release}: {previous_ready} of {replicas} instances ready"
    if previous_ready < replicas:
        summary += f" (a rollback scales it back to {replicas})"
    return CheckResult("rollback-plan", "pass", summary, figures)


# ---------------------------------------------------------------------------------------------
# All of them


def run_prechecks(
    spec: ServiceSpec,
    *,
    spec_dir: Path,
    state_dir: Path,
    instances: int,
    previous_revision: int | None,
    previous_version: str | None,
    previous_ready: int,
    replicas: int,
) -> list[CheckResult]:
    """Every pre-deployment check in report order: capacity, dependencies, backup, rollback.

    Without dependencies one ``dependencies`` result says so, so the report lists every item.
    """
    results = [check_capacity(spec, instances=instances, state_dir=state_dir)]
    dependencies = check_dependencies(spec)
    results.extend(
        dependencies
        or [CheckResult("dependencies", "pass", "not configured", {"configured": False})]
    )
    results.append(check_backup(spec, spec_dir=spec_dir))
    results.append(
        check_rollback_plan(
            previous_revision=previous_revision,
            previous_version=previous_version,
            previous_ready=previous_ready,
            replicas=replicas,
        )
    )
    return results
