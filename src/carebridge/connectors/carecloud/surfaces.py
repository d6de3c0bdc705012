"""The three surfaces' secrets, brokers and request decoration, assembled per tenant.

A tenant's connection is three :class:`~carebridge.connectors.carecloud.client.SurfaceClient`
objects sharing one ``httpx.AsyncClient`` (the transport seam) and one adaptive throttle:

- ``v2``: bearer token from the OAuth refresh grant; a rotated refresh token is handed to
  ``on_rotate`` (the vault) and kept for the next renewal;
- ``portal``: session cookie and CSRF token from a sign-in with MFA codes from the sources;
- ``fhir``: bearer token from the SMART backend-services grant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from http.cookiejar import Cookie, CookieJar
from typing import Any, TypeVar

import httpx

from carebridge.connectors.carecloud import auth
from carebridge.connectors.carecloud.auth import CodeSource, NeedCode, PortalSession, TokenSet
from carebridge.connectors.carecloud.client import DEFAULT_TIMEOUT, AuthRunner, SurfaceClient
from carebridge.connectors.carecloud.mfa import SignInGuard
from carebridge.connectors.carecloud.policy import Surface
from carebridge.connectors.carecloud.session import Broker
from carebridge.connectors.carecloud.throttle import AimdThrottle
from carebridge.connectors.carecloud.transport import PooledTransport, http_transport
from carebridge.errors import AccountLocked

C = TypeVar("C")


@dataclass(frozen=True)
class V2Secrets:
    """What the OAuth refresh grant needs."""

    token_url: str
    client_id: str
    client_secret: str
    refresh_token: str


@dataclass(frozen=True)
class PortalSecrets:
    """What a portal sign-in needs; ``codes`` are asked in order until one answers."""

    api_url: str
    username: str
    password: str
    codes: Sequence[CodeSource] = ()
    methods: Sequence[str] = ("totp", "sms", "email")
    device_token: str | None = None
    guard: SignInGuard | None = None  # the account's shared failure and lockout record


@dataclass(frozen=True)
class SmartSecrets:
    """What the SMART backend-services grant needs."""

    token_url: str
    client_id: str
    private_key_pem: str
    kid: str | None
    alg: str = "ES384"
    scope: str = "system/*.read"


def first_code(sources: Sequence[CodeSource]) -> CodeSource:
    """One code source that asks each of ``sources`` in turn."""

    async def ask(need: NeedCode) -> str | None:
        for source in sources:
            code = await source(need)
            if code:
                return code
        return None

    return ask


def v2_broker(
    runner: AuthRunner,
    secrets: V2Secrets,
    clock: Callable[[], datetime],
    *,
    on_rotate: Callable[[str], None] | None = None,
    margin: timedelta = timedelta(seconds=60),
) -> Broker[TokenSet, V2Secrets]:
    """The v2 broker: refresh grant, keeping a rotated refresh token."""
    broker: Broker[TokenSet, V2Secrets]

    async def renew(s: V2Secrets, current: TokenSet | None) -> TokenSet:
        del current
        tokens = await runner.run(
            lambda: auth.oauth_refresh(
                s.token_url, s.client_id, s.client_secret, s.refresh_token, now=clock()
            )
        )
        if tokens.refresh_token and tokens.refresh_token != s.refresh_token:
            broker.remember(replace(s, refresh_token=tokens.refresh_token))
            if on_rotate is not None:
                on_rotate(tokens.refresh_token)
        return tokens

    broker = Broker(
        "v2", secrets, renew, expires=lambda t: t.expires_at, clock=clock, margin=margin
    )
    return broker


def portal_broker(
    runner: AuthRunner, secrets: PortalSecrets, clock: Callable[[], datetime]
) -> Broker[PortalSession, PortalSecrets]:
    """The portal broker: sign-in with MFA, reusing the remembered-device token.

    With a guard, a sign-in first asks the account's shared record whether it may start, and
    records how it ended: a refusal the upstream counts, the upstream's lockout, or a success.
    """
    broker: Broker[PortalSession, PortalSecrets]

    async def renew(s: PortalSecrets, current: PortalSession | None) -> PortalSession:
        device = (current.device_token if current else None) or s.device_token
        guard = s.guard
        if guard is not None:
            await guard.admit()
        try:
            session = await runner.run(
                lambda: auth.portal_login(
                    s.api_url,
                    s.username,
                    s.password,
                    methods=s.methods,
                    device_token=device,
                    now=clock(),
                ),
                first_code(s.codes),
            )
        except AccountLocked as err:
            if guard is not None:
                await guard.locked(err.locked_until)
            raise
        except auth.SignInRefused as err:
            if guard is not None and err.counted:
                raise await guard.refused(err) from err
            raise
        if guard is not None:
            await guard.succeeded()
        if session.device_token and session.device_token != s.device_token:
            broker.remember(replace(s, device_token=session.device_token))
        return session

    broker = Broker("portal", secrets, renew, expires=lambda _: None, clock=clock)
    return broker


def smart_broker(
    runner: AuthRunner,
    secrets: SmartSecrets,
    clock: Callable[[], datetime],
    *,
    margin: timedelta = timedelta(seconds=30),
) -> Broker[TokenSet, SmartSecrets]:
    """The Connector broker: a new client-credentials token before the old one expires."""

    async def renew(s: SmartSecrets, current: TokenSet | None) -> TokenSet:
        del current
        return await runner.run(
            lambda: auth.smart_backend_token(
                s.token_url,
                s.client_id,
                s.private_key_pem,
                kid=s.kid,
                alg=s.alg,
                scope=s.scope,
                now=clock(),
            )
        )

    return Broker(
        "fhir", secrets, renew, expires=lambda t: t.expires_at, clock=clock, margin=margin
    )


def bearer(request: httpx.Request, tokens: TokenSet) -> None:
    """Put a bearer token on a request."""
    request.headers["Authorization"] = f"Bearer {tokens.access_token}"


def fhir_bearer(request: httpx.Request, tokens: TokenSet) -> None:
    """A bearer token and the FHIR media type."""
    bearer(request, tokens)
    request.headers.setdefault("Accept", "application/fhir+json")


def portal_cookies(request: httpx.Request, session: PortalSession) -> None:
    """The session cookies, and the CSRF token on writes."""
    request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        request.headers["X-CSRF-Token"] = session.csrf_token


class NoCookies(CookieJar):
    """A cookie jar that keeps nothing (an httpx client's, whose requests carry their cookies
    explicitly)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        del response, request

    def set_cookie(self, cookie: Cookie) -> None:
        del cookie


