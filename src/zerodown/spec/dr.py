"""The ``dr:`` section: disaster-recovery objectives, contacts, and how a drill runs.

::

    dr:
      rpo: 1h                 # the most data the service may lose
      rto: 5m                 # the longest it may be down
      contacts:
        - {name: Ada Lovelace, role: incident commander, reach: "+1 555 0100"}
      restoreOrder: [db, uploads]
      drill:
        restoreEnv: {db: NOTES_DB}   # the variable through which the service finds each target
        timeout: 2m

The RPO is met when the data a restore brings back is at most ``rpo`` old (the age of the
newest good backup); the RTO when the service, restored from scratch, passes its smoke tests
within ``rto`` of the start of the recovery. ``zerodown dr drill`` measures both.

A drill starts the service's ``run.command`` with the spec's ``env``, plus, for each backup
target, the variable named in ``restoreEnv`` set to where that target was restored (a path for
``sqlite`` and ``files`` targets). The service must read its data location from those
variables: that is what lets the drill run it against the restored copy and never the live data.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from zerodown.spec.durations import PositiveDuration
from zerodown.spec.fields import EnvKey, NonEmptyStr, SpecModel

__all__ = ["DEFAULT_DRILL_TIMEOUT_SECONDS", "DrContactSpec", "DrDrillSpec", "DrSpec"]

DEFAULT_DRILL_TIMEOUT_SECONDS = 300.0
"""How long a drill waits for the restored service to pass its smoke tests, by default."""


def _null_is_default(data: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(data, dict) and any(data.get(key, 0) is None for key in keys):
        return {key: value for key, value in data.items() if not (key in keys and value is None)}
    return data


class DrContactSpec(SpecModel):
    """Someone to call when the service must be recovered."""

    name: NonEmptyStr
    role: NonEmptyStr | None = None
    """What they do in a recovery: incident commander, database owner, vendor support ..."""
    reach: NonEmptyStr | None = None
    """How to reach them: phone, pager, e-mail, chat channel."""


class DrDrillSpec(SpecModel):
    """How ``zerodown dr drill`` runs the service against its restored data."""

    restore_env: dict[NonEmptyStr, EnvKey] = Field(default_factory=dict)
    """Backup target -> the environment variable that receives where it was restored."""
    timeout: PositiveDuration = DEFAULT_DRILL_TIMEOUT_SECONDS
    """Longest wait for the restored service to pass its smoke tests."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _null_is_default(data, ("restoreEnv",))


class DrSpec(SpecModel):
    """Recovery objectives, the people to call, and the order data comes back in."""

    rpo: PositiveDuration | None = None
    """Recovery point objective: the most data (as time) the service may lose."""
    rto: PositiveDuration | None = None
    """Recovery time objective: the longest the service may take to be back."""
    contacts: tuple[DrContactSpec, ...] = ()
    restore_order: tuple[NonEmptyStr, ...] = ()
    """Backup targets, first restored first; targets left out follow in the spec's order."""
    drill: DrDrillSpec = Field(default_factory=DrDrillSpec)

    @model_validator(mode="before")
    @classmethod
    def _null_is_none(cls, data: Any) -> Any:
        return _null_is_default(data, ("contacts", "restoreOrder", "drill"))

    @property
    def configured(self) -> bool:
        """True when the spec says anything about recovery."""
        return self != DrSpec()
