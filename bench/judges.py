"""The judges compared by seeded simulation, in one run: ``python bench/judges.py``.

Thousands of simulated canaries, each served for up to 10 minutes (``max_wait``'s default)
next to its baseline at 200 requests/s in total, the canary taking 5 % or 25 % of them. The
baseline fails 2 % of its requests and answers in a lognormal time (median 20 ms, sigma 0.5).
Good canaries are identical to it; bad ones fail 2x or 5x as often, or answer 1.5x or 3x slower.
Requests are drawn straight into the proxy's latency histogram (32 buckets per power of two),
so every judge sees what it would see in production. Each run feeds the same simulated traffic
to every judge, each asked the way it is run by default:

- ``thresholds`` as Argo Rollouts and Flagger run it: a query every 60 s (Flagger's interval)
  over the last 60 s, the rollout aborted on the first failed measurement (Argo's
  ``failureLimit`` 0, Flagger's threshold 1). The rules are the seed's: error rate above 5 %,
  p95 latency above ``max_latency_ratio`` times the baseline's (and 5 ms more).
- ``mann-whitney`` as Kayenta runs it: a judgement every 60 s over the window since the start.
- ``sequential`` every second (``interval: 1s``), and every 5 s (the default interval).

Every judge gets the same spec: the defaults (``alpha`` 0.01, ``min_requests`` 100,
``max_error_rate`` 5 %) except ``max_latency_ratio``, 1.25 instead of 2.0, so that a 1.5x
slowdown is a regression for all of them. The table gives, per scenario and judge, how often
the canary was rolled back within the 10 minutes (on good canaries: the false-alarm rate) and
the median and p90 of the canary requests served, and of the seconds elapsed, until the rollback
decision (``-`` when fewer than half, or a tenth, of the runs were rolled back).

The last line is the summary, on the issue's headline scenario (baseline errors 2 %, canary 5x,
canary weight 5 %): the sequential judge's median canary requests to roll back, checked every
second, divided by the thresholds judge's::

    sequential_vs_thresholds_requests_to_detect=<ratio>

With ``--error-test-runs N`` it also checks, on N good canaries per share, the sequential
judge's error test alone (a few milliseconds per canary instead of a fifth of a second), with
the request share estimated from the counts as the judge does and with the true weight: enough
runs to see whether its false alarms stay within their half of ``alpha``.

Pure Python and seeded (each run's traffic depends only on its scenario and number), so the
numbers are the same on every machine; two processes share the runs.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from statistics import NormalDist

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from zerodown.analysis import (  # noqa: E402
    AnalysisInput,
    MannWhitneyJudge,
    Outcome,
    SequentialJudge,
    ThresholdJudge,
    VersionWindow,
)
from zerodown.analysis.sequential import (  # noqa: E402
    DEFAULT_CONCENTRATION,
    beta_mixture_log_e_value,
)
from zerodown.spec.models import AnalysisSpec  # noqa: E402
from zerodown.traffic.base import latency_bucket, latency_bucket_bounds  # noqa: E402

TOTAL_RATE = 200  # requests per second, canary and baseline together
HORIZON = 600  # seconds: max_wait's default
BASELINE_ERROR_RATE = 0.02
MEDIAN_LATENCY = 0.020
LATENCY_SIGMA = 0.5
MAX_LATENCY_RATIO = 1.25
WINDOW = 60  # seconds: Flagger's interval, and Kayenta's judgement interval here
HEADLINE = "errors x5 at 5 %"
ERROR_SHARE_OF_ALPHA = 0.5  # the sequential judge splits alpha evenly: errors and latency

# The proxy's buckets from 0.5 ms to 2 s; a latency outside falls into the first or last one.
_FIRST = latency_bucket(500)
_LAST = latency_bucket(2_000_000)
LOWER = tuple(latency_bucket_bounds(i)[0] / 1e6 for i in range(_FIRST, _LAST + 1))
UPPER = tuple(latency_bucket_bounds(i)[1] / 1e6 for i in range(_FIRST, _LAST + 1))
_TABLE_SIZE = 1 << 16  # latencies are drawn from 65,536 equally likely quantiles


@dataclass(frozen=True)
class Scenario:
    name: str
    share: float  # the canary's share of the requests
    error_rate: float
    slowdown: float = 1.0

    @property
    def good(self) -> bool:
        return self.error_rate == BASELINE_ERROR_RATE and self.slowdown == 1.0


def scenarios() -> list[Scenario]:
    found = []
    for share in (0.05, 0.25):
        at = f"at {share:.0%}".replace("%", " %")
        found += [
            Scenario(f"good {at}", share, BASELINE_ERROR_RATE),
            Scenario(f"errors x2 {at}", share, 2 * BASELINE_ERROR_RATE),
            Scenario(f"errors x5 {at}", share, 5 * BASELINE_ERROR_RATE),
            Scenario(f"latency x1.5 {at}", share, BASELINE_ERROR_RATE, 1.5),
            Scenario(f"latency x3 {at}", share, BASELINE_ERROR_RATE, 3.0),
        ]
    return found


JUDGES = ("thresholds", "mann-whitney", "sequential 1 s", "sequential 5 s")
_CONFIGS = {
    "thresholds": AnalysisSpec(judge="thresholds", max_latency_ratio=MAX_LATENCY_RATIO),
    "mann-whitney": AnalysisSpec(judge="mann-whitney", max_latency_ratio=MAX_LATENCY_RATIO),
    "sequential": AnalysisSpec(judge="sequential", max_latency_ratio=MAX_LATENCY_RATIO),
}


# -- traffic -----------------------------------------------------------------------------------

_LATENCY_TABLES: dict[float, list[int]] = {}


def latency_table(slowdown: float) -> list[int]:
    """Bucket indices of 65,536 equally spaced quantiles of the latency distribution."""
    table = _LATENCY_TABLES.get(slowdown)
    if table is None:
        law = NormalDist(math.log(MEDIAN_LATENCY * slowdown), LATENCY_SIGMA)
        table = []
        for k in range(_TABLE_SIZE):
            seconds = math.exp(law.inv_cdf((k + 0.5) / _TABLE_SIZE))
            index = latency_bucket(int(seconds * 1e6)) - _FIRST
            table.append(min(max(index, 0), len(UPPER) - 1))
        _LATENCY_TABLES[slowdown] = table
    return table


def binomial(rng: random.Random, n: int, p: float) -> int:
    """A Binomial(n, p) draw, by geometric jumps between successes (cost ~ n min(p, 1 - p))."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    log_q = math.log1p(-p)
    count = position = 0
    while True:
        position += int(math.log(1.0 - rng.random()) / log_q) + 1
        if position > n:
            return count
        count += 1


