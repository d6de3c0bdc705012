"""carebridge's overhead on ``POST /create_appointment`` over the upstream work alone.

Run: ``.venv/bin/python bench/api_write.py [bookings per path and round, default 30]``

An emulated tenant (seed 42, 2,000 patients) runs in its own process on a loopback port
(``bench/connector.py``'s ``start_sandbox``). carebridge runs in this process over a temporary
SQLite store, with the sandbox onboarded as a tenant, and is called through ``httpx``'s ASGI
transport (no socket on carebridge's side, so the figure is carebridge's own work).

Each booking takes a distinct free slot, and the two paths alternate, so the sandbox's state
and load are alike for both:

- **connector**: the tenant's connector books directly (``CareCloudTenant.create_appointment``:
  the slot check, the ``POST /v2/appointments`` and the read-back), the baseline;
- **API**: ``POST /create_appointment`` with an ``Idempotency-Key``: the key check, the
  idempotency record, the ledger entry, the audit entry, the same connector call, the store
  upsert, the ledger close and the stored answer.

It runs 3 rounds and prints, per path, p50, p99 and mean latency over all rounds and the
upstream share (the time spent inside upstream HTTP requests, measured by the transport); then
carebridge's overhead on a write, the API's p50 less the connector's p50 (the goal: 10 ms or
less), and the ratio of the p50s, each as min / median / max over the rounds. The API key's own
rate limit is lifted for the run (``CAREBRIDGE_RATE_LIMIT``), so the bench measures the write
path, not the quota. The machine is shared: the figures move with its load.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.connector import start_sandbox

from carebridge.api.main import build
from carebridge.domain.values import LocationId, PatientId, ResourceId, VisitReasonId
from carebridge.ports.upstream import NewAppointment
from carebridge.services.keys import mint, parse_scopes
from carebridge.store import tenants as repo
from carebridge.store.vault import KeyRing
from carebridge.wiring.api import open_deployment
from carebridge.wiring.carecloud import from_sandbox

TENANT = "ten_bench"
ROUNDS = 3


class Timed(httpx.AsyncBaseTransport):
    """A real HTTP transport that adds up the time spent in upstream requests."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.spent = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.spent += time.perf_counter() - started
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _ms(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000, statistics.fmean(ordered) * 1000


async def _slots(client: httpx.AsyncClient, auth: dict[str, str], need: int) -> list[Any]:
    resources = (await client.get("/resources", headers=auth)).json()["data"]
    found: list[dict[str, Any]] = []
    start = datetime.now(UTC).date() + timedelta(days=1)
    for resource in resources:
        for reason in resource["visit_reason_ids"][:2]:
            day = start
            while len(found) < need and day < start + timedelta(days=60):
                r = await client.get(
                    "/availability",
                    params={
                        "visit_reason_id": reason,
                        "resource_id": resource["id"],
                        "start": day.isoformat(),
                        "end": (day + timedelta(days=6)).isoformat(),
                    },
                    headers=auth,
                )
                taken = {(s["resource_id"], s["start"]) for s in found}
                for slot in r.json()["data"]:
                    if (slot["resource_id"], slot["start"]) not in taken:
                        found.append(slot | {"visit_reason_id": reason})
                        taken.add((slot["resource_id"], slot["start"]))
                day += timedelta(days=7)
    # one slot per (resource, start): a booking takes the resource for its duration
    return found[:need]


async def main(per_path: int) -> None:
    os.environ.setdefault("CAREBRIDGE_RATE_LIMIT", "1000000000/1")
    base_url, stop = start_sandbox()
    timed = Timed()
    workdir = tempfile.mkdtemp(prefix="cb-bench-write-")
    deployment = await open_deployment(
        f"sqlite:///{workdir}/store.db", KeyRing.generate(), transport=timed
    )
    try:
        document = httpx.get(f"{base_url}/_sandbox/credentials", timeout=10).json()
        settings, secrets = from_sandbox(document)
        await deployment.onboard(
            tenant_id=TENANT, name="bench", upstream="carecloud", settings=settings, secrets=secrets
        )
        minted = mint()
        await repo.add_key(
            deployment.engine,
            key_id="key_bench",
            tenant_id=TENANT,
            prefix=minted.prefix,
            secret_hash=minted.secret_hash,
            scopes=parse_scopes("admin"),
            label="bench",
            now=datetime.now(UTC),
        )
        auth = {"Authorization": f"Bearer {minted.display}"}
        app = build(deployment)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cb") as client:
            patients = (await client.get("/patients", params={"limit": 200}, headers=auth)).json()
            people = [p["id"] for p in patients["data"]]
            need = 2 * per_path * ROUNDS + 4
            slots = await _slots(client, auth, need)
            if len(slots) < need:
                raise SystemExit(f"only {len(slots)} free slots found")
            facade = await deployment.upstreams.of(TENANT)
            times: dict[str, list[float]] = {"connector": [], "API": []}
            upstream: dict[str, float] = {"connector": 0.0, "API": 0.0}
            rounds: list[dict[str, list[float]]] = []
            for n, slot in enumerate(slots):
                if n >= 4 and (n - 4) % (2 * per_path) == 0:
                    rounds.append({"connector": [], "API": []})
                body = {
                    "patient_id": people[n % len(people)],
                    "resource_id": slot["resource_id"],
                    "location_id": slot["location_id"],
                    "visit_reason_id": slot["visit_reason_id"],
                    "start": slot["start"],
                }
                path = "API" if n % 2 else "connector"
                before = timed.spent
                started = time.perf_counter()
                if path == "API":
                    r = await client.post(
                        "/create_appointment",
                        json=body,
                        headers=auth | {"Idempotency-Key": f"b{n}"},
                    )
                    ok = r.status_code == 201
                else:
                    result = await facade.create_appointment(
                        NewAppointment(
                            patient_id=PatientId(body["patient_id"]),
                            resource_id=ResourceId(body["resource_id"]),
                            location_id=LocationId(body["location_id"]),
                            visit_reason_id=VisitReasonId(body["visit_reason_id"]),
                            start=datetime.fromisoformat(body["start"]),
                        )
                    )
                    ok = result.confirmation == "confirmed"
                elapsed = time.perf_counter() - started
                if not ok:
                    raise SystemExit(f"booking {n} on the {path} path failed")
                if n < 4:  # warm-up: each path's first bookings
                    continue
                times[path].append(elapsed)
                rounds[-1][path].append(elapsed)
                upstream[path] += timed.spent - before
    finally:
        await deployment.aclose()
        stop()

    print(
        f"create_appointment, {per_path} bookings per path in each of {ROUNDS} rounds (after "
        "2 warm-up bookings per path), sandbox of 2,000 patients"
    )
    print(f"{'path':<10} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'upstream ms':>12}")
    for path in ("connector", "API"):
        p50, p99, mean = _ms(times[path])
        share = upstream[path] / len(times[path]) * 1000
        print(f"{path:<10} {p50:>8.1f} {p99:>8.1f} {mean:>8.1f} {share:>12.1f}")
    added = sorted(
        (statistics.median(r["API"]) - statistics.median(r["connector"])) * 1000 for r in rounds
    )
    ratios = sorted(statistics.median(r["API"]) / statistics.median(r["connector"]) for r in rounds)
    print(
        f"carebridge adds (p50 API - p50 connector): median {statistics.median(added):.1f} ms "
        f"(min {added[0]:.1f}, max {added[-1]:.1f}) over {ROUNDS} rounds; goal <= 10 ms"
    )
    print(
        f"ratio API/connector (p50): median {statistics.median(ratios):.2f}x "
        f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f})"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
