"""Routing tables as JSON and on disk (round trips, validation, atomic saves); metric deltas."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from zerodown.core.errors import InputError
from zerodown.core.types import Address
from zerodown.traffic.base import (
    Backend,
    GroupMetrics,
    LatencyHistogram,
    MatchRule,
    ServiceMetrics,
    ServiceRoutes,
    routes_from_dict,
    routes_to_dict,
)
from zerodown.traffic.proxy.config import load_config, read_or_create_token, save_config
from zerodown.traffic.proxy.metrics import Counters, render_prometheus

ROUTES = ServiceRoutes(
    service="web",
    listen=Address("127.0.0.1", 8080),
    groups={
        "stable": (
            Backend("s1", Address("127.0.0.1", 9001)),
            Backend("s2", Address("127.0.0.1", 9002)),
        ),
        "canary": (Backend("c1", Address("127.0.0.1", 9003)),),
    },
    weights={"stable": 95, "canary": 5},
    sticky=True,
    rules=(
        MatchRule(group="canary", header="X-Canary", value="1"),
        MatchRule(group="canary", cookie="c", value="y"),
    ),
)


def test_routes_round_trip_through_json_form() -> None:
    assert routes_from_dict(routes_to_dict(ROUTES)) == ROUTES


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights": {"stable": -1}}, "integer >= 0"),
        ({"weights": {"nope": 1}}, "unknown group"),
        ({"listen": "nonsense"}, "host:port"),
        ({"rules": [{"group": "nope", "header": "x", "value": "1"}]}, "unknown group"),
        ({"rules": [{"group": "canary", "value": "1"}]}, "exactly one of header and cookie"),
        (
            {
                "groups": {
                    "a": [
                        {"id": "x", "address": "127.0.0.1:1"},
                        {"id": "x", "address": "127.0.0.1:2"},
                    ]
                },
                "weights": {},
            },
            "twice",
        ),
        ({"service": "bad name!"}, "simple name"),
    ],
)
def test_invalid_routes_are_refused_with_the_reason(
    change: dict[str, object], message: str
) -> None:
    data = routes_to_dict(ROUTES) | change
    with pytest.raises(InputError, match=message):
        routes_from_dict(data)


def test_config_is_saved_atomically_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    assert load_config(path) == {}
    save_config(path, {"web": ROUTES})
    assert load_config(path) == {"web": ROUTES}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left behind
    path.write_text("{broken")
    with pytest.raises(InputError):
        load_config(path)


def test_token_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    token = read_or_create_token(tmp_path / "token")
    assert len(token) >= 32
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert read_or_create_token(tmp_path / "token") == token


def test_service_metrics_delta_and_round_trip() -> None:
    older_counters = Counters()
    older_counters.requests, older_counters.classes[2], older_counters.classes[5] = 10, 9, 1
    newer_counters = Counters()
    newer_counters.requests, newer_counters.classes[2], newer_counters.classes[5] = 30, 25, 5
    newer_counters.hist[100] = 3
    older = ServiceMetrics(
        service="web", groups={"canary": older_counters.group_snapshot("canary")}
    )
    newer = ServiceMetrics(
        service="web", groups={"canary": newer_counters.group_snapshot("canary")}, rejected=2
    )
    window = newer.delta(older)
    canary = window.group("canary")
    assert canary.requests == 20 and canary.responses["5xx"] == 4 and canary.error_rate == 0.2
    assert canary.latency.count == 3
    assert window.rejected == 2
    assert ServiceMetrics.from_dict(newer.to_dict()) == newer
    assert window.group("missing") == GroupMetrics(group="missing", latency=LatencyHistogram())
    text = render_prometheus({"web": newer})
    assert 'zerodown_proxy_group_responses_total{service="web",group="canary",code="5xx"} 5' in text
    assert 'zerodown_proxy_rejected_total{service="web"} 2' in text
