"""The rules of an incident's life: its severities, its stages and how it may move between them.

**Stages** follow the seed's incident response (檢測 detect, 評估 assess, 回應 respond,
復原 recover, 學習 learn)::

    detected -> assessed -> mitigated -> recovered -> reviewed

An incident only moves forward. It may skip stages (an automatic rollback is mitigated and
recovered before anybody assesses it); a skipped stage stays empty, it is never filled in
backwards. Each move is stamped with a time that is not earlier than any stage already reached,
and with who or what made it. ``reviewed`` needs ``recovered``: a postmortem is written about
an incident that is over.

**Severities** run from SEV1 (worst) to SEV5; see ``SEVERITY_MEANINGS``. An automatic rollback
opens a SEV3 unless the spec's ``incidents.rollbackSeverity`` says otherwise. An alert's
``severity`` label maps through ``ALERT_SEVERITIES``: ``critical``/``page`` -> SEV2,
``error``/``high``/``major`` -> SEV3, ``warning``/``medium``/``minor`` -> SEV4,
``info``/``low``/``none`` -> SEV5; a label that already names a level (``sev1``, ``SEV2``,
``p3``) is taken as it is; anything else is SEV3. SEV1 comes only from a person or from a rule
that says so (``severity: sev1``): a ``critical`` alert alone does not say the whole service is
down.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from zerodown.core.errors import InputError
from zerodown.store.incidents import OPEN_STAGES, STAGES, IncidentRecord

__all__ = [
    "ALERT_SEVERITIES",
    "DEFAULT_ALERT_SEVERITY",
    "DEFAULT_ROLLBACK_SEVERITY",
    "OPEN_STAGES",
    "SEVERITIES",
    "SEVERITY_MEANINGS",
    "STAGES",
    "STAGE_SEED_WORDS",
    "check_move",
    "parse_severity",
    "severity_from_label",
    "stage_index",
]

SEVERITIES: Final = ("SEV1", "SEV2", "SEV3", "SEV4", "SEV5")

SEVERITY_MEANINGS: Final = {
    "SEV1": "critical: the service is down or losing data for most users",
    "SEV2": "major: many users see errors or slowness, as a critical alert says",
    "SEV3": "minor: some users affected and the harm contained, as by an automatic rollback",
    "SEV4": "low: little or no user impact, as a warning says",
    "SEV5": "informational: nothing users would notice",
}

ALERT_SEVERITIES: Final = {
    "critical": "SEV2",
    "page": "SEV2",
    "error": "SEV3",
    "high": "SEV3",
    "major": "SEV3",
    "warning": "SEV4",
    "warn": "SEV4",
    "medium": "SEV4",
    "minor": "SEV4",
    "info": "SEV5",
    "low": "SEV5",
    "none": "SEV5",
}
"""An alert's ``severity`` label (lowercased) -> the incident's severity."""

DEFAULT_ALERT_SEVERITY: Final = "SEV3"
DEFAULT_ROLLBACK_SEVERITY: Final = "SEV3"

STAGE_SEED_WORDS: Final = {
    "detected": "檢測 detect",
    "assessed": "評估 assess",
    "mitigated": "回應 respond",
    "recovered": "復原 recover",
    "reviewed": "學習 learn",
}
"""Each stage with the seed's word for its step of incident response."""

_LEVEL = re.compile(r"(?:sev|p)?\s*([1-5])", re.IGNORECASE)


def parse_severity(value: str | int) -> str:
    """``"SEV2"``, ``"sev2"``, ``"2"`` or ``2`` -> ``"SEV2"``; anything else is an
    ``InputError`` naming the levels."""
    text = str(value).strip()
    match = _LEVEL.fullmatch(text)
    if match is None or isinstance(value, bool):
        raise InputError(f"severity: expected one of {', '.join(SEVERITIES)}, got {value!r}")
    return f"SEV{match.group(1)}"


def severity_from_label(label: str | None) -> str:
    """The incident severity for an alert's ``severity`` label (see the module docstring)."""
    if label is None:
        return DEFAULT_ALERT_SEVERITY
    text = label.strip().lower()
    if _LEVEL.fullmatch(text):
        return parse_severity(text)
    return ALERT_SEVERITIES.get(text, DEFAULT_ALERT_SEVERITY)


def stage_index(stage: str) -> int:
    """The position of ``stage`` in the lifecycle; an unknown stage is an ``InputError``."""
    try:
        return STAGES.index(stage)
    except ValueError:
        raise InputError(f"stage: expected one of {', '.join(STAGES)}, got {stage!r}") from None


def check_move(record: IncidentRecord, stage: str, *, at: float | None, now: float) -> float:
    """The time (epoch seconds) to record for moving ``record`` to ``stage``, or an
    ``InputError`` saying why the move is not allowed.

    Without ``at`` the move is stamped ``now``, or at the latest stage's time if the clock reads
    earlier than that (a clock stepped back must not make time run backwards). A given ``at``
    earlier than a stage already reached is refused.
    """
    target = stage_index(stage)
    current = stage_index(record.stage)
    name = f"incident {record.id}"
    if target == current:
        reached = record.reached(stage)
        since = f" since {_iso(reached.at.timestamp())} ({reached.who})" if reached else ""
        raise InputError(f"{name} is already {stage}{since}")
    if target < current:
        hint = "; write what you found into its postmortem" if stage == "assessed" else ""
        raise InputError(
            f"{name} is {record.stage}: it cannot go back to {stage} (incidents only move "
            f"forward: {' -> '.join(STAGES)}){hint}"
        )
    if stage == "reviewed" and record.reached("recovered") is None:
        raise InputError(f"{name} is not recovered yet: resolve it before it is reviewed")
    latest = max(record.stages, key=lambda s: s.at, default=None)
    floor = latest.at.timestamp() if latest is not None else record.detected_at.timestamp()
    if at is None:
        return max(now, floor)
    if at < floor:
        what = f"{latest.stage} at {_iso(floor)}" if latest is not None else _iso(floor)
        raise InputError(
            f"{name}: {stage} at {_iso(at)} would be before {what}; an incident's times only "
            "move forward"
        )
    return at


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
