"""The log-space beta functions against closed forms and brute-force integration."""

from __future__ import annotations

import math

import pytest

from zerodown.analysis.special import (
    log_beta,
    log_beta_cdf,
    log_beta_sf,
    regularized_incomplete_beta,
)


def integrated_cdf(a: float, b: float, x: float, steps: int = 20_000) -> float:
    """P(X <= x) for X ~ Beta(a, b) by the midpoint rule after substituting t = u^(1/a).

    The substitution removes the t^(a - 1) singularity at 0, so it is accurate for b >= 1.
    """
    k = 1.0 / a
    h: float = x**a / steps
    total = math.fsum(k * (1.0 - ((i + 0.5) * h) ** k) ** (b - 1.0) for i in range(steps)) * h
    return total / math.exp(log_beta(a, b))


def test_log_beta_matches_factorials() -> None:
    # B(3, 4) = 2! 3! / 6! = 1 / 60
    assert log_beta(3, 4) == pytest.approx(math.log(1 / 60))
    assert log_beta(0.5, 0.5) == pytest.approx(math.log(math.pi))


@pytest.mark.parametrize("x", [0.01, 0.3, 0.5, 0.7, 0.99])
def test_closed_forms(x: float) -> None:
    assert regularized_incomplete_beta(1, 4, x) == pytest.approx(1 - (1 - x) ** 4, rel=1e-12)
    assert regularized_incomplete_beta(5, 1, x) == pytest.approx(x**5, rel=1e-12)
    assert regularized_incomplete_beta(2.5, 2.5, 0.5) == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "x"),
    [
        (0.5, 9.5, 0.1),
        (0.4, 3.6, 0.1),
        (0.5, 9.5, 0.5),
        (2.0, 3.0, 0.4),
        (3.5, 2.5, 0.6),
        (1.5, 8.5, 0.05),
    ],
)
def test_incomplete_beta_matches_integration(a: float, b: float, x: float) -> None:
    assert regularized_incomplete_beta(a, b, x) == pytest.approx(integrated_cdf(a, b, x), rel=1e-6)


@pytest.mark.parametrize(
    ("a", "b", "x"),
    [(0.5, 9.5, 0.05), (30, 70, 0.35), (30, 70, 0.2), (1000.5, 3000.5, 0.26), (4, 6, 0.99)],
)
def test_both_tails_add_up_to_one(a: float, b: float, x: float) -> None:
    total = math.exp(log_beta_cdf(a, b, x)) + math.exp(log_beta_sf(a, b, x))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_far_tails_stay_finite_in_log_space() -> None:
    # P(X > 0.5) for X ~ Beta(1000.5, 3000.5) is about e^-528: zero as a float, fine as a log.
    assert log_beta_sf(1000.5, 3000.5, 0.5) == pytest.approx(-527.6, abs=0.1)
    assert log_beta_cdf(3000.5, 1000.5, 0.5) == pytest.approx(-527.6, abs=0.1)


def test_edges_and_bad_parameters() -> None:
    assert log_beta_cdf(2, 3, 0.0) == -math.inf
    assert log_beta_cdf(2, 3, 1.0) == 0.0
    assert log_beta_sf(2, 3, 0.0) == 0.0
    assert log_beta_sf(2, 3, 1.0) == -math.inf
    with pytest.raises(ValueError):
        log_beta_cdf(0, 1, 0.5)
