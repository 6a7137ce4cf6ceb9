"""The monitor's samples reach a real PostgreSQL whatever one round holds.

Two slot-0 instances of one version run at once during a same-version redeploy; a collector may
publish one series twice in a round; a label may be longer than PostgreSQL can index. None of
these may stop the monitor from saving the other samples, then or in later rounds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zerodown.core.samples import MetricSample
from zerodown.core.types import InstanceId, Revision, ServiceName, Version
from zerodown.monitor import collect
from zerodown.monitor.history import SeriesHistory
from zerodown.store import open_store
from zerodown.store.base import InstanceRecord
from zerodown.store.monitor import MonitorTables

pytestmark = pytest.mark.postgres

T0 = 1_700_000_040.0
HOUR = 3600.0


@pytest.fixture
def tables(postgres_database_url: str, tmp_path: Path) -> Iterator[MonitorTables]:
    store = open_store(postgres_database_url, state_dir=tmp_path)
    assert isinstance(store, MonitorTables)
    yield store
    store.close()


def instance(revision: int, instance_id: str, restarts: int) -> InstanceRecord:
    return InstanceRecord(
        id=InstanceId(instance_id),
        service=ServiceName("web"),
        revision=Revision(revision),
        version=Version("v1"),
        slot=0,
        platform="local",
        host="127.0.0.1",
        port=8000 + revision,
        pid=None,
        started_at=T0,
        log_path=None,
        state="running",
        restarts=restarts,
    )


def test_a_same_version_redeploy_and_a_repeated_series_are_all_saved(
    tables: MonitorTables,
) -> None:
    history = SeriesHistory(tables, memory_retention=HOUR)
    live = [instance(1, "web-a", 2), instance(2, "web-b", 0)]  # old and new release, slot 0
    twice = [
        MetricSample(name="jobs_queued", value=3.0, labels={"service": "web"}),
        MetricSample(name="jobs_queued", value=4.0, labels={"service": "web"}),
    ]
    for i in range(3):
        history.record("web", collect.instance_samples("web", live, {}), T0 + 15 * i)
        history.record("collectors", twice, T0 + 15 * i)
        assert history.flush() == 3
    restarts = tables.read_samples(
        since=0, until=T0 + HOUR, service="web", names=["zerodown_instance_restarts_total"]
    )
    assert sorted({(r.key, r.value) for r in restarts}) == [
        ('{"__name__":"zerodown_instance_restarts_total","revision":"1","service":"web",'
         '"slot":"0","version":"v1"}', 2.0),
        ('{"__name__":"zerodown_instance_restarts_total","revision":"2","service":"web",'
         '"slot":"0","version":"v1"}', 0.0),
    ]  # fmt: skip
    queued = tables.read_samples(since=0, until=T0 + HOUR, service="web", names=["jobs_queued"])
    assert [r.value for r in queued] == [4.0, 4.0, 4.0]
    assert history.queued == 0 and sum(history.dropped.values()) == 0


def test_a_series_too_long_to_index_is_left_out_and_the_rest_is_saved(
    tables: MonitorTables,
) -> None:
    history = SeriesHistory(tables, memory_retention=HOUR)
    huge = MetricSample(
        name="request_path",
        value=1.0,
        labels={"service": "web", "path": "".join(f"/{i:x}" for i in range(2000))},
    )
    ok = MetricSample(name="jobs_queued", value=1.0, labels={"service": "web"})
    for i in range(3):
        history.record("collectors", [huge, ok], T0 + 15 * i)
        assert history.flush() == 1
    stored = tables.read_samples(since=0, until=T0 + HOUR, service="web")
    assert [r.key for r in stored] == ['{"__name__":"jobs_queued","service":"web"}'] * 3
    assert history.dropped["labels_too_long"] == 3 and history.queued == 0
