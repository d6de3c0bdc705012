"""Portal sign-in: password, second factor, the session cookie, CSRF and the session rules.

Flow (a browser, or any cookie-keeping client)::

    POST /portal/api/session {username, password[, deviceToken]}
        -> 200 {"status": "mfa_required", "methods": [...], "destinations": {...}}
           + cookie portal_preauth (HttpOnly, path /portal/api/session)
        -> 200 {"status": "authenticated", ...} when a remembered device skips the factor
    POST /portal/api/session/mfa/challenge {method}        sms/email: a code goes to the outbox
    POST /portal/api/session/mfa/verify {code[, method][, rememberDevice]}
        -> 200 {"status": "authenticated", "csrfToken", "user", ...[, "deviceToken"]}
           + cookies portal_session (HttpOnly, SameSite=Lax, path /portal) and portal_csrf
             (readable), and portal_device when the device is remembered
    GET /portal/api/session       who am I
    DELETE /portal/api/session    sign out

Rules: every write echoes the CSRF token in ``X-CSRF-Token``; a session ends after
``portal_idle_timeout`` seconds without a request or ``portal_absolute_timeout`` seconds after
sign-in; a user holds at most ``portal_max_sessions`` sessions (a new one evicts the oldest);
``portal_lockout_threshold`` consecutive failures (password or code) lock the user for
``portal_lockout_seconds``; a TOTP step is good once; SMS and e-mail codes live
``mfa_code_ttl`` seconds. The session id rotates when the factor is verified.

Control plane: ``POST /_sandbox/sessions/kill`` ends sessions, ``POST /_sandbox/sessions/
force-mfa`` sends a user's active sessions back to the second factor, ``GET /_sandbox/outbox``
reads the messages "sent", ``GET /_sandbox/sessions`` lists sessions (without their ids).
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from carecloud_sandbox.portal import mfa
from carecloud_sandbox.portal.common import (
    Endpoint,
    PortalError,
    choice_field,
    error_response,
    invalid,
    json_response,
    read_body,
    seconds_between,
    text_field,
)
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.common import ApiError, from_db_instant, to_db_instant
from carecloud_sandbox.v2.common import error_response as control_error
from carecloud_sandbox.v2.common import json_response as control_json

SESSION_COOKIE = "portal_session"
PREAUTH_COOKIE = "portal_preauth"
CSRF_COOKIE = "portal_csrf"
DEVICE_COOKIE = "portal_device"
CSRF_HEADER = "x-csrf-token"
SESSION_PATH = "/portal"
AUTH_PATH = "/portal/api/session"


@dataclass(frozen=True)
class PortalSession:
    """An active, verified session: who is signed in and for which practice."""

    id: str
    user_id: int
    practice_id: int
    csrf_token: str
    created_at: str
    last_seen_at: str


PortalHandler = Callable[[Request, Tenant, PortalSession], Awaitable[Response]]
PublicHandler = Callable[[Request, Tenant], Awaitable[Response]]


# --- wrappers ---------------------------------------------------------------------------------


def log_write(
    tenant: Tenant,
    conn: sqlite3.Connection,
    session: PortalSession,
    entity: str,
    entity_id: int | str,
    action: str,
    at: str,
) -> None:
    """Append a portal write to the change log, in the write's transaction."""
    tenant.db.log_change(
        conn,
        at=at,
        practice_id=session.practice_id,
        entity=entity,
        entity_id=entity_id,
        action=action,
        source="portal",
    )


def portal(tenant: Tenant, handler: PortalHandler, *, write: bool = False) -> Endpoint:
    """Wrap a handler that needs a verified session (and, for a write, the CSRF token)."""

    async def endpoint(request: Request) -> Response:
        try:
            session = resolve(tenant, request, write=write)
            return await handler(request, tenant, session)
        except PortalError as err:
            return error_response(err)

    return endpoint


