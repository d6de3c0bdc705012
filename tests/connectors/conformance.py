"""The connector's conformance checks, written once for two targets.

A :class:`Target` is where the checks run: the emulated tenant (``Sandbox.target`` in
``test_resilience.py``, in process and over loopback HTTP, always run; the faults and control
plane checks stay there) or a real CareCloud tenant (:func:`live_target`, used by
``test_live.py`` under the ``live`` marker, skipped unless its credentials are in the
environment). Each check is an async function of a target; what only
the emulator can observe (how many requests reached a path, the tenant's own patient count,
the persona's username) is checked when the target has it and left out on a live tenant.

Live credentials, read from the environment only:

- v2: ``CAREBRIDGE_LIVE_API_BASE`` (e.g. the API host), ``CAREBRIDGE_LIVE_CLIENT_ID``,
  ``CAREBRIDGE_LIVE_CLIENT_SECRET``, ``CAREBRIDGE_LIVE_REFRESH_TOKEN``;
- portal (optional): ``CAREBRIDGE_LIVE_PORTAL_API``, ``CAREBRIDGE_LIVE_USERNAME``,
  ``CAREBRIDGE_LIVE_PASSWORD``, ``CAREBRIDGE_LIVE_TOTP_SEED``;
- Connector (optional): ``CAREBRIDGE_LIVE_FHIR_BASE``, ``CAREBRIDGE_LIVE_FHIR_TOKEN_URL``,
  ``CAREBRIDGE_LIVE_FHIR_CLIENT_ID``, ``CAREBRIDGE_LIVE_FHIR_KEY_FILE``, ``CAREBRIDGE_LIVE_FHIR_KID``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from carebridge.connectors.carecloud.drift import DriftReport, check
from carebridge.connectors.carecloud.mfa import TotpSource
from carebridge.connectors.carecloud.surfaces import (
    Connection,
    PortalSecrets,
    SmartSecrets,
    V2Secrets,
    connect,
)
from carebridge.connectors.carecloud.wire import v2 as wire

V2_ENV = (
    "CAREBRIDGE_LIVE_API_BASE",
    "CAREBRIDGE_LIVE_CLIENT_ID",
    "CAREBRIDGE_LIVE_CLIENT_SECRET",
    "CAREBRIDGE_LIVE_REFRESH_TOKEN",
)
PORTAL_ENV = (
    "CAREBRIDGE_LIVE_PORTAL_API",
    "CAREBRIDGE_LIVE_USERNAME",
    "CAREBRIDGE_LIVE_PASSWORD",
    "CAREBRIDGE_LIVE_TOTP_SEED",
)
FHIR_ENV = (
    "CAREBRIDGE_LIVE_FHIR_BASE",
    "CAREBRIDGE_LIVE_FHIR_TOKEN_URL",
    "CAREBRIDGE_LIVE_FHIR_CLIENT_ID",
    "CAREBRIDGE_LIVE_FHIR_KEY_FILE",
    "CAREBRIDGE_LIVE_FHIR_KID",
)


@dataclass(frozen=True)
class Target:
    """One tenant the checks run against, and what can be observed of it."""

    name: str
    connect: Callable[..., Connection]
    """``connect(v2=..., portal=..., fhir=...)``: a connection to this tenant."""
    now: Callable[[], datetime]
    api_base: str = ""
    """The v2 host: ``{api_base}/v2/providers``."""
    v2: V2Secrets | None = None
    portal_api: str = ""
    """The portal API root: ``{portal_api}/session``."""
    totp_portal: PortalSecrets | None = None
    """A sign-in with TOTP (the one MFA method every target offers)."""
    fhir_base: str = ""
    smart: SmartSecrets | None = None
    fhir_page_size: int = 9
    fhir_max_pages: int | None = None
    """None: read every page (the emulator); a live tenant reads a first page only."""
    requests_to: Callable[[str], int] | None = None
    """Requests that reached a path so far (the emulator's transport counts them)."""
    patients: int | None = None
    """The tenant's patient count, from its own tables."""
    username: str | None = None
    """The user ``totp_portal`` signs in as, when the target knows it."""

    def today(self) -> date:
        return self.now().date()


def _live_now() -> datetime:
    return datetime.now(UTC)


def require(*names: str) -> dict[str, str]:
    """The environment's values of ``names``; skips the test when any is missing."""
    values = {n: os.environ.get(n, "") for n in names}
    missing = [n for n, v in values.items() if not v]
    if missing:
        pytest.skip("live credentials not configured: " + ", ".join(missing))
    return values


def live_target(*surfaces: str) -> Target:
    """A real tenant, with the secrets of ``surfaces`` (``v2``, ``portal``, ``fhir``) read from
    the environment; skips the test when one of them is not configured."""
    fields: dict[str, Any] = {}
    if "v2" in surfaces:
        env = require(*V2_ENV)
        base = env["CAREBRIDGE_LIVE_API_BASE"].rstrip("/")
        fields["api_base"] = base
        fields["v2"] = V2Secrets(
            f"{base}/oauth2/access_token",
            env["CAREBRIDGE_LIVE_CLIENT_ID"],
            env["CAREBRIDGE_LIVE_CLIENT_SECRET"],
            env["CAREBRIDGE_LIVE_REFRESH_TOKEN"],
        )
    if "portal" in surfaces:
        env = require(*PORTAL_ENV)
        api = env["CAREBRIDGE_LIVE_PORTAL_API"].rstrip("/")
        fields["portal_api"] = api
        fields["totp_portal"] = PortalSecrets(
            api,
            env["CAREBRIDGE_LIVE_USERNAME"],
            env["CAREBRIDGE_LIVE_PASSWORD"],
            codes=(TotpSource(env["CAREBRIDGE_LIVE_TOTP_SEED"], _live_now),),
            methods=("totp",),
        )
    if "fhir" in surfaces:
        env = require(*FHIR_ENV)
        fields["fhir_base"] = env["CAREBRIDGE_LIVE_FHIR_BASE"]
        fields["smart"] = SmartSecrets(
            env["CAREBRIDGE_LIVE_FHIR_TOKEN_URL"],
            env["CAREBRIDGE_LIVE_FHIR_CLIENT_ID"],
            Path(env["CAREBRIDGE_LIVE_FHIR_KEY_FILE"]).read_text(encoding="utf-8"),
            env["CAREBRIDGE_LIVE_FHIR_KID"],
        )
        fields["fhir_page_size"] = 5
        fields["fhir_max_pages"] = 1
    return Target(name="live", connect=partial(connect, clock=_live_now), now=_live_now, **fields)


# --- the checks ----------------------------------------------------------------------------------


async def v2_refreshes_once_and_reads(target: Target) -> None:
    """v2: one refresh serves every call; the provider list parses; appointments page."""
    assert target.v2 is not None
    conn = target.connect(v2=target.v2)
    assert conn.v2 is not None
    providers = None
    for _ in range(3):
        providers = await conn.v2.request("GET", f"{target.api_base}/v2/providers")
        assert providers.status_code == 200
    assert providers is not None
    report = DriftReport(clock=target.now)
    listed = check(providers.json(), wire.ProvidersResponse, "GET /v2/providers", report)
    assert listed.providers
    today = target.today().isoformat()
    pages = 0
    async for page in conn.v2.v2_pages(
        f"{target.api_base}/v2/appointments", {"start_date": today, "end_date": today}
    ):
        assert page.status_code == 200
        pages += 1
    assert pages >= 1
    if target.requests_to is not None:
        assert target.requests_to("/oauth2/access_token") == 1
    assert conn.v2.broker.renewals == 1
    await conn.aclose()


async def portal_signs_in(target: Target, secrets: PortalSecrets) -> None:
    """Portal: the sign-in answers its MFA step once, and the session is the user's."""
    conn = target.connect(portal=secrets)
    assert conn.portal is not None
    r = await conn.portal.request("GET", f"{secrets.api_url}/session")
    assert r.status_code == 200
    if target.username is not None:
        assert r.json()["user"]["username"] == target.username
    if target.requests_to is not None:
        assert target.requests_to("/portal/api/session/mfa/verify") == 1
    await conn.aclose()


async def connector_backend_token_reads_patients(target: Target) -> None:
    """Connector: a SMART backend-services token reads Patient searchsets."""
    assert target.smart is not None
    conn = target.connect(fhir=target.smart)
    assert conn.fhir is not None
    total = 0
    pages = 0
    async with aclosing(
        conn.fhir.fhir_pages(f"{target.fhir_base}/Patient", {"_count": target.fhir_page_size})
    ) as bundles:
        async for bundle in bundles:
            assert bundle["resourceType"] == "Bundle"
            total += len(bundle.get("entry", []))
            pages += 1
            if target.fhir_max_pages is not None and pages >= target.fhir_max_pages:
                break
    assert pages >= 1
    if target.patients is not None:
        assert total == target.patients
    assert conn.fhir.broker.renewals == 1
    await conn.aclose()
