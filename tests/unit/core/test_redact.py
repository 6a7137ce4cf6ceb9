"""Secrets never shown: URL passwords, secret query parameters, secret-looking keys."""

from __future__ import annotations

import pytest

from zerodown.core.redact import is_secret_key, mask_url, redact_text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:s3cret@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("postgresql://app@db/app", "postgresql://app@db/app"),
        (
            "postgresql://db/app?password=s3cret&sslmode=require",
            "postgresql://db/app?password=***&sslmode=require",
        ),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("https://hooks.example/x?token=abc&x=1", "https://hooks.example/x?token=***&x=1"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_redact_text_masks_every_url_and_given_literals() -> None:
    text = "pg_dump failed for postgresql://u:pw1@h/db and redis://:pw2@r/0 with key k-123"
    shown = redact_text(text, secrets=["k-123", ""])
    assert "pw1" not in shown and "pw2" not in shown and "k-123" not in shown
    assert "postgresql://u:***@h/db" in shown


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("DB_PASSWORD", True),
        ("apiKey", True),
        ("GITHUB_TOKEN", True),
        ("passwordFile", True),
        ("ERROR_RATE", False),
        ("replicas", False),
        ("image", False),
    ],
)
def test_is_secret_key(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret
