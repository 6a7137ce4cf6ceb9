"""Turn a parsed YAML document into a ``ServiceSpec``, or into every problem it has.

Two of the three validation tiers meet here. Shape problems come from pydantic and are
rewritten for humans: what was expected, what was found, and for unknown keys a did-you-mean
hint. Meaning problems (``semantic_problems``) relate several fields: canary weights that only
go up and end at 100, a health-check timeout no longer than its interval, exactly one strategy
(``native`` only on ``platform: swarm``) and one probe kind, ``run.command`` for local
services, a rolling update that can make progress, a blue-green preview port apart from the
listen port, a deployment window whose end differs
from its start, a freeze that ends after it starts, canary match rules naming exactly one of
a header or a cookie, and checks with names of their own (``expectStatus`` only on http
dependencies). They are checked on the raw document so that one run reports shape and
meaning problems together, each with its line and field path.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from zerodown.core.errors import SpecError, SpecProblem
from zerodown.spec import defaults
from zerodown.spec.durations import format_duration, parse_duration
from zerodown.spec.fields import parse_int_or_percent, resolve_int_or_percent, split_host_port
from zerodown.spec.models import ServiceSpec, clock_minutes, parse_aware_time
from zerodown.spec.positions import DocPath, Position, SourceMap, format_path
from zerodown.spec.steps import STEP_KEYS, STEP_TAGS

__all__ = ["did_you_mean", "semantic_problems", "validate_document"]

_INT_ERRORS = {"int_type", "int_parsing", "int_from_float", "int_parsing_size"}
_FLOAT_ERRORS = {"float_type", "float_parsing", "finite_number"}
_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_MAPPING_ERRORS = {"dict_type", "model_type", "model_attributes_type", "mapping_type"}
_LIST_ERRORS = {"list_type", "tuple_type", "iterable_type", "sequence_str"}
_STEP_NAMES = "setWeight, pause or analysis"


def validate_document(data: Any, *, source: SourceMap, filename: str) -> ServiceSpec:
    """The ``ServiceSpec`` of ``data``, or ``SpecError`` with every problem, first line first."""
    problems = _Problems(filename=filename, source=source)
    if not isinstance(data, dict):
        problems.at(
            (),
            source.root,
            f"expected a mapping of keys (service, run, ...) at the top level, "
            f"got {describe_value(data)}",
        )
        raise SpecError(problems.ordered())
    data = _empty_kinds_as_defaults(data)
    spec: ServiceSpec | None = None
    try:
        spec = ServiceSpec.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        for error in exc.errors():
            _add_pydantic_error(problems, error)
    for problem in semantic_problems(data, source=source, filename=filename):
        problems.add(problem)
    if spec is None or problems.items:
        raise SpecError(problems.ordered())
    return spec


_KINDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("strategy",): ("rolling", "blueGreen", "canary", "native"),
    ("healthCheck",): ("http", "tcp"),
    ("checks", "post"): ("performance", "logs", "feedback"),
}
"""Where a key with nothing after it chooses that kind (or turns that check on) with defaults."""


def _empty_kinds_as_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Read ``canary:``, ``tcp:`` or ``logs:`` with nothing after it as ``canary: {}`` ...

    In the models None means "not chosen"; in YAML a kind named with no settings plainly means
    "this one, with its defaults". Done here rather than in the models so that a dumped model
    (with its None fields) validates back to itself.
    """
    result = data
    for path, names in _KINDS.items():
        result = _nulls_as_empty(result, path, names)
    return result


def _nulls_as_empty(block: Any, path: tuple[str, ...], names: tuple[str, ...]) -> Any:
    """``block`` with the null ``names`` in the mapping at ``path`` made ``{}`` (copied)."""
    if not isinstance(block, dict):
        return block
    if path:
        head = path[0]
        if head not in block:
            return block
        inner = _nulls_as_empty(block[head], path[1:], names)
        return block if inner is block[head] else {**block, head: inner}
    if not any(name in block and block[name] is None for name in names):
        return block
    return {key: {} if key in names and value is None else value for key, value in block.items()}


