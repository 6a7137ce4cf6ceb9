"""Differential test: zerodown's rule evaluation against Prometheus' own, via ``promtool``.

Each case is a rule file and input series. zerodown evaluates the rules over the series at every
evaluation step; the firing alerts it finds (labels and rendered annotations) are written as the
expectations of a ``promtool test rules`` file over the same series, and promtool must agree at
every step. So any difference in expression results, ``for``/``keep_firing_for`` timing, label
handling or template output fails the test, with promtool's own diff in the message.

promtool comes with the Debian package ``prometheus`` (2.42 on Debian 12; ``keep_firing_for``
needs 2.42 or later). Locally a missing promtool skips; in CI it fails.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import require_component
from zerodown.ops import promql
from zerodown.ops.alerts import AlertState, RuleEvaluator, default_rules_text, parse_rules
from zerodown.ops.series import SeriesStore

pytestmark = pytest.mark.integration

Point = float | None | str  # a number, None for a missing sample, "stale" for a staleness marker


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        require_component("promtool", "install the Debian package 'prometheus'")
    assert path is not None
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"version (\d+)\.(\d+)", version.stdout + version.stderr)
    if found is None or (int(found.group(1)), int(found.group(2))) < (2, 42):
        require_component("promtool >= 2.42", f"found {version.stdout.strip()!r}")
    return path


@dataclass
class Case:
    name: str
    rules: str
    series: dict[str, list[Point]]
    steps: int
    interval: float = 60.0
    expect_firing: Sequence[str] = field(default_factory=tuple)
    """Alert names that must fire at some step (so a case cannot pass by firing nothing)."""


def _series(steps: int, value: Callable[[int], Point]) -> list[Point]:
    return [value(i) for i in range(steps)]


def _format_point(point: Point) -> str:
    if point is None:
        return "_"
    if isinstance(point, str):
        return point
    return repr(float(point))


def _feed(store: SeriesStore, selector: str, points: list[Point], interval: float) -> None:
    parsed = promql.parse(selector)
    assert isinstance(parsed, promql.VectorSelector) and parsed.name
    labels = {m.name: m.value for m in parsed.matchers if m.name != "__name__"}
    for index, point in enumerate(points):
        if point is None:
            continue
        if point == "stale":
            store.mark_stale(parsed.name, labels, index * interval)
        else:
            assert isinstance(point, float | int)
            store.append(parsed.name, labels, float(point), index * interval)


def _go_duration(seconds: float) -> str:
    return promql.format_duration(seconds)


def _run_case(case: Case, promtool: str, tmp_path: Path) -> None:
    groups = parse_rules(case.rules, filename=f"{case.name}.yaml")
    store = SeriesStore(retention=10 * 86400)
    for selector, points in case.series.items():
        _feed(store, selector, points, case.interval)
    evaluator = RuleEvaluator(groups, store)
    alert_names = [rule.name for group in groups for rule in group.rules]
    tests: list[dict[str, object]] = []
    fired: set[str] = set()
    for step in range(case.steps):
        at = step * case.interval
        alerts = evaluator.evaluate(at)
        assert not evaluator.errors(), evaluator.errors()
        for name in alert_names:
            firing = [a for a in alerts if a.rule == name and a.state is AlertState.FIRING]
            fired.update(a.rule for a in firing)
            tests.append(
                {
                    "eval_time": _go_duration(at),
                    "alertname": name,
                    "exp_alerts": [
                        {"exp_labels": a.label_map, "exp_annotations": a.annotation_map}
                        for a in firing
                    ],
                }
            )
    missing = set(case.expect_firing) - fired
    assert not missing, f"zerodown never fired {sorted(missing)}: the case tests too little"
    (tmp_path / "rules.yaml").write_text(case.rules)
    test_file = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": _go_duration(case.interval),
        "tests": [
            {
                "interval": _go_duration(case.interval),
                "input_series": [
                    {"series": selector, "values": " ".join(map(_format_point, points))}
                    for selector, points in case.series.items()
                ],
                "alert_rule_test": tests,
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(json.dumps(test_file, indent=1))
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        "promtool disagrees with zerodown:\n" + result.stdout[-6000:] + result.stderr[-2000:]
    )


ISSUE_VECTOR = Case(
    name="issue_vector",
    rules="""
