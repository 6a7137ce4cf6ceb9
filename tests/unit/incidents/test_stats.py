"""MTTD and MTTR as distributions: percentiles, unknowns, histograms, per service."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.incidents.builders import T0, make_book
from zerodown.incidents.stats import Distribution, percentile


def test_percentiles_interpolate_linearly_between_the_nearest_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0.5) == 2.5
    assert percentile(values, 0.9) == pytest.approx(3.7)
    assert percentile(values, 0.0) == 1.0 and percentile(values, 1.0) == 4.0
    assert percentile([7.0], 0.9) == 7.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_a_distribution_keeps_every_value_sorted_with_median_p90_and_a_histogram() -> None:
    dist = Distribution.of([300.0, 5.0, 40.0, 20000.0], unknown=2)
    assert dist.values == (5.0, 40.0, 300.0, 20000.0)
    assert dist.count == 4 and dist.unknown == 2
    assert dist.median == 170.0
    assert dist.p90 == pytest.approx(300 + 0.7 * 19700)
    assert dist.mean == pytest.approx(5086.25)
    assert (dist.minimum, dist.maximum) == (5.0, 20000.0)
    assert dict(dist.buckets) == {
        "< 10 s": 1,
        "10 s - 1 min": 1,
        "1 - 5 min": 0,
        "5 - 15 min": 1,
        "15 - 60 min": 0,
        "1 - 4 h": 0,
        ">= 4 h": 1,
    }


def test_an_empty_distribution_has_no_figures_rather_than_zeros() -> None:
    dist = Distribution.of([], unknown=3).to_dict()
    assert dist["count"] == 0 and dist["unknown"] == 3
    assert dist["median_s"] is None and dist["p90_s"] is None and dist["mean_s"] is None


def test_stats_report_the_median_and_p90_so_one_long_outage_does_not_hide_in_a_mean() -> None:
    """Nine incidents recovered in 60 s and one in 4 h: the mean says 24 min, the median 60 s."""
    s = make_book()
    for number in range(10):
        detected = T0 + timedelta(hours=number)
        record = s.book.open(
            "web", severity="SEV2", title=f"outage {number}", source="alert:Down",
            key=f"fp-{number}", detected_at=detected, who="monitor",
            started_at=detected - timedelta(seconds=30 + number),
        )  # fmt: skip
        took = 4 * 3600 if number == 9 else 60
        s.book.advance(record.id, "recovered", who="monitor", at=detected + timedelta(seconds=took))
    s.book.open(
        "api", severity="SEV4", title="still open", source="manual", key="open",
        detected_at=T0, who="alice",
    )  # fmt: skip

    stats = s.book.stats()
    assert stats.incidents == 11 and stats.open == 1
    assert stats.by_severity == {"SEV1": 0, "SEV2": 10, "SEV3": 0, "SEV4": 1, "SEV5": 0}
    assert stats.by_stage["recovered"] == 10 and stats.by_stage["detected"] == 1
    assert stats.mttr.median == 60.0
    assert stats.mttr.mean == pytest.approx((9 * 60 + 4 * 3600) / 10)
    assert stats.mttr.unknown == 1  # the open one
    assert stats.mttr.values[-1] == 4 * 3600
    assert stats.mttd.values == tuple(float(30 + n) for n in range(10))
    assert stats.mttd.unknown == 1  # no start known
    assert stats.mttd.median == 34.5

    only_api = s.book.stats("api")
    assert only_api.incidents == 1 and only_api.mttr.count == 0
    document = stats.to_dict()
    assert document["mttr"]["values_s"][0] == 60.0
    assert "median_s" in document["mttd"] and "p90_s" in document["mttd"]
