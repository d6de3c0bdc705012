"""CPU per patient of the connector's path from response bytes to a domain ``Patient``.

Run: ``.venv/bin/python bench/mapping.py`` (``PATIENTS`` payloads, 500; ``ROUNDS``, 7).

An emulated tenant (seed 42, 2,000 patients, two practices) is generated in process and the
first practice's patients are read through ``httpx.ASGITransport``: each one's
``GET /v2/patients/{id}`` and ``GET /v2/patients/{id}/balance`` bodies, kept as bytes. Then,
for every patient, in rounds (CPU time of this process, ``time.process_time``):

- **floor**: ``orjson.loads`` of both bodies and pydantic's ``model_validate`` of the wire
  models (``PatientShowResponse``, ``list[BalancePayload]``): what any client that validates
  its input pays;
- **connector**: what ``PatientReads._patient`` runs once the bodies are in: ``json_body``,
  ``drift.check`` / ``drift.check_list`` into the tenant's drift report, the mapping context,
  ``map_patient`` with the balances, and the dropped-field tally (``TenantBase._keep``);
- the share of it spent in the drift check (and validation) and in the mapping.

It prints µs of CPU per patient (median and best of the rounds) and the connector's ratio to
the floor. Run it before and after a change back to back (``PYTHONPATH=<other tree>/src`` runs
it against another checkout); on a busy machine, ``bench/mapping_ab.py <other checkout>`` times
both in one process, in alternating batches, and checks they map alike.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson
from pydantic import TypeAdapter

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.drift import DriftReport
from carebridge.connectors.carecloud.mapping import v2 as vmap
from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.wire import v2 as vw
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.tenant import Tenant

PATIENTS = int(os.environ.get("PATIENTS", "500"))
ROUNDS = int(os.environ.get("ROUNDS", "7"))
BASE = "http://sandbox.test"
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SHOWN = "GET /v2/patients/{id}"
BALANCE = "GET /v2/patients/{id}/balance"

Bodies = list[tuple[bytes, bytes]]


def capture(count: int = PATIENTS) -> Bodies:
    """The show and balance bodies of the first ``count`` patients of practice 1."""
    clock = ManualClock(START)
    config = SandboxConfig(seed=42, patients=2000, anchor=date(2026, 11, 24), base_url=BASE)
    tenant = Tenant.open(config, clock=clock)
    app = build_app(tenant)

    async def run() -> Bodies:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            creds = (await client.get("/_sandbox/credentials")).json()
            practice = creds["practices"][0]
            grant = await client.post(
                "/oauth2/access_token",
                auth=(creds["client_id"], creds["client_secret"]),
                data={"grant_type": "refresh_token", "refresh_token": practice["refresh_token"]},
            )
            client.headers["Authorization"] = f"Bearer {grant.json()['access_token']}"
            rows = tenant.db.all(
                "SELECT id FROM patients WHERE practice_id = "
                "(SELECT MIN(practice_id) FROM patients) ORDER BY internal_id LIMIT ?",
                (count,),
            )
            bodies: Bodies = []
            for row in rows:
                show = await client.get(f"/v2/patients/{row['id']}")
                balance = await client.get(f"/v2/patients/{row['id']}/balance")
                show.raise_for_status()
                balance.raise_for_status()
                bodies.append((show.content, balance.content))
            return bodies

    try:
        return asyncio.run(run())
    finally:
        tenant.db.close()


_balances = TypeAdapter(list[vw.BalancePayload])


def floor(show: bytes, balance: bytes) -> object:
    """Parse and validate, nothing else."""
    patient = vw.PatientShowResponse.model_validate(orjson.loads(show))
    return patient, _balances.validate_python(orjson.loads(balance))


class Connector:
    """The connector's own steps, as ``PatientReads._patient`` runs them on two bodies."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self.report = DriftReport(clock=clock)
        self.dropped: dict[str, Counter[str]] = {}

    def checked(self, show: bytes, balance: bytes) -> tuple[Any, list[vw.BalancePayload]]:
        wire = drift.check(orjson.loads(show), vw.PatientShowResponse, SHOWN, self.report)
        rows = drift.check_list(orjson.loads(balance), vw.BalancePayload, BALANCE, self.report)
        return wire, rows

    def mapped(self, wire: Any, rows: list[vw.BalancePayload]) -> Any:
        ctx = Context(tenant="t1", surface="v2", endpoint=SHOWN, fetched_at=self.clock())
        mapped: Mapped[Any] = vmap.map_patient(wire.patient, ctx, balances=rows)
        if mapped.dropped:
            self.dropped.setdefault(SHOWN, Counter()).update(mapped.dropped)
        return mapped.value

    def patient(self, show: bytes, balance: bytes) -> Any:
        return self.mapped(*self.checked(show, balance))


def per_patient(bodies: Bodies, step: Callable[[bytes, bytes], object]) -> list[float]:
    """µs of CPU per patient of ``step`` over ``bodies``, one figure per round."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for show, balance in bodies:
            step(show, balance)
        rounds.append((time.process_time() - started) / len(bodies) * 1e6)
    return rounds


def _line(name: str, rounds: list[float], base: float | None = None) -> str:
    med = statistics.median(rounds)
    ratio = f"  {med / base:5.2f}x floor" if base else ""
    return f"{name:<34} median {med:8.1f} us  best {min(rounds):8.1f} us{ratio}"


def main() -> None:
    t0 = time.process_time()
    bodies = capture()
    print(f"captured {len(bodies)} patients in {time.process_time() - t0:.1f} s of CPU")
    connector = Connector()
    for show, balance in bodies:  # warm the memos (shapes, spellings) as a sync's first page
        connector.patient(show, balance)
    checked = [connector.checked(show, balance) for show, balance in bodies]

    floor_us = per_patient(bodies, floor)
    total_us = per_patient(bodies, connector.patient)
    check_us = per_patient(bodies, connector.checked)
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for wire, rows in checked:
            connector.mapped(wire, rows)
        rounds.append((time.process_time() - started) / len(checked) * 1e6)

    base = statistics.median(floor_us)
    print(_line("floor (orjson + model_validate)", floor_us))
    print(_line("connector: bytes -> Patient", total_us, base))
    print(_line("  drift check + validation", check_us, base))
    print(_line("  map_patient + dropped tally", rounds, base))


if __name__ == "__main__":
    main()
