"""Notification routing with Alertmanager's semantics: routes, groups, inhibition, silences.

Alerts (from ``alerts.RuleEvaluator.alerts_to_send`` or any Alertmanager-style source) go into a
``Dispatcher``, which does what Alertmanager does, in virtual or real time (the injected
``Clock``; nothing runs in the background, the caller calls ``tick()``):

* **Routing tree** (``route``): an alert walks down from the root; a route matches when all its
  matchers do (``matchers: ['a="b"', 'c=~"d.*"']``, or the legacy ``match``/``match_re``; a
  missing label is the empty string; regexes are anchored). The alert goes to the deepest
  matching routes: the first matching child wins unless it has ``continue: true``, in which case
  later siblings are tried too; a route none of whose children match takes the alert itself.
  Children inherit ``receiver``, ``group_by`` and the three intervals from their parent.
* **Groups**: per route, alerts with the same values of the ``group_by`` labels (``['...']``:
  all labels) form one group. A new group is notified after ``group_wait`` (at once if its
  alert is older than that), then at most every ``group_interval``.
* **Deduplication** (Alertmanager's notification log, per group and receiver integration): a
  flush notifies only when a firing alert is new, when all alerts have resolved after some were
  notified firing, when an alert resolved and the integration has ``send_resolved``, or when
  ``repeat_interval`` has passed since the last notification.
* **Inhibition** (``inhibit_rules``): an alert matching ``target_matchers`` is muted while a
  firing alert matching ``source_matchers`` has the same values of the ``equal`` labels (an
  alert matching both sides does not inhibit itself through that rule).
* **Silences** (``Silences``): alerts matching all of a silence's matchers between ``starts_at``
  and ``ends_at`` are muted; silences are added, listed and expired.

Receivers: ``webhook_configs`` (Alertmanager's webhook JSON, version "4", so existing receivers
work), ``slack_configs`` (a Slack incoming-webhook POST of ``{"text": ...}``; only ``api_url``,
``channel``, ``username``, ``title``, ``text``), ``email_configs`` (SMTP via ``smtplib``; ``to``,
``from``, ``smarthost``, ``auth_username``, ``auth_password``, ``require_tls``, ``hello``,
``headers.Subject``, ``text``). Other integrations, and ``time_intervals``, are refused when the
configuration is loaded.

``templates`` differs from Alertmanager's (a list of Go template files): it is a mapping of
Python format strings overriding zerodown's defaults for ``title``, ``text`` and ``alert`` (one
line per alert), which ``slack_configs``/``email_configs`` may override again. Fields:
``{status}``, ``{status_upper}``, ``{receiver}``, ``{alert_count}``, ``{firing_count}``,
``{resolved_count}``, ``{group_label_values}``, ``{group_labels}``, ``{common_labels[name]}``,
``{common_annotations[name]}``, ``{external_url}``, ``{title}`` (in ``text``), ``{alerts}`` (the
rendered alert lines); in ``alert``: ``{status}``, ``{labels[name]}``, ``{annotations[name]}``,
``{starts_at}``, ``{ends_at}``, ``{fingerprint}``, ``{generator_url}``. A missing label is empty.
"""

from __future__ import annotations

import builtins
import json
import smtplib
import ssl
import string
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final

import httpx

from zerodown.core.clock import Clock, SystemClock
from zerodown.core.errors import InputError, NotFoundError, SpecError, SpecProblem
from zerodown.ops.alerts import Alert as RuleAlert
from zerodown.ops.promql import LabelMatcher
from zerodown.ops.promql import parse_duration as parse_prometheus_duration
from zerodown.ops.series import LabelSet, label_set
from zerodown.spec.loader import read_yaml
from zerodown.spec.positions import DocPath, SourceMap, format_path

__all__ = [
    "AlertmanagerConfig",
    "Dispatcher",
    "EmailConfig",
    "InhibitRule",
    "LogEntry",
    "Notification",
    "NotificationAlert",
    "ReceiverConfig",
    "Route",
    "RoutedAlert",
    "Silence",
    "Silences",
    "SlackConfig",
    "WebhookConfig",
    "deliver",
    "fingerprint",
    "load_config",
    "parse_config",
    "parse_matchers",
    "receivers_for",
]

DEFAULT_GROUP_WAIT: Final = 30.0
DEFAULT_GROUP_INTERVAL: Final = 300.0
DEFAULT_REPEAT_INTERVAL: Final = 4 * 3600.0
DEFAULT_RESOLVE_TIMEOUT: Final = 300.0
DEFAULT_SEND_TIMEOUT: Final = 10.0

DEFAULT_TEMPLATES: Final[Mapping[str, str]] = {
    "title": "[{status_upper}:{alert_count}] {group_label_values}",
    "text": "{title}\n{alerts}",
    "alert": "- [{status}] {labels[alertname]}: {annotations[summary]}",
}

_ZERO_TIME: Final = "0001-01-01T00:00:00Z"
_MATCH_OPS: Final = ("=~", "!~", "!=", "=")  # longest first
_OP_ORDER: Final = {"=": 0, "!=": 1, "=~": 2, "!~": 3}


# --- matchers and fingerprints -----------------------------------------------------------------


