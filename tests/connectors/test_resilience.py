"""The connector's auth flows, session broker, throttle and retries against the emulated tenant.

The sandbox runs in process behind ``httpx.ASGITransport`` on a manual clock; stamina's test
mode removes backoff sleeps and the throttle runs on a fake clock, so nothing here sleeps.
The checks a real tenant runs too (``test_live.py``) are written once in ``conformance.py``;
this module runs them against the sandbox (``Sandbox.target``) and adds those that need its
control plane (faults, revoked tokens, killed sessions).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import stamina
from tests.connectors import conformance
from tests.connectors.conformance import Target
from tests.support.clock import FakeTime
from tests.support.sandbox import start_live

from carebridge.connectors.carecloud.auth import NeedCode
from carebridge.connectors.carecloud.mfa import OutboxSource, TotpSource
from carebridge.connectors.carecloud.surfaces import (
    Connection,
    PortalSecrets,
    SmartSecrets,
    V2Secrets,
    connect,
)
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.errors import AuthError, MfaRequired
from carecloud_sandbox import personas
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.control import credentials
from carecloud_sandbox.tenant import Tenant

pytestmark = pytest.mark.anyio

BASE = "http://sandbox.test"
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


class Counting(httpx.AsyncBaseTransport):
    """The ASGI transport, counting requests by path."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    def count(self, path: str) -> int:
        return sum(1 for p in self.paths if p == path)


@dataclass
class Sandbox:
    tenant: Tenant
    clock: ManualClock
    transport: Counting
    creds: dict[str, Any]
    base: str

    def connect(self, **kwargs: Any) -> Connection:
        t = FakeTime()
        gate = AimdThrottle(ThrottleConfig(start_rate=50), clock=t.clock, sleep=t.sleep)
        return connect(clock=self.clock.now, transport=self.transport, throttle=gate, **kwargs)

    def v2(self) -> V2Secrets:
        practice = self.creds["practices"][0]
        return V2Secrets(
            token_url=self.creds["token_url"],
            client_id=self.creds["client_id"],
            client_secret=self.creds["client_secret"],
            refresh_token=practice["refresh_token"],
        )

    def user(self) -> dict[str, Any]:
        users: list[dict[str, Any]] = self.creds["practices"][0]["users"]
        return next(u for u in users if u["username"] == personas.USERNAME)

    def smart(self) -> SmartSecrets:
        c = self.creds["connector"]
        return SmartSecrets(
            c["token_url"], c["client_id"], c["private_key_pem"], c["kid"], c["alg"]
        )

    def target(self) -> Target:
        """The sandbox as a conformance target, with what only it can observe."""
        return Target(
            name="emulator",
            connect=self.connect,
            now=self.clock.now,
            api_base=self.base,
            v2=self.v2(),
            portal_api=f"{self.base}/portal/api",
            totp_portal=_portal(self, None, "totp"),
            fhir_base=self.creds["connector"]["practices"][0]["fhir_base"],
            smart=self.smart(),
            requests_to=self.transport.count,
            patients=self.tenant.db.scalar("SELECT COUNT(*) FROM patients WHERE practice_id = 1"),
            username=self.user()["username"],
        )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["asgi", "http"])
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    """The same suite through ``httpx.ASGITransport`` and over real HTTP (uvicorn, loopback)."""
    config = SandboxConfig(
        seed=5, patients=40, practices=1, anchor=date(2026, 11, 24), base_url=BASE
    )
    with stamina.set_testing(True, attempts=8):
        if request.param == "asgi":
            clock = ManualClock(START)
            tenant = Tenant.open(config, clock=clock)
            transport = Counting(httpx.ASGITransport(app=build_app(tenant)))
            yield Sandbox(tenant, clock, transport, credentials(tenant), BASE)
            await transport.inner.aclose()
            tenant.db.close()
        else:
            live, stop = start_live(config)
            transport = Counting(httpx.AsyncHTTPTransport())
            yield Sandbox(live.tenant, live.clock, transport, live.credentials, live.base_url)
            await transport.inner.aclose()
            stop()


@pytest.fixture
async def control(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=sandbox.transport, base_url=sandbox.base) as c:
        yield c


# --- v2: OAuth ------------------------------------------------------------------------------


async def test_v2_refreshes_once_and_then_reuses_the_token(sandbox: Sandbox) -> None:
    await conformance.v2_refreshes_once_and_reads(sandbox.target())


