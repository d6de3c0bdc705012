"""The live API harness: carebridge over a SQLite store (or a database URL), reaching an
in-process sandbox.

Two tenants come from the two practices of one emulated CareCloud tenant, each onboarded from
the sandbox's credentials document. The sandbox and carebridge share one manual clock; the
connector's throttle runs on a fake clock, so nothing sleeps. ``Counting`` records every
upstream request, which is how the tests count upstream writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import stamina
from tests.support.clock import FakeTime

from carebridge.api.main import build
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.services.keys import mint, parse_scopes
from carebridge.store import tenants as repo
from carebridge.store.vault import KeyRing
from carebridge.wiring.api import Deployment, open_deployment
from carebridge.wiring.carecloud import from_sandbox
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.control import credentials
from carecloud_sandbox.tenant import Tenant

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
ANCHOR = date(2026, 11, 24)
SANDBOX = "http://sandbox.test"
API = "http://carebridge.test"
ADMIN_TOKEN = "operator-token-for-tests"
TENANTS = ("ten_a", "ten_b")


class Counting(httpx.AsyncBaseTransport):
    """The sandbox's ASGI transport, counting requests by ``METHOD path``."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.seen: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen[f"{request.method} {request.url.path}"] += 1
        return await self.inner.handle_async_request(request)

    def writes(self) -> int:
        """Upstream requests that change something (sign-ins and searches aside)."""
        return sum(
            n
            for k, n in self.seen.items()
            if not k.startswith("GET")
            and "oauth2" not in k
            and "/session" not in k
            and not k.endswith("/search")
            and "/token" not in k
        )


@dataclass
class Live:
    """A running carebridge over a sandbox, and the keys minted for the tests."""

    sandbox: Tenant
    clock: ManualClock
    upstream: Counting
    deployment: Deployment
    client: httpx.AsyncClient
    keys: dict[str, str] = field(default_factory=dict)

    async def key(self, tenant: str, scopes: str, name: str) -> str:
        minted = mint()
        await repo.add_key(
            self.deployment.engine,
            key_id=f"key_{name}",
            tenant_id=tenant,
            prefix=minted.prefix,
            secret_hash=minted.secret_hash,
            scopes=parse_scopes(scopes),
            label=name,
            now=START,
        )
        self.keys[name] = minted.display
        return minted.display

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def truth(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.sandbox.db.all(sql, params)]

    async def get(self, path: str, key: str = "admin_a", **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.auth(key))

    async def post(
        self, path: str, body: Any, key: str = "admin_a", idem: str | None = None
    ) -> httpx.Response:
        headers = self.auth(key) | ({"Idempotency-Key": idem} if idem else {})
        return await self.client.post(path, json=body, headers=headers)


@asynccontextmanager
async def running(db_path: str, *, patients: int = 30, seed: int = 11) -> AsyncIterator[Live]:
    """Generate a two-practice sandbox, onboard both practices, and serve carebridge over the
    store at ``db_path`` (a SQLite file, or a whole database URL)."""
    clock = ManualClock(START)
    config = SandboxConfig(
        seed=seed, patients=patients, practices=2, anchor=ANCHOR, base_url=SANDBOX
    )
    sandbox = Tenant.open(config, clock=clock)
    upstream = Counting(build_app(sandbox))
    fake = FakeTime()
    deployment = await open_deployment(
        db_path if "://" in db_path else f"sqlite:///{db_path}",
        KeyRing.generate(),
        clock=clock.now,
        transport=upstream,
        throttle=lambda: AimdThrottle(
            ThrottleConfig(start_rate=200, max_rate=500), clock=fake.clock, sleep=fake.sleep
        ),
    )
    document = credentials(sandbox)
    for index, tenant in enumerate(TENANTS):
        settings, secrets = from_sandbox(document, practice=index)
        await deployment.onboard(
            tenant_id=tenant, name=tenant, upstream="carecloud", settings=settings, secrets=secrets
        )
    app = build(deployment, admin_token=ADMIN_TOKEN)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API)
    live = Live(sandbox, clock, upstream, deployment, client)
    await live.key("ten_a", "admin", "admin_a")
    await live.key("ten_b", "admin", "admin_b")
    try:
        with stamina.set_testing(True, attempts=8):
            yield live
    finally:
        await client.aclose()
        await deployment.aclose()
        sandbox.db.close()


async def book_body(live: Live, patient: str, nth: int = 0) -> dict[str, Any]:
    """A booking of ``patient`` into the ``nth`` open slot of the first resource's second visit
    reason, 2026-11-25 to 2026-11-27 (the body ``POST /create_appointment`` takes)."""
    resource = (await live.get("/resources")).json()["data"][0]
    reason = resource["visit_reason_ids"][1]
    slots = (
        await live.get(
            "/availability",
            visit_reason_id=reason,
            start="2026-11-25",
            end="2026-11-27",
            resource_id=resource["id"],
        )
    ).json()["data"]
    slot = slots[nth]
    return {
        "patient_id": patient,
        "resource_id": slot["resource_id"],
        "location_id": slot["location_id"],
        "visit_reason_id": reason,
        "start": slot["start"],
    }