def public(tenant: Tenant, handler: PublicHandler) -> Endpoint:
    """Wrap a handler of the sign-in flow (no session needed)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, tenant)
        except PortalError as err:
            return error_response(err)

    return endpoint


def session_expired(reason: str | None = None) -> PortalError:
    """The 401 of a missing, ended or expired session."""
    extra = {"reason": reason} if reason else None
    return PortalError(401, "session_expired", "The session has ended; sign in again.", extra=extra)


def mfa_required() -> PortalError:
    """The 401 of a session that must pass the second factor (again)."""
    return PortalError(
        401,
        "mfa_required",
        "Verify the second factor to continue.",
        extra={"methods": list(mfa.METHODS)},
    )


def _expiry_reason(tenant: Tenant, row: sqlite3.Row, now: str) -> str | None:
    config = tenant.config
    if seconds_between(row["last_seen_at"], now) >= config.portal_idle_timeout:
        return "idle_timeout"
    if seconds_between(row["created_at"], now) >= config.portal_absolute_timeout:
        return "absolute_timeout"
    return None


def _end(conn: sqlite3.Connection, session_id: str, reason: str) -> None:
    conn.execute(
        "UPDATE portal_sessions SET state = 'ended', ended_reason = ?, mfa_code = NULL "
        "WHERE id = ? AND state != 'ended'",
        (reason, session_id),
    )


def resolve(tenant: Tenant, request: Request, *, write: bool) -> PortalSession:
    """The request's verified session; refreshes its idle clock.

    Raises:
        PortalError: 401 ``session_expired`` or ``mfa_required``, 403 ``csrf_failed``.
    """
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        raise PortalError(401, "session_expired", "Sign in to continue.", extra={"reason": "none"})
    now = tenant.now_db()
    outcome: PortalError | PortalSession
    with tenant.db.transaction() as conn:
        row = conn.execute(
            "SELECT s.*, u.practice_id FROM portal_sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id = ?",
            (sid,),
        ).fetchone()
        if row is None or row["state"] == "ended":
            outcome = session_expired(None if row is None else row["ended_reason"])
        elif (reason := _expiry_reason(tenant, row, now)) is not None:
            _end(conn, sid, reason)
            outcome = session_expired(reason)
        elif row["state"] != "active":
            outcome = mfa_required()
        elif write and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), str(row["csrf_token"]).encode()
        ):
            outcome = PortalError(403, "csrf_failed", "The CSRF token is missing or wrong.")
        else:
            conn.execute("UPDATE portal_sessions SET last_seen_at = ? WHERE id = ?", (now, sid))
            outcome = PortalSession(
                id=sid,
                user_id=int(row["user_id"]),
                practice_id=int(row["practice_id"]),
                csrf_token=str(row["csrf_token"]),
                created_at=str(row["created_at"]),
                last_seen_at=now,
            )
    if isinstance(outcome, PortalError):
        raise outcome
    return outcome


# --- user state -------------------------------------------------------------------------------


def _user_state(conn: sqlite3.Connection, user_id: int) -> sqlite3.Row:
    conn.execute("INSERT OR IGNORE INTO portal_user_state(user_id) VALUES (?)", (user_id,))
    row: sqlite3.Row = conn.execute(
        "SELECT * FROM portal_user_state WHERE user_id = ?", (user_id,)
    ).fetchone()
    return row


def _locked(state: sqlite3.Row, now: str) -> PortalError | None:
    until = state["locked_until"]
    if until is None or until <= now:
        return None
    wait = max(1, int(seconds_between(now, until)))
    return PortalError(
        423,
        "account_locked",
        "Too many failed attempts; the account is locked for now.",
        extra={"lockedUntil": until},
        headers={"Retry-After": str(wait)},
    )


def _fail(
    tenant: Tenant, conn: sqlite3.Connection, user_id: int, now: str, error: PortalError
) -> PortalError:
    """Count one failure; return the lockout when it reaches the threshold, else ``error``."""
    state = _user_state(conn, user_id)
    failures = int(state["failed_attempts"]) + 1
    if failures >= tenant.config.portal_lockout_threshold:
        until = to_db_instant(
            from_db_instant(now) + timedelta(seconds=tenant.config.portal_lockout_seconds)
        )
        conn.execute(
            "UPDATE portal_user_state SET failed_attempts = 0, locked_until = ? WHERE user_id = ?",
            (until, user_id),
        )
        locked = _locked(_user_state(conn, user_id), now)
        return locked or error
    conn.execute(
        "UPDATE portal_user_state SET failed_attempts = ? WHERE user_id = ?", (failures, user_id)
    )
    return error


def _sweep(tenant: Tenant, conn: sqlite3.Connection, user_id: int, now: str) -> None:
    """End the user's sessions that have timed out but were not touched since."""
    moment = from_db_instant(now)
    idle = to_db_instant(moment - timedelta(seconds=tenant.config.portal_idle_timeout))
    absolute = to_db_instant(moment - timedelta(seconds=tenant.config.portal_absolute_timeout))
    for reason, column, limit in (
        ("idle_timeout", "last_seen_at", idle),
        ("absolute_timeout", "created_at", absolute),
    ):
        conn.execute(
            f"UPDATE portal_sessions SET state = 'ended', ended_reason = ?, mfa_code = NULL "
            f"WHERE user_id = ? AND state != 'ended' AND {column} <= ?",
            (reason, user_id, limit),
        )


