"""The pydantic models of ``zerodown.yaml``: the shape of a valid spec.

This is the first of the three validation tiers: types, ranges and allowed keys. Rules that
relate several fields (canary weights ending at 100, timeout <= interval, exactly one strategy)
are checked in ``validation.py``, where every problem gets its YAML line. Defaults come from
``defaults.py``. YAML keys are camelCase, attributes snake_case (see ``SpecModel``); durations
are float seconds and percentages fractions.

The ``notify``, ``deploy``, ``traffic.canaryMatch`` and ``checks`` sections bring their own
small value types (webhook URLs, ``HH:MM`` times, IANA time zones, times with an offset, header
and cookie names, sizes such as ``64Mi``, dependency URLs, log patterns); they live here, next
to the only models that use them.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
import zoneinfo
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    JsonValue,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from zerodown.core.types import Address
from zerodown.spec import defaults
from zerodown.spec.dr import DrSpec
from zerodown.spec.durations import Duration, PositiveDuration, format_duration
from zerodown.spec.fields import (
    Alpha,
    EnvKey,
    EnvValue,
    Fraction,
    HostPort,
    HttpPath,
    Int,
    IntOrPercent,
    JudgeName,
    LatencyQuantile,
    LatencyRatio,
    MinRequests,
    NonEmptyStr,
    Number,
    Platform,
    Port,
    RestartPolicy,
    ServiceNameStr,
    SpecModel,
    StrategyName,
    resolve_int_or_percent,
    spec_value_error,
    split_host_port,
)
from zerodown.spec.retention import KeepCount, KeepWithin
from zerodown.spec.steps import AnalysisStep, CanaryStep

__all__ = [
    "SIZE_EXPECTED",
    "WEEKDAYS",
    "AnalysisSpec",
    "BackupCheckSpec",
    "BackupTargetKind",
    "BackupTargetSpec",
    "BackupsSpec",
    "BlueGreenSpec",
    "CanaryMatchRule",
    "CanarySpec",
    "CapacityCheckSpec",
    "ChecksSpec",
    "DataSize",
    "DependencyCheckSpec",
    "DependencyKind",
    "DeploySpec",
    "DeployWindow",
    "FeedbackCheckSpec",
    "FreezeSpec",
    "HealthCheckSpec",
    "HooksSpec",
    "HttpMethod",
    "HttpProbe",
    "IncidentSeverity",
    "IncidentsSpec",
    "LogScanSpec",
    "MonitorSpec",
    "NativeFailureAction",
    "NativeOrder",
    "NativeSpec",
    "NotifyEvent",
    "NotifySpec",
    "PerformanceCheckSpec",
    "PostChecksSpec",
    "PreChecksSpec",
    "ProbeKind",
    "RetentionSpec",
    "RollingSpec",
    "RunSpec",
    "ServiceSpec",
    "SmokeTestSpec",
    "StrategySpec",
    "TcpProbe",
    "TrafficSpec",
    "Weekday",
    "clock_minutes",
    "format_size",
    "parse_aware_time",
    "parse_size",
]

ProbeKind = Literal["http", "tcp", "command"]
NotifyEvent = Literal["rolled_back", "failed", "succeeded"]
"""Release outcomes that can send a notification."""
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: Final[tuple[Weekday, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The days in ``datetime.weekday()`` order: ``WEEKDAYS[d.weekday()]`` is the day of ``d``."""


def _drop_nulls(data: Any, keys: tuple[str, ...]) -> Any:
    """Read ``key:`` with nothing after it (YAML null) as if the key were left out.

    Only for keys whose default is not None, so a dumped model still validates to itself.
    """
    if isinstance(data, dict) and any(key in data and data[key] is None for key in keys):
        return {key: value for key, value in data.items() if not (key in keys and value is None)}
    return data


# ---------------------------------------------------------------------------------------------
# Value types of notify, deploy and traffic.canaryMatch

