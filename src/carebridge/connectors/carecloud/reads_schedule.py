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

_STATUS_FILTER = {
    AppointmentStatus.SCHEDULED: "P",
    AppointmentStatus.CONFIRMED: "P",
    AppointmentStatus.ARRIVED: "I",
    AppointmentStatus.CHECKED_OUT: "O",
    AppointmentStatus.CANCELLED: "C",
    AppointmentStatus.RESCHEDULED: "R",
}
"""The v2 list's ``status`` filter code of each status it can filter on."""


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
        patient filter is the upstream's, the others are applied to the mapped records.

        The listing streams: pages are read a few ahead (``_v2_pages``) and each page's
        appointments are yielded once its ids are in the crosswalk, so a window of any size
        holds a few pages in memory. The GUIDs it learns go to the crosswalk, not to a table
        of this process (``appointment`` and the writes look them up there)."""
        endpoint = "GET /v2/appointments"
        params: dict[str, Any] = {"start_date": start.isoformat(), "end_date": end.isoformat()}
        if patient_id is not None:
            params["patient_ids"] = (await self._v2_ref(patient_id)).v2_id
        reasons = await self._reasons()
        async for envelopes in self._v2_pages(
            endpoint, "/v2/appointments", vw.AppointmentEnvelope, params
        ):
            ctx = self._ctx("v2", endpoint)
            mapped: list[Appointment] = []
            for envelope in envelopes:
                wire = envelope.appointment
                mapping = vmap.map_appointment(wire, ctx, cancellation_reasons=reasons)
                a = self._keep(endpoint, mapping)
                self._learn("appointment", "v2", wire.id, a.id)
                self._link(wire.patient.chart_number, wire.patient.id)
                mapped.append(a)
            await self._flush()  # the page's ids, one batch
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

    async def appointment_changes(
        self,
        start: date,
        end: date,
        *,
        created_from: date | None = None,
        statuses: tuple[AppointmentStatus, ...] = (),
    ) -> AsyncIterator[Appointment]:
        """The appointments starting on ``start``..``end`` (practice days) that the upstream's
        own filters narrow to: created on or after ``created_from`` (v2 ``created_at_from``)
        and in one of ``statuses`` (v2 ``status``: only those with a v2 filter code). v2 has
        no ``updated_since`` for appointments; the change feed reads these narrow lists."""
        endpoint = "GET /v2/appointments"
        params: dict[str, Any] = {"start_date": start.isoformat(), "end_date": end.isoformat()}
        if created_from is not None:
            params["created_at_from"] = created_from.isoformat()
        codes = sorted({_STATUS_FILTER[s] for s in statuses if s in _STATUS_FILTER})
        if codes:
            params["status"] = ",".join(codes)
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
        await self._flush()
        for a in mapped:
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
