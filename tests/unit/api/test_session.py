"""Login codes and session cookies of the dashboard (``api/session.py``), on a fake clock."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request

from zerodown.api.session import ACTION_HEADER, COOKIE_NAME, BrowserSessions


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _request(
    method: str = "GET", *, cookie: str | None = None, headers: dict[str, str] | None = None
) -> Request:
    raw = [(b"host", b"127.0.0.1:8000")]
    if cookie is not None:
        raw.append((b"cookie", f"{COOKIE_NAME}={cookie}".encode()))
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "headers": raw,
        "query_string": b"",
    }
    return Request(scope)


def test_a_code_works_once_and_only_before_it_expires() -> None:
    clock = Clock()
    sessions = BrowserSessions("secret", clock=clock)
    code = sessions.issue_code()
    assert code.login_path == f"/login?code={code.code}"
    cookie = sessions.redeem(code.code)
    assert cookie is not None and sessions.valid_cookie(cookie)
    assert sessions.redeem(code.code) is None  # used up
    late = sessions.issue_code()
    clock.now += sessions.code_ttl + 1
    assert sessions.redeem(late.code) is None
    assert sessions.redeem("guessed") is None


def test_a_cookie_expires_and_belongs_to_one_token() -> None:
    clock = Clock()
    sessions = BrowserSessions("secret", clock=clock)
    cookie = sessions.redeem(sessions.issue_code().code)
    assert cookie is not None
    assert not BrowserSessions("another token", clock=clock).valid_cookie(cookie)
    expiry, session, signature = cookie.split(".")
    assert not sessions.valid_cookie(f"{int(expiry) + 60}.{session}.{signature}")
    assert not sessions.valid_cookie(f"{expiry}.{session}x.{signature}")
    for junk in ("", ".", "..", "abc.def", "1.2.3.4", "1" * 40 + ".x.y"):
        assert not sessions.valid_cookie(junk)
    clock.now += sessions.session_ttl + 1
    assert not sessions.valid_cookie(cookie)


def test_requests_with_the_cookie_follow_the_csrf_rules() -> None:
    sessions = BrowserSessions("secret")
    cookie = sessions.redeem(sessions.issue_code().code)
    assert cookie is not None
    assert sessions.check(_request(headers={"Authorization": "Bearer secret"})) is None
    assert sessions.check(_request()) is not None
    assert sessions.check(_request(cookie=cookie)) is None  # reading needs only the cookie
    refused = sessions.check(_request("POST", cookie=cookie))
    assert refused is not None and (refused.status, refused.code) == (403, "forbidden")
    ok = {ACTION_HEADER: "pause", "Origin": "http://127.0.0.1:8000"}
    assert sessions.check(_request("POST", cookie=cookie, headers=ok)) is None
    foreign = {ACTION_HEADER: "pause", "Origin": "http://127.0.0.1:9999"}
    assert sessions.check(_request("POST", cookie=cookie, headers=foreign)) is not None
    # A wrong bearer token is not rescued by a good cookie.
    wrong = {"Authorization": "Bearer nope"}
    assert sessions.check(_request(cookie=cookie, headers=wrong)) is not None


def test_signing_out_revokes_that_session_here_and_after_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "signed-out.json"
    sessions = BrowserSessions("secret", clock=clock, revocations=path)
    kept = sessions.redeem(sessions.issue_code().code)
    gone = sessions.redeem(sessions.issue_code().code)
    assert kept is not None and gone is not None
    sessions.revoke(gone)
    assert not sessions.valid_cookie(gone) and sessions.valid_cookie(kept)
    restarted = BrowserSessions("secret", clock=clock, revocations=path)
    assert not restarted.valid_cookie(gone) and restarted.valid_cookie(kept)
    sessions.revoke("junk")  # nothing to revoke, nothing breaks
    assert restarted.valid_cookie(kept)
