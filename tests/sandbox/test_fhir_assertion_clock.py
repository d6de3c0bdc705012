"""The Connector's token endpoint judges a client assertion's ``exp`` on real time, as a real
SMART server does on its own clock: advancing the tenant's clock (which moves the practice's
data) does not lock out a client that signs with the time of day (issue 11, item 13)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import jwt
import pytest

from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import OffsetClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.fhir.auth import credentials
from carecloud_sandbox.tenant import Tenant

pytestmark = pytest.mark.anyio

BASE = "http://sandbox.test"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def served() -> AsyncIterator[tuple[Tenant, httpx.AsyncClient]]:
    """A tenant on the clock ``serve`` uses: wall-clock time plus the control plane's advances."""
    config = SandboxConfig(
        seed=3, patients=10, practices=1, anchor=date(2026, 11, 24), base_url=BASE
    )
    tenant = Tenant.open(config, clock=OffsetClock())
    transport = httpx.ASGITransport(app=build_app(tenant))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield tenant, client
    tenant.db.close()


def _assertion(creds: dict[str, Any], exp: float) -> str:
    claims = {
        "iss": creds["client_id"],
        "sub": creds["client_id"],
        "aud": creds["token_url"],
        "exp": int(exp),
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(
        claims, creds["private_key_pem"], algorithm="ES384", headers={"kid": creds["kid"]}
    )


async def _grant(client: httpx.AsyncClient, creds: dict[str, Any], exp: float) -> httpx.Response:
    return await client.post(
        creds["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": _assertion(creds, exp),
            "scope": "system/*.read",
        },
    )


async def test_after_a_clock_advance_of_days_a_wall_clock_assertion_still_signs_in(
    served: tuple[Tenant, httpx.AsyncClient],
) -> None:
    tenant, client = served
    advanced = await client.post("/_sandbox/clock/advance", json={"minutes": 3 * 24 * 60})
    assert advanced.is_success
    assert (tenant.now() - datetime.now(UTC)).days >= 2  # the practice is days ahead
    creds = credentials(tenant)
    granted = await _grant(client, creds, datetime.now(UTC).timestamp() + 240)
    assert granted.status_code == 200, granted.text
    token = granted.json()["access_token"]
    base = creds["practices"][0]["fhir_base"]
    read = await client.get(
        f"{base}/Patient", params={"_count": 1}, headers={"Authorization": f"Bearer {token}"}
    )
    assert read.status_code == 200


async def test_after_a_clock_advance_an_expired_assertion_is_refused(
    served: tuple[Tenant, httpx.AsyncClient],
) -> None:
    tenant, client = served
    assert (await client.post("/_sandbox/clock/advance", json={"minutes": 3 * 24 * 60})).is_success
    creds = credentials(tenant)
    expired = await _grant(client, creds, datetime.now(UTC).timestamp() - 1)
    assert (expired.status_code, expired.json()["error"]) == (401, "invalid_client")
    # an assertion stamped with the advanced clock is days ahead of the server's real time
    ahead = await _grant(client, creds, tenant.now().timestamp() + 240)
    assert (ahead.status_code, ahead.json()["error"]) == (401, "invalid_client")
