"""The postmortem of an incident, in Markdown, drafted from what zerodown recorded.

The draft has the same sections every time and none of them is ever empty:

- a header table (service, severity, source, release, key times),
- **Summary**, one paragraph from the facts,
- **Lifecycle**: each stage with the seed's word for it, its time, who moved it, and the
  times to detect, mitigate and recover,
- **Impact**: the measured figures, or "unknown" with the reason,
- **Timeline**: the service's event log around the incident merged with the stage moves,
- **Metrics around the incident**: the traffic samples recorded in that window, per interval,
  and the judge's last verdict when a judge decided,
- **Root cause** and **Lessons learned**: first what zerodown knows (the decision and the
  measurements behind it, what changed in the release, what went well and what did not, in
  numbers), then a paragraph marked ``[To complete]`` for what only a person can add,
- **Action items** and **Review**.

``[To complete]`` (``TO_COMPLETE``) marks every place a person must write; the incident can be
marked reviewed once no marker is left in the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from zerodown.incidents.lifecycle import SEVERITY_MEANINGS, STAGE_SEED_WORDS, STAGES
from zerodown.incidents.stats import time_to_detect, time_to_recover
from zerodown.store.base import EventRecord, ReleaseRecord
from zerodown.store.incidents import IncidentRecord

__all__ = ["MARGIN_SECONDS", "TIMELINE_LIMIT", "TO_COMPLETE", "render_postmortem"]

TO_COMPLETE: Final = "[To complete]"
"""Marks what a person must add; ``--reviewed`` refuses while a marker is left."""
MARGIN_SECONDS: Final = 120.0
"""The timeline and the metrics show this much before the impact began and after recovery."""
TIMELINE_LIMIT: Final = 200
"""Rows of the timeline at most: the first and last halves are kept, the middle counted."""
_HIDDEN_KINDS: Final = frozenset({"rollout.sample"})


def render_postmortem(
    record: IncidentRecord,
    *,
    events: Sequence[EventRecord],
    releases: Sequence[ReleaseRecord],
    generated_at: datetime,
) -> str:
    """The Markdown draft of ``record``'s postmortem. ``events`` are the service's events
    around the incident (oldest first), ``releases`` its releases (any order)."""
    draft = _Draft(record, events, releases, generated_at)
    parts = [
        draft.header(),
        draft.summary(),
        draft.lifecycle(),
        draft.impact(),
        draft.timeline(),
        draft.metrics(),
        draft.root_cause(),
        draft.lessons(),
        draft.actions(),
        draft.review(),
    ]
    return "\n".join(line for part in parts for line in [*part, ""]).rstrip() + "\n"


class _Draft:
    def __init__(
        self,
        record: IncidentRecord,
        events: Sequence[EventRecord],
        releases: Sequence[ReleaseRecord],
        generated_at: datetime,
    ) -> None:
        self.r = record
        self.generated_at = generated_at
        self.releases = sorted(releases, key=lambda rel: int(rel.revision))
        self.release = next((x for x in self.releases if x.revision == record.revision), None)
        self.details = record.details
        self.rollback = record.source.startswith("rollback:")
        # An alert's facts under ``details["alert"]``, or the details themselves.
        alert = record.details.get("alert")
        if not isinstance(alert, Mapping) and record.source.startswith("alert:"):
            alert = record.details
        self.alert: Mapping[str, Any] | None = alert if isinstance(alert, Mapping) else None
        self.start = record.started_at or record.detected_at
        recovered = record.at("recovered")
        self.end = recovered or generated_at
        lo = self.start.timestamp() - MARGIN_SECONDS
        hi = self.end.timestamp() + MARGIN_SECONDS
        self.events = [e for e in events if lo <= e.ts.timestamp() <= hi]
        self.multi_day = self.start.date() != self.end.date()

    # header and summary ---------------------------------------------------------------------
    def header(self) -> list[str]:
        r = self.r
        rows = [
            ("Incident", f"INC-{r.id}"),
            ("Service", r.service),
            ("Severity", f"{r.severity} ({SEVERITY_MEANINGS.get(r.severity, 'unknown level')})"),
            ("Source", f"`{r.source}`" + (" (automatic rollback)" if self.rollback else "")),
            ("Stage", r.stage),
            ("Release", self._release_text()),
            ("Impact began", self._began_text()),
            ("Detected", f"{_stamp(r.detected_at)} by {self._who('detected')}"),
            ("Recovered", self._stage_text("recovered")),
            ("Draft written", f"{_stamp(self.generated_at)} by zerodown"),
        ]
        lines = [f"# Postmortem INC-{r.id}: {_inline(r.title)}", "", "| Field | Value |"]
        lines.append("|---|---|")
        lines += [f"| {k} | {_cell(v)} |" for k, v in rows]
        lines += [
            "",
            "> zerodown filled in everything it recorded and measured. The parts marked "
            '"To complete" need a person; when none is left, mark the incident reviewed: '
            f"`zerodown incident postmortem {r.id} --reviewed`.",
        ]
        return lines

    def summary(self) -> list[str]:
        r = self.r
        sentences: list[str] = []
        if self.rollback and self.release is not None:
            sentences.append(
                f"Revision {r.revision} ({self.release.version}) of {r.service} was rolled back "
                f"automatically: {self.details.get('reason') or self.release.reason}."
            )
        else:
            sentences.append(f"{r.service}: {r.title}.")
        if r.started_at is not None:
            sentences.append(
                f"Impact could begin at {_clock(r.started_at)} ({self._onset()}); it was "
                f"detected {_duration(time_to_detect(r))} later by {self._who('detected')}."
            )
        else:
            sentences.append(
                f"It was detected at {_clock(r.detected_at)} by {self._who('detected')}; when "
                "its impact began is not known."
            )
        mitigated = r.at("mitigated")
        if mitigated is not None:
            sentences.append(f"It was mitigated at {_clock(mitigated)} ({self._who('mitigated')}).")
        recovered = r.at("recovered")
        if recovered is not None:
            sentences.append(
                f"The service was recovered {_duration(time_to_recover(r))} after detection, at "
                f"{_clock(recovered)}."
            )
        else:
            sentences.append("It is not recovered yet.")
        impact = r.impact
        if impact.get("measured"):
            sentences.append(self._impact_sentence(impact))
        else:
            sentences.append(f"Its impact is unknown: {impact.get('reason') or 'not measured'}.")
        return ["## Summary", "", " ".join(sentences)]

    @staticmethod
    def _impact_sentence(impact: Mapping[str, Any]) -> str:
        scope = _inline(str(impact.get("scope") or "the service"))
        text = f"{scope[:1].upper()}{scope[1:]} served {_count(impact.get('requests'))} requests"
        text += f" in {_duration(impact.get('seconds'))}"
        if impact.get("errors") is not None:
            text += f", {_count(impact.get('errors'))} of them with a server error"
            if impact.get("error_rate") is not None:
                text += f" ({_percent(impact.get('error_rate'))})"
        if impact.get("p95_ms") is not None:
            text += f"; p95 latency {_ms(impact.get('p95_ms'))}"
        return text + "."

    # lifecycle and impact -------------------------------------------------------------------
    def lifecycle(self) -> list[str]:
        r = self.r
        lines = [
            "## Lifecycle",
            "",
            "| Stage | Seed step | Time (UTC) | Since detection | By | Note |",
            "|---|---|---|---|---|---|",
        ]
        current = STAGES.index(r.stage)
        for index, stage in enumerate(STAGES):
            reached = r.reached(stage)
            if reached is not None:
                since = (reached.at - r.detected_at).total_seconds()
                lines.append(
                    f"| {stage} | {STAGE_SEED_WORDS[stage]} | {_stamp(reached.at)} | "
                    f"{_offset(since)} | {_cell(reached.who)} | {_cell(reached.note or '')} |"
                )
            elif index < current:
                lines.append(
                    f"| {stage} | {STAGE_SEED_WORDS[stage]} | skipped | | | not recorded: the "
                    "incident moved past this stage without it |"
                )
            else:
                lines.append(f"| {stage} | {STAGE_SEED_WORDS[stage]} | not yet | | | |")
        lines.append("")
        mitigated = r.at("mitigated")
        to_mitigate = (mitigated - r.detected_at).total_seconds() if mitigated is not None else None
        lines += [
            f"- Time to detect (impact began -> detected): {_duration(time_to_detect(r))}",
            f"- Time to mitigate (detected -> mitigated): {_duration(to_mitigate)}",
            f"- Time to recover (detected -> recovered): {_duration(time_to_recover(r))}",
        ]
        return lines

    def impact(self) -> list[str]:
        impact = self.r.impact
        lines = ["## Impact", ""]
        if impact.get("scope"):
            lines.append(f"- Scope: {_inline(str(impact['scope']))}")
        if impact.get("from"):
            end = impact.get("to")
            lines.append(
                f"- Window: {_stamp(_parse(impact['from']))} -> "
                + (f"{_stamp(_parse(end))} ({_duration(impact.get('seconds'))})" if end else "now")
            )
        if not impact.get("measured"):
            lines += [
                f"- Measured figures: unknown: {impact.get('reason') or 'nothing was measured'}.",
                f"- **{TO_COMPLETE}** The users or requests affected, if another source knows "
                "(support tickets, client-side monitoring, business metrics).",
            ]
            return lines
        lines += [
            f"- Requests: {_count(impact.get('requests'))}",
            f"- Server errors (5xx): {_count(impact.get('errors'))}"
            + (
                f" ({_percent(impact.get('error_rate'))} of answered requests)"
                if impact.get("error_rate") is not None
                else ""
            ),
            "- Requests not served (connection errors, timeouts): "
            f"{_count(impact.get('unserved'))}",
            f"- Latency p95: {_ms(impact.get('p95_ms'))}",
        ]
        if impact.get("exposure") is not None:
            lines.append(
                f"- Share of the service's traffic: {_percent(impact['exposure'])} of "
                f"{_count(impact.get('service_requests'))} requests"
            )
        lines.append(f"- Source: {impact.get('source')}")
        return lines

    # timeline and metrics -------------------------------------------------------------------
    def timeline(self) -> list[str]:
        rows: list[tuple[float, str, str, str]] = []
        for event in self.events:
            if event.kind in _HIDDEN_KINDS or event.kind.startswith("incident."):
                continue
            revision = f"r{event.revision} " if event.revision is not None else ""
            rows.append((event.ts.timestamp(), event.kind, f"{revision}{event.message}", "event"))
        for stage in self.r.stages:
            who = f" by {stage.who}" + (f": {stage.note}" if stage.note else "")
            rows.append((stage.at.timestamp(), f"incident {stage.stage}", who.strip(), "stage"))
        if self.r.started_at is not None:
            rows.append((self.r.started_at.timestamp(), "impact began", self._onset(), "stage"))
        rows.sort(key=lambda row: (row[0], row[3] != "stage"))
        omitted = 0
        if len(rows) > TIMELINE_LIMIT:
            half = TIMELINE_LIMIT // 2
            omitted = len(rows) - TIMELINE_LIMIT
            rows = [*rows[:half], (math.nan, "", "", "gap"), *rows[-half:]]
        lines = [
            f"## Timeline ({self._day_label()})",
            "",
            "| Time | Since detection | What | Detail |",
            "|---|---|---|---|",
        ]
        detected = self.r.detected_at.timestamp()
        for moment, what, detail, kind in rows:
            if kind == "gap":
                lines.append(f"| ... | | {omitted} more events | see `zerodown events` |")
                continue
            what_text = f"**{what}**" if kind == "stage" else f"`{what}`"
            lines.append(
                f"| {self._time(moment)} | {_offset(moment - detected)} | {what_text} | "
                f"{_cell(detail)} |"
            )
        lines.append("")
        lines.append(
            f"Events from {_duration(MARGIN_SECONDS)} before the impact began to "
            f"{_duration(MARGIN_SECONDS)} after recovery (or now); traffic samples are under "
            "Metrics."
        )
        return lines

    def metrics(self) -> list[str]:
        lines = ["## Metrics around the incident", ""]
        samples = [e for e in self.events if e.kind == "rollout.sample"]
        if samples:
            lines += self._sample_table(samples)
        else:
            lines.append(
                "No traffic samples were recorded in this window (the engine samples traffic "
                "per version during rollouts); the impact figures above are what was measured."
            )
        verdict = self.details.get("verdict")
        if isinstance(verdict, Mapping) and verdict.get("measurements"):
            lines += [
                "",
                f"The judge's deciding verdict ({verdict.get('judge')}, "
                f"{verdict.get('canary_requests')} canary and "
                f"{verdict.get('baseline_requests')} baseline requests):",
                "",
                "| Measurement | Outcome | Detail |",
                "|---|---|---|",
            ]
            for m in verdict["measurements"]:
                if isinstance(m, Mapping):
                    lines.append(
                        f"| {_cell(str(m.get('name')))} | {_cell(str(m.get('outcome')))} | "
                        f"{_cell(str(m.get('detail') or ''))} |"
                    )
        if self.alert is not None and self.alert.get("value") is not None:
            lines += ["", f"The alert's value when it fired: {self.alert.get('value')}."]
        return lines

    def _sample_table(self, samples: Sequence[EventRecord]) -> list[str]:
        lines = [
            "Per version and per sampling interval, from the engine's traffic samples (requests "
            "and 5xx counted in the interval; p95 over the rollout so far; host CPU and memory "
            "at the sample):",
            "",
            "| Time | Revision | Weight | Requests | 5xx | Error rate | p95 (rollout) | "
            "Host CPU | Host memory |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        previous: dict[str, Mapping[str, Any]] = {}
        shown = samples[-60:]
        for event in shown:
            versions = event.data.get("versions")
            if not isinstance(versions, Mapping):
                continue
            raw_host = event.data.get("host")
            host: Mapping[str, Any] = raw_host if isinstance(raw_host, Mapping) else {}
            moment = _num(event.data.get("t")) or event.ts.timestamp()
            for key in sorted(versions, key=str):
                figures = versions[key]
                if not isinstance(figures, Mapping):
                    continue
                before = previous.get(str(key), {})
                if (_num(figures.get("requests")) or 0) < (_num(before.get("requests")) or 0):
                    before = {}  # a new rollout: counters start again
                requests = (_num(figures.get("requests")) or 0) - (
                    _num(before.get("requests")) or 0
                )
                errors = (_num(figures.get("errors")) or 0) - (_num(before.get("errors")) or 0)
                rate = errors / requests if requests > 0 else None
                previous[str(key)] = figures
                lines.append(
                    f"| {self._time(moment)} | r{key} | {figures.get('weight', '-')} % | "
                    f"{int(requests)} | {int(errors)} | {_percent(rate)} | "
                    f"{_ms(figures.get('p95_ms'), missing='-')} | "
                    f"{_percent_value(host.get('cpu_percent'))} | "
                    f"{_percent_value(host.get('memory_percent'))} |"
                )
        if len(samples) > len(shown):
            lines += ["", f"The {len(samples) - len(shown)} earlier samples are not shown."]
        return lines

    # causes, lessons, actions ---------------------------------------------------------------
    def root_cause(self) -> list[str]:
        lines = ["## Root cause", "", "What zerodown knows:", ""]
        known: list[str] = []
        r = self.r
        reason = self.details.get("reason")
        if reason:
            known.append(f"{self._who('detected')} decided: {_inline(str(reason))}.")
        verdict = self.details.get("verdict")
        if isinstance(verdict, Mapping):
            failing = [
                m
                for m in verdict.get("measurements") or ()
                if isinstance(m, Mapping) and m.get("outcome") == "fail"
            ]
            for m in failing:
                known.append(
                    f"Failing measurement `{m.get('name')}`: {_inline(str(m.get('detail')))}."
                )
        if self.alert is not None:
            known += self._alert_facts(self.alert)
        changes = self.details.get("changes")
        if self.rollback and self.release is not None:
            stable = self.details.get("stable")
            stable_version = self.details.get("stable_version")
            known.append(
                f"What changed: revision {stable} ({stable_version}) -> revision {r.revision} "
                f"({self.release.version}), {self.details.get('strategy') or 'rollout'} strategy."
            )
            if isinstance(changes, list) and changes:
                known.append("Spec lines that changed:")
        elif not self.rollback:
            known += self._recent_releases()
        lines += [f"- {k}" for k in known] or ["- Nothing beyond the title above was recorded."]
        if self.rollback and isinstance(changes, list) and changes:
            lines += ["", "```diff", *[str(c) for c in changes], "```"]
        elif self.rollback:
            lines.append("- The spec did not change: the difference is in the version deployed.")
        lines += [
            "",
            f"**{TO_COMPLETE}** The underlying cause: what in the code, configuration, data, "
            "dependency or capacity made this happen, and why it was not caught before it "
            "reached users.",
        ]
        return lines

    def _alert_facts(self, alert: Mapping[str, Any]) -> list[str]:
        facts = []
        name = alert.get("name") or self.r.source.removeprefix("alert:")
        expr = alert.get("expr")
        facts.append(
            f"Alert `{name}` fired" + (f" on `{_inline(str(expr))}`" if expr else "") + "."
        )
        for key in ("summary", "description"):
            text = alert.get(key) or (alert.get("annotations") or {}).get(key)
            if text:
                facts.append(f"Its {key}: {_inline(str(text))}")
        labels = alert.get("labels")
        if isinstance(labels, Mapping) and labels:
            pairs = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
            facts.append(f"Labels: {_inline(pairs)}.")
        return facts

    def _recent_releases(self) -> list[str]:
        """Releases that started in the hour before the incident (a change is the usual
        suspect) or during it."""
        lo = self.start.timestamp() - 3600
        hi = self.end.timestamp()
        recent = [x for x in self.releases if lo <= x.created_at.timestamp() <= hi]
        if not recent:
            return ["No release of this service started in the hour before the incident."]
        return [
            f"Release revision {x.revision} ({x.version}, {x.strategy}) started "
            f"{_duration(self.r.detected_at.timestamp() - x.created_at.timestamp())} before "
            f"detection and is {x.status}: {_inline(x.reason or '-')}."
            for x in recent
        ]

    def lessons(self) -> list[str]:
        r = self.r
        went_well: list[str] = []
        went_wrong: list[str] = []
        detect = time_to_detect(r)
        impact = r.impact
        if detect is not None:
            served = ""
            verdict = self.details.get("verdict")
            if isinstance(verdict, Mapping) and verdict.get("canary_requests"):
                served = (
                    f", when {_count(verdict.get('canary_requests'))} requests had reached the "
                    "new revision"
                )
            went_well.append(
                f"Detected by {self._who('detected')} {_duration(detect)} after the impact "
                f"began{served}."
            )
        rollback_s = self.details.get("rollback_s")
        if isinstance(rollback_s, int | float):
            target = "within" if rollback_s < 30 else "over"
            went_well_or_wrong = went_well if rollback_s < 30 else went_wrong
            went_well_or_wrong.append(
                f"Traffic went back to the stable revision {_duration(rollback_s)} after the "
                f"decision ({target} the seed's < 30 s rollback target)."
            )
        if self.details.get("verified"):
            went_well.append(f"Recovery verified: {_inline(str(self.details['verified']))}.")
        if impact.get("measured"):
            errors = impact.get("errors")
            unserved = impact.get("unserved")
            if errors:
                went_wrong.append(f"{_count(errors)} requests got a server error (5xx).")
            if unserved:
                went_wrong.append(f"{_count(unserved)} requests were not served at all.")
            if not errors and not unserved:
                went_well.append("No request failed during the incident window.")
        else:
            went_wrong.append("The impact could not be measured (see Impact).")
        if r.reached("assessed") is None and STAGES.index(r.stage) > STAGES.index("assessed"):
            went_wrong.append(
                "Nobody assessed (acknowledged) the incident before it moved on: the "
                "automatic response ran alone."
            )
        if r.is_open:
            went_wrong.append("The incident is not recovered yet.")
        lines = ["## Lessons learned", "", "What went well (measured):", ""]
        lines += [f"- {x}" for x in went_well] or ["- Nothing was measured to go well."]
        lines += ["", "What went wrong (measured):", ""]
        lines += [f"- {x}" for x in went_wrong] or ["- Nothing was measured to go wrong."]
        lines += [
            "",
            f"**{TO_COMPLETE}** What the team learned: what should change so this cannot happen "
            "again or is caught earlier (tests, analysis limits, canary steps, alerts), and "
            "where the outcome was luck.",
        ]
        return lines

    def actions(self) -> list[str]:
        return [
            "## Action items",
            "",
            f"- [ ] **{TO_COMPLETE}** One line per change agreed in the review: what, who owns "
            "it, by when.",
        ]

    def review(self) -> list[str]:
        reviewed = self.r.reached("reviewed")
        if reviewed is not None:
            text = f"Reviewed at {_stamp(reviewed.at)} by {reviewed.who}."
        else:
            text = (
                "Not reviewed yet: complete the marked parts, then run "
                f"`zerodown incident postmortem {self.r.id} --reviewed`."
            )
        return ["## Review", "", text]

    # helpers --------------------------------------------------------------------------------
    def _release_text(self) -> str:
        if self.release is None:
            return "none recorded" if self.r.revision is None else f"revision {self.r.revision}"
        return (
            f"revision {self.release.revision} ({self.release.version}), "
            f"{self.release.strategy}, {self.release.status}"
        )

    def _began_text(self) -> str:
        if self.r.started_at is None:
            return "unknown"
        return f"{_stamp(self.r.started_at)} ({self._onset()})"

    def _onset(self) -> str:
        return str(self.details.get("onset") or "as reported by the source")

    def _who(self, stage: str) -> str:
        reached = self.r.reached(stage)
        return reached.who if reached is not None else "nobody"

    def _stage_text(self, stage: str) -> str:
        reached = self.r.reached(stage)
        if reached is None:
            return "not yet"
        return f"{_stamp(reached.at)} by {reached.who}"

    def _day_label(self) -> str:
        if self.multi_day:
            return "UTC"
        return f"UTC, {self.start:%Y-%m-%d}"

    def _time(self, epoch: float) -> str:
        moment = datetime.fromtimestamp(epoch, UTC)
        if self.multi_day:
            return _stamp(moment)
        return moment.strftime("%H:%M:%S.%f")[:-3]


# formatting -----------------------------------------------------------------------------------
def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC")


def _parse(text: Any) -> datetime:
    return datetime.fromisoformat(str(text))


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "unknown"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)} min {rest:.0f} s"
    hours, rest = divmod(seconds, 3600)
    return f"{int(hours)} h {rest / 60:.0f} min"


def _offset(seconds: float) -> str:
    sign = "-" if seconds < 0 else "+"
    return f"{sign}{_duration(abs(seconds))}"


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> str:
    number = _num(value)
    return "unknown" if number is None else f"{int(number):,}"


def _percent(fraction: Any) -> str:
    number = _num(fraction)
    return "-" if number is None else f"{number * 100:.2f} %"


def _percent_value(value: Any) -> str:
    number = _num(value)
    return "-" if number is None else f"{number:.0f} %"


def _ms(value: Any, *, missing: str = "unknown") -> str:
    number = _num(value)
    return missing if number is None else f"{number:.1f} ms"


def _inline(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")
