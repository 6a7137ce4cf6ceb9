"""Building blocks shared by the spec models: the base model and the small value types.

``SpecModel`` fixes how every model reads YAML: camelCase keys (``stopGraceSeconds``) map to
snake_case attributes (``stop_grace_seconds``), unknown keys are errors, and models are frozen.
The annotated types below turn what users write (``5%``, ``25%``, ``127.0.0.1:8080``, ``true``
in an env value) into typed values, and raise errors whose text says what was expected; the
``spec_value`` error type tells ``validation.py`` that the text is already written for humans.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

__all__ = [
    "ENV_KEY_PATTERN",
    "SERVICE_NAME_PATTERN",
    "Alpha",
    "EnvKey",
    "EnvValue",
    "Fraction",
    "HostPort",
    "HttpPath",
    "Int",
    "IntOrPercent",
    "JudgeName",
    "LatencyQuantile",
    "LatencyRatio",
    "MinRequests",
    "NonEmptyStr",
    "Number",
    "Platform",
    "Port",
    "RestartPolicy",
    "ServiceNameStr",
    "SpecModel",
    "StrategyName",
    "parse_fraction",
    "parse_int_or_percent",
    "resolve_int_or_percent",
    "spec_value_error",
    "split_host_port",
]

Platform = Literal["local", "docker", "swarm", "kubernetes"]
RestartPolicy = Literal["always", "on-failure", "never"]
JudgeName = Literal["thresholds", "sequential", "mann-whitney"]
LatencyQuantile = Literal["p50", "p90", "p95", "p99"]
StrategyName = Literal["rolling", "blue-green", "canary", "native"]

SERVICE_NAME_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,39}")
ENV_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")


class SpecModel(BaseModel):
    """Base of every spec model: frozen, unknown keys forbidden, camelCase keys in YAML.

    Python code may construct models by attribute name (``RunSpec(command="...")``); the
    loader validates YAML by alias only, so a file must use the camelCase keys.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
    )


def spec_value_error(expected: str, *, hint: str | None = None) -> PydanticCustomError:
    """An error whose message (``expected ...``) is ready for humans; ``hint`` is optional."""
    return PydanticCustomError("spec_value", expected, {"hint": hint} if hint else None)


def _reject_bool_int(value: Any) -> Any:
    # pydantic's lax mode reads ``true`` as 1; in a spec that is always a mistake.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _reject_bool_number(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "Input should be a valid number")
    return value


Int = Annotated[int, BeforeValidator(_reject_bool_int)]
"""An integer; ``true``/``false`` are refused rather than read as 1/0."""

Number = Annotated[float, BeforeValidator(_reject_bool_number)]
"""A float; ``true``/``false`` are refused rather than read as 1.0/0.0."""


def _non_blank(value: str) -> str:
    if not value.strip():
        raise spec_value_error("expected a non-empty string")
    return value


NonEmptyStr = Annotated[str, AfterValidator(_non_blank)]


def _check_service_name(value: str) -> str:
    if SERVICE_NAME_PATTERN.fullmatch(value):
        return value
    suggestion = re.sub(r"[^a-z0-9-]+", "-", value.strip().lower()).strip("-")[:40]
    hint = None
    if suggestion != value and SERVICE_NAME_PATTERN.fullmatch(suggestion):
        hint = f"did you mean '{suggestion}'?"
    raise spec_value_error(
        "expected a service name of lowercase letters, digits and '-', starting with a letter, "
        "at most 40 characters",
        hint=hint,
    )


ServiceNameStr = Annotated[str, AfterValidator(_check_service_name)]


def _check_env_key(value: str) -> str:
    if not ENV_KEY_PATTERN.fullmatch(value):
        raise spec_value_error(
            "expected an environment variable name of letters, digits and '_', "
            "not starting with a digit"
        )
    return value


def _env_value_as_text(value: Any) -> Any:
    # YAML reads ``DEBUG: true`` and ``WORKERS: 4`` as bool and int; the process sees text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise spec_value_error("expected a string, number or boolean as an environment value")
    return value


