"""The rules that turn measured figures into findings, each held to the threshold it states."""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.report.checks import check_report
from tests.unit.report.fixtures import FIXTURES
from zerodown.report import ReportInput, render_markdown, report_json


def with_release_state(data: ReportInput, **changes: Any) -> ReportInput:
    release = copy.deepcopy(dict(data.release))
    release["state"] = {**release["state"], **changes}
    return ReportInput(**{**data.__dict__, "release": release})


def with_host(data: ReportInput, **host: Any) -> ReportInput:
    events = copy.deepcopy(list(data.events))
    for event in events:
        if event["kind"] == "rollout.sample":
            event["data"]["host"].update(host)
    return ReportInput(**{**data.__dict__, "events": events})


def rules(data: ReportInput) -> dict[str, dict[str, Any]]:
    bottlenecks = report_json(data)["sections"]["performance"]["bottlenecks"]
    return {r["id"]: r for r in bottlenecks["rules"]}


def test_a_busy_host_is_a_cpu_bottleneck_and_asks_for_more_instances() -> None:
    data = with_host(FIXTURES["canary_succeeded"](), cpu_percent=91.0, load_1m=9.6)
    found = rules(data)
    assert found["cpu_peak"]["triggered"] and found["cpu_peak"]["value"] == 91.0
    assert found["load_per_core"]["triggered"] and found["load_per_core"]["value"] == 1.2
    sections = report_json(data)["sections"]
    scaling = sections["performance"]["scaling"]
    # ⌈2 × 91 / 70⌉ = 3
    assert scaling["recommendation"] == "scale_out"
    assert scaling["recommended_replicas"] == 3
    ids = [i["id"] for i in sections["performance"]["resource_optimization"]["items"]]
    assert ids[0] == "add_cpu"
    markdown = render_markdown(data, chart_name=None)
    assert "擴展到 3 個實例: CPU 峰值 91% > 目標 70%" in markdown
    check_report(markdown, report_json(data))


def test_an_idle_host_is_reported_as_over_provisioned() -> None:
    data = with_host(FIXTURES["canary_succeeded"](), cpu_percent=4.0, memory_percent=30.0)
    items = report_json(data)["sections"]["performance"]["resource_optimization"]["items"]
    assert items[0]["id"] == "over_provisioned"
    assert items[0]["cpu_peak"] == 4.0


def test_a_full_disk_is_urgent() -> None:
    data = with_host(FIXTURES["canary_succeeded"](), disk_percent=95.5)
    urgent = report_json(data)["sections"]["recommendations"]["urgent_actions"]["items"]
    assert {"id": "free_disk", "value": 95.5, "threshold": 90.0} in urgent
    markdown = render_markdown(data, chart_name=None)
    assert "- [ ] 磁碟使用 95.5% ≥ 90%: 立即釋放空間" in markdown


def test_an_inconclusive_last_verdict_makes_a_success_partial() -> None:
    data = FIXTURES["canary_succeeded"]()
    verdicts = copy.deepcopy(data.release["state"]["verdicts"])
    verdicts.append(
        {
            **verdicts[-1],
            "label": "final check",
            "outcome": "inconclusive",
            "reason": "60 more canary requests needed",
            "requests_needed": 60,
        }
    )
    partial = with_release_state(data, verdicts=verdicts)
    status = report_json(partial)["sections"]["deployment_summary"]["deployment_status"]
    assert status["outcome"] == "partial"
    assert status["partial_reasons"][0]["code"] == "analysis_inconclusive"
    markdown = render_markdown(partial, chart_name=None)
    assert "部署狀態: 部分成功 (已完成, 但 分析「final check」未定論" in markdown
    check_report(markdown, report_json(partial))


def test_without_a_summary_the_monitoring_falls_back_to_the_last_sample() -> None:
    data = FIXTURES["canary_rolled_back"]()
    state = {k: v for k, v in data.release["state"].items() if k != "summary"}
    release = {**data.release, "state": state}
    bare = ReportInput(**{**data.__dict__, "release": release})
    monitoring = report_json(bare)["sections"]["monitoring"]
    assert monitoring["error_rate"]["source"] == "samples"
    # last sample: 5 errors of 1010 + 41 requests
    assert monitoring["error_rate"]["requests"] == 1051
    assert monitoring["error_rate"]["percent"] == 0.476
    assert monitoring["availability"] == {
        "measured": False,
        "reason": "no_unserved_counts",
        "limit_percent": 99.0,
    }
    markdown = render_markdown(bare, chart_name=None)
    assert "- 錯誤率: 0.476% (5 個 5xx / 1051 個請求, 取自最後一次取樣" in markdown
    check_report(markdown, report_json(bare))


