"""Revenue-cycle writes: charges through v2 (read back from the portal's RCM ledger when there
is one) and claims through the portal's scrubber.
"""

from __future__ import annotations

from typing import Any

from carebridge.connectors.carecloud.client import WriteUnconfirmed
from carebridge.connectors.carecloud.drift import check, check_list
from carebridge.connectors.carecloud.mapping import portal as pm
from carebridge.connectors.carecloud.mapping import v2 as vm
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.connectors.carecloud.write_context import (
    PatientKeys,
    WriteContext,
    _diff,
    _need,
    _on_portal,
    _parse,
    _read_back,
    _resend,
)
from carebridge.domain import Charge, Claim
from carebridge.ports.upstream import NewCharge, NewClaim, WriteResult

# --- charges ----------------------------------------------------------------------------------------


async def _charges(wctx: WriteContext, keys: PatientKeys) -> list[tuple[int, Any]]:
    """The patient's charges as (id, wire), through the portal when there is one."""
    if wctx.conn.portal is not None and wctx.portal_url:
        out: list[tuple[int, Any]] = []
        async for body in wctx.portal.portal_pages(
            f"{wctx.portal_url}/charges", {"patient": keys.chart_number, "pageSize": 100}
        ):
            page = check(body, pw.Page[pw.ChargePayload], "GET /portal/api/charges", wctx.drift)
            out.extend((c.id, c) for c in page.items)
        return out
    items: list[tuple[int, Any]] = []
    endpoint = "GET /v2/patients/{id}/charges"
    async for response in wctx.v2.v2_pages(f"{wctx.v2_url}/patients/{keys.guid}/charges"):
        items.extend(
            (t.id, t)
            for t in check_list(response.json(), vw.TransactionPayload, endpoint, wctx.drift)
        )
    return items


def _map_charge(wctx: WriteContext, wire: Any, keys: PatientKeys, command: NewCharge) -> Charge:
    if isinstance(wire, pw.ChargePayload):
        return pm.charge_from_portal(wire, wctx.ctx("portal", "GET /portal/api/charges")).value
    details = vm.ChargeDetails(
        responsible="insurance",
        service_date=command.service_date,
        procedure_code=command.procedure_code,
        diagnosis_codes=tuple(command.diagnosis_codes),
    )
    ref = vm.PatientRef(keys.guid, keys.chart_number)
    return vm.map_charge(
        wire, wctx.ctx("v2", "GET /v2/patients/{id}/charges"), patient=ref, details=details
    ).value


def _matches_charge(wire: Any, command: NewCharge) -> bool:
    if isinstance(wire, pw.ChargePayload):
        return (
            wire.procedure_code == command.procedure_code
            and wire.service_date == command.service_date
            and wire.units == command.units
        )
    return bool(
        wire.units == command.units and (wire.description or "").endswith(command.procedure_code)
    )