_CLOCK_TIME = re.compile(r"([01]?\d|2[0-4]):([0-5]\d)")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP token (RFC 9110): what a header or cookie name may be made of."""


def clock_minutes(text: str) -> int:
    """Minutes after midnight of an ``HH:MM`` time (``"24:00"`` is 1440); ``ValueError``."""
    match = _CLOCK_TIME.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not an HH:MM time: {text!r}")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > 24 * 60:
        raise ValueError(f"not an HH:MM time: {text!r}")
    return minutes


def _clock_time(value: Any, *, allow_end_of_day: bool) -> str:
    expected = "expected a time of day as HH:MM, such as '09:00'"
    if allow_end_of_day:
        expected += " ('24:00' is the end of the day)"
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise spec_value_error(expected, hint="write the time in quotes, such as '09:00'")
    if not isinstance(value, str):
        raise spec_value_error(expected)
    try:
        minutes = clock_minutes(value)
    except ValueError:
        raise spec_value_error(expected) from None
    if minutes == 24 * 60 and not allow_end_of_day:
        raise spec_value_error("expected a start before 24:00", hint="did you mean '00:00'?")
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


StartTime = Annotated[str, BeforeValidator(lambda v: _clock_time(v, allow_end_of_day=False))]
"""``HH:MM`` from 00:00 to 23:59, kept as text in the ``HH:MM`` form."""
EndTime = Annotated[str, BeforeValidator(lambda v: _clock_time(v, allow_end_of_day=True))]
"""``HH:MM`` from 00:00 to 24:00."""


def _check_time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        names = zoneinfo.available_timezones()
        by_lower = {name.lower(): name for name in names}
        close = [by_lower[value.lower()]] if value.lower() in by_lower else []
        close = close or difflib.get_close_matches(value, names, n=1, cutoff=0.7)
        raise spec_value_error(
            "expected an IANA time zone name such as 'UTC' or 'Europe/Berlin'",
            hint=f"did you mean '{close[0]}'?" if close else None,
        ) from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_check_time_zone)]


class _NoOffset(ValueError):
    """A date and time without an offset: which zone it is in is unknown."""


def parse_aware_time(value: Any) -> dt.datetime:
    """An ISO 8601 date and time with an offset (``2026-12-20T00:00:00Z``) as a datetime.

    Accepts the text, or a datetime as YAML reads an unquoted timestamp. ``ValueError`` for
    anything else, for a bare date and for a time without an offset (whose zone is unknown).
    """
    if isinstance(value, dt.datetime):
        moment = dt.datetime(  # a plain datetime, whatever subclass the YAML reader made
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo,
        )
    elif isinstance(value, str):
        moment = dt.datetime.fromisoformat(value.strip())
    else:
        raise ValueError("not an ISO 8601 date and time")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _NoOffset("no offset")
    return moment


def _aware_time(value: Any) -> dt.datetime:
    try:
        return parse_aware_time(value)
    except ValueError as exc:
        date_only = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
        if isinstance(exc, _NoOffset) and isinstance(value, str) and ":" not in value:
            date_only = True
        hint = None
        if date_only:
            hint = "add a time and an offset, such as 2026-12-20T00:00:00Z"
        elif isinstance(exc, _NoOffset):
            hint = "add Z for UTC or an offset such as +01:00"
        raise spec_value_error(
            "expected a date and time with an offset, such as 2026-12-20T00:00:00Z", hint=hint
        ) from None


AwareTime = Annotated[AwareDatetime, BeforeValidator(_aware_time)]


def _check_webhook_url(value: str) -> str:
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 (reading it validates the port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise spec_value_error(
            "expected an http:// or https:// URL, such as http://127.0.0.1:9000/hook"
        )
    return value.strip()


WebhookUrl = Annotated[str, AfterValidator(_check_webhook_url)]


def _check_token(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise spec_value_error(
            "expected a name of letters, digits and - _ . ! # $ % & ' * + ^ ` | ~ "
            "(no spaces or colons)"
        )
    return value


def _match_value(value: Any) -> Any:
    # ``value: 1`` and ``value: true`` in YAML are a number and a boolean; a header holds text.
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    if isinstance(value, str) and any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise spec_value_error("expected a value without line breaks or control characters")
    return value


HeaderOrCookieName = Annotated[str, AfterValidator(_check_token)]
MatchValue = Annotated[str, BeforeValidator(_match_value)]


# ---------------------------------------------------------------------------------------------
# Value types of checks: sizes, dependency URLs and log patterns

_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)")
_SIZE_UNITS: Final[dict[str, int]] = {
    "": 1,
    "B": 1,
    "k": 1000,
    "kB": 1000,
    **{
        f"{letter}{binary}{suffix}": (1024 if binary else 1000) ** power
        for power, letter in enumerate("KMGT", start=1)
        for binary in ("", "i")
        for suffix in ("", "B")
    },
}
SIZE_EXPECTED: Final = (
    "expected a size such as 64Mi, 500M or 2Gi (Ki, Mi, Gi, Ti count in 1024s, K, M, G, T in "
    "1000s, a plain number is bytes)"
)


def parse_size(value: Any) -> int:
    """Bytes in ``value``: ``"64Mi"`` -> 67108864, ``"500M"`` -> 500000000, ``1024`` -> 1024.

    ``ValueError`` for anything else: booleans, negative sizes and unknown units (``64m`` is
    refused rather than guessed: in Kubernetes ``m`` means a thousandth).
    """
    if isinstance(value, bool):
        raise ValueError(SIZE_EXPECTED)
    if isinstance(value, int | float):
        number, unit = float(value), ""
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(SIZE_EXPECTED)
        number, unit = float(match.group(1)), match.group(2)
    else:
        raise ValueError(SIZE_EXPECTED)
    if unit not in _SIZE_UNITS or not math.isfinite(number) or number < 0:
        raise ValueError(SIZE_EXPECTED)
    return round(number * _SIZE_UNITS[unit])


def format_size(size: float) -> str:
    """``67108864`` -> ``"64 MiB"``, ``1536`` -> ``"1.5 KiB"``, ``12`` -> ``"12 B"``."""
    amount = float(size)
    if abs(amount) < 1024:
        return f"{amount:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        amount /= 1024
        if abs(amount) < 1024 or unit == "TiB":
            break
    return f"{amount:.3g} {unit}" if amount < 1000 else f"{amount:.0f} {unit}"


def _size(value: Any) -> int:
    try:
        return parse_size(value)
    except ValueError:
        hint = None
        match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
        if match and match.group(2) and match.group(2)[0].upper() in "KMGT":
            number, letter = match.group(1), match.group(2)[0].upper()
            hint = f"did you mean '{number}{letter}i' or '{number}{letter}'?"
        raise spec_value_error(SIZE_EXPECTED, hint=hint) from None


DataSize = Annotated[
    int,
    BeforeValidator(_size),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}),
]
"""A number of bytes, written as ``64Mi``, ``500M``, ``2Gi`` or a plain number of bytes."""

DependencyKind = Literal["http", "tcp", "postgresql", "redis"]
_DEPENDENCY_KINDS: Final[dict[str, DependencyKind]] = {
    "http": "http",
    "https": "http",
    "tcp": "tcp",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "redis": "redis",
}
_DEPENDENCY_URL_EXPECTED: Final = (
    "expected an http://, https://, tcp://, postgresql:// or redis:// URL, such as "
    "tcp://127.0.0.1:5672"
)


def _check_dependency_url(value: str) -> str:
    text = value.strip()
    scheme, sep, _ = text.partition("://")
    kind = _DEPENDENCY_KINDS.get(scheme.lower()) if sep else None
    if kind is None:
        if not sep:
            hint = f"add a scheme, such as tcp://{text}" if text else None
        else:
            hint = f"'{scheme}' is not probed; tcp://host:port checks that it accepts connections"
        raise spec_value_error(_DEPENDENCY_URL_EXPECTED, hint=hint)
    if kind == "postgresql":
        # libpq reads several hosts (h1:5432,h2:5432) and a socket folder in the query string;
        # psycopg judges those when the check runs.
        return text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise spec_value_error(f"expected a port 1..65535 in the {scheme} URL") from None
    if not parts.hostname:
        raise spec_value_error(f"expected a host in the {scheme} URL, such as {scheme}://127.0.0.1")
    if kind == "tcp" and port is None:
        raise spec_value_error(
            "expected tcp://host:port with a port", hint=f"such as tcp://{parts.hostname}:5672"
        )
    return text


DependencyUrl = Annotated[str, AfterValidator(_check_dependency_url)]


def _check_pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise spec_value_error(
            f"expected a regular expression ({exc})",
            hint="patterns are regular expressions: write \\[ \\( \\. for the plain characters",
        ) from None
    return value


LogPattern = Annotated[NonEmptyStr, AfterValidator(_check_pattern)]
"""A regular expression searched in each log line."""


def _at_least_one_day(days: tuple[str, ...]) -> tuple[str, ...]:
    if not days:
        raise spec_value_error(
            "expected at least one day of " + ", ".join(WEEKDAYS),
            hint="leave out days for every day of the week",
        )
    return days


class RunBuildSpec(SpecModel):
    """``run.build``: build the image of each revision from a folder (no registry involved)."""

    context: NonEmptyStr
    """The build folder, relative to the folder of the spec file."""
    dockerfile: NonEmptyStr = "Dockerfile"
    """Relative to ``context``."""


class RunSpec(SpecModel):
    """How one instance runs: for ``local`` the command that starts it, its port in env ``PORT``;
    for ``docker`` and ``swarm`` the image (or its build), port and limits of each container."""

    command: NonEmptyStr | None = None
    workdir: NonEmptyStr | None = None
    """Relative to the folder of the spec file (see ``LoadedSpec.workdir``)."""
    image: NonEmptyStr | None = None
    build: RunBuildSpec | None = None
    """Container platforms: built once per revision as ``zerodown/<service>:r<revision>``."""
    container_port: Port = 8080
    """Container platforms: the port the app listens on inside the container (env ``PORT``)."""
    cpus: Annotated[Number, Field(gt=0, le=1024)] | None = None
    """Container platforms: CPU limit in cores, e.g. 0.5."""
    memory: DataSize | None = None
    """Container platforms: memory limit, e.g. ``256Mi``."""
    stop_grace_seconds: Duration = defaults.DEFAULT_STOP_GRACE_SECONDS
    restart: RestartPolicy = defaults.DEFAULT_RESTART
    max_restarts: Int = Field(defaults.DEFAULT_MAX_RESTARTS, ge=0)
    """Restarts allowed within ``restart_window`` before the instance is given up."""
    restart_window: PositiveDuration = defaults.DEFAULT_RESTART_WINDOW_SECONDS


class HttpProbe(SpecModel):
    """GET ``path`` on the instance port; healthy when the status is ``expect_status``."""

    path: HttpPath = defaults.DEFAULT_HEALTH_PATH
    expect_status: Int = Field(defaults.DEFAULT_HEALTH_STATUS, ge=100, le=599)


class TcpProbe(SpecModel):
    """Healthy when a TCP connection to the instance port succeeds."""


class HealthCheckSpec(SpecModel):
    """One probe kind (``http``, ``tcp`` or ``command``) and its timing.

    None means "not this kind". In YAML, ``tcp:`` with nothing after it chooses the kind with
    its defaults; the loader reads it as ``tcp: {}`` (see ``validation.py``).
    """

    http: HttpProbe | None = None
    tcp: TcpProbe | None = None
    command: NonEmptyStr | None = None
    """A shell command; exit status 0 means healthy."""
    interval: PositiveDuration = defaults.DEFAULT_HEALTH_INTERVAL_SECONDS
    timeout: PositiveDuration = defaults.DEFAULT_HEALTH_TIMEOUT_SECONDS
    success_threshold: Int = Field(defaults.DEFAULT_SUCCESS_THRESHOLD, ge=1)
    failure_threshold: Int = Field(defaults.DEFAULT_FAILURE_THRESHOLD, ge=1)
    startup_grace: Duration = defaults.DEFAULT_STARTUP_GRACE_SECONDS
    """Time an instance has to become healthy for the first time."""

    @property
    def probe_kind(self) -> ProbeKind:
        """``"http"``, ``"tcp"`` or ``"command"`` (``"http"`` if none is set)."""
        if self.tcp is not None:
            return "tcp"
        if self.command is not None:
            return "command"
        return "http"


def _default_health_check() -> HealthCheckSpec:
    return HealthCheckSpec(http=HttpProbe())


class CanaryMatchRule(SpecModel):
    """``{header: X-Canary, value: "1"}``: requests that carry this always go to the canary.

    Exactly one of ``header`` and ``cookie`` (checked in ``validation.py``); the value must
    match exactly.
    """

    header: HeaderOrCookieName | None = None
    cookie: HeaderOrCookieName | None = None
    value: MatchValue

    @property
    def kind(self) -> Literal["header", "cookie"]:
        """``"header"`` or ``"cookie"``."""
        return "cookie" if self.header is None and self.cookie is not None else "header"

    @property
    def name(self) -> str:
        """The header's or the cookie's name."""
        return self.header if self.header is not None else (self.cookie or "")


class TrafficSpec(SpecModel):
    """Where the proxy serves the service, and how it spreads requests."""

    listen: HostPort = defaults.DEFAULT_LISTEN
    sticky_sessions: bool = defaults.DEFAULT_STICKY_SESSIONS
    canary_match: tuple[CanaryMatchRule, ...] = ()
    """A/B rules: a request matching any of them goes to the canary whatever the weight."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("canaryMatch",))

    @property
    def address(self) -> Address:
        """``listen`` as an ``Address``."""
        host, port = split_host_port(self.listen)
        return Address(host=host, port=port)


