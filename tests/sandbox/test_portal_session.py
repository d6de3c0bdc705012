"""Portal sign-in, MFA and session rules, over real HTTP with plain httpx clients."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
from tests.support.sandbox import (
    ANCHOR,
    LiveTenant,
    PortalUser,
    add_portal_user,
    portal_login,
    portal_outbox_code,
    portal_persona,
    portal_totp,
    start_live,
)

from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.portal import mfa

IDLE = 900
ABSOLUTE = 3600
LOCKOUT = 600


@pytest.fixture(scope="module")
def live() -> Iterator[LiveTenant]:
    """A small tenant of its own, with a one-hour absolute session lifetime."""
    config = SandboxConfig(
        seed=7,
        patients=12,
        practices=2,
        anchor=ANCHOR,
        appointments_per_patient=3,
        portal_idle_timeout=IDLE,
        portal_absolute_timeout=ABSOLUTE,
        portal_max_sessions=3,
        portal_lockout_threshold=3,
        portal_lockout_seconds=LOCKOUT,
        mfa_code_ttl=300,
    )
    tenant, stop = start_live(config)
    yield tenant
    stop()


def _error(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, r.text
    return dict(error)


def _start(client: httpx.Client, user: PortalUser) -> httpx.Response:
    return client.post(
        "/portal/api/session", json={"username": user.username, "password": user.password}
    )


def _verify(client: httpx.Client, code: str, **extra: object) -> httpx.Response:
    return client.post("/portal/api/session/mfa/verify", json={"code": code, **extra})


# --- TOTP ------------------------------------------------------------------------------------


def test_totp_matches_rfc_6238_as_pyotp_computes_it() -> None:
    seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    for seconds in (0, 59, 1_111_111_109, 1_234_567_890, 2_000_000_000):
        moment = datetime.fromtimestamp(seconds, tz=UTC)
        assert mfa.totp(seed, moment) == pyotp.TOTP(seed).at(moment)


def test_totp_accepts_one_step_either_side_and_flags_replays() -> None:
    seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    step = mfa.time_step(now)
    for delta in (-30, 0, 30):
        code = pyotp.TOTP(seed).at(now + timedelta(seconds=delta))
        assert mfa.check_totp(seed, code, now, 0).step == step + delta // 30
    assert (
        mfa.check_totp(seed, pyotp.TOTP(seed).at(now + timedelta(seconds=90)), now, 0).step is None
    )
    assert mfa.check_totp(seed, pyotp.TOTP(seed).at(now), now, step).reused
    assert mfa.check_totp(seed, "12345", now, 0).step is None


# --- sign-in with each factor -------------------------------------------------------------------


def test_persona_signs_in_with_totp_and_gets_hardened_cookies(live: LiveTenant) -> None:
    user = portal_persona(live)
    with live.client() as c:
        r = _start(c, user)
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "mfa_required"
        assert body["methods"] == ["totp", "sms", "email"]
        assert body["destinations"]["email"] == "f********@maplegrove.example"
        assert body["destinations"]["sms"].startswith("***-***-")
        preauth = r.headers["set-cookie"]
        assert "portal_preauth=" in preauth
        assert "httponly" in preauth.lower()
        # Before the factor, the API is closed.
        _error(c.get("/portal/api/patients"), 401, "session_expired")
        r = _verify(c, portal_totp(live, user))
        assert r.status_code == 200, r.text
        cookies = r.headers.get_list("set-cookie")
        session = next(h for h in cookies if h.startswith("portal_session="))
        assert "HttpOnly" in session
        assert "SameSite=lax" in session or "samesite=lax" in session.lower()
        assert "Path=/portal" in session
        csrf = next(h for h in cookies if h.startswith("portal_csrf="))
        assert "HttpOnly" not in csrf
        verified = r.json()
        assert verified["status"] == "authenticated"
        assert csrf.startswith(f"portal_csrf={verified['csrfToken']}")
        me = c.get("/portal/api/session")
        assert me.status_code == 200
        assert me.json()["user"]["username"] == user.username
        assert me.json()["user"]["practice"]["id"] == 1
        assert c.get("/portal/api/patients").status_code == 200


def test_sms_code_from_the_outbox_signs_in(live: LiveTenant) -> None:
    user = add_portal_user(live, "smsuser")
    with live.client() as c:
        assert _start(c, user).status_code == 200
        r = c.post("/portal/api/session/mfa/challenge", json={"method": "sms"})
        assert r.status_code == 200
        assert r.json()["destination"] == f"***-***-{user.phone[-4:]}"
        with live.client() as control:
            outbox = control.get(
                "/_sandbox/outbox", params={"channel": "sms", "recipient": user.phone}
            ).json()
        assert len(outbox) == 1
        code = outbox[0]["code"]
        assert len(code) == 6
        assert code.isdigit()
        assert code in outbox[0]["body"]
        r = _verify(c, code)
        assert r.status_code == 200, r.text
        assert c.get("/portal/api/session").status_code == 200


def test_email_code_from_the_outbox_signs_in(live: LiveTenant) -> None:
    user = add_portal_user(live, "mailuser")
    with live.client() as c:
        body = portal_login(live, c, user, method="email")
        assert body["status"] == "authenticated"
        assert c.get("/portal/api/session").json()["user"]["username"] == user.username
    with live.client() as control:
        mails = control.get("/_sandbox/outbox", params={"channel": "email"}).json()
    assert mails[0]["recipient"] == user.email
    assert mails[0]["subject"]


def test_remembered_device_skips_mfa_until_it_expires(live: LiveTenant) -> None:
    user = add_portal_user(live, "deviceuser")
    with live.client() as c:
        device = portal_login(live, c, user, remember=True)["deviceToken"]
    with live.client() as c:
        r = c.post(
            "/portal/api/session",
            json={"username": user.username, "password": user.password, "deviceToken": device},
        )
        assert r.status_code == 200
        assert r.json()["status"] == "authenticated"
        c.headers["X-CSRF-Token"] = r.json()["csrfToken"]
        assert c.get("/portal/api/session").status_code == 200
    with live.client() as c:
        r = c.post(
            "/portal/api/session",
            json={"username": user.username, "password": user.password, "deviceToken": "forged"},
        )
        assert r.json()["status"] == "mfa_required"
    # Another user cannot borrow the token.
    other = add_portal_user(live, "deviceother")
    with live.client() as c:
        r = c.post(
            "/portal/api/session",
            json={"username": other.username, "password": other.password, "deviceToken": device},
        )
        assert r.json()["status"] == "mfa_required"


def test_wrong_password_and_unknown_user_look_the_same_and_leak_nothing(
    live: LiveTenant,
) -> None:
    user = add_portal_user(live, "wrongpw")
    with live.client() as c:
        bad = c.post("/portal/api/session", json={"username": user.username, "password": "nope"})
        unknown = c.post(
            "/portal/api/session", json={"username": "nobody@x.example", "password": "nope"}
        )
    first, second = (
        _error(bad, 401, "invalid_credentials"),
        _error(unknown, 401, "invalid_credentials"),
    )
    assert first == second
    assert user.username not in bad.text
    assert "nobody" not in unknown.text


def test_wrong_mfa_code_is_refused(live: LiveTenant) -> None:
    user = add_portal_user(live, "wrongcode")
    with live.client() as c:
        _start(c, user)
        good = portal_totp(live, user)
        wrong = f"{(int(good) + 1) % 1_000_000:06d}"
        error = _error(_verify(c, wrong), 401, "invalid_mfa_code")
        assert error["field"] == "code"
        assert _verify(c, good).status_code == 200


def test_a_replayed_totp_code_is_refused(live: LiveTenant) -> None:
    user = add_portal_user(live, "replay")
    with live.client() as first:
        _start(first, user)
        code = portal_totp(live, user)
        assert _verify(first, code).status_code == 200
    with live.client() as second:
        _start(second, user)
        _error(_verify(second, code), 401, "mfa_code_reused")


def test_an_expired_sms_code_is_refused_and_a_new_one_works(live: LiveTenant) -> None:
    user = add_portal_user(live, "expired")
    with live.client() as c:
        _start(c, user)
        c.post("/portal/api/session/mfa/challenge", json={"method": "sms"})
        code = portal_outbox_code(live, "sms", user.phone)
        live.clock.advance(timedelta(seconds=301))
        _error(_verify(c, code), 401, "mfa_code_expired")
        c.post("/portal/api/session/mfa/challenge", json={"method": "sms"})
        fresh = portal_outbox_code(live, "sms", user.phone)
        assert _verify(c, fresh).status_code == 200


def test_lockout_after_consecutive_failures_then_expiry(live: LiveTenant) -> None:
    user = add_portal_user(live, "locked")
    with live.client() as c:
        wrong = {"username": user.username, "password": "wrong"}
        _error(c.post("/portal/api/session", json=wrong), 401, "invalid_credentials")
        # A wrong MFA code counts toward the same threshold.
        _start(c, user)
        _error(
            _verify(c, "000000" if portal_totp(live, user) != "000000" else "111111"),
            401,
            "invalid_mfa_code",
        )
        locked = c.post("/portal/api/session", json=wrong)
        error = _error(locked, 423, "account_locked")
        assert "lockedUntil" in error
        assert int(locked.headers["retry-after"]) > 0
        # Even the right password is refused while locked.
        _error(_start(c, user), 423, "account_locked")
        live.clock.advance(timedelta(seconds=LOCKOUT + 1))
        assert portal_login(live, c, user)["status"] == "authenticated"


def test_success_resets_the_failure_count(live: LiveTenant) -> None:
    user = add_portal_user(live, "resetter")
    wrong = {"username": user.username, "password": "wrong"}
    with live.client() as c:
        for _ in range(2):
            _error(c.post("/portal/api/session", json=wrong), 401, "invalid_credentials")
        portal_login(live, c, user)
        for _ in range(2):
            _error(c.post("/portal/api/session", json=wrong), 401, "invalid_credentials")


# --- session rules ------------------------------------------------------------------------------


def test_idle_timeout_ends_the_session(live: LiveTenant) -> None:
    user = add_portal_user(live, "idle")
    with live.client() as c:
        portal_login(live, c, user)
        live.clock.advance(timedelta(seconds=IDLE - 60))
        assert c.get("/portal/api/session").status_code == 200
        live.clock.advance(timedelta(seconds=IDLE - 60))
        assert c.get("/portal/api/session").status_code == 200
        live.clock.advance(timedelta(seconds=IDLE))
        error = _error(c.get("/portal/api/session"), 401, "session_expired")
        assert error["reason"] == "idle_timeout"
        # Once ended, it stays ended.
        _error(c.get("/portal/api/session"), 401, "session_expired")


def test_absolute_timeout_ends_even_an_active_session(live: LiveTenant) -> None:
    user = add_portal_user(live, "absolute")
    with live.client() as c:
        portal_login(live, c, user)
        for _ in range(ABSOLUTE // (IDLE - 100)):
            live.clock.advance(timedelta(seconds=IDLE - 100))
            assert c.get("/portal/api/session").status_code == 200
        live.clock.advance(timedelta(seconds=IDLE - 100))
        error = _error(c.get("/portal/api/session"), 401, "session_expired")
        assert error["reason"] == "absolute_timeout"


def test_a_new_login_evicts_the_oldest_session_beyond_the_cap(live: LiveTenant) -> None:
    user = add_portal_user(live, "evict")
    clients = [live.client() for _ in range(4)]
    try:
        device = portal_login(live, clients[0], user, remember=True)["deviceToken"]
        for c in clients[1:]:
            r = c.post(
                "/portal/api/session",
                json={"username": user.username, "password": user.password, "deviceToken": device},
            )
            assert r.json()["status"] == "authenticated"
        error = _error(clients[0].get("/portal/api/session"), 401, "session_expired")
        assert error["reason"] == "evicted"
        for c in clients[1:]:
            assert c.get("/portal/api/session").status_code == 200
    finally:
        for c in clients:
            c.close()


def test_kill_switch_ends_a_users_sessions_or_everyones(live: LiveTenant) -> None:
    one, two = add_portal_user(live, "killone"), add_portal_user(live, "killtwo")
    with live.client() as a, live.client() as b, live.client() as control:
        portal_login(live, a, one)
        portal_login(live, b, two)
        r = control.post("/_sandbox/sessions/kill", json={"user": one.username})
        assert r.status_code == 200
        assert r.json()["killed"] >= 1
        assert _error(a.get("/portal/api/session"), 401, "session_expired")["reason"] == "killed"
        assert b.get("/portal/api/session").status_code == 200
        assert control.post("/_sandbox/sessions/kill", json={}).status_code == 200
        _error(b.get("/portal/api/session"), 401, "session_expired")
        assert control.post("/_sandbox/sessions/kill", json={"user": "ghost"}).status_code == 404


def test_forced_mfa_rechallenges_active_sessions_and_devices(live: LiveTenant) -> None:
    user = add_portal_user(live, "forced")
    with live.client() as c, live.client() as control:
        device = portal_login(live, c, user, remember=True)["deviceToken"]
        r = control.post("/_sandbox/sessions/force-mfa", json={"user": user.username})
        assert r.json() == {"sessions": 1}
        error = _error(c.get("/portal/api/patients"), 401, "mfa_required")
        assert error["methods"] == ["totp", "sms", "email"]
        # A remembered device no longer skips the factor until it is verified again.
        with live.client() as other:
            r = other.post(
                "/portal/api/session",
                json={"username": user.username, "password": user.password, "deviceToken": device},
            )
            assert r.json()["status"] == "mfa_required"
        # The same browser verifies again with its session cookie and carries on.
        assert c.post("/portal/api/session/mfa/challenge", json={"method": "totp"}).is_success
        r = _verify(c, portal_totp(live, user))
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrfToken"]
        assert c.get("/portal/api/patients").status_code == 200
        assert control.post("/_sandbox/sessions/force-mfa", json={}).status_code == 400


def test_writes_need_the_csrf_token(live: LiveTenant) -> None:
    user = add_portal_user(live, "csrf")
    with live.client() as c:
        body = portal_login(live, c, user)
        del c.headers["X-CSRF-Token"]
        _error(c.delete("/portal/api/session"), 403, "csrf_failed")
        _error(
            c.delete("/portal/api/session", headers={"X-CSRF-Token": "guess"}), 403, "csrf_failed"
        )
        assert c.get("/portal/api/session").status_code == 200  # reads need no token
        assert c.cookies.get("portal_csrf") == body["csrfToken"]
        sid = c.cookies.get("portal_session")
        r = c.delete("/portal/api/session", headers={"X-CSRF-Token": body["csrfToken"]})
        assert r.status_code == 204
        assert c.cookies.get("portal_session") is None  # the cookie is cleared
        _error(c.get("/portal/api/session"), 401, "session_expired")
    with live.client(cookies={"portal_session": sid or ""}) as replay:
        error = _error(replay.get("/portal/api/session"), 401, "session_expired")
        assert error["reason"] == "logout"


def test_session_id_rotates_when_the_factor_is_verified(live: LiveTenant) -> None:
    user = add_portal_user(live, "rotate")
    with live.client() as c:
        r = _start(c, user)
        preauth = r.cookies["portal_preauth"]
        assert _verify(c, portal_totp(live, user)).status_code == 200
        assert c.cookies.get("portal_session") not in (None, preauth)
        with live.client(cookies={"portal_session": preauth}) as thief:
            _error(thief.get("/portal/api/session"), 401, "session_expired")


def test_sessions_listing_shows_states_without_secrets(live: LiveTenant) -> None:
    user = add_portal_user(live, "listing")
    with live.client() as c, live.client() as control:
        portal_login(live, c, user)
        rows = control.get("/_sandbox/sessions", params={"user": user.username}).json()
    assert rows[0]["state"] == "active"
    assert "id" not in rows[0]


# --- the envelope on bad input ------------------------------------------------------------------


def test_unknown_paths_and_methods_answer_the_envelope(live: LiveTenant) -> None:
    with live.client() as c:
        _error(c.get("/portal/api/nothing/here"), 404, "not_found")
        _error(c.get("/portal"), 404, "not_found")
        r = c.put("/portal/api/session", json={})
        _error(r, 405, "method_not_allowed")
        assert "POST" in r.headers["allow"]


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/portal/api/session", b"{not json"),
        ("/portal/api/session", b"[1, 2]"),
        ("/portal/api/session", b'{"username": 5, "password": []}'),
        ("/portal/api/session", b'{"username": "a", "password": "b", "deviceToken": 7}'),
        ("/portal/api/session/mfa/challenge", b'{"method": "pigeon"}'),
        ("/portal/api/session/mfa/challenge", b'{"method": ["sms"]}'),
        ("/portal/api/session/mfa/verify", b'{"code": 123456}'),
        ("/portal/api/session/mfa/verify", b'{"code": "123456", "rememberDevice": "yes"}'),
        ("/portal/api/session/mfa/verify", b'{"code": "123456"}'),
        ("/portal/api/session/mfa/verify", b"\xff\xfe"),
        (
            "/portal/api/session/mfa/verify",
            '{"code": "\uff11\uff12\uff13\uff14\uff15\uff16"}'.encode(),
        ),
    ],
)
def test_junk_never_gives_a_500(live: LiveTenant, path: str, content: bytes) -> None:
    with live.client() as c:
        c.post("/portal/api/session", json={"username": "x", "password": "y"})  # a pre-auth
        _start(c, add_portal_user(live, f"junk{len(path)}{len(content)}{content[:2].hex()}"))
        r = c.post(path, content=content, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()["error"]) >= {"code", "message"}


def test_validation_errors_name_the_field(live: LiveTenant) -> None:
    with live.client() as c:
        error = _error(
            c.post("/portal/api/session", json={"username": "x"}), 422, "validation_failed"
        )
    assert error["field"] == "password"
