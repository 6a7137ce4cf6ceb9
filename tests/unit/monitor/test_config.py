"""The ``monitor:`` section of a spec, and the files it names, checked with their lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from zerodown.core.errors import InputError, SpecError
from zerodown.monitor.config import check_monitor_files, service_config
from zerodown.ops.routing import WebhookConfig
from zerodown.spec import parse_spec

BASE = "service: web\nrun: {command: python app.py}\n"


def test_defaults_sample_every_15s_and_keep_6h_raw_and_7d_of_minutes(tmp_path: Path) -> None:
    spec = parse_spec(BASE, filename="zerodown.yaml").spec
    assert (spec.monitor.interval, spec.monitor.raw_retention, spec.monitor.retention) == (
        15.0,
        6 * 3600.0,
        7 * 86400.0,
    )
    config = service_config(spec, tmp_path)
    assert [g.name for g in config.groups] == ["zerodown"]
    assert config.routing.route.group_by == ("alertname", "service")


def test_bad_values_are_reported_with_their_lines() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(
            BASE + "monitor:\n  interval: 200ms\n  rawRetention: 2d\n  retention: 1d\n",
            filename="zerodown.yaml",
        )
    rendered = [p.render() for p in caught.value.problems]
    assert rendered[0].startswith("zerodown.yaml:4: monitor.interval: expected an interval of")
    assert rendered[1].startswith(
        "zerodown.yaml:6: monitor.retention: expected a retention of at least rawRetention (48h)"
    )


def test_without_an_alertmanager_file_alerts_go_to_the_notify_webhooks(tmp_path: Path) -> None:
    spec = parse_spec(
        BASE + "notify:\n  webhooks: [http://127.0.0.1:9000/a, http://127.0.0.1:9000/a]\n",
        filename="zerodown.yaml",
    ).spec
    config = service_config(spec, tmp_path)
    receiver = config.routing.receivers[config.routing.route.receiver]
    assert receiver.integrations == (WebhookConfig("http://127.0.0.1:9000/a"),)


def test_a_rule_file_with_problems_is_refused_with_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "groups:\n  - name: web\n    rules:\n      - alert: A\n        expr: rate(x[5m]\n"
    )
    spec = parse_spec(
        BASE + "monitor:\n  rules: [rules.yaml]\n", filename=str(tmp_path / "zerodown.yaml")
    ).spec
    with pytest.raises(SpecError) as caught:
        check_monitor_files(spec, tmp_path)
    [problem] = caught.value.problems
    assert problem.file.endswith("rules.yaml") and problem.line == 5
    assert problem.path == "groups[0].rules[0].expr"


def test_missing_files_and_a_group_name_used_twice_are_refused(tmp_path: Path) -> None:
    spec = parse_spec(
        BASE + "monitor:\n  alertmanager: am.yml\n", filename=str(tmp_path / "zerodown.yaml")
    ).spec
    with pytest.raises(InputError, match=r"monitor.alertmanager: file not found: .*am.yml"):
        check_monitor_files(spec, tmp_path)
    (tmp_path / "mine.yaml").write_text(
        "groups:\n  - name: zerodown\n    rules:\n      - alert: A\n        expr: up == 0\n"
    )
    spec = parse_spec(
        BASE + "monitor:\n  rules: [mine.yaml]\n", filename=str(tmp_path / "zerodown.yaml")
    ).spec
    with pytest.raises(InputError, match="rule group 'zerodown' is also defined in the default"):
        check_monitor_files(spec, tmp_path)


def test_the_fingerprint_changes_with_a_file_s_content(tmp_path: Path) -> None:
    rule = "groups:\n  - name: web\n    rules:\n      - alert: A\n        expr: up == {n}\n"
    (tmp_path / "rules.yaml").write_text(rule.format(n=0))
    spec = parse_spec(
        BASE + "monitor:\n  rules: [rules.yaml]\n", filename=str(tmp_path / "zerodown.yaml")
    ).spec
    before = service_config(spec, tmp_path).fingerprint
    assert service_config(spec, tmp_path).fingerprint == before
    (tmp_path / "rules.yaml").write_text(rule.format(n=1))
    assert service_config(spec, tmp_path).fingerprint != before


def test_a_rule_reading_further_back_than_the_monitor_keeps_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "groups:\n  - name: slow\n    rules:\n"
        "      - alert: Ok\n        expr: rate(x[1h] offset 5h) > 0\n"
        "      - alert: WeeklyTrend\n        expr: sum(rate(x[7d])) > 1\n"
    )
    spec = parse_spec(
        BASE + "monitor:\n  rules: [rules.yaml]\n", filename=str(tmp_path / "zerodown.yaml")
    ).spec
    with pytest.raises(InputError) as caught:
        check_monitor_files(spec, tmp_path)
    assert caught.value.message == (
        f"{tmp_path / 'rules.yaml'}: rule 'WeeklyTrend' (group 'slow') reads 168 h back, more "
        "than the 6 h of samples the monitor keeps for rules; shorten its range or offset"
    )