async def test_v2_renews_before_expiry_and_keeps_a_rotated_refresh_token(
    sandbox: Sandbox, control: httpx.AsyncClient
) -> None:
    assert (
        await control.put("/_sandbox/settings", json={"rotate_refresh_tokens": True})
    ).is_success
    rotated: list[str] = []
    secrets = sandbox.v2()
    conn = sandbox.connect(v2=secrets, on_rotate=rotated.append)
    assert conn.v2 is not None
    assert (await conn.v2.request("GET", f"{sandbox.base}/v2/locations")).status_code == 200
    sandbox.clock.advance(timedelta(minutes=59, seconds=30))  # inside the renewal margin
    assert (await conn.v2.request("GET", f"{sandbox.base}/v2/locations")).status_code == 200
    assert conn.v2.broker.renewals == 2
    assert len(rotated) == 2
    assert len(set(rotated)) == 2
    assert conn.v2.broker.secrets.refresh_token == rotated[-1]
    # The first refresh token was revoked by rotation: the upstream refuses it now.
    stale = await control.post(
        "/oauth2/access_token",
        auth=(secrets.client_id, secrets.client_secret),
        data={"grant_type": "refresh_token", "refresh_token": secrets.refresh_token},
    )
    assert stale.status_code in (400, 401)
    await conn.aclose()


async def test_fifty_requests_on_a_revoked_token_cause_one_refresh(sandbox: Sandbox) -> None:
    conn = sandbox.connect(v2=sandbox.v2())
    assert conn.v2 is not None
    assert (await conn.v2.request("GET", f"{sandbox.base}/v2/providers")).status_code == 200
    with sandbox.tenant.db.transaction() as db:  # the upstream drops the token early
        db.execute("UPDATE oauth_tokens SET revoked = 1")
    before = sandbox.transport.count("/oauth2/access_token")
    results = await asyncio.gather(
        *(conn.v2.request("GET", f"{sandbox.base}/v2/providers") for _ in range(50))
    )
    assert all(r.status_code == 200 for r in results)
    assert sandbox.transport.count("/oauth2/access_token") - before == 1
    assert conn.v2.broker.renewals == 2
    await conn.aclose()


async def test_fifty_requests_on_an_expired_token_cause_one_refresh(sandbox: Sandbox) -> None:
    conn = sandbox.connect(v2=sandbox.v2())
    assert conn.v2 is not None
    assert (await conn.v2.request("GET", f"{sandbox.base}/v2/providers")).status_code == 200
    sandbox.clock.advance(timedelta(hours=2))
    results = await asyncio.gather(
        *(conn.v2.request("GET", f"{sandbox.base}/v2/providers") for _ in range(50))
    )
    assert all(r.status_code == 200 for r in results)
    assert sandbox.transport.count("/oauth2/access_token") == 2
    await conn.aclose()


async def test_wrong_client_secret_is_a_typed_auth_error(sandbox: Sandbox) -> None:
    secrets = sandbox.v2()
    conn = sandbox.connect(
        v2=V2Secrets(secrets.token_url, secrets.client_id, "wrong", secrets.refresh_token)
    )
    assert conn.v2 is not None
    with pytest.raises(AuthError) as err:
        await conn.v2.request("GET", f"{sandbox.base}/v2/providers")
    assert "wrong" not in str(err.value)
    await conn.aclose()


# --- portal: sign-in with MFA ------------------------------------------------------------------


def _portal(sandbox: Sandbox, conn_http: httpx.AsyncClient | None, method: str) -> PortalSecrets:
    user = sandbox.user()
    sources: list[Any] = []
    if method == "totp":
        sources.append(TotpSource(user["totp_seed"], sandbox.clock.now))
    elif conn_http is not None:
        sources.append(
            OutboxSource(
                conn_http,
                f"{sandbox.base}/_sandbox/outbox",
                {"sms": user["phone"], "email": user["email"]},
            )
        )
    return PortalSecrets(
        api_url=f"{sandbox.base}/portal/api",
        username=user["username"],
        password=user["password"],
        codes=sources,
        methods=(method,),
    )


@pytest.mark.parametrize("method", ["totp", "sms", "email"])
async def test_portal_sign_in_with_each_mfa_method(sandbox: Sandbox, method: str) -> None:
    async with httpx.AsyncClient(transport=sandbox.transport) as outbox_http:
        await conformance.portal_signs_in(sandbox.target(), _portal(sandbox, outbox_http, method))


async def test_portal_without_a_code_source_raises_mfa_required(sandbox: Sandbox) -> None:
    secrets = _portal(sandbox, None, "sms")
    conn = sandbox.connect(portal=secrets)
    assert conn.portal is not None
    with pytest.raises(MfaRequired):
        await conn.portal.request("GET", f"{sandbox.base}/portal/api/session")
    await conn.aclose()