class RollingSpec(SpecModel):
    """Replace instances a few at a time, each behind its health check."""

    max_surge: IntOrPercent = defaults.DEFAULT_MAX_SURGE
    """Extra instances allowed above ``replicas`` during the rollout (count or ``"25%"``)."""
    max_unavailable: IntOrPercent = defaults.DEFAULT_MAX_UNAVAILABLE
    """Instances allowed below ``replicas`` during the rollout (count or ``"25%"``)."""
    min_ready_seconds: Duration = defaults.DEFAULT_MIN_READY_SECONDS
    """How long a new instance must stay healthy before it counts as available."""

    def surge_count(self, replicas: int) -> int:
        """``max_surge`` as a count for ``replicas`` (percentages round up, as in Kubernetes)."""
        return resolve_int_or_percent(self.max_surge, total=replicas, round_up=True)

    def unavailable_count(self, replicas: int) -> int:
        """``max_unavailable`` as a count for ``replicas`` (percentages round down)."""
        return resolve_int_or_percent(self.max_unavailable, total=replicas, round_up=False)


class BlueGreenSpec(SpecModel):
    """Start a full second environment, then switch all traffic at once."""

    auto_promote: bool = defaults.DEFAULT_AUTO_PROMOTE
    scale_down_delay_seconds: Duration = defaults.DEFAULT_SCALE_DOWN_DELAY_SECONDS
    """How long the old environment stays up after the switch, for a fast rollback."""
    preview_port: Port | None = None
    """A port serving the new environment before the switch; none if not set."""


