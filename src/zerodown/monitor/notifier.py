"""Routing alerts to receivers, on a thread of its own, with silences and the notification log
kept in the store.

``Notifier`` runs one ``ops.routing.Dispatcher`` (Alertmanager's routing tree, grouping,
waits, inhibition, deduplication) per scope (a service, or the host), all sharing one set of
silences. The monitor's loop only hands it work (``configure``, ``submit``); deliveries, which
may wait on a slow SMTP server or webhook, happen here, so sampling and rule evaluation never
wait for them.

What survives a restart of the controller, as in Alertmanager: the silences (saved when added
or expired) and the notification log (saved after every flush that changed it), so a restarted
controller neither forgets a silence nor repeats a notification it already sent. What survives
a new routing configuration of a scope: its alerts (handed to the new pipeline, which groups
them by the new routes) and its notification log.

Nothing grows without end: resolved alerts no group holds any more are dropped, and log entries
and expired silences are forgotten after five days (``forget``), in memory and in the store.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from zerodown.core.clock import Clock
from zerodown.core.errors import ZerodownError
from zerodown.ops.alerts import Alert
from zerodown.ops.promql import LabelMatcher
from zerodown.ops.routing import (
    AlertmanagerConfig,
    Dispatcher,
    LogEntry,
    Notification,
    Silence,
    Silences,
    deliver,
)
from zerodown.store.monitor import MonitorTables, NotificationLogRecord, SilenceRecord

__all__ = ["Delivery", "Notifier", "StoredSilences"]

log = logging.getLogger(__name__)

IDLE_WAKEUP: Final = 5.0
"""Longest the notifier sleeps with nothing due (it is woken at once by new work)."""

Sender = Callable[[Notification], bool]


@dataclass(frozen=True)
class Delivery:
    """One notification attempt: for which scope, what, whether the receiver took it."""

    scope: str
    notification: Notification
    ok: bool
    seconds: float


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class StoredSilences(Silences):
    """``Silences`` that are safe to share between threads and kept in the store."""

    def __init__(self, *, clock: Clock, records: MonitorTables | None) -> None:
        super().__init__(clock=clock)
        self._lock = threading.Lock()
        self._records = records
        if records is not None:
            for saved in records.list_silences():
                self.restore(
                    Silence(
                        id=saved.id,
                        matchers=tuple(LabelMatcher.create(n, o, v) for n, o, v in saved.matchers),
                        starts_at=_time(saved.starts_at),
                        ends_at=_time(saved.ends_at),
                        created_by=saved.created_by,
                        comment=saved.comment,
                    )
                )

    def _save(self, silence: Silence) -> None:
        if self._records is None:
            return
        self._records.save_silence(
            SilenceRecord(
                id=silence.id,
                matchers=tuple((m.name, m.op, m.value) for m in silence.matchers),
                starts_at=_epoch(silence.starts_at),
                ends_at=_epoch(silence.ends_at),
                created_by=silence.created_by,
                comment=silence.comment,
            )
        )

    def add(
        self,
        matchers: Sequence[LabelMatcher | str],
        *,
        ends_at: datetime,
        created_by: str,
        comment: str,
        starts_at: datetime | None = None,
    ) -> Silence:
        """A new silence, saved before it is returned (``InputError`` for a bad one)."""
        with self._lock:
            silence = super().add(
                matchers,
                ends_at=ends_at,
                created_by=created_by,
                comment=comment,
                starts_at=starts_at,
            )
            try:
                self._save(silence)
            except ZerodownError:
                self._silences.pop(silence.id, None)  # not saved: not in force either
                raise
            return silence

    def expire(self, silence_id: str) -> Silence:
        with self._lock:
            before = next((s for s in super().list() if s.id == silence_id), None)
            silence = super().expire(silence_id)
            try:
                self._save(silence)
            except ZerodownError:
                if before is not None:
                    super().restore(before)
                raise
            return silence

    def list(self, *, state: str | None = None) -> builtins.list[Silence]:
        with self._lock:
            return super().list(state=state)

    def silencing(self, labels: Mapping[str, str]) -> builtins.list[str]:
        with self._lock:
            return super().silencing(labels)

    def restore(self, silence: Silence) -> None:
        with self._lock:
            super().restore(silence)

    def forget(self, *, ended_before: datetime) -> int:
        """Drop silences that ended before ``ended_before`` (Alertmanager keeps them 5 days)."""
        with self._lock:
            gone = [s.id for s in super().list() if s.ends_at < ended_before]
            for silence_id in gone:
                self._silences.pop(silence_id, None)
        if self._records is not None:
            self._records.delete_silences(ended_before=_epoch(ended_before))
        return len(gone)


class Notifier:
    """Alertmanager pipelines per scope, driven by one thread (``run``) or by ``step``."""

    def __init__(
        self,
        *,
        clock: Clock,
        records: MonitorTables | None = None,
        send: Sender | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
        external_url: str = "",
    ) -> None:
        self.clock = clock
        self.records = records
        self.silences = StoredSilences(clock=clock, records=records)
        self.external_url = external_url
        self._send: Sender = send or deliver
        self._on_delivery = on_delivery
        self._queue: deque[tuple[str, str, Any]] = deque()
        self._queue_lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._dispatchers: dict[str, Dispatcher] = {}
        self._saved: dict[str, dict[tuple[str, str, int], LogEntry]] = {}
        self._groups: list[dict[str, Any]] = []
        self._groups_lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        if records is not None:
            for entry in records.notification_log():
                self._saved.setdefault(entry.scope, {})[
                    (entry.group_key, entry.receiver, entry.integration)
                ] = LogEntry(frozenset(entry.firing), frozenset(entry.resolved), _time(entry.at))

    # what the monitor hands over ----------------------------------------------------------
    def configure(self, scope: str, routing: AlertmanagerConfig) -> None:
        """Route ``scope``'s alerts with ``routing`` from now on (its log is kept)."""
        self._put(scope, "configure", routing)

    def drop(self, scope: str) -> None:
        """Stop routing ``scope`` (its service is gone)."""
        self._put(scope, "drop", None)

    def submit(self, scope: str, alerts: Sequence[Alert]) -> None:
        """Alerts of ``scope`` to route (as Prometheus sends them to Alertmanager)."""
        if alerts:
            self._put(scope, "alerts", list(alerts))

    def _put(self, scope: str, kind: str, payload: Any) -> None:
        with self._queue_lock:
            self._queue.append((scope, kind, payload))
        self._wakeup.set()

    # the thread ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    def run(self) -> None:
        """Step until ``stop``; a failing step is logged and the loop goes on."""
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                self.step()
            except Exception:  # the notifier must outlive one bad step
                log.exception("notification step failed")
            self.clock.sleep(self.seconds_to_next(), self._wakeup)

    def seconds_to_next(self) -> float:
        """How long until a group is due (``IDLE_WAKEUP`` at most)."""
        due = [d.next_wakeup() for d in self._dispatchers.values()]
        soonest = min((w for w in due if w is not None), default=None)
        if soonest is None:
            return IDLE_WAKEUP
        return max(0.0, min(IDLE_WAKEUP, (soonest - self.clock.now()).total_seconds()))

    def step(self) -> list[Delivery]:
        """Take the queued work, flush every due group, save the log; the deliveries made."""
        with self._queue_lock:
            work = list(self._queue)
            self._queue.clear()
        for scope, kind, payload in work:
            if kind == "configure":
                self._configure(scope, payload)
            elif kind == "forget":
                try:
                    self._forget(payload)
                except ZerodownError as exc:  # the store is away: forgotten next time
                    log.warning("forgetting old notification log entries failed: %s", exc.message)
            elif kind == "drop":
                self._keep_log(scope)
                self._dispatchers.pop(scope, None)
            elif scope in self._dispatchers:
                self._dispatchers[scope].receive(payload)
            else:
                log.warning("alerts of %r arrived before its routing; dropped", scope)
        self._deliveries = []
        for scope, dispatcher in sorted(self._dispatchers.items()):
            dispatcher.tick()
            self._keep_log(scope)
        deliveries, self._deliveries = self._deliveries, []
        with self._groups_lock:
            self._groups = [
                {"scope": scope, **group}
                for scope, dispatcher in sorted(self._dispatchers.items())
                for group in dispatcher.groups()
            ]
        return deliveries

    def groups(self) -> list[dict[str, Any]]:
        """The aggregation groups of every scope (as of the last step)."""
        with self._groups_lock:
            return list(self._groups)

    def held(self, scope: str) -> tuple[int, int]:
        """How many alerts and notification log entries ``scope``'s pipeline holds (read on
        the notifier's thread, or with it stopped)."""
        dispatcher = self._dispatchers.get(scope)
        if dispatcher is None:
            return 0, 0
        return len(dispatcher.alerts()), len(dispatcher.notification_log())

    # internals -----------------------------------------------------------------------------
    def _configure(self, scope: str, routing: AlertmanagerConfig) -> None:
        self._keep_log(scope)
        previous = self._dispatchers.get(scope)
        dispatcher = Dispatcher(
            routing,
            clock=self.clock,
            send=lambda notification: self._deliver(scope, notification),
            silences=self.silences,
            external_url=self.external_url,
        )
        dispatcher.restore_notification_log(self._saved.get(scope, {}))
        if previous is not None:
            # Alertmanager keeps its alerts across a reload and groups them by the new routes;
            # the notification log then tells each group what its receivers already know.
            dispatcher.receive(previous.alerts())
        self._dispatchers[scope] = dispatcher

    def _deliver(self, scope: str, notification: Notification) -> bool:
        started = time.monotonic()
        try:
            ok = bool(self._send(notification))
        except Exception:  # a sender must answer, not raise; count it as a failed delivery
            log.exception("delivery to %s failed", notification.receiver)
            ok = False
        delivery = Delivery(scope, notification, ok, time.monotonic() - started)
        self._deliveries.append(delivery)
        if self._on_delivery is not None:
            try:
                self._on_delivery(delivery)
            except Exception:
                log.exception("recording a delivery failed")
        return ok

    def _keep_log(self, scope: str) -> None:
        """Save the entries of ``scope``'s notification log that changed since last saved."""
        dispatcher = self._dispatchers.get(scope)
        if dispatcher is None:
            return
        entries = dispatcher.notification_log()
        saved = self._saved.setdefault(scope, {})
        changed = {key: entry for key, entry in entries.items() if saved.get(key) != entry}
        if not changed:
            return
        if self.records is not None:
            try:
                self.records.save_notification_log(
                    [
                        NotificationLogRecord(
                            scope=scope,
                            group_key=group_key,
                            receiver=receiver,
                            integration=integration,
                            firing=tuple(sorted(entry.firing)),
                            resolved=tuple(sorted(entry.resolved)),
                            at=_epoch(entry.at),
                        )
                        for (group_key, receiver, integration), entry in changed.items()
                    ]
                )
            except ZerodownError as exc:  # saved at the next step
                log.warning("saving the notification log failed: %s", exc.message)
                return
        saved.update(changed)

    def forget_log(self, *, before: datetime) -> None:
        """Drop log entries older than ``before`` (5 days, as Alertmanager) from memory and the
        store, and resolved alerts no group holds any more (done at the notifier's next step,
        on its own thread)."""
        self._put("", "forget", before)

    def _forget(self, before: datetime) -> None:
        alerts = entries = 0
        for dispatcher in self._dispatchers.values():
            gone_alerts, gone_entries = dispatcher.forget(log_before=before)
            alerts += gone_alerts
            entries += gone_entries
        for scope in list(self._saved):
            saved = self._saved[scope]
            for key in [key for key, entry in saved.items() if entry.at < before]:
                del saved[key]
            if not saved and scope not in self._dispatchers:
                del self._saved[scope]
        if alerts or entries:
            log.debug("notifier forgot %d resolved alerts and %d log entries", alerts, entries)
        if self.records is not None:
            self.records.delete_notification_log(before=_epoch(before))
