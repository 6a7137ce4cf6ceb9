"""Alert rules in Prometheus' rule-file syntax, and the alert state machine that runs them.

A rule file is what Prometheus reads (``groups: [{name, interval, rules: [{alert, expr, for,
keep_firing_for, labels, annotations}]}]``), so rules can be checked with ``promtool`` and moved
to a real Prometheus unchanged. Expressions are the restricted PromQL of ``promql.py``; every
problem in a file is reported at once with its file, line and field (``SpecError``).

Labels and annotations are templates in the subset of Go's ``text/template`` that alert rules
use: ``{{ $labels.name }}``, ``{{ $value }}``, ``{{ .Labels.name }}``, ``{{ $externalLabels.x }}``,
``{{ $externalURL }}``, pipelines into ``humanize``, ``humanize1024``, ``humanizePercentage``,
``humanizeDuration``, ``printf "%.2f"``, ``toUpper``, ``toLower``, ``title``, and ``index``;
``{{- ... -}}`` trims spaces and ``{{/* ... */}}`` is a comment. Control structures (``if``,
``range``) and ``query`` are refused when the file is loaded. A missing label renders as
nothing, numbers as Go prints them (``1e+06``), so annotations read the same as Prometheus'.

The state machine is Prometheus' own (``rules/alerting.go``), evaluated at the times the caller
gives (``RuleEvaluator.evaluate(now)``; each group runs when its ``interval`` has passed):

* a label set first returned by the expression becomes **pending**, ``active_at`` = now;
* it becomes **firing** at the first evaluation at least ``for`` after ``active_at``
  (at once when ``for`` is 0), ``fired_at`` = now;
* a pending alert whose label set is no longer returned is dropped at once;
* a firing one stays firing for ``keep_firing_for`` after the expression stopped returning it,
  then is **resolved** (state inactive, ``resolved_at`` = now);
* resolved alerts are kept for 15 minutes, so they are re-sent to the notifier, then forgotten;
  a label set that comes back while resolved starts over as a new pending alert.

``RuleEvaluator.alerts_to_send(now)`` applies Prometheus' resend rule: an alert that is not
pending is sent when it was resolved since it was last sent, or when ``resend_delay`` (1 minute)
has passed since; ``ends_at`` is ``resolved_at``, or ``now + 4 * max(resend_delay, interval)``
for a firing alert (so a receiver drops it if the sender dies).

Across a reload or a restart, ``saved_alerts()`` and ``adopt()`` carry alert states over, as
Prometheus does for rules whose group, name, expression and labels are unchanged (its
``Group.CopyState`` and ``ALERTS_FOR_STATE``): ``for`` timers go on, firing alerts stay firing.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Final

from zerodown.core.errors import InputError, SpecError, SpecProblem
from zerodown.ops import promql
from zerodown.ops.series import LabelSet, SeriesStore, label_set
from zerodown.spec.loader import read_yaml
from zerodown.spec.positions import DocPath, SourceMap, format_path

__all__ = [
    "DEFAULT_EVALUATION_INTERVAL",
    "DEFAULT_RESEND_DELAY",
    "RESOLVED_RETENTION",
    "Alert",
    "AlertRule",
    "AlertState",
    "RuleEvaluator",
    "RuleGroup",
    "SavedAlert",
    "Template",
    "TemplateError",
    "default_rules",
    "default_rules_text",
    "format_go_float",
    "humanize",
    "load_rules",
    "parse_rules",
    "rule_id",
    "with_generator_url",
]

DEFAULT_EVALUATION_INTERVAL: Final = 60.0
"""A group without ``interval`` is evaluated every minute (Prometheus' default)."""
DEFAULT_RESEND_DELAY: Final = 60.0
"""Prometheus' ``--rules.alert.resend-delay``."""
RESOLVED_RETENTION: Final = 15 * 60.0
"""How long a resolved alert is kept (and re-sent) before it is forgotten."""

ALERT_NAME: Final = "alertname"
_LABEL_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --- number formatting as Go prints it -------------------------------------------------------


def format_go_float(value: float) -> str:
    """``value`` as Go's ``fmt`` prints a float64 with ``%v``: ``0.5``, ``100``, ``1e+06``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent += len("".join(map(str, digit_tuple))) - len(digits)
    point = len(digits) + exponent  # value = 0.<digits> * 10**point
    minus = "-" if sign else ""
    exp10 = point - 1
    if exp10 < -4 or exp10 >= max(6, 0):
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{minus}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{minus}{digits}{'0' * (point - len(digits))}"
    return f"{minus}{digits[:point]}.{digits[point:]}"


def _go_g4(value: float) -> str:
    """Go's ``%.4g``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"


def humanize(value: float) -> str:
    """Prometheus' ``humanize``: 4 significant digits and an SI prefix (``1.235k``, ``12.5m``)."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _go_g4(value)
    prefix = ""
    if abs(value) >= 1:
        for candidate in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix = candidate
            value /= 1000
        return _go_g4(value) + prefix
    for candidate in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix = candidate
        value *= 1000
    return _go_g4(value) + prefix


def _humanize_1024(value: float) -> str:
    if abs(value) <= 1 or math.isnan(value) or math.isinf(value):
        return _go_g4(value)
    prefix = ""
    for candidate in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(value) < 1024:
            break
        prefix = candidate
        value /= 1024
    return _go_g4(value) + prefix


def _humanize_duration(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return _go_g4(value)
    if value == 0:
        return "0s"
    if abs(value) >= 1:
        sign = "-" if value < 0 else ""
        value = abs(value)
        whole = int(value)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_go_g4(value)}s"
    prefix = ""
    for candidate in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix = candidate
        value *= 1000
    return f"{_go_g4(value)}{prefix}s"


# --- templates ---------------------------------------------------------------------------------


class TemplateError(InputError):
    """A label or annotation template uses something outside the supported subset."""

    code = "invalid_template"


_ACTION: Final = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.DOTALL)
_WORD: Final = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|[^\s"`]+')
_PRINTF_VERB: Final = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")
_FUNCTIONS: Final = frozenset(
    {
        "humanize",
        "humanize1024",
        "humanizePercentage",
        "humanizeDuration",
        "printf",
        "toUpper",
        "toLower",
        "title",
        "index",
    }
)
_VARIABLES: Final = {
    "$labels": "labels",
    ".Labels": "labels",
    "$externalLabels": "external_labels",
    ".ExternalLabels": "external_labels",
    "$value": "value",
    ".Value": "value",
    "$externalURL": "external_url",
    ".ExternalURL": "external_url",
    "$": "",
    ".": "",
}


@dataclass(frozen=True)
class _TemplateData:
    labels: Mapping[str, str]
    value: float
    external_labels: Mapping[str, str]
    external_url: str


def _printable(value: object) -> str:
    if isinstance(value, float):
        return format_go_float(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _go_printf(fmt: str, args: Sequence[object]) -> str:
    queue = list(args)

    def one(found: re.Match[str]) -> str:
        flags, width, precision, verb = found.groups()
        if verb == "%":
            return "%"
        if not queue:
            return f"%!{verb}(MISSING)"
        arg = queue.pop(0)
        spec = flags + (width or "") + (f".{precision}" if precision is not None else "")
        if verb in "vs":
            text = _printable(arg)
            return f"%{spec}s" % text
        if verb == "q":
            return '"' + _printable(arg).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if verb in "dfFeEgGxX" and isinstance(arg, int | float):
            number = float(arg)
            if verb in "dxX":
                if not number.is_integer():
                    return f"%!{verb}(float64={format_go_float(number)})"
                return f"%{spec}{verb}" % int(number)
            if math.isnan(number) or math.isinf(number):
                return _go_g4(number)
            return f"%{spec}{verb}" % number
        return f"%!{verb}({_printable(arg)})"

    return _PRINTF_VERB.sub(one, fmt)


class Template:
    """A label or annotation template, checked when it is created."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._parts: list[str | list[list[str]]] = []
        position = 0
        pending_trim = False
        for found in _ACTION.finditer(text):
            literal = text[position : found.start()]
            if pending_trim:
                literal = literal.lstrip()
            if found.group(1):
                literal = literal.rstrip()
            self._parts.append(literal)
            pending_trim = bool(found.group(3))
            body = found.group(2)
            position = found.end()
            if body.startswith("/*") and body.endswith("*/"):
                continue
            self._parts.append(self._pipeline(body))
        tail = text[position:]
        if "{{" in tail:
            raise TemplateError(f"unclosed action in template {text!r}")
        self._parts.append(tail.lstrip() if pending_trim else tail)

    def _pipeline(self, body: str) -> list[list[str]]:
        commands: list[list[str]] = []
        for command_text in _split_pipeline(body):
            words = _WORD.findall(command_text)
            if not words:
                raise TemplateError(f"empty command in {{{{ {body} }}}}")
            head = words[0]
            if head in ("if", "else", "end", "range", "with", "define", "template", "block"):
                raise TemplateError(f"{{{{ {head} }}}} is not supported in alert templates")
            if head == "query":
                raise TemplateError("query is not supported in alert templates")
            if head not in _FUNCTIONS and (len(words) > 1 or commands):
                raise TemplateError(f"unknown template function {head!r}")
            for word in words[1:] if head in _FUNCTIONS else words:
                self._check_operand(word)
            commands.append(words)
        return commands

    @staticmethod
    def _check_operand(word: str) -> None:
        if word[0] in '"`' or _is_number(word):
            return
        root = _operand_root(word)
        if root not in _VARIABLES:
            raise TemplateError(f"unknown variable or field {word!r}")

    def render(
        self,
        *,
        labels: Mapping[str, str],
        value: float,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
    ) -> str:
        """The text for one alert; an error while expanding is rendered as Prometheus does."""
        data = _TemplateData(labels, value, external_labels or {}, external_url)
        out: list[str] = []
        try:
            for part in self._parts:
                out.append(part if isinstance(part, str) else _printable(_run(part, data)))
        except (TypeError, ValueError, KeyError) as exc:
            return f"<error expanding template: {exc}>"
        return "".join(out)


def _split_pipeline(body: str) -> list[str]:
    parts: list[str] = []
    current = ""
    quote = ""
    for char in body:
        if quote:
            current += char
            if char == quote and not current.endswith("\\" + quote):
                quote = ""
        elif char in '"`':
            quote = char
            current += char
        elif char == "|":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts]


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _operand_root(word: str) -> str:
    if word in _VARIABLES:
        return word
    if word.startswith("$"):
        return word.split(".", 1)[0]
    if word.startswith("."):
        return "." + word[1:].split(".", 1)[0]
    return word


