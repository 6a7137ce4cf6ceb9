"""The pure parts of the pre- and post-deployment checks: results and how they combine, the
capacity verdict on given measurements, the rollback plan, URL masking, JSON expectations,
the performance comparison, the log scan and the feedback rates."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from zerodown.checks.base import CheckResult, worst, worst_status
from zerodown.checks.post import (
    MAX_LOG_EXAMPLES,
    check_feedback,
    check_performance,
    json_lookup,
    json_matches,
    run_postchecks,
    scan_logs,
)
from zerodown.checks.pre import (
    CapacityMeasurement,
    assess_capacity,
    check_backup,
    check_dependency,
    check_rollback_plan,
    mask_url,
)
from zerodown.core.errors import InputError
from zerodown.spec import ServiceSpec, parse_spec
from zerodown.spec.models import CapacityCheckSpec, DependencyCheckSpec

MINIMAL = "service: web\nrun:\n  command: python app.py\n"
MI = 1024**2
GI = 1024**3


def spec_of(text: str) -> ServiceSpec:
    return parse_spec(text, filename="zerodown.yaml").spec


# -- CheckResult and worst -------------------------------------------------------------------


def test_a_result_is_json_ready() -> None:
    result = CheckResult(
        "capacity", "warn", "little CPU", {"ports": (1, 2), "nested": {3: "x"}}, 0.1234567891
    )
    data = result.to_dict()
    assert data == {
        "name": "capacity",
        "status": "warn",
        "summary": "little CPU",
        "figures": {"ports": [1, 2], "nested": {"3": "x"}},
        "duration_s": 0.123457,
    }
    assert json.loads(json.dumps(data)) == data


def test_a_warning_passes_a_failure_does_not() -> None:
    assert CheckResult("a", "warn", "").passed
    assert not CheckResult("a", "fail", "").passed


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown check status 'ok'"):
        CheckResult("a", "ok", "")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [((), "pass"), (("pass",), "pass"), (("pass", "warn"), "warn"), (("warn", "fail"), "fail")],
)
def test_worst_is_fail_then_warn_then_pass(statuses: tuple[Any, ...], expected: str) -> None:
    assert worst(CheckResult("x", s, "") for s in statuses) == expected
    assert worst_status(statuses) == expected


# -- capacity ----------------------------------------------------------------------------------


def measured(**changes: Any) -> CapacityMeasurement:
    values: dict[str, Any] = {
        "cpu_cores": 4,
        "load_1m": 1.0,
        "memory_available": 8 * GI,
        "disk_free": 100 * GI,
        "disk_path": "/var/lib/zerodown",
        "ports_bound": 3,
    }
    return CapacityMeasurement(**(values | changes))


DEFAULT_CAPACITY = CapacityCheckSpec()


def test_free_cpu_is_the_cores_the_load_leaves_idle() -> None:
    assert measured(cpu_cores=4, load_1m=1.0).cpu_free == 3.0
    assert measured(cpu_cores=4, load_1m=9.0).cpu_free == 0.0  # overloaded: none, not negative
    assert measured(cpu_cores=2, load_1m=0.0).cpu_free == 2.0


def test_enough_of_everything_passes_with_every_figure() -> None:
    result = assess_capacity(DEFAULT_CAPACITY, measured(), instances=3)
    assert result.status == "pass"
    assert result.name == "capacity"
    assert result.summary.startswith("room for 3 instances: CPU: 3.00 of 4 cores free")
    assert "192 MiB needed" in result.summary and "500 MiB wanted" in result.summary
    assert result.figures == {
        "instances": 3,
        "cpu_cores": 4,
        "load_1m": 1.0,
        "cpu_free": 3.0,
        "cpu_needed": 0.3,
        "memory_available_bytes": 8 * GI,
        "memory_needed_bytes": 192 * MI,
        "disk_path": "/var/lib/zerodown",
        "disk_free_bytes": 100 * GI,
        "disk_needed_bytes": 500 * MI,
        "ports_needed": 3,
        "ports_bound": 3,
    }


def test_cpu_below_the_need_only_warns_since_cpu_is_shared_not_reserved() -> None:
    """A busy minute (load average) must not block a deploy: CPU short is a warning."""
    capacity = CapacityCheckSpec(cpu_per_instance=1.0)
    short = assess_capacity(capacity, measured(load_1m=2.0), instances=3)  # 2 free, 3 needed
    assert short.status == "warn"
    assert short.summary == "not enough CPU: 2.00 of 4 cores free, 3.00 needed for 3 instances"
    tight = assess_capacity(capacity, measured(load_1m=0.0), instances=3)  # 4 free < 4.5
    assert tight.status == "warn"
    assert "little CPU: 4.00 of 4 cores free" in tight.summary
    assert "less than 1.5x" in tight.summary


def test_memory_below_the_need_fails_and_below_the_headroom_warns() -> None:
    short = assess_capacity(DEFAULT_CAPACITY, measured(memory_available=100 * MI), instances=2)
    assert short.status == "fail"
    assert short.summary == "not enough memory: 100 MiB available, 128 MiB needed for 2 instances"
    tight = assess_capacity(DEFAULT_CAPACITY, measured(memory_available=150 * MI), instances=2)
    assert tight.status == "warn" and tight.summary.startswith("little memory")


def test_too_little_disk_fails_whatever_else_is_free() -> None:
    result = assess_capacity(DEFAULT_CAPACITY, measured(disk_free=100 * MI), instances=1)
    assert result.status == "fail"
    assert result.summary == ("not enough disk: 100 MiB free at /var/lib/zerodown, 500 MiB wanted")


def test_ports_that_cannot_be_bound_fail() -> None:
    result = assess_capacity(
        DEFAULT_CAPACITY, measured(ports_bound=1, port_error="too many open files"), instances=3
    )
    assert result.status == "fail"
    assert result.summary == "loopback ports: 1 of 3 could be bound (too many open files)"


def test_every_shortage_is_named_and_a_failure_beats_a_warning() -> None:
    result = assess_capacity(
        CapacityCheckSpec(cpu_per_instance=1.0),
        measured(load_1m=0.0, disk_free=1 * MI),
        instances=3,
    )
    assert result.status == "fail"
    assert result.summary.startswith("little CPU")
    assert "; not enough disk" in result.summary


# -- rollback plan -----------------------------------------------------------------------------


def test_a_first_release_has_nothing_to_roll_back_to() -> None:
    result = check_rollback_plan(
        previous_revision=None, previous_version=None, previous_ready=0, replicas=3
    )
    assert (result.status, result.summary) == ("warn", "nothing to roll back to: first release")
    assert result.name == "rollback-plan"


def test_a_serving_previous_release_is_a_rollback_plan() -> None:
    result = check_rollback_plan(
        previous_revision=4, previous_version="v1.2", previous_ready=3, replicas=3
    )
    assert result.status == "pass"
    assert result.summary == "rollback to revision 4 (v1.2): 3 of 3 instances ready"
    assert result.figures == {
        "previous_revision": 4,
        "previous_version": "v1.2",
        "previous_ready": 3,
        "replicas": 3,
    }


def test_a_partly_serving_previous_release_still_passes_and_says_so() -> None:
    result = check_rollback_plan(
        previous_revision=4, previous_version=None, previous_ready=1, replicas=3
    )
    assert result.status == "pass"
    assert result.summary == (
        "rollback to revision 4: 1 of 3 instances ready (a rollback scales it back to 3)"
    )


def test_a_previous_release_with_no_instance_is_a_warning() -> None:
    result = check_rollback_plan(
        previous_revision=4, previous_version="v1", previous_ready=0, replicas=2
    )
    assert result.status == "warn"
    assert "none of its instances serves" in result.summary


# -- backup and dependencies without touching anything -----------------------------------------


def test_no_backup_configured_is_a_warning(tmp_path: Any) -> None:
    result = check_backup(spec_of(MINIMAL), spec_dir=tmp_path)
    assert (result.status, result.summary) == ("warn", "no backup configured for this service")
    assert result.figures == {"configured": False}


def test_postgresql_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    result = check_dependency(DependencyCheckSpec(name="db", url="postgresql://a@127.0.0.1/db"))
    assert result.status == "fail"
    assert "needs zerodown[postgres]" in result.summary


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:s3cret@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql://db/app?user=a&password=s3cret", "postgresql://db/app?user=a&password=***"),
        ("http://user@127.0.0.1:9000/healthz", "http://user@127.0.0.1:9000/healthz"),
        ("tcp://127.0.0.1:5672", "tcp://127.0.0.1:5672"),
    ],
)
def test_passwords_never_reach_a_result(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# -- JSON expectations ---------------------------------------------------------------------------

DOCUMENT = {
    "ok": True,
    "count": 2,
    "a.b": "literal",
    "data": {"version": "2", "items": [{"id": 7}, {"id": 8}]},
}


@pytest.mark.parametrize(
    ("key", "found", "value"),
    [
        ("ok", True, True),
        ("data.version", True, "2"),
        ("data.items.1.id", True, 8),
        ("a.b", True, "literal"),  # a key with a dot, as written, wins
        ("data.missing", False, None),
        ("data.items.5", False, None),
        ("ok.deeper", False, None),
    ],
)
def test_json_keys_may_be_dotted_paths(key: str, found: bool, value: Any) -> None:
    assert json_lookup(DOCUMENT, key) == (found, value)


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        (True, True, True),
        (True, 1, False),  # true is not 1
        (1, True, False),
        (1, 1.0, True),
        ("2", 2, False),
        (None, None, True),
        ({"version": "2"}, {"version": "2", "extra": 1}, True),  # a mapping is contained
        ({"version": "2"}, {"version": "3"}, False),
        ([1, {"id": 7}], [1, {"id": 7, "x": 0}], True),
        ([1], [1, 2], False),
    ],
)
def test_json_expectations(expected: Any, actual: Any, matches: bool) -> None:
    assert json_matches(expected, actual) is matches


# -- performance -------------------------------------------------------------------------------


def test_p95_within_the_ratio_passes() -> None:
    result = check_performance(p95_new=0.024, p95_previous=0.020, max_ratio=1.5)
    assert result.status == "pass"
    assert result.summary == "p95 24.0 ms vs 20.0 ms before: 1.20x (limit 1.5x)"
    assert result.figures["ratio"] == 1.2


def test_p95_above_the_ratio_fails() -> None:
    result = check_performance(p95_new=0.040, p95_previous=0.020, max_ratio=1.5)
    assert result.status == "fail"
    assert result.summary == "p95 40.0 ms vs 20.0 ms before: 2.00x, above the 1.5x limit"


def test_a_tiny_slowdown_under_the_noise_floor_passes() -> None:
    result = check_performance(
        p95_new=0.003, p95_previous=0.001, max_ratio=1.5, min_increase_s=0.005
    )
    assert result.status == "pass"
    assert "within the 5.0 ms noise floor" in result.summary


def test_no_previous_p95_passes_and_no_new_p95_warns() -> None:
    first = check_performance(p95_new=0.02, p95_previous=None, max_ratio=1.5)
    assert first.status == "pass"
    assert first.summary == "p95 20.0 ms; no previous p95 recorded to compare with"
    unmeasured = check_performance(p95_new=None, p95_previous=0.02, max_ratio=1.5)
    assert unmeasured.status == "warn"
    assert "no p95 latency measured" in unmeasured.summary


# -- logs ----------------------------------------------------------------------------------------

LINES = [
    (1_700_000_000.0, "web-1", "GET / 200"),
    (1_700_000_001.0, "web-2", "ERROR cannot reach db\n"),
    (1_700_000_002.0, "web-1", "Traceback (most recent call last):"),
    (1_700_000_003.0, "web-1", "ERROR in Traceback handler"),
]


def test_matching_lines_are_counted_per_pattern_with_examples() -> None:
    result = scan_logs(LINES, patterns=["ERROR", "Traceback"], max_matches=0)
    assert result.status == "fail"
    assert result.figures["lines_scanned"] == 4
    assert result.figures["matches"] == 3  # a line matching two patterns is one line
    assert result.figures["by_pattern"] == {"ERROR": 2, "Traceback": 2}
    assert result.figures["examples"][0] == {
        "ts": 1_700_000_001.0,
        "instance": "web-2",
        "pattern": "ERROR",
        "line": "ERROR cannot reach db",
    }
    assert result.summary == (
        "3 of 4 log lines match (ERROR 2, Traceback 2), at most 0 allowed; "
        "first on web-2 at 22:13:21 UTC: ERROR cannot reach db"
    )


def test_matches_up_to_the_limit_pass() -> None:
    assert scan_logs(LINES, patterns=["ERROR"], max_matches=2).status == "pass"
    assert scan_logs(LINES, patterns=["ERROR"], max_matches=1).status == "fail"


def test_patterns_are_regular_expressions_and_case_matters() -> None:
    result = scan_logs(LINES, patterns=[r"^GET / \d+$", "error"], max_matches=0)
    assert result.figures["by_pattern"] == {r"^GET / \d+$": 1, "error": 0}


def test_only_the_first_examples_are_kept_and_long_lines_are_cut() -> None:
    many = [(float(i), f"web-{i}", "ERROR " + "x" * 1000) for i in range(20)]
    result = scan_logs(many, patterns=["ERROR"], max_matches=0)
    assert result.figures["matches"] == 20
    assert len(result.figures["examples"]) == MAX_LOG_EXAMPLES
    assert len(result.figures["examples"][0]["line"]) == 300


def test_clean_logs_pass() -> None:
    result = scan_logs(LINES[:1], patterns=["ERROR", "Traceback"], max_matches=0)
    assert (result.status, result.summary) == (
        "pass",
        "none of 1 log lines matches ERROR, Traceback",
    )


def test_a_pattern_that_is_not_a_regular_expression_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not a regular expression"):
        scan_logs(LINES, patterns=["(unclosed"], max_matches=0)


# -- feedback ------------------------------------------------------------------------------------


def feedback(**changes: Any) -> CheckResult:
    values: dict[str, Any] = {
        "requests": 1000,
        "responses_4xx": 50,
        "client_aborts": 10,
        "max_4xx_rate": 0.10,
        "max_abort_rate": 0.05,
        "url": None,
    }
    return check_feedback(**(values | changes))


def test_rates_under_their_limits_pass() -> None:
    result = feedback()
    assert result.status == "pass"
    assert result.summary == ("4xx 5% of 1000 requests (limit 10%); client aborts 1% (limit 5%)")
    assert (result.figures["rate_4xx"], result.figures["abort_rate"]) == (0.05, 0.01)


def test_too_many_client_errors_or_aborts_fail() -> None:
    errors = feedback(responses_4xx=150)
    assert errors.status == "fail"
    assert errors.summary == "4xx 15% of 1000 requests (limit 10%)"
    aborts = feedback(client_aborts=60)
    assert aborts.status == "fail"
    assert aborts.summary == "client aborts 6% (limit 5%)"


def test_unmeasured_client_aborts_are_said_not_judged() -> None:
    result = feedback(client_aborts=None)
    assert result.status == "pass"
    assert "client aborts not measured" in result.summary
    assert result.figures["abort_rate"] is None


def test_no_requests_is_nothing_to_judge() -> None:
    result = feedback(requests=0, responses_4xx=0, client_aborts=0)
    assert result.status == "warn"
    assert "no requests reached the new release" in result.summary


# -- run_postchecks --------------------------------------------------------------------------------


def test_every_post_check_is_listed_even_when_not_configured() -> None:
    results = run_postchecks(spec_of(MINIMAL), base_url="http://127.0.0.1:9")
    assert [(r.name, r.status, r.summary) for r in results] == [
        ("smoke", "pass", "not configured"),
        ("performance", "pass", "not configured"),
        ("logs", "pass", "not configured"),
        ("feedback", "pass", "not configured"),
    ]


def test_configured_post_checks_are_judged_on_what_the_caller_measured() -> None:
    spec = spec_of(
        MINIMAL
        + "analysis: {minLatencyIncrease: 0}\n"
        + "checks:\n  post:\n    performance: {maxP95Ratio: 1.5}\n    logs:\n    feedback:\n"
    )
    results = run_postchecks(
        spec,
        base_url="http://127.0.0.1:9",
        p95_new=0.05,
        p95_previous=0.02,
        log_lines=LINES[:1],
        requests=100,
        responses_4xx=1,
        client_aborts=None,
    )
    assert [(r.name, r.status) for r in results] == [
        ("smoke", "pass"),
        ("performance", "fail"),
        ("logs", "pass"),
        ("feedback", "pass"),
    ]


def test_a_configured_check_without_its_measurements_warns() -> None:
    spec = spec_of(MINIMAL + "checks:\n  post:\n    logs:\n    feedback:\n")
    results = {r.name: r for r in run_postchecks(spec, base_url="http://127.0.0.1:9")}
    assert results["logs"].status == "warn"
    assert results["logs"].summary == "the new instances' logs were not collected"
    assert results["feedback"].status == "warn"