def did_you_mean(word: str, choices: Iterable[str], *, keys: bool = True) -> str | None:
    """A hint naming the choice closest to ``word``, or None if nothing is close.

    With ``keys`` (choosing a key) a snake_case word is pointed to its camelCase spelling;
    for values (``keys=False``) that remark would mislead.
    """
    options = list(choices)
    if word in options:
        return None
    camel = to_camel(word)
    if keys and camel != word and camel in options:
        return f"did you mean '{camel}'? keys are camelCase"
    by_lower = {option.lower(): option for option in options}
    if word.lower() in by_lower:
        return f"did you mean '{by_lower[word.lower()]}'?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close and len(word) >= 3:
        close = [option for option in options if option.lower().startswith(word.lower())][:1]
    return f"did you mean '{close[0]}'?" if close else None


def describe_value(value: Any) -> str:
    """A short, YAML-flavoured description of a value for messages (``'fifty'``, ``a list``)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"'{text}'"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list | tuple):
        return "a list" if value else "an empty list"
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------------
# Collecting problems


@dataclass
class _Problems:
    """Problems of one document, built from paths; positions come from the source map."""

    filename: str
    source: SourceMap
    items: list[SpecProblem] = field(default_factory=list)

    def at(self, path: DocPath, position: Position, message: str, hint: str | None = None) -> None:
        self.add(
            SpecProblem(
                file=self.filename,
                line=position.line,
                column=position.column,
                path=format_path(path),
                message=message,
                hint=hint,
            )
        )

    def at_value(self, path: DocPath, message: str, hint: str | None = None) -> None:
        self.at(path, self.source.value(path), message, hint)

    def at_key(self, path: DocPath, message: str, hint: str | None = None) -> None:
        self.at(path, self.source.key(path), message, hint)

    def add(self, problem: SpecProblem) -> None:
        if problem not in self.items:
            self.items.append(problem)

    def ordered(self) -> list[SpecProblem]:
        return sorted(
            self.items,
            key=lambda p: (p.line is None, p.line or 0, p.column or 0),
        )


# ---------------------------------------------------------------------------------------------
# Pydantic errors, rewritten


def _add_pydantic_error(problems: _Problems, error: ErrorDetails) -> None:
    kind = error["type"]
    value = error.get("input")
    context: dict[str, Any] = dict(error.get("ctx") or {})
    names_key = bool(error["loc"]) and error["loc"][-1] == "[key]"
    # Drop discriminator tags and the marker of dict-key errors: what is left is a YAML path.
    path: DocPath = tuple(
        part for part in error["loc"] if part not in STEP_TAGS and part != "[key]"
    )

    if kind == "missing":
        key = path[-1]
        problems.at(path, problems.source.container(path[:-1]), f"missing required key '{key}'")
        return
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1])
        hint = did_you_mean(str(path[-1]), allowed)
        if hint is None and allowed:
            hint = "allowed keys here: " + ", ".join(allowed)
        problems.at_key(path, f"unknown key '{path[-1]}'", hint)
        return
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        _add_step_problem(problems, path, value)
        return

    expected, hint = _expectation(kind, error["msg"], context, path, value)
    hint = context.get("hint") or hint
    message = f"{expected}, got {describe_value(value)}"
    if names_key or value is None:  # a bad dict key, or a null value: point at the key
        problems.at_key(path, message, hint)
    else:
        problems.at_value(path, message, hint)


def _expectation(
    kind: str, pydantic_message: str, context: dict[str, Any], path: DocPath, value: Any
) -> tuple[str, str | None]:
    """``("expected ...", hint)`` for one pydantic error type."""
    if kind == "spec_value":
        return pydantic_message, None
    if kind in _INT_ERRORS:
        return "expected " + _number_words(path, integer=True, context=context), None
    if kind in _FLOAT_ERRORS:
        return "expected " + _number_words(path, integer=False, context=context), None
    if kind in _BOUND_ERRORS:
        _, annotation = _field_at(path)
        integer = float not in _members(annotation) and (
            int in _members(annotation) or isinstance(value, int)
        )
        return "expected " + _number_words(path, integer=integer, context=context), None
    if kind in ("bool_type", "bool_parsing"):
        return "expected true or false", None
    if kind == "string_type":
        hint = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            hint = "put the value in quotes to keep it as text"
        return "expected a string", hint
    if kind == "string_too_short":
        return "expected a non-empty string", None
    if kind in _MAPPING_ERRORS:
        keys = _allowed_keys(path)
        hint = "keys here: " + ", ".join(keys) if keys else None
        return "expected a mapping", hint
    if kind in _LIST_ERRORS:
        return "expected a list", None
    if kind in ("literal_error", "enum"):
        allowed = re.findall(r"'([^']*)'", str(context.get("expected", "")))
        hint = did_you_mean(value, allowed, keys=False) if isinstance(value, str) else None
        return "expected " + _joined(allowed, last="or"), hint
    if kind == "value_error":
        return str(context.get("error", pydantic_message)), None
    readable = pydantic_message[:1].lower() + pydantic_message[1:]
    return f"expected a valid value ({readable})", None


def _add_step_problem(problems: _Problems, path: DocPath, item: Any) -> None:
    """A canary step that is not a single ``setWeight``/``pause``/``analysis`` key."""
    if isinstance(item, dict) and len(item) == 1:
        key = str(next(iter(item)))
        hint = did_you_mean(key, STEP_KEYS)
        problems.at_key((*path, key), f"unknown step '{key}', expected {_STEP_NAMES}", hint)
    elif isinstance(item, dict) and item:
        keys = ", ".join(str(key) for key in item)
        problems.at_value(
            path,
            f"expected one key per step ({_STEP_NAMES}), got {len(item)}: {keys}",
            "give each step its own list item, such as '- setWeight: 20' then '- pause: {}'",
        )
    else:
        hint = None
        if isinstance(item, str) and item.split() and item.split()[0] in STEP_KEYS:
            hint = f"put a colon after the key: '{item.split()[0]}: ...'"
        problems.at_value(
            path,
            f"expected a step with one key ({_STEP_NAMES}), such as 'setWeight: 20', "
            f"got {describe_value(item)}",
            hint,
        )


# ---------------------------------------------------------------------------------------------
# What the models expect at a path (for messages and hints)


def _members(annotation: Any) -> list[Any]:
    """The plain types inside ``annotation``: Annotated stripped, unions flattened."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _field_at(path: DocPath) -> tuple[FieldInfo | None, Any]:
    """The model field at ``path`` (None inside lists and dicts) and the annotation there."""
    info: FieldInfo | None = None
    annotation: Any = ServiceSpec
    for part in path:
        for member in _members(annotation):
            if isinstance(part, str) and _is_model(member):
                found = next(
                    (f for n, f in member.model_fields.items() if (f.alias or n) == part), None
                )
                if found is not None:
                    info, annotation = found, found.annotation
                    break
            elif isinstance(part, int) and get_origin(member) in (list, tuple):
                info, annotation = None, get_args(member)[0]
                break
            elif isinstance(part, str) and get_origin(member) is dict:
                info, annotation = None, get_args(member)[1]
                break
        else:
            return None, None
    return info, annotation