class CanarySpec(SpecModel):
    """Shift traffic in steps; ``steps`` None means the defaults (``effective_canary_steps``)."""

    steps: tuple[CanaryStep, ...] | None = None


NativeOrder = Literal["start-first", "stop-first"]
NativeFailureAction = Literal["pause", "rollback", "continue"]


class NativeSpec(SpecModel):
    """``platform: swarm`` only: one Swarm service of ``replicas`` tasks, updated in place by
    Swarm's own ``update_config``; zerodown routes to each task and judges the new version."""

    parallelism: Int = Field(defaults.DEFAULT_NATIVE_PARALLELISM, ge=0)
    """Tasks Swarm replaces at once (0: all of them)."""
    delay: Duration = defaults.DEFAULT_NATIVE_DELAY_SECONDS
    """Pause between two batches of tasks."""
    order: NativeOrder = defaults.DEFAULT_NATIVE_ORDER
    """``start-first`` starts a new task before its old one stops; ``stop-first`` the reverse."""
    failure_action: NativeFailureAction = defaults.DEFAULT_NATIVE_FAILURE_ACTION
    """What Swarm does when an updated task fails: ``pause``, ``rollback`` or ``continue``."""
    monitor: Duration = defaults.DEFAULT_NATIVE_MONITOR_SECONDS
    """How long Swarm watches each updated task for a failure."""
    max_failure_ratio: Fraction = defaults.DEFAULT_NATIVE_MAX_FAILURE_RATIO
    """Share of updated tasks that may fail before the failure action applies."""