async def create_charge(wctx: WriteContext, command: NewCharge) -> WriteResult[Charge]:
    """Post a CPT/HCPCS charge (``POST /v2/patients/{id}/charge``), read back from the ledger."""
    keys = wctx.index.patient(command.patient_id)
    before = {cid for cid, _ in await _charges(wctx, keys)}
    day = command.service_date.isoformat()
    charge: dict[str, Any] = {
        "start_time": f"{day}T00:00:00",
        "end_time": f"{day}T00:00:00",
        "units": command.units,
        "procedure_code": command.procedure_code,
        **{
            f"diagnosis{n}_code": code
            for n, code in enumerate(command.diagnosis_codes[:8], start=1)
        },
    }
    if command.provider_id is not None:
        charge["provider_id"] = _need(wctx.index.providers, command.provider_id, "provider")
    if command.location_id is not None:
        charge["location_id"] = _need(wctx.index.locations, command.location_id, "location")
    if command.encounter_id is not None:
        charge["encounter_id"] = _need(wctx.index.encounters, command.encounter_id, "encounter")

    async def send() -> int:
        r = await wctx.v2.request(
            "POST",
            f"{wctx.v2_url}/patients/{keys.guid}/charge",
            json={"charge": charge},
            endpoint="POST /v2/patients/{id}/charge",
        )
        (first, *_) = check_list(
            r.json(), vw.ChargeCreatedPayload, "POST /v2/patients/{id}/charge", wctx.drift
        )
        return first.id

    async def find() -> int | None:
        landed = [
            cid
            for cid, wire in await _charges(wctx, keys)
            if cid not in before and _matches_charge(wire, command)
        ]
        return landed[0] if landed else None

    created, sends = await _resend(send, find)
    found = dict(await _charges(wctx, keys))
    if created not in found:
        raise WriteUnconfirmed(f"charge {created} was not found on read-back")
    value = _map_charge(wctx, found[created], keys, command)
    wctx.index.charges[value.id] = created
    diverged = _diff(
        [
            ("procedure_code", command.procedure_code, value.procedure_code),
            ("units", command.units, value.units),
            ("service_date", command.service_date, value.service_date),
            ("diagnosis_codes", tuple(command.diagnosis_codes), tuple(value.diagnosis_codes)),
            ("provider_id", command.provider_id, value.provider_id),
        ]
    )
    return _read_back(value, diverged, sends)


# --- claims and encounters (portal) -----------------------------------------------------------------


async def _claim(wctx: WriteContext, number: str) -> Claim:
    endpoint = "GET /portal/api/claims/{claimNumber}"
    r = await wctx.portal.request("GET", f"{wctx.portal_url}/claims/{number}", endpoint=endpoint)
    return pm.claim_from_portal(
        _parse(r, pw.ClaimDetailPayload, endpoint, wctx), wctx.ctx("portal", endpoint)
    ).value


async def _claim_with(wctx: WriteContext, chart: str, charge_ids: set[int]) -> str | None:
    async for body in wctx.portal.portal_pages(
        f"{wctx.portal_url}/claims", {"patient": chart, "pageSize": 100}
    ):
        page = check(body, pw.Page[pw.ClaimItemPayload], "GET /portal/api/claims", wctx.drift)
        for item in page.items:
            r = await wctx.portal.request("GET", f"{wctx.portal_url}/claims/{item.claim_number}")
            detail = _parse(r, pw.ClaimDetailPayload, "GET /portal/api/claims/{claimNumber}", wctx)
            if {line.charge_id for line in detail.lines} == charge_ids:
                return item.claim_number
    return None


async def submit_claim(wctx: WriteContext, command: NewClaim) -> WriteResult[Claim]:
    """Scrub and submit a claim from unbilled charges (``POST /portal/api/claims``).

    Raises:
        ClaimRejected: the scrubber's 422, naming every field it objected to.
    """
    keys = wctx.index.patient(command.patient_id)
    charge_ids = [_need(wctx.index.charges, c, "charge") for c in command.charge_ids]
    body = {
        "chartNumber": keys.chart_number,
        "chargeIds": charge_ids,
        "attachments": [{"documentId": int(d), "type": t} for d, t in command.attachments],
    }

    async def send() -> str:
        r = await wctx.portal.request("POST", f"{wctx.portal_url}/claims", json=body)
        return _parse(r, pw.ClaimDetailPayload, "POST /portal/api/claims", wctx).claim_number

    async def find() -> str | None:
        return await _claim_with(wctx, keys.chart_number, set(charge_ids))

    number, sends = await _resend(_on_portal(send, "submit claim"), find)
    claim = await _claim(wctx, number)
    asked = {wctx.index.charges[c] for c in command.charge_ids}
    got = {wctx.index.charges.get(line.charge_id) for line in claim.lines}
    diverged = () if asked == got else ("lines",)
    return _read_back(claim, diverged, sends)