def _allowed_keys(path: DocPath) -> list[str]:
    """The keys the model at ``path`` accepts, in the order the model declares them."""
    _, annotation = _field_at(path)
    keys: list[str] = []
    for member in _members(annotation):
        if _is_model(member):
            keys.extend(f.alias or n for n, f in member.model_fields.items())
    return keys


def _bounds(path: DocPath) -> dict[str, Any]:
    """``ge``/``gt``/``le``/``lt`` constraints of the field at ``path``."""
    info, annotation = _field_at(path)
    metadata: list[Any] = list(info.metadata) if info is not None else []

    def collect(current: Any) -> None:
        if get_origin(current) is Annotated:
            metadata.extend(get_args(current)[1:])
            collect(get_args(current)[0])
        elif get_origin(current) in (Union, types.UnionType):
            for arg in get_args(current):
                collect(arg)

    collect(annotation)
    bounds: dict[str, Any] = {}
    for item in metadata:
        for inner in [item, *getattr(item, "metadata", [])]:
            for name in ("ge", "gt", "le", "lt"):
                bound = getattr(inner, name, None)
                if isinstance(bound, int | float):
                    bounds[name] = bound
    return bounds


def _number_words(path: DocPath, *, integer: bool, context: dict[str, Any]) -> str:
    """``an integer 0..100``, ``a number > 1``, ``a number > 0 and < 0.5`` ..."""
    bounds = _bounds(path) or {k: v for k, v in context.items() if k in ("ge", "gt", "le", "lt")}
    noun = "an integer" if integer else "a number"
    if "ge" in bounds and "le" in bounds:
        return f"{noun} {bounds['ge']:g}..{bounds['le']:g}"
    limits = [
        f"{symbol} {bounds[name]:g}"
        for name, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if name in bounds
    ]
    return f"{noun} {' and '.join(limits)}" if limits else noun


