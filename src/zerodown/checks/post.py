"""Post-deployment validation: does the new release, now serving, behave?

Once the new release has all the traffic, four checks look at it from different sides, each
giving ``CheckResult`` values and never raising for a failed check:

* **smoke tests**: real HTTP requests (method, path, headers, body) whose answers must have
  the expected status, contain a text, and hold JSON fields (``{"data.version": "2"}``);
* **performance**: the new p95 latency against the previous release's recorded p95;
* **logs**: lines of the new instances' logs matching error patterns;
* **feedback**: the share of client errors (4xx) and of requests the clients abandoned, and
  optionally an endpoint (a feedback or error-tracking service) that must answer 2xx.

The judging parts are pure functions of the numbers they are given; only the smoke tests and
the feedback endpoint touch the network. ``run_postchecks`` runs what the spec configures and
lists the rest as not configured, so the report can show every item.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterable
from typing import Any, Final

import httpx

from zerodown.checks.base import CheckResult, CheckStatus, describe_error, worst_status
from zerodown.core.errors import InputError
from zerodown.spec import defaults
from zerodown.spec.models import ServiceSpec, SmokeTestSpec

__all__ = [
    "MAX_LOG_EXAMPLES",
    "check_feedback",
    "check_performance",
    "json_lookup",
    "json_matches",
    "not_configured",
    "run_postchecks",
    "run_smoke_tests",
    "scan_logs",
]

MAX_LOG_EXAMPLES: Final = 5
"""Matching log lines kept as examples in a log scan's figures."""
_MAX_LINE: Final = 300
_USER_AGENT: Final = "zerodown-check"


def not_configured(name: str) -> CheckResult:
    """A placeholder result for a check the spec does not configure."""
    return CheckResult(name, "pass", "not configured", {"configured": False})


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"


# ---------------------------------------------------------------------------------------------
# Smoke tests


def run_smoke_tests(spec: ServiceSpec, *, base_url: str) -> list[CheckResult]:
    """Send each smoke test of ``spec`` to ``base_url``; one ``smoke:<name>`` result each."""
    tests = spec.checks.post.smoke
    if not tests:
        return []
    # Not from the environment: the release is on this machine, never behind HTTP_PROXY.
    with httpx.Client(base_url=base_url, trust_env=False, follow_redirects=False) as client:
        return [_smoke_test(client, test) for test in tests]


def _smoke_test(client: httpx.Client, test: SmokeTestSpec) -> CheckResult:
    name = f"smoke:{test.name}"
    request = f"{test.method} {test.path}"
    figures: dict[str, Any] = {
        "method": test.method,
        "path": test.path,
        "expect_status": test.expect_status,
    }
    headers = httpx.Headers({"User-Agent": _USER_AGENT})
    headers.update(test.headers)  # case-insensitive: a written User-Agent replaces ours
    started = time.perf_counter()
    try:
        response = client.request(
            test.method,
            test.path,
            headers=headers,
            content=test.body.encode() if test.body is not None else None,
            timeout=test.timeout,
        )
    except httpx.HTTPError as exc:
        elapsed = time.perf_counter() - started
        detail = describe_error(exc, test.timeout)
        figures["error"] = detail
        return CheckResult(name, "fail", f"{request}: {detail}", figures, elapsed)
    elapsed = time.perf_counter() - started
    figures.update(
        url=str(response.url),
        status=response.status_code,
        latency_s=round(elapsed, 6),
        body_bytes=len(response.content),
    )
    failures = _smoke_failures(test, response)
    figures["failures"] = failures
    if failures:
        return CheckResult(name, "fail", f"{request}: " + "; ".join(failures), figures, elapsed)
    checked = [f"answered {response.status_code} in {_ms(elapsed)}"]
    if test.expect_body is not None:
        checked.append(f"body contains {test.expect_body!r}")
    if test.expect_json:
        checked.append(f"JSON holds {', '.join(test.expect_json)}")
    return CheckResult(name, "pass", f"{request} " + ", ".join(checked), figures, elapsed)


def _smoke_failures(test: SmokeTestSpec, response: httpx.Response) -> list[str]:
    failures: list[str] = []
    if response.status_code != test.expect_status:
        failures.append(f"status {response.status_code} (expected {test.expect_status})")
    if test.expect_body is not None and test.expect_body not in response.text:
        failures.append(f"body does not contain {test.expect_body!r}")
    if test.expect_json:
        try:
            document = json.loads(response.content)
        except ValueError:
            failures.append("body is not JSON")
            return failures
        for key, expected in test.expect_json.items():
            found, actual = json_lookup(document, key)
            if not found:
                failures.append(f"no {key} in the JSON body")
            elif not json_matches(expected, actual):
                failures.append(f"{key} is {_json_text(actual)} (expected {_json_text(expected)})")
    return failures