def _operand(word: str, data: _TemplateData) -> object:
    if word[0] == '"':
        return bytes(word[1:-1], "utf-8").decode("unicode_escape")
    if word[0] == "`":
        return word[1:-1]
    if _is_number(word):
        return float(word)
    root = _operand_root(word)
    attribute = _VARIABLES[root]
    base: object = data if not attribute else getattr(data, attribute)
    rest = word[len(root) :].lstrip(".")
    if not rest:
        return base
    if isinstance(base, Mapping):
        return base.get(rest, "")  # Prometheus renders a missing label as nothing
    raise ValueError(f"cannot read field {rest!r} of {word.split('.')[0]}")


def _run(commands: list[list[str]], data: _TemplateData) -> object:
    result: object = None
    for index, words in enumerate(commands):
        head = words[0]
        if head not in _FUNCTIONS:
            result = _operand(head, data)
            continue
        args = [_operand(word, data) for word in words[1:]]
        if index > 0:
            args.append(result)
        result = _call(head, args)
    return result


def _number(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise TypeError(f"expected a number, got {_printable(value)!r}")


def _call(name: str, args: list[object]) -> object:
    if name == "printf":
        if not args or not isinstance(args[0], str):
            raise TypeError("printf needs a format string")
        return _go_printf(args[0], args[1:])
    if name == "index":
        if len(args) != 2 or not isinstance(args[0], Mapping):
            raise TypeError("index needs a map and a key")
        return args[0].get(str(args[1]), "")
    if len(args) != 1:
        raise TypeError(f"{name} takes one argument, got {len(args)}")
    arg = args[0]
    if name == "humanize":
        return humanize(_number(arg))
    if name == "humanize1024":
        return _humanize_1024(_number(arg))
    if name == "humanizePercentage":
        return _go_g4(_number(arg) * 100) + "%"
    if name == "humanizeDuration":
        return _humanize_duration(_number(arg))
    text = _printable(arg)
    if name == "toUpper":
        return text.upper()
    if name == "toLower":
        return text.lower()
    return text.title()


# --- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRule:
    """One ``alert:`` rule."""

    name: str
    expr: promql.Expr
    expr_text: str
    for_: float = 0.0
    keep_firing_for: float = 0.0
    labels: Mapping[str, Template] = field(default_factory=dict)
    annotations: Mapping[str, Template] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleGroup:
    """Rules evaluated together, in order, every ``interval`` seconds."""

    name: str
    rules: tuple[AlertRule, ...]
    interval: float = DEFAULT_EVALUATION_INTERVAL


def rule_id(group: RuleGroup, rule: AlertRule) -> str:
    """What decides a rule's alerts, as a short hash: its group's name, its name, its expression
    (spacing aside) and its labels. Alerts keep their states while it is unchanged."""
    parts = [
        group.name,
        rule.name,
        " ".join(rule.expr_text.split()),
        json.dumps(sorted((name, template.text) for name, template in rule.labels.items())),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


_GROUP_KEYS: Final = frozenset({"name", "interval", "rules"})
_RULE_KEYS: Final = frozenset({"alert", "expr", "for", "keep_firing_for", "labels", "annotations"})


class _Problems:
    def __init__(self, filename: str, source: SourceMap) -> None:
        self.filename = filename
        self.source = source
        self.found: list[SpecProblem] = []

    def add(self, path: DocPath, message: str, *, hint: str | None = None) -> None:
        at = self.source.value(path)
        self.found.append(
            SpecProblem(
                file=self.filename,
                line=at.line,
                column=at.column,
                path=format_path(path),
                message=message,
                hint=hint,
            )
        )

    def unknown_keys(self, data: Mapping[str, Any], known: frozenset[str], path: DocPath) -> None:
        for key in data:
            if key not in known:
                at = self.source.key((*path, key))
                hint = "recording rules are not supported" if key == "record" else None
                self.found.append(
                    SpecProblem(
                        file=self.filename,
                        line=at.line,
                        column=at.column,
                        path=format_path((*path, key)),
                        message=f"unknown field {key!r}; expected one of "
                        + ", ".join(sorted(known)),
                        hint=hint,
                    )
                )


def parse_rules(text: str, *, filename: str = "<string>") -> list[RuleGroup]:
    """The groups of a Prometheus rule file; ``SpecError`` listing every problem."""
    if not text.strip():
        raise SpecError(
            [SpecProblem(file=filename, line=1, path="", message="the rule file is empty")]
        )
    data, source = read_yaml(text, filename=filename)
    problems = _Problems(filename, source)
    groups: list[RuleGroup] = []
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        problems.add(("groups",), "expected a mapping with a list 'groups'")
        raise SpecError(problems.found)
    problems.unknown_keys(data, frozenset({"groups"}), ())
    seen_groups: set[str] = set()
    for index, raw in enumerate(data["groups"]):
        path: DocPath = ("groups", index)
        if not isinstance(raw, dict):
            problems.add(path, "expected a mapping with 'name' and 'rules'")
            continue
        problems.unknown_keys(raw, _GROUP_KEYS, path)
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            problems.add((*path, "name"), "a group needs a name")
            name = f"group {index}"
        elif name in seen_groups:
            problems.add((*path, "name"), f"group name {name!r} is used twice")
        seen_groups.add(name)
        interval = DEFAULT_EVALUATION_INTERVAL
        if "interval" in raw:
            interval = _duration(raw["interval"], (*path, "interval"), problems, positive=True)
        rules_raw = raw.get("rules")
        if not isinstance(rules_raw, list):
            problems.add((*path, "rules"), "expected a list of rules")
            continue
        rules = [
            rule
            for rule_index, rule_raw in enumerate(rules_raw)
            if (rule := _parse_rule(rule_raw, (*path, "rules", rule_index), problems))
        ]
        groups.append(RuleGroup(name, tuple(rules), interval))
    if problems.found:
        raise SpecError(problems.found)
    return groups


def load_rules(path: str | Path) -> list[RuleGroup]:
    """Read and validate the rule file at ``path``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"rule file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read rule file {file}: {exc}") from exc
    return parse_rules(text, filename=str(path))


def default_rules_text() -> str:
    """The text of the rules zerodown ships (``ops/default_rules.yaml``)."""
    return resources.files("zerodown.ops").joinpath("default_rules.yaml").read_text("utf-8")


def default_rules() -> list[RuleGroup]:
    """The rules zerodown ships for the seed's thresholds, parsed."""
    return parse_rules(default_rules_text(), filename="default_rules.yaml")


def _duration(raw: object, path: DocPath, problems: _Problems, *, positive: bool = False) -> float:
    """Seconds in a Prometheus duration; a problem (and a harmless value) if it is not one."""
    fallback = DEFAULT_EVALUATION_INTERVAL if positive else 0.0
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        problems.add(path, f"expected a duration such as 30s, 5m or 1h, got {raw!r}")
        return fallback
    try:
        seconds = promql.parse_duration(str(raw))
    except ValueError:
        problems.add(path, f"expected a duration such as 30s, 5m or 1h, got {raw!r}")
        return fallback
    if positive and seconds == 0:
        problems.add(path, "expected a duration longer than 0s")
        return fallback
    return seconds


def _templates(raw: object, path: DocPath, problems: _Problems) -> dict[str, Template]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(path, "expected a mapping of names to texts")
        return {}
    out: dict[str, Template] = {}
    for key, value in raw.items():
        if not _LABEL_NAME.fullmatch(key):
            problems.add((*path, key), f"{key!r} is not a valid label name")
            continue
        text = "" if value is None else value
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            problems.add((*path, key), "expected a text")
            continue
        try:
            out[key] = Template(str(text))
        except TemplateError as exc:
            problems.add((*path, key), exc.message)
    return out


def _parse_rule(raw: object, path: DocPath, problems: _Problems) -> AlertRule | None:
    if not isinstance(raw, dict):
        problems.add(path, "expected a mapping with 'alert' and 'expr'")
        return None
    problems.unknown_keys(raw, _RULE_KEYS, path)
    name = raw.get("alert")
    ok = True
    if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
        problems.add((*path, "alert"), "an alerting rule needs a name made of letters, digits, _")
        ok = False
    expr_text = raw.get("expr")
    expr: promql.Expr | None = None
    if isinstance(expr_text, int | float) and not isinstance(expr_text, bool):
        expr_text = str(expr_text)
    if not isinstance(expr_text, str) or not expr_text.strip():
        problems.add((*path, "expr"), "an alerting rule needs an expression")
    else:
        try:
            expr = promql.parse(expr_text)
        except promql.ExpressionError as exc:
            problems.add((*path, "expr"), exc.message)
        else:
            if expr.type == "matrix":
                problems.add((*path, "expr"), "the expression must give an instant vector")
                expr = None
    for_ = _duration(raw["for"], (*path, "for"), problems) if "for" in raw else 0.0
    keep = (
        _duration(raw["keep_firing_for"], (*path, "keep_firing_for"), problems)
        if "keep_firing_for" in raw
        else 0.0
    )
    labels = _templates(raw.get("labels"), (*path, "labels"), problems)
    annotations = _templates(raw.get("annotations"), (*path, "annotations"), problems)
    if ALERT_NAME in labels:
        problems.add((*path, "labels", ALERT_NAME), "the label alertname is set by the rule")
    if not ok or expr is None:
        return None
    assert isinstance(name, str) and isinstance(expr_text, str)
    return AlertRule(name, expr, expr_text, for_, keep, labels, annotations)


# --- the state machine -------------------------------------------------------------------------


class AlertState(enum.Enum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class Alert:
    """One alert as it stands after an evaluation (a copy: later evaluations do not change it).

    ``resolved_at`` is set once a firing alert has stopped (state ``INACTIVE``); such alerts are
    kept for ``RESOLVED_RETENTION``. Times are UTC.
    """

    rule: str
    labels: LabelSet
    annotations: LabelSet
    state: AlertState
    value: float
    active_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    last_sent_at: datetime | None
    keep_firing_since: datetime | None
    valid_until: datetime | None
    generator_url: str = ""

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def annotation_map(self) -> dict[str, str]:
        return dict(self.annotations)

    @property
    def ends_at(self) -> datetime | None:
        """What a notifier is told: resolved at, else valid until (None if never sent)."""
        return self.resolved_at if self.resolved_at is not None else self.valid_until

    @property
    def starts_at(self) -> datetime:
        """When the alert started firing (``active_at`` for one that has not fired)."""
        return self.fired_at or self.active_at

    def to_dict(self) -> dict[str, Any]:
        """Alertmanager's alert shape (``labels``, ``annotations``, ``startsAt``, ``endsAt``)."""
        data: dict[str, Any] = {
            "labels": self.label_map,
            "annotations": self.annotation_map,
            "startsAt": self.starts_at.isoformat().replace("+00:00", "Z"),
            "generatorURL": self.generator_url,
        }
        if self.ends_at is not None:
            data["endsAt"] = self.ends_at.isoformat().replace("+00:00", "Z")
        return data


@dataclass
class _Active:
    labels: LabelSet
    annotations: LabelSet
    state: AlertState
    value: float
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    last_sent_at: float | None = None
    keep_firing_since: float | None = None
    valid_until: float | None = None

    def snapshot(self, rule: str) -> Alert:
        active_at = _time(self.active_at)
        assert active_at is not None
        return Alert(
            rule=rule,
            labels=self.labels,
            annotations=self.annotations,
            state=self.state,
            value=self.value,
            active_at=active_at,
            fired_at=_time(self.fired_at),
            resolved_at=_time(self.resolved_at),
            last_sent_at=_time(self.last_sent_at),
            keep_firing_since=_time(self.keep_firing_since),
            valid_until=_time(self.valid_until),
        )


@dataclass(frozen=True)
class SavedAlert:
    """An alert of a ``RuleEvaluator`` with what its state depends on, to be taken over by
    another evaluator (after a reload) or saved and restored (across a restart). Times are
    epoch seconds."""

    rule_id: str
    rule: str
    labels: LabelSet
    annotations: LabelSet
    state: AlertState
    value: float
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    last_sent_at: float | None = None
    valid_until: float | None = None


@dataclass
class _RuleState:
    rule: AlertRule
    rule_id: str
    active: dict[LabelSet, _Active] = field(default_factory=dict)
    last_error: str | None = None


def _seconds(now: datetime | float) -> float:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise InputError("evaluation times must be timezone-aware")
        return now.timestamp()
    return float(now)


class RuleEvaluator:
    """Runs rule groups over a ``SeriesStore`` and keeps each alert's state between runs."""

    def __init__(
        self,
        groups: Iterable[RuleGroup],
        store: SeriesStore,
        *,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        lookback: float = promql.LOOKBACK_SECONDS,
    ) -> None:
        self.groups = list(groups)
        self.store = store
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.lookback = lookback
        self._states: dict[str, list[_RuleState]] = {
            group.name: [_RuleState(rule, rule_id(group, rule)) for rule in group.rules]
            for group in self.groups
        }
        self._last_run: dict[str, float] = {}

    def saved_alerts(self) -> list[SavedAlert]:
        """Every alert held (pending, firing, recently resolved) with its full state."""
        out: dict[tuple[str, LabelSet], SavedAlert] = {}
        for group in self.groups:
            for state in self._states[group.name]:
                for labels in sorted(state.active):
                    alert = state.active[labels]
                    out.setdefault(
                        (state.rule_id, labels),
                        SavedAlert(
                            rule_id=state.rule_id,
                            rule=state.rule.name,
                            labels=labels,
                            annotations=alert.annotations,
                            state=alert.state,
                            value=alert.value,
                            active_at=alert.active_at,
                            fired_at=alert.fired_at,
                            resolved_at=alert.resolved_at,
                            keep_firing_since=alert.keep_firing_since,
                            last_sent_at=alert.last_sent_at,
                            valid_until=alert.valid_until,
                        ),
                    )
        return list(out.values())

    def adopt(self, saved: Iterable[SavedAlert], *, now: datetime | float) -> list[Alert]:
        """Take over ``saved`` alerts of the rules that are unchanged here (same ``rule_id``):
        their states, ``for`` timers and send times go on as if nothing happened.

        The alerts of rules that are gone (or changed) cannot go on: those that were firing
        are returned resolved at ``now``, for the caller to record and notify; pending and
        already resolved ones are dropped."""
        at = _seconds(now)
        by_id: dict[str, list[_RuleState]] = {}
        for states in self._states.values():
            for state in states:
                by_id.setdefault(state.rule_id, []).append(state)
        ended: list[Alert] = []
        for alert in saved:
            active = _Active(
                labels=alert.labels,
                annotations=alert.annotations,
                state=alert.state,
                value=alert.value,
                active_at=alert.active_at,
                fired_at=alert.fired_at,
                resolved_at=alert.resolved_at,
                last_sent_at=alert.last_sent_at,
                keep_firing_since=alert.keep_firing_since,
                valid_until=alert.valid_until,
            )
            targets = by_id.get(alert.rule_id, [])
            for state in targets:
                state.active[alert.labels] = replace(active)
            if not targets and alert.state is AlertState.FIRING:
                active.state = AlertState.INACTIVE
                active.resolved_at = max(at, alert.active_at)
                ended.append(active.snapshot(alert.rule))
        return ended

    def evaluate(self, now: datetime | float) -> list[Alert]:
        """Evaluate every group whose interval has passed; return all alerts after that.

        The result holds pending, firing and retained resolved alerts of every rule.
        """
        at = _seconds(now)
        for group in self.groups:
            last = self._last_run.get(group.name)
            if last is not None and at < last + group.interval - 1e-6:
                continue
            self._last_run[group.name] = at
            for state in self._states[group.name]:
                self._evaluate_rule(state, at)
        return self.alerts()

    def alerts(self) -> list[Alert]:
        """Every alert currently held, rule by rule, in label order."""
        out: list[Alert] = []
        for group in self.groups:
            for state in self._states[group.name]:
                for labels in sorted(state.active):
                    out.append(state.active[labels].snapshot(state.rule.name))
        return out

    def firing(self) -> list[Alert]:
        return [alert for alert in self.alerts() if alert.state is AlertState.FIRING]

    def errors(self) -> dict[str, str]:
        """The last evaluation error of each rule that failed (rule name -> message)."""
        return {
            state.rule.name: state.last_error
            for states in self._states.values()
            for state in states
            if state.last_error
        }

    def alerts_to_send(
        self, now: datetime | float, *, resend_delay: float = DEFAULT_RESEND_DELAY
    ) -> list[Alert]:
        """The alerts a notifier should be sent now, marked as sent (Prometheus' resend rule)."""
        at = _seconds(now)
        out: list[Alert] = []
        for group in self.groups:
            for state in self._states[group.name]:
                for labels in sorted(state.active):
                    alert = state.active[labels]
                    if not _needs_sending(alert, at, resend_delay):
                        continue
                    alert.last_sent_at = at
                    alert.valid_until = at + 4 * max(resend_delay, group.interval)
                    out.append(alert.snapshot(state.rule.name))
        return out

    def _evaluate_rule(self, state: _RuleState, at: float) -> None:
        rule = state.rule
        try:
            samples = promql.evaluate_vector(rule.expr, self.store, at, lookback=self.lookback)
            found = self._alerts_from(rule, samples, at)
        except promql.EvaluationError as exc:
            state.last_error = exc.message
            return
        state.last_error = None
        for labels, fresh in found.items():
            known = state.active.get(labels)
            if known is not None and known.state is not AlertState.INACTIVE:
                known.value = fresh.value
                known.annotations = fresh.annotations
                continue
            state.active[labels] = fresh
        for labels in list(state.active):
            alert = state.active[labels]
            if labels not in found:
                keep_firing = False
                if alert.state is AlertState.FIRING and rule.keep_firing_for > 0:
                    if alert.keep_firing_since is None:
                        alert.keep_firing_since = at
                    keep_firing = at - alert.keep_firing_since < rule.keep_firing_for
                if alert.state is AlertState.PENDING or (
                    alert.resolved_at is not None and at - alert.resolved_at > RESOLVED_RETENTION
                ):
                    del state.active[labels]
                if alert.state is not AlertState.INACTIVE and not keep_firing:
                    alert.state = AlertState.INACTIVE
                    alert.resolved_at = at
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since = None
            if alert.state is AlertState.PENDING and at - alert.active_at >= rule.for_:
                alert.state = AlertState.FIRING
                alert.fired_at = at

    def _alerts_from(
        self, rule: AlertRule, samples: list[promql.Sample], at: float
    ) -> dict[LabelSet, _Active]:
        found: dict[LabelSet, _Active] = {}
        for sample in samples:
            series_labels = sample.label_map
            expand: dict[str, Any] = {
                "labels": series_labels,
                "value": sample.value,
                "external_labels": self.external_labels,
                "external_url": self.external_url,
            }
            labels = {k: v for k, v in series_labels.items() if k != "__name__"}
            for name, template in rule.labels.items():
                labels[name] = template.render(**expand)
            labels[ALERT_NAME] = rule.name
            annotations = {k: t.render(**expand) for k, t in rule.annotations.items()}
            key = label_set(labels)
            if key in found:
                raise promql.EvaluationError(
                    "vector contains metrics with the same labelset after applying alert labels"
                )
            found[key] = _Active(
                labels=key,
                annotations=tuple(sorted(annotations.items())),
                state=AlertState.PENDING,
                value=sample.value,
                active_at=at,
            )
        return found


def _needs_sending(alert: _Active, at: float, resend_delay: float) -> bool:
    if alert.state is AlertState.PENDING:
        return False
    if alert.last_sent_at is None:
        return True
    if alert.resolved_at is not None and alert.resolved_at > alert.last_sent_at:
        return True
    return alert.last_sent_at + resend_delay < at


def with_generator_url(alert: Alert, url: str) -> Alert:
    """``alert`` with a link back to where it came from (Alertmanager's ``generatorURL``)."""
    return replace(alert, generator_url=url)
