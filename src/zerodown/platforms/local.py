"""The ``local`` platform: instances are processes on this machine, the embedded default.

Each instance is ``/bin/sh -c <command>`` started in its own session (so its own process group)
with stdin from ``/dev/null`` and stdout and stderr appended by the child itself to
``<state_dir>/logs/<service>/<instance-id>.log``. Nothing flows through the controller: when the
controller dies, instances keep serving and keep logging, and a restarted controller adopts them
from the store (see DESIGN.md, "the data plane outlives the controller").

Identity of a process is its PID *and* its start time (``psutil.Process.create_time()``), which is
what ``Instance.started_at`` records. PIDs are reused (``pid_max`` may be as low as 32768), so a
record whose PID is alive but whose start time differs is a different process: it is never
adopted and never signalled.

Children started by this controller are reaped by one small waiter thread each, which also keeps
their exit codes; instances adopted from an earlier controller are not our children and are
watched through psutil (their exit code cannot be known). Exit codes follow the shell convention:
a process killed by signal N reports ``128 + N`` (137 for SIGKILL), as container platforms do.
"""

from __future__ import annotations

import collections
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil

from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import InputError, OperationFailedError, TemporaryError
from zerodown.core.types import Address, InstanceId, ResourceUsage
from zerodown.platforms.base import (
    Instance,
    InstanceRequest,
    InstanceState,
    InstanceStatus,
    LogChunk,
)

__all__ = ["LocalPlatform"]

# Two readings of one process's start time differ by rounding only; different processes that got
# the same PID start at least a scheduler tick apart.
_START_TIME_TOLERANCE = 0.01
_POLL_INTERVAL = 0.05
# After SIGKILL a process group disappears within milliseconds; this bounds the wait if it doesn't.
_KILL_WAIT = 5.0
# At most this much of a log file is read per call, so one call never loads a huge file.
_MAX_LOG_READ = 1 << 20
# Exit records of this many ended children are kept for ``status``.
_KEEP_EXITED = 1024
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class _PortAllocator:
    """Free loopback ports, never the same one twice in a row within this process.

    Binding to port 0 and closing the socket gives a port that is free *now*; until the instance
    binds it, a second ask could get the same port back. The last ``remember`` ports handed out
    are skipped, which closes that window without growing forever.
    """

    def __init__(self, remember: int = 4096) -> None:
        self._lock = threading.Lock()
        self._recent: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._remember = remember

    def take(self, host: str) -> int:
        with self._lock:
            for _ in range(100):
                try:
                    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
                        sock.bind((host, 0))
                        port = int(sock.getsockname()[1])
                except OSError as exc:
                    raise OperationFailedError(
                        f"cannot bind a free port on {host}: {exc.strerror or exc}"
                    ) from exc
                if port not in self._recent:
                    self._recent[port] = None
                    while len(self._recent) > self._remember:
                        self._recent.popitem(last=False)
                    return port
        raise TemporaryError(f"no free port found on {host}", retry_after=1.0)


