"""The live stream's figures (``api/sse.py``): rates over a trailing window, the snapshot."""

from __future__ import annotations

from zerodown.api.sse import TrafficWindow, live_snapshot
from zerodown.service import InstanceView, LiveView, ServiceView
from zerodown.traffic.base import GroupMetrics, LatencyHistogram, ServiceMetrics, latency_bucket


def _metrics(stable: int, canary: int, errors: int = 0) -> ServiceMetrics:
    def group(name: str, requests: int, failed: int) -> GroupMetrics:
        latency = LatencyHistogram.from_counts({latency_bucket(10_000): requests})
        responses = {"2xx": requests - failed, "5xx": failed}
        return GroupMetrics(group=name, requests=requests, responses=responses, latency=latency)

    return ServiceMetrics(
        service="web",
        groups={"r1": group("r1", stable, 0), "r2": group("r2", canary, errors)},
    )


def test_rates_cover_the_trailing_window_and_restart_after_a_counter_reset() -> None:
    window = TrafficWindow(span=10)
    assert window.per_group() == {}
    window.add(0.0, _metrics(0, 0))
    window.add(5.0, _metrics(400, 100, errors=5))
    window.add(10.0, _metrics(800, 200, errors=10))
    window.add(15.0, _metrics(1200, 300, errors=10))
    figures = window.per_group()
    assert window.seconds == 10.0  # from t=5 to t=15
    assert figures["r1"]["rate"] == 80.0 and figures["r2"]["rate"] == 20.0
    assert figures["r2"]["error_rate"] == 5 / 200
    assert 9.5 < figures["r2"]["p95_ms"] < 10.5
    assert figures[""]["requests"] == 1000
    window.add(16.0, _metrics(3, 1))  # the data plane restarted: counters went back
    assert window.per_group() == {}


def _view(release: dict[str, object] | None) -> LiveView:
    instances = [
        InstanceView(
            "web-r1-0", 1, "v1", 0, 10, "127.0.0.1:1", "running", "healthy", 0, None, None
        ),
        InstanceView(
            "web-r2-0", 2, "v2", 0, 11, "127.0.0.1:2", "starting", "unknown", 0, None, None
        ),
    ]
    service = ServiceView("web", "running", "/x/zerodown.yaml", "127.0.0.1:80", 1, None, instances)
    return LiveView(service=service, release=release, steps=[{"setWeight": 20}], traffic=None)


def test_a_snapshot_names_each_version_with_its_share_role_and_figures() -> None:
    release = {
        "revision": 2,
        "version": "v2",
        "strategy": "canary",
        "status": "paused",
        "reason": "step 2/3: paused",
        "state": {
            "weights": {"1": 80, "2": 20},
            "stable": 1,
            "phase": "steps",
            "step": 1,
            "paused": {"reason": "step 2/3: paused", "kind": "step"},
            "verdicts": [{"t": float(i), "outcome": "pass"} for i in range(15)],
        },
    }
    window = TrafficWindow()
    window.add(0.0, _metrics(0, 0))
    window.add(10.0, _metrics(800, 200))
    snap = live_snapshot(_view(release), window, now=1.0)
    versions = {v["revision"]: v for v in snap["versions"]}
    assert versions[1]["role"] == "stable" and versions[1]["share"] == 80.0
    assert versions[2]["role"] == "new" and versions[2]["ready"] == 0
    assert versions[2]["traffic"]["rate"] == 20.0
    assert snap["release"]["active"] is True and snap["release"]["step"] == 1
    assert len(snap["release"]["verdicts"]) == 10  # the newest ten
    assert snap["traffic_measured"] is False
    empty = live_snapshot(_view(None), TrafficWindow(), now=1.0)
    assert empty["release"] is None and empty["total"] is None
