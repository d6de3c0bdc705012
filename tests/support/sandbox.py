"""A live emulated tenant on a loopback port, driven by plain httpx clients, and the helpers
that drive it: the portal's sign-in (password, then TOTP or a code from the outbox) and the
Connector's SMART backend-services tokens.

A tenant runs on a manual clock fixed at Tuesday 2026-11-24 15:00 UTC (09:00 in practice 1's
America/Chicago). The port is bound before the server starts, so no readiness polling is needed.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import uvicorn

from carecloud_sandbox import personas
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.tenant import Tenant

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
ANCHOR = date(2026, 11, 24)


@dataclass
class LiveTenant:
    """A running tenant and what a test needs to reach it."""

    tenant: Tenant
    clock: ManualClock
    base_url: str
    credentials: dict[str, Any]

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """A plain httpx client, with a bearer token when given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10, **kwargs)

    def free_start(self, day: str, minutes: int = 20) -> str:
        """A practice-local start on the persona resource that no booking overlaps for
        ``minutes``, within the morning or afternoon clinic of ``day`` (a winter date, UTC-6)."""
        for hour in (8, 9, 10, 11, 13, 14, 15, 16):
            for minute in (0, 20, 40):
                start = datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}:00-06:00")
                end = start + timedelta(minutes=minutes)
                if end.hour * 60 + end.minute > (12 * 60 if hour < 12 else 17 * 60):
                    continue
                taken = self.tenant.db.scalar(
                    "SELECT COUNT(*) FROM appointments WHERE resource_id = ? AND status_code "
                    "NOT IN ('C', 'R') AND start_time < ? AND end_time > ?",
                    (
                        personas.RESOURCE_ID,
                        end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    ),
                )
                if not taken:
                    return start.isoformat()
        raise AssertionError(f"no free {minutes}-minute start on {day}")

    def token(self, practice: int = 0, client_id: str | None = None) -> str:
        """An access token for practice ``practice`` (index into the credentials) by refresh."""
        app = self.credentials["practices"][practice]
        cid = client_id or self.credentials["client_id"]
        secret = (
            self.credentials["client_secret"]
            if cid == self.credentials["client_id"]
            else self.credentials["limited_client"]["client_secret"]
        )
        refresh = (
            app["refresh_token"]
            if cid == self.credentials["client_id"]
            else app["limited_refresh_token"]
        )
        with self.client() as c:
            r = c.post(
                "/oauth2/access_token",
                auth=(cid, secret),
                data={"grant_type": "refresh_token", "refresh_token": refresh},
            )
        r.raise_for_status()
        return str(r.json()["access_token"])


def start_live(config: SandboxConfig, *, state: str | None = None) -> tuple[LiveTenant, Any]:
    """Start a tenant server on a pre-bound loopback socket; return it and a stopper."""
    clock = ManualClock(START)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until the server thread accepts them
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    config = SandboxConfig(**{**config.__dict__, "base_url": base_url})
    tenant = Tenant.open(config, clock=clock, state=state)
    server = uvicorn.Server(
        uvicorn.Config(build_app(tenant), log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    with httpx.Client(base_url=base_url, timeout=10) as c:
        credentials = c.get("/_sandbox/credentials").json()
    live = LiveTenant(tenant=tenant, clock=clock, base_url=base_url, credentials=credentials)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        tenant.db.close()

    return live, stop


# --- the portal's sign-in -----------------------------------------------------------------------


@dataclass(frozen=True)
class PortalUser:
    """A user who signs in to the portal, with the secrets a test needs."""

    id: int
    username: str
    password: str
    totp_seed: str
    email: str
    phone: str


def portal_persona(live: LiveTenant) -> PortalUser:
    """The persona front-desk user of practice 1."""
    row = live.tenant.db.one("SELECT * FROM users WHERE id = ?", (personas.USER_ID,))
    assert row is not None
    return PortalUser(
        row["id"], row["username"], row["password"], row["totp_seed"], row["email"], row["phone"]
    )


def add_portal_user(live: LiveTenant, name: str, practice_id: int = 1) -> PortalUser:
    """A fresh portal user of ``practice_id`` (so a test's lockouts and sessions are its own)."""
    import base64
    import hashlib

    db = live.tenant.db
    user_id = int(db.scalar("SELECT MAX(id) FROM users") or 0) + 1
    seed = base64.b32encode(hashlib.sha256(name.encode()).digest()[:20]).decode()
    user = PortalUser(
        user_id,
        f"{name}@portal.example",
        f"pw-{name}-1",
        seed,
        f"{name}@portal.example",
        f"+1555010{user_id % 10000:04d}",
    )
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user.id,
                practice_id,
                user.username,
                user.password,
                "Test",
                name.title(),
                user.email,
                user.phone,
                user.totp_seed,
            ),
        )
    return user