def _evict(tenant: Tenant, conn: sqlite3.Connection, user_id: int, keep: str) -> None:
    """End the oldest active sessions so that, with ``keep``, the user stays within the cap."""
    others = conn.execute(
        "SELECT id FROM portal_sessions WHERE user_id = ? AND state = 'active' AND id != ? "
        "ORDER BY created_at, rowid",
        (user_id, keep),
    ).fetchall()
    excess = len(others) - (tenant.config.portal_max_sessions - 1)
    for row in others[: max(excess, 0)]:
        _end(conn, row["id"], "evicted")


def _activate(
    tenant: Tenant,
    conn: sqlite3.Connection,
    user_id: int,
    now: str,
    *,
    old_id: str | None,
    fresh: bool,
) -> tuple[str, str]:
    """Make a verified session (rotating the id of ``old_id`` when given); return (id, csrf)."""
    session_id, csrf = Tenant.new_token(), Tenant.new_token()
    if old_id is None:
        conn.execute(
            "INSERT INTO portal_sessions(id, user_id, csrf_token, state, created_at, last_seen_at) "
            "VALUES (?, ?, ?, 'active', ?, ?)",
            (session_id, user_id, csrf, now, now),
        )
    else:
        conn.execute(
            "UPDATE portal_sessions SET id = ?, csrf_token = ?, state = 'active', mfa_code = NULL, "
            "mfa_attempts = 0, last_seen_at = ?, created_at = CASE WHEN ? THEN ? ELSE created_at END "
            "WHERE id = ?",
            (session_id, csrf, now, int(fresh), now, old_id),
        )
    conn.execute(
        "UPDATE portal_user_state SET failed_attempts = 0, force_mfa = 0 WHERE user_id = ?",
        (user_id,),
    )
    _sweep(tenant, conn, user_id, now)
    _evict(tenant, conn, user_id, session_id)
    return session_id, csrf


def _user_json(conn: sqlite3.Connection, user_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT u.*, p.name AS practice_name, p.business_entity_id FROM users u "
        "JOIN practices p ON p.id = u.practice_id WHERE u.id = ?",
        (user_id,),
    ).fetchone()
    return {
        "id": row["id"],
        "username": row["username"],
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "practice": {
            "id": row["practice_id"],
            "name": row["practice_name"],
            "businessEntityId": row["business_entity_id"],
        },
    }


def _authenticated(
    tenant: Tenant, conn: sqlite3.Connection, user_id: int, session_id: str, csrf: str, now: str
) -> dict[str, Any]:
    config = tenant.config
    created = conn.execute(
        "SELECT created_at FROM portal_sessions WHERE id = ?", (session_id,)
    ).fetchone()[0]
    expires = from_db_instant(created) + timedelta(seconds=config.portal_absolute_timeout)
    return {
        "status": "authenticated",
        "csrfToken": csrf,
        "user": _user_json(conn, user_id),
        "idleTimeout": config.portal_idle_timeout,
        "expiresAt": to_db_instant(expires),
        "signedInAt": now,
    }


