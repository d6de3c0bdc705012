"""Eligibility inquiries through v2: ask the payer, then poll until answered."""

from __future__ import annotations

from carebridge.connectors.carecloud.mapping import v2 as vm
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.connectors.carecloud.write_context import (
    WriteContext,
    _diff,
    _nothing,
    _parse,
    _read_back,
    _resend,
)
from carebridge.domain import EligibilityCheck, EligibilityRequest
from carebridge.domain.values import PatientId
from carebridge.ports.upstream import WriteResult

# --- eligibility ------------------------------------------------------------------------------------


async def check_eligibility(
    wctx: WriteContext, patient_id: PatientId, request: EligibilityRequest
) -> WriteResult[EligibilityCheck]:
    """Ask the payer electronically, then poll until answered (``wctx.sleep`` between polls).

    An eligibility inquiry writes nothing the practice keeps, so an unknown outcome is simply
    sent again. Returns ``pending`` when ``poll_attempts`` polls saw no answer.
    """
    keys = wctx.index.patient(patient_id)
    endpoint = "POST /v2/patients/{id}/eligibility_request"
    asked_at = wctx.clock()

    async def send() -> int:
        r = await wctx.v2.request(
            "POST",
            f"{wctx.v2_url}/patients/{keys.guid}/eligibility_request",
            json={"eligibility_date": request.service_date.isoformat()},
            endpoint=endpoint,
        )
        return _parse(r, vw.EligibilityCreatedResponse, endpoint, wctx).eligibility_request.id

    request_id, sends = await _resend(send, _nothing)
    poll = "GET /v2/patients/{id}/eligibility_request/{request_id}"
    ref = vm.PatientRef(keys.guid, keys.chart_number)
    for n in range(wctx.poll_attempts):
        if n:
            await wctx.sleep(wctx.poll_interval)
        r = await wctx.v2.request(
            "GET",
            f"{wctx.v2_url}/patients/{keys.guid}/eligibility_request/{request_id}",
            endpoint=poll,
        )
        wire = _parse(r, vw.EligibilityResponse, poll, wctx).eligibility_request
        value = vm.map_eligibility(
            wire, wctx.ctx("v2", poll), patient=ref, requested_at=asked_at, request=request
        ).value
        if value.status != "pending":
            diverged = _diff([("service_date", request.service_date, wire.eligibility_date)])
            return _read_back(value, diverged, sends)
    return WriteResult(value=value, confirmation="pending", attempts=sends)