def _split_outside_quotes(text: str) -> list[str]:
    parts: list[str] = []
    current = ""
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\" and quoted:
            current += char
            escaped = True
        elif char == '"':
            quoted = not quoted
            current += char
        elif char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def parse_matchers(text: str) -> list[LabelMatcher]:
    """Matchers in Alertmanager's syntax: ``a="b"``, ``a=~b.*``, ``{a="b", c!="d"}``.

    ``ValueError`` saying what is wrong; values may be quoted (with escapes) or bare.
    """
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    matchers: list[LabelMatcher] = []
    for part in _split_outside_quotes(body):
        for op in _MATCH_OPS:
            name, found, value = part.partition(op)
            if found:
                break
        else:
            raise ValueError(f"{part!r} is not a matcher (expected name=value, !=, =~ or !~)")
        name = name.strip()
        value = value.strip()
        if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ValueError(f"{name!r} is not a valid label name in {part!r}")
        if value.startswith('"'):
            if len(value) < 2 or not value.endswith('"'):
                raise ValueError(f"unterminated quoted value in {part!r}")
            value = json.loads(value) if "\\" in value else value[1:-1]
        try:
            matchers.append(LabelMatcher.create(name, op, value))
        except Exception as exc:  # re.error
            raise ValueError(f"invalid regular expression in {part!r}: {exc}") from exc
    return matchers


def _matcher_text(matcher: LabelMatcher) -> str:
    return f"{matcher.name}{matcher.op}{json.dumps(matcher.value, ensure_ascii=False)}"


def _labels_text(labels: LabelSet) -> str:
    """Alertmanager's ``LabelSet.String()``: ``{a="b", c="d"}``."""
    return "{" + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in labels) + "}"


_FNV_OFFSET: Final = 14695981039346656037
_FNV_PRIME: Final = 1099511628211
_MASK: Final = (1 << 64) - 1


def fingerprint(labels: LabelSet | Mapping[str, str]) -> str:
    """Alertmanager's (Prometheus model's) fingerprint of a label set: 16 hex digits."""
    pairs = label_set(labels) if isinstance(labels, Mapping) else labels
    value = _FNV_OFFSET
    for name, label_value in sorted(pairs):
        for chunk in (name.encode(), b"\xff", label_value.encode(), b"\xff"):
            for byte in chunk:
                value = ((value ^ byte) * _FNV_PRIME) & _MASK
    return f"{value:016x}"


