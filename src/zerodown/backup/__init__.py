"""Backups with verified restores, retention and disaster-recovery drills.

The public API of backups, for the service layer, the scheduler, retention and drills::

    from zerodown.backup import Backups, resolve_settings

    settings = resolve_settings(spec, spec_dir=spec_dir, state_dir=state_dir)
    backups = Backups(store)                       # the store is the catalogue
    record = backups.take(settings, "db", reason="manual")
    record, report = backups.verify(settings, record.id)     # report.ok / report.status
    restored = backups.restore(settings, record.id)          # a new name; force=True replaces
    backups.remove(settings, record.id, reason="retention")  # artifacts gone, row "pruned"

- ``BackupSettings`` is a service's ``backups:`` section with absolute paths; ``.target(name)``
  builds the ``BackupTarget`` of one target, ``.retention(name)`` gives its rules.
- ``BackupTarget`` is the Protocol every kind implements (``files`` through restic,
  ``sqlite``, ``postgresql``, ``docker-volume``); ``VerifyReport`` and ``RestoreReport`` are
  what they return.
- The catalogue (``BackupRecord``, ``BackupStatus``, ``BackupArtifact``, the
  ``BackupCatalogue`` Protocol) lives in ``zerodown.store.backups`` and is re-exported here.
- ``BackupScheduler`` runs due backups inside ``zerodown serve`` and publishes their metrics.
"""

from __future__ import annotations

from zerodown.backup.base import ArtifactCheck, BackupTarget, RestoreReport, VerifyReport
from zerodown.backup.digests import TreeManifest, sha256_file, tree_manifest
from zerodown.backup.runner import Backups, ServingRelease, catalogue_of, process_owner
from zerodown.backup.scheduler import BackupScheduler, next_due, target_max_age
from zerodown.backup.settings import BackupSettings, PasswordSource, resolve_settings
from zerodown.store.backups import BackupArtifact, BackupCatalogue, BackupRecord, BackupStatus

__all__ = [
    "ArtifactCheck",
    "BackupArtifact",
    "BackupCatalogue",
    "BackupRecord",
    "BackupScheduler",
    "BackupSettings",
    "BackupStatus",
    "BackupTarget",
    "Backups",
    "PasswordSource",
    "RestoreReport",
    "ServingRelease",
    "TreeManifest",
    "VerifyReport",
    "catalogue_of",
    "next_due",
    "process_owner",
    "resolve_settings",
    "sha256_file",
    "target_max_age",
    "tree_manifest",
]