# ---------------------------------------------------------------------------------------------
# Meaning: rules across fields, checked on the raw document


def semantic_problems(
    data: dict[str, Any], *, source: SourceMap, filename: str
) -> list[SpecProblem]:
    """Problems that involve more than one field, each at the line of the value to change.

    Values with a wrong shape are skipped here (pydantic reports them), so each mistake is
    reported once.
    """
    problems = _Problems(filename=filename, source=source)
    _check_run(problems, data)
    _check_health_check(problems, data)
    strategy = data.get("strategy")
    if isinstance(strategy, dict):
        _check_strategy_kinds(problems, strategy)
        _check_rolling(problems, data, strategy.get("rolling"))
        _check_preview_port(problems, data, strategy.get("blueGreen"))
        _check_native(problems, data, strategy)
        canary = strategy.get("canary")
        if isinstance(canary, dict):
            _check_canary_steps(problems, canary.get("steps"))
    deploy = data.get("deploy")
    if isinstance(deploy, dict):
        _check_windows(problems, deploy.get("windows"))
        _check_freezes(problems, deploy.get("freezes"))
    traffic = data.get("traffic")
    if isinstance(traffic, dict):
        _check_canary_match(problems, traffic.get("canaryMatch"))
    checks = data.get("checks")
    if isinstance(checks, dict):
        _check_checks(problems, checks)
    backups = data.get("backups")
    if isinstance(backups, dict):
        _check_backups(problems, backups)
    dr = data.get("dr")
    if isinstance(dr, dict):
        _check_dr(problems, dr, backups if isinstance(backups, dict) else {})
    return problems.items


def _check_run(problems: _Problems, data: dict[str, Any]) -> None:
    run = data.get("run")
    if not isinstance(run, dict):
        return
    platform = data.get("platform", defaults.DEFAULT_PLATFORM)
    if platform == "local" and run.get("command") is None:
        problems.at(
            ("run", "command"),
            problems.source.key(("run", "command") if "command" in run else ("run",)),
            "missing required key 'command': platform local starts each instance with it",
            "the instance's port is in the environment variable PORT",
        )
    elif platform in ("docker", "swarm") and run.get("image") is None and run.get("build") is None:
        problems.at(
            ("run", "image"),
            problems.source.key(("run", "image") if "image" in run else ("run",)),
            f"missing required key 'image': platform {platform} runs a container image",
            "name a local image, or give run.build: {context: <folder>} to build one",
        )
    elif platform == "kubernetes" and run.get("image") is None:
        problems.at(
            ("run", "image"),
            problems.source.key(("run", "image") if "image" in run else ("run",)),
            f"missing required key 'image': platform {platform} runs a container image",
        )
    if run.get("image") is not None and run.get("build") is not None:
        problems.at(
            ("run", "build"),
            problems.source.key(("run", "build")),
            "expected either 'image' or 'build', not both",
            "the image built from 'build' is tagged zerodown/<service>:r<revision>",
        )


def _seconds(value: Any) -> float | None:
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _check_health_check(problems: _Problems, data: dict[str, Any]) -> None:
    check = data.get("healthCheck")
    if not isinstance(check, dict):
        return
    kinds = [kind for kind in ("http", "tcp", "command") if kind in check]
    kinds = [kind for kind in kinds if not (kind == "command" and check[kind] is None)]
    if not kinds:
        problems.at(
            ("healthCheck",),
            problems.source.container(("healthCheck",)),
            "expected exactly one probe kind (http, tcp or command), found none",
            "add 'http: {path: /healthz}' for the default probe",
        )
    elif len(kinds) > 1:
        problems.at_key(
            ("healthCheck", kinds[1]),
            f"expected exactly one probe kind (http, tcp or command), found {_joined(kinds)}",
            "keep one of them",
        )
    interval = _seconds(check.get("interval", defaults.DEFAULT_HEALTH_INTERVAL_SECONDS))
    timeout = _seconds(check.get("timeout", defaults.DEFAULT_HEALTH_TIMEOUT_SECONDS))
    if interval is None or timeout is None or timeout <= interval or min(interval, timeout) <= 0:
        return
    if "timeout" in check:
        problems.at_value(
            ("healthCheck", "timeout"),
            f"expected a timeout no longer than the interval ({format_duration(interval)}), "
            f"got {format_duration(timeout)}",
        )
    else:
        problems.at_value(
            ("healthCheck", "interval"),
            f"expected an interval no shorter than the timeout ({format_duration(timeout)}), "
            f"got {format_duration(interval)}",
        )