def test_a_manual_flip_back_is_a_rollback_with_its_timing() -> None:
    data = FIXTURES["initial_up"]()
    events = [
        *data.events,
        {
            "id": 10,
            "ts": "2024-05-01T12:00:01Z",
            "kind": "release.restored",
            "message": "traffic back on revision 1 in 0.8 ms (alice)",
            "data": {"rollback_s": 0.0008},
        },
    ]
    flip = ReportInput(
        **{
            **data.__dict__,
            "operation": "rollback",
            "events": events,
            "release": {**data.release, "reason": "restored by alice (instant rollback)"},
        }
    )
    sections = report_json(flip)["sections"]
    assert sections["deployment_summary"]["deployment_type"]["type"] == "Rollback"
    incident = sections["events"]["incident_response"]
    assert incident["kind"] == "manual_rollback"
    assert incident["rollback_ms"] == 0.8
    markdown = render_markdown(flip, chart_name=None)
    assert "- 部署類型: Rollback (回滾至 revision 1 (v0.1.0))" in markdown
    assert "流量在 0.8 ms 內切回 revision 1 (v0.1.0), 符合回滾目標 < 30 s" in markdown
    check_report(markdown, report_json(flip))


def test_limits_come_from_the_analysis_when_it_ran() -> None:
    figures = report_json(FIXTURES["canary_rolled_back"]())["sections"]
    assert figures["infrastructure"]["health_score"]["limits_source"] == "analysis"
    up = report_json(FIXTURES["initial_up"]())["sections"]
    assert up["infrastructure"]["health_score"]["limits_source"] == "defaults"
    assert up["monitoring"]["error_rate"]["limit_percent"] == 5.0


def test_a_bare_release_still_renders_a_complete_report() -> None:
    """Only what the brief promises is always there: a revision and a service."""
    bare = ReportInput(
        service="api",
        operation="backup",
        generated_at=FIXTURES["initial_up"]().generated_at,
        release={"revision": 4},
        previous=None,
        events=[],
        prechecks=[],
        postchecks=[],
        instances=[],
        alerts=[],
        replicas=0,
    )
    for lang in ("zh-TW", "en"):
        markdown = render_markdown(bare, lang=lang, chart_name=None)
        check_report(markdown, report_json(bare))
    assert "- 部署類型: Backup (操作 backup)" in render_markdown(bare, chart_name=None)


def test_a_window_without_requests_says_so_instead_of_dividing_by_zero() -> None:
    data = FIXTURES["canary_succeeded"]()
    empty = {
        "requests": 0,
        "errors_5xx": 0,
        "responses_4xx": 0,
        "error_rate": None,
        "availability": None,
        "connect_errors": 0,
        "timeouts": 0,
        "rps": 0.0,
        "latency_avg_s": None,
        "latency_p50_s": None,
        "latency_p90_s": None,
        "latency_p95_s": None,
        "latency_p99_s": None,
    }
    quiet = with_release_state(
        data, summary={"seconds": 30.0, "total": empty, "versions": {"2": empty, "3": empty}}
    )
    markdown = render_markdown(quiet, chart_name=None)
    assert "- 服務可用性: 未測量: 期間沒有任何請求" in markdown
    assert "- 回應時間: 未測量: 期間沒有任何請求" in markdown
    check_report(markdown, report_json(quiet))


def test_a_rollout_still_in_progress_is_reported_as_such() -> None:
    data = FIXTURES["canary_succeeded"]()
    state = {k: v for k, v in data.release["state"].items() if k not in ("finished", "duration_s")}
    release = {
        **data.release,
        "status": "paused",
        "finished_at": None,
        "state": state,
        "reason": "canary analysis 2 inconclusive after 600s",
    }
    running = ReportInput(**{**data.__dict__, "release": release})
    markdown = render_markdown(running, chart_name=None)
    assert "- 部署狀態: 進行中 (paused): canary analysis 2 inconclusive after 600s" in markdown
    assert "- 部署時間: 進行中: 已 34.8 s (0:00:34), 自 2024-05-01T12:00:00Z 起" in markdown
    check_report(markdown, report_json(running))
