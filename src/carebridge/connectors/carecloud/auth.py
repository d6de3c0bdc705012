"""Authentication flows of the three surfaces, written sans-IO.

Each flow is a generator, in the manner of httpx's ``Auth.auth_flow``: it yields an
``httpx.Request`` and is sent the ``httpx.Response``, or yields :class:`NeedCode` and is sent the
MFA code (or None when no source can answer). It returns the credential it obtained. The flows
never touch the network, a clock or a secret store, so they are tested by feeding responses,
and :func:`drive` runs them over any ``httpx.AsyncClient``.

- v2: OAuth 2.0 authorization-code exchange and refresh (HTTP Basic client auth), with rotation.
- portal: username and password, then an MFA challenge (TOTP, SMS or e-mail), or a remembered
  device token; the result is a session cookie and a CSRF token.
- Connector: SMART backend services, a client-credentials grant with a signed JWT assertion.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from carebridge.errors import AccountLocked, AuthError, MfaRequired, UnexpectedPayload
from carebridge.errors import SignInRefused as SignInRefused

T = TypeVar("T")
JSON = "application/json"


@dataclass(frozen=True)
class NeedCode:
    """A flow asks for an MFA code of ``method`` (sent to ``destination``, masked)."""

    method: str
    destination: str | None = None
    requested_at: datetime | None = None


Step = httpx.Request | NeedCode
Flow = Generator[Step, Any, T]


@dataclass(frozen=True)
class TokenSet:
    """A bearer credential and when it stops working."""

    access_token: str
    expires_at: datetime
    refresh_token: str | None = None
    scopes: tuple[str, ...] = ()

    def fresh(self, now: datetime, margin: timedelta = timedelta(seconds=60)) -> bool:
        """Still usable for ``margin`` from ``now``."""
        return now + margin < self.expires_at


@dataclass(frozen=True)
class PortalSession:
    """A signed-in portal session: its cookies, CSRF token and remembered-device token."""

    cookies: dict[str, str]
    csrf_token: str
    device_token: str | None = None
    user: dict[str, Any] = field(default_factory=dict)


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise UnexpectedPayload(f"{what}: the body is not JSON", field_path="$") from None
    if not isinstance(body, dict):
        raise UnexpectedPayload(f"{what}: the body is not an object", field_path="$")
    return body


def _token_set(body: dict[str, Any], now: datetime, default_ttl: int = 3600) -> TokenSet:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise UnexpectedPayload("token response without an access token", field_path="access_token")
    ttl = body.get("expires_in", default_ttl)
    if isinstance(ttl, str) and ttl.isdigit():
        ttl = int(ttl)
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        raise UnexpectedPayload("expires_in is not a number", field_path="expires_in")
    refresh = body.get("refresh_token")
    scope = body.get("scope") or ""
    return TokenSet(
        access_token=token,
        expires_at=now + timedelta(seconds=ttl),
        refresh_token=refresh if isinstance(refresh, str) else None,
        scopes=tuple(str(scope).split()),
    )


def _basic(client_id: str, client_secret: str) -> str:
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _refused(response: httpx.Response, what: str) -> AuthError:
    return AuthError(f"{what} refused with status {response.status_code}", endpoint=what)


# --- v2: OAuth 2.0 ---------------------------------------------------------------------------


def oauth_refresh(
    token_url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    *,
    now: datetime,
) -> Flow[TokenSet]:
    """Trade a refresh token for a new access token. With rotation the answer carries a new
    refresh token; without it the old one is kept."""
    response = yield httpx.Request(
        "POST",
        token_url,
        headers={"Authorization": _basic(client_id, client_secret), "Accept": JSON},
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )
    if response.status_code != 200:
        raise _refused(response, "refresh_token grant")
    tokens = _token_set(_json(response, "token response"), now)
    if tokens.refresh_token is None:
        tokens = TokenSet(tokens.access_token, tokens.expires_at, refresh_token, tokens.scopes)
    return tokens


def oauth_code_exchange(
    token_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    *,
    now: datetime,
) -> Flow[TokenSet]:
    """Trade an authorization code for tokens."""
    response = yield httpx.Request(
        "POST",
        token_url,
        headers={"Authorization": _basic(client_id, client_secret), "Accept": JSON},
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
    )
    if response.status_code != 200:
        raise _refused(response, "authorization_code grant")
    return _token_set(_json(response, "token response"), now)


# --- portal: password and MFA ----------------------------------------------------------------


def _cookies(response: httpx.Response, into: dict[str, str]) -> None:
    for name, value in response.cookies.items():
        into[name] = value


def _cookie_header(jar: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}


def _envelope_error(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _envelope_code(response: httpx.Response) -> str:
    code = _envelope_error(response).get("code")
    return code if isinstance(code, str) else "unknown"


LOCKOUT_FALLBACK = timedelta(minutes=15)  # when a 423 says neither lockedUntil nor Retry-After


def _locked_until(response: httpx.Response, now: datetime) -> datetime:
    stated = _envelope_error(response).get("lockedUntil")
    if isinstance(stated, str):
        try:
            until = datetime.fromisoformat(stated.replace("Z", "+00:00"))
        except ValueError:
            until = None
        if until is not None and until.tzinfo is not None:
            return until
    wait = response.headers.get("retry-after", "")
    if wait.isascii() and wait.isdigit():
        return now + timedelta(seconds=int(wait))
    return now + LOCKOUT_FALLBACK


def _portal_refusal(response: httpx.Response, what: str, endpoint: str, now: datetime) -> AuthError:
    """The typed error of a portal sign-in step that did not answer 200."""
    code = _envelope_code(response)
    if response.status_code == 423:
        return AccountLocked(
            f"{what}: the upstream locked the account",
            locked_until=_locked_until(response, now),
            endpoint=endpoint,
        )
    counted = response.status_code == 401 and endpoint != "POST /session/mfa/challenge"
    return SignInRefused(f"{what}: {code}", code=code, counted=counted, endpoint=endpoint)


def portal_login(
    api_url: str,
    username: str,
    password: str,
    *,
    methods: Sequence[str] = ("totp", "sms", "email"),
    device_token: str | None = None,
    remember_device: bool = True,
    now: datetime | None = None,
) -> Flow[PortalSession]:
    """Sign in to the portal; ask for a code by the first offered method in ``methods``.

    Raises:
        SignInRefused: wrong credentials or code (``code`` says which; ``counted`` when the
            upstream counts it toward a lockout).
        AccountLocked: the upstream locked the account, until ``locked_until``.
        MfaRequired: the code source had no code for the challenge.
    """
    moment = now or datetime.now(UTC)
    jar: dict[str, str] = {}
    body: dict[str, Any] = {"username": username, "password": password}
    if device_token:
        body["deviceToken"] = device_token
    response = yield httpx.Request(
        "POST", f"{api_url}/session", json=body, headers={"Accept": JSON}
    )
    _cookies(response, jar)
    if response.status_code != 200:
        raise _portal_refusal(response, "portal sign-in refused", "POST /session", moment)
    answer = _json(response, "portal sign-in")
    if answer.get("status") == "mfa_required":
        offered = [m for m in answer.get("methods", []) if isinstance(m, str)]
        method = next((m for m in methods if m in offered), None)
        if method is None:
            raise MfaRequired(
                "no configured MFA method is offered", challenge="portal", methods=tuple(offered)
            )
        response = yield httpx.Request(
            "POST",
            f"{api_url}/session/mfa/challenge",
            json={"method": method},
            headers={"Accept": JSON, **_cookie_header(jar)},
        )
        _cookies(response, jar)
        if response.status_code != 200:
            raise _portal_refusal(
                response, "MFA challenge refused", "POST /session/mfa/challenge", moment
            )
        challenge = _json(response, "MFA challenge")
        destination = challenge.get("destination")
        code = yield NeedCode(method, destination if isinstance(destination, str) else None, now)
        if not code:
            raise MfaRequired(
                f"no {method} code available", challenge="portal", methods=tuple(offered)
            )
        response = yield httpx.Request(
            "POST",
            f"{api_url}/session/mfa/verify",
            json={"code": code, "method": method, "rememberDevice": remember_device},
            headers={"Accept": JSON, **_cookie_header(jar)},
        )
        _cookies(response, jar)
        if response.status_code != 200:
            raise _portal_refusal(response, "MFA code refused", "POST /session/mfa/verify", moment)
        answer = _json(response, "MFA verification")
    if answer.get("status") != "authenticated" or not isinstance(answer.get("csrfToken"), str):
        raise UnexpectedPayload("portal sign-in ended without a session", field_path="status")
    device = answer.get("deviceToken") or device_token
    user = answer.get("user")
    return PortalSession(
        cookies=jar,
        csrf_token=answer["csrfToken"],
        device_token=device if isinstance(device, str) else None,
        user=user if isinstance(user, dict) else {},
    )


# --- Connector: SMART backend services -------------------------------------------------------


def client_assertion(
    client_id: str,
    token_url: str,
    private_key_pem: str,
    *,
    kid: str | None,
    alg: str,
    now: datetime,
    jti: str | None = None,
    lifetime: timedelta = timedelta(minutes=4),
) -> str:
    """A signed ``private_key_jwt`` client assertion (RS384 or ES384)."""
    if alg not in ("RS384", "ES384"):
        raise AuthError(f"unsupported assertion algorithm {alg}")
    key = (ECKey if alg.startswith("ES") else RSAKey).import_key(private_key_pem)
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": int((now + lifetime).timestamp()),
        "iat": int(now.timestamp()),
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode(header, claims, key, algorithms=[alg])


def smart_backend_token(
    token_url: str,
    client_id: str,
    private_key_pem: str,
    *,
    kid: str | None,
    alg: str = "ES384",
    scope: str = "system/*.read",
    now: datetime,
    jti: str | None = None,
) -> Flow[TokenSet]:
    """A client-credentials token for the Connector, authenticated by a signed JWT."""
    assertion = client_assertion(
        client_id, token_url, private_key_pem, kid=kid, alg=alg, now=now, jti=jti
    )
    response = yield httpx.Request(
        "POST",
        token_url,
        headers={"Accept": JSON},
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    if response.status_code != 200:
        raise _refused(response, "client_credentials grant")
    return _token_set(_json(response, "token response"), now, default_ttl=300)


# --- running a flow ---------------------------------------------------------------------------


CodeSource = Callable[[NeedCode], Awaitable[str | None]]
Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


async def drive(flow: Flow[T], send: Send, codes: CodeSource | None = None) -> T:
    """Run a flow, its requests through ``send`` (in the connector, ``AuthRunner.send``: the
    throttle, the policy and its retries); MFA requests go to ``codes`` (None answers nothing)."""
    try:
        step = next(flow)
        while True:
            if isinstance(step, NeedCode):
                answer: Any = await codes(step) if codes is not None else None
            else:
                answer = await send(step)
            step = flow.send(answer)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        flow.close()


def utcnow() -> datetime:
    """The current instant (the flows take ``now`` from their caller)."""
    return datetime.now(UTC)