class StrategySpec(SpecModel):
    """Exactly one of ``rolling``, ``blueGreen``, ``canary``, ``native`` (checked in
    ``validation.py``).

    None means "not this kind"; in YAML ``canary:`` alone chooses canary with its defaults.
    """

    rolling: RollingSpec | None = None
    blue_green: BlueGreenSpec | None = None
    canary: CanarySpec | None = None
    native: NativeSpec | None = None

    @property
    def name(self) -> StrategyName:
        """``"rolling"``, ``"blue-green"``, ``"canary"`` or ``"native"`` (``"rolling"`` if none
        is set)."""
        if self.native is not None:
            return "native"
        if self.canary is not None:
            return "canary"
        if self.blue_green is not None:
            return "blue-green"
        return "rolling"


def _default_strategy() -> StrategySpec:
    return StrategySpec(rolling=RollingSpec())


class AnalysisSpec(SpecModel):
    """How a canary (or a new release) is judged against its baseline."""

    judge: JudgeName = defaults.DEFAULT_JUDGE
    interval: PositiveDuration = defaults.DEFAULT_ANALYSIS_INTERVAL_SECONDS
    duration: Duration | None = None
    """Shortest time an analysis observes; None: until ``min_requests`` have arrived."""
    max_wait: PositiveDuration = defaults.DEFAULT_ANALYSIS_MAX_WAIT_SECONDS
    """Longest an analysis waits for ``min_requests``; then the verdict is inconclusive."""
    min_requests: MinRequests = defaults.DEFAULT_MIN_REQUESTS
    """Canary requests needed before a verdict."""
    max_error_rate: Fraction = defaults.DEFAULT_MAX_ERROR_RATE
    max_latency_ratio: LatencyRatio = defaults.DEFAULT_MAX_LATENCY_RATIO
    """Largest allowed canary/baseline ratio of the ``latency_quantile`` latency."""
    latency_quantile: LatencyQuantile = defaults.DEFAULT_LATENCY_QUANTILE
    min_latency_increase: Duration = defaults.DEFAULT_MIN_LATENCY_INCREASE_SECONDS
    """A latency regression must also exceed the baseline by this much (noise floor)."""
    min_availability: Fraction = defaults.DEFAULT_MIN_AVAILABILITY
    rollback_on_health_check_failure: bool = defaults.DEFAULT_ROLLBACK_ON_HEALTH_CHECK_FAILURE
    alpha: Alpha = defaults.DEFAULT_ALPHA
    max_log_error_rate: Fraction | None = None
    """Most error-level log lines (error, critical) per canary request; None: not checked."""
    """False-alarm rate of the sequential judge."""


class CapacityCheckSpec(SpecModel):
    """Room on this machine for the instances a deployment starts (the default pre-check)."""

    cpu_per_instance: Number = Field(defaults.DEFAULT_CPU_PER_INSTANCE, ge=0)
    """CPU cores one instance needs; compared with the cores the load average leaves free."""
    memory_per_instance: DataSize = defaults.DEFAULT_MEMORY_PER_INSTANCE
    """Bytes of available memory one instance needs."""
    disk_free: DataSize = defaults.DEFAULT_DISK_FREE
    """Bytes that must be free on the disk holding zerodown's state."""


class DependencyCheckSpec(SpecModel):
    """A service the release needs, probed for real before anything changes.

    ``http(s)://`` is a GET answering ``expect_status``, ``tcp://`` a connect,
    ``postgresql://`` a connection running ``SELECT 1`` and ``redis://`` a ``PING``.
    """

    name: NonEmptyStr
    url: DependencyUrl
    timeout: PositiveDuration = defaults.DEFAULT_DEPENDENCY_TIMEOUT_SECONDS
    expect_status: Int = Field(defaults.DEFAULT_DEPENDENCY_STATUS, ge=100, le=599)
    """For http(s) URLs only (``validation.py`` refuses it on the others)."""

    @property
    def kind(self) -> DependencyKind:
        """``"http"`` (also for https), ``"tcp"``, ``"postgresql"`` or ``"redis"``."""
        return _DEPENDENCY_KINDS[self.url.partition("://")[0].lower()]


class BackupCheckSpec(SpecModel):
    """A fresh backup before the deployment: made by ``command``, or one at most ``max_age`` old.

    ``artifacts`` is a glob, relative to the spec's folder, naming the backup files; the newest
    is the one checked (not empty; with a command, written by it).
    """

    command: NonEmptyStr | None = None
    """A shell command run in the spec's folder; exit status 0 means it worked."""
    artifacts: NonEmptyStr
    max_age: PositiveDuration = defaults.DEFAULT_BACKUP_MAX_AGE_SECONDS
    """Without a command: how old the newest artifact may be."""


