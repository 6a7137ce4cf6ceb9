"""The monitor of ``zerodown serve``: after a deployment, the service stays watched.

One thread (``Monitor.run``) does, round after round:

1. **Configuration.** Every few seconds it reads the services from the store and, per service,
   the ``monitor:`` section of the spec being served (``config.py``): sampling interval,
   retention, rule files, routing. A scope whose configuration changed gets a new rule
   evaluator and a new routing pipeline; alerts of rules that did not change keep their states
   (as in Prometheus), those of rules that are gone are resolved.
2. **Sampling.** Each service at its own interval, the host at the shortest one: the data
   plane's per-version counters, health, restarts and resource use of every instance, the
   host's CPU, memory, disk and network, and every registered ``Collector``'s samples
   (``collect.py``). They go to memory and to the store (``history.py``).
3. **Rules.** Each scope's rule groups are evaluated at their own interval (Prometheus'
   alert states, ``ops/alerts.py``) over that scope's series; alerts due for sending go to the
   notifier (``notifier.py``: its own thread, Alertmanager's semantics); firing and resolved
   transitions go to the service's event log; a ``critical`` alert opens an incident (keyed by
   the alert's fingerprint) and its resolution moves that incident to ``recovered``. The
   alerts' states are saved in the store whenever they change and taken back at start (as
   Prometheus' ``ALERTS_FOR_STATE``), so a restart neither restarts ``for`` timers nor leaves
   an incident open whose alert resolved meanwhile.
4. **Housekeeping**, once a minute: one-minute aggregates, retention, forgetting expired
   silences, old notification log entries and resolved alerts.

One bad service, source or rule never stops the round for the others: each failure is logged
once (with its traceback when unexpected) and counted in ``zerodown_monitor_errors_total``.

``exposition()`` (``GET /metrics``) reads the data plane and health afresh, and the slower
figures (resource use, host) as of the last round, in Prometheus' text format.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from zerodown.core.clock import Clock
from zerodown.core.errors import InputError, SpecError, ZerodownError
from zerodown.core.samples import Collector, MetricSample
from zerodown.core.types import ServiceName
from zerodown.engine.reconciler import ACTIVE_STATUSES, LIVE_STATES, record_to_instance
from zerodown.incidents import IncidentBook
from zerodown.incidents.lifecycle import severity_from_label
from zerodown.metrics.system import HostSampler
from zerodown.monitor import collect
from zerodown.monitor.config import (
    HOST_SCOPE,
    MAX_RULE_LOOKBACK,
    ScopeConfig,
    host_config,
    service_config,
)
from zerodown.monitor.exposition import render, sample_problem
from zerodown.monitor.history import DROP_REASONS, SeriesHistory
from zerodown.monitor.notifier import Delivery, Notifier, Sender
from zerodown.monitor.query import QUERY_METRICS, service_figures
from zerodown.ops.alerts import (
    Alert,
    AlertRule,
    AlertState,
    RuleEvaluator,
    SavedAlert,
    with_generator_url,
)
from zerodown.ops.promql import LabelMatcher
from zerodown.ops.routing import Silence, fingerprint
from zerodown.ops.series import LabelSet, Matcher, SeriesStore
from zerodown.platforms.base import Platform
from zerodown.spec import ServiceSpec, parse_spec
from zerodown.spec.defaults import (
    DEFAULT_MONITOR_INTERVAL_SECONDS,
    DEFAULT_MONITOR_RAW_RETENTION_SECONDS,
    DEFAULT_MONITOR_RETENTION_SECONDS,
)
from zerodown.spec.models import MonitorSpec
from zerodown.store.base import InstanceRecord, ReleaseRecord, ServiceRecord, Store
from zerodown.store.monitor import AlertStateRecord, MonitorTables
from zerodown.traffic.base import TrafficCounts, TrafficRouter

__all__ = ["HealthLookup", "Monitor"]

log = logging.getLogger(__name__)

CONFIG_REFRESH: Final = 5.0
"""Seconds between looks at the services and their monitor configuration."""
HOUSEKEEPING_INTERVAL: Final = 60.0
RECENT_RELEASE: Final = 15 * 60.0
"""A release that ended is still sampled this long (its last requests count in the rules)."""
MEMORY_RETENTION: Final = 2 * 3600.0
"""Samples kept in memory for the rules, at least."""
LOOKBACK_MARGIN: Final = 600.0
"""Kept in memory beyond the longest rule's reach (so it has whole windows after a restart)."""
MAX_MEMORY_RETENTION: Final = MAX_RULE_LOOKBACK + LOOKBACK_MARGIN
"""Samples kept in memory, at most: the longest a rule may read (``MAX_RULE_LOOKBACK``, 6 h;
longer rules are refused when their file is loaded) plus the margin."""
EXPIRED_RETENTION: Final = 5 * 86400.0
"""Expired silences and old notification log entries are forgotten after this (as
Alertmanager's ``--data.retention``)."""
MAX_SLEEP: Final = 5.0
MAX_LOGGED_FAILURES: Final = 1000
INCIDENT_ACTOR: Final = "zerodown monitor"
_GROUP: Final = re.compile(r"r(\d+)")

