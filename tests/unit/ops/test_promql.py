"""The restricted PromQL: parsing, errors with positions, and Prometheus' evaluation semantics."""

from __future__ import annotations

import math

import pytest

from zerodown.ops import promql
from zerodown.ops.promql import EvaluationError, ExpressionError, Sample, evaluate, parse
from zerodown.ops.series import SeriesStore, label_set


def _store(series: dict[str, list[float | None]], *, step: float = 60.0) -> SeriesStore:
    store = SeriesStore(retention=86400)
    for selector, values in series.items():
        parsed = parse(selector)
        assert isinstance(parsed, promql.VectorSelector) and parsed.name
        labels = {m.name: m.value for m in parsed.matchers if m.name != "__name__"}
        for index, value in enumerate(values):
            if value is not None:
                store.append(parsed.name, labels, value, index * step)
    return store


def _vector(result: promql.Value) -> dict[str, float]:
    assert isinstance(result, list)
    return {",".join(f"{k}={v}" for k, v in sample.labels): sample.value for sample in result}


def test_durations_follow_prometheus_notation() -> None:
    assert promql.parse_duration("1h30m") == 5400
    assert promql.parse_duration("500ms") == 0.5
    assert promql.parse_duration("1w") == 7 * 86400
    assert promql.format_duration(5400) == "1h30m"
    with pytest.raises(ValueError):
        promql.parse_duration("30m1h")  # units out of order
    with pytest.raises(ValueError):
        promql.parse_duration("5 m")


def test_precedence_and_associativity() -> None:
    store = SeriesStore()
    assert evaluate("1 + 2 * 3", store, 0) == 7
    assert evaluate("-2 ^ 2", store, 0) == -4  # unary minus binds looser than ^
    assert evaluate("2 ^ 3 ^ 2", store, 0) == 512  # ^ is right-associative
    assert evaluate("10 - 4 - 3", store, 0) == 3
    assert evaluate("7 % 4 / 2", store, 0) == 1.5