async def test_a_session_killed_mid_pagination_loses_and_repeats_no_page(
    sandbox: Sandbox, control: httpx.AsyncClient
) -> None:
    conn = sandbox.connect(portal=_portal(sandbox, None, "totp"))
    assert conn.portal is not None
    seen: list[str] = []
    pages = 0
    async for page in conn.portal.portal_pages(
        f"{sandbox.base}/portal/api/patients", {"pageSize": 7}
    ):
        seen.extend(item["chartNumber"] for item in page["items"])
        pages += 1
        if pages == 2:
            sandbox.clock.advance(timedelta(seconds=31))  # a new TOTP step for the re-login
            assert (await control.post("/_sandbox/sessions/kill", json={})).is_success
    truth = sandbox.tenant.db.scalar("SELECT COUNT(*) FROM patients WHERE practice_id = 1")
    assert len(seen) == len(set(seen)) == truth
    assert pages > 2
    assert conn.portal.broker.renewals == 2
    await conn.aclose()


async def test_forced_mfa_is_answered_transparently(
    sandbox: Sandbox, control: httpx.AsyncClient
) -> None:
    conn = sandbox.connect(portal=_portal(sandbox, None, "totp"))
    assert conn.portal is not None
    assert (
        await conn.portal.request("GET", f"{sandbox.base}/portal/api/session")
    ).status_code == 200
    forced = await control.post(
        "/_sandbox/sessions/force-mfa", json={"user": sandbox.user()["username"]}
    )
    assert forced.is_success
    sandbox.clock.advance(timedelta(seconds=31))
    assert (
        await conn.portal.request("GET", f"{sandbox.base}/portal/api/session")
    ).status_code == 200
    assert conn.portal.broker.renewals == 2
    await conn.aclose()


async def test_totp_source_never_repeats_a_step() -> None:
    clock = ManualClock(START)

    async def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    source = TotpSource("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", clock.now, sleep=sleep)
    first = await source(NeedCode("totp"))
    second = await source(NeedCode("totp"))  # waits for the next step rather than send one early
    assert first != second
    assert clock.now() == START + timedelta(seconds=30)
    assert await source(NeedCode("sms")) is None


# --- Connector: SMART backend services ---------------------------------------------------------


async def test_smart_backend_token_reads_fhir(sandbox: Sandbox) -> None:
    await conformance.connector_backend_token_reads_patients(sandbox.target())


# --- throttle and retries ------------------------------------------------------------------------


async def test_a_429_storm_converges_and_no_call_fails(
    sandbox: Sandbox, control: httpx.AsyncClient
) -> None:
    rule = {"pattern": "/v2/providers*", "rate_429": 0.5, "retry_after": 1}
    assert (await control.post("/_sandbox/faults", json=rule)).is_success
    conn = sandbox.connect(v2=sandbox.v2())
    assert conn.v2 is not None
    start_rate = conn.throttle.budget().rate
    results = [await conn.v2.request("GET", f"{sandbox.base}/v2/providers") for _ in range(30)]
    assert all(r.status_code == 200 for r in results)
    assert conn.throttle.budget().rate < start_rate
    assert conn.v2.sent > 30  # some attempts were refused and retried
    await conn.aclose()


async def test_a_5xx_burst_is_retried(sandbox: Sandbox, control: httpx.AsyncClient) -> None:
    rule = {"pattern": "/v2/locations*", "error_rate": 1.0, "status": 503, "count": 3}
    assert (await control.post("/_sandbox/faults", json=rule)).is_success
    conn = sandbox.connect(v2=sandbox.v2())
    assert conn.v2 is not None
    r = await conn.v2.request("GET", f"{sandbox.base}/v2/locations")
    assert r.status_code == 200
    assert conn.v2.sent == 4
    await conn.aclose()


async def test_a_write_hit_by_a_5xx_is_not_retried_blind(
    sandbox: Sandbox, control: httpx.AsyncClient
) -> None:
    from carebridge.connectors.carecloud.client import WriteUnconfirmed

    rule = {
        "pattern": "/v2/patients",
        "methods": ["POST"],
        "error_rate": 1.0,
        "status": 502,
        "count": 1,
    }
    assert (await control.post("/_sandbox/faults", json=rule)).is_success
    conn = sandbox.connect(v2=sandbox.v2())
    assert conn.v2 is not None
    with pytest.raises(WriteUnconfirmed):
        await conn.v2.request(
            "POST", f"{sandbox.base}/v2/patients", json={"patient": {"first_name": "Test"}}
        )
    assert conn.v2.sent == 1
    await conn.aclose()