groups:
  - name: g
    rules:
      - alert: HighRequest
        expr: http_requests > 50
        for: 1m
        keep_firing_for: 1m
        labels: {severity: page}
        annotations:
          value: "{{ $value }}"
          job: "{{ $labels.job }} {{ $labels.missing }}"
""",
    series={'http_requests{job="app",instance="a"}': [75, 85, 70, 70, 10, 10, 10, 10, 10]},
    steps=9,
    expect_firing=("HighRequest",),
)

N = 30
RATES = Case(
    name="rates",
    rules="""
groups:
  - name: rates
    rules:
      - alert: HighErrorRatio
        expr: |
          sum by (job) (rate(errors_total[5m])) / sum by (job) (rate(requests_total[5m])) > 0.1
        for: 2m
        annotations:
          summary: "{{ $labels.job }}: {{ $value | humanizePercentage }} errors"
          raw: "{{ $value | humanize }}"
      - alert: FastRequests
        expr: rate(requests_total{job="api"}[3m]) > 1.2
        keep_firing_for: 2m
        annotations: {v: "{{ $value }}"}
      - alert: BigIncrease
        expr: increase(requests_total[4m]) >= 300 unless on (instance) errors_total > 100
        annotations: {v: "{{ $value | printf \\"%.3f\\" }}"}
      - alert: Jumpy
        expr: abs(delta(gauge[2m])) > 5 or gauge offset 3m > 40
        for: 1m
""",
    series={
        'requests_total{job="api",instance="a"}': _series(N, lambda i: 60.0 * i),
        # resets at step 8, gaps at 12-13, then a burst
        'requests_total{job="api",instance="b"}': _series(
            N,
            lambda i: (
                None
                if i in (12, 13)
                else (40.0 * i if i < 8 else 20.0 * (i - 8) + (100.0 * max(0, i - 18)))
            ),
        ),
        'requests_total{job="web",instance="c"}': _series(N, lambda i: 10.0 * i),
        'errors_total{job="api",instance="a"}': _series(
            N, lambda i: 0.0 if i < 5 else (15.0 * (i - 5) if i < 15 else 150.0)
        ),
        'errors_total{job="api",instance="b"}': _series(N, lambda i: 0.0),
        'errors_total{job="web",instance="c"}': _series(N, lambda i: float(i // 3)),
        'gauge{room="x"}': _series(
            N, lambda i: [10.0, 12.0, 30.0, 31.0, 45.0, 44.0, 20.0][i % 7] if i < 25 else "stale"
        ),
    },
    steps=N,
    expect_firing=("HighErrorRatio", "FastRequests", "BigIncrease", "Jumpy"),
)

FUNCTIONS = Case(
    name="functions",
    rules="""
groups:
  - name: functions
    interval: 30s
    rules:
      - alert: WarmRoom
        expr: avg_over_time(temp[3m]) > 25 unless on (room) max_over_time(temp[3m]) > 38
        annotations: {v: "{{ $value }}", room: "{{ .Labels.room }}"}
      - alert: DiskRunsOut
        expr: predict_linear(free_bytes[10m], 3600) < 0
        for: 1m
        annotations: {v: "{{ $value | humanize1024 }}"}
      - alert: NoHeartbeat
        expr: absent(heartbeat{job="cron"})
        for: 90s
      - alert: HotAndBusy
        expr: |
          sum by (room) (temp > bool 30) >= 1 and ignoring (kind) count by (room, kind) (load) > 1
      - alert: SlowP90
        expr: |
          histogram_quantile(0.9, sum by (le, service) (rate(latency_bucket[2m])))
            > on (service) 2 * baseline_seconds
        annotations: {v: "{{ $value | humanizeDuration }}"}
      - alert: SparseRate
        expr: rate(sparse_total[4m]) > 0 or increase(sparse_total[150s]) > 0
        annotations: {v: "{{ $value }}"}
      - alert: MinMax
        expr: min without (instance) (temp) < 5 or max by (room) (clamp_max(temp, 35)) == 35
