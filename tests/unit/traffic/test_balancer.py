"""Pure routing decisions: smooth weighted round-robin exactness, rules, sticky cookies."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from zerodown.core.types import Address
from zerodown.traffic.base import Backend, MatchRule, ServiceRoutes
from zerodown.traffic.proxy.balancer import (
    BackendState,
    RoutingTable,
    cookie_value,
    smooth_weighted_schedule,
)


def table(
    weights: dict[str, int],
    *,
    sticky: bool = False,
    rules: tuple[MatchRule, ...] = (),
    sizes: dict[str, int] | None = None,
) -> RoutingTable:
    groups = {
        g: tuple(
            Backend(f"{g}-{i}", Address("127.0.0.1", 9000 + i))
            for i in range((sizes or {}).get(g, 1))
        )
        for g in weights
    }
    routes = ServiceRoutes(
        service="web",
        listen=Address("127.0.0.1", 8080),
        groups=groups,
        weights=weights,
        sticky=sticky,
        rules=rules,
    )
    states = {
        b.id: BackendState(b.id, g, b.address) for g, members in groups.items() for b in members
    }
    return RoutingTable(routes, states)


@pytest.mark.parametrize("canary", range(0, 101))
def test_every_one_percent_step_is_exact_over_100_requests(canary: int) -> None:
    t = table({"stable": 100 - canary, "canary": canary})
    picks = Counter(t.weighted().name for _ in range(100))  # type: ignore[union-attr]
    assert picks["canary"] == canary and picks["stable"] == 100 - canary


def test_any_window_of_one_cycle_is_exact_and_spread_evenly() -> None:
    schedule = smooth_weighted_schedule({"a": 5, "b": 1, "c": 4})
    assert Counter(schedule) == {"a": 5, "b": 1, "c": 4}
    doubled = schedule * 2
    for start in range(len(schedule)):
        assert Counter(doubled[start : start + 10]) == {"a": 5, "b": 1, "c": 4}
    # smooth: the heavy group never runs more than twice in a row here
    assert "aaa" not in "".join(schedule)


def test_schedule_is_reduced_by_gcd_and_skips_zero_weights() -> None:
    assert smooth_weighted_schedule({"a": 50, "b": 50, "c": 0}) == ["a", "b"]
    assert smooth_weighted_schedule({"a": 0}) == []


def test_random_weights_exact_over_a_cycle() -> None:
    rng = random.Random(7)
    for _ in range(50):
        weights = {f"g{i}": rng.randint(0, 30) for i in range(rng.randint(1, 5))}
        total = sum(weights.values())
        picks = Counter(smooth_weighted_schedule(weights))
        assert sum(picks.values()) <= total
        for g, w in weights.items():
            if w:
                assert picks[g] * total == w * sum(picks.values())


def test_group_without_instances_gets_no_share() -> None:
    t = table({"stable": 50, "canary": 50}, sizes={"stable": 1, "canary": 0})
    assert {t.weighted().name for _ in range(10)} == {"stable"}  # type: ignore[union-attr]


def test_instances_take_turns_within_a_group() -> None:
    t = table({"stable": 1}, sizes={"stable": 3})
    group = t.groups["stable"]
    assert [group.next_backend().id for _ in range(6)] == ["stable-0", "stable-1", "stable-2"] * 2  # type: ignore[union-attr]


def test_header_rule_wins_over_weights_even_at_zero_weight() -> None:
    t = table(
        {"stable": 100, "preview": 0},
        rules=(MatchRule(group="preview", header="X-Preview", value="yes"),),
    )
    assert t.rule_headers == frozenset({b"x-preview"})
    group, cookie = t.choose({b"x-preview": b"yes"}, None)
    assert group is not None and group.name == "preview" and not cookie
    group, _ = t.choose({b"x-preview": b"no"}, None)
    assert group is not None and group.name == "stable"


def test_cookie_rule_matches_exact_value() -> None:
    t = table(
        {"stable": 100, "beta": 0}, rules=(MatchRule(group="beta", cookie="beta", value="1"),)
    )
    assert t.choose(None, b"x=1; beta=1")[0].name == "beta"  # type: ignore[union-attr]
    assert t.choose(None, b"beta=10")[0].name == "stable"  # type: ignore[union-attr]


def test_sticky_cookie_keeps_group_while_it_has_weight() -> None:
    t = table({"a": 99, "b": 1}, sticky=True)
    group, give = t.choose(None, b"zerodown_web=b")
    assert group is not None and group.name == "b" and not give
    group, give = t.choose(None, None)
    assert group is not None and give
    assert group.set_cookie.startswith(b"Set-Cookie: zerodown_web=")
    t0 = table({"a": 100, "b": 0}, sticky=True)
    group, give = t0.choose(None, b"zerodown_web=b")
    assert group is not None and group.name == "a" and give


def test_cookie_value_parsing() -> None:
    assert cookie_value(b"a=1; b=2;c=3", b"c") == b"3"
    assert cookie_value(b'a="quoted"', b"a") == b"quoted"
    assert cookie_value(b"ab=1", b"a") is None