def _session_cookies(tenant: Tenant, response: Response, session_id: str, csrf: str) -> None:
    del tenant
    response.set_cookie(
        SESSION_COOKIE, session_id, path=SESSION_PATH, httponly=True, samesite="lax"
    )
    response.set_cookie(CSRF_COOKIE, csrf, path=SESSION_PATH, httponly=False, samesite="lax")
    response.delete_cookie(PREAUTH_COOKIE, path=AUTH_PATH, httponly=True, samesite="lax")


# --- sign-in ------------------------------------------------------------------------------------


def _invalid_credentials() -> PortalError:
    return PortalError(401, "invalid_credentials", "The username or password is incorrect.")


async def login(request: Request, tenant: Tenant) -> Response:
    """``POST /portal/api/session``: check the password, then ask for the second factor."""
    body = await read_body(request, tenant.config.max_body_bytes)
    username = text_field(body, "username", required=True, max_len=254) or ""
    password = body.get("password")
    if not isinstance(password, str) or not password:
        raise invalid("password", "This field is required.")
    device = body.get("deviceToken", request.cookies.get(DEVICE_COOKIE))
    if device is not None and not isinstance(device, str):
        raise invalid("deviceToken", "Must be a string.")
    now = tenant.now_db()
    outcome: PortalError | Response
    with tenant.db.transaction() as conn:
        user = conn.execute(
            "SELECT * FROM users WHERE lower(username) = lower(?)", (username,)
        ).fetchone()
        if user is None:
            outcome = _invalid_credentials()
        else:
            outcome = _login_user(tenant, conn, user, password, device, now)
    if isinstance(outcome, PortalError):
        raise outcome
    return outcome


def _login_user(
    tenant: Tenant,
    conn: sqlite3.Connection,
    user: sqlite3.Row,
    password: str,
    device: str | None,
    now: str,
) -> PortalError | Response:
    user_id = int(user["id"])
    state = _user_state(conn, user_id)
    locked = _locked(state, now)
    if locked is not None:
        return locked
    if not hmac.compare_digest(password.encode(), str(user["password"]).encode()):
        return _fail(tenant, conn, user_id, now, _invalid_credentials())
    remembered = (
        device
        and not state["force_mfa"]
        and conn.execute(
            "SELECT 1 FROM portal_devices WHERE token = ? AND user_id = ? AND revoked = 0 "
            "AND expires_at > ?",
            (device, user_id, now),
        ).fetchone()
        is not None
    )
    if remembered:
        session_id, csrf = _activate(tenant, conn, user_id, now, old_id=None, fresh=True)
        response = json_response(_authenticated(tenant, conn, user_id, session_id, csrf, now))
        _session_cookies(tenant, response, session_id, csrf)
        return response
    preauth = Tenant.new_token()
    conn.execute(
        "INSERT INTO portal_sessions(id, user_id, csrf_token, state, created_at, last_seen_at) "
        "VALUES (?, ?, ?, 'mfa_pending', ?, ?)",
        (preauth, user_id, Tenant.new_token(), now, now),
    )
    response = json_response(
        {
            "status": "mfa_required",
            "methods": list(mfa.METHODS),
            "destinations": mfa.destinations(user["phone"], user["email"]),
            "codeTtl": tenant.config.mfa_code_ttl,
        }
    )
    response.set_cookie(PREAUTH_COOKIE, preauth, path=AUTH_PATH, httponly=True, samesite="lax")
    return response


