"""Failures on the token and sign-in endpoints are retried like any other request (issue 11,
item 5): a dropped connection, a 5xx or a 429 on ``/oauth2/access_token``, the Connector's token
endpoint or the portal's session endpoints is retried under the same policy and budgets, and
what outlasts the budget is a typed error, never an httpx exception.

The tenant runs in process behind ``httpx.ASGITransport`` on a manual clock; 5xx, 429 and
aborted connections come from its control plane's faults, and the transport raises httpx's own
``RemoteProtocolError`` where a test needs the peer to hang up. Stamina's test mode removes
backoff sleeps and the throttle waits out ``Retry-After`` on a fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import stamina
from tests.support.clock import FakeTime

from carebridge.connectors.carecloud.mfa import TotpSource
from carebridge.connectors.carecloud.surfaces import (
    Connection,
    PortalSecrets,
    SmartSecrets,
    V2Secrets,
    connect,
)
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.errors import RateLimited, TransportError, UpstreamStatusError
from carecloud_sandbox import personas
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.control import credentials
from carecloud_sandbox.tenant import Tenant

pytestmark = pytest.mark.anyio

BASE = "http://sandbox.test"
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Counting(httpx.AsyncBaseTransport):
    """The tenant's ASGI app, counting requests by path; ``drops`` makes the next requests to a
    path fail as a peer that closed the connection without answering does."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.paths: list[str] = []
        self.drops: dict[str, int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        if self.drops.get(path, 0) > 0:
            self.drops[path] -= 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return await self.inner.handle_async_request(request)

    def count(self, path: str) -> int:
        return sum(1 for p in self.paths if p == path)


class Bed:
    """The tenant in process on a manual clock, a counting transport and the throttle's fake
    clock."""

    def __init__(self) -> None:
        config = SandboxConfig(
            seed=9, patients=20, practices=1, anchor=date(2026, 11, 24), base_url=BASE
        )
        self.clock = ManualClock(START)
        self.tenant = Tenant.open(config, clock=self.clock)
        self.transport = Counting(build_app(self.tenant))
        self.creds = credentials(self.tenant)
        self.time = FakeTime()

    async def fault(self, **rule: Any) -> None:
        async with httpx.AsyncClient(transport=self.transport.inner, base_url=BASE) as c:
            assert (await c.post("/_sandbox/faults", json=rule)).is_success

    def connect(self, **kwargs: Any) -> Connection:
        gate = AimdThrottle(
            ThrottleConfig(start_rate=50), clock=self.time.clock, sleep=self.time.sleep
        )
        return connect(clock=self.clock.now, transport=self.transport, throttle=gate, **kwargs)

    def v2(self) -> V2Secrets:
        return V2Secrets(
            self.creds["token_url"],
            self.creds["client_id"],
            self.creds["client_secret"],
            self.creds["practices"][0]["refresh_token"],
        )

    def portal(self) -> PortalSecrets:
        users = self.creds["practices"][0]["users"]
        user = next(u for u in users if u["username"] == personas.USERNAME)

        async def sleep(seconds: float) -> None:
            self.clock.advance(timedelta(seconds=seconds))

        return PortalSecrets(
            api_url=f"{BASE}/portal/api",
            username=user["username"],
            password=user["password"],
            codes=[TotpSource(user["totp_seed"], self.clock.now, sleep=sleep)],
            methods=("totp",),
        )

    def smart(self) -> SmartSecrets:
        c = self.creds["connector"]
        return SmartSecrets(
            c["token_url"], c["client_id"], c["private_key_pem"], c["kid"], c["alg"]
        )


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    with stamina.set_testing(True, attempts=8):
        found = Bed()
        yield found
    await found.transport.inner.aclose()
    found.tenant.db.close()


TOKEN = "/oauth2/access_token"


async def _providers(bed: Bed, conn: Connection) -> int:
    assert conn.v2 is not None
    return (await conn.v2.request("GET", f"{BASE}/v2/providers")).status_code


async def test_a_dropped_connection_on_the_token_endpoint_is_retried(bed: Bed) -> None:
    bed.transport.drops[TOKEN] = 2
    conn = bed.connect(v2=bed.v2())
    assert await _providers(bed, conn) == 200
    assert bed.transport.count(TOKEN) == 3
    await conn.aclose()


async def test_a_token_endpoint_that_keeps_dropping_is_a_typed_transport_error(bed: Bed) -> None:
    bed.transport.drops[TOKEN] = 1_000
    conn = bed.connect(v2=bed.v2())
    with pytest.raises(TransportError):
        await _providers(bed, conn)
    assert bed.transport.count(TOKEN) == 8  # the same budget as any request
    assert bed.transport.count("/v2/providers") == 0
    await conn.aclose()


async def test_a_5xx_on_the_token_endpoint_is_retried_and_feeds_the_throttle(bed: Bed) -> None:
    await bed.fault(pattern=TOKEN, error_rate=1.0, status=503, count=3)
    conn = bed.connect(v2=bed.v2())
    start_rate = conn.throttle.budget().rate
    assert await _providers(bed, conn) == 200
    assert bed.transport.count(TOKEN) == 4
    assert conn.throttle.budget().rate < start_rate
    await conn.aclose()


async def test_a_token_endpoint_that_keeps_failing_is_a_typed_status_error(bed: Bed) -> None:
    await bed.fault(pattern=TOKEN, error_rate=1.0, status=502)
    conn = bed.connect(v2=bed.v2())
    with pytest.raises(UpstreamStatusError) as failed:
        await _providers(bed, conn)
    assert failed.value.status == 502
    await conn.aclose()


async def test_a_30_request_429_storm_on_the_token_endpoint_is_ridden_out(bed: Bed) -> None:
    await bed.fault(pattern=TOKEN, rate_429=1.0, retry_after=2, count=30)
    conn = bed.connect(v2=bed.v2())
    assert await _providers(bed, conn) == 200
    assert bed.transport.count(TOKEN) == 31
    assert bed.time.now >= 30 * 2  # every Retry-After was waited out, on the throttle's clock
    await conn.aclose()


async def test_a_429_storm_longer_than_the_budget_is_a_typed_rate_limit(bed: Bed) -> None:
    await bed.fault(pattern=TOKEN, rate_429=1.0, retry_after=60)
    conn = bed.connect(v2=bed.v2())
    with pytest.raises(RateLimited) as limited:
        await _providers(bed, conn)
    assert limited.value.retry_after == 60
    assert bed.transport.count(TOKEN) == 3  # 120 s of waiting: the first try and two more
    await conn.aclose()


async def test_a_30_request_429_storm_on_a_list_is_ridden_out(bed: Bed) -> None:
    await bed.fault(pattern="/v2/providers", rate_429=1.0, retry_after=1, count=30)
    conn = bed.connect(v2=bed.v2())
    assert await _providers(bed, conn) == 200
    assert bed.transport.count("/v2/providers") == 31
    await conn.aclose()


@pytest.mark.parametrize(
    "path",
    ["/portal/api/session", "/portal/api/session/mfa/challenge", "/portal/api/session/mfa/verify"],
)
async def test_a_dropped_connection_on_a_portal_sign_in_step_restarts_the_sign_in(
    bed: Bed, path: str
) -> None:
    bed.transport.drops[path] = 1
    conn = bed.connect(portal=bed.portal())
    assert conn.portal is not None
    r = await conn.portal.request("GET", f"{BASE}/portal/api/session")
    assert r.status_code == 200
    assert bed.transport.count("/portal/api/session") == 3  # two sign-ins, then the read
    state = bed.tenant.db.one(
        "SELECT failed_attempts, locked_until FROM portal_user_state WHERE user_id = ?",
        (personas.USER_ID,),
    )
    assert state["failed_attempts"] == 0  # a code that may have landed is never sent again
    await conn.aclose()


async def test_a_5xx_and_a_429_on_the_portal_session_endpoint_are_retried(bed: Bed) -> None:
    await bed.fault(pattern="/portal/api/session", methods=["POST"], error_rate=1.0, count=2)
    await bed.fault(pattern="/portal/api/session", methods=["POST"], rate_429=1.0, count=5)
    conn = bed.connect(portal=bed.portal())
    assert conn.portal is not None
    r = await conn.portal.request("GET", f"{BASE}/portal/api/session")
    assert r.status_code == 200
    await conn.aclose()


async def test_a_dropped_connection_on_the_connector_token_endpoint_is_retried(bed: Bed) -> None:
    url = httpx.URL(bed.smart().token_url)
    await bed.fault(pattern=url.path, drop_rate=1.0, count=2)  # the tenant's own fault: aborted
    conn = bed.connect(fhir=bed.smart())
    assert conn.fhir is not None
    base = bed.creds["connector"]["fhir_base"]
    fhir_base = next(iter(base.values())) if isinstance(base, dict) else base
    r = await conn.fhir.request("GET", f"{fhir_base}/Patient", params={"_count": 1})
    assert r.status_code == 200
    assert bed.transport.count(url.path) == 3
    await conn.aclose()