class _NoAnswerCookies(httpx.Cookies):
    """The client's cookies: none, and an answer's are not even looked at (httpx hands each
    answer to the jar through urllib's compatibility objects, a copy of the request's headers
    per answer, only for :class:`NoCookies` to drop them)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        del response


class _Client(httpx.AsyncClient):
    """The connection's httpx client: one that keeps no cookies (see :func:`connect`)."""

    _none = _NoAnswerCookies(NoCookies())

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        del cookies  # nothing is kept


@dataclass
class Connection:
    """One tenant's clients for the three surfaces, sharing a transport and a throttle."""

    http: httpx.AsyncClient
    throttle: AimdThrottle
    v2: SurfaceClient[TokenSet] | None = None
    portal: SurfaceClient[PortalSession] | None = None
    fhir: SurfaceClient[TokenSet] | None = None

    async def aclose(self) -> None:
        """Close the shared HTTP client."""
        await self.http.aclose()


def connect(
    *,
    clock: Callable[[], datetime],
    transport: httpx.AsyncBaseTransport | None = None,
    v2: V2Secrets | None = None,
    portal: PortalSecrets | None = None,
    fhir: SmartSecrets | None = None,
    throttle: AimdThrottle | None = None,
    on_rotate: Callable[[str], None] | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    attempts: int = 8,
) -> Connection:
    """Assemble a tenant's connection over one ``httpx.AsyncClient``.

    The client keeps no cookies: the portal's session cookies are the broker's credential,
    put on each portal request by :func:`portal_cookies` (the sign-in reads each answer's own
    cookies), so a shared jar would only parse every answer's headers and send the portal's
    session to the other surfaces. Its pool keeps as many idle connections as the throttle
    lets requests run at once.

    Without a ``transport``, the client's is a :class:`~.transport.PooledTransport` (100
    connections), or httpx's own when ``CAREBRIDGE_HTTP_TRANSPORT=httpx``; either belongs to
    the event loop it first runs on.

    Raises:
        ConfigError: ``CAREBRIDGE_HTTP_TRANSPORT`` names neither ``pooled`` nor ``httpx``.
    """
    gate = throttle or AimdThrottle()
    most = gate.config.max_concurrency
    if transport is None and http_transport() == "pooled":
        transport = PooledTransport(max_connections=100, max_keepalive=most)
    http = _Client(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        cookies=NoCookies(),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=most),
    )
    conn = Connection(http=http, throttle=gate)

    def runner(surface: Surface) -> AuthRunner:
        return AuthRunner(surface, http, gate, attempts=attempts)

    def client(
        surface: Surface, broker: Broker[C, Any], apply: Callable[[httpx.Request, C], None]
    ) -> SurfaceClient[C]:
        return SurfaceClient(surface, http, broker, apply, gate, attempts=attempts)

    if v2 is not None:
        conn.v2 = client("v2", v2_broker(runner("v2"), v2, clock, on_rotate=on_rotate), bearer)
    if portal is not None:
        conn.portal = client(
            "portal", portal_broker(runner("portal"), portal, clock), portal_cookies
        )
    if fhir is not None:
        conn.fhir = client("fhir", smart_broker(runner("fhir"), fhir, clock), fhir_bearer)
    return conn
