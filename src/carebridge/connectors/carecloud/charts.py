"""Chart writes through the portal: push an encounter, sign it, add an addendum."""

from __future__ import annotations

from typing import Any

from carebridge.connectors.carecloud.drift import check
from carebridge.connectors.carecloud.mapping import portal as pm
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.write_context import (
    WriteContext,
    _diff,
    _need,
    _on_portal,
    _parse,
    _read_back,
    _resend,
    _resend_verb,
)
from carebridge.domain import Encounter
from carebridge.domain.values import EncounterId
from carebridge.errors import AuthError, UpstreamStatusError
from carebridge.ports.upstream import NewEncounter, WriteResult

_REFUSALS = (UpstreamStatusError, AuthError)
"""What the portal answers when it refuses a chart verb."""


async def _encounter(wctx: WriteContext, number: int) -> Encounter:
    endpoint = "GET /portal/api/encounters/{id}"
    r = await wctx.portal.request(
        "GET", f"{wctx.portal_url}/encounters/{number}", endpoint=endpoint
    )
    value = pm.encounter_from_portal(
        _parse(r, pw.EncounterDetailPayload, endpoint, wctx), wctx.ctx("portal", endpoint)
    ).value
    wctx.index.encounters[value.id] = number
    return value


async def _encounter_ids(wctx: WriteContext, chart: str) -> set[int]:
    ids: set[int] = set()
    async for body in wctx.portal.portal_pages(
        f"{wctx.portal_url}/patients/{chart}/encounters", {"pageSize": 100}
    ):
        page = check(
            body,
            pw.Page[pw.EncounterItemPayload],
            "GET /portal/api/patients/{chartNumber}/encounters",
            wctx.drift,
        )
        ids.update(e.id for e in page.items)
    return ids


async def push_encounter(wctx: WriteContext, command: NewEncounter) -> WriteResult[Encounter]:
    """Push an open encounter to the patient's chart (``POST /portal/api/encounters``)."""
    keys = wctx.index.patient(command.patient_id)
    body: dict[str, Any] = {
        "chartNumber": keys.chart_number,
        "chiefComplaint": command.chief_complaint,
        "notes": dict(command.note),
        "diagnoses": list(command.diagnoses),
        "procedures": [{"code": code, "units": units} for code, units in command.procedures],
    }
    if command.provider_id is not None:
        body["providerId"] = _need(wctx.index.providers, command.provider_id, "provider")
    if command.location_id is not None:
        body["locationId"] = _need(wctx.index.locations, command.location_id, "location")
    if command.start is not None:
        body["startTime"] = command.start.isoformat()
    before = await _encounter_ids(wctx, keys.chart_number)

    async def send() -> int:
        r = await wctx.portal.request("POST", f"{wctx.portal_url}/encounters", json=body)
        return _parse(r, pw.EncounterDetailPayload, "POST /portal/api/encounters", wctx).id

    async def find() -> int | None:
        new = sorted((await _encounter_ids(wctx, keys.chart_number)) - before)
        return new[-1] if new else None

    number, sends = await _resend(_on_portal(send, "push encounter"), find)
    value = await _encounter(wctx, number)
    note = value.note.model_dump()
    diverged = _diff(
        [
            ("patient_id", command.patient_id, value.patient_id),
            ("provider_id", command.provider_id, value.provider_id),
            ("location_id", command.location_id, value.location_id),
            ("start", command.start, value.start),
            ("chief_complaint", command.chief_complaint, value.chief_complaint),
            *((f"note.{k}", v, note.get(k)) for k, v in command.note.items()),
            ("diagnoses", tuple(command.diagnoses), tuple(d.code for d in value.diagnoses)),
            (
                "procedures",
                tuple(command.procedures),
                tuple((p.code, p.units) for p in value.procedures),
            ),
        ]
    )
    return _read_back(value, diverged, sends)


async def add_addendum(
    wctx: WriteContext, encounter_id: EncounterId, text: str
) -> WriteResult[Encounter]:
    """Add an addendum to a signed encounter.

    Raises:
        InvalidTransition: the encounter is still open.
    """
    number = _need(wctx.index.encounters, encounter_id, "encounter")
    before = len((await _encounter(wctx, number)).addenda)

    async def send() -> object:
        return await wctx.portal.request(
            "POST",
            f"{wctx.portal_url}/encounters/{number}/addenda",
            json={"text": text},
            endpoint="POST /portal/api/encounters/{id}/addenda",
        )

    async def took() -> bool:
        now = await _encounter(wctx, number)
        return any(a.text == text for a in now.addenda[before:])

    sends = await _resend_verb(_on_portal(send, "add addendum", _REFUSALS), took)
    value = await _encounter(wctx, number)
    diverged = () if any(a.text == text for a in value.addenda[before:]) else ("addenda",)
    return _read_back(value, diverged, sends)


async def sign_encounter(wctx: WriteContext, encounter_id: EncounterId) -> WriteResult[Encounter]:
    """Sign an open encounter (posts its charges upstream).

    Raises:
        InvalidTransition: already signed (409). EncounterLocked: the portal's 423.
    """
    number = _need(wctx.index.encounters, encounter_id, "encounter")

    async def send() -> object:
        return await wctx.portal.request(
            "POST",
            f"{wctx.portal_url}/encounters/{number}/sign",
            endpoint="POST /portal/api/encounters/{id}/sign",
        )

    async def took() -> bool:
        return (await _encounter(wctx, number)).signed_at is not None

    sends = await _resend_verb(_on_portal(send, "sign encounter", _REFUSALS), took)
    value = await _encounter(wctx, number)
    diverged = () if value.signed_at is not None else ("signed_at",)
    return _read_back(value, diverged, sends)
