"""The Markdown report: the template's structure filled with measured values, in both languages."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.unit.report.checks import check_report, field_blocks, template_for
from tests.unit.report.fixtures import FIXTURES
from zerodown.report import ReportInput, render_markdown, report_json
from zerodown.report.figures import FIELD_PATHS

ALL = pytest.mark.parametrize("build", FIXTURES.values(), ids=FIXTURES.keys())
LANGS = pytest.mark.parametrize("lang", ["zh-TW", "en"])


def fields(markdown: str, lang: str = "zh-TW") -> dict[str, str]:
    """The value (with nested lines) of each field, by the last key of its JSON path."""
    blocks = field_blocks(markdown, template_for(lang))
    return {path[-1]: text for (_, text), path in zip(blocks, FIELD_PATHS, strict=True)}


def shape(line: str) -> tuple[int, str]:
    stripped = line.lstrip(" ")
    marker = re.match(r"(#+ |- \[ \] |- |\d+\. |!\[|)", stripped)
    assert marker is not None
    return len(line) - len(stripped), marker.group(1)


@ALL
@LANGS
def test_every_heading_and_label_of_the_template_is_present_in_order(
    build: Callable[[], ReportInput], lang: str
) -> None:
    markdown = render_markdown(build(), lang=lang, chart_name="chart.svg")
    blocks = field_blocks(markdown, template_for(lang))
    assert len(blocks) == len(FIELD_PATHS)
    assert all(text.strip() for _, text in blocks), "a field was left empty"


@ALL
@LANGS
def test_no_placeholder_remains(build: Callable[[], ReportInput], lang: str) -> None:
    markdown = render_markdown(build(), lang=lang, chart_name="chart.svg")
    assert not re.findall(r"(?<!\\)\{[^{}\n]*\}", markdown)


@ALL
def test_english_has_the_same_structure_as_chinese(build: Callable[[], ReportInput]) -> None:
    data = build()
    chinese = render_markdown(data, lang="zh-TW", chart_name="chart.svg").split("\n")
    english = render_markdown(data, lang="en", chart_name="chart.svg").split("\n")
    assert [shape(line) for line in english] == [shape(line) for line in chinese]
    # Same figures too: the same numbers appear in the same order on each line, apart from
    # sentences that spell a number differently in each language.
    assert len(english) == len(chinese)


@ALL
def test_the_template_checklist_items_stay_verbatim(build: Callable[[], ReportInput]) -> None:
    markdown = render_markdown(build(), chart_name=None)
    assert (
        "### Next Actions\n- [ ] 監控關鍵指標\n- [ ] 執行效能優化\n- [ ] 更新運維文檔\n"
        "- [ ] 規劃下次部署\n"
    ) in markdown


def test_the_chart_is_linked_only_when_named() -> None:
    data = FIXTURES["canary_succeeded"]()
    assert "](deployment-x.svg)" in render_markdown(data, chart_name="deployment-x.svg")
    assert "![" not in render_markdown(data, chart_name=None)


def test_a_succeeded_canary_reads_as_a_success_with_its_stages_and_figures() -> None:
    data = FIXTURES["canary_succeeded"]()
    f = fields(render_markdown(data, chart_name=None))
    figures = report_json(data)["sections"]
    assert f["deployment_type"].startswith("Canary (段式流量切換: 新版本流量 5% → 25% → 50% → 100%")
    assert f["deployment_status"].startswith("成功: all steps done")
    assert f["deployment_time"].startswith(
        "33.8 s (0:00:33), 2024-05-01T12:00:00Z → 2024-05-01T12:00:33Z"
    )
    assert "7120 個請求, 其中 1890 個 (26.545%) 送達新版本" in f["impact"]
    score = figures["infrastructure"]["health_score"]["score"]
    assert f["health_score"].startswith(f"{score}/100")
    assert f["availability"].startswith("100% (7120 個請求中 0 個未能服務")
    assert f["response_time"].startswith("平均 10.85 ms / p95 24.1 ms / p99 38.56 ms")
    assert f["error_rate"].startswith("0.098% (7 個 5xx / 7120 個請求")
    assert f["throughput"].startswith("210.7 rps")
    assert f["alerts"].startswith("0 ")
    assert f["incident_response"].startswith("無事故")
    assert f["urgent_actions"].startswith("無")
    assert "另有 3 次未定論的中間判定未列出" in f["deployment_execution"]


def test_a_rolled_back_canary_says_why_and_how_fast() -> None:
    f = fields(render_markdown(FIXTURES["canary_rolled_back"](), chart_name=None))
    assert f["deployment_status"].startswith(
        "失敗 — 已自動回滾: canary analysis 1 failed: error rate 12.5 % > 5 %"
    )
    assert "0 個實例被替換 (新啟動 2 個, 停止 2 個新實例)" in f["impact"]
    assert (
        "流量在 36 ms 內切回 revision 3 (v1.5.0), 路由套用 0.41 ms, 符合回滾目標 < 30 s"
        in (f["incident_response"])
    )
    assert f["health_checks"].startswith("revision 4: 新版本實例已全部停止; 事件: 2 次轉為健康")
    assert "回滾驗證: 2/2 instances of revision 3 healthy" in f["health_checks"]
    assert (
        "回滾由分析觸發: error_rate: error rate 12.5 % > 5 % (5 of 40 requests)"
        in (f["lessons_learned"])
    )
    assert "當時新版本流量 5%" in f["lessons_learned"]
    assert f["alerts"].startswith("1\n")
    assert (
        "HighErrorRate [critical] +8 s: checkout revision 4 error rate 12.5 % over 5 %"
        in (f["alerts"])
    )
    assert "修正 revision 4 (v1.6.0) 的問題後再部署" in f["urgent_actions"]
    assert "新版本錯誤率 ≥ 1% → 應用程式錯誤: 12.195% (觸發)" in f["bottlenecks"]


def test_a_blue_green_rollback_shows_switch_and_rollback_timings() -> None:
    f = fields(render_markdown(FIXTURES["bluegreen_rolled_back"](), chart_name=None))
    assert f["deployment_type"].startswith("Blue-Green (完整環境切換: 3 個新實例就緒")
    assert f["deployment_execution"].startswith(
        "10 個步驟; 切換 0.9 ms; 切換路由套用 0.9 ms; 回滾 36 ms; 回滾路由套用 0.4 ms"
    )
    assert "新版本變慢: 3.25× (130 ms / 40 ms) (觸發)" in f["bottlenecks"]
    assert "p95 新版本 130 ms / 前一版本 40 ms = 3.25 倍 (上限 2 倍)" in f["health_score"]
    assert "於 +15 s 開始回滾" in f["incident_response"]


def test_a_rolling_update_with_a_restart_is_a_partial_success() -> None:
    f = fields(render_markdown(FIXTURES["rolling_with_restart"](), chart_name=None))
    assert f["deployment_status"] == "部分成功 (已完成, 但 新版本實例重啟 1 次, 崩潰 1 次)"
    assert f["deployment_type"].startswith("Rolling (循序實例更新: 逐批替換 3 個實例")
    assert (
        "+6 s `instance.crashed`: worker-api-r5-1-a1b2c3 exited with code 137"
        in (f["health_checks"])
    )
    assert "實例重啟或崩潰 > 0 → 不穩定: 1 (觸發)" in f["bottlenecks"]


def test_an_up_without_samples_says_what_was_not_measured_and_why() -> None:
    f = fields(render_markdown(FIXTURES["initial_up"](), chart_name=None))
    assert f["deployment_type"].startswith("Initial (首次部署")
    assert f["pre_deployment_checks"] == "未設定部署前檢查 (no pre-deployment checks configured)"
    assert f["cpu"].startswith("未測量: 本次操作沒有流量與資源取樣 (沒有 rollout.sample 事件)")
    assert "實例 web-r1-0-a1b2c3 (revision 1) 目前 3.2% (單核的百分比)" in f["cpu"]
    assert f["network"].startswith("未測量: ")
    assert f["availability"].startswith("未測量: 沒有流量統計")
    assert f["alerts"].startswith("0 ")
    assert "p95 延遲: 未計入: 沒有前一版本可比較" in f["health_score"]


def test_an_aborted_rollout_is_a_manual_rollback() -> None:
    f = fields(render_markdown(FIXTURES["canary_aborted"](), chart_name=None))
    assert f["deployment_status"] == "失敗 — 已中止並回滾: aborted by alice"
    assert f["incident_response"].startswith("手動中止並回滾: aborted by alice")
    assert "流量在 200 ms 內切回 revision 8 (v4.0.3), 符合回滾目標 < 30 s" in f["incident_response"]
    assert "revision 9 (v4.1.0) 被中止並回滾" in f["urgent_actions"]
    assert "revision 8 只有 1/2 個實例健康" in f["urgent_actions"]


def test_english_labels_and_sentences() -> None:
    markdown = render_markdown(FIXTURES["canary_rolled_back"](), lang="en", chart_name=None)
    f = fields(markdown, "en")
    assert "### Deployment Summary\n- Deployment type: Canary" in markdown
    assert f["deployment_status"].startswith("Failed — automatically rolled back: ")
    assert "- [ ] Monitor key metrics\n" in markdown
    assert not re.search(r"[\u4e00-\u9fff]", markdown), "Chinese text in the English report"


def test_text_from_records_cannot_break_the_layout() -> None:
    data = FIXTURES["initial_up"]()
    events = [*data.events]
    events.append(
        {
            "id": 99,
            "ts": "2024-05-01T12:00:01Z",
            "kind": "reconcile.error",
            "message": "config {port}\n### injected heading",
            "data": {},
        }
    )
    markdown = render_markdown(ReportInput(**{**data.__dict__, "events": events}), chart_name=None)
    assert "\n### injected" not in markdown
    assert "config \\{port\\} ### injected heading" in markdown


@ALL
@LANGS
def test_numbers_in_the_markdown_are_those_of_the_json(
    build: Callable[[], ReportInput], lang: str
) -> None:
    data = build()
    check_report(render_markdown(data, lang=lang, chart_name=None), report_json(data))


def test_the_number_check_catches_a_figure_the_json_does_not_have() -> None:
    data = FIXTURES["canary_succeeded"]()
    markdown = render_markdown(data, chart_name=None)
    tampered = markdown.replace("210.7 rps (7120", "211.7 rps (7120")
    with pytest.raises(AssertionError, match=r"吞吐量.*211.7"):
        check_report(tampered, report_json(data))


def test_the_structure_check_catches_a_missing_or_moved_label() -> None:
    data = FIXTURES["canary_succeeded"]()
    markdown = render_markdown(data, chart_name=None)
    with pytest.raises(AssertionError, match="錯誤率"):
        check_report(markdown.replace("- 錯誤率: ", "- 錯誤比例: "), report_json(data))
    lines = markdown.split("\n")
    moved = "\n".join([lines[0], *lines[3:7], lines[2], *lines[7:]])
    with pytest.raises(AssertionError, match="missing or out of order"):
        check_report(moved, report_json(data))


def test_the_placeholder_check_catches_a_template_leftover() -> None:
    data = FIXTURES["canary_succeeded"]()
    markdown = render_markdown(data, chart_name=None)
    with pytest.raises(AssertionError, match="placeholders"):
        check_report(
            markdown.replace("- 故障處理: ", "- 故障處理: {incident response} "), report_json(data)
        )
