"""The ``backups:`` section: targets of four kinds, cron schedules, one password source, and
every mistake reported with its line and field."""

from __future__ import annotations

import pytest

from zerodown.core.errors import SpecError
from zerodown.spec import parse_spec

HEAD = "service: web\nrun: {command: 'python -m http.server'}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(HEAD + text, filename="zerodown.yaml")
    return [p.render() for p in caught.value.problems]


def test_a_full_section_parses() -> None:
    spec = parse_spec(
        HEAD
        + """backups:
  repository: /var/backups/web
  passwordEnv: WEB_BACKUP_PASSWORD
  retention: {keepLast: 3}
  targets:
    - name: uploads
      kind: files
      path: ./uploads
      exclude: ['*.tmp']
      schedule: "0  3 * * *"
      beforeDeploy: true
    - {name: db, kind: sqlite, path: ./app.db, maxAge: 2h}
    - {name: pg, kind: postgresql, url: "postgresql://app@127.0.0.1/app", schedule: "*/15 * * * *"}
    - {name: vol, kind: docker-volume, volume: web-data}
""",
        filename="zerodown.yaml",
    ).spec
    backups = spec.backups
    assert backups.password_env == "WEB_BACKUP_PASSWORD" and backups.password_file is None
    uploads, db, pg, vol = backups.targets
    assert uploads.schedule == "0 3 * * *" and uploads.before_deploy
    assert uploads.exclude == ("*.tmp",)
    assert db.max_age == 7200.0 and not db.before_deploy and db.schedule is None
    assert pg.url == "postgresql://app@127.0.0.1/app"
    assert vol.volume == "web-data"
    assert backups.target("db") is db and backups.target("nope") is None
    assert backups.retention_for(db).keep_last == 3


def test_no_section_means_no_targets() -> None:
    spec = parse_spec(HEAD, filename="zerodown.yaml").spec
    assert spec.backups.targets == () and spec.backups.repository is None
    assert parse_spec(HEAD + "backups:\n", filename="zerodown.yaml").spec.backups == spec.backups


def test_each_kind_needs_its_own_location_key() -> None:
    found = problems(
        """backups:
  passwordFile: key
  targets:
    - {name: a, kind: files}
    - {name: b, kind: postgresql, path: ./x}
    - {name: c, kind: sqlite, path: ./c.db, url: "postgresql://x/y"}
"""
    )
    assert found == [
        "zerodown.yaml:6: backups.targets[0].path: missing required key 'path': a files target "
        "says where its data is",
        "zerodown.yaml:7: backups.targets[1].url: missing required key 'url': a postgresql "
        "target says where its data is",
        "zerodown.yaml:7: backups.targets[1].path: 'path' does not apply to a postgresql target "
        "(it reads 'url')",
        "zerodown.yaml:8: backups.targets[2].url: 'url' does not apply to a sqlite target "
        "(it reads 'path')",
    ]


def test_schedules_names_and_passwords_are_checked() -> None:
    found = problems(
        """backups:
  passwordFile: key
  passwordEnv: KEY
  targets:
    - {name: Files, kind: files, path: ., schedule: "every day"}
    - {name: db, kind: sqlite, path: ./a.db, schedule: "0 3 * * * *"}
    - {name: db, kind: postgresql, url: "mysql://x/y"}
    - {name: e, kind: sqlite, path: ./e.db, exclude: [x], maxAge: soon}
"""
    )
    text = "\n".join(found)
    assert "backups.passwordEnv: expected either passwordFile or passwordEnv" in text
    assert "targets[0].name: expected a target name of lowercase letters" in text
    assert "targets[0].schedule: expected a cron expression of five fields" in text
    assert "targets[1].schedule: expected a cron expression" in text
    assert "targets[2].name: expected a name no other backup target has" in text
    assert "targets[2].url: expected a postgresql:// URL" in text
    assert "targets[3].exclude: 'exclude' applies to files targets, not to sqlite" in text
    assert "targets[3].maxAge: expected a duration" in text


def test_a_files_target_needs_a_password() -> None:
    found = problems("backups:\n  targets:\n    - {name: up, kind: files, path: ./up}\n")
    assert len(found) == 1
    assert "backups.targets[0].kind: a files target is kept in an encrypted restic" in found[0]
    assert "passwordFile or backups.passwordEnv" in found[0]
    # A database target needs none: its dump is not encrypted by restic.
    parse_spec(
        HEAD + "backups:\n  targets:\n    - {name: db, kind: sqlite, path: ./a.db}\n",
        filename="zerodown.yaml",
    )
