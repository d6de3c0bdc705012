"""One process of carebridge reading and writing an emulated tenant through the store's
crosswalk, for the multi-process crosswalk tests (``test_crosswalk_processes.py``):
``python crosswalk_process.py <sandbox URL> <store URL> <tenant> <role> [<ids JSON>]``.

The connector is wired as a deployment wires it (``wiring.carecloud.open_tenant`` with the
store's MFA ledger and crosswalk). Its clock is the emulated tenant's, read over the control
plane once and again after each wait for a TOTP step (which moves that clock), so nothing
sleeps. Roles:

- ``list``: list the patients and a fortnight of appointments; print their ids, the answers of
  a few reads by id, and an appointment to cancel;
- ``use``: with the ids ``list`` printed, read those records by id and cancel the appointment;
- ``again``: read them by id once more (a restart: the cancelled appointment stays cancelled).

Prints one JSON line: the answers (records without their fetch instants), the facade's
crosswalk of the people it resolved, and every request sent upstream (method and path).
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date, datetime
from typing import Any

import httpx

from carebridge.connectors.carecloud.facade import CareCloudTenant
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.domain.provenance import DomainModel
from carebridge.domain.values import AppointmentId, PatientId
from carebridge.domain.vocab import AppointmentStatus
from carebridge.store.crosswalk import SqlCrosswalk
from carebridge.store.engine import create_engine
from carebridge.store.mfa_steps import SqlMfaSteps
from carebridge.wiring.carecloud import from_sandbox, open_tenant

WINDOW = (date(2026, 11, 24), date(2026, 12, 8))


class Recording(httpx.AsyncBaseTransport):
    """The network, recording each request's method and path."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def answer(record: DomainModel) -> dict[str, Any]:
    """A record as the API would answer it, less the instant this process fetched it."""
    data = record.model_dump(mode="json")
    for source in data.get("sources", ()):
        source.pop("fetched_at", None)
    return data


async def listing(tenant: CareCloudTenant) -> dict[str, Any]:
    patients = [p async for p in tenant.patients()]
    appointments = [a async for a in tenant.appointments(*WINDOW)]
    now = tenant.clock()
    cancel = next(
        a for a in appointments if a.status is AppointmentStatus.SCHEDULED and a.start > now
    )
    keep = next(a for a in appointments if a.id != cancel.id)
    chosen = patients[len(patients) // 2]
    return {
        "patients": sorted(p.id for p in patients),
        "appointments": sorted(a.id for a in appointments),
        "ids": {"patient": chosen.id, "cancel": cancel.id, "keep": keep.id},
        "answers": {
            "patient": answer(chosen),
            "keep": answer(await tenant.appointment(keep.id)),
            "cancel": answer(await tenant.appointment(cancel.id)),
        },
    }


async def use(tenant: CareCloudTenant, ids: dict[str, str], *, cancel: bool) -> dict[str, Any]:
    found: dict[str, Any] = {
        "patient": answer(await tenant.patient(PatientId(ids["patient"]))),
        "keep": answer(await tenant.appointment(AppointmentId(ids["keep"]))),
    }
    if cancel:
        result = await tenant.cancel_appointment(
            AppointmentId(ids["cancel"]), reason_code=None, comments="by process B"
        )
        found["cancelled"] = {"status": result.value.status, "confirmation": result.confirmation}
    found["cancel"] = answer(await tenant.appointment(AppointmentId(ids["cancel"])))
    return {"answers": found}


async def main(base_url: str, store_url: str, tenant_id: str, role: str, ids: str) -> None:
    control = httpx.Client(base_url=base_url, timeout=30)
    instant = [datetime.fromisoformat(control.get("/_sandbox/clock").json()["now"])]

    def clock() -> datetime:
        return instant[0]

    async def sleep(seconds: float) -> None:
        del seconds  # the control plane moves by whole minutes: past the next step
        control.post("/_sandbox/clock/advance", json={"minutes": 1}).raise_for_status()
        instant[0] = datetime.fromisoformat(control.get("/_sandbox/clock").json()["now"])

    settings, secrets = from_sandbox(control.get("/_sandbox/credentials").json())
    engine = create_engine(store_url)
    network = Recording()
    tenant = open_tenant(
        tenant_id,
        settings,
        secrets,
        clock=clock,
        transport=network,
        throttle=AimdThrottle(ThrottleConfig(start_rate=200, burst=5)),
        mfa_steps=SqlMfaSteps(engine),
        crosswalk=SqlCrosswalk(engine),
        sleep=sleep,
    )
    try:
        if role == "list":
            out = await listing(tenant)
        else:
            out = await use(tenant, json.loads(ids), cancel=role == "use")
        chosen = (out["ids"] if role == "list" else json.loads(ids))["patient"]
        person = tenant.crosswalk()[PatientId(chosen)]
        out["person"] = [
            person.chart_number,
            person.v2_id,
            person.rcm_account_number,
            person.fhir_id,
        ]
        out["sent"] = network.sent
    finally:
        await tenant.remember_pending()
        await tenant.connection.aclose()
        await engine.dispose()
        control.close()
    print(json.dumps(out))


if __name__ == "__main__":
    args = [*sys.argv[1:], ""]
    asyncio.run(main(args[0], args[1], args[2], args[3], args[4]))