def _check_strategy_kinds(problems: _Problems, strategy: dict[str, Any]) -> None:
    kinds = [kind for kind in ("rolling", "blueGreen", "canary", "native") if kind in strategy]
    if not kinds:
        problems.at(
            ("strategy",),
            problems.source.container(("strategy",)),
            "expected exactly one strategy (rolling, blueGreen, canary or native), found none",
            "'rolling: {}' is what an omitted strategy means",
        )
    elif len(kinds) > 1:
        problems.at_key(
            ("strategy", kinds[1]),
            "expected exactly one strategy (rolling, blueGreen, canary or native), found "
            f"{_joined(kinds)}",
            "keep one of them",
        )


def _check_native(problems: _Problems, data: dict[str, Any], strategy: dict[str, Any]) -> None:
    if "native" not in strategy:
        return
    platform = data.get("platform", defaults.DEFAULT_PLATFORM)
    if platform != "swarm":
        problems.at_key(
            ("strategy", "native"),
            f"expected platform swarm for the native strategy (Swarm's own update), got "
            f"platform {platform}",
            "set 'platform: swarm', or choose rolling, blueGreen or canary",
        )


def _int_or_percent(value: Any) -> int | str | None:
    try:
        return parse_int_or_percent(value)
    except PydanticCustomError:
        return None


def _as_count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _check_rolling(problems: _Problems, data: dict[str, Any], rolling: Any) -> None:
    if rolling is None:
        rolling = {}
    if not isinstance(rolling, dict):
        return
    replicas = _as_count(data.get("replicas", defaults.DEFAULT_REPLICAS))
    surge = _int_or_percent(rolling.get("maxSurge", defaults.DEFAULT_MAX_SURGE))
    unavailable = _int_or_percent(rolling.get("maxUnavailable", defaults.DEFAULT_MAX_UNAVAILABLE))
    if replicas is None or replicas < 1 or surge is None or unavailable is None:
        return
    if resolve_int_or_percent(surge, total=replicas, round_up=True) > 0:
        return
    if resolve_int_or_percent(unavailable, total=replicas, round_up=False) > 0:
        return
    key = next((k for k in ("maxUnavailable", "maxSurge") if k in rolling), None)
    path: DocPath = ("strategy", "rolling", key) if key else ("strategy", "rolling")
    problems.at_value(
        path,
        f"expected maxSurge or maxUnavailable above 0; for {replicas} replica(s) both come to 0, "
        "so no instance could ever be replaced",
        "maxSurge: 1 starts each new instance before an old one stops",
    )


def _check_preview_port(problems: _Problems, data: dict[str, Any], blue_green: Any) -> None:
    if not isinstance(blue_green, dict):
        return
    port = _as_count(blue_green.get("previewPort"))
    traffic = data.get("traffic")
    listen = traffic.get("listen") if isinstance(traffic, dict) else None
    try:
        _, listen_port = split_host_port(str(listen or defaults.DEFAULT_LISTEN))
    except ValueError:
        return
    if port is not None and port == listen_port:
        problems.at_value(
            ("strategy", "blueGreen", "previewPort"),
            f"expected a previewPort other than the traffic.listen port {listen_port}, got {port}",
        )


