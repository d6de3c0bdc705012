"""Client CPU per patient of a listing's reads (``PatientReads._read_batch``), over answers
replayed from memory.

Run: ``UVLOOP=1 .venv/bin/python bench/overhead_patient.py`` (``PATIENTS`` in the emulated
tenant, 300; ``ROUNDS``, 7).

An emulated tenant (seed 42) is served in process through ``httpx.ASGITransport``; one listing
records every answer, then the bench reads every listed person again in batches of
:data:`~carebridge.connectors.carecloud.reads_patients.BATCH` (``GET /v2/patients/{id}`` and
``/balance`` each, mapped), with each answer replayed from memory: what is measured is the
connector's own CPU per patient (request path, throttle, drift checks, mapping, tasks), not the
emulator's. It prints each round's CPU (``time.process_time``) per patient, then the median and
spread.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from carebridge.connectors.carecloud.facade import CareCloudTenant
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.wiring.carecloud import from_sandbox, open_tenant
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.control import credentials
from carecloud_sandbox.tenant import Tenant

PATIENTS = int(os.environ.get("PATIENTS", "300"))
ROUNDS = int(os.environ.get("ROUNDS", "7"))
BASE = "http://sandbox.test"


class Replay(httpx.AsyncBaseTransport):
    """Answers a GET it answered before from memory; anything else through the emulator."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.kept: dict[str, tuple[int, list[tuple[bytes, bytes]], bytes]] = {}
        self.replaying = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = str(request.url)
        if self.replaying and request.method == "GET" and key in self.kept:
            status, headers, body = self.kept[key]
            return httpx.Response(status, headers=headers, content=body)
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if request.method == "GET":
            self.kept[key] = (response.status_code, list(response.headers.raw), body)
        return httpx.Response(response.status_code, headers=response.headers.raw, content=body)


async def run() -> list[float]:
    now = datetime.now(UTC)
    clock = ManualClock(now)
    config = SandboxConfig(
        seed=42, patients=PATIENTS, practices=1, anchor=now.date(), base_url=BASE
    )
    tenant = Tenant.open(config, clock=clock)
    app = httpx.ASGITransport(app=build_app(tenant))
    settings, secrets = from_sandbox(credentials(tenant))
    replay = Replay(app)
    unlimited = AimdThrottle(ThrottleConfig(max_rate=1e9, start_rate=1e9, start_concurrency=16))
    facade: CareCloudTenant = open_tenant(
        "ten_bench",
        settings,
        secrets,
        clock=lambda: datetime.now(UTC),
        transport=replay,
        throttle=unlimited,
    )
    listed = [p async for p in facade.patients()]
    people = [facade._people[p.id] for p in listed]
    batches = [people[i : i + 100] for i in range(0, len(people), 100)]
    replay.replaying = True
    per: list[float] = []
    for _ in range(ROUNDS):
        cpu = time.process_time()
        for batch in batches:
            read = await facade._read_batch(batch)
            assert len(read) == len(batch)
        per.append((time.process_time() - cpu) / len(people) * 1e6)
        print(f"cpu {per[-1]:7.1f} us/patient", flush=True)
    await facade.connection.aclose()
    await app.aclose()
    tenant.db.close()
    return per


def main() -> None:
    runner: Callable[[Awaitable[Any]], Any] = asyncio.run
    if os.environ.get("UVLOOP"):
        import uvloop

        runner = uvloop.run
    per = runner(run())
    print(
        f"PATIENTS={PATIENTS} loop={'uvloop' if os.environ.get('UVLOOP') else 'asyncio'}: "
        f"median {statistics.median(per):.1f} us/patient (min {min(per):.1f}, max {max(per):.1f})"
    )


if __name__ == "__main__":
    main()