def _json_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def json_lookup(document: Any, key: str) -> tuple[bool, Any]:
    """``(found, value)`` at ``key`` in a JSON document: a top-level key as written, else a
    dotted path whose parts are mapping keys or list indexes (``items.0.id``)."""
    if isinstance(document, dict) and key in document:
        return True, document[key]
    current = document
    for part in key.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def json_matches(expected: Any, actual: Any) -> bool:
    """Does ``actual`` hold ``expected``? A mapping must contain the expected keys (recursively),
    a list must match item by item, anything else must be equal; ``true`` is not ``1``."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and json_matches(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(json_matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and expected == actual
    return type(expected) is type(actual) and bool(expected == actual)


# ---------------------------------------------------------------------------------------------
# Performance


def check_performance(
    *,
    p95_new: float | None,
    p95_previous: float | None,
    max_ratio: float,
    min_increase_s: float = 0.0,
) -> CheckResult:
    """The new p95 latency (seconds) against the previous release's. Pure.

    Fails when ``p95_new / p95_previous`` exceeds ``max_ratio`` and the new p95 is also more
    than ``min_increase_s`` slower (a noise floor for very fast services). ``warn`` when the
    new release has no p95; ``pass`` with a note when there is nothing to compare with.
    """
    figures: dict[str, Any] = {
        "p95_new_s": p95_new,
        "p95_previous_s": p95_previous,
        "ratio": None,
        "max_ratio": max_ratio,
        "min_increase_s": min_increase_s,
    }
    if p95_new is None:
        return CheckResult(
            "performance",
            "warn",
            "no p95 latency measured for the new release (no requests reached it?)",
            figures,
        )
    if p95_previous is None or p95_previous <= 0:
        return CheckResult(
            "performance",
            "pass",
            f"p95 {_ms(p95_new)}; no previous p95 recorded to compare with",
            figures,
        )
    ratio = p95_new / p95_previous
    figures["ratio"] = round(ratio, 4)
    compared = f"p95 {_ms(p95_new)} vs {_ms(p95_previous)} before: {ratio:.2f}x"
    if ratio <= max_ratio:
        return CheckResult("performance", "pass", f"{compared} (limit {max_ratio:g}x)", figures)
    if p95_new - p95_previous <= min_increase_s:
        return CheckResult(
            "performance",
            "pass",
            f"{compared}, above {max_ratio:g}x but within the {_ms(min_increase_s)} noise floor",
            figures,
        )
    return CheckResult(
        "performance", "fail", f"{compared}, above the {max_ratio:g}x limit", figures
    )


# ---------------------------------------------------------------------------------------------
# Logs


def scan_logs(
    lines: Iterable[tuple[float, str, str]],
    *,
    patterns: Iterable[str],
    max_matches: int,
) -> CheckResult:
    """Count log lines matching any of ``patterns`` (regular expressions, searched). Pure.

    ``lines`` are ``(unix time, instance id, line)``. Fails when more than ``max_matches``
    lines match; figures count each pattern and keep the first ``MAX_LOG_EXAMPLES`` lines.
    ``InputError`` for a pattern that is not a regular expression.
    """
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise InputError(f"log pattern {pattern!r} is not a regular expression: {exc}") from exc
    started = time.perf_counter()
    by_pattern = {p.pattern: 0 for p in compiled}
    examples: list[dict[str, Any]] = []
    scanned = matched = 0
    for ts, instance, line in lines:
        scanned += 1
        hits = [p for p in compiled if p.search(line)]
        if not hits:
            continue
        matched += 1
        for hit in hits:
            by_pattern[hit.pattern] += 1
        if len(examples) < MAX_LOG_EXAMPLES:
            text = line.rstrip("\r\n")
            examples.append(
                {
                    "ts": ts,
                    "instance": instance,
                    "pattern": hits[0].pattern,
                    "line": text if len(text) <= _MAX_LINE else text[: _MAX_LINE - 3] + "...",
                }
            )
    figures: dict[str, Any] = {
        "lines_scanned": scanned,
        "matches": matched,
        "max_matches": max_matches,
        "by_pattern": by_pattern,
        "examples": examples,
    }
    elapsed = time.perf_counter() - started
    if not compiled:
        return CheckResult("logs", "pass", "no patterns to look for", figures, elapsed)
    names = ", ".join(by_pattern)
    if matched == 0:
        summary = f"none of {scanned} log lines matches {names}"
        return CheckResult("logs", "pass", summary, figures, elapsed)
    counts = ", ".join(f"{p} {n}" for p, n in by_pattern.items() if n)
    first = examples[0]
    when = dt.datetime.fromtimestamp(first["ts"], dt.UTC).strftime("%H:%M:%S")
    summary = (
        f"{matched} of {scanned} log lines match ({counts}), at most {max_matches} allowed; "
        f"first on {first['instance']} at {when} UTC: {first['line'][:120]}"
    )
    status: CheckStatus = "fail" if matched > max_matches else "pass"
    return CheckResult("logs", status, summary, figures, elapsed)


# ---------------------------------------------------------------------------------------------
# Feedback


def check_feedback(
    *,
    requests: int,
    responses_4xx: int,
    client_aborts: int | None,
    max_4xx_rate: float,
    max_abort_rate: float,
    url: str | None,
    timeout: float = defaults.DEFAULT_SMOKE_TIMEOUT_SECONDS,
) -> CheckResult:
    """Client errors and abandoned requests against their limits, and ``url`` if given.

    ``client_aborts`` None means the data plane does not measure them: the summary says so and
    they are not judged. ``warn`` when no request reached the release (nothing to judge).
    """
    started = time.perf_counter()
    figures: dict[str, Any] = {
        "requests": requests,
        "responses_4xx": responses_4xx,
        "rate_4xx": None,
        "max_4xx_rate": max_4xx_rate,
        "client_aborts": client_aborts,
        "abort_rate": None,
        "max_abort_rate": max_abort_rate,
        "url": url,
    }
    findings: list[tuple[CheckStatus, str]] = []
    if requests <= 0:
        findings.append(("warn", "no requests reached the new release: no feedback to judge"))
    else:
        rate = responses_4xx / requests
        figures["rate_4xx"] = round(rate, 6)
        text = f"4xx {_percent(rate)} of {requests} requests (limit {_percent(max_4xx_rate)})"
        findings.append(("fail" if rate > max_4xx_rate else "pass", text))
        if client_aborts is None:
            findings.append(("pass", "client aborts not measured"))
        else:
            aborts = client_aborts / requests
            figures["abort_rate"] = round(aborts, 6)
            text = f"client aborts {_percent(aborts)} (limit {_percent(max_abort_rate)})"
            findings.append(("fail" if aborts > max_abort_rate else "pass", text))
    if url is not None:
        findings.append(_ask_feedback_endpoint(url, timeout, figures))
    status = worst_status(s for s, _ in findings)
    shown = [text for s, text in findings if s == status] if status != "pass" else []
    summary = "; ".join(shown or [text for _, text in findings])
    return CheckResult("feedback", status, summary, figures, time.perf_counter() - started)


def _ask_feedback_endpoint(
    url: str, timeout: float, figures: dict[str, Any]
) -> tuple[CheckStatus, str]:
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            response = client.get(url, headers={"User-Agent": _USER_AGENT})
    except httpx.HTTPError as exc:
        detail = describe_error(exc, timeout)
        figures["url_error"] = detail
        return "fail", f"feedback endpoint {url}: {detail}"
    figures["url_status"] = response.status_code
    if not 200 <= response.status_code < 300:
        return "fail", f"feedback endpoint {url} answered {response.status_code}, not 2xx"
    return "pass", f"feedback endpoint answered {response.status_code}"


# ---------------------------------------------------------------------------------------------
# All of them


def run_postchecks(
    spec: ServiceSpec,
    *,
    base_url: str,
    p95_new: float | None = None,
    p95_previous: float | None = None,
    log_lines: Iterable[tuple[float, str, str]] | None = None,
    requests: int | None = None,
    responses_4xx: int = 0,
    client_aborts: int | None = None,
) -> list[CheckResult]:
    """The configured post-deployment checks in report order (smoke, performance, logs,
    feedback); each one not configured appears as ``pass`` / "not configured".

    A configured check whose input the caller could not measure (no log lines, no request
    counts) is a ``warn`` saying so.
    """
    post = spec.checks.post
    results = run_smoke_tests(spec, base_url=base_url) or [not_configured("smoke")]
    if post.performance is None:
        results.append(not_configured("performance"))
    else:
        results.append(
            check_performance(
                p95_new=p95_new,
                p95_previous=p95_previous,
                max_ratio=post.performance.max_p95_ratio,
                min_increase_s=spec.analysis.min_latency_increase,
            )
        )
    if post.logs is None:
        results.append(not_configured("logs"))
    elif log_lines is None:
        results.append(CheckResult("logs", "warn", "the new instances' logs were not collected"))
    else:
        results.append(
            scan_logs(log_lines, patterns=post.logs.patterns, max_matches=post.logs.max_matches)
        )
    if post.feedback is None:
        results.append(not_configured("feedback"))
    elif requests is None:
        results.append(
            CheckResult("feedback", "warn", "request counts of the new release were not measured")
        )
    else:
        results.append(
            check_feedback(
                requests=requests,
                responses_4xx=responses_4xx,
                client_aborts=client_aborts,
                max_4xx_rate=post.feedback.max_4xx_rate,
                max_abort_rate=post.feedback.max_client_abort_rate,
                url=post.feedback.url,
            )
        )
    return results
