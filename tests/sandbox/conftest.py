"""A live emulated tenant on a loopback port, driven by plain httpx clients.

``live`` is module-scoped: each test module gets its own small tenant (seed 42, 60 patients,
2 practices) on a manual clock fixed at Tuesday 2026-11-24 15:00 UTC (09:00 in practice 1's
America/Chicago). The port is bound before the server starts, so no readiness polling is needed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from carebridge.sandbox import personas
from carebridge.sandbox.app import build_app
from carebridge.sandbox.clock import ManualClock
from carebridge.sandbox.config import SandboxConfig
from carebridge.sandbox.tenant import Tenant

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


@pytest.fixture(scope="module")
def live() -> Iterator[LiveTenant]:
    """A fresh small tenant per test module."""
    # 60 visits a patient keeps the small tenant's schedules busy (thousands of rows to page).
    config = SandboxConfig(
        seed=42, patients=60, practices=2, anchor=ANCHOR, appointments_per_patient=60
    )
    tenant, stop = start_live(config)
    yield tenant
    stop()


@pytest.fixture(scope="module")
def token(live: LiveTenant) -> str:
    """An access token for practice 1 with every privilege."""
    return live.token(0)


@pytest.fixture
def api(live: LiveTenant, token: str) -> Iterator[httpx.Client]:
    """An httpx client for practice 1, authenticated."""
    with live.client(token) as c:
        yield c


__all__ = ["ANCHOR", "START", "LiveTenant", "personas", "start_live"]
