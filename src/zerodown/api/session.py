"""Browser sign-in for the dashboard: one-time login codes, a signed session cookie, CSRF rules.

The API token never travels in a URL (URLs end up in shell history, proxy logs and browser
history). ``zerodown dashboard`` asks the controller, with the bearer token, for a login code
that is valid for one minute and works once, and prints ``/login?code=...``. Opening it sets
an ``HttpOnly; SameSite=Strict`` cookie and redirects to the dashboard. The cookie holds
``<expiry>.<signature>``: an HMAC with a key derived from the API token, so it outlives a
controller restart, expires on its own, and dies with a new token.

A request that changes something (any method but GET and HEAD) authenticated by the cookie
must also carry the ``X-Zerodown-Action`` header, which a page of another origin cannot send
without a CORS preflight this server never grants, and, when the browser sends ``Origin``, it
must be this server's own origin. ``SameSite=Strict`` already keeps the cookie off cross-site
requests; the header and the origin check hold even where it does not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

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
    ) -> None:
        self._bearer = f"Bearer {token}".encode()
        self._key = hashlib.sha256(b"zerodown dashboard session\0" + token.encode()).digest()
        self.code_ttl = code_ttl
        self.session_ttl = session_ttl
        self._clock = clock
        self._codes: dict[str, float] = {}  # code -> expiry (epoch seconds)
        self._lock = threading.Lock()

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
        return self._cookie_value(int(self._clock() + self.session_ttl))

    # --- cookies -----------------------------------------------------------------------------

    def _sign(self, expiry: int) -> str:
        return hmac.new(self._key, str(expiry).encode(), hashlib.sha256).hexdigest()

    def _cookie_value(self, expiry: int) -> str:
        return f"{expiry}.{self._sign(expiry)}"

    def valid_cookie(self, value: str) -> bool:
        expiry, dot, signature = value.partition(".")
        if not dot or not expiry.isdigit() or len(expiry) > 12:
            return False
        if not hmac.compare_digest(signature.encode(), self._sign(int(expiry)).encode()):
            return False
        return int(expiry) > self._clock()

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
