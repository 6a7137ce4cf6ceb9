"""Browser sign-in for the dashboard: one-time login codes, a signed session cookie, CSRF rules.

The API token never travels in a URL (URLs end up in shell history, proxy logs and browser
history). ``zerodown dashboard`` asks the controller, with the bearer token, for a login code
that is valid for one minute and works once, and prints ``/login?code=...``. Opening it sets
an ``HttpOnly; SameSite=Strict`` cookie and redirects to the dashboard. The cookie holds
``<expiry>.<session id>.<signature>``: an HMAC with a key derived from the API token, so it
outlives a controller restart, expires on its own, and dies with a new token. Signing out
revokes that session id on the server (kept in a small file in the state directory until the
cookie would have expired), so a copied cookie stops working too. Login codes are issued only
to the bearer token, never to a session, so a session cannot extend itself.

A request that changes something (any method but GET and HEAD) authenticated by the cookie
must also carry the ``X-Zerodown-Action`` header, which a page of another origin cannot send
without a CORS preflight this server never grants, and, when the browser sends ``Origin``, it
must be this server's own origin. ``SameSite=Strict`` already keeps the cookie off cross-site
requests; the header and the origin check hold even where it does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from zerodown.core.state import write_json_atomic

__all__ = [
    "ACTION_HEADER",
    "COOKIE_NAME",
    "AuthFailure",
    "BrowserSessions",
    "LoginCode",
]

COOKIE_NAME = "zerodown_session"
ACTION_HEADER = "x-zerodown-action"
CODE_TTL_S = 60.0
SESSION_TTL_S = 12 * 3600.0
_MAX_PENDING_CODES = 64  # codes nobody redeemed are dropped when they expire or past this many
_SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class LoginCode:
    code: str
    expires_in: float

    @property
    def login_path(self) -> str:
        return f"/login?code={self.code}"


@dataclass(frozen=True)
class AuthFailure:
    """Why a request is refused: ``unauthorized`` (401) or ``forbidden`` (403)."""

    status: int
    code: str
    message: str


UNAUTHORIZED = AuthFailure(401, "unauthorized", "missing or wrong API token")


class BrowserSessions:
    """Issues and checks login codes and session cookies for one API token."""

    def __init__(
        self,
        token: str,
        *,
        code_ttl: float = CODE_TTL_S,
        session_ttl: float = SESSION_TTL_S,
        clock: Callable[[], float] = time.time,
        revocations: Path | None = None,
    ) -> None:
        self._bearer = f"Bearer {token}".encode()
        self._key = hashlib.sha256(b"zerodown dashboard session\0" + token.encode()).digest()
        self.code_ttl = code_ttl
        self.session_ttl = session_ttl
        self._clock = clock
        self._codes: dict[str, float] = {}  # code -> expiry (epoch seconds)
        self._lock = threading.Lock()
        self._revocations = revocations
        self._revoked: dict[str, float] = {}  # session id -> its cookie's expiry
        if revocations is not None:
            try:
                raw = json.loads(revocations.read_text(encoding="utf-8"))
                self._revoked = {str(k): float(v) for k, v in raw.items()}
            except (OSError, ValueError, AttributeError):
                self._revoked = {}

    # --- login codes -------------------------------------------------------------------------

    def issue_code(self) -> LoginCode:
        """A fresh one-time code (the caller has proven it holds the API token)."""
        now = self._clock()
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes = {c: t for c, t in self._codes.items() if t > now}
            while len(self._codes) >= _MAX_PENDING_CODES:
                self._codes.pop(min(self._codes, key=self._codes.__getitem__))
            self._codes[code] = now + self.code_ttl
        return LoginCode(code=code, expires_in=self.code_ttl)

    def redeem(self, code: str) -> str | None:
        """The cookie value for a valid unused code (which is used up), else None."""
        with self._lock:
            expiry = self._codes.pop(code, None)
        if expiry is None or expiry <= self._clock():
            return None
        return self._cookie_value(int(self._clock() + self.session_ttl), secrets.token_hex(12))

    # --- cookies -----------------------------------------------------------------------------

    def _sign(self, expiry: int, session: str) -> str:
        return hmac.new(self._key, f"{expiry}.{session}".encode(), hashlib.sha256).hexdigest()

    def _cookie_value(self, expiry: int, session: str) -> str:
        return f"{expiry}.{session}.{self._sign(expiry, session)}"

    @staticmethod
    def _parts(value: str) -> tuple[int, str, str] | None:
        if value.count(".") != 2:
            return None
        expiry, session, signature = value.split(".")
        if not expiry.isdigit() or len(expiry) > 12:
            return None
        if not session.isalnum() or len(session) > 64:
            return None
        return int(expiry), session, signature

    def valid_cookie(self, value: str) -> bool:
        parts = self._parts(value)
        if parts is None:
            return False
        expiry, session, signature = parts
        if not hmac.compare_digest(signature.encode(), self._sign(expiry, session).encode()):
            return False
        with self._lock:
            if session in self._revoked:
                return False
        return expiry > self._clock()

    def revoke(self, value: str) -> None:
        """Sign a session out for good: its cookie is refused from now on, here and after a
        restart (the id is kept until the cookie would have expired anyway)."""
        parts = self._parts(value)
        if parts is None or not self.valid_cookie(value):
            return
        expiry, session, _ = parts
        now = self._clock()
        with self._lock:
            self._revoked = {k: t for k, t in self._revoked.items() if t > now}
            self._revoked[session] = float(expiry)
            snapshot = dict(self._revoked)
        if self._revocations is not None:
            write_json_atomic(self._revocations, snapshot)

    def bearer(self, request: Request) -> bool:
        """Whether the request carries the API token itself (not a session cookie)."""
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, self._bearer)

    def set_cookie(self, response: Response, value: str) -> None:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=int(self.session_ttl),
            path="/",
            httponly=True,
            samesite="strict",
        )

    @staticmethod
    def clear_cookie(response: Response) -> None:
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")

    # --- checking a request -------------------------------------------------------------------

    def has_session(self, request: Request) -> bool:
        value = request.cookies.get(COOKIE_NAME)
        return value is not None and self.valid_cookie(value)

    def check(self, request: Request) -> AuthFailure | None:
        """None when the request may go on: the bearer token, or a valid session cookie (with
        the CSRF rules for requests that change something)."""
        given = request.headers.get("authorization", "").encode()
        if hmac.compare_digest(given, self._bearer):
            return None
        if given or not self.has_session(request):
            return UNAUTHORIZED
        if request.method in _SAFE_METHODS:
            return None
        if request.headers.get(ACTION_HEADER) is None:
            return AuthFailure(
                403,
                "forbidden",
                f"a request that changes something needs the {ACTION_HEADER} header "
                "when it is signed in by the dashboard's cookie",
            )
        origin = request.headers.get("origin")
        if origin is not None and not _same_origin(origin, request):
            return AuthFailure(
                403, "forbidden", f"the request comes from another origin ({origin[:100]})"
            )
        return None


def _same_origin(origin: str, request: Request) -> bool:
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.scheme == request.url.scheme and parts.netloc == host and bool(host)