@dataclass
class Version:
    """One version's cumulative counts, and where the current 60 s window started."""

    error_rate: float
    table: list[int]
    requests: int = 0
    errors: int = 0
    counts: list[int] = field(default_factory=lambda: [0] * len(UPPER))
    window_start: tuple[int, int, list[int]] = field(
        default_factory=lambda: (0, 0, [0] * len(UPPER))
    )
    first: int = len(UPPER)  # the span of buckets that counted something
    last: int = -1

    def serve(self, rng: random.Random, n: int) -> None:
        if not n:
            return
        self.requests += n
        self.errors += binomial(rng, n, self.error_rate)
        counts = self.counts
        drawn = rng.choices(self.table, k=n)
        for index in drawn:
            counts[index] += 1
        self.first = min(self.first, min(drawn))
        self.last = max(self.last, max(drawn))

    def cumulative(self) -> VersionWindow:
        return _window(self.requests, self.errors, self.counts, self.first, self.last)

    def start_window(self) -> None:
        self.window_start = (self.requests, self.errors, list(self.counts))

    def last_window(self) -> VersionWindow:
        requests, errors, counts = self.window_start
        diff = [now - then for now, then in zip(self.counts, counts, strict=True)]
        used = [i for i, count in enumerate(diff) if count]
        first, last = (used[0], used[-1]) if used else (len(UPPER), -1)
        return _window(self.requests - requests, self.errors - errors, diff, first, last)


def _window(
    requests: int, errors: int, counts: Sequence[int], first: int, last: int
) -> VersionWindow:
    """A window as the engine builds it: only the span ``first..last`` of buckets that counted.

    The bucket below the span is an empty one from 0 to the span's lower edge, as
    ``latency_histogram`` inserts it, so the first bucket keeps its real lower edge.
    """
    if last < first:
        return VersionWindow(requests=requests, errors=errors)
    bounds = (LOWER[first], *UPPER[first : last + 1])
    return VersionWindow(
        requests=requests,
        errors=errors,
        latency_bounds=bounds,
        latency_counts=(0, *counts[first : last + 1]),
    )


# -- one run -----------------------------------------------------------------------------------

Detection = tuple[int, int] | None  # (canary requests, seconds) at the rollback decision


def run_once(scenario: Scenario, run: int) -> dict[str, Detection]:
    """One canary, fed to every judge until each has rolled it back or the horizon is reached."""
    rng = random.Random(f"{scenario.name}/{run}")
    canary = Version(scenario.error_rate, latency_table(scenario.slowdown))
    baseline = Version(BASELINE_ERROR_RATE, latency_table(1.0))
    thresholds, mann_whitney, sequential = ThresholdJudge(), MannWhitneyJudge(), SequentialJudge()
    found: dict[str, Detection] = {}
    for second in range(1, HORIZON + 1):
        to_canary = binomial(rng, TOTAL_RATE, scenario.share)
        canary.serve(rng, to_canary)
        baseline.serve(rng, TOTAL_RATE - to_canary)
        at = (canary.requests, second)
        sequential_pending = "sequential 1 s" not in found or (
            "sequential 5 s" not in found and second % 5 == 0
        )
        if sequential_pending:
            data = AnalysisInput(canary=canary.cumulative(), baseline=baseline.cumulative())
            if sequential.judge(data, _CONFIGS["sequential"]).outcome is Outcome.FAIL:
                found.setdefault("sequential 1 s", at)
                if second % 5 == 0:
                    found.setdefault("sequential 5 s", at)
        if second % WINDOW == 0:
            if "thresholds" not in found:
                data = AnalysisInput(canary=canary.last_window(), baseline=baseline.last_window())
                if thresholds.judge(data, _CONFIGS["thresholds"]).outcome is Outcome.FAIL:
                    found["thresholds"] = at
            canary.start_window()
            baseline.start_window()
            if "mann-whitney" not in found:
                data = AnalysisInput(canary=canary.cumulative(), baseline=baseline.cumulative())
                if mann_whitney.judge(data, _CONFIGS["mann-whitney"]).outcome is Outcome.FAIL:
                    found["mann-whitney"] = at
        if len(found) == len(JUDGES):
            break
    return {judge: found.get(judge) for judge in JUDGES}


def run_many(task: tuple[Scenario, int, int]) -> list[dict[str, Detection]]:
    scenario, first, last = task
    return [run_once(scenario, run) for run in range(first, last)]


def error_test_false_alarm(task: tuple[float, int]) -> tuple[bool, bool]:
    """One good canary, errors only: does the error e-value reach the judge's threshold?

    Checked every second for the whole horizon, once with the request share estimated from the
    counts (what the judge does) and once with the true routing weight (what an exactly valid
    test would use). A cheap stand-in for thousands of full runs: the judge's other test,
    latency, raised no false alarm in the table's good runs.
    """
    share, run = task
    rng = random.Random(f"error test {share}/{run}")
    threshold = math.log(1 / (ERROR_SHARE_OF_ALPHA * _CONFIGS["sequential"].alpha))
    canary_requests = baseline_requests = canary_errors = baseline_errors = 0
    alarms = {"estimated": False, "true": False}
    for _ in range(HORIZON):
        to_canary = binomial(rng, TOTAL_RATE, share)
        canary_requests += to_canary
        baseline_requests += TOTAL_RATE - to_canary
        canary_errors += binomial(rng, to_canary, BASELINE_ERROR_RATE)
        baseline_errors += binomial(rng, TOTAL_RATE - to_canary, BASELINE_ERROR_RATE)
        shares = {"estimated": canary_requests / (canary_requests + baseline_requests)}
        shares["true"] = share
        for name, rho in shares.items():
            if not alarms[name]:
                log_e = beta_mixture_log_e_value(
                    hits=canary_errors,
                    misses=baseline_errors,
                    rho=rho,
                    concentration=DEFAULT_CONCENTRATION,
                )
                alarms[name] = log_e >= threshold
        if all(alarms.values()):
            break
    return alarms["estimated"], alarms["true"]


# -- the table ---------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (``inf`` counts as never rolled back)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def shown(value: float) -> str:
    return "-" if math.isinf(value) else f"{value:.0f}"


@dataclass
class Row:
    scenario: Scenario
    judge: str
    runs: int
    rolled_back: int
    requests: list[float]
    seconds: list[float]

    def median_requests(self) -> float:
        return quantile(self.requests, 0.5)

    def cells(self) -> list[str]:
        share = f"{self.rolled_back / self.runs:.1%}".replace("%", " %")
        return [
            self.scenario.name,
            self.judge,
            f"{share} ({self.rolled_back}/{self.runs})",
            shown(quantile(self.requests, 0.5)),
            shown(quantile(self.requests, 0.9)),
            shown(quantile(self.seconds, 0.5)),
            shown(quantile(self.seconds, 0.9)),
        ]


def rows_for(scenario: Scenario, results: list[dict[str, Detection]]) -> Iterator[Row]:
    for judge in JUDGES:
        detections = [result[judge] for result in results]
        yield Row(
            scenario=scenario,
            judge=judge,
            runs=len(detections),
            rolled_back=sum(d is not None for d in detections),
            requests=[math.inf if d is None else d[0] for d in detections],
            seconds=[math.inf if d is None else d[1] for d in detections],
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--good-runs", type=int, default=500, help="runs per good scenario")
    p.add_argument("--bad-runs", type=int, default=200, help="runs per bad scenario")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument(
        "--error-test-runs",
        type=int,
        default=0,
        help="also check the error test alone on this many good canaries per share",
    )
    args = p.parse_args(argv)

    started = time.monotonic()
    tasks: list[tuple[Scenario, int, int]] = []
    for scenario in scenarios():
        runs = args.good_runs if scenario.good else args.bad_runs
        tasks += [(scenario, first, min(first + 20, runs)) for first in range(0, runs, 20)]
    results: dict[str, list[dict[str, Detection]]] = {s.name: [] for s in scenarios()}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for (scenario, _, _), chunk in zip(tasks, pool.map(run_many, tasks), strict=True):
            results[scenario.name] += chunk
    rows = [row for s in scenarios() for row in rows_for(s, results[s.name])]
    elapsed = time.monotonic() - started
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)

    total = sum(len(r) for r in results.values())
    print(
        f"# {total} simulated canaries, {TOTAL_RATE} requests/s in total, up to {HORIZON} s "
        f"each; {date.today().isoformat()}, {elapsed:.0f} s on {args.workers} processes "
        f"({cpu.ru_utime + cpu.ru_stime:.0f} s of CPU)"
    )
    print()
    print(
        "| scenario | judge | rolled back | median canary requests | p90 canary requests "
        "| median s | p90 s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")
    print()
    headline = {row.judge: row for row in rows if row.scenario.name == HEADLINE}
    good = {row.judge: row for row in rows if row.scenario.name == "good at 5 %"}
    thresholds = headline["thresholds"].median_requests()
    for judge in ("sequential 1 s", "sequential 5 s", "mann-whitney"):
        ratio = headline[judge].median_requests() / thresholds
        print(
            f"{HEADLINE}: {judge} / thresholds median canary requests = {ratio:.3f} "
            f"(false alarms on good canaries at 5 %: {good[judge].rolled_back} of "
            f"{good[judge].runs}, thresholds {good['thresholds'].rolled_back})"
        )
    if args.error_test_runs:
        budget = ERROR_SHARE_OF_ALPHA * _CONFIGS["sequential"].alpha
        for share in (0.05, 0.25):
            tasks_e = [(share, run) for run in range(args.error_test_runs)]
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                alarms = list(pool.map(error_test_false_alarm, tasks_e, chunksize=50))
            estimated = sum(e for e, _ in alarms)
            true = sum(t for _, t in alarms)
            print(
                f"error test alone, good canaries at {share:.0%}: {estimated} false alarms in "
                f"{len(alarms)} with the estimated share, {true} with the true weight "
                f"(budget {budget:.1%})".replace("%", " %")
            )
    ratio = headline["sequential 1 s"].median_requests() / thresholds
    print(f"sequential_vs_thresholds_requests_to_detect={ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
