"""Every judge on degenerate input: no traffic, nothing but errors, one-bucket histograms.

A judge is a pure function of its input and must answer every window the engine can build,
however odd, with a verdict that serialises; these tests feed each registered judge seeded
random degenerate windows and pin the answers that every judge must agree on.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from zerodown.analysis import (
    AnalysisInput,
    Outcome,
    Verdict,
    VersionWindow,
    judge_for,
    judge_names,
)
from zerodown.spec.models import AnalysisSpec

INF = math.inf


def random_histogram(
    rng: random.Random, requests: int
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """One of the odd shapes a histogram can take, holding up to ``requests`` latencies."""
    shape = rng.choice(["empty", "one bucket", "zero edge", "only infinite", "sparse"])
    if shape == "empty":
        return (), ()
    if shape == "one bucket":
        return (0.010,), (requests,)
    if shape == "zero edge":  # a first bucket [0, 0]: latencies of exactly zero
        return (0.0, 0.001, INF), (requests, 0, 0) if rng.random() < 0.5 else (0, 0, requests)
    if shape == "only infinite":
        return (INF,), (requests,)
    edges = sorted({round(rng.uniform(0.0001, 2.0), 4) for _ in range(rng.randint(1, 6))})
    bounds = (*edges, INF)
    counts = [0] * len(bounds)
    for _ in range(requests):
        counts[rng.randrange(len(bounds))] += 1
    return bounds, tuple(counts)


def random_window(rng: random.Random) -> VersionWindow:
    requests = rng.choice([0, 1, 2, rng.randint(0, 300)])
    errors = rng.choice([0, requests, rng.randint(0, requests)])
    bounds, counts = random_histogram(rng, requests)
    return VersionWindow(
        requests=requests,
        errors=errors,
        unavailable=rng.choice([0, errors]),
        latency_bounds=bounds,
        latency_counts=counts,
    )


def random_config(rng: random.Random, name: str) -> AnalysisSpec:
    fields: dict[str, Any] = {
        "judge": name,
        "min_requests": rng.choice([1, 2, 100]),
        "max_error_rate": rng.choice([0.0, 0.05, 1.0]),
        "max_latency_ratio": rng.choice([1.01, 2.0]),
        "min_latency_increase": rng.choice([0.0, 0.005]),
        "alpha": rng.choice([0.001, 0.01, 0.49]),
    }
    return AnalysisSpec(**fields)


@pytest.mark.parametrize("name", judge_names())
def test_every_judge_answers_degenerate_windows_with_a_verdict_that_serialises(name: str) -> None:
    rng = random.Random(f"degenerate {name}")
    judge = judge_for(name)
    for _ in range(400):
        data = AnalysisInput(
            canary=random_window(rng),
            baseline=rng.choice([None, random_window(rng)]),
            recorded_baseline_latency=rng.choice([None, 0.0, 0.02, -1.0, INF, math.nan]),
            unhealthy_instances=rng.choice([(), ("web-1",)]),
        )
        verdict = judge.judge(data, random_config(rng, name))
        assert verdict.judge == name
        assert verdict.outcome in set(Outcome)
        text = json.dumps(verdict.to_dict(), allow_nan=False)
        assert Verdict.from_dict(json.loads(text)).outcome is verdict.outcome


@pytest.mark.parametrize("name", judge_names())
@pytest.mark.parametrize(
    "baseline",
    [None, VersionWindow(requests=0, errors=0), VersionWindow(requests=500, errors=10)],
    ids=["no baseline", "idle baseline", "busy baseline"],
)
def test_without_canary_traffic_every_judge_is_inconclusive(
    name: str, baseline: VersionWindow | None
) -> None:
    data = AnalysisInput(canary=VersionWindow(requests=0, errors=0), baseline=baseline)
    verdict = judge_for(name).judge(data, AnalysisSpec(judge=name))
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.requests_needed == 100


@pytest.mark.parametrize("name", ["sequential", "mann-whitney"])
def test_the_comparing_judges_are_inconclusive_when_both_versions_fail_everything(
    name: str,
) -> None:
    # The thresholds judge holds the canary to max_error_rate alone, so it fails it instead.
    data = AnalysisInput(
        canary=VersionWindow(requests=300, errors=300),
        baseline=VersionWindow(requests=3000, errors=3000),
    )
    verdict = judge_for(name).judge(data, AnalysisSpec(judge=name))
    assert verdict.outcome is Outcome.INCONCLUSIVE