EnvKey = Annotated[str, AfterValidator(_check_env_key)]
EnvValue = Annotated[str, BeforeValidator(_env_value_as_text)]


def parse_fraction(value: Any) -> float:
    """``"5%"`` -> 0.05, ``0.05`` -> 0.05; ``PydanticCustomError`` unless a fraction 0..1."""
    expected = "expected a fraction 0..1 or a percentage such as '5%'"
    if isinstance(value, bool):
        raise spec_value_error(expected)
    fraction: float
    if isinstance(value, int | float):
        fraction = float(value)
    elif isinstance(value, str):
        text = value.strip()
        percent = _PERCENT.fullmatch(text)
        try:
            fraction = float(percent.group(1)) / 100 if percent else float(text)
        except ValueError:
            raise spec_value_error(expected) from None
    else:
        raise spec_value_error(expected)
    if not math.isfinite(fraction) or not 0 <= fraction <= 1:
        hint = None
        if isinstance(value, int | float) and 1 < fraction <= 100:
            hint = f"did you mean '{value:g}%'?"
        raise spec_value_error(expected, hint=hint)
    return fraction


Fraction = Annotated[
    float,
    BeforeValidator(parse_fraction),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"type": "string"}]}),
]
"""A fraction 0..1; ``"5%"`` is read as 0.05."""


def parse_int_or_percent(value: Any) -> int | str:
    """``2`` -> 2, ``"25%"`` -> ``"25%"``; ``PydanticCustomError`` for anything else."""
    expected = "expected a count (an integer >= 0) or a percentage such as '25%'"
    if isinstance(value, bool):
        raise spec_value_error(expected)
    if isinstance(value, int):
        if value < 0:
            raise spec_value_error(expected)
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        percent = _PERCENT.fullmatch(text)
        if percent and float(percent.group(1)) <= 100:
            return f"{float(percent.group(1)):g}%"
    raise spec_value_error(expected)


IntOrPercent = Annotated[
    int | str,
    BeforeValidator(parse_int_or_percent),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": r"^\d+%$"}]}
    ),
]
"""An instance count (``1``) or a percentage of the replicas (``"25%"``, kept as text)."""


def resolve_int_or_percent(value: int | str, *, total: int, round_up: bool) -> int:
    """The count ``value`` means for ``total`` replicas (``"25%"`` of 6 is 2 rounded up, 1 down)."""
    if isinstance(value, int):
        return value
    exact = float(value.rstrip("%")) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def split_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` -> ``("127.0.0.1", 8080)``; ``"[::1]:80"`` -> ``("::1", 80)``.

    ``ValueError`` if there is no host, no port, or the port is not 1..65535.
    """
    host, sep, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"expected host:port with a port 1..65535, got {text!r}")
    return host, int(port_text)


def _check_host_port(value: str) -> str:
    try:
        split_host_port(value)
    except ValueError:
        raise spec_value_error(
            "expected host:port with a port 1..65535, such as 127.0.0.1:8080"
        ) from None
    return value


HostPort = Annotated[str, AfterValidator(_check_host_port)]


def _check_http_path(value: str) -> str:
    if not value.startswith("/"):
        raise spec_value_error(
            "expected an HTTP path starting with '/'", hint=f"did you mean '/{value}'?"
        )
    return value


HttpPath = Annotated[str, AfterValidator(_check_http_path)]

# Constrained numbers used in more than one model; each constraint is written once, here.
Port = Annotated[int, BeforeValidator(_reject_bool_int), Field(ge=1, le=65535)]
MinRequests = Annotated[int, BeforeValidator(_reject_bool_int), Field(ge=1)]
LatencyRatio = Annotated[float, BeforeValidator(_reject_bool_number), Field(gt=1)]
Alpha = Annotated[float, BeforeValidator(_reject_bool_number), Field(gt=0, lt=0.5)]
