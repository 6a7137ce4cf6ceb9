"""Keeping secrets out of what zerodown shows and writes.

Spec diffs in incidents, connection strings in messages and catalogue entries, commands in
events: anything that may be read by more people than the operator goes through here first.
A value is masked when its key looks secret (``password``, ``token``, ``apiKey`` ...), when it is
an environment variable's value, or, inside any text, when it is the password part of a URL
(``scheme://user:PASSWORD@host``) or a secret-looking query parameter (``?password=...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "is_secret_key", "mask_url", "redact_text"]

MASK: Final = "***"

_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|credential|api[-_]?key|private[-_]?key|auth", re.I
)
_SECRET_PARAMS: Final = frozenset(
    {"password", "sslpassword", "pass", "passwd", "secret", "token", "access_token", "api_key"}
)
# A URL with a userinfo part or a query: scheme://[user[:pass]@]host...
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def is_secret_key(key: str) -> bool:
    """Whether a mapping key or variable name names a secret (``DB_PASSWORD``, ``apiKey``)."""
    return bool(_SECRET_KEY.search(key))


def mask_url(url: str) -> str:
    """``url`` with any password (userinfo or a secret query parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hosts = netloc.rpartition("@")
            user, has_password, _ = userinfo.partition(":")
            netloc = f"{user}:{MASK}@{hosts}" if has_password else netloc
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(key.lower() in _SECRET_PARAMS for key, _ in pairs):
                query = urlencode(
                    [(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
                )
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return url.split("://", 1)[0] + "://" + MASK


def redact_text(text: str, *, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL's password masked and every literal in ``secrets`` replaced."""
    masked = _URL_IN_TEXT.sub(lambda found: mask_url(found.group(0)), text)
    for secret in secrets:
        if secret:
            masked = masked.replace(secret, MASK)
    return masked