def _pending(
    tenant: Tenant, conn: sqlite3.Connection, request: Request, now: str
) -> tuple[sqlite3.Row, bool] | PortalError:
    """The session waiting for its factor (a re-challenged session first, then the pre-auth
    one) and whether it is the pre-auth one."""
    for cookie, fresh in ((SESSION_COOKIE, False), (PREAUTH_COOKIE, True)):
        sid = request.cookies.get(cookie)
        if not sid:
            continue
        row = conn.execute(
            "SELECT s.*, u.totp_seed, u.phone, u.email FROM portal_sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.id = ? AND s.state = 'mfa_pending'",
            (sid,),
        ).fetchone()
        if row is None:
            continue
        reason = _expiry_reason(tenant, row, now)
        if reason is not None:
            _end(conn, sid, reason)
            return session_expired(reason)
        return row, fresh
    return session_expired("none")


async def challenge(request: Request, tenant: Tenant) -> Response:
    """``POST /portal/api/session/mfa/challenge {method}``: pick the factor; SMS and e-mail
    send a fresh code."""
    body = await read_body(request, tenant.config.max_body_bytes)
    method = choice_field(body, "method", mfa.METHODS)
    if method is None:
        raise invalid("method", "This field is required.")
    now = tenant.now_db()
    outcome: PortalError | dict[str, Any]
    with tenant.db.transaction() as conn:
        found = _pending(tenant, conn, request, now)
        if isinstance(found, PortalError):
            outcome = found
        else:
            row, _ = found
            locked = _locked(_user_state(conn, int(row["user_id"])), now)
            outcome = locked or _send(tenant, conn, row, method, now)
    if isinstance(outcome, PortalError):
        raise outcome
    return json_response(outcome)


def _send(
    tenant: Tenant, conn: sqlite3.Connection, row: sqlite3.Row, method: str, now: str
) -> dict[str, Any]:
    if method == "totp":
        conn.execute(
            "UPDATE portal_sessions SET mfa_method = 'totp', mfa_code = NULL WHERE id = ?",
            (row["id"],),
        )
        return {"status": "challenge_ready", "method": "totp", "destination": "authenticator app"}
    code = mfa.new_code()
    recipient = row["phone"] if method == "sms" else row["email"]
    mfa.send_code(
        conn,
        channel=method,
        recipient=recipient,
        code=code,
        at=now,
        ttl=tenant.config.mfa_code_ttl,
    )
    conn.execute(
        "UPDATE portal_sessions SET mfa_method = ?, mfa_code = ?, mfa_attempts = 0, "
        "last_seen_at = ? WHERE id = ?",
        (method, code, now, row["id"]),
    )
    return {
        "status": "challenge_sent",
        "method": method,
        "destination": mfa.destinations(row["phone"], row["email"])[method],
        "expiresIn": tenant.config.mfa_code_ttl,
    }


async def verify(request: Request, tenant: Tenant) -> Response:
    """``POST /portal/api/session/mfa/verify {code[, method][, rememberDevice]}``."""
    body = await read_body(request, tenant.config.max_body_bytes)
    code = body.get("code")
    if not isinstance(code, str) or not code.strip():
        raise invalid("code", "This field is required.")
    if len(code) > 16:
        raise invalid("code", "Must be a 6-digit code.")
    method = choice_field(body, "method", mfa.METHODS)
    remember = body.get("rememberDevice", False)
    if not isinstance(remember, bool):
        raise invalid("rememberDevice", "Must be true or false.")
    now = tenant.now_db()
    outcome: PortalError | Response
    with tenant.db.transaction() as conn:
        found = _pending(tenant, conn, request, now)
        if isinstance(found, PortalError):
            outcome = found
        else:
            row, fresh = found
            refused = _verify(tenant, conn, row, code.strip(), method, now)
            outcome = refused or _verified(
                tenant, conn, row, fresh=fresh, remember=remember, now=now
            )
    if isinstance(outcome, PortalError):
        raise outcome
    return outcome