def _check_canary_steps(problems: _Problems, steps: Any) -> None:
    path: DocPath = ("strategy", "canary", "steps")
    if not isinstance(steps, list):
        return  # None: the default steps; any other type is a shape problem
    if not steps:
        problems.at_key(
            path,
            "expected at least one step, ending with 'setWeight: 100'",
            "leave out steps for the default: 5, 25, 50, 100 % with an analysis between",
        )
        return
    weights: list[tuple[int, int | None]] = []
    for index, step in enumerate(steps):
        if isinstance(step, dict) and list(step) == ["setWeight"]:
            weight = _as_count(step["setWeight"])
            weights.append((index, weight if weight is not None and weight <= 100 else None))
    # A malformed step may be a weight in disguise: judge the ending only when all are readable.
    readable = all(
        isinstance(s, dict) and len(s) == 1 and next(iter(s)) in STEP_KEYS for s in steps
    )
    if not weights and readable:
        problems.at_key(
            path,
            "expected a 'setWeight: 100' step so the rollout completes, found no setWeight step",
        )
        return
    highest: tuple[int, int] | None = None
    for index, weight in weights:
        if weight is None:
            continue
        if highest is not None and weight < highest[1]:
            problems.at_value(
                (*path, index, "setWeight"),
                f"expected a weight of at least {highest[1]} (weights must not decrease), "
                f"got {weight}",
                f"steps[{highest[0]}] already sets {highest[1]}",
            )
        else:
            highest = (index, weight)
    last_index, last = weights[-1] if weights else (0, None)
    if readable and last is not None and last != 100:
        problems.at_value(
            (*path, last_index, "setWeight"),
            f"expected the last setWeight to be 100 so the rollout completes, got {last}",
            "add '- setWeight: 100' as the last weight step",
        )