""",
    series={
        'temp{room="a",instance="1"}': _series(40, lambda i: 20.0 + (i % 12) * 2),
        'temp{room="b",instance="2"}': _series(40, lambda i: 3.0 if 10 <= i < 14 else 22.0),
        'free_bytes{mount="/"}': _series(40, lambda i: 1e9 - (4e7 * i if i > 8 else 0)),
        'free_bytes{mount="/data"}': _series(40, lambda i: 5e11 + 1e3 * (i % 3)),
        'heartbeat{job="cron"}': _series(40, lambda i: 1.0 if i < 6 or i > 25 else None),
        'load{room="a",kind="cpu",instance="1"}': _series(40, lambda i: 1.0),
        'load{room="a",kind="cpu",instance="2"}': _series(40, lambda i: 1.0 if i > 15 else None),
        'latency_bucket{service="s",le="0.1"}': _series(
            40, lambda i: 90.0 * i if i < 20 else 90.0 * 20 + 50.0 * (i - 20)
        ),
        'latency_bucket{service="s",le="0.5"}': _series(
            40, lambda i: 98.0 * i if i < 20 else 98.0 * 20 + 91.0 * (i - 20)
        ),
        'latency_bucket{service="s",le="+Inf"}': _series(40, lambda i: 100.0 * i),
        'baseline_seconds{service="s"}': _series(40, lambda i: 0.1),
        # Irregular gaps put the first sample at various distances from the window's start,
        # around the 1.1 x average-gap threshold of rate()'s extrapolation.
        'sparse_total{job="s"}': _series(
            40, lambda i: 5.0 + 7.0 * i if i % 5 in (2, 4) or i % 7 == 0 else None
        ),
    },
    steps=40,
    interval=30.0,
    expect_firing=(
        "WarmRoom",
        "DiskRunsOut",
        "NoHeartbeat",
        "HotAndBusy",
        "SlowP90",
        "SparseRate",
        "MinMax",
    ),
)


def _default_rule_series(steps: int) -> dict[str, list[Point]]:
    minute = 2  # two steps of 30 s

    def between(i: int, start_min: float, end_min: float) -> bool:
        return start_min * minute <= i < end_min * minute

    ok_count = 0.0
    bad_count = 0.0
    unavailable = 0.0
    ok: list[Point] = []
    bad: list[Point] = []
    down: list[Point] = []
    for i in range(steps):
        ok_count += 100.0
        bad_count += 12.0 if between(i, 4, 12) else 0.0
        unavailable += 3.0 if between(i, 14, 22) else 0.0
        ok.append(ok_count)
        bad.append(bad_count)
        down.append(unavailable)
    total: list[Point] = []
    fast: list[Point] = []
    running_fast = 0.0
    for i in range(steps):
        step_total = 100.0 + (12.0 if between(i, 4, 12) else 0.0)
        running_fast += step_total * (0.5 if between(i, 24, 60) else 0.97)
        fast.append(running_fast)
        total.append(sum(float(p) for p in (ok[i], bad[i]) if isinstance(p, float)))
    return {
        'zerodown_requests_total{service="web",version="v2",code_class="2xx"}': ok,
        'zerodown_requests_total{service="web",version="v2",code_class="5xx"}': bad,
        'zerodown_requests_unavailable_total{service="web",version="v2"}': down,
        'zerodown_request_duration_seconds_bucket{service="web",version="v2",le="0.1"}': fast,
        'zerodown_request_duration_seconds_bucket{service="web",version="v2",le="1"}': total,
        'zerodown_request_duration_seconds_bucket{service="web",version="v2",le="+Inf"}': total,
        'zerodown_baseline_latency_seconds{service="web",quantile="0.95"}': _series(
            steps, lambda i: 0.08
        ),
        'zerodown_instance_healthy{service="web",instance="web-1",version="v2"}': _series(
            steps, lambda i: 0.0 if between(i, 3, 6) or between(i, 8, 8.5) else 1.0
        ),
        'zerodown_instance_restarts_total{service="web",instance="web-1"}': _series(
            steps, lambda i: 0.0 if i < 10 else (1.0 if i < 30 else 2.0)
        ),
        'zerodown_disk_free_bytes{mountpoint="/var"}': _series(
            steps, lambda i: 1.5e9 - (1e7 * (i - 20) if i > 20 else 0.0)
        ),
        'zerodown_disk_size_bytes{mountpoint="/var"}': _series(steps, lambda i: 1e10),
        # A backup failed at minute 30; the newest good backup is from time 0 until a fresh
        # one at minute 25, so it is older than 15 minutes from minute 15 to 25.
        'zerodown_backup_failures_total{service="web",target="db"}': _series(
            steps, lambda i: 0.0 if i < 30 * minute else 1.0
        ),
        'zerodown_backup_last_success_timestamp_seconds{service="web",target="db"}': _series(
            steps, lambda i: 0.0 if i < 25 * minute else 25 * 60.0
        ),
        'zerodown_backup_max_age_seconds{service="web",target="db"}': _series(
            steps, lambda i: 900.0
        ),
        # A target first due at minute 5 never gets a good backup: no last-success series, and
        # from minute 20 (15 minutes after it was due) it has none for longer than allowed.
        'zerodown_backup_first_due_timestamp_seconds{service="web",target="files"}': _series(
            steps, lambda i: 5 * 60.0
        ),
        'zerodown_backup_max_age_seconds{service="web",target="files"}': _series(
            steps, lambda i: 900.0
        ),
    }


DEFAULT_RULES = Case(
    name="default_rules",
    rules=default_rules_text(),
    series=_default_rule_series(80),
    steps=80,
    interval=30.0,
    expect_firing=(
        "ZerodownHighErrorRate",
        "ZerodownLatencyAboveBaseline",
        "ZerodownLowAvailability",
        "ZerodownInstanceUnhealthy",
        "ZerodownDiskFillingUp",
        "ZerodownInstanceRestarted",
        "ZerodownBackupFailed",
        "ZerodownBackupTooOld",
        "ZerodownBackupMissing",
    ),
)


@pytest.mark.parametrize(
    "case", [ISSUE_VECTOR, RATES, FUNCTIONS, DEFAULT_RULES], ids=lambda case: case.name
)
def test_zerodown_fires_what_promtool_fires(case: Case, promtool: str, tmp_path: Path) -> None:
    """At every evaluation step, zerodown's firing alerts are exactly promtool's."""
    _run_case(case, promtool, tmp_path)


def test_default_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    """The shipped rule file is valid for a real Prometheus too."""
    path = tmp_path / "default_rules.yaml"
    path.write_text(default_rules_text())
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_makes_promtool_fail(promtool: str, tmp_path: Path) -> None:
    """The harness can fail: promtool rejects an expectation that is off by one step."""
    rules = ISSUE_VECTOR.rules
    (tmp_path / "rules.yaml").write_text(rules)
    test_file = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": 'http_requests{job="app"}', "values": "75 85"}],
                "alert_rule_test": [
                    {
                        "eval_time": "0m",
                        "alertname": "HighRequest",
                        "exp_alerts": [{"exp_labels": {"job": "app", "severity": "page"}}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(json.dumps(test_file))
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