def _verify(
    tenant: Tenant,
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    code: str,
    method: str | None,
    now: str,
) -> PortalError | None:
    """Check the code; None when it is good (the TOTP step is then spent)."""
    user_id = int(row["user_id"])
    state = _user_state(conn, user_id)
    locked = _locked(state, now)
    if locked is not None:
        return locked
    method = method or row["mfa_method"] or "totp"
    conn.execute(
        "UPDATE portal_sessions SET mfa_attempts = mfa_attempts + 1 WHERE id = ?", (row["id"],)
    )
    if method == "totp":
        check = mfa.check_totp(
            row["totp_seed"], code, tenant.now(), int(state["last_totp_step"] or 0)
        )
        if check.step is None:
            return _fail(tenant, conn, user_id, now, _wrong_code())
        if check.reused:
            return _fail(
                tenant,
                conn,
                user_id,
                now,
                PortalError(
                    401, "mfa_code_reused", "This code was already used; wait for the next one."
                ),
            )
        conn.execute(
            "UPDATE portal_user_state SET last_totp_step = ? WHERE user_id = ?",
            (check.step, user_id),
        )
        return None
    sent = row["mfa_code"]
    if row["mfa_method"] != method or not sent:
        return PortalError(
            401,
            "invalid_mfa_code",
            "No code was sent for this method; request one first.",
            field="code",
        )
    if not hmac.compare_digest(code.encode(), str(sent).encode()):
        return _fail(tenant, conn, user_id, now, _wrong_code())
    if seconds_between(row["last_seen_at"], now) > tenant.config.mfa_code_ttl:
        conn.execute("UPDATE portal_sessions SET mfa_code = NULL WHERE id = ?", (row["id"],))
        return PortalError(
            401, "mfa_code_expired", "The code has expired; request a new one.", field="code"
        )
    return None


def _wrong_code() -> PortalError:
    return PortalError(401, "invalid_mfa_code", "The code is not valid.", field="code")


def _verified(
    tenant: Tenant,
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    *,
    fresh: bool,
    remember: bool,
    now: str,
) -> Response:
    user_id = int(row["user_id"])
    session_id, csrf = _activate(tenant, conn, user_id, now, old_id=row["id"], fresh=fresh)
    body = _authenticated(tenant, conn, user_id, session_id, csrf, now)
    device: str | None = None
    if remember:
        device = Tenant.new_token()
        expires = from_db_instant(now) + timedelta(seconds=tenant.config.portal_device_ttl)
        conn.execute(
            "INSERT INTO portal_devices(token, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (device, user_id, now, to_db_instant(expires)),
        )
        body["deviceToken"] = device
        body["deviceExpiresAt"] = to_db_instant(expires)
    response = json_response(body)
    _session_cookies(tenant, response, session_id, csrf)
    if device is not None:
        response.set_cookie(
            DEVICE_COOKIE,
            device,
            max_age=tenant.config.portal_device_ttl,
            path=AUTH_PATH,
            httponly=True,
            samesite="lax",
        )
    return response


async def whoami(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``GET /portal/api/session``: the signed-in user and the session's clocks."""
    del request
    config = tenant.config
    created = from_db_instant(session.created_at)
    seen = from_db_instant(session.last_seen_at)
    with tenant.db.lock:
        user = _user_json(tenant.db.conn, session.user_id)
    return json_response(
        {
            "status": "authenticated",
            "user": user,
            "csrfToken": session.csrf_token,
            "signedInAt": session.created_at,
            "lastSeenAt": session.last_seen_at,
            "idleExpiresAt": to_db_instant(seen + timedelta(seconds=config.portal_idle_timeout)),
            "expiresAt": to_db_instant(created + timedelta(seconds=config.portal_absolute_timeout)),
        }
    )


async def logout(request: Request, tenant: Tenant, session: PortalSession) -> Response:
    """``DELETE /portal/api/session``: end the session and clear its cookies."""
    del request
    with tenant.db.transaction() as conn:
        _end(conn, session.id, "logout")
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path=SESSION_PATH, httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path=SESSION_PATH, samesite="lax")
    return response


# --- control plane -----------------------------------------------------------------------------


