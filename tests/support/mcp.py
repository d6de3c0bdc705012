"""The MCP server's harness: carebridge over a SQLite store, reaching an in-process emulated
tenant of two practices (tenants ``ten_a`` and ``ten_b``), with keys of several scopes and the
MCP server built for any of them, connected in memory with the SDK's own client.

The sandbox, the store and the MCP services share one manual clock; nothing sleeps.

:func:`served_tenant` serves a small emulated tenant on a loopback port instead, from a thread of
the test process and on the wall clock, for a ``carebridge`` child process to reach.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import stamina
import uvicorn
from mcp.server.mcpserver import MCPServer
from tests.support.clock import FakeTime

from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.mcp.server import build_server
from carebridge.services.agents import AgentLimits
from carebridge.services.keys import mint, parse_scopes
from carebridge.services.records import Principal
from carebridge.store import tenants as repo
from carebridge.store.vault import KeyRing
from carebridge.wiring.api import Deployment, open_deployment
from carebridge.wiring.carecloud import from_sandbox
from carebridge.wiring.mcp import AgentServices, agent_services
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock, OffsetClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.control import credentials
from carecloud_sandbox.tenant import Tenant
from mcp import Client

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
ANCHOR = date(2026, 11, 24)
TENANTS = ("ten_a", "ten_b")


@dataclass
class Bed:
    """A running carebridge over a sandbox, its MCP services, and named keys."""

    sandbox: Tenant
    clock: ManualClock
    deployment: Deployment
    services: AgentServices
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

    async def principal(self, name: str) -> Principal:
        return await self.services.principal(f"Bearer {self.keys[name]}")

    def server(self, name: str, services: AgentServices | None = None) -> MCPServer[Any]:
        """The MCP server as the key ``name`` sees it (stdio's way: one credential)."""
        chosen = services or self.services
        token = self.keys[name]

        async def caller(request: Any) -> Principal:
            del request
            return await chosen.principal(f"Bearer {token}")

        return build_server(chosen, caller)

    @asynccontextmanager
    async def client(
        self, name: str, services: AgentServices | None = None
    ) -> AsyncIterator[Client]:
        async with Client(self.server(name, services), cache=None, mode="legacy") as client:
            yield client

    def limited(self, limits: AgentLimits) -> AgentServices:
        """The MCP services with other limits (a limiter of their own)."""
        return agent_services(self.deployment, limits)

    def truth(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.sandbox.db.all(sql, params)]


@asynccontextmanager
async def bed(db_path: str, *, patients: int = 12, seed: int = 11) -> AsyncIterator[Bed]:
    """A two-practice sandbox, both practices onboarded, served to MCP over ``db_path``."""
    clock = ManualClock(START)
    config = SandboxConfig(
        seed=seed, patients=patients, practices=2, anchor=ANCHOR, base_url="http://sandbox.test"
    )
    sandbox = Tenant.open(config, clock=clock)
    fake = FakeTime()
    deployment = await open_deployment(
        f"sqlite:///{db_path}",
        KeyRing.generate(),
        clock=clock.now,
        transport=httpx.ASGITransport(app=build_app(sandbox)),
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
    here = Bed(sandbox, clock, deployment, agent_services(deployment))
    try:
        with stamina.set_testing(True, attempts=8):
            yield here
    finally:
        await deployment.aclose()
        sandbox.db.close()


@contextmanager
def served_tenant(*, patients: int = 4, seed: int = 7) -> Iterator[Tenant]:
    """A one-practice emulated tenant on the wall clock (a child process signs in with TOTP on
    its own clock), served by uvicorn from a thread on a loopback socket bound before the
    server starts, so no readiness polling is needed; its URL is ``config.base_url``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until the server thread accepts them
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = SandboxConfig(seed=seed, patients=patients, practices=1, base_url=base_url)
    tenant = Tenant.open(config, clock=OffsetClock())
    server = uvicorn.Server(
        uvicorn.Config(build_app(tenant), log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield tenant
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        tenant.db.close()
