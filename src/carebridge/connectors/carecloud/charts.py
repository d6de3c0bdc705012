"""Chart writes through the portal: push an encounter, sign it, add an addendum."""

from __future__ import annotations

from typing import Any

from carebridge.connectors.carecloud.client import WriteUnconfirmed
from carebridge.connectors.carecloud.drift import check
from carebridge.connectors.carecloud.mapping import portal as pm
from carebridge.connectors.carecloud.portal_errors import _portal_error, _portal_failure
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.write_context import (
    MAX_SENDS,
    WriteContext,
    _diff,
    _need,
    _parse,
    _verdict,
)
from carebridge.domain import Encounter
from carebridge.domain.values import EncounterId
from carebridge.errors import AuthError, UpstreamStatusError
from carebridge.ports.upstream import NewEncounter, WriteResult


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
    number: int | None = None
    sends = 0
    while number is None:
        sends += 1
        _portal_error.set(None)
        try:
            r = await wctx.portal.request("POST", f"{wctx.portal_url}/encounters", json=body)
            number = _parse(r, pw.EncounterDetailPayload, "POST /portal/api/encounters", wctx).id
        except UpstreamStatusError as err:
            raise _portal_failure(err, "push encounter") from None
        except WriteUnconfirmed:
            new = sorted((await _encounter_ids(wctx, keys.chart_number)) - before)
            number = new[-1] if new else None
            if number is None and sends >= MAX_SENDS:
                raise
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
    return WriteResult(
        value=value, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )


async def add_addendum(
    wctx: WriteContext, encounter_id: EncounterId, text: str
) -> WriteResult[Encounter]:
    """Add an addendum to a signed encounter.

    Raises:
        InvalidTransition: the encounter is still open.
    """
    number = _need(wctx.index.encounters, encounter_id, "encounter")
    before = len((await _encounter(wctx, number)).addenda)
    sends = 0
    while True:
        sends += 1
        _portal_error.set(None)
        try:
            await wctx.portal.request(
                "POST",
                f"{wctx.portal_url}/encounters/{number}/addenda",
                json={"text": text},
                endpoint="POST /portal/api/encounters/{id}/addenda",
            )
            break
        except (UpstreamStatusError, AuthError) as err:
            raise _portal_failure(err, "add addendum") from None
        except WriteUnconfirmed:
            now = await _encounter(wctx, number)
            if any(a.text == text for a in now.addenda[before:]):
                break
            if sends >= MAX_SENDS:
                raise
    value = await _encounter(wctx, number)
    diverged = () if any(a.text == text for a in value.addenda[before:]) else ("addenda",)
    return WriteResult(
        value=value, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )


async def sign_encounter(wctx: WriteContext, encounter_id: EncounterId) -> WriteResult[Encounter]:
    """Sign an open encounter (posts its charges upstream).

    Raises:
        InvalidTransition: already signed (409). EncounterLocked: the portal's 423.
    """
    number = _need(wctx.index.encounters, encounter_id, "encounter")
    sends = 0
    while True:
        sends += 1
        _portal_error.set(None)
        try:
            await wctx.portal.request(
                "POST",
                f"{wctx.portal_url}/encounters/{number}/sign",
                endpoint="POST /portal/api/encounters/{id}/sign",
            )
            break
        except (UpstreamStatusError, AuthError) as err:
            raise _portal_failure(err, "sign encounter") from None
        except WriteUnconfirmed:
            if (await _encounter(wctx, number)).signed_at is not None:
                break
            if sends >= MAX_SENDS:
                raise
    value = await _encounter(wctx, number)
    diverged = () if value.signed_at is not None else ("signed_at",)
    return WriteResult(
        value=value, confirmation=_verdict(diverged), diverged=diverged, attempts=sends
    )
