"""Levels read from the ways applications mark them, and the default for unmarked lines."""

from __future__ import annotations

import pytest

from zerodown.api.openapi import LOG_LEVELS
from zerodown.ops.log_levels import (
    DEFAULT_LEVEL,
    LEVEL_NAMES,
    Level,
    LevelReader,
    level_of,
    parse_level,
)

ERR, WARN, INFO, DEBUG, CRIT = Level.ERROR, Level.WARNING, Level.INFO, Level.DEBUG, Level.CRITICAL


@pytest.mark.parametrize(
    ("line", "level"),
    [
        # JSON: string names in any case, pino/bunyan numbers, syslog severities, ECS nesting
        ('{"level":"error","msg":"db down"}', ERR),
        ('{"ts":1,"severity":"WARNING","message":"slow"}', WARN),
        ('{"levelname": "CRITICAL", "message": "out of memory"}', CRIT),
        ('{"level":50,"msg":"boom"}', ERR),
        ('{"level":30,"msg":"listening"}', INFO),
        ('{"level":60,"msg":"dying"}', CRIT),
        ('{"level":3,"short_message":"x"}', ERR),
        ('{"log":{"level":"warn"},"message":"retrying"}', WARN),
        ('{"@l":"Error","@m":"oops"}', ERR),
        ('{"Level":"Debug","msg":"x"}', DEBUG),
        # logfmt
        ("time=2024-05-01T12:00:00Z level=error msg=boom", ERR),
        ('ts=1 lvl=warn msg="slow request"', WARN),
        ("level=INFO msg=started", INFO),
        # glog / klog
        ("E0501 12:00:00.123456    4242 server.go:42] failed to sync", ERR),
        ("W0501 12:00:00.123456    4242 server.go:42] retrying", WARN),
        # Python logging: default format, asctime format, uvicorn
        ("ERROR:root:payment failed", ERR),
        ("WARNING:app.db:pool exhausted", WARN),
        ("2024-05-01 12:00:00,123 - app - ERROR - payment failed", ERR),
        ("2024-05-01 12:00:00,123 INFO app: started", INFO),
        ("ERROR:    Exception in ASGI application", ERR),
        ("DEBUG:asyncio:Using selector: EpollSelector", DEBUG),
        # prefixes, brackets, nginx, env_logger, capitalised and opening words
        ("ERROR simulated failure on /", ERR),
        ("WARN disk 91% full", WARN),
        ("FATAL cannot bind :8080", CRIT),
        ("2024/05/01 12:00:00 [error] 7#7: *1 connect() failed", ERR),
        ("[2024-05-01T12:00:00Z WARN  my_app] slow", WARN),
        ("[notice] worker started", INFO),
        ("<crit> disk gone", CRIT),
        ("Error: connect ECONNREFUSED 127.0.0.1:5432", ERR),
        ("request failed. Warning: retry budget low", WARN),
        ("error: could not read config", ERR),
        ("warning[E0001]: deprecated", WARN),
        # exceptions
        ("Traceback (most recent call last):", ERR),
        ("ValueError: invalid literal for int()", ERR),
        ("java.lang.IllegalStateException: closed", ERR),
    ],
)
def test_the_level_a_line_states_is_read(line: str, level: Level) -> None:
    assert level_of(line) is level


@pytest.mark.parametrize(
    "line",
    [
        "GET / 200",
        "GET /error 200",
        "POST /api/errors/42 201",
        "example app v1 listening on 127.0.0.1:8000 pid 12",
        "the error budget is fine",
        "ERROR_CODES loaded",
        '{"msg":"no level here"}',
        "",
    ],
)
def test_a_line_without_a_marker_states_no_level(line: str) -> None:
    assert level_of(line) is None


def test_the_leftmost_marker_wins() -> None:
    assert level_of("INFO: retried after ERROR from upstream") is INFO
    assert level_of("[error] after INFO") is ERR


def test_a_marker_deep_in_a_long_message_is_not_a_level() -> None:
    assert level_of("x" * 200 + " ERROR") is None


def test_unmarked_lines_default_to_info_whatever_the_stream() -> None:
    reader = LevelReader()
    assert DEFAULT_LEVEL is INFO
    assert reader.read("listening on :8080") is INFO


def test_stack_frames_take_the_level_of_the_line_above() -> None:
    reader = LevelReader()
    lines = [
        "Traceback (most recent call last):",
        '  File "app.py", line 3, in handle',
        "    charge(order)",
        "ValueError: card declined",
        "GET / 200",
        "\tat com.shop.Pay.charge(Pay.java:10)",
    ]
    assert [reader.read(line) for line in lines] == [ERR, ERR, ERR, ERR, INFO, INFO]
    reader = LevelReader()
    java = ["SEVERE: request failed", "\tat com.shop.Pay.charge(Pay.java:10)", "Caused by: x"]
    assert [reader.read(line) for line in java] == [ERR, ERR, ERR]


def test_levels_order_and_parse_from_user_input() -> None:
    assert [level.value for level in Level] == list(LEVEL_NAMES) == LOG_LEVELS
    assert Level.CRITICAL.at_least(Level.ERROR) and not Level.WARNING.at_least(Level.ERROR)
    assert (
        parse_level("WARN") is WARN and parse_level(" err ") is ERR and parse_level("fatal") is CRIT
    )
    with pytest.raises(ValueError, match="choose one of debug, info, warning, error, critical"):
        parse_level("loud")
