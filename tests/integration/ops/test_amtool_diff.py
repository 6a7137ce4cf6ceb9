"""Differential test: zerodown's routing tree against Alertmanager's, via ``amtool``.

One configuration with nested routes, ``continue``, new-style and legacy matchers, regexes and
negative matchers; for each label set, the receivers ``amtool config routes test`` picks must be
exactly (and in the same order as) the ones ``routing.receivers_for`` picks. amtool comes with
the Debian package ``prometheus-alertmanager``; locally a missing amtool skips, in CI it fails.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_component
from zerodown.ops.routing import parse_config, receivers_for

pytestmark = pytest.mark.integration

CONFIG = """
route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: ['service=~"web|api"']
      receiver: web
      continue: true
      routes:
        - match: {severity: critical}
          receiver: web-pager
        - matchers: ['env!="prod"', "team=~'.+'"]
          receiver: web-dev
          continue: true
        - matchers: ['env!~"prod|staging"']
          receiver: web-sandbox
    - match_re: {service: "api.*"}
      receiver: api
      routes:
        - matchers: ['{severity="warning", region=~"eu-.*"}']
          receiver: api-eu-warn
    - matchers: [team="db", 'severity!="info"']
      receiver: db
      continue: true
    - matchers: ['alertname=~"Disk.*"']
      receiver: storage
      routes:
        - matchers: [team=db]
          receiver: storage-db
    - matchers: ['instance=""']
      receiver: no-instance
receivers:
  - name: default
  - name: web
  - name: web-pager
  - name: web-dev
  - name: web-sandbox
  - name: api
  - name: api-eu-warn
  - name: db
  - name: storage
  - name: storage-db
  - name: no-instance
"""

LABEL_SETS = [
    {"service": "web", "instance": "a"},
    {"service": "web", "severity": "critical", "instance": "a"},
    {"service": "web", "env": "dev", "team": "x", "instance": "a"},
    {"service": "web", "env": "prod", "team": "x", "instance": "a"},
    {"service": "web", "env": "staging", "instance": "a"},
    {"service": "api", "severity": "warning", "region": "eu-west", "instance": "a"},
    {"service": "api-v2", "severity": "warning", "region": "eu-west", "instance": "a"},
    {"service": "api-v2", "severity": "warning", "region": "us", "instance": "a"},
    {"team": "db", "alertname": "DiskFull", "instance": "a"},
    {"team": "db", "severity": "info", "alertname": "DiskFull", "instance": "a"},
    {"alertname": "DiskFull", "instance": "a"},
    {"alertname": "Other"},
    {"alertname": "Other", "instance": "a"},
    {"service": "webx", "instance": "a"},
]


@pytest.fixture(scope="module")
def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        require_component("amtool", "install the Debian package 'prometheus-alertmanager'")
    assert path is not None
    return path


def _amtool_receivers(amtool: str, config: Path, labels: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}"]
        + [f"{name}={value}" for name, value in labels.items()],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().split(",")


def test_zerodown_routes_like_amtool(amtool: str, tmp_path: Path) -> None:
    """For every label set, the same receivers in the same order."""
    path = tmp_path / "alertmanager.yml"
    path.write_text(CONFIG)
    config = parse_config(CONFIG)
    differences = []
    for labels in LABEL_SETS:
        expected = _amtool_receivers(amtool, path, labels)
        got = receivers_for(config, labels)
        if got != expected:
            differences.append(f"{labels}: amtool {expected}, zerodown {got}")
    assert not differences, "\n".join(differences)
    assert len({tuple(receivers_for(config, labels)) for labels in LABEL_SETS}) >= 8


def test_amtool_accepts_the_configuration(amtool: str, tmp_path: Path) -> None:
    """What zerodown accepts here is a valid Alertmanager configuration too."""
    path = tmp_path / "alertmanager.yml"
    path.write_text(CONFIG)
    result = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