def _matches(matchers: Iterable[LabelMatcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One node of the routing tree, with inherited settings already resolved."""

    receiver: str
    matchers: tuple[LabelMatcher, ...] = ()
    group_by: tuple[str, ...] = ()
    group_by_all: bool = False
    group_wait: float = DEFAULT_GROUP_WAIT
    group_interval: float = DEFAULT_GROUP_INTERVAL
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL
    continue_: bool = False
    routes: tuple[Route, ...] = ()
    key: str = "{}"
    """Alertmanager's route key: the matchers of every route from the root, ``/``-separated."""

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes an alert with ``labels`` goes to (Alertmanager's ``Route.Match``)."""
        if not _matches(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            matched = child.match(labels)
            found.extend(matched)
            if matched and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: Mapping[str, str]) -> LabelSet:
        if self.group_by_all:
            return label_set(labels)
        return label_set({k: labels[k] for k in self.group_by if k in labels})


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    send_resolved: bool = True
    max_alerts: int = 0


@dataclass(frozen=True)
class SlackConfig:
    api_url: str
    send_resolved: bool = False
    channel: str = ""
    username: str = ""
    title: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class EmailConfig:
    to: str
    from_: str
    smarthost: str
    send_resolved: bool = False
    auth_username: str = ""
    auth_password: str = field(default="", repr=False)
    require_tls: bool = True
    hello: str = "localhost"
    subject: str | None = None
    text: str | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.smarthost.rpartition(":")
        return host.strip("[]"), int(port)


Integration = WebhookConfig | SlackConfig | EmailConfig


@dataclass(frozen=True)
class ReceiverConfig:
    name: str
    integrations: tuple[Integration, ...] = ()


@dataclass(frozen=True)
class InhibitRule:
    source_matchers: tuple[LabelMatcher, ...]
    target_matchers: tuple[LabelMatcher, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertmanagerConfig:
    route: Route
    receivers: Mapping[str, ReceiverConfig]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    templates: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT


class _Problems:
    def __init__(self, filename: str, source: SourceMap) -> None:
        self.filename = filename
        self.source = source
        self.found: list[SpecProblem] = []

    def add(self, path: DocPath, message: str, *, key: bool = False) -> None:
        at = self.source.key(path) if key else self.source.value(path)
        self.found.append(
            SpecProblem(
                file=self.filename,
                line=at.line,
                column=at.column,
                path=format_path(path),
                message=message,
            )
        )

    def mapping(self, raw: object, path: DocPath, known: Iterable[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.add(path, "expected a mapping")
            return {}
        allowed = set(known)
        for key in raw:
            if key not in allowed:
                self.add((*path, key), f"unknown or unsupported field {key!r}", key=True)
        return raw

    def duration(self, raw: object, path: DocPath) -> float | None:
        if raw is None:
            return None
        try:
            seconds = parse_prometheus_duration(str(raw))
        except ValueError:
            self.add(path, f"expected a duration such as 30s or 5m, got {raw!r}")
            return None
        return seconds

    def string_list(self, raw: object, path: DocPath) -> list[str]:
        if raw is None:
            return []
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            self.add(path, "expected a list of texts")
            return []
        return list(raw)

    def matchers(self, raw: object, path: DocPath) -> list[LabelMatcher]:
        out: list[LabelMatcher] = []
        for index, text in enumerate(self.string_list(raw, path)):
            try:
                out.extend(parse_matchers(text))
            except ValueError as exc:
                self.add((*path, index), str(exc))
        return out


_ROUTE_KEYS: Final = (
    "receiver",
    "group_by",
    "continue",
    "matchers",
    "match",
    "match_re",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "routes",
)
_UNSUPPORTED_INTEGRATIONS: Final = (
    "pagerduty_configs",
    "opsgenie_configs",
    "victorops_configs",
    "pushover_configs",
    "wechat_configs",
    "sns_configs",
    "telegram_configs",
    "webex_configs",
    "discord_configs",
    "msteams_configs",
)


def _parse_route(
    raw: object,
    path: DocPath,
    problems: _Problems,
    parent: Route | None,
) -> Route | None:
    data = problems.mapping(raw, path, _ROUTE_KEYS)
    if not data and raw is None:
        problems.add(path, "a route is required")
        return None
    matchers: list[LabelMatcher] = []
    matchers.extend(problems.matchers(data.get("matchers"), (*path, "matchers")))
    match = problems.mapping(data.get("match"), (*path, "match"), data.get("match") or {})
    for name, value in match.items():
        matchers.append(LabelMatcher.create(name, "=", str(value)))
    match_re = problems.mapping(
        data.get("match_re"), (*path, "match_re"), data.get("match_re") or {}
    )
    for name, value in match_re.items():
        try:
            # Alertmanager stores a legacy regex anchored; the route key shows it that way.
            matchers.append(LabelMatcher.create(name, "=~", f"^(?:{value})$"))
        except Exception as exc:  # re.error
            problems.add((*path, "match_re", name), f"invalid regular expression: {exc}")
    matchers.sort(key=lambda m: (m.name, m.value, _OP_ORDER[m.op]))
    if parent is None and matchers:
        problems.add(path, "the root route must not have matchers (it takes every alert)")
    receiver = data.get("receiver", parent.receiver if parent else None)
    if not isinstance(receiver, str) or not receiver:
        problems.add((*path, "receiver"), "the root route needs a receiver")
        receiver = ""
    group_by = parent.group_by if parent else ()
    group_by_all = parent.group_by_all if parent else False
    if "group_by" in data:
        names = problems.string_list(data["group_by"], (*path, "group_by"))
        group_by_all = "..." in names
        if group_by_all and len(names) > 1:
            problems.add((*path, "group_by"), "'...' groups by all labels; list nothing else")
        group_by = () if group_by_all else tuple(names)
    timings: dict[str, float] = {}
    for name, default in (
        ("group_wait", DEFAULT_GROUP_WAIT),
        ("group_interval", DEFAULT_GROUP_INTERVAL),
        ("repeat_interval", DEFAULT_REPEAT_INTERVAL),
    ):
        inherited = getattr(parent, name) if parent else default
        value = problems.duration(data.get(name), (*path, name))
        timings[name] = inherited if value is None else value
    if timings["group_interval"] <= 0:
        problems.add((*path, "group_interval"), "group_interval must be longer than 0s")
    if timings["repeat_interval"] <= 0:
        problems.add((*path, "repeat_interval"), "repeat_interval must be longer than 0s")
    continue_ = data.get("continue", False)
    if not isinstance(continue_, bool):
        problems.add((*path, "continue"), "expected true or false")
        continue_ = False
    if parent is None and continue_:
        problems.add((*path, "continue"), "the root route cannot have continue")
    own_key = "{" + ",".join(_matcher_text(m) for m in matchers) + "}"
    key = own_key if parent is None else f"{parent.key}/{own_key}"
    node = Route(
        receiver=receiver,
        matchers=tuple(matchers),
        group_by=group_by,
        group_by_all=group_by_all,
        group_wait=timings["group_wait"],
        group_interval=timings["group_interval"],
        repeat_interval=timings["repeat_interval"],
        continue_=continue_,
        key=key,
    )
    children_raw = data.get("routes") or []
    if not isinstance(children_raw, list):
        problems.add((*path, "routes"), "expected a list of routes")
        children_raw = []
    children = [
        child
        for index, item in enumerate(children_raw)
        if (child := _parse_route(item, (*path, "routes", index), problems, node)) is not None
    ]
    return replace(node, routes=tuple(children))


def _bool(raw: object, path: DocPath, problems: _Problems, default: bool) -> bool:
    if raw is None:
        return default
    if not isinstance(raw, bool):
        problems.add(path, "expected true or false")
        return default
    return raw


def _text(raw: object, path: DocPath, problems: _Problems, default: str = "") -> str:
    if raw is None:
        return default
    if not isinstance(raw, str):
        problems.add(path, "expected a text")
        return default
    return raw


def _check_template(text: str, path: DocPath, problems: _Problems, *, alert: bool) -> None:
    try:
        if alert:
            _format(text, _alert_fields(_SAMPLE_ALERT))
        else:
            _format(text, {**_SAMPLE_FIELDS, "title": "", "alerts": ""})
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        problems.add(path, f"invalid template: {exc}")


def _parse_receiver(
    raw: object, path: DocPath, problems: _Problems, glob: Mapping[str, Any]
) -> ReceiverConfig | None:
    known = ("name", "webhook_configs", "slack_configs", "email_configs")
    data = problems.mapping(raw, path, (*known, *_UNSUPPORTED_INTEGRATIONS))
    for unsupported in _UNSUPPORTED_INTEGRATIONS:
        if unsupported in data:
            problems.add((*path, unsupported), f"{unsupported} is not supported", key=True)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        problems.add((*path, "name"), "a receiver needs a name")
        return None
    integrations: list[Integration] = []
    for index, item in enumerate(data.get("webhook_configs") or []):
        at: DocPath = (*path, "webhook_configs", index)
        conf = problems.mapping(item, at, ("url", "send_resolved", "max_alerts"))
        url = _text(conf.get("url"), (*at, "url"), problems)
        if not url.startswith(("http://", "https://")):
            problems.add((*at, "url"), "expected an http(s) URL")
        max_alerts = conf.get("max_alerts", 0)
        if not isinstance(max_alerts, int) or max_alerts < 0:
            problems.add((*at, "max_alerts"), "expected a whole number >= 0")
            max_alerts = 0
        send_resolved = _bool(conf.get("send_resolved"), (*at, "send_resolved"), problems, True)
        integrations.append(WebhookConfig(url, send_resolved, max_alerts))
    for index, item in enumerate(data.get("slack_configs") or []):
        at = (*path, "slack_configs", index)
        conf = problems.mapping(
            item, at, ("api_url", "send_resolved", "channel", "username", "title", "text")
        )
        url = _text(conf.get("api_url", glob.get("slack_api_url")), (*at, "api_url"), problems)
        if not url.startswith(("http://", "https://")):
            problems.add((*at, "api_url"), "expected an http(s) URL (or global.slack_api_url)")
        title = conf.get("title")
        text = conf.get("text")
        for key, value in (("title", title), ("text", text)):
            if value is not None:
                _check_template(
                    _text(value, (*at, key), problems), (*at, key), problems, alert=False
                )
        integrations.append(
            SlackConfig(
                api_url=url,
                send_resolved=_bool(
                    conf.get("send_resolved"), (*at, "send_resolved"), problems, False
                ),
                channel=_text(conf.get("channel"), (*at, "channel"), problems),
                username=_text(conf.get("username"), (*at, "username"), problems),
                title=title if isinstance(title, str) else None,
                text=text if isinstance(text, str) else None,
            )
        )
    for index, item in enumerate(data.get("email_configs") or []):
        at = (*path, "email_configs", index)
        conf = problems.mapping(
            item,
            at,
            (
                "to",
                "from",
                "smarthost",
                "send_resolved",
                "auth_username",
                "auth_password",
                "require_tls",
                "hello",
                "headers",
                "text",
            ),
        )
        smarthost = _text(
            conf.get("smarthost", glob.get("smtp_smarthost")), (*at, "smarthost"), problems
        )
        host, _, port = smarthost.rpartition(":")
        if not host or not port.isdigit():
            problems.add((*at, "smarthost"), "expected host:port (or global.smtp_smarthost)")
        sender = _text(conf.get("from", glob.get("smtp_from")), (*at, "from"), problems)
        if not sender:
            problems.add((*at, "from"), "a sender address is needed (or global.smtp_from)")
        to = _text(conf.get("to"), (*at, "to"), problems)
        if not to:
            problems.add((*at, "to"), "a recipient address is needed")
        headers = problems.mapping(conf.get("headers"), (*at, "headers"), ("Subject",))
        subject = headers.get("Subject")
        text = conf.get("text")
        for key, value in (("headers", subject), ("text", text)):
            if value is not None:
                _check_template(
                    _text(value, (*at, key), problems), (*at, key), problems, alert=False
                )
        integrations.append(
            EmailConfig(
                to=to,
                from_=sender,
                smarthost=smarthost if host and port.isdigit() else "localhost:25",
                send_resolved=_bool(
                    conf.get("send_resolved"), (*at, "send_resolved"), problems, False
                ),
                auth_username=_text(
                    conf.get("auth_username", glob.get("smtp_auth_username")),
                    (*at, "auth_username"),
                    problems,
                ),
                auth_password=_text(
                    conf.get("auth_password", glob.get("smtp_auth_password")),
                    (*at, "auth_password"),
                    problems,
                ),
                require_tls=_bool(
                    conf.get("require_tls", glob.get("smtp_require_tls")),
                    (*at, "require_tls"),
                    problems,
                    True,
                ),
                hello=_text(
                    conf.get("hello", glob.get("smtp_hello")), (*at, "hello"), problems, "localhost"
                ),
                subject=subject if isinstance(subject, str) else None,
                text=text if isinstance(text, str) else None,
            )
        )
    return ReceiverConfig(name, tuple(integrations))


def _route_receivers(route: Route) -> Iterable[tuple[str, Route]]:
    yield route.receiver, route
    for child in route.routes:
        yield from _route_receivers(child)


def parse_config(text: str, *, filename: str = "<string>") -> AlertmanagerConfig:
    """An Alertmanager configuration (the subset in this module's docstring).

    ``SpecError`` listing every problem with its line and field.
    """
    if not text.strip():
        raise SpecError(
            [SpecProblem(file=filename, line=1, path="", message="the configuration is empty")]
        )
    data, source = read_yaml(text, filename=filename)
    problems = _Problems(filename, source)
    top = problems.mapping(data, (), ("global", "route", "receivers", "inhibit_rules", "templates"))
    glob = problems.mapping(
        top.get("global"),
        ("global",),
        (
            "resolve_timeout",
            "smtp_from",
            "smtp_smarthost",
            "smtp_auth_username",
            "smtp_auth_password",
            "smtp_require_tls",
            "smtp_hello",
            "slack_api_url",
        ),
    )
    resolve_timeout = problems.duration(glob.get("resolve_timeout"), ("global", "resolve_timeout"))
    templates = dict(DEFAULT_TEMPLATES)
    raw_templates = top.get("templates")
    if isinstance(raw_templates, list):
        problems.add(
            ("templates",),
            "zerodown's templates are a mapping of format strings (title, text, alert), "
            "not a list of Go template files",
        )
    else:
        for key, value in problems.mapping(
            raw_templates, ("templates",), DEFAULT_TEMPLATES
        ).items():
            text_value = _text(value, ("templates", key), problems)
            _check_template(text_value, ("templates", key), problems, alert=key == "alert")
            templates[key] = text_value
    route = _parse_route(top.get("route"), ("route",), problems, None)
    receivers: dict[str, ReceiverConfig] = {}
    raw_receivers = top.get("receivers")
    if not isinstance(raw_receivers, list):
        problems.add(("receivers",), "expected a list of receivers")
        raw_receivers = []
    for index, item in enumerate(raw_receivers):
        receiver = _parse_receiver(item, ("receivers", index), problems, glob)
        if receiver is None:
            continue
        if receiver.name in receivers:
            problems.add(
                ("receivers", index, "name"), f"receiver {receiver.name!r} is defined twice"
            )
        receivers[receiver.name] = receiver
    if route is not None:
        for name, _ in _route_receivers(route):
            if name and name not in receivers:
                problems.add(
                    ("route",), f"the routing tree uses receiver {name!r}, which is not defined"
                )
    inhibit_rules: list[InhibitRule] = []
    raw_rules = top.get("inhibit_rules") or []
    if not isinstance(raw_rules, list):
        problems.add(("inhibit_rules",), "expected a list")
        raw_rules = []
    keys = (
        "source_matchers",
        "target_matchers",
        "source_match",
        "source_match_re",
        "target_match",
        "target_match_re",
        "equal",
    )
    for index, item in enumerate(raw_rules):
        at: DocPath = ("inhibit_rules", index)
        conf = problems.mapping(item, at, keys)
        sides: dict[str, list[LabelMatcher]] = {}
        for side in ("source", "target"):
            found = problems.matchers(conf.get(f"{side}_matchers"), (*at, f"{side}_matchers"))
            for name, value in (conf.get(f"{side}_match") or {}).items():
                found.append(LabelMatcher.create(name, "=", str(value)))
            for name, value in (conf.get(f"{side}_match_re") or {}).items():
                found.append(LabelMatcher.create(name, "=~", str(value)))
            sides[side] = found
        inhibit_rules.append(
            InhibitRule(
                tuple(sides["source"]),
                tuple(sides["target"]),
                tuple(problems.string_list(conf.get("equal"), (*at, "equal"))),
            )
        )
    if problems.found or route is None:
        raise SpecError(
            problems.found or [SpecProblem(filename, 1, "route", "a route is required")]
        )
    return AlertmanagerConfig(
        route=route,
        receivers=receivers,
        inhibit_rules=tuple(inhibit_rules),
        templates=templates,
        resolve_timeout=DEFAULT_RESOLVE_TIMEOUT if resolve_timeout is None else resolve_timeout,
    )


def load_config(path: str | Path) -> AlertmanagerConfig:
    """Read and validate the Alertmanager-style configuration at ``path``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"notification config not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read notification config {file}: {exc}") from exc
    return parse_config(text, filename=str(path))


# --- silences ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[LabelMatcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def state(self, now: datetime) -> str:
        """``pending`` (not started), ``active`` or ``expired``."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.state(now) == "active" and _matches(self.matchers, labels)

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [
                {
                    "name": m.name,
                    "value": m.value,
                    "isRegex": m.op in ("=~", "!~"),
                    "isEqual": m.op in ("=", "=~"),
                }
                for m in self.matchers
            ],
            "startsAt": _rfc3339(self.starts_at),
            "endsAt": _rfc3339(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": {"state": self.state(now)},
        }


class Silences:
    """The silences in force; time comes from the injected clock."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._silences: dict[str, Silence] = {}

    def add(
        self,
        matchers: Sequence[LabelMatcher | str],
        *,
        ends_at: datetime,
        created_by: str,
        comment: str,
        starts_at: datetime | None = None,
    ) -> Silence:
        """A new silence; ``InputError`` for no matchers, one matching everything, bad times."""
        parsed: list[LabelMatcher] = []
        for item in matchers:
            if isinstance(item, str):
                try:
                    parsed.extend(parse_matchers(item))
                except ValueError as exc:
                    raise InputError(str(exc)) from exc
            else:
                parsed.append(item)
        if not parsed or all(m.matches({}) for m in parsed):
            raise InputError("a silence needs at least one matcher that does not match everything")
        if not created_by.strip() or not comment.strip():
            raise InputError("a silence needs created_by and a comment")
        now = self.clock.now()
        start = starts_at or now
        if ends_at <= start or ends_at <= now:
            raise InputError("a silence must end after it starts, and in the future")
        silence = Silence(
            id=str(uuid.uuid4()),
            matchers=tuple(parsed),
            starts_at=start,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
        )
        self._silences[silence.id] = silence
        return silence

    def list(self, *, state: str | None = None) -> builtins.list[Silence]:
        """Silences, newest end first; ``state`` keeps only pending, active or expired ones."""
        now = self.clock.now()
        found = [s for s in self._silences.values() if state is None or s.state(now) == state]
        return sorted(found, key=lambda s: s.ends_at, reverse=True)

    def expire(self, silence_id: str) -> Silence:
        """End a silence now (a pending one never starts); ``NotFoundError`` if unknown."""
        silence = self._silences.get(silence_id)
        if silence is None:
            raise NotFoundError(f"no silence with id {silence_id!r}")
        now = self.clock.now()
        if silence.state(now) == "expired":
            raise InputError(f"silence {silence_id} has already expired")
        expired = replace(silence, starts_at=min(silence.starts_at, now), ends_at=now)
        self._silences[silence_id] = expired
        return expired

    def restore(self, silence: Silence) -> None:
        """Take back a silence saved earlier (whatever its state), as it was."""
        self._silences[silence.id] = silence

    def silencing(self, labels: Mapping[str, str]) -> builtins.list[str]:
        """Ids of the active silences muting ``labels``."""
        now = self.clock.now()
        return [s.id for s in self._silences.values() if s.mutes(labels, now)]


# --- alerts and notifications ------------------------------------------------------------------


def _rfc3339(moment: datetime) -> str:
    """Go's ``time.Time`` in JSON (RFC 3339, fractional seconds without trailing zeros)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass(frozen=True)
class RoutedAlert:
    """An alert as Alertmanager holds it."""

    labels: LabelSet
    annotations: LabelSet = ()
    starts_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    ends_at: datetime | None = None
    generator_url: str = ""
    updated_at: datetime | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def resolved(self, now: datetime) -> bool:
        return self.ends_at is not None and self.ends_at <= now

    @classmethod
    def from_rule_alert(cls, alert: RuleAlert) -> RoutedAlert:
        """What Prometheus sends Alertmanager for ``alert`` (from ``alerts_to_send``)."""
        return cls(
            labels=alert.labels,
            annotations=alert.annotations,
            starts_at=alert.starts_at,
            ends_at=alert.ends_at,
            generator_url=alert.generator_url,
        )


@dataclass(frozen=True)
class NotificationAlert:
    status: str  # firing or resolved
    labels: LabelSet
    annotations: LabelSet
    starts_at: datetime
    ends_at: datetime | None  # None while firing
    generator_url: str
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": _rfc3339(self.starts_at),
            "endsAt": _ZERO_TIME if self.ends_at is None else _rfc3339(self.ends_at),
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class Notification:
    """One message for one integration of one receiver, about one group."""

    receiver: str
    integration: Integration
    integration_index: int
    group_key: str
    group_labels: LabelSet
    alerts: tuple[NotificationAlert, ...]
    external_url: str
    templates: Mapping[str, str]
    truncated_alerts: int = 0

    @property
    def status(self) -> str:
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"

    @property
    def common_labels(self) -> LabelSet:
        return _common(a.labels for a in self.alerts)

    @property
    def common_annotations(self) -> LabelSet:
        return _common(a.annotations for a in self.alerts)

    def webhook_payload(self) -> dict[str, Any]:
        """Alertmanager's webhook JSON (version 4)."""
        return {
            "receiver": self.receiver,
            "status": self.status,
            "alerts": [alert.to_dict() for alert in self.alerts],
            "groupLabels": dict(self.group_labels),
            "commonLabels": dict(self.common_labels),
            "commonAnnotations": dict(self.common_annotations),
            "externalURL": self.external_url,
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": self.truncated_alerts,
        }

    def fields(self) -> dict[str, Any]:
        firing = sum(1 for a in self.alerts if a.status == "firing")
        return {
            "status": self.status,
            "status_upper": self.status.upper(),
            "receiver": self.receiver,
            "alert_count": len(self.alerts),
            "firing_count": firing,
            "resolved_count": len(self.alerts) - firing,
            "group_label_values": " ".join(v for _, v in self.group_labels),
            "group_labels": _LabelView(self.group_labels),
            "common_labels": _LabelView(self.common_labels),
            "common_annotations": _LabelView(self.common_annotations),
            "external_url": self.external_url,
        }

    def render(self, *, title: str | None = None, text: str | None = None) -> tuple[str, str]:
        """The title and text of this notification, from the configured templates."""
        fields = self.fields()
        line = self.templates.get("alert", DEFAULT_TEMPLATES["alert"])
        fields["alerts"] = "\n".join(_format(line, _alert_fields(a)) for a in self.alerts)
        rendered_title = _format(title or self.templates.get("title", ""), fields)
        fields["title"] = rendered_title
        rendered_text = _format(text or self.templates.get("text", ""), fields)
        return rendered_title, rendered_text


def _common(label_sets: Iterable[LabelSet]) -> LabelSet:
    sets = [dict(labels) for labels in label_sets]
    if not sets:
        return ()
    first = sets[0]
    return tuple(
        sorted((k, v) for k, v in first.items() if all(other.get(k) == v for other in sets[1:]))
    )


class _LabelView(dict[str, str]):
    """Labels for format strings: ``{x[name]}`` is empty when missing; ``{x}`` is ``a=b, c=d``."""

    def __init__(self, labels: LabelSet) -> None:
        super().__init__(labels)

    def __missing__(self, key: str) -> str:
        return ""

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.items()))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class _Formatter(string.Formatter):
    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if "." in field_name.split("[", 1)[0] or "." in field_name:
            raise ValueError(f"attribute access is not allowed in templates: {{{field_name}}}")
        return super().get_field(field_name, args, kwargs)


_FORMATTER: Final = _Formatter()


def _format(template: str, fields: Mapping[str, Any]) -> str:
    return _FORMATTER.vformat(template, (), fields)


def _alert_fields(alert: NotificationAlert) -> dict[str, Any]:
    return {
        "status": alert.status,
        "labels": _LabelView(alert.labels),
        "annotations": _LabelView(alert.annotations),
        "starts_at": _rfc3339(alert.starts_at),
        "ends_at": "" if alert.ends_at is None else _rfc3339(alert.ends_at),
        "fingerprint": alert.fingerprint,
        "generator_url": alert.generator_url,
    }


_SAMPLE_ALERT: Final = NotificationAlert(
    "firing", (("alertname", "x"),), (), datetime(2024, 1, 1, tzinfo=UTC), None, "", "0"
)
_SAMPLE_FIELDS: Final = Notification(
    receiver="r",
    integration=WebhookConfig("http://x"),
    integration_index=0,
    group_key="{}:{}",
    group_labels=(),
    alerts=(_SAMPLE_ALERT,),
    external_url="",
    templates=DEFAULT_TEMPLATES,
).fields()


# --- delivery ----------------------------------------------------------------------------------


def deliver(notification: Notification, *, timeout: float = DEFAULT_SEND_TIMEOUT) -> bool:
    """Send ``notification`` through its integration; True if it was accepted.

    Failures are results, never raised: the dispatcher retries at the next group interval.
    """
    integration = notification.integration
    try:
        if isinstance(integration, WebhookConfig):
            return _post(integration.url, notification.webhook_payload(), timeout)
        if isinstance(integration, SlackConfig):
            _, text = notification.render(title=integration.title, text=integration.text)
            payload: dict[str, Any] = {"text": text}
            if integration.channel:
                payload["channel"] = integration.channel
            if integration.username:
                payload["username"] = integration.username
            return _post(integration.api_url, payload, timeout)
        return _send_email(notification, integration, timeout)
    except (httpx.HTTPError, OSError, smtplib.SMTPException):
        return False


def _post(url: str, payload: Mapping[str, Any], timeout: float) -> bool:
    headers = {"Content-Type": "application/json", "User-Agent": "zerodown-alerts"}
    body = json.dumps(payload, ensure_ascii=False).encode()
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        response = client.post(url, content=body, headers=headers)
    return 200 <= response.status_code < 300


def _send_email(notification: Notification, config: EmailConfig, timeout: float) -> bool:
    subject, text = notification.render(title=config.subject, text=config.text)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.from_
    message["To"] = config.to
    message.set_content(text)
    host, port = config.host_port
    with smtplib.SMTP(host, port, local_hostname=config.hello, timeout=timeout) as smtp:
        smtp.ehlo()
        if config.require_tls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if config.auth_username:
            smtp.login(config.auth_username, config.auth_password)
        smtp.send_message(message, to_addrs=[a.strip() for a in config.to.split(",")])
    return True


# --- the dispatcher ----------------------------------------------------------------------------


@dataclass
class _Group:
    route: Route
    labels: LabelSet
    key: str
    alerts: dict[str, RoutedAlert]
    next_flush: datetime
    flushed: bool = False


@dataclass(frozen=True)
class LogEntry:
    """What one integration was last told about one group (Alertmanager's notification log):
    the fingerprints of the firing and the resolved alerts, and when."""

    firing: frozenset[str]
    resolved: frozenset[str]
    at: datetime


Sender = Callable[[Notification], bool]


class Dispatcher:
    """Alertmanager's dispatch pipeline, driven by ``tick()`` on the injected clock."""

    def __init__(
        self,
        config: AlertmanagerConfig,
        *,
        clock: Clock | None = None,
        send: Sender | None = None,
        silences: Silences | None = None,
        external_url: str = "",
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.send: Sender = send or deliver
        self.silences = silences or Silences(clock=self.clock)
        self.external_url = external_url
        self._alerts: dict[str, RoutedAlert] = {}
        self._groups: dict[tuple[str, LabelSet], _Group] = {}
        self._log: dict[tuple[str, str, int], LogEntry] = {}

    # intake

    def receive(self, alerts: Iterable[RoutedAlert | RuleAlert]) -> None:
        """Take alerts in (Alertmanager's ``POST /api/v2/alerts``) and route each to its groups."""
        now = self.clock.now()
        for item in alerts:
            alert = item if isinstance(item, RoutedAlert) else RoutedAlert.from_rule_alert(item)
            if alert.ends_at is None:
                alert = replace(alert, ends_at=now + timedelta(seconds=self.config.resolve_timeout))
            alert = replace(alert, updated_at=now)
            known = self._alerts.get(alert.fingerprint)
            if known is not None and _overlaps(known, alert):
                alert = _merge(known, alert)
            self._alerts[alert.fingerprint] = alert
            labels = dict(alert.labels)
            for route in self.config.route.match(labels):
                self._insert(route, alert, now)

    def _insert(self, route: Route, alert: RoutedAlert, now: datetime) -> None:
        group_labels = route.group_labels(dict(alert.labels))
        index = (route.key, group_labels)
        group = self._groups.get(index)
        if group is None:
            group = _Group(
                route=route,
                labels=group_labels,
                key=f"{route.key}:{_labels_text(group_labels)}",
                alerts={},
                next_flush=now + timedelta(seconds=route.group_wait),
            )
            self._groups[index] = group
        group.alerts[alert.fingerprint] = alert
        # An alert older than group_wait needs no waiting: flush at once (Alertmanager does).
        if not group.flushed and alert.starts_at + timedelta(seconds=route.group_wait) < now:
            group.next_flush = min(group.next_flush, now)

    # time

    def next_wakeup(self) -> datetime | None:
        """When ``tick()`` next has something to do (None with no groups)."""
        return min((g.next_flush for g in self._groups.values()), default=None)

    def tick(self) -> list[Notification]:
        """Flush every group that is due; return the notifications that were sent."""
        now = self.clock.now()
        sent: list[Notification] = []
        for index, group in sorted(self._groups.items(), key=lambda item: item[1].key):
            if group.next_flush > now:
                continue
            sent.extend(self._flush(group, now))
            group.flushed = True
            group.next_flush = now + timedelta(seconds=group.route.group_interval)
            if not group.alerts:
                del self._groups[index]
        return sent

    def run_until(self, until: datetime) -> list[Notification]:
        """Tick at every due time up to ``until``, sleeping on the clock between (for tests)."""
        sent: list[Notification] = []
        while True:
            wake = self.next_wakeup()
            if wake is None or wake > until:
                break
            delay = (wake - self.clock.now()).total_seconds()
            if delay > 0:
                self.clock.sleep(delay)
            sent.extend(self.tick())
        remaining = (until - self.clock.now()).total_seconds()
        if remaining > 0:
            self.clock.sleep(remaining)
        return sent

    # the notification pipeline

    def muted_by(self, labels: Mapping[str, str]) -> list[str]:
        """Why an alert with ``labels`` is muted now: silence ids and ``inhibited`` (or [])."""
        reasons = self.silences.silencing(labels)
        if self._inhibited(labels):
            reasons.append("inhibited")
        return reasons

    def _inhibited(self, labels: Mapping[str, str]) -> bool:
        now = self.clock.now()
        for rule in self.config.inhibit_rules:
            if not _matches(rule.target_matchers, labels):
                continue
            two_sided = _matches(rule.source_matchers, labels)
            for source in self._alerts.values():
                if source.resolved(now):
                    continue
                source_labels = dict(source.labels)
                if not _matches(rule.source_matchers, source_labels):
                    continue
                if any(source_labels.get(n, "") != labels.get(n, "") for n in rule.equal):
                    continue
                if two_sided and _matches(rule.target_matchers, source_labels):
                    continue
                return True
        return False

    def _flush(self, group: _Group, now: datetime) -> list[Notification]:
        alerts = [
            alert
            for alert in sorted(group.alerts.values(), key=_alert_order)
            if not self.muted_by(dict(alert.labels))
        ]
        if not alerts:
            return []
        firing = frozenset(a.fingerprint for a in alerts if not a.resolved(now))
        resolved = frozenset(a.fingerprint for a in alerts if a.resolved(now))
        receiver = self.config.receivers[group.route.receiver]
        sent: list[Notification] = []
        all_ok = True
        for position, integration in enumerate(receiver.integrations):
            log_key = (group.key, receiver.name, position)
            entry = self._log.get(log_key)
            if not _needs_update(
                entry,
                firing,
                resolved,
                send_resolved=integration.send_resolved,
                repeat=group.route.repeat_interval,
                now=now,
            ):
                continue
            notification = self._notification(group, receiver.name, position, alerts, now)
            ok = True
            if notification.alerts:  # nothing to say when only resolved alerts are left out
                ok = self.send(notification)
                if ok:
                    sent.append(notification)
            if ok:
                self._log[log_key] = LogEntry(firing, resolved, now)
            all_ok = all_ok and ok
        if all_ok:
            for fp in resolved:
                group.alerts.pop(fp, None)
        return sent

    def _notification(
        self,
        group: _Group,
        receiver: str,
        position: int,
        alerts: list[RoutedAlert],
        now: datetime,
    ) -> Notification:
        integration = self.config.receivers[receiver].integrations[position]
        items = [
            NotificationAlert(
                status="resolved" if alert.resolved(now) else "firing",
                labels=alert.labels,
                annotations=alert.annotations,
                starts_at=alert.starts_at,
                ends_at=alert.ends_at if alert.resolved(now) else None,
                generator_url=alert.generator_url,
                fingerprint=alert.fingerprint,
            )
            for alert in alerts
            if integration.send_resolved or not alert.resolved(now)
        ]
        truncated = 0
        if isinstance(integration, WebhookConfig) and integration.max_alerts:
            truncated = max(0, len(items) - integration.max_alerts)
            items = items[: integration.max_alerts]
        return Notification(
            receiver=receiver,
            integration=integration,
            integration_index=position,
            group_key=group.key,
            group_labels=group.labels,
            alerts=tuple(items),
            external_url=self.external_url,
            templates=self.config.templates,
            truncated_alerts=truncated,
        )

    def notification_log(self) -> dict[tuple[str, str, int], LogEntry]:
        """The notification log by (group key, receiver, integration index), to be saved."""
        return dict(self._log)

    def alerts(self) -> list[RoutedAlert]:
        """The alerts received and not yet forgotten (to hand to a dispatcher replacing this
        one, as Alertmanager's alert store outlives a configuration reload)."""
        return sorted(self._alerts.values(), key=lambda alert: alert.fingerprint)

    def forget(self, *, log_before: datetime) -> tuple[int, int]:
        """Drop what is no longer needed: resolved alerts no group holds any more (as
        Alertmanager's alert store collects them) and notification log entries written before
        ``log_before`` (its ``--data.retention``). The numbers of alerts and entries dropped."""
        now = self.clock.now()
        held = {fp for group in self._groups.values() for fp in group.alerts}
        alerts = [
            fp for fp, alert in self._alerts.items() if alert.resolved(now) and fp not in held
        ]
        for fp in alerts:
            del self._alerts[fp]
        entries = [key for key, entry in self._log.items() if entry.at < log_before]
        for key in entries:
            del self._log[key]
        return len(alerts), len(entries)

    def restore_notification_log(self, entries: Mapping[tuple[str, str, int], LogEntry]) -> None:
        """Take back a saved notification log, so a restarted notifier does not repeat what
        it already sent (Alertmanager keeps its log on disk for the same reason)."""
        self._log.update(entries)

    def groups(self) -> list[dict[str, Any]]:
        """The aggregation groups and their alerts (for status pages)."""
        return [
            {
                "groupKey": group.key,
                "receiver": group.route.receiver,
                "labels": dict(group.labels),
                "alerts": sorted(group.alerts),
                "nextFlush": _rfc3339(group.next_flush),
            }
            for group in sorted(self._groups.values(), key=lambda g: g.key)
        ]


def _alert_order(alert: RoutedAlert) -> tuple[Any, ...]:
    """Alertmanager's order: by ``job``, then ``instance`` (missing last), then all labels."""
    labels = dict(alert.labels)
    key: list[Any] = []
    for name in ("job", "instance"):
        key.append((name not in labels, labels.get(name, "")))
    key.append(alert.labels)
    return tuple(key)


def _overlaps(old: RoutedAlert, new: RoutedAlert) -> bool:
    old_end = old.ends_at or datetime.max.replace(tzinfo=UTC)
    new_end = new.ends_at or datetime.max.replace(tzinfo=UTC)
    return new.starts_at <= old_end and old.starts_at <= new_end


def _merge(old: RoutedAlert, new: RoutedAlert) -> RoutedAlert:
    """Alertmanager's ``Alert.Merge``: the newer one wins, keeping the earliest start."""
    return replace(new, starts_at=min(old.starts_at, new.starts_at))


def _needs_update(
    entry: LogEntry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    *,
    send_resolved: bool,
    repeat: float,
    now: datetime,
) -> bool:
    """Alertmanager's ``DedupStage.needsUpdate``."""
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        # Every alert resolved: tell the receiver only if it was told some were firing.
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.at < now - timedelta(seconds=repeat)


def receivers_for(config: AlertmanagerConfig, labels: Mapping[str, str]) -> list[str]:
    """The receivers an alert with ``labels`` goes to, in order (``amtool config routes test``)."""
    return [route.receiver for route in config.route.match(labels)]