HealthLookup = Callable[[str], str | None]
"""The health checker's state of a live instance (``healthy``, ``unhealthy`` ...) by id."""


class _ScopeSeries(SeriesStore):
    """The series of one scope, read through from the monitor's store: those whose
    ``service`` label is the scope's name (for the host scope, those without one)."""

    def __init__(self, base: SeriesStore, scope: str) -> None:
        super().__init__(retention=base.retention)
        self._base = base
        self._only = LabelMatcher.create("service", "=", scope)

    def select(
        self, matchers: Iterable[Matcher], *, start: float, end: float
    ) -> list[tuple[LabelSet, list[tuple[float, float]]]]:
        return self._base.select([*matchers, self._only], start=start, end=end)


@dataclass
class _Scope:
    config: ScopeConfig
    evaluator: RuleEvaluator
    stamp: object
    rules: dict[str, AlertRule]
    next_sample: float = 0.0
    next_rules: dict[str, float] = field(default_factory=dict)
    states: dict[tuple[str, LabelSet], AlertState] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    saved: tuple[object, ...] | None = None
    """What was last saved of the evaluator's alerts (None: not saved yet)."""
    check_incidents: bool = False
    """Open incidents of alerts are checked after the next evaluation (after a start)."""


def _signature(alerts: Sequence[SavedAlert]) -> tuple[object, ...]:
    """What of the evaluator's alerts is worth saving when it changes (not the value, nor the
    annotations or send times, which change at every evaluation or send)."""
    return tuple(
        (a.rule_id, a.labels, a.state, a.active_at, a.fired_at, a.resolved_at, a.keep_firing_since)
        for a in alerts
    )


def _record(scope: str, alert: SavedAlert) -> AlertStateRecord:
    return AlertStateRecord(
        scope=scope,
        rule_id=alert.rule_id,
        rule=alert.rule,
        fingerprint=fingerprint(alert.labels),
        labels=alert.labels,
        annotations=alert.annotations,
        state=alert.state.value,
        value=alert.value,
        active_at=alert.active_at,
        fired_at=alert.fired_at,
        resolved_at=alert.resolved_at,
        keep_firing_since=alert.keep_firing_since,
    )


def _saved(record: AlertStateRecord) -> SavedAlert:
    return SavedAlert(
        rule_id=record.rule_id,
        rule=record.rule,
        labels=record.labels,
        annotations=record.annotations,
        state=AlertState(record.state),
        value=record.value,
        active_at=record.active_at,
        fired_at=record.fired_at,
        resolved_at=record.resolved_at,
        keep_firing_since=record.keep_firing_since,
    )


def _mountpoint(path: Path) -> str:
    current = path.resolve()
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return str(current)