def portal_totp(live: LiveTenant, user: PortalUser) -> str:
    """A TOTP code of a step nobody used yet: moves the tenant clock to the next 30 s step."""
    import pyotp

    live.clock.advance(timedelta(seconds=30))
    return str(pyotp.TOTP(user.totp_seed).at(live.clock.now()))


def portal_outbox_code(live: LiveTenant, channel: str, recipient: str) -> str:
    """The newest one-time code sent to ``recipient`` over ``channel``."""
    with live.client() as c:
        messages = c.get(
            "/_sandbox/outbox", params={"channel": channel, "recipient": recipient}
        ).json()
    return str(messages[0]["code"])


def portal_login(
    live: LiveTenant,
    client: httpx.Client,
    user: PortalUser,
    *,
    method: str = "totp",
    remember: bool = False,
) -> dict[str, Any]:
    """Sign ``client`` in through the whole MFA flow; sets its ``X-CSRF-Token`` header."""
    r = client.post(
        "/portal/api/session", json={"username": user.username, "password": user.password}
    )
    assert r.status_code == 200, r.text
    if r.json()["status"] == "mfa_required":
        assert client.post("/portal/api/session/mfa/challenge", json={"method": method}).is_success
        if method == "totp":
            code = portal_totp(live, user)
        else:
            code = portal_outbox_code(live, method, user.phone if method == "sms" else user.email)
        r = client.post(
            "/portal/api/session/mfa/verify", json={"code": code, "rememberDevice": remember}
        )
        assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    client.headers["X-CSRF-Token"] = body["csrfToken"]
    return body


# --- the Connector (FHIR R4, SMART backend services) ------------------------------------------

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def smart_credentials(live: LiveTenant) -> dict[str, Any]:
    """The default backend client of the Connector (its private key included)."""
    from carecloud_sandbox.fhir.auth import credentials

    return credentials(live.tenant)


def smart_assertion(
    live: LiveTenant,
    *,
    client_id: str | None = None,
    private_key: Any = None,
    kid: str | None = None,
    algorithm: str = "ES384",
    **overrides: Any,
) -> str:
    """A client assertion signed with PyJWT (the default client's key unless one is given);
    ``overrides`` replace claims (``None`` removes one)."""
    import uuid

    import jwt

    creds = smart_credentials(live)
    cid = client_id or creds["client_id"]
    claims: dict[str, Any] = {
        "iss": cid,
        "sub": cid,
        "aud": creds["token_url"],
        "exp": int(live.clock.now().timestamp()) + 240,
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    key = private_key if private_key is not None else creds["private_key_pem"]
    headers = {"kid": kid if kid is not None else creds["kid"]} if kid != "" else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def smart_token_response(
    live: LiveTenant,
    assertion: str,
    scope: str = "system/*.read",
    *,
    http: httpx.Client | None = None,
    **form: str,
) -> httpx.Response:
    """POST a client-credentials grant with ``assertion`` to the Connector's token endpoint."""
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "scope": scope,
        **form,
    }
    url = smart_credentials(live)["token_url"]
    if http is not None:
        return http.post(url, data=data)
    with live.client() as c:
        return c.post(url, data=data)


def smart_token(
    live: LiveTenant, scope: str = "system/*.read", *, http: httpx.Client | None = None
) -> str:
    """A Connector bearer token of the default backend client."""
    r = smart_token_response(live, smart_assertion(live), scope, http=http)
    r.raise_for_status()
    return str(r.json()["access_token"])


def fhir_base(live: LiveTenant, practice: int = 0) -> str:
    """The absolute FHIR base URL of practice ``practice`` (index, by id)."""
    return str(smart_credentials(live)["practices"][practice]["fhir_base"])
