"""What the monitor does for each service: its ``monitor:`` section, rule files and routing.

Alerts are evaluated and routed per *scope*: one scope per service, over that service's series
only (those labelled ``service="<name>"``), and the host scope over the series of no service
(disk, CPU, memory of the machine). A service's scope runs the rules zerodown ships (unless
``monitor.defaultRules`` is false) and the rule files its spec names, and routes their alerts
with the Alertmanager configuration its spec names, or else to ``notify.webhooks``. The host
scope runs the shipped rules and sends to every service's ``notify.webhooks`` (each URL once).

Files are read when a service is brought up or deployed (so a broken rule file is refused then,
with its line numbers) and again by the monitor whenever the spec or a file changes.

Rules are evaluated over the samples the monitor keeps in memory, so a rule may read at most
``MAX_RULE_LOOKBACK`` (6 hours) back, range and offset together (``rate(x[1h] offset 5h)`` reads
6 hours back); a rule file with a rule reading further is refused, naming the rule and file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Final

from zerodown.core.errors import InputError
from zerodown.ops.alerts import RuleGroup, default_rules, default_rules_text, load_rules
from zerodown.ops.promql import LOOKBACK_SECONDS, MatrixSelector, VectorSelector
from zerodown.ops.routing import (
    AlertmanagerConfig,
    ReceiverConfig,
    Route,
    WebhookConfig,
    load_config,
)
from zerodown.spec.models import MonitorSpec, ServiceSpec

__all__ = [
    "HOST_SCOPE",
    "MAX_RULE_LOOKBACK",
    "ScopeConfig",
    "check_monitor_files",
    "default_routing",
    "host_config",
    "lookback",
    "service_config",
]

HOST_SCOPE: Final = ""
"""The scope of the host's own series (those without a ``service`` label)."""

MAX_RULE_LOOKBACK: Final = 6 * 3600.0
"""How far back a rule may read, range and offset together (the monitor keeps the samples of
the longest rule plus ten minutes in memory, two hours at least)."""

DEFAULT_RECEIVER: Final = "notify"
DEFAULT_GROUP_BY: Final = ("alertname", "service")


@dataclass(frozen=True)
class ScopeConfig:
    """Everything the monitor needs for one scope; ``fingerprint`` changes with any of it."""

    scope: str
    settings: MonitorSpec
    groups: tuple[RuleGroup, ...]
    routing: AlertmanagerConfig
    fingerprint: str

    @property
    def lookback(self) -> float:
        """How far back the scope's rules read (seconds)."""
        return max(
            (lookback(rule.expr) for group in self.groups for rule in group.rules), default=0.0
        )


def lookback(expr: object, depth: int = 0) -> float:
    """How far back evaluating ``expr`` reads, in seconds: a range selector its range plus its
    offset, an instant selector the 5-minute lookback plus its offset."""
    if isinstance(expr, MatrixSelector):
        return max(0.0, expr.range + expr.selector.offset)
    if isinstance(expr, VectorSelector):
        return max(0.0, LOOKBACK_SECONDS + expr.offset)
    if depth > 200 or not is_dataclass(expr) or isinstance(expr, type):
        return 0.0
    longest = 0.0
    for item in fields(expr):
        child = getattr(expr, item.name)
        for one in child if isinstance(child, tuple) else (child,):
            longest = max(longest, lookback(one, depth + 1))
    return longest


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


def _check_lookback(path: Path, groups: Sequence[RuleGroup]) -> None:
    for group in groups:
        for rule in group.rules:
            reads = lookback(rule.expr)
            if reads > MAX_RULE_LOOKBACK:
                raise InputError(
                    f"{path}: rule {rule.name!r} (group {group.name!r}) reads {_hours(reads)} "
                    f"back, more than the {_hours(MAX_RULE_LOOKBACK)} of samples the monitor "
                    "keeps for rules; shorten its range or offset"
                )


def default_routing(webhooks: Iterable[str]) -> AlertmanagerConfig:
    """One receiver sending Alertmanager's webhook JSON to each URL, grouped by alert name
    and service, with Alertmanager's default waits (30 s, 5 min, 4 h)."""
    urls = tuple(dict.fromkeys(webhooks))
    receiver = ReceiverConfig(DEFAULT_RECEIVER, tuple(WebhookConfig(url) for url in urls))
    return AlertmanagerConfig(
        route=Route(receiver=DEFAULT_RECEIVER, group_by=DEFAULT_GROUP_BY),
        receivers={DEFAULT_RECEIVER: receiver},
    )


def _resolve(spec_dir: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else spec_dir / path


def _digest(parts: Sequence[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()[:16]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"monitor.{what}: file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"monitor.{what}: cannot read {path}: {exc.strerror}") from exc


def service_config(spec: ServiceSpec, spec_dir: Path) -> ScopeConfig:
    """The scope of one service; ``SpecError`` (file, line, field) for a rule file or routing
    configuration with problems, ``InputError`` for a missing file or a rule group name used
    twice."""
    settings = spec.monitor
    parts: list[bytes] = [
        settings.model_dump_json().encode(),
        json.dumps(list(spec.notify.webhooks)).encode(),
    ]
    groups: list[RuleGroup] = []
    origin: dict[str, str] = {}
    if settings.default_rules:
        parts.append(default_rules_text().encode())
        for group in default_rules():
            groups.append(group)
            origin[group.name] = "the default rules"
    for name in settings.rules:
        path = _resolve(spec_dir, name)
        parts.append(_read(path, "rules"))
        loaded = load_rules(path)
        _check_lookback(path, loaded)
        for group in loaded:
            if group.name in origin:
                raise InputError(
                    f"{path}: rule group {group.name!r} is also defined in {origin[group.name]}; "
                    "give each group its own name"
                )
            origin[group.name] = str(path)
            groups.append(group)
    if settings.alertmanager is not None:
        path = _resolve(spec_dir, settings.alertmanager)
        parts.append(_read(path, "alertmanager"))
        routing = load_config(path)
    else:
        routing = default_routing(spec.notify.webhooks)
    return ScopeConfig(
        scope=spec.service,
        settings=settings,
        groups=tuple(groups),
        routing=routing,
        fingerprint=_digest(parts),
    )


def host_config(webhooks: Iterable[str], *, interval: float) -> ScopeConfig:
    """The host scope: the shipped rules, sent to ``webhooks``, sampled every ``interval``."""
    urls = tuple(dict.fromkeys(webhooks))
    settings = MonitorSpec(interval=interval)
    return ScopeConfig(
        scope=HOST_SCOPE,
        settings=settings,
        groups=tuple(default_rules()),
        routing=default_routing(urls),
        fingerprint=_digest([settings.model_dump_json().encode(), json.dumps(urls).encode()]),
    )


def check_monitor_files(spec: ServiceSpec, spec_dir: Path) -> None:
    """Refuse a spec whose rule files or routing configuration cannot be used."""
    service_config(spec, spec_dir)