def _file_stamps(spec: ServiceSpec, spec_dir: Path) -> tuple[tuple[str, int, int], ...]:
    names = [
        *spec.monitor.rules,
        *([spec.monitor.alertmanager] if spec.monitor.alertmanager else []),
    ]
    stamps = []
    for name in names:
        path = Path(name).expanduser()
        path = path if path.is_absolute() else spec_dir / path
        try:
            stat = path.stat()
            stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append((str(path), -1, -1))
    return tuple(stamps)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class Monitor:
    """Samples, stores, evaluates and notifies for every service of one controller."""

    def __init__(
        self,
        *,
        store: Store,
        router: TrafficRouter | None,
        platforms: Mapping[str, Platform],
        clock: Clock,
        state_dir: Path,
        health: HealthLookup | None = None,
        incidents: IncidentBook | None = None,
        send: Sender | None = None,
    ) -> None:
        self.store = store
        self.records: MonitorTables | None = store if isinstance(store, MonitorTables) else None
        self.router = router
        self.platforms = platforms
        self.clock = clock
        self.health = health or (lambda instance_id: None)
        self.incidents = incidents
        self.history = SeriesHistory(self.records, memory_retention=MEMORY_RETENTION)
        self.notifier = Notifier(
            clock=clock, records=self.records, send=send, on_delivery=self._delivered
        )
        self._external_url = ""
        self._collectors: list[Collector] = []
        self._scopes: dict[str, _Scope] = {}
        self._lock = threading.Lock()
        self._specs: dict[str, ServiceSpec] = {}
        self._failed_stamps: dict[str, object] = {}
        self._usage: dict[str, list[MetricSample]] = {}
        self._host: list[MetricSample] = []
        self._reported_problems: set[str] = set()
        self._notifications: dict[tuple[str, str, str], int] = {}
        self._notifications_lock = threading.Lock()
        self._next_config = 0.0
        self._next_housekeeping = 0.0
        self._known_services: set[str] = set()
        self._host_sampler = HostSampler(disk_path=state_dir if state_dir.exists() else "/")
        self._hostname = socket.gethostname()
        self._mount = _mountpoint(state_dir if state_dir.exists() else Path("/"))
        self._pool: ThreadPoolExecutor | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        self._restored = False
        self._restored_states: dict[str, list[SavedAlert]] | None = None
        self._failures: dict[tuple[str, str], int] = {}
        self._logged_failures: set[tuple[str, str, str]] = set()
        self._failures_lock = threading.Lock()

    # wiring --------------------------------------------------------------------------------
    @property
    def external_url(self) -> str:
        """The controller's URL: alerts link back to it (``generatorURL``, ``externalURL``)."""
        return self._external_url

    @external_url.setter
    def external_url(self, url: str) -> None:
        self._external_url = url.rstrip("/")
        self.notifier.external_url = self._external_url

    def wake(self) -> None:
        """Look at the services now (one was brought up, deployed or stopped)."""
        self._next_config = 0.0
        self._wakeup.set()

    def add_collector(self, collector: Collector) -> None:
        """Sample ``collector`` with the host at every round and expose it at ``/metrics``."""
        self._collectors.append(collector)

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Run the monitor and the notifier on threads of their own."""
        if self._threads:
            return
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self.run, name="monitor", daemon=True),
            threading.Thread(target=self.notifier.run, name="notifier", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop both threads and write what is still queued."""
        self._stopping.set()
        self._wakeup.set()
        self.notifier.stop()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        try:
            self.history.flush()
        except Exception:  # the store may be closing; the samples of the last round are lost
            log.exception("writing the last monitor samples failed")

    def run(self) -> None:
        """Round after round until ``stop``; a failing round is logged and the next one runs."""
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                wait = self.tick()
            except Exception:  # the monitor must outlive one bad round
                log.exception("monitor round failed")
                wait = MAX_SLEEP
            self.clock.sleep(wait, self._wakeup)

    # one round -----------------------------------------------------------------------------
    def tick(self) -> float:
        """Do what is due now; the seconds until something is due again."""
        now = self.clock.now().timestamp()
        if now >= self._next_config or self._services_changed():
            self._refresh(now)
            self._next_config = now + CONFIG_REFRESH
        if not self._restored:  # once the rules are known: they say how far back to load
            self._restored = True
            try:
                restored = self.history.restore(now=now)
                if restored:
                    log.info("monitor: %d recent samples restored", restored)
            except ZerodownError as exc:
                log.warning("monitor: recent samples not restored: %s", exc.message)
        for name, scope in self._scope_items():
            if now >= scope.next_sample:
                self._sample(name, now)
                scope.next_sample = max(scope.next_sample + scope.config.settings.interval, now)
        self.history.flush()
        for name, scope in self._scope_items():
            self._evaluate(name, scope, now)
        if now >= self._next_housekeeping:
            self._housekeeping(now)
            self._next_housekeeping = now + HOUSEKEEPING_INTERVAL
        due = [self._next_config, self._next_housekeeping]
        for _, scope in self._scope_items():
            due.append(scope.next_sample)
            due.extend(scope.next_rules.values())
        return max(0.0, min(MAX_SLEEP, min(due) - now))

    def _services_changed(self) -> bool:
        return self._known_services != {str(s.name) for s in self.store.list_services()}

    def _scope_items(self) -> list[tuple[str, _Scope]]:
        with self._lock:
            return sorted(self._scopes.items())

    # configuration -------------------------------------------------------------------------
    def _spec_of(self, service: ServiceRecord) -> tuple[ServiceSpec, str] | None:
        """The spec of the release rolling out or serving (else the newest), and its hash."""
        releases = self.store.list_releases(service.name, limit=50)
        current = next((r for r in releases if r.status in ACTIVE_STATUSES), None)
        current = current or (releases[0] if releases else None)
        if current is None:
            return None
        spec = self._specs.get(current.spec_hash)
        if spec is None:
            spec = parse_spec(current.spec_text, filename=service.spec_path).spec
            if len(self._specs) > 256:
                self._specs.clear()
            self._specs[current.spec_hash] = spec
        return spec, current.spec_hash

    def _refresh(self, now: float) -> None:
        seen: set[str] = set()
        webhooks: list[str] = []
        intervals: list[float] = []
        services = self.store.list_services()
        self._known_services = {str(s.name) for s in services}
        for service in services:
            name = str(service.name)
            try:
                self._refresh_service(service, now, seen, webhooks)
            except Exception as exc:  # one service's configuration must not stop the others
                self._failed("config", name, exc)
                if name in self._scopes:
                    seen.add(name)
            if name in self._scopes:
                intervals.append(self._scopes[name].config.settings.interval)
        for gone in sorted(set(self._scopes) - seen - {HOST_SCOPE}):
            with self._lock:
                self._scopes.pop(gone, None)
            self.notifier.drop(gone)
            self.history.forget_source(gone, now)
            self._usage.pop(gone, None)
            self._forget_states(gone)
        restored = self._restored_states or {}  # saved alerts of services deleted meanwhile
        for gone in sorted(set(restored) - self._known_services - {HOST_SCOPE}):
            del restored[gone]
            self._forget_states(gone)
        host = host_config(
            webhooks, interval=min(intervals, default=DEFAULT_MONITOR_INTERVAL_SECONDS)
        )
        current = self._scopes.get(HOST_SCOPE)
        if current is None or current.config.fingerprint != host.fingerprint:
            self._install(HOST_SCOPE, host, host.fingerprint, now)
        self._fit_memory()

    def _refresh_service(
        self, service: ServiceRecord, now: float, seen: set[str], webhooks: list[str]
    ) -> None:
        name = str(service.name)
        try:
            found = self._spec_of(service)
        except ZerodownError as exc:
            log.warning("monitor: spec of %s unreadable: %s", name, exc.message)
            found = None
        if found is None:
            if name in self._scopes:
                seen.add(name)
            return
        seen.add(name)
        spec, spec_hash = found
        webhooks.extend(spec.notify.webhooks)
        spec_dir = Path(service.spec_path).parent
        stamp = (spec_hash, _file_stamps(spec, spec_dir))
        scope = self._scopes.get(name)
        if scope is not None and scope.stamp == stamp:
            return
        try:
            config = service_config(spec, spec_dir)
        except ZerodownError as exc:
            self._config_failed(name, stamp, exc)
            if scope is not None:
                scope.stamp = stamp  # keep watching with the configuration that worked
            return
        if scope is not None and scope.config.fingerprint == config.fingerprint:
            scope.stamp = stamp  # a new release, the same monitoring: alerts keep state
        else:
            self._install(name, config, stamp, now)

    def _fit_memory(self) -> None:
        """Keep in memory what the rules of every scope read, and no more (within bounds)."""
        longest = max((scope.config.lookback for _, scope in self._scope_items()), default=0.0)
        self.history.memory.retention = min(
            MAX_MEMORY_RETENTION, max(MEMORY_RETENTION, longest + LOOKBACK_MARGIN)
        )

    def _install(self, name: str, config: ScopeConfig, stamp: object, now: float) -> None:
        """Run ``config`` for scope ``name`` from now on. The alerts of its rules that did not
        change carry on (from the configuration it replaces, or after a start from the store);
        those of rules that are gone are resolved."""
        evaluator = RuleEvaluator(
            config.groups,
            _ScopeSeries(self.history.memory, name),
            external_url=self._external_url,
        )
        previous = self._scopes.get(name)
        if previous is not None:
            carried = previous.evaluator.saved_alerts()
        else:
            carried = self._states_at_start(name)
        ended = evaluator.adopt(carried, now=now)
        alerts = evaluator.alerts()
        scope = _Scope(
            config=config,
            evaluator=evaluator,
            stamp=stamp,
            rules={rule.name: rule for group in config.groups for rule in group.rules},
            next_sample=previous.next_sample if previous is not None else now,
            states={(a.rule, a.labels): a.state for a in alerts},
            alerts=alerts,
            saved=previous.saved if previous is not None else _signature(carried),
            check_incidents=previous is None,
        )
        self.notifier.configure(name, config.routing)
        with self._lock:
            self._scopes[name] = scope
        self._failed_stamps.pop(name, None)
        if previous is not None:
            log.info("monitor: configuration of %s reloaded", name or "the host")
        if ended:
            why = "its rule was removed or changed"
            for alert in ended:
                self._note(name, scope, alert, fired=False, why=why)
            url = f"{self._external_url}/v1/alerts" if self._external_url else ""
            self.notifier.submit(name, [with_generator_url(a, url) for a in ended])
        self._save_states(name, scope)

    # alert states in the store ---------------------------------------------------------------
    def _states_at_start(self, name: str) -> list[SavedAlert]:
        """The alerts ``name``'s evaluator held when the controller stopped (read once)."""
        if self._restored_states is None:
            self._restored_states = {}
            if self.records is not None:
                try:
                    for record in self.records.alert_states():
                        self._restored_states.setdefault(record.scope, []).append(_saved(record))
                except (ZerodownError, ValueError) as exc:
                    log.warning("monitor: alert states not restored: %s", exc)
        return self._restored_states.pop(name, [])

    def _save_states(self, name: str, scope: _Scope) -> None:
        """Save the scope's alerts if their states changed since last saved."""
        if self.records is None:
            return
        alerts = scope.evaluator.saved_alerts()
        signature = _signature(alerts)
        if signature == scope.saved:
            return
        try:
            self.records.save_alert_states(name, [_record(name, a) for a in alerts])
        except ZerodownError as exc:  # saved at the next evaluation
            self._failed("save_alerts", name, exc)
            return
        scope.saved = signature

    def _forget_states(self, name: str) -> None:
        if self.records is None:
            return
        try:
            self.records.save_alert_states(name, [])
        except ZerodownError as exc:
            self._failed("save_alerts", name, exc)

    def _config_failed(self, name: str, stamp: object, exc: ZerodownError) -> None:
        if self._failed_stamps.get(name) == stamp:
            return
        self._failed_stamps[name] = stamp
        message = exc.message
        if isinstance(exc, SpecError):
            message = "; ".join(problem.render() for problem in exc.problems)
        log.warning("monitor: configuration of %s refused: %s", name, message)
        self._event(name, "monitor.config_failed", f"monitor configuration refused: {message}")

    # sampling -------------------------------------------------------------------------------
    def _sample(self, name: str, now: float) -> None:
        """One round of ``name``'s samples (of each of the host's sources in turn); a failure is
        logged and counted, and the other scopes and sources are sampled all the same."""
        if name == HOST_SCOPE:
            sources: list[tuple[str, Callable[[], list[MetricSample]]]] = [
                ("host", self._host_samples),
                ("collectors", self._collected),
                ("monitor", self._own_samples),
            ]
        else:
            sources = [(name, lambda: self._service_samples(name, now))]
        for source, take in sources:
            try:
                samples = take()
            except Exception as exc:  # one source must not stop the others
                self._failed("sample", source if name == HOST_SCOPE else name, exc)
                continue
            self.history.record(source, samples, now)

    def _host_samples(self) -> list[MetricSample]:
        self._host = collect.host_samples(self._hostname, self._mount, self._host_sampler.sample())
        return self._host

    def _service_samples(self, name: str, now: float) -> list[MetricSample]:
        releases = self.store.list_releases(ServiceName(name), limit=50)
        instances = self.store.list_instances(ServiceName(name), states=(*LIVE_STATES, "crashed"))
        samples = self._fresh_samples(name, releases, instances, now)
        self._usage[name] = self._usage_samples(name, instances)
        return [*samples, *self._usage[name]]

    def _failed(self, stage: str, scope: str, exc: BaseException) -> None:
        """Count a failure of ``stage`` for ``scope``; log each distinct one once (with its
        traceback if it is not one of zerodown's own errors)."""
        where = scope or "host"
        cause = (stage, where, f"{type(exc).__name__}: {exc}")
        with self._failures_lock:  # also called from the API's threads (exposition)
            self._failures[(stage, where)] = self._failures.get((stage, where), 0) + 1
            if cause in self._logged_failures:
                return
            if len(self._logged_failures) >= MAX_LOGGED_FAILURES:
                self._logged_failures.clear()
            self._logged_failures.add(cause)
        if isinstance(exc, ZerodownError):
            log.warning("monitor: %s of %s failed: %s", stage, where, exc.message)
        else:
            log.error("monitor: %s of %s failed", stage, where, exc_info=exc)

    def _fresh_samples(
        self,
        service: str,
        releases: Sequence[ReleaseRecord],
        instances: Sequence[InstanceRecord],
        now: float,
    ) -> list[MetricSample]:
        """The data plane's counters, the baseline and the instances' health of ``service``."""
        out: list[MetricSample] = []
        by_revision = {int(r.revision): r for r in releases}
        if self.router is not None:
            try:
                metrics = self.router.metrics(service)
            except ZerodownError:
                metrics = None  # not routed (yet, or any more), or the data plane is away
            if metrics is not None:
                versions: dict[str, list[TrafficCounts]] = {}
                for group, counts in metrics.groups.items():
                    match = _GROUP.fullmatch(group)
                    release = by_revision.get(int(match.group(1))) if match else None
                    if release is None or not self._sampled(release, now):
                        continue
                    versions.setdefault(str(release.version), []).append(counts)
                out.extend(collect.traffic_samples(service, versions))
        serving = next((r for r in releases if str(r.status) == "succeeded"), None)
        if serving is not None and isinstance(serving.state.get("recorded"), Mapping):
            out.extend(collect.baseline_samples(service, serving.state["recorded"]))
        health = {str(i.id): self.health(i.id) or "" for i in instances}
        out.extend(collect.instance_samples(service, instances, health))
        return out

    @staticmethod
    def _sampled(release: ReleaseRecord, now: float) -> bool:
        if release.status in ACTIVE_STATUSES or release.finished_at is None:
            return True
        return now - release.finished_at.timestamp() < RECENT_RELEASE

    def _usage_samples(
        self, service: str, instances: Sequence[InstanceRecord]
    ) -> list[MetricSample]:
        live = [i for i in instances if i.state in LIVE_STATES and i.platform in self.platforms]
        if not live:
            return []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="monitor-usage")

        def read(record: InstanceRecord) -> list[MetricSample]:
            try:
                usage = self.platforms[record.platform].resources(record_to_instance(record))
            except ZerodownError:
                return []
            except Exception as exc:  # a platform's bug costs that instance's figures only
                self._failed("usage", service, exc)
                return []
            return collect.usage_samples(service, record, usage) if usage is not None else []

        return [sample for part in self._pool.map(read, live) for sample in part]

    def _collected(self) -> list[MetricSample]:
        out: list[MetricSample] = []
        for collector in list(self._collectors):
            try:
                samples = list(collector())
            except Exception:  # a collector must not raise; one that does is skipped
                log.exception("metrics collector %r failed", collector)
                continue
            for sample in samples:
                problem = sample_problem(sample)
                if problem is None:
                    out.append(sample)
                elif problem not in self._reported_problems:
                    if len(self._reported_problems) >= MAX_LOGGED_FAILURES:
                        self._reported_problems.clear()
                    self._reported_problems.add(problem)
                    log.warning("monitor: sample left out: %s", problem)
        return out

    def _own_samples(self) -> list[MetricSample]:
        """The monitor's own series: alerts (as Prometheus' ``ALERTS``) and notifications."""
        out = []
        for _, scope in self._scope_items():
            for alert in scope.alerts:
                if alert.state is AlertState.INACTIVE:
                    continue
                labels = {**alert.label_map, "alertstate": alert.state.value}
                out.append(
                    MetricSample(
                        name="zerodown_alerts",
                        value=1.0,
                        labels=labels,
                        help="Alerts pending or firing (1), with their labels.",
                    )
                )
        with self._notifications_lock:
            counted = sorted(self._notifications.items())
        for (receiver, integration, outcome), count in counted:
            out.append(
                MetricSample(
                    name="zerodown_notifications_total",
                    value=float(count),
                    kind="counter",
                    labels={"receiver": receiver, "integration": integration, "outcome": outcome},
                    help="Notifications sent to receivers, by outcome (sent or failed).",
                )
            )
        for reason in DROP_REASONS:
            out.append(
                MetricSample(
                    name="zerodown_monitor_samples_dropped_total",
                    value=float(self.history.dropped.get(reason, 0)),
                    kind="counter",
                    labels={"reason": reason},
                    help="Samples the monitor could not store (refused by the store, the queue "
                    "full during an outage, labels too long).",
                )
            )
        out.append(
            MetricSample(
                name="zerodown_monitor_samples_queued",
                value=float(self.history.queued),
                help="Samples waiting to be written to the store.",
            )
        )
        with self._failures_lock:
            failures = sorted(self._failures.items())
        for (stage, where), count in failures:
            out.append(
                MetricSample(
                    name="zerodown_monitor_errors_total",
                    value=float(count),
                    kind="counter",
                    labels={"stage": stage, "scope": where},
                    help="Failures of the monitor by stage (config, sample, usage, rules, "
                    "save_alerts, incidents, housekeeping, exposition) and scope (a service, "
                    "or host).",
                )
            )
        return out

    # rules ---------------------------------------------------------------------------------
    def _evaluate(self, name: str, scope: _Scope, now: float) -> None:
        due = [g for g in scope.config.groups if now >= scope.next_rules.get(g.name, 0.0) - 1e-6]
        if not due:
            return
        for group in due:
            scope.next_rules[group.name] = now + group.interval
        try:
            alerts = scope.evaluator.evaluate(now)
        except Exception as exc:  # one scope's rules must not stop the others'
            self._failed("rules", name, exc)
            return
        for rule, error in scope.evaluator.errors().items():
            log.debug("monitor: rule %s of %s failed: %s", rule, name or "the host", error)
        self._transitions(name, scope, alerts)
        scope.alerts = alerts
        self._save_states(name, scope)
        if scope.check_incidents:
            self._check_incidents(name, scope)
        to_send = scope.evaluator.alerts_to_send(now)
        if to_send:
            url = f"{self._external_url}/v1/alerts" if self._external_url else ""
            self.notifier.submit(name, [with_generator_url(a, url) for a in to_send])

    def _transitions(self, name: str, scope: _Scope, alerts: list[Alert]) -> None:
        current = {(a.rule, a.labels): a for a in alerts}
        for key, alert in current.items():
            before = scope.states.get(key)
            if alert.state is AlertState.FIRING and before is not AlertState.FIRING:
                self._note(name, scope, alert, fired=True)
            elif alert.state is AlertState.INACTIVE and before is AlertState.FIRING:
                self._note(name, scope, alert, fired=False)
        scope.states = {key: alert.state for key, alert in current.items()}

    def _note(
        self, name: str, scope: _Scope, alert: Alert, *, fired: bool, why: str | None = None
    ) -> None:
        """Record that ``alert`` fired or resolved (event, incident); a failure is logged."""
        try:
            if fired:
                self._fired(name, scope, alert)
            else:
                self._resolved(name, alert, why=why)
        except ZerodownError as exc:
            log.warning("monitor: recording alert %s failed: %s", alert.rule, exc.message)
        except Exception:  # a bug here must not stop the other alerts being recorded
            log.exception("monitor: recording alert %s failed", alert.rule)

    def _check_incidents(self, name: str, scope: _Scope) -> None:
        """After a start, recover the open incidents of alerts that are neither pending nor
        firing now: their alert resolved while the controller was down (and its state was not
        saved, or its rule is gone). Incidents of rules that failed to evaluate wait."""
        scope.check_incidents = False
        if self.incidents is None or name == HOST_SCOPE:
            return
        errors = scope.evaluator.errors()
        active = {fingerprint(a.labels) for a in scope.alerts if a.state is not AlertState.INACTIVE}
        try:
            records = self.incidents.list(name, open_only=True)
        except ZerodownError as exc:
            scope.check_incidents = True
            self._failed("incidents", name, exc)
            return
        for record in records:
            if not record.source.startswith("alert:") or record.key in active:
                continue
            rule = record.source.removeprefix("alert:")
            if rule in errors:
                scope.check_incidents = True
                continue
            why = (
                "its rule no longer exists"
                if rule not in scope.rules
                else "its rule found nothing at the first evaluation"
            )
            note = f"alert {rule} not firing after the controller restarted ({why})"
            try:
                self.incidents.advance(record.id, "recovered", who=INCIDENT_ACTOR, note=note)
            except InputError as exc:  # moved by a person meanwhile
                log.info("incident %s not moved to recovered: %s", record.id, exc)
            except ZerodownError as exc:
                scope.check_incidents = True
                self._failed("incidents", name, exc)

    def _fired(self, name: str, scope: _Scope, alert: Alert) -> None:
        annotations = alert.annotation_map
        summary = annotations.get("summary") or f"{alert.rule} is firing"
        self._event(
            name,
            "alert.firing",
            f"alert {alert.rule} firing: {summary}",
            self._alert_data(alert),
        )
        if self.incidents is None or name == HOST_SCOPE:
            return
        if alert.label_map.get("severity", "").lower() != "critical":
            return
        rule = scope.rules.get(alert.rule)
        self.incidents.open(
            name,
            severity=severity_from_label(alert.label_map.get("severity")),
            title=summary,
            source=f"alert:{alert.rule}",
            key=fingerprint(alert.labels),
            detected_at=alert.fired_at or alert.active_at,
            started_at=alert.active_at,
            who=INCIDENT_ACTOR,
            details={
                "alert": {
                    "name": alert.rule,
                    "expr": rule.expr_text.strip() if rule is not None else None,
                    "summary": annotations.get("summary"),
                    "description": annotations.get("description"),
                    "labels": alert.label_map,
                    "annotations": annotations,
                    "value": alert.value if math.isfinite(alert.value) else None,
                    "fingerprint": fingerprint(alert.labels),
                }
            },
        )

    def _resolved(self, name: str, alert: Alert, *, why: str | None = None) -> None:
        reason = f" ({why})" if why else ""
        self._event(
            name,
            "alert.resolved",
            f"alert {alert.rule} resolved{reason}",
            self._alert_data(alert),
        )
        if self.incidents is None or name == HOST_SCOPE:
            return
        if alert.label_map.get("severity", "").lower() != "critical":
            return
        record = self.incidents.find_open(fingerprint(alert.labels))
        if record is None:
            return
        note = f"alert {alert.rule} resolved{reason}"
        try:
            self.incidents.advance(
                record.id, "recovered", who=INCIDENT_ACTOR, note=note, at=alert.resolved_at
            )
        except InputError:
            # A person moved the incident after the alert's resolution time (e.g. acknowledged
            # it late): recovery is stamped now instead, which keeps the timeline monotonic.
            try:
                self.incidents.advance(record.id, "recovered", who=INCIDENT_ACTOR, note=note)
            except InputError as exc:  # already recovered by a person: nothing to do
                log.info("incident %s not moved to recovered: %s", record.id, exc)

    @staticmethod
    def _alert_data(alert: Alert) -> dict[str, Any]:
        return {
            "name": alert.rule,
            "state": alert.state.value,
            "labels": alert.label_map,
            "annotations": alert.annotation_map,
            "value": alert.value if math.isfinite(alert.value) else None,
            "fingerprint": fingerprint(alert.labels),
            "active_at": _iso(alert.active_at),
            "fired_at": _iso(alert.fired_at),
            "resolved_at": _iso(alert.resolved_at),
        }

    def _event(
        self, name: str, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        if name == HOST_SCOPE:
            return
        try:
            self.store.append_event(ServiceName(name), kind=kind, message=message, data=data or {})
        except ZerodownError as exc:
            log.warning("monitor: event %s of %s not written: %s", kind, name, exc.message)

    def _delivered(self, delivery: Delivery) -> None:
        """Count each delivery and write it to the service's event log (notifier thread)."""
        notification = delivery.notification
        kind = type(notification.integration).__name__.removesuffix("Config").lower()
        outcome = "sent" if delivery.ok else "failed"
        key = (notification.receiver, kind, outcome)
        with self._notifications_lock:
            self._notifications[key] = self._notifications.get(key, 0) + 1
        names = sorted({dict(a.labels).get("alertname", "") for a in notification.alerts})
        self._event(
            delivery.scope,
            "alert.notified" if delivery.ok else "alert.notify_failed",
            f"{notification.status} notification of {len(notification.alerts)} alert(s) "
            f"({', '.join(names)}) to {notification.receiver} by {kind}: {outcome}",
            {
                "receiver": notification.receiver,
                "integration": kind,
                "status": notification.status,
                "group_key": notification.group_key,
                "alerts": [a.fingerprint for a in notification.alerts],
                "ok": delivery.ok,
                "seconds": round(delivery.seconds, 3),
            },
        )

    # housekeeping --------------------------------------------------------------------------
    def _housekeeping(self, now: float) -> None:
        services = [(n, s) for n, s in self._scope_items() if n != HOST_SCOPE]
        try:
            done = self.history.housekeeping(
                now=now,
                raw_retention={n: s.config.settings.raw_retention for n, s in services},
                retention={n: s.config.settings.retention for n, s in services},
                default_raw_retention=DEFAULT_MONITOR_RAW_RETENTION_SECONDS,
                default_retention=DEFAULT_MONITOR_RETENTION_SECONDS,
            )
            if any(done.values()):
                log.debug("monitor housekeeping: %s", done)
            horizon = datetime.fromtimestamp(now, UTC) - timedelta(seconds=EXPIRED_RETENTION)
            self.notifier.silences.forget(ended_before=horizon)
            self.notifier.forget_log(before=horizon)
        except Exception as exc:  # tried again in a minute
            self._failed("housekeeping", HOST_SCOPE, exc)

    # what the API asks -----------------------------------------------------------------------
    def exposition(self) -> str:
        """Every series in Prometheus' text format: the data plane's counters and health read
        now, resource use and the host as of the last round, and the collectors' samples."""
        now = self.clock.now().timestamp()
        samples: list[MetricSample] = []
        for service in self.store.list_services():
            name = str(service.name)
            try:
                releases = self.store.list_releases(service.name, limit=50)
                instances = self.store.list_instances(
                    service.name, states=(*LIVE_STATES, "crashed")
                )
                samples.extend(self._fresh_samples(name, releases, instances, now))
            except ZerodownError:
                continue
            except Exception as exc:  # one service must not take /metrics down
                self._failed("exposition", name, exc)
                continue
            samples.extend(self._usage.get(name, []))
        samples.extend(self._host)
        samples.extend(self._collected())
        samples.extend(self._own_samples())
        return render(samples)

    def alerts(self, *, include_resolved: bool = False) -> dict[str, Any]:
        """Alerts of every scope (pending and firing; resolved ones too if asked), the rules
        that failed to evaluate, and the notification groups."""
        items = []
        errors = []
        for name, scope in self._scope_items():
            for alert in scope.alerts:
                if alert.state is AlertState.INACTIVE and not include_resolved:
                    continue
                labels = alert.label_map
                items.append(
                    {
                        **self._alert_data(alert),
                        "scope": name or "host",
                        "silenced_by": self.notifier.silences.silencing(labels),
                    }
                )
            for rule, error in sorted(scope.evaluator.errors().items()):
                errors.append({"scope": name or "host", "rule": rule, "error": error})
        order = {"firing": 0, "pending": 1, "inactive": 2}
        items.sort(key=lambda a: (order.get(a["state"], 3), a["name"], a["fingerprint"]))
        return {"alerts": items, "errors": errors, "groups": self.notifier.groups()}

    def add_silence(
        self,
        matchers: Sequence[str],
        *,
        ends_at: datetime,
        created_by: str,
        comment: str,
        starts_at: datetime | None = None,
    ) -> dict[str, Any]:
        """A new silence (saved in the store before it is answered)."""
        silence = self.notifier.silences.add(
            list(matchers),
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
            starts_at=starts_at,
        )
        self._wakeup.set()
        return self._silence_dict(silence)

    def silences(self, *, state: str | None = None) -> list[dict[str, Any]]:
        if state not in (None, "pending", "active", "expired"):
            raise InputError(f"state: choose pending, active or expired, got {state!r}")
        return [self._silence_dict(s) for s in self.notifier.silences.list(state=state)]

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        return self._silence_dict(self.notifier.silences.expire(silence_id))

    def _silence_dict(self, silence: Silence) -> dict[str, Any]:
        data = silence.to_dict(self.clock.now())
        data["matchers_text"] = [str(m) for m in silence.matchers]
        return data

    def metrics_of(
        self,
        service: str,
        *,
        since: float | None = None,
        until: float | None = None,
        step: float | None = None,
    ) -> dict[str, Any]:
        """The figures of ``service`` from ``since`` to ``until`` (epoch seconds; default the
        last hour), one point per ``step`` seconds (default about 60 points)."""
        self.store.get_service(ServiceName(service))
        end = until if until is not None else self.clock.now().timestamp()
        start = since if since is not None else end - 3600.0
        if not start < end:
            raise InputError(f"since: must be before until ({start:.0f} >= {end:.0f})")
        scope = self._scopes.get(service)
        settings = scope.config.settings if scope is not None else MonitorSpec()
        interval, raw_retention = settings.interval, settings.raw_retention
        now = self.clock.now().timestamp()
        resolution = interval if start >= now - raw_retention else 60.0
        chosen = step if step is not None else max(resolution, (end - start) / 60.0)
        if chosen <= 0 or not math.isfinite(chosen):
            raise InputError(f"step: must be a number of seconds above 0, got {step!r}")
        series = self.history.read(
            service=service,
            since=start - max(chosen, 4 * resolution),
            until=end,
            names=QUERY_METRICS,
        )
        figures = service_figures(series, service=service, since=start, until=end, step=chosen)
        figures["interval_s"] = interval
        figures["resolution_s"] = resolution
        return figures