@pytest.mark.parametrize(
    ("expression", "column", "words"),
    [
        ("rate(x)", 6, "range vector"),
        ('x{a="b"', 8, "expected ','"),
        ("sum(x) by", 10, "'('"),
        ("1 > 2", 3, "bool"),
        ("foo[5m] + 1", 9, "range vector"),
        ("x +", 4, "expected an expression"),
        ('x{a=~"("}', 6, "regular expression"),
        ("histogram_quantile(x, y)", 20, "a number"),
        ("irate(x[5m])", 1, "unsupported function"),
        ("x * on(a) group_left y", 11, "not supported"),
        ('{a=""}', 1, "empty string"),
        ("(x)[5m:1m]", 4, "subqueries"),
        ("x $ y", 3, "unexpected character"),
    ],
)
def test_errors_name_the_position(expression: str, column: int, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(expression)
    assert f"column {column} " in caught.value.message
    assert words in caught.value.message


def test_multi_line_errors_name_line_and_column() -> None:
    with pytest.raises(ExpressionError, match="line 2, column 5"):
        parse("sum(x)\n  / )")


def test_instant_selector_looks_back_five_minutes_inclusive() -> None:
    store = _store({'up{job="a"}': [1.0]})
    assert _vector(evaluate("up", store, 300)) == {"__name__=up,job=a": 1.0}
    assert evaluate("up", store, 300.001) == []


def test_staleness_marker_ends_a_series_at_once() -> None:
    store = _store({'up{job="a"}': [1.0]})
    store.mark_stale("up", {"job": "a"}, 60)
    assert evaluate("up", store, 30) != []
    assert evaluate("up", store, 60) == []
    store.append("up", {"job": "a"}, 0.0, 120)
    assert _vector(evaluate("up", store, 130)) == {"__name__=up,job=a": 0.0}


def test_label_matchers_are_anchored_and_missing_labels_are_empty() -> None:
    store = _store({'x{a="abc"}': [1.0], 'x{a="ab",b="1"}': [2.0], 'x{b="2"}': [3.0]})
    assert sorted(_vector(evaluate('x{a=~"ab"}', store, 0)).values()) == [2.0]
    assert sorted(_vector(evaluate('x{a!~"ab.*"}', store, 0)).values()) == [3.0]
    assert sorted(_vector(evaluate('x{a=""}', store, 0)).values()) == [3.0]
    assert sorted(_vector(evaluate('x{b!="1"}', store, 0)).values()) == [1.0, 3.0]
    assert sorted(_vector(evaluate('{__name__=~"x", a=~"a.+"}', store, 0)).values()) == [
        1.0,
        2.0,
    ]


def test_rate_extrapolates_to_the_window_edges() -> None:
    # Samples every 60 s, 10 per minute: a 5m window at 600 s holds 6 samples exactly on its
    # edges, so rate is the slope (10/60) and increase the full 5 minutes' worth.
    store = _store({"c": [10.0 * i for i in range(11)]})
    assert evaluate("rate(c[5m])", store, 600)[0].value == pytest.approx(10 / 60)  # type: ignore[index]
    assert evaluate("increase(c[5m])", store, 600)[0].value == pytest.approx(50)  # type: ignore[index]


def test_rate_handles_counter_resets_and_the_zero_point() -> None:
    store = _store({"c": [None, None, None, 2.0, 20.0, 5.0, 15.0]})
    # Samples at 180..360 in window [60, 360]: increase 18, then a reset (+5 +10): 33.
    # The counter was 0 about 180 * 2/33 s before its first sample, much nearer than the
    # window's start: extrapolate back only to there (and not at all past the last sample).
    result = evaluate("increase(c[5m])", store, 360)
    assert isinstance(result, list)
    sampled = 180.0
    to_zero = sampled * (2 / 33)
    assert result[0].value == pytest.approx(33 * (sampled + to_zero) / sampled)


def test_rate_needs_two_samples_and_drops_the_metric_name() -> None:
    store = _store({'c{a="1"}': [1.0], 'c{a="2"}': [1.0, 2.0]})
    # Two samples 60 s apart, 1 -> 2: the zero point is 60 s before the first; the window's
    # start is further, so the increase is extrapolated over 120 s: 2 per 300 s.
    assert _vector(evaluate("rate(c[5m])", store, 60)) == {"a=2": pytest.approx(2 / 300)}


def test_over_time_functions() -> None:
    store = _store({"g": [4.0, 8.0, 6.0, 2.0]})
    at = 180
    values = {
        func: evaluate(f"{func}(g[3m])", store, at)[0].value  # type: ignore[index]
        for func in (
            "avg_over_time",
            "max_over_time",
            "min_over_time",
            "sum_over_time",
            "count_over_time",
            "last_over_time",
        )
    }
    assert values == {
        "avg_over_time": 5.0,
        "max_over_time": 8.0,
        "min_over_time": 2.0,
        "sum_over_time": 20.0,
        "count_over_time": 4.0,
        "last_over_time": 2.0,
    }


def test_predict_linear_extrapolates_from_the_evaluation_time() -> None:
    store = _store({"free": [100.0, 90.0, 80.0, 70.0]})
    result = evaluate("predict_linear(free[3m], 600)", store, 180)
    assert result[0].value == pytest.approx(70 - 100)  # type: ignore[index]


def test_aggregations_by_and_without() -> None:
    store = _store(
        {
            'r{job="a",inst="1"}': [1.0],
            'r{job="a",inst="2"}': [3.0],
            'r{job="b",inst="1"}': [10.0],
        }
    )
    assert _vector(evaluate("sum by (job) (r)", store, 0)) == {"job=a": 4.0, "job=b": 10.0}
    assert _vector(evaluate("avg(r) by (job)", store, 0)) == {"job=a": 2.0, "job=b": 10.0}
    assert _vector(evaluate("max without (inst) (r)", store, 0)) == {"job=a": 3.0, "job=b": 10.0}
    assert _vector(evaluate("min(r)", store, 0)) == {"": 1.0}
    assert _vector(evaluate("count by (inst) (r)", store, 0)) == {"inst=1": 2.0, "inst=2": 1.0}


def test_comparisons_filter_keep_the_name_and_bool_returns_zero_or_one() -> None:
    store = _store({'x{a="1"}': [1.0], 'x{a="2"}': [5.0]})
    assert _vector(evaluate("x > 2", store, 0)) == {"__name__=x,a=2": 5.0}
    assert _vector(evaluate("2 < x", store, 0)) == {"__name__=x,a=2": 5.0}
    assert _vector(evaluate("x > bool 2", store, 0)) == {"a=1": 0.0, "a=2": 1.0}
    assert evaluate("3 >= bool 3", store, 0) == 1.0


def test_arithmetic_drops_the_name_and_matches_one_to_one() -> None:
    store = _store(
        {
            'err{job="a",code="5xx"}': [5.0],
            'req{job="a"}': [100.0],
            'req{job="b"}': [50.0],
        }
    )
    assert _vector(evaluate("err / ignoring (code) req", store, 0)) == {"job=a": 0.05}
    assert _vector(evaluate("err / on (job) req", store, 0)) == {"job=a": 0.05}
    assert evaluate("err / req", store, 0) == []  # label sets differ: nothing matches
    assert _vector(evaluate("req * 2", store, 0)) == {"job=a": 200.0, "job=b": 100.0}
    assert _vector(evaluate("-req", store, 0)) == {"job=a": -100.0, "job=b": -50.0}


def test_division_by_zero_gives_infinity_or_nan() -> None:
    store = SeriesStore()
    assert evaluate("1 / 0", store, 0) == math.inf
    assert math.isnan(evaluate("0 / 0", store, 0))  # type: ignore[arg-type]


def test_set_operators() -> None:
    store = _store({'a{x="1"}': [1.0], 'a{x="2"}': [2.0], 'b{x="2"}': [20.0], 'b{x="3"}': [30.0]})
    assert _vector(evaluate("a and b", store, 0)) == {"__name__=a,x=2": 2.0}
    assert _vector(evaluate("a unless b", store, 0)) == {"__name__=a,x=1": 1.0}
    assert _vector(evaluate("a or b", store, 0)) == {
        "__name__=a,x=1": 1.0,
        "__name__=a,x=2": 2.0,
        "__name__=b,x=3": 30.0,
    }
    assert _vector(evaluate("a and on () b", store, 0)) == {
        "__name__=a,x=1": 1.0,
        "__name__=a,x=2": 2.0,
    }


def test_ambiguous_matching_is_an_error() -> None:
    store = _store({'a{x="1",y="1"}': [1.0], 'a{x="1",y="2"}': [2.0], 'b{x="1"}': [1.0]})
    with pytest.raises(EvaluationError, match="many-to-one"):
        evaluate("a + on (x) b", store, 0)
    with pytest.raises(EvaluationError, match="duplicate series"):
        evaluate("b + on (x) a", store, 0)
    with pytest.raises(EvaluationError, match="same labelset"):
        evaluate('abs({__name__=~"a|b"})', _store({'a{x="1"}': [1.0], 'b{x="1"}': [2.0]}), 0)


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    store = _store(
        {
            'h_bucket{le="0.1"}': [50.0],
            'h_bucket{le="0.5"}': [90.0],
            'h_bucket{le="+Inf"}': [100.0],
        }
    )
    result = evaluate("histogram_quantile(0.7, h_bucket)", store, 0)
    assert result == [Sample((), pytest.approx(0.1 + 0.4 * (20 / 40)))]  # type: ignore[list-item]
    assert evaluate("histogram_quantile(0.95, h_bucket)", store, 0) == [Sample((), 0.5)]


def test_absent_offset_clamp_time_and_scalar() -> None:
    store = _store({'x{job="a"}': [1.0, 2.0, 3.0]})
    assert evaluate('absent(x{job="a"})', store, 120) == []
    assert _vector(evaluate('absent(nothing{job="b", env=~"p"})', store, 120)) == {"job=b": 1.0}
    assert _vector(evaluate("x offset 2m", store, 120)) == {"__name__=x,job=a": 1.0}
    assert _vector(evaluate("clamp_max(x, 2)", store, 120)) == {"job=a": 2.0}
    assert evaluate("time()", store, 120) == 120
    assert evaluate("scalar(x) * 2", store, 120) == 6
    assert evaluate("5m", store, 0) == 300  # a duration as a value is seconds


def test_metric_names_lists_what_a_rule_reads() -> None:
    expr = parse("sum(rate(a[5m])) / sum(rate(b[5m])) > 0.1 and a")
    assert promql.metric_names(expr) == ["a", "b"]
    assert label_set({"b": "2", "a": "1", "c": ""}) == (("a", "1"), ("b", "2"))
