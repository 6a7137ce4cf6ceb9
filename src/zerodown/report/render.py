"""The Markdown report: the seed's template with every placeholder replaced by measured values.

``render_markdown`` walks the template (``template.md``, or ``template.en.md`` for English):
headings and the ``Next Actions`` checklist are copied, each ``{placeholder}`` line becomes its
label followed by one line of value, and details (one line per check, step, version, rule...)
follow as nested bullets. The values come from the JSON twin's figures (``figures.py``) and
are only formatted here, so the Markdown and the JSON cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from zerodown.core.errors import InputError
from zerodown.report.figures import FIELD_PATHS
from zerodown.report.json_twin import report_json
from zerodown.report.model import ReportInput
from zerodown.report.template import parse_template, template_text
from zerodown.report.wording import Words, num

__all__ = ["render_from_json", "render_markdown"]

JSON = Mapping[str, Any]
Rendered = tuple[str, list[str]]


def render_markdown(data: ReportInput, *, lang: str = "zh-TW", chart_name: str | None) -> str:
    """The report in ``lang`` (``zh-TW`` or ``en``); ``chart_name`` is the SVG to link, if any."""
    return render_from_json(report_json(data), lang=lang, chart_name=chart_name)


def render_from_json(report: JSON, *, lang: str = "zh-TW", chart_name: str | None) -> str:
    """The Markdown of an already built JSON twin (so both files come from one computation)."""
    lines = parse_template(template_text(lang))
    placeholders = [line for line in lines if line.label is not None]
    if len(placeholders) != len(FIELD_PATHS):
        raise InputError(
            f"the {lang} template has {len(placeholders)} placeholders, "
            f"the report fills {len(FIELD_PATHS)}"
        )
    fields = _Fields(report, Words(lang))
    out: list[str] = []
    checklist_end = max((i for i, line in enumerate(lines) if line.is_checklist), default=-1)
    index = 0
    for position, line in enumerate(lines):
        if line.label is None:
            out.append(line.text)
        else:
            path = FIELD_PATHS[index]
            index += 1
            value, details = fields.render(path)
            out.append(line.label + _inline(value))
            out.extend(" " * line.detail_indent + "- " + _inline(d) for d in details)
            if path[-1] == "throughput" and chart_name:
                out.extend(["", fields.words("chart", name=chart_name)])
        if position == checklist_end:
            out.extend(f"- [ ] {_inline(item)}" for item in fields.next_actions())
    return "\n".join(out) + "\n"


def _inline(text: str) -> str:
    """One line of Markdown: whitespace collapsed, braces escaped (they are never placeholders)."""
    return " ".join(text.split()).replace("{", "\\{").replace("}", "\\}")


def _get(report: JSON, path: Sequence[str]) -> Any:
    node: Any = report
    for key in path:
        node = node[key]
    return node


class _Fields:
    """Turns one field's figures into its value line and detail lines."""

    def __init__(self, report: JSON, words: Words) -> None:
        self.report = report
        self.words = words
        self.na = words("not_measured")
        self._renderers: dict[str, Callable[[JSON], Rendered]] = {
            "deployment_type": self.deployment_type,
            "deployment_status": self.deployment_status,
            "deployment_time": self.deployment_time,
            "impact": self.impact,
            "health_score": self.health_score,
            "cpu": self.cpu,
            "memory": self.memory,
            "storage": self.storage,
            "network": self.network,
            "pre_deployment_checks": self.pre_checks,
            "deployment_execution": self.execution,
            "health_checks": self.health_checks,
            "post_deployment_validation": self.post_validation,
            "availability": self.availability,
            "response_time": self.response_time,
            "error_rate": self.error_rate,
            "throughput": self.throughput,
            "bottlenecks": self.bottlenecks,
            "resource_optimization": self.resource_optimization,
            "scaling": self.scaling,
            "deployment_events": self.events,
            "alerts": self.alerts,
            "incident_response": self.incident,
            "lessons_learned": self.lessons,
            "urgent_actions": self.items("urgent"),
            "improvements": self.items("improve"),
            "preventive_actions": self.items("prevent"),
            "capacity_planning": self.capacity,
        }

    def render(self, path: Sequence[str]) -> Rendered:
        if path == ("timestamp",):
            return str(self.report["timestamp"]), []
        return self._renderers[path[-1]](_get(self.report, path))

    # formatting helpers
    def n(self, value: Any) -> str:
        return num(value) if isinstance(value, int | float) else self.na

    def pct(self, value: Any) -> str:
        return f"{num(value)}%" if isinstance(value, int | float) else self.na

    def ms(self, value: Any) -> str:
        return f"{num(value)} ms" if isinstance(value, int | float) else self.na

    def qty(self, value: Any) -> str:
        if isinstance(value, Mapping) and isinstance(value.get("value"), int | float):
            return f"{num(value['value'])} {value['unit']}"
        return self.na

    def rev(self, ref: Any) -> str:
        if not isinstance(ref, Mapping) or ref.get("revision") is None:
            return self.na
        if ref.get("version"):
            return self.words("revision_version", revision=ref["revision"], version=ref["version"])
        return self.words("revision", revision=ref["revision"])

    def reason(self, code: Any) -> str:
        return self.words(f"reason_{code}")

    def not_measured(self, figures: JSON) -> str:
        return self.words("not_measured_because", reason=self.reason(figures["reason"]))

    def step(self, step: JSON) -> str:
        if step.get("offset_s") is None:
            return self.words("step_no_time", kind=step["kind"], message=step["message"])
        return self.words(
            "step", offset=num(step["offset_s"]), kind=step["kind"], message=step["message"]
        )

    def status_word(self, status: str) -> str:
        key = f"status_{status}"
        return self.words(key) if key in _STATUS_KEYS else status

    # deployment summary
    def deployment_type(self, f: JSON) -> Rendered:
        w = self.words
        kind = f["type"]
        analyses = f["analyses"]
        if kind == "Canary":
            weights = " → ".join(f"{num(x)}%" for x in f["weights_reached"])
            if weights:
                return w("type_canary", weights=weights, analyses=analyses), []
            return w("type_canary_no_weights", analyses=analyses), []
        if kind == "Blue-Green":
            return w("type_bluegreen", replicas=f["replicas"], analyses=analyses), []
        if kind == "Rolling":
            return w("type_rolling", replicas=f["replicas"], analyses=analyses), []
        if kind == "Swarm Native":
            how = f.get("swarm_update") or "-"
            return w("type_native", replicas=f["replicas"], how=how, analyses=analyses), []
        if kind == "Initial":
            return w("type_initial", replicas=f["replicas"]), []
        if kind == "Rollback":
            target = {"revision": f["rollback_to"]} if f["rollback_to"] is not None else None
            if target is not None and f["new"] and f["new"]["revision"] == f["rollback_to"]:
                target = f["new"]
            return w("type_rollback", target=self.rev(target)), []
        return w("type_other", type=kind, operation=f["operation"]), []

    def deployment_status(self, f: JSON) -> Rendered:
        w = self.words
        outcome, reason = f["outcome"], f["reason"] or "-"
        if outcome == "success":
            return w("status_success", reason=reason), []
        if outcome == "partial":
            reasons = [self.partial_reason(r) for r in f["partial_reasons"]]
            return w("status_partial", reasons=w("list_sep").join(reasons)), []
        if outcome == "failure":
            if f["rollback"] is not None:
                return w(f"status_rolled_back_{f['rollback']}", reason=reason), []
            return w("status_failed", reason=reason), []
        if outcome in ("in_progress", "stopped"):
            return w(f"status_{outcome}", status=f["release_status"], reason=reason), []
        return w("status_unknown", status=f["release_status"], reason=reason), []

    def partial_reason(self, r: JSON) -> str:
        slots = {k: v for k, v in r.items() if k != "code"}
        return self.words(f"partial_{r['code']}", **slots)

    def deployment_time(self, f: JSON) -> Rendered:
        if f["running"]:
            text = self.words(
                "time_running", seconds=num(f["seconds"]), hms=f["hms"], started=f["started"]
            )
            return text, []
        finished = f["finished"] or self.na
        text = self.words(
            "time_done",
            seconds=num(f["seconds"]),
            hms=f["hms"],
            started=f["started"],
            finished=finished,
        )
        return text, []

    def impact(self, f: JSON) -> Rendered:
        w = self.words
        drill = f.get("drill")
        if drill:
            return w(
                "impact_drill",
                service=f["service"],
                address=drill.get("address") or "-",
                new=self.rev(f["new"]),
            ), [w("impact_drill_users")]
        if f.get("operation"):
            return self.operation_impact(f["service"], f["operation"])
        if f["previous"] is None:
            head = w(
                "impact_first",
                service=f["service"],
                new=self.rev(f["new"]),
                started=f["new_instances_started"],
            )
        else:
            head = w(
                "impact_replace",
                service=f["service"],
                previous=self.rev(f["previous"]),
                new=self.rev(f["new"]),
                replaced=f["instances_replaced"],
                started=f["new_instances_started"],
                stopped=f["new_instances_stopped"],
            )
        if f["requests"] is None:
            requests = w(
                "impact_requests_unknown",
                reason=w("not_measured_because", reason=self.reason(f["traffic_reason"])),
            )
        elif f["new_share_percent"] is not None:
            requests = w(
                "impact_requests",
                requests=f["requests"],
                to_new=f["requests_to_new"],
                share=num(f["new_share_percent"]),
            )
        else:
            requests = w("impact_requests_total", requests=f["requests"])
        if f["traffic_source"] == "samples":
            requests += " " + w("impact_from_samples")
        users = w("impact_users", reason=self.reason(f["users"]["reason"]))
        return head + w("list_sep") + requests, [users]

    def operation_impact(self, service: str, op: JSON) -> Rendered:
        """A backup, a restore or a retention run: who was affected, in their figures."""
        w = self.words
        kind = op["kind"]
        if kind == "backup":
            head = w("impact_backup", service=service, count=op["backups"], targets=op["targets"])
            size = w("impact_bytes", bytes=op["bytes"])
            return head + w("list_sep") + size, [w("impact_backup_users")]
        if kind == "restore":
            if op["bytes_written"] is None:  # it failed before writing anything
                return w("impact_restore_failed", service=service, id=op["backup_id"]), []
            slots = {
                "service": service,
                "id": op["backup_id"],
                "target": op["target"],
                "destination": op["destination"],
                "bytes": op["bytes_written"],
            }
            if not op["replaced_live"]:
                return w("impact_restore", **slots), [w("impact_restore_users")]
            users = w("impact_restore_live_users", age=self.n(op["data_age_s"]))
            if op["moved_aside"]:
                users += w("list_sep") + w("impact_restore_moved", moved=op["moved_aside"])
            return w("impact_restore_live", **slots), [users]
        head = w(
            "impact_retention",
            service=service,
            removed=self.n(op["removed"]),
            removed_bytes=self.n(op["removed_bytes"]),
            kept=self.n(op["kept"]),
        )
        return head, [w("impact_retention_users")]

    # infrastructure
    def health_score(self, f: JSON) -> Rendered:
        w = self.words
        if not f["measured"]:
            return w("health_none"), []
        names = {c["name"]: w(f"name_{c['name']}") for c in f["components"]}
        components = ", ".join(
            w("health_component", name=names[c["name"]], score=num(c["score"]), weight=c["weight"])
            for c in f["components"]
        )
        value = w("health_value", score=num(f["score"]), max=f["max"], components=components)
        limits = w(f"limits_{f['limits_source']}")
        details = [w("health_formula", max=f["max"], at_limit=f["score_at_limit"], limits=limits)]
        for c in f["components"]:
            details.append(self.health_component(c, f["max"]))
        for m in f["missing"]:
            details.append(
                w("health_missing", name=w(f"name_{m['name']}"), reason=self.reason(m["reason"]))
            )
        return value, details

    def health_component(self, c: JSON, top: int) -> str:
        w = self.words
        score = num(c["score"])
        if c["name"] == "availability":
            return w(
                "health_availability",
                value=num(c["value_percent"]),
                limit=num(c["limit_percent"]),
                max=top,
                score=score,
            )
        if c["name"] == "error_rate":
            return w(
                "health_error_rate",
                value=num(c["value_percent"]),
                limit=num(c["limit_percent"]),
                max=top,
                score=score,
            )
        if c["name"] == "latency":
            return w(
                "health_latency",
                new=self.ms(c["new_p95_ms"]),
                baseline=self.ms(c["baseline_p95_ms"]),
                ratio=num(c["ratio"]),
                limit=num(c["limit_ratio"]),
                max=top,
                score=score,
            )
        return w(
            "health_instances",
            revision=self.rev({"revision": c["revision"]}),
            healthy=c["healthy"],
            expected=c["expected"],
            max=top,
            score=score,
        )

    def instance_lines(self, items: Sequence[JSON], key: str) -> list[str]:
        lines = []
        for item in items:
            revision = self.rev({"revision": item["revision"]})
            if key == "cpu":
                lines.append(
                    self.words(
                        "cpu_instance",
                        id=item["id"],
                        revision=revision,
                        cpu=self.pct(item["cpu_percent"]),
                    )
                )
            else:
                lines.append(
                    self.words(
                        "memory_instance",
                        id=item["id"],
                        revision=revision,
                        memory=self.qty(item["memory"]),
                    )
                )
        return lines

    def cpu(self, f: JSON) -> Rendered:
        details = self.instance_lines(f["instances"], "cpu")
        if not f["measured"]:
            return self.not_measured(f), details
        value = self.words(
            "cpu",
            average=num(f["average_percent"]),
            samples=f["samples"],
            peak=num(f["peak_percent"]),
            cores=self.n(f["cpu_count"]),
            load=self.n(f["load_1m_peak"]),
        )
        return value, details

    def memory(self, f: JSON) -> Rendered:
        details = self.instance_lines(f["instances"], "memory")
        if not f["measured"]:
            return self.not_measured(f), details
        value = self.words(
            "memory",
            average=num(f["average_percent"]),
            peak=num(f["peak_percent"]),
            used=self.qty(f["used_peak"]),
            total=self.qty(f["total"]),
        )
        return value, details

    def storage(self, f: JSON) -> Rendered:
        if not f["measured"]:
            return self.not_measured(f), []
        if f.get("scope") == "backup_storage":
            used = num(f["average_percent"])
            return self.words(
                "storage_backup", used=used, free=self.qty(f["free_min"]), path=f["path"]
            ), []
        value = self.words(
            "storage",
            average=num(f["average_percent"]),
            peak=num(f["peak_percent"]),
            free=self.qty(f["free_min"]),
        )
        return value, []

    def network(self, f: JSON) -> Rendered:
        if not f["measured"]:
            return self.not_measured(f), []
        value = self.words(
            "network",
            sent=self.qty(f["sent_average"]),
            sent_peak=self.qty(f["sent_peak"]),
            recv=self.qty(f["recv_average"]),
            recv_peak=self.qty(f["recv_peak"]),
            samples=f["samples"],
        )
        return value, []

    # execution
    def check_lines(self, f: JSON) -> list[str]:
        lines = []
        for check in f["checks"]:
            text = self.words(
                "check_line",
                name=check["name"],
                status=self.status_word(check["status"]),
                summary=check["summary"] or "-",
            )
            figures = ", ".join(f"{k}={self.figure(v)}" for k, v in check["figures"].items())
            if figures:
                text += " " + self.words("check_figures", figures=figures)
            lines.append(text)
        return lines

    def figure(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        return num(value)

    def check_counts(self, f: JSON) -> str:
        return self.words(
            "checks_counts",
            count=f["configured"],
            passed=f["pass"],
            warned=f["warn"],
            failed=f["fail"],
        )

    def pre_checks(self, f: JSON) -> Rendered:
        if not f["configured"]:
            return self.words("checks_none_pre"), []
        return self.check_counts(f), self.check_lines(f)

    def execution(self, f: JSON) -> Rendered:
        w = self.words
        parts = [w("execution", count=f["count"])]
        for name, value in f["timings"].items():
            key = f"timing_{name.removesuffix('_ms')}"
            if key in _TIMING_KEYS:
                parts.append(w(key, value=self.ms(value)))
            else:
                parts.append(w("timing_other", name=name, value=self.ms(value)))
        details = [self.step(s) for s in f["steps"]]
        if f["inconclusive_verdicts_omitted"]:
            details.append(w("execution_omitted", count=f["inconclusive_verdicts_omitted"]))
        return w("list_sep").join(parts), details

    def health_checks(self, f: JSON) -> Rendered:
        w = self.words
        new = f["new"]
        events = f["events"]
        gone = new["total"] == 0 and f["serving_revision"] != new["revision"]
        value = w(
            "health_counts_gone" if gone else "health_counts",
            new=self.rev({"revision": new["revision"]}),
            healthy=new["healthy"],
            total=new["total"],
            expected=new["expected"],
            restarts=new["restarts"],
            ev_healthy=events["healthy"],
            ev_unhealthy=events["unhealthy"],
            ev_crashed=events["crashed"],
            ev_restarted=events["restarted"],
        )
        details = []
        stable = f["stable"]
        if stable is not None:
            details.append(
                w(
                    "health_stable",
                    stable=self.rev({"revision": stable["revision"]}),
                    healthy=stable["healthy"],
                    total=stable["total"],
                )
            )
        if f["rollback_verified"]:
            details.append(w("health_verified", verified=f["rollback_verified"]))
        details.extend(self.step(p) for p in f["problems"])
        return value, details

    def post_validation(self, f: JSON) -> Rendered:
        w = self.words
        head = self.check_counts(f) if f["configured"] else w("checks_none_post")
        final = f["final_analysis"]
        if final is None:
            tail = w("no_analysis")
        else:
            tail = w(
                "final_analysis",
                label=final["label"],
                judge=final["judge"] or "-",
                verdicts=final["verdicts"],
                outcome=self.status_word(final["outcome"]),
                reason=final["reason"] or "-",
            )
        return head + w("list_sep") + tail, self.check_lines(f)

    # monitoring
    def version_name(self, v: JSON) -> str:
        return self.rev(v)

    def availability(self, f: JSON) -> Rendered:
        if not f["measured"]:
            return self.not_measured(f), []
        value = self.words(
            "availability",
            percent=num(f["percent"]),
            requests=f["requests"],
            unserved=f["unserved"],
            connect=self.n(f["connect_errors"]),
            timeouts=self.n(f["timeouts"]),
            limit=num(f["limit_percent"]),
        )
        details = [
            self.words(
                "availability_version",
                revision=self.version_name(v),
                percent=self.pct(v["availability_percent"]).removesuffix("%"),
                requests=self.n(v["requests"]),
                unserved=self.n(v["unserved"]),
            )
            for v in f["versions"]
        ]
        return value, details

    def response_time(self, f: JSON) -> Rendered:
        w = self.words
        if not f["measured"]:
            return self.not_measured(f), []
        if f["source"] == "samples":
            details = [
                w("latency_sample_version", revision=self.version_name(v), p95=self.ms(v["p95_ms"]))
                for v in f["versions"]
            ]
            return w("latency_samples"), details
        value = w(
            "latency",
            average=self.ms(f["average_ms"]),
            p95=self.ms(f["p95_ms"]),
            p99=self.ms(f["p99_ms"]),
            p50=self.ms(f["p50_ms"]),
            p90=self.ms(f["p90_ms"]),
        )
        details = [
            w(
                "latency_version",
                revision=self.version_name(v),
                average=self.ms(v["average_ms"]),
                p95=self.ms(v["p95_ms"]),
                p99=self.ms(v["p99_ms"]),
            )
            for v in f["versions"]
        ]
        return value, details

    def error_rate(self, f: JSON) -> Rendered:
        w = self.words
        if not f["measured"]:
            return self.not_measured(f), []
        slots = {
            "percent": num(f["percent"]),
            "errors": self.n(f["errors_5xx"]),
            "requests": self.n(f["requests"]),
            "limit": num(f["limit_percent"]),
        }
        if f["source"] == "samples":
            value = w("error_rate_samples", **slots)
        else:
            value = w("error_rate", client=self.n(f["responses_4xx"]), **slots)
        details = [
            w(
                "error_rate_version",
                revision=self.version_name(v),
                percent=self.pct(v["error_rate_percent"]).removesuffix("%"),
                errors=self.n(v["errors_5xx"]),
                requests=self.n(v["requests"]),
            )
            for v in f["versions"]
        ]
        return value, details

    def throughput(self, f: JSON) -> Rendered:
        w = self.words
        if not f["measured"]:
            return self.not_measured(f), []
        value = w(
            "throughput",
            rps=num(f["rps"]),
            requests=self.n(f["requests"]),
            seconds=self.n(f["seconds"]),
            per_instance=self.n(f["per_instance_rps"]),
            replicas=f["replicas"],
        )
        details = [
            w(
                "throughput_version",
                revision=self.version_name(v),
                rps=self.n(v["rps"]),
                requests=self.n(v["requests"]),
            )
            for v in f["versions"]
        ]
        return value, details

    # performance
    def rule_value(self, rule: JSON) -> str:
        w = self.words
        if not rule["measured"]:
            return self.na
        value = rule["value"]
        shown = {
            "cpu_peak": self.pct,
            "memory_peak": self.pct,
            "disk_peak": self.pct,
            "new_error_rate": self.pct,
        }.get(rule["id"], self.n)(value)
        if rule["id"] == "latency_regression":
            new, base = self.ms(rule["new_p95_ms"]), self.ms(rule["baseline_p95_ms"])
            shown = f"{num(value)}× ({new} / {base})"
        state = w("triggered") if rule["triggered"] else w("not_triggered")
        return w("rule_value", value=shown, state=state)

    def bottlenecks(self, f: JSON) -> Rendered:
        w = self.words
        details = [
            w(f"rule_{r['id']}", threshold=num(r["threshold"]), value=self.rule_value(r))
            for r in f["rules"]
        ]
        if f["triggered"]:
            names = ", ".join(w(f"short_{name}") for name in f["triggered"])
            found = w(
                "bottlenecks_found",
                count=len(f["triggered"]),
                names=names,
                measured=f["measured"],
                total=f["total"],
            )
            return found, details
        return w("bottlenecks_none", measured=f["measured"], total=f["total"]), details

    def advice(self, item: JSON) -> str:
        w = self.words
        kind = item["id"]
        if kind in ("add_cpu", "add_memory", "free_disk"):
            return w(f"advice_{kind}", value=num(item["value"]), threshold=num(item["threshold"]))
        if kind == "over_provisioned":
            return w(
                "advice_over_provisioned",
                cpu=num(item["cpu_peak"]),
                cpu_threshold=num(item["cpu_threshold"]),
                memory=num(item["memory_peak"]),
                memory_threshold=num(item["memory_threshold"]),
            )
        if kind == "profile_latency":
            return w(
                "advice_profile_latency",
                new=self.ms(item["new_p95_ms"]),
                baseline=self.ms(item["baseline_p95_ms"]),
                ratio=num(item["ratio"]),
                threshold=num(item["threshold"]),
            )
        if kind == "memory_limit":
            return w(
                "advice_memory_limit",
                peak=self.qty(item["instance_peak"]),
                factor=num(item["factor"]),
                suggested=self.qty(item["suggested"]),
            )
        if kind == "within_range":
            return w(
                "advice_within_range",
                cpu=self.pct(item["cpu_peak"]),
                low=num(item["cpu_low"]),
                high=num(item["cpu_high"]),
                memory=self.pct(item["memory_peak"]),
                memory_high=num(item["memory_high"]),
                disk=self.pct(item["disk_peak"]),
                disk_high=num(item["disk_high"]),
            )
        return w("advice_not_measured", reason=self.reason(item["reason"]))

    def listed(self, texts: list[str]) -> Rendered:
        """One item inline; several as a count with one nested line each."""
        if len(texts) == 1:
            return texts[0], []
        return self.words("items", count=len(texts)), texts

    def resource_optimization(self, f: JSON) -> Rendered:
        return self.listed([self.advice(item) for item in f["items"]])

    def scaling(self, f: JSON) -> Rendered:
        w = self.words
        details = []
        if f["rps"] is not None:
            details.append(
                w("scaling_rps", rps=num(f["rps"]), per_instance=self.n(f["per_instance_rps"]))
            )
        if f["estimated_capacity_rps"] is not None:
            details.append(
                w(
                    "scaling_capacity",
                    cpu=num(f["cpu_average_percent"]),
                    target=num(f["target_cpu_percent"]),
                    capacity=num(f["estimated_capacity_rps"]),
                    headroom=num(f["headroom_factor"]),
                )
            )
        recommendation = f["recommendation"]
        if recommendation == "not_measured":
            return w(
                "scaling_not_measured", reason=self.reason(f["reason"]), replicas=f["replicas"]
            ), details
        slots = {
            "replicas": f["replicas"],
            "peak": num(f["cpu_peak_percent"]),
            "target": num(f["target_cpu_percent"]),
            "recommended": f["recommended_replicas"],
        }
        if recommendation == "scale_out":
            return w("scaling_out", **slots), details
        if recommendation == "scale_in":
            return (
                w(
                    "scaling_in",
                    below=num(f["scale_in_below_percent"]),
                    minimum=f["min_replicas"],
                    **slots,
                ),
                details,
            )
        return w("scaling_keep", **slots), details

    # events
    def events(self, f: JSON) -> Rendered:
        w = self.words
        if not f["count"]:
            return w("events_none", samples=f["samples"]), []
        kinds = ", ".join(w("event_kind", kind=k, count=c) for k, c in f["by_kind"].items())
        details = [self.step(s) for s in f["timeline"]]
        if f["omitted"]:
            details.insert(f["omitted_after"], w("events_omitted", count=f["omitted"]))
        return w("events", count=f["count"], samples=f["samples"], kinds=kinds), details

    def alerts(self, f: JSON) -> Rendered:
        w = self.words
        if not f["count"]:
            return w("alerts_none"), []
        details = []
        for alert in f["alerts"]:
            when = f"+{num(alert['offset_s'])} s " if alert["offset_s"] is not None else ""
            message = f": {alert['message']}" if alert["message"] else ""
            details.append(
                w(
                    "alert_line",
                    name=alert["name"],
                    severity=alert["severity"] or "-",
                    when=when,
                    message=message,
                ).replace(" :", ":")
            )
        return w("alerts_count", count=f["count"]), details

    def incident(self, f: JSON) -> Rendered:
        w = self.words
        kind = f["kind"]
        if kind is None:
            return w("incident_none"), []
        if kind == "failed":
            return w("incident_failed", reason=f["reason"] or "-"), []
        if kind == "drill":
            return w("incident_drill"), []
        if kind == "drill_failed":
            return w("incident_drill_failed", reason=f["reason"] or "-"), []
        if kind in ("backup", "retention") or (kind == "restore" and not f["replaced_live"]):
            return w(f"incident_{kind}"), []
        if kind == "restore":
            return w("incident_restore_live"), []
        if kind in ("backup_failed", "restore_failed", "retention_failed"):
            return w(f"incident_{kind}", reason=f["reason"] or "-"), []
        target = self.rev(f["restored"])
        within = w("within") if f.get("within_target") else w("not_within")
        if kind == "manual_rollback":
            details = []
            if f["rollback_ms"] is not None:
                details.append(
                    w(
                        "incident_switched_short",
                        took=self.ms(f["rollback_ms"]),
                        target=target,
                        within=within,
                        limit=num(f["target_s"]),
                    )
                )
            return w("incident_manual_rollback", target=target, reason=f["reason"] or "-"), details
        value = w(f"incident_{kind}", reason=f["reason"] or "-")
        details = []
        if f["started_offset_s"] is not None:
            details.append(w("incident_started", offset=num(f["started_offset_s"])))
        if f["rollback_ms"] is not None and f["rollback_apply_ms"] is None:
            details.append(
                w(
                    "incident_switched_short",
                    took=self.ms(f["rollback_ms"]),
                    target=target,
                    within=within,
                    limit=num(f["target_s"]),
                )
            )
        elif f["rollback_ms"] is not None:
            details.append(
                w(
                    "incident_switched",
                    took=self.ms(f["rollback_ms"]),
                    target=target,
                    apply=self.ms(f["rollback_apply_ms"]),
                    within=within,
                    limit=num(f["target_s"]),
                )
            )
        if f["verified"]:
            details.append(w("incident_verified", verified=f["verified"]))
        return value, details

    def lesson(self, item: JSON) -> str:
        w = self.words
        kind = item["id"]
        sep = w("list_sep")
        if kind == "rollback_by_analysis":
            failed = sep.join(f"{m['name']}: {m['detail']}" for m in item["failed"]) or "-"
            parts = [w("lesson_rollback_by_analysis", failed=failed)]
            if item["weight_percent"] is not None:
                parts.append(w("lesson_weight", weight=item["weight_percent"]))
            if item["exposure_percent"] is not None:
                parts.append(
                    w(
                        "lesson_exposure",
                        requests=item["new_requests"],
                        share=num(item["exposure_percent"]),
                    )
                )
            return sep.join(parts)
        if kind == "rollback_by_health":
            parts = [w("lesson_rollback_by_health", reason=item["reason"])]
            if item["exposure_percent"] is not None:
                parts.append(
                    w(
                        "lesson_exposure",
                        requests=item["new_requests"],
                        share=num(item["exposure_percent"]),
                    )
                )
            return sep.join(parts)
        if kind in ("rollback_by_user", "failed"):
            return w(f"lesson_{kind}", reason=item["reason"] or "-")
        if kind == "analyses_passed":
            text = w("lesson_analyses_passed", count=item["count"])
            if item["ratio"] is not None:
                text += sep + w(
                    "lesson_latency",
                    new=self.ms(item["new_p95_ms"]),
                    baseline=self.ms(item["baseline_p95_ms"]),
                    ratio=num(item["ratio"]),
                )
            return text
        if kind == "analysis_inconclusive":
            return w(
                "lesson_analysis_inconclusive",
                label=item["label"],
                needed=self.n(item["requests_needed"]),
                have=self.n(item["canary_requests"]),
            )
        if kind == "analysis_skipped":
            return w("lesson_analysis_skipped", label=item["label"])
        if kind == "instance_restarts":
            return w("lesson_instance_restarts", restarts=item["restarts"], crashes=item["crashes"])
        if kind in ("drill_rto", "drill_rpo"):
            return self.drill_objective(kind, item)
        if kind in ("backup_measured", "restore_measured", "retention_measured"):
            return self.operation_lesson(kind, item)
        if kind == "first_baseline":
            return w(
                "lesson_first_baseline_recorded"
                if item["recorded"]
                else "lesson_first_baseline_missing"
            )
        return w("lesson_nothing_notable")

    def drill_objective(self, kind: str, item: JSON) -> str:
        """``RTO 0.31 s, objective 300 s: met`` (or not reached, or no objective)."""
        w = self.words
        name = kind.removeprefix("drill_").upper()
        achieved, target = item["achieved_s"], item["target_s"]
        if achieved is None:
            return w("lesson_drill_not_reached", name=name)
        if target is None:
            return w("lesson_drill_no_objective", name=name, value=num(achieved))
        verdict = w("within") if achieved <= target else w("not_within")
        return w(
            "lesson_drill_objective",
            name=name,
            value=num(achieved),
            target=num(target),
            verdict=verdict,
        )

    def operation_lesson(self, kind: str, item: JSON) -> str:
        """What a backup, restore or retention run measured, as the next one's baseline."""
        w = self.words
        if kind == "retention_measured":
            text = w(
                "lesson_retention",
                kept=item["kept"],
                removed=item["removed"],
                removed_size=self.qty(item["removed_size"]),
                freed=self.qty(item["freed"]),
            )
            if item["prune_s"] is not None:
                text += w("list_sep") + w("lesson_prune", seconds=num(item["prune_s"]))
            return text
        slots = {
            "target": item["target"],
            "id": item["backup_id"],
            "size": self.qty(item["size"]),
            "seconds": self.n(item["seconds"]),
            "rate": self.qty(item["rate"]),
        }
        if kind == "restore_measured":
            return w("lesson_restore", age=self.n(item["data_age_s"]), **slots)
        text = w("lesson_backup", **slots)
        if item["growth_percent"] is not None:
            text += w("list_sep") + w(
                "lesson_backup_growth",
                previous=self.qty(item["previous_size"]),
                growth=num(item["growth_percent"]),
            )
        else:
            text += w("list_sep") + w("lesson_backup_first")
        return text

    def lessons(self, f: JSON) -> Rendered:
        return self.listed([self.lesson(item) for item in f["items"]])

    # recommendations
    def recommendation(self, prefix: str, item: JSON) -> str:
        w = self.words
        kind = item["id"]
        key = f"{prefix}_{kind}"
        slots = {k: v for k, v in item.items() if k != "id"}
        if "revision" in slots:
            slots["release"] = self.rev(
                {"revision": slots.pop("revision"), "version": slots.pop("version", "")}
            )
        for name in ("value", "threshold"):
            if name in slots:
                slots[name] = self.n(slots[name])
        if "rollback_ms" in slots:
            slots["took"] = self.ms(slots.pop("rollback_ms"))
            slots["limit"] = num(slots.pop("target_s"))
        if "requests_needed" in slots:
            slots["needed"] = self.n(slots.pop("requests_needed"))
        if slots.get("reason") == "":
            slots["reason"] = "-"
        return w(key, **slots)

    def items(self, prefix: str) -> Callable[[JSON], Rendered]:
        def render(f: JSON) -> Rendered:
            return self.listed([self.recommendation(prefix, item) for item in f["items"]])

        return render

    def capacity(self, f: JSON) -> Rendered:
        w = self.words
        if f["rps"] is not None:
            parts = [
                w(
                    "capacity_rps",
                    replicas=f["replicas"],
                    rps=num(f["rps"]),
                    per_instance=self.n(f["per_instance_rps"]),
                )
            ]
        else:
            parts = [w("capacity_instances", replicas=f["replicas"])]
        if f["estimated_capacity_rps"] is not None:
            parts.append(
                w(
                    "capacity_estimate",
                    target=num(f["target_cpu_percent"]),
                    cpu=num(f["cpu_average_percent"]),
                    capacity=num(f["estimated_capacity_rps"]),
                    headroom=num(f["headroom_factor"]),
                )
            )
        if f["recommended_replicas"] is not None:
            parts.append(w("capacity_replicas", recommended=f["recommended_replicas"]))
        if f["disk_free"] is not None:
            parts.append(
                w(
                    "capacity_disk",
                    free=self.qty(f["disk_free"]),
                    peak=self.n(f["disk_peak_percent"]),
                )
            )
        if f["memory_peak_percent"] is not None:
            parts.append(
                w(
                    "capacity_memory",
                    peak=num(f["memory_peak_percent"]),
                    total=self.qty(f["memory_total"]),
                )
            )
        if not f["measured"]:
            parts.append(w("capacity_not_measured", reason=self.reason(f["reason"])))
        storage = f.get("backup_storage")
        if storage:
            parts.append(
                w(
                    "capacity_backup_storage",
                    path=storage["path"],
                    free=self.qty(storage["free"]),
                    total=self.qty(storage["total"]),
                    used=self.n(storage["used_percent"]),
                    count=self.n(storage["service_backup_count"]),
                    size=self.qty(storage["service_backups"]),
                )
            )
        return w("list_sep").join(parts), []

    def next_actions(self) -> list[str]:
        lines = []
        for item in self.report["sections"]["next_actions"]["extra"]:
            prefix = "urgent" if f"urgent_{item['id']}" in _URGENT_KEYS else "prevent"
            lines.append(self.recommendation(prefix, item))
        return lines


_STATUS_KEYS = frozenset(f"status_{s}" for s in ("pass", "warn", "fail", "inconclusive", "skipped"))
_TIMING_KEYS = frozenset(
    f"timing_{s}" for s in ("switch", "switch_apply", "rollback", "rollback_apply")
)
_URGENT_KEYS = frozenset(
    f"urgent_{s}"
    for s in (
        "fix_release",
        "review_abort",
        "service_down",
        "drill_failed",
        "backup_failed",
        "restore_failed",
        "retention_failed",
        "restore_instances",
        "postcheck_failed",
        "review_alerts",
        "free_disk",
    )
)
