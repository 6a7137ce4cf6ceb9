"""``zerodown validate`` and ``zerodown init`` through the real command line."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.zerodown import Env

SPEC_WITH_BAD_LINE_12 = """\
# a realistic spec whose line 12 holds a wrong type
service: web
platform: local
run:
  command: python app.py
  workdir: .
env:
  GREETING: hello
healthCheck:
  http: {path: /healthz}
  interval: 2s
replicas: three
traffic:
  listen: 127.0.0.1:8080
"""


def test_wrong_type_at_line_12_is_one_line_naming_file_line_and_field(
    zd_env: Env, tmp_path: Path
) -> None:
    spec = tmp_path / "zerodown.yaml"
    spec.write_text(SPEC_WITH_BAD_LINE_12)
    assert SPEC_WITH_BAD_LINE_12.splitlines()[11].startswith("replicas:")
    result = zd_env.cli("validate", str(spec))
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{spec}:12" in lines[0]
    assert "replicas" in lines[0]
    assert "Traceback" not in result.stderr


def test_validate_json_lists_problems(zd_env: Env, tmp_path: Path) -> None:
    spec = tmp_path / "zerodown.yaml"
    spec.write_text(SPEC_WITH_BAD_LINE_12.replace("platform: local", "platfrom: local"))
    result = zd_env.cli("validate", str(spec), "--json")
    assert result.code == 2
    error = result.json()["error"]
    assert error["code"] == "invalid_spec"
    fields = {p["field"] for p in error["problems"]}
    assert "replicas" in fields
    assert any("platform" in (p["hint"] or "") for p in error["problems"])


def test_missing_file_is_bad_input(zd_env: Env, tmp_path: Path) -> None:
    result = zd_env.cli("validate", str(tmp_path / "nope.yaml"))
    assert result.code == 2
    assert "nope.yaml" in result.stderr


def test_init_writes_a_spec_that_validates_and_refuses_to_overwrite(
    zd_env: Env, tmp_path: Path
) -> None:
    spec = tmp_path / "zerodown.yaml"
    assert zd_env.cli("init", str(spec), "--service", "shop").code == 0
    assert "service: shop" in spec.read_text()
    checked = zd_env.cli("validate", str(spec), "--json")
    assert checked.code == 0, checked.stderr
    assert checked.json()["service"] == "shop"
    again = zd_env.cli("init", str(spec))
    assert again.code == 2 and "--force" in again.stderr