class PreChecksSpec(SpecModel):
    """Checks run before a deployment changes anything."""

    capacity: CapacityCheckSpec = Field(default_factory=CapacityCheckSpec)
    dependencies: tuple[DependencyCheckSpec, ...] = ()
    backup: BackupCheckSpec | None = None
    """None: no backup is checked (the report says so)."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("capacity", "dependencies"))


HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class SmokeTestSpec(SpecModel):
    """One HTTP request to the new release, and what its answer must hold.

    ``expect_json`` keys may be dotted paths into the JSON body (``{"data.version": "2"}``); a
    mapping value must be contained in the answer's, any other value must equal it.
    """

    name: NonEmptyStr
    method: HttpMethod = defaults.DEFAULT_SMOKE_METHOD
    path: HttpPath = defaults.DEFAULT_SMOKE_PATH
    headers: dict[HeaderOrCookieName, MatchValue] = Field(default_factory=dict)
    body: str | None = None
    expect_status: Int = Field(defaults.DEFAULT_SMOKE_STATUS, ge=100, le=599)
    expect_body: NonEmptyStr | None = None
    """Text the body must contain."""
    expect_json: dict[NonEmptyStr, JsonValue] | None = None
    timeout: PositiveDuration = defaults.DEFAULT_SMOKE_TIMEOUT_SECONDS

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("headers",))


class PerformanceCheckSpec(SpecModel):
    """The new release's p95 latency against the previous release's recorded p95."""

    max_p95_ratio: LatencyRatio = defaults.DEFAULT_MAX_P95_RATIO


class LogScanSpec(SpecModel):
    """Lines in the new instances' logs that must not appear (more than ``max_matches`` times).

    Patterns are regular expressions searched in each line; case matters.
    """

    patterns: tuple[LogPattern, ...] = defaults.DEFAULT_LOG_PATTERNS
    max_matches: Int = Field(defaults.DEFAULT_LOG_MAX_MATCHES, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("patterns",))


class FeedbackCheckSpec(SpecModel):
    """What users' requests say about the new release: client errors and abandoned requests."""

    max_4xx_rate: Fraction = Field(defaults.DEFAULT_MAX_4XX_RATE, alias="max4xxRate")
    max_client_abort_rate: Fraction = defaults.DEFAULT_MAX_CLIENT_ABORT_RATE
    url: WebhookUrl | None = None
    """An endpoint (a feedback or error-tracking service) that must answer 2xx."""


class PostChecksSpec(SpecModel):
    """Checks run once the new release serves all the traffic.

    None (or no smoke tests) means not configured; in YAML ``logs:`` alone turns the log scan
    on with its defaults (``validation.py`` reads it as ``logs: {}``).
    """

    smoke: tuple[SmokeTestSpec, ...] = ()
    performance: PerformanceCheckSpec | None = None
    logs: LogScanSpec | None = None
    feedback: FeedbackCheckSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("smoke",))


class ChecksSpec(SpecModel):
    """Pre-deployment checks (capacity always) and post-deployment validation."""

    pre: PreChecksSpec = Field(default_factory=PreChecksSpec)
    post: PostChecksSpec = Field(default_factory=PostChecksSpec)

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("pre", "post"))


class HooksSpec(SpecModel):
    """Shell commands run around a deployment."""

    pre_deploy: tuple[NonEmptyStr, ...] = ()
    post_deploy: tuple[NonEmptyStr, ...] = ()
    backup: tuple[NonEmptyStr, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("preDeploy", "postDeploy", "backup"))