def _minutes(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return clock_minutes(value)
    except ValueError:
        return None


def _check_windows(problems: _Problems, windows: Any) -> None:
    if not isinstance(windows, list):
        return
    for index, window in enumerate(windows):
        if not isinstance(window, dict):
            continue
        start = _minutes(window.get("start", defaults.DEFAULT_WINDOW_START))
        end = _minutes(window.get("end", defaults.DEFAULT_WINDOW_END))
        if start is None or end is None or start != end or start == 24 * 60:
            continue
        key = "end" if "end" in window else "start"
        problems.at_value(
            ("deploy", "windows", index, key),
            f"expected an end other than the start ({start // 60:02d}:{start % 60:02d}), "
            f"got {describe_value(window.get(key))}",
            "an end before the start wraps past midnight; for whole days leave out start and "
            "end (they default to 00:00 and 24:00)",
        )


def _aware(value: Any) -> dt.datetime | None:
    try:
        return parse_aware_time(value)
    except ValueError:
        return None


def _check_freezes(problems: _Problems, freezes: Any) -> None:
    if not isinstance(freezes, list):
        return
    for index, freeze in enumerate(freezes):
        if not isinstance(freeze, dict):
            continue
        start, end = _aware(freeze.get("start")), _aware(freeze.get("end"))
        if start is None or end is None or end > start:
            continue
        problems.at_value(
            ("deploy", "freezes", index, "end"),
            f"expected an end after the start ({start.isoformat()}), got {end.isoformat()}",
        )


def _check_canary_match(problems: _Problems, rules: Any) -> None:
    if not isinstance(rules, list):
        return
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        kinds = [kind for kind in ("header", "cookie") if rule.get(kind) is not None]
        path: DocPath = ("traffic", "canaryMatch", index)
        if not kinds:
            problems.at_value(
                path,
                "expected exactly one of header or cookie in a match rule, found none",
                "such as {header: X-Canary, value: '1'}",
            )
        elif len(kinds) > 1:
            problems.at_key(
                (*path, "cookie"),
                "expected exactly one of header or cookie in a match rule, found both",
                "give the cookie a rule of its own; a request matching any rule goes to the canary",
            )


def _check_checks(problems: _Problems, checks: dict[str, Any]) -> None:
    pre, post = checks.get("pre"), checks.get("post")
    if isinstance(pre, dict) and isinstance(pre.get("dependencies"), list):
        path: DocPath = ("checks", "pre", "dependencies")
        _check_unique_names(problems, path, pre["dependencies"], "dependency")
        for index, item in enumerate(pre["dependencies"]):
            if not isinstance(item, dict) or "expectStatus" not in item:
                continue
            url = item.get("url")
            scheme = url.partition("://")[0].lower() if isinstance(url, str) else ""
            if scheme in ("tcp", "postgresql", "postgres", "redis"):
                problems.at_key(
                    (*path, index, "expectStatus"),
                    f"expectStatus applies to http:// and https:// URLs, not to {scheme}://",
                    "leave it out: the check passes when the dependency answers",
                )
    if isinstance(post, dict) and isinstance(post.get("smoke"), list):
        _check_unique_names(problems, ("checks", "post", "smoke"), post["smoke"], "smoke test")


_TARGET_LOCATION: dict[str, str] = {
    "files": "path",
    "sqlite": "path",
    "postgresql": "url",
    "docker-volume": "volume",
}
"""The key that says where each kind of backup target's data is."""


def _check_backups(problems: _Problems, backups: dict[str, Any]) -> None:
    """Each target names its data with the one key its kind reads; one password source."""
    if "passwordFile" in backups and "passwordEnv" in backups:
        problems.at_key(
            ("backups", "passwordEnv"),
            "expected either passwordFile or passwordEnv, not both",
        )
    targets = backups.get("targets")
    if not isinstance(targets, list):
        return
    path: DocPath = ("backups", "targets")
    _check_unique_names(problems, path, targets, "backup target")
    has_password = "passwordFile" in backups or "passwordEnv" in backups
    for index, item in enumerate(targets):
        if not isinstance(item, dict) or item.get("kind") not in _TARGET_LOCATION:
            continue
        kind = item["kind"]
        wanted = _TARGET_LOCATION[kind]
        if item.get(wanted) is None:
            problems.at(
                (*path, index, wanted),
                problems.source.key((*path, index)),
                f"missing required key '{wanted}': a {kind} target says where its data is",
            )
        for other in sorted({"path", "url", "volume"} - {wanted}):
            if other in item:
                problems.at_key(
                    (*path, index, other),
                    f"'{other}' does not apply to a {kind} target (it reads '{wanted}')",
                )
        if "exclude" in item and kind != "files":
            problems.at_key(
                (*path, index, "exclude"), f"'exclude' applies to files targets, not to {kind}"
            )
        url = item.get("url")
        if kind == "postgresql" and isinstance(url, str):
            scheme = url.partition("://")[0].lower()
            if scheme not in ("postgresql", "postgres"):
                problems.at_value(
                    (*path, index, "url"),
                    "expected a postgresql:// URL, such as postgresql://app@127.0.0.1/app",
                )
        if kind in ("files", "docker-volume") and not has_password:
            problems.at(
                (*path, index, "kind"),
                problems.source.value((*path, index, "kind")),
                f"a {kind} target is kept in an encrypted restic repository, which needs a "
                "password: set backups.passwordFile or backups.passwordEnv",
            )


def _check_dr(problems: _Problems, dr: dict[str, Any], backups: dict[str, Any]) -> None:
    """The restore order and the drill's variables name backup targets, each once."""
    targets = backups.get("targets")
    targets = targets if isinstance(targets, list) else []
    names = [t.get("name") for t in targets if isinstance(t, dict)]
    have = ", ".join(str(n) for n in names) or "none: add backups.targets"
    order = dr.get("restoreOrder")
    if isinstance(order, list):
        seen: set[str] = set()
        for index, name in enumerate(order):
            if not isinstance(name, str):
                continue
            if name not in names:
                problems.at_value(
                    ("dr", "restoreOrder", index),
                    f"'{name}' is not a backup target (targets: {have})",
                )
            elif name in seen:
                problems.at_value(("dr", "restoreOrder", index), f"'{name}' is listed twice")
            seen.add(name)
    drill = dr.get("drill")
    restore_env = drill.get("restoreEnv") if isinstance(drill, dict) else None
    if isinstance(restore_env, dict):
        used: dict[str, str] = {}
        for name, variable in restore_env.items():
            path: DocPath = ("dr", "drill", "restoreEnv", name)
            if name not in names:
                problems.at_key(path, f"'{name}' is not a backup target (targets: {have})")
            if isinstance(variable, str) and variable in used:
                problems.at_value(
                    path,
                    f"{variable} already receives target '{used[variable]}': "
                    "one variable cannot point at two restored targets",
                )
            elif isinstance(variable, str):
                used[variable] = str(name)


def _check_unique_names(problems: _Problems, path: DocPath, items: list[Any], what: str) -> None:
    """Each item's ``name`` names it in the report: two with one name could not be told apart."""
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            problems.at_value(
                (*path, index, "name"),
                f"expected a name no other {what} has, got '{name}'",
                f"{format_path((*path, first[name]))} is already named '{name}'",
            )
        else:
            first[name] = index


def _joined(words: Sequence[str], *, last: str = "and") -> str:
    """``a, b and c`` (or ``a, b or c``)."""
    return f"{', '.join(words[:-1])} {last} {words[-1]}" if len(words) > 1 else "".join(words)
