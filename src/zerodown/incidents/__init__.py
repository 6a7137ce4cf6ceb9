"""Incidents: severity, lifecycle, impact and postmortems (the seed's incident response).

An automatic rollback or a firing critical alert opens an incident with a severity (SEV1 to
SEV5). It moves forward through detected -> assessed -> mitigated -> recovered -> reviewed,
each stage stamped with its time and who moved it; its impact is measured from the data
plane's counters; its postmortem is drafted in Markdown from the event log and the metrics,
with the parts only a person can write marked ``[To complete]``; MTTD and MTTR are reported as
medians, p90 and every value.

``IncidentBook`` is the entry point; ``lifecycle`` holds the rules, ``impact`` the
measurements, ``postmortem`` the Markdown and ``stats`` the distributions.
"""

from __future__ import annotations

from zerodown.incidents.book import AUTOMATIC_ROLLBACK, IncidentBook, MetricsSource
from zerodown.incidents.lifecycle import (
    ALERT_SEVERITIES,
    DEFAULT_ALERT_SEVERITY,
    DEFAULT_ROLLBACK_SEVERITY,
    OPEN_STAGES,
    SEVERITIES,
    SEVERITY_MEANINGS,
    STAGES,
    parse_severity,
    severity_from_label,
)
from zerodown.incidents.postmortem import TO_COMPLETE, render_postmortem
from zerodown.incidents.stats import Distribution, IncidentStats, incident_stats
from zerodown.store.incidents import IncidentRecord, StageRecord

__all__ = [
    "ALERT_SEVERITIES",
    "AUTOMATIC_ROLLBACK",
    "DEFAULT_ALERT_SEVERITY",
    "DEFAULT_ROLLBACK_SEVERITY",
    "OPEN_STAGES",
    "SEVERITIES",
    "SEVERITY_MEANINGS",
    "STAGES",
    "TO_COMPLETE",
    "Distribution",
    "IncidentBook",
    "IncidentRecord",
    "IncidentStats",
    "MetricsSource",
    "StageRecord",
    "incident_stats",
    "parse_severity",
    "render_postmortem",
    "severity_from_label",
]
