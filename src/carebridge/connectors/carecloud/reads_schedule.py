"""The schedule from v2: appointments by window, one appointment with its confirmations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from carebridge.connectors.carecloud.identity import Identity
from carebridge.connectors.carecloud.mapping import v2 as vmap
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.domain import Appointment
from carebridge.domain.values import AppointmentId, LocationId, PatientId, ProviderId
from carebridge.domain.vocab import AppointmentStatus
from carebridge.errors import UpstreamStatusError


class ScheduleReads(Identity):
    """Appointments (v2)."""

    async def _reasons(self) -> dict[int, vw.CancellationReasonPayload]:
        if self._cancellation_reasons is None:
            endpoint = "GET /v2/appointment_cancellation_reasons"
            envelopes = await self._v2_read_list(
                endpoint, "/v2/appointment_cancellation_reasons", vw.CancellationReasonEnvelope
            )
            self._cancellation_reasons = {
                e.appointment_cancellation_reason.id: e.appointment_cancellation_reason
                for e in envelopes
            }
        return self._cancellation_reasons

    async def appointments(
        self,
        start: date,
        end: date,
        *,
        patient_id: PatientId | None = None,
        provider_id: ProviderId | None = None,
        location_id: LocationId | None = None,
        status: AppointmentStatus | None = None,
    ) -> AsyncIterator[Appointment]:
        """Every appointment starting on ``start``..``end`` (practice days), all pages; the
        patient filter is the upstream's, the others are applied to the mapped records."""
        endpoint = "GET /v2/appointments"
        params: dict[str, Any] = {"start_date": start.isoformat(), "end_date": end.isoformat()}
        if patient_id is not None:
            params["patient_ids"] = (await self._v2_ref(patient_id)).v2_id
        reasons = await self._reasons()
        envelopes = await self._v2_list(
            endpoint, "/v2/appointments", vw.AppointmentEnvelope, params
        )
        ctx = self._ctx("v2", endpoint)
        mapped: list[Appointment] = []
        for envelope in envelopes:
            wire = envelope.appointment
            a = self._keep(endpoint, vmap.map_appointment(wire, ctx, cancellation_reasons=reasons))
            self._appointments[a.id] = self._writes.index.appointments[a.id] = wire.id
            self._learn("appointment", "v2", wire.id, a.id)
            self._link(wire.patient.chart_number, wire.patient.id)
            mapped.append(a)
        await self._flush()  # the listing's ids, one batch
        for a in mapped:
            if patient_id is not None and a.patient_id != patient_id:
                continue
            if provider_id is not None and a.provider_id != provider_id:
                continue
            if location_id is not None and a.location_id != location_id:
                continue
            if status is not None and a.status is not status:
                continue
            yield a

    async def appointment(self, appointment_id: AppointmentId) -> Appointment:
        """One appointment with its extended fields and confirmations (it must have been listed
        by ``appointments`` first, here or by any process sharing the crosswalk: v2 ids are
        GUIDs that a ``apt_`` id does not reveal)."""
        guid = await self._appointment_guid(appointment_id)
        endpoint = "GET /v2/appointments/{id}"
        if guid is None:
            raise UpstreamStatusError(
                "appointment not in the crosswalk", status=404, endpoint=endpoint
            )
        confirmations_endpoint = "GET /v2/appointments/{id}/confirmations"
        wire = (
            await self._v2_read(endpoint, f"/v2/appointments/{guid}", vw.AppointmentDetailResponse)
        ).appointment
        confirmations = [
            e.appointment_confirmation
            for e in await self._v2_read_list(
                confirmations_endpoint,
                f"/v2/appointments/{guid}/confirmations",
                vw.ConfirmationEnvelope,
            )
        ]
        mapped = vmap.map_appointment(
            wire,
            self._ctx("v2", endpoint),
            confirmations=confirmations,
            cancellation_reasons=await self._reasons(),
        )
        return self._keep(endpoint, mapped)