_ports = _PortAllocator()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@dataclass
class _Child:
    """A process this controller started (so it alone can reap it) and its waiter thread."""

    popen: subprocess.Popen[bytes]
    started_at: float
    waiter: threading.Thread


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _exit_detail(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"


_SHELL_SYNTAX = re.compile(r"[;&|<>`$()\n\\*?{}\[\]~]|^\s*(exec|cd|export)\b")


def shell_line(command: str) -> str:
    """Prefix a plain command with ``exec`` so the instance's PID is the program itself.

    Then SIGTERM reaches the program directly and its own exit code is reported (not the
    shell's 143). Commands using shell syntax (pipes, ``&&``, variables ...) run as written.
    """
    if _SHELL_SYNTAX.search(command):
        return command
    return f"exec {command}"


class LocalPlatform:
    """Instances as process groups on this machine, surviving the controller that started them."""

    name = "local"

    def __init__(
        self, *, state_dir: Path, clock: Clock | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        # Our children by pid, kept after they exit (up to a bound) so status can give exit codes.
        self._children: dict[int, _Child] = {}
        # Process groups seen led by a verified instance leader: only these may be signalled
        # once the leader itself is gone (its orphaned grandchildren keep the group alive).
        self._verified_groups: set[tuple[int, float]] = set()
        self._usage_cache: dict[InstanceId, dict[int, psutil.Process]] = {}

    # -- start -----------------------------------------------------------------------------

    def start(self, request: InstanceRequest) -> Instance:
        """Start ``request.command`` in its own session, logging to a file; return at once."""
        if not _SERVICE_NAME.fullmatch(request.service):
            raise InputError(f"service name {request.service!r} cannot name a log folder")
        workdir = Path(request.workdir) if request.workdir is not None else None
        if workdir is not None and not workdir.is_dir():
            raise InputError(f"workdir {str(workdir)!r} is not a directory")
        port = request.port if request.port is not None else _ports.take(self.host)
        instance_id = InstanceId(
            f"{request.service}-r{request.revision}-{request.slot}-{secrets.token_hex(3)}"
        )
        log_path = self.state_dir / "logs" / request.service / f"{instance_id}.log"
        env = {
            **os.environ,
            **request.env,
            "PORT": str(port),
            "ZERODOWN_SERVICE": request.service,
            "ZERODOWN_VERSION": request.version,
            "ZERODOWN_REVISION": str(request.revision),
            "ZERODOWN_INSTANCE": instance_id,
        }
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file = log_path.open("ab")
        except OSError as exc:
            raise OperationFailedError(
                f"cannot open log file {log_path}: {exc.strerror or exc}"
            ) from exc
        try:
            popen = subprocess.Popen(
                ["/bin/sh", "-c", shell_line(request.command)],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session and group: outlives us, deaf to our signals
                close_fds=True,
            )
        except FileNotFoundError as exc:
            raise InputError(f"cannot start {request.command!r}: {exc.strerror or exc}") from exc
        except OSError as exc:
            raise OperationFailedError(
                f"cannot start {request.command!r}: {exc.strerror or exc}"
            ) from exc
        finally:
            log_file.close()  # the child holds its own descriptor
        # The child cannot be reaped before its waiter starts, so its /proc entry is still there.
        try:
            started_at = psutil.Process(popen.pid).create_time()
        except psutil.Error as exc:  # pragma: no cover - only if /proc is unreadable
            popen.kill()
            popen.wait()
            raise OperationFailedError(f"cannot read the start time of pid {popen.pid}") from exc
        waiter = threading.Thread(target=popen.wait, name=f"zerodown-reap-{popen.pid}", daemon=True)
        with self._lock:
            self._forget_old_children()
            self._children[popen.pid] = _Child(popen=popen, started_at=started_at, waiter=waiter)
            self._verified_groups.add((popen.pid, started_at))
        waiter.start()
        return Instance(
            id=instance_id,
            service=request.service,
            version=request.version,
            revision=request.revision,
            slot=request.slot,
            platform=self.name,
            address=Address(self.host, port),
            pid=popen.pid,
            started_at=started_at,
            log_path=log_path,
        )

    def _forget_old_children(self) -> None:
        """Drop the oldest exit records beyond a bound (call with the lock held)."""
        exited = [
            pid for pid, child in self._children.items() if child.popen.returncode is not None
        ]
        for pid in exited[: max(0, len(exited) - _KEEP_EXITED)]:
            del self._children[pid]

    # -- identity --------------------------------------------------------------------------

    def _child(self, instance: Instance) -> _Child | None:
        if instance.pid is None:
            return None
        with self._lock:
            child = self._children.get(instance.pid)
        if child is None or abs(child.started_at - instance.started_at) > _START_TIME_TOLERANCE:
            return None
        return child

    def _process(self, instance: Instance) -> psutil.Process | None:
        """The live (non-zombie) process of ``instance``, or None if it is gone or was replaced."""
        if instance.pid is None:
            return None
        try:
            proc = psutil.Process(instance.pid)
            if abs(proc.create_time() - instance.started_at) > _START_TIME_TOLERANCE:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.NoSuchProcess:
            return None
        except psutil.Error as exc:
            raise OperationFailedError(f"cannot inspect pid {instance.pid}: {exc}") from exc
        return proc

    def _identity(self, instance: Instance) -> tuple[int, float] | None:
        if instance.pid is None:
            return None
        return (instance.pid, instance.started_at)

    # -- status and adopt ------------------------------------------------------------------

    def status(self, instance: Instance) -> InstanceStatus:
        """RUNNING or EXITED by PID and start time; the exit code when it was our child."""
        if instance.pid is None:
            return InstanceStatus(InstanceState.UNKNOWN, detail="no pid recorded")
        child = self._child(instance)
        if child is not None and child.popen.returncode is not None:
            return self._exited(child)
        try:
            proc = self._process(instance)
        except OperationFailedError as exc:
            return InstanceStatus(InstanceState.UNKNOWN, detail=exc.message)
        if proc is not None:
            return InstanceStatus(InstanceState.RUNNING, detail=f"pid {instance.pid}")
        if child is not None:
            # A zombie waiting for its waiter thread: the exit code is a moment away.
            child.waiter.join(timeout=1.0)
            if child.popen.returncode is not None:
                return self._exited(child)
        return InstanceStatus(InstanceState.EXITED, detail=self._gone_detail(instance))

    def _exited(self, child: _Child) -> InstanceStatus:
        returncode = child.popen.returncode
        assert returncode is not None
        return InstanceStatus(
            InstanceState.EXITED, exit_code=_exit_code(returncode), detail=_exit_detail(returncode)
        )

    def _gone_detail(self, instance: Instance) -> str:
        assert instance.pid is not None
        try:
            proc = psutil.Process(instance.pid)
            if abs(proc.create_time() - instance.started_at) > _START_TIME_TOLERANCE:
                return f"pid {instance.pid} now belongs to another process"
            return f"pid {instance.pid} exited (exit code unknown: not our child)"
        except psutil.Error:
            return f"pid {instance.pid} is gone (exit code unknown: not our child)"

    def adopt(self, instance: Instance) -> bool:
        """True iff the PID is alive, not a zombie, and started when the record says."""
        try:
            proc = self._process(instance)
        except OperationFailedError:
            return False
        if proc is None:
            return False
        identity = self._identity(instance)
        assert identity is not None
        with self._lock:
            self._verified_groups.add(identity)
        return True

    # -- stop ------------------------------------------------------------------------------

    def stop(self, instance: Instance, *, grace: float) -> InstanceStatus:
        """SIGTERM the instance's process group, SIGKILL it after ``grace`` seconds.

        Returns once the group is gone (or, if even SIGKILL does not clear it, after a few more
        seconds with what ``status`` says). Safe to call for an instance that is already gone.
        """
        identity = self._identity(instance)
        if identity is None:
            return self.status(instance)
        terminated = self._signal_group(instance, signal.SIGTERM)
        if terminated and not self._wait_group_gone(instance, grace):
            self._signal_group(instance, signal.SIGKILL)
            self._wait_group_gone(instance, _KILL_WAIT)
        result = self.status(instance)
        if result.state is InstanceState.EXITED:
            with self._lock:
                self._verified_groups.discard(identity)
                self._usage_cache.pop(instance.id, None)
        return result

    def _signal_group(self, instance: Instance, signum: signal.Signals) -> bool:
        """Signal the instance's process group if it is verifiably still ours; True if sent."""
        if instance.pid is None:
            return False
        pgid = instance.pid
        # The leader is alive (or an unreaped zombie) with the recorded start time: the group is
        # the one it created with setsid().
        leader_ok = False
        try:
            proc = psutil.Process(pgid)
            if abs(proc.create_time() - instance.started_at) > _START_TIME_TOLERANCE:
                return False  # PID reused by another process: leave it and its group alone
            leader_ok = True
        except psutil.NoSuchProcess:
            pass
        except psutil.Error as exc:
            raise OperationFailedError(f"cannot inspect pid {pgid}: {exc}") from exc
        if not leader_ok:
            # The leader is gone but its grandchildren may keep the group alive. Linux does not
            # reuse a number while a group of that id exists, so a group we saw led by this very
            # instance is still its group; groups we never verified are left alone.
            with self._lock:
                if (pgid, instance.started_at) not in self._verified_groups:
                    return False
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            return False
        except PermissionError as exc:
            raise OperationFailedError(
                f"not allowed to signal process group {pgid} of {instance.id}"
            ) from exc
        return True

    def _wait_group_gone(self, instance: Instance, timeout: float) -> bool:
        deadline = self._clock.monotonic() + max(timeout, 0.0)
        while True:
            if not self._group_alive(instance):
                return True
            if self._clock.monotonic() >= deadline:
                return False
            self._clock.sleep(_POLL_INTERVAL)

    def _group_alive(self, instance: Instance) -> bool:
        """Does any non-zombie process of the instance's group remain?"""
        assert instance.pid is not None
        pgid = instance.pid
        if self._process(instance) is not None:
            return True
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # Something answers; zombies do too, so look at the members themselves.
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                    return True
            except (OSError, psutil.Error):
                continue
        return False

    # -- resources -------------------------------------------------------------------------

    def resources(self, instance: Instance) -> ResourceUsage | None:
        """CPU, memory and disk I/O summed over the process and its descendants; None if gone.

        CPU needs two samples: the first call for a process reports 0.0 and later calls report
        the use since the previous one. Network use per process is not available locally.
        """
        try:
            leader = self._process(instance)
        except OperationFailedError:
            return None
        if leader is None:
            with self._lock:
                self._usage_cache.pop(instance.id, None)
            return None
        try:
            tree = [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return None
        except psutil.Error as exc:
            raise OperationFailedError(f"cannot inspect pid {leader.pid}: {exc}") from exc
        with self._lock:
            cached = self._usage_cache.get(instance.id, {})
        fresh: dict[int, psutil.Process] = {}
        cpu = 0.0
        rss = 0
        read: int | None = 0
        written: int | None = 0
        leader_seen = False
        for found in tree:
            proc = cached.get(found.pid)
            if proc is None or proc != found:  # psutil compares pid and start time
                proc = found
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(interval=None)
                    rss += proc.memory_info().rss
                    try:
                        io = proc.io_counters()
                        if read is not None and written is not None:
                            read += io.read_bytes
                            written += io.write_bytes
                    except (psutil.AccessDenied, AttributeError):
                        read = written = None
            except psutil.NoSuchProcess:
                continue  # a descendant that ended meanwhile
            except psutil.Error as exc:
                raise OperationFailedError(f"cannot inspect pid {proc.pid}: {exc}") from exc
            fresh[proc.pid] = proc
            leader_seen = leader_seen or proc.pid == leader.pid
        if not leader_seen:
            return None
        with self._lock:
            self._usage_cache[instance.id] = fresh
        total = psutil.virtual_memory().total
        return ResourceUsage(
            cpu_percent=cpu,
            memory_bytes=rss,
            memory_percent=100.0 * rss / total if total else 0.0,
            disk_bytes_read=read,
            disk_bytes_written=written,
        )

    # -- logs ------------------------------------------------------------------------------

    def log_path(self, instance: Instance) -> Path:
        """Where the instance's stdout and stderr go."""
        if instance.log_path is not None:
            return Path(instance.log_path)
        return self.state_dir / "logs" / instance.service / f"{instance.id}.log"

    def read_logs(self, instance: Instance, cursor: str | None) -> LogChunk:
        """Complete lines since byte offset ``cursor``; a partial last line waits for the next call.

        A file that is now shorter than the cursor was truncated (or replaced): reading restarts
        from its beginning. A file that does not exist yet reads as empty.
        """
        offset = _parse_cursor(cursor)
        path = self.log_path(instance)
        try:
            with path.open("rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size < offset:
                    offset = 0
                file.seek(offset)
                data = file.read(_MAX_LOG_READ)
        except FileNotFoundError:
            return LogChunk(lines=[], cursor=str(offset))
        except OSError as exc:
            raise OperationFailedError(f"cannot read log {path}: {exc.strerror or exc}") from exc
        if b"\n" in data:
            complete = data[: data.rindex(b"\n") + 1]
            raw_lines = complete.split(b"\n")[:-1]
        elif len(data) == _MAX_LOG_READ:
            complete = data  # one line longer than a whole read: hand it over in pieces
            raw_lines = [data]
        else:
            return LogChunk(lines=[], cursor=str(offset))  # only a partial line so far
        lines = [line.decode("utf-8", errors="replace").removesuffix("\r") for line in raw_lines]
        return LogChunk(lines=lines, cursor=str(offset + len(complete)))


def _parse_cursor(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    try:
        offset = int(cursor)
    except ValueError:
        raise InputError(f"log cursor {cursor!r} is not a byte offset") from None
    if offset < 0:
        raise InputError(f"log cursor {cursor!r} is negative")
    return offset
