"""The conformance checks that need no control plane, against a real CareCloud tenant.

Marked ``live`` (deselected by default; run with ``pytest -m live``) and skipped unless the
credentials are in the environment. They only read:

- v2: ``CAREBRIDGE_LIVE_API_BASE`` (e.g. the API host), ``CAREBRIDGE_LIVE_CLIENT_ID``,
  ``CAREBRIDGE_LIVE_CLIENT_SECRET``, ``CAREBRIDGE_LIVE_REFRESH_TOKEN``;
- portal (optional): ``CAREBRIDGE_LIVE_PORTAL_API``, ``CAREBRIDGE_LIVE_USERNAME``,
  ``CAREBRIDGE_LIVE_PASSWORD``, ``CAREBRIDGE_LIVE_TOTP_SEED``;
- Connector (optional): ``CAREBRIDGE_LIVE_FHIR_BASE``, ``CAREBRIDGE_LIVE_FHIR_TOKEN_URL``,
  ``CAREBRIDGE_LIVE_FHIR_CLIENT_ID``, ``CAREBRIDGE_LIVE_FHIR_KEY_FILE``, ``CAREBRIDGE_LIVE_FHIR_KID``.

The sandbox runs the same checks in ``test_resilience.py``, with faults on top.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from carebridge.connectors.carecloud.drift import DriftReport, check
from carebridge.connectors.carecloud.mfa import TotpSource
from carebridge.connectors.carecloud.surfaces import PortalSecrets, SmartSecrets, V2Secrets, connect
from carebridge.connectors.carecloud.wire import v2 as wire

pytestmark = [pytest.mark.live, pytest.mark.anyio]


def _env(*names: str) -> dict[str, str]:
    values = {n: os.environ.get(n, "") for n in names}
    missing = [n for n, v in values.items() if not v]
    if missing:
        pytest.skip("live credentials not configured: " + ", ".join(missing))
    return values


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_live_v2_refresh_once_and_read_pages() -> None:
    env = _env(
        "CAREBRIDGE_LIVE_API_BASE",
        "CAREBRIDGE_LIVE_CLIENT_ID",
        "CAREBRIDGE_LIVE_CLIENT_SECRET",
        "CAREBRIDGE_LIVE_REFRESH_TOKEN",
    )
    base = env["CAREBRIDGE_LIVE_API_BASE"].rstrip("/")
    conn = connect(
        clock=_now,
        v2=V2Secrets(
            f"{base}/oauth2/access_token",
            env["CAREBRIDGE_LIVE_CLIENT_ID"],
            env["CAREBRIDGE_LIVE_CLIENT_SECRET"],
            env["CAREBRIDGE_LIVE_REFRESH_TOKEN"],
        ),
    )
    assert conn.v2 is not None
    report = DriftReport(clock=_now)
    providers = await conn.v2.request("GET", f"{base}/v2/providers")
    listed = check(providers.json(), wire.ProvidersResponse, "GET /v2/providers", report)
    assert listed.providers
    today = _now().date().isoformat()
    pages = 0
    async for page in conn.v2.v2_pages(
        f"{base}/v2/appointments", {"start_date": today, "end_date": today}
    ):
        assert page.status_code == 200
        pages += 1
    assert pages >= 1
    assert conn.v2.broker.renewals == 1
    await conn.aclose()


async def test_live_portal_sign_in_with_totp() -> None:
    env = _env(
        "CAREBRIDGE_LIVE_PORTAL_API",
        "CAREBRIDGE_LIVE_USERNAME",
        "CAREBRIDGE_LIVE_PASSWORD",
        "CAREBRIDGE_LIVE_TOTP_SEED",
    )
    api = env["CAREBRIDGE_LIVE_PORTAL_API"].rstrip("/")
    conn = connect(
        clock=_now,
        portal=PortalSecrets(
            api,
            env["CAREBRIDGE_LIVE_USERNAME"],
            env["CAREBRIDGE_LIVE_PASSWORD"],
            codes=(TotpSource(env["CAREBRIDGE_LIVE_TOTP_SEED"], _now),),
            methods=("totp",),
        ),
    )
    assert conn.portal is not None
    assert (await conn.portal.request("GET", f"{api}/session")).status_code == 200
    await conn.aclose()


async def test_live_connector_backend_token_and_search() -> None:
    env = _env(
        "CAREBRIDGE_LIVE_FHIR_BASE",
        "CAREBRIDGE_LIVE_FHIR_TOKEN_URL",
        "CAREBRIDGE_LIVE_FHIR_CLIENT_ID",
        "CAREBRIDGE_LIVE_FHIR_KEY_FILE",
        "CAREBRIDGE_LIVE_FHIR_KID",
    )
    conn = connect(
        clock=_now,
        fhir=SmartSecrets(
            env["CAREBRIDGE_LIVE_FHIR_TOKEN_URL"],
            env["CAREBRIDGE_LIVE_FHIR_CLIENT_ID"],
            Path(env["CAREBRIDGE_LIVE_FHIR_KEY_FILE"]).read_text(encoding="utf-8"),
            env["CAREBRIDGE_LIVE_FHIR_KID"],
        ),
    )
    assert conn.fhir is not None
    bundle = (
        await conn.fhir.request(
            "GET", f"{env['CAREBRIDGE_LIVE_FHIR_BASE']}/Patient", params={"_count": 5}
        )
    ).json()
    assert bundle["resourceType"] == "Bundle"
    await conn.aclose()