async def _control_body(request: Request, tenant: Tenant) -> dict[str, Any]:
    try:
        return await read_body(request, tenant.config.max_body_bytes)
    except PortalError as err:
        raise ApiError(err.status, err.message) from None


def _control_user(tenant: Tenant, body: dict[str, Any], *, required: bool) -> int | None:
    name = body.get("user")
    if name is None:
        if required:
            raise ApiError(400, "user is required")
        return None
    if not isinstance(name, str):
        raise ApiError(400, "user must be a username")
    user_id = tenant.db.scalar("SELECT id FROM users WHERE lower(username) = lower(?)", (name,))
    if user_id is None:
        raise ApiError(404, "no such user")
    return int(user_id)


def control(tenant: Tenant, fn: PublicHandler) -> Endpoint:
    """Wrap a control-plane handler (control-plane error style: ``{"error": "<text>"}``)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request, tenant)
        except ApiError as err:
            return control_error(err)

    return endpoint


async def kill_sessions(request: Request, tenant: Tenant) -> Response:
    """``POST /_sandbox/sessions/kill {"user": username}`` (or ``{}`` for everyone)."""
    user_id = _control_user(tenant, await _control_body(request, tenant), required=False)
    with tenant.db.transaction() as conn:
        if user_id is None:
            cursor = conn.execute(
                "UPDATE portal_sessions SET state = 'ended', ended_reason = 'killed', "
                "mfa_code = NULL WHERE state != 'ended'"
            )
        else:
            cursor = conn.execute(
                "UPDATE portal_sessions SET state = 'ended', ended_reason = 'killed', "
                "mfa_code = NULL WHERE state != 'ended' AND user_id = ?",
                (user_id,),
            )
    return control_json({"killed": cursor.rowcount})


async def force_mfa(request: Request, tenant: Tenant) -> Response:
    """``POST /_sandbox/sessions/force-mfa {"user": username}``: the user's active sessions must
    verify the second factor again, and remembered devices stop skipping it until they do."""
    user_id = _control_user(tenant, await _control_body(request, tenant), required=True)
    with tenant.db.transaction() as conn:
        _user_state(conn, int(user_id or 0))
        conn.execute("UPDATE portal_user_state SET force_mfa = 1 WHERE user_id = ?", (user_id,))
        cursor = conn.execute(
            "UPDATE portal_sessions SET state = 'mfa_pending', mfa_method = NULL, mfa_code = NULL "
            "WHERE user_id = ? AND state = 'active'",
            (user_id,),
        )
    return control_json({"sessions": cursor.rowcount})


async def list_sessions(request: Request, tenant: Tenant) -> Response:
    """``GET /_sandbox/sessions[?user=]``: sessions, newest first, without their secrets."""
    user_id = _control_user(tenant, dict(request.query_params), required=False)
    where, params = ("WHERE s.user_id = ?", (user_id,)) if user_id is not None else ("", ())
    rows = tenant.db.all(
        "SELECT u.username, s.state, s.mfa_method, s.created_at, s.last_seen_at, s.ended_reason "
        f"FROM portal_sessions s JOIN users u ON u.id = s.user_id {where} "
        "ORDER BY s.created_at DESC, s.rowid DESC LIMIT 500",
        params,
    )
    return control_json([dict(r) for r in rows])


async def outbox(request: Request, tenant: Tenant) -> Response:
    """``GET /_sandbox/outbox[?channel=&recipient=&limit=]``: messages "sent", newest first."""
    where: list[str] = []
    params: list[Any] = []
    for name in ("channel", "recipient"):
        value = request.query_params.get(name)
        if value:
            where.append(f"{name} = ?")
            params.append(value)
    raw_limit = request.query_params.get("limit", "50")
    if (
        not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 4)
        or not 1 <= int(raw_limit) <= 1000
    ):
        raise ApiError(400, "limit must be an integer from 1 to 1000")
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rows = tenant.db.all(
        f"SELECT * FROM outbox{clause} ORDER BY id DESC LIMIT ?", (*params, int(raw_limit))
    )
    return control_json([dict(r) for r in rows])