class NotifySpec(SpecModel):
    """Webhooks that get a JSON POST when a release ends in one of the ``on`` outcomes."""

    webhooks: tuple[WebhookUrl, ...] = ()
    on: tuple[NotifyEvent, ...] = defaults.DEFAULT_NOTIFY_ON
    timeout: PositiveDuration = defaults.DEFAULT_NOTIFY_TIMEOUT_SECONDS
    """Per delivery attempt."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("webhooks", "on", "timeout"))

    def notifies(self, outcome: str) -> bool:
        """True when a release ending in ``outcome`` is to be sent to the webhooks."""
        return bool(self.webhooks) and outcome in self.on


def _monitor_interval(seconds: float) -> float:
    if seconds < defaults.MIN_MONITOR_INTERVAL_SECONDS:
        raise spec_value_error(
            "expected an interval of at least 1s (the monitor samples the service this often)"
        )
    return seconds


MonitorInterval = Annotated[PositiveDuration, AfterValidator(_monitor_interval)]


class MonitorSpec(SpecModel):
    """How ``zerodown serve`` watches the service once it runs: how often its metrics are
    sampled, how long they are kept, which alert rules run over them and where alerts go.

    ``rules`` are Prometheus rule files and ``alertmanager`` an Alertmanager configuration
    file, both relative to the spec's folder; their own syntax is checked, with line numbers,
    when the service is brought up or deployed. Without ``alertmanager``, alerts go to
    ``notify.webhooks`` (Alertmanager's webhook JSON), grouped by alert name and service.
    """

    interval: MonitorInterval = defaults.DEFAULT_MONITOR_INTERVAL_SECONDS
    raw_retention: PositiveDuration = defaults.DEFAULT_MONITOR_RAW_RETENTION_SECONDS
    """Samples are kept at full resolution this long."""
    retention: PositiveDuration = defaults.DEFAULT_MONITOR_RETENTION_SECONDS
    """One-minute aggregates are kept this long (at least ``raw_retention``)."""
    default_rules: bool = True
    """Evaluate the rules zerodown ships (error rate, latency, availability, health ...)."""
    rules: tuple[NonEmptyStr, ...] = ()
    alertmanager: NonEmptyStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("rules",))

    @field_validator("retention")
    @classmethod
    def _retention_covers_raw(cls, value: float, info: ValidationInfo) -> float:
        raw = info.data.get("raw_retention")
        if isinstance(raw, float) and value < raw:
            raise spec_value_error(
                f"expected a retention of at least rawRetention ({format_duration(raw)})",
                hint="aggregates are made from the full-resolution samples",
            )
        return value


class DeployWindow(SpecModel):
    """Days and a time range, in one time zone, when deployments may start.

    An ``end`` before the ``start`` wraps past midnight: ``22:00``-``02:00`` on ``fri`` is
    Friday 22:00 to Saturday 02:00. ``24:00`` is the end of the day.
    """

    days: Annotated[tuple[Weekday, ...], AfterValidator(_at_least_one_day)] = WEEKDAYS
    start: StartTime = defaults.DEFAULT_WINDOW_START
    end: EndTime = defaults.DEFAULT_WINDOW_END
    timezone: TimeZoneName = defaults.DEFAULT_WINDOW_TIMEZONE

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """``timezone`` as a ``ZoneInfo``."""
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def start_minute(self) -> int:
        """Minutes after midnight when the window opens (0..1439)."""
        return clock_minutes(self.start)

    @property
    def end_minute(self) -> int:
        """Minutes after midnight when the window closes (0..1440)."""
        return clock_minutes(self.end)

    @property
    def wraps(self) -> bool:
        """True for an overnight window, whose end is on the next day."""
        return self.end_minute <= self.start_minute


class FreezeSpec(SpecModel):
    """A period when no deployment starts, even inside a window."""

    start: AwareTime
    end: AwareTime
    reason: NonEmptyStr | None = None


class DeploySpec(SpecModel):
    """When deployments may start: inside one of ``windows`` (none: always), outside freezes."""

    windows: tuple[DeployWindow, ...] = ()
    freezes: tuple[FreezeSpec, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("windows", "freezes"))


# ---------------------------------------------------------------------------------------------
# Backups: what is saved, when, for how long, and where

BackupTargetKind = Literal["files", "sqlite", "postgresql", "docker-volume"]
_TARGET_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")


def _check_target_name(value: str) -> str:
    if not _TARGET_NAME.fullmatch(value):
        raise spec_value_error(
            "expected a target name of lowercase letters, digits and '-', starting with a "
            "letter, at most 40 characters (it names files and metric labels)"
        )
    return value


def _check_cron(value: str) -> str:
    from croniter import croniter  # imported here: only specs with a schedule need it

    text = " ".join(value.split())
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise spec_value_error(
            "expected a cron expression of five fields (minute hour day month weekday), "
            "such as '0 3 * * *' (every day at 03:00 UTC)"
        )
    return text


BackupTargetName = Annotated[str, AfterValidator(_check_target_name)]
CronExpression = Annotated[str, AfterValidator(_check_cron)]
"""Five cron fields, evaluated in UTC; written back with single spaces."""


class RetentionSpec(SpecModel):
    """Which backups are kept, as ``restic forget`` reads its ``--keep-*`` options.

    A backup is kept when any rule keeps it; with no rule at all every backup is kept.
    """

    keep_last: KeepCount | None = None
    keep_hourly: KeepCount | None = None
    keep_daily: KeepCount | None = None
    keep_weekly: KeepCount | None = None
    keep_monthly: KeepCount | None = None
    keep_yearly: KeepCount | None = None
    """Counts are a number or ``unlimited``; see ``zerodown.backup.retention`` for the rules."""
    keep_within: KeepWithin | None = None
    """Every backup taken less than this before the newest one: ``1y2m3d4h``, m is months."""
    keep_within_hourly: KeepWithin | None = None
    keep_within_daily: KeepWithin | None = None
    keep_within_weekly: KeepWithin | None = None
    keep_within_monthly: KeepWithin | None = None
    keep_within_yearly: KeepWithin | None = None
    timezone: TimeZoneName = defaults.DEFAULT_WINDOW_TIMEZONE
    """The zone whose hours, days, weeks, months and years the rules count."""

    @property
    def configured(self) -> bool:
        """True when at least one rule is set (otherwise nothing is ever removed)."""
        return any(
            value is not None for key, value in self.model_dump().items() if key != "timezone"
        )


class BackupTargetSpec(SpecModel):
    """One thing to back up: a folder or file (``files``, through restic), a SQLite database
    file, a PostgreSQL database (``url``) or a Docker volume (``volume``)."""

    name: BackupTargetName
    kind: BackupTargetKind
    path: NonEmptyStr | None = None
    """``files``: a file or folder; ``sqlite``: the database file. Relative to the spec's folder."""
    url: NonEmptyStr | None = None
    """``postgresql``: the database's ``postgresql://`` URL (a password in it is never shown)."""
    volume: NonEmptyStr | None = None
    """``docker-volume``: the volume's name."""
    exclude: tuple[NonEmptyStr, ...] = ()
    """``files``: patterns left out, as restic's ``--exclude`` reads them."""
    schedule: CronExpression | None = None
    """When ``zerodown serve`` takes a backup (cron, UTC); None: only on demand."""
    max_age: PositiveDuration | None = None
    """The newest good backup may be this old before an alert fires; None: one schedule
    period plus half of it when there is a schedule, else no limit."""
    before_deploy: bool = False
    """Take a fresh backup before every deployment (the "backup confirmed" pre-check)."""
    retention: RetentionSpec | None = None
    """Overrides the section's retention for this target."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("exclude",))


class BackupsSpec(SpecModel):
    """Backups of the service's data: targets, where backups go and how they are encrypted.

    ``repository`` is a folder (relative to the spec's folder; default ``backups`` in the state
    directory) holding the restic repository of ``files`` targets and the database dumps. The
    repository password comes from ``passwordFile`` or the environment variable
    ``passwordEnv``; it is read when needed and never written anywhere.
    """

    repository: NonEmptyStr | None = None
    password_file: NonEmptyStr | None = None
    password_env: EnvKey | None = None
    retention: RetentionSpec = Field(default_factory=RetentionSpec)
    targets: tuple[BackupTargetSpec, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _drop_nulls(data, ("retention", "targets"))

    def target(self, name: str) -> BackupTargetSpec | None:
        """The target called ``name``, or None."""
        return next((t for t in self.targets if t.name == name), None)

    def retention_for(self, target: BackupTargetSpec) -> RetentionSpec:
        """The target's own retention if it has one, else the section's."""
        return target.retention if target.retention is not None else self.retention


# ---------------------------------------------------------------------------------------------
# Incidents: what zerodown opens by itself (see zerodown.incidents)

IncidentSeverity = Annotated[
    Literal["SEV1", "SEV2", "SEV3", "SEV4", "SEV5"],
    BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v),
]
"""SEV1 (worst) to SEV5; ``sev3`` is read as ``SEV3``."""


class IncidentsSpec(SpecModel):
    """Incidents zerodown opens for this service on its own."""

    open_on_rollback: bool = True
    """Open an incident when the engine rolls a release back by itself (judge, health check,
    post-deployment validation); a person's abort or rollback opens none."""
    rollback_severity: IncidentSeverity = "SEV3"
    """The severity of those incidents."""


class ServiceSpec(SpecModel):
    """A whole ``zerodown.yaml``: one service and how to deploy it."""

    service: ServiceNameStr
    version: NonEmptyStr | None = None
    """Default version label; the CLI's ``--version`` wins over it."""
    platform: Platform = defaults.DEFAULT_PLATFORM
    run: RunSpec
    replicas: Int = Field(defaults.DEFAULT_REPLICAS, ge=1, le=1000)
    env: dict[EnvKey, EnvValue] = Field(default_factory=dict)
    health_check: HealthCheckSpec = Field(default_factory=_default_health_check)
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    strategy: StrategySpec = Field(default_factory=_default_strategy)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    checks: ChecksSpec = Field(default_factory=ChecksSpec)
    hooks: HooksSpec = Field(default_factory=HooksSpec)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    monitor: MonitorSpec = Field(default_factory=MonitorSpec)
    deploy: DeploySpec = Field(default_factory=DeploySpec)
    backups: BackupsSpec = Field(default_factory=BackupsSpec)
    dr: DrSpec = Field(default_factory=DrSpec)
    incidents: IncidentsSpec = Field(default_factory=IncidentsSpec)

    @model_validator(mode="before")
    @classmethod
    def _empty_section_means_defaults(cls, data: Any) -> Any:
        # ``hooks:`` with every line below commented out is YAML null: use the defaults.
        sections = (
            "env",
            "healthCheck",
            "traffic",
            "strategy",
            "analysis",
            "checks",
            "hooks",
            "notify",
            "monitor",
            "deploy",
            "backups",
            "dr",
            "incidents",
        )
        return _drop_nulls(data, sections)

    @property
    def strategy_name(self) -> StrategyName:
        """``"rolling"``, ``"blue-green"``, ``"canary"`` or ``"native"``."""
        return self.strategy.name

    @property
    def canary_steps(self) -> tuple[CanaryStep, ...]:
        """The canary steps with defaults resolved; empty unless the strategy is canary."""
        return defaults.effective_canary_steps(self)

    def analysis_for(self, step: AnalysisStep | None = None) -> AnalysisSpec:
        """The analysis settings of ``step`` (the top-level ones if ``step`` is None)."""
        return defaults.effective_analysis(self, step)
