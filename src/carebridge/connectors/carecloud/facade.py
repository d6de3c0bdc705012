"""One tenant's CareCloud upstream behind the ``Upstream`` port: the read side.

Which surface serves which entity (``upstream/carecloud.md``; DESIGN §3):

- **v2** (practice management): providers, locations, resources, visit reasons and availability,
  patients (demographics, embedded coverages, balances), coverages, balances, appointments and
  documents. v2 has no patient list, so patients are enumerated from the portal's list (which
  also filters by ``updatedSince``) and each is found in v2 by chart number.
- **portal** (charts and RCM): encounters (the detail, with note, codes, vitals and addenda),
  problems, medications, allergies, labs, immunizations, charges (the RCM ledger carries the
  service date, codes, responsible party and billed flag that the v2 ledger lacks), claims (the
  detail, with lines and the 277 history), payments, remittances (from the ERAs) and statements.
- **Connector FHIR**: the portal carries every clinical list the port asks for, so FHIR is used
  only where the portal lacks something: the Connector's logical patient id, for the crosswalk,
  and its Bulk ``$export`` with ``_since``, which names the encounters changed since the last
  export without a read per patient (``reads_bulk``).

Every payload passes ``drift.check``/``check_list`` into the tenant's one :class:`DriftReport`
before it is mapped; every mapping's ``dropped`` paths are counted per endpoint. The ids it
learns (one person's ids on every surface, the GUIDs and integer ids writes name) go to the
tenant's crosswalk (``identity.py``), shared by every process. Logging names endpoint templates,
counts, pages and latencies, never a value of a payload (payloads are PHI).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from carebridge.connectors.carecloud import writes
from carebridge.connectors.carecloud.base import FHIR_PAGE_SIZE, PORTAL_PAGE_SIZE, _Fetch
from carebridge.connectors.carecloud.identity import PersonIds
from carebridge.connectors.carecloud.reads_billing import BillingReads
from carebridge.connectors.carecloud.reads_bulk import BulkReads
from carebridge.connectors.carecloud.reads_patients import PatientReads
from carebridge.connectors.carecloud.reads_practice import AVAILABILITY_DAYS, PracticeReads
from carebridge.connectors.carecloud.reads_schedule import ScheduleReads
from carebridge.domain import (
    Appointment,
    Charge,
    Claim,
    EligibilityCheck,
    EligibilityRequest,
    Encounter,
)
from carebridge.domain.values import AppointmentId, EncounterId, PatientId
from carebridge.ports.upstream import (
    NewAppointment,
    NewCharge,
    NewClaim,
    NewEncounter,
    WriteResult,
)


class CareCloudTenant(PracticeReads, PatientReads, ScheduleReads, BulkReads, BillingReads):
    """A tenant's CareCloud practice, read through v2, the portal and the Connector.

    Args:
        connection: the tenant's surface clients (``surfaces.connect``).
        tenant: carebridge's tenant id (entity ids derive from it).
        v2_base: the v2 API root (``https://api.carecloud.com``), without ``/v2``.
        portal_api: the portal API root (``.../portal/api``).
        fhir_base: the practice's Connector FHIR base, if configured.
        clock: the current instant (aware UTC).
        crosswalk: the tenant's crosswalk (``ports.crosswalk``; the store's in a deployment).
            Without one, a crosswalk in this process's memory.

    The class composes the families: ``base`` (plumbing), ``identity`` (the crosswalk),
    ``reads_practice``, ``reads_patients``, ``reads_schedule``, ``reads_charts``,
    ``reads_billing``; the writes themselves are ``scheduling``, ``charts``, ``billing`` and
    ``eligibility`` (through ``writes``).
    """

    # --- writes (``writes.py``: each confirmed by a read-back) -------------------------------

    async def check_eligibility(
        self, patient_id: PatientId, request: EligibilityRequest
    ) -> EligibilityCheck:
        await self._v2_ref(patient_id)  # the writes' index needs the patient's v2 id
        return (await writes.check_eligibility(self._writes, patient_id, request)).value

    async def _prime(
        self,
        patient_id: PatientId | None,
        *,
        practice: Iterable[tuple[str, str | None]] = (),
    ) -> None:
        """Fill the writes' id index with what a command names: the patient's upstream ids,
        and the practice's (kind, id) pairs, from the crosswalk; the practice's lists are read
        upstream (once per connection) only when the crosswalk lacks one of them."""
        if patient_id is not None:
            await self._v2_ref(patient_id)
        index = self._writes.index
        tables: dict[str, dict[Any, int]] = {
            "provider": index.providers,
            "location": index.locations,
            "resource": index.resources,
            "visit_reason": index.visit_reasons,
        }
        complete = True
        for kind, entity_id in practice:
            if entity_id is not None:
                complete &= await self._prime_ids(kind, "v2", tables[kind], (entity_id,))
        if not complete and not self._practice_indexed:
            await writes.index_practice(self._writes)
            self._practice_indexed = True
            for kind, table in tables.items():
                for entity_id, upstream in table.items():
                    self._learn(kind, "v2", upstream, entity_id)
            await self._flush()

    async def _made(self, kind: str, surface: str, table: Mapping[Any, object], made: str) -> None:
        """Remember the upstream id of what a write made (the read-back put it in the index)."""
        upstream = table.get(made)
        if upstream is not None:
            self._learn(kind, surface, upstream, made)
            await self._flush()

    async def create_appointment(self, command: NewAppointment) -> WriteResult[Appointment]:
        await self._prime(command.patient_id, practice=_booking_ids(command))
        result = await writes.create_appointment(self._writes, command)
        await self._made("appointment", "v2", self._writes.index.appointments, result.value.id)
        return result

    async def cancel_appointment(
        self, appointment_id: AppointmentId, *, reason_code: str | None, comments: str = ""
    ) -> WriteResult[Appointment]:
        await self._prime_records(appointment=appointment_id)
        return await writes.cancel_appointment(
            self._writes, appointment_id, reason_code=reason_code, comments=comments
        )

    async def reschedule_appointment(
        self, appointment_id: AppointmentId, command: NewAppointment
    ) -> WriteResult[Appointment]:
        await self._prime(command.patient_id, practice=_booking_ids(command))
        await self._prime_records(appointment=appointment_id)
        result = await writes.reschedule_appointment(self._writes, appointment_id, command)
        await self._made("appointment", "v2", self._writes.index.appointments, result.value.id)
        return result

    async def check_in(self, appointment_id: AppointmentId) -> WriteResult[Appointment]:
        await self._prime_records(appointment=appointment_id)
        return await writes.check_in(self._writes, appointment_id)

    async def check_out(self, appointment_id: AppointmentId) -> WriteResult[Appointment]:
        await self._prime_records(appointment=appointment_id)
        return await writes.check_out(self._writes, appointment_id)

    async def push_encounter(self, command: NewEncounter) -> WriteResult[Encounter]:
        await self._prime(
            command.patient_id,
            practice=(("provider", command.provider_id), ("location", command.location_id)),
        )
        result = await writes.push_encounter(self._writes, command)
        await self._made("encounter", "portal", self._writes.index.encounters, result.value.id)
        return result

    async def add_addendum(self, encounter_id: EncounterId, text: str) -> WriteResult[Encounter]:
        await self._prime_records(encounter=encounter_id)
        return await writes.add_addendum(self._writes, encounter_id, text)

    async def sign_encounter(self, encounter_id: EncounterId) -> WriteResult[Encounter]:
        await self._prime_records(encounter=encounter_id)
        return await writes.sign_encounter(self._writes, encounter_id)

    async def create_charge(self, command: NewCharge) -> WriteResult[Charge]:
        await self._prime(
            command.patient_id,
            practice=(("provider", command.provider_id), ("location", command.location_id)),
        )
        await self._prime_records(encounter=command.encounter_id)
        result = await writes.create_charge(self._writes, command)
        await self._made("charge", "portal", self._writes.index.charges, result.value.id)
        return result

    async def submit_claim(self, command: NewClaim) -> WriteResult[Claim]:
        await self._prime(command.patient_id)
        await self._prime_records(charges=command.charge_ids)
        return await writes.submit_claim(self._writes, command)

    # --- health -----------------------------------------------------------------------------

    def dropped_report(self) -> dict[str, dict[str, int]]:
        """Per endpoint, the upstream fields the mappings did not carry, with counts."""
        return {endpoint: dict(paths) for endpoint, paths in sorted(self.dropped.items())}

    def health(self) -> dict[str, Any]:
        """Throttle budget, drift and dropped-field reports, and broker states (no secrets)."""
        budget = self.connection.throttle.budget()
        brokers = {}
        for client in (self.connection.v2, self.connection.portal, self.connection.fhir):
            if client is not None:
                state = client.broker.state()
                brokers[state.surface] = {
                    "has_credential": state.has_credential,
                    "expires_at": state.expires_at.isoformat() if state.expires_at else None,
                    "renewals": state.renewals,
                    "last_error": state.last_error,
                    "sent": client.sent,
                }
        return {
            "throttle": {
                "rate": budget.rate,
                "concurrency": budget.concurrency,
                "in_flight": budget.in_flight,
                "tokens": budget.tokens,
            },
            "drift": self.drift.as_dict(),
            "dropped": self.dropped_report(),
            "brokers": brokers,
        }


def _booking_ids(command: NewAppointment) -> tuple[tuple[str, str | None], ...]:
    """The practice's ids a booking names, by kind."""
    return (
        ("provider", command.provider_id),
        ("location", command.location_id),
        ("resource", command.resource_id),
        ("visit_reason", command.visit_reason_id),
    )


__all__ = [
    "AVAILABILITY_DAYS",
    "FHIR_PAGE_SIZE",
    "PORTAL_PAGE_SIZE",
    "CareCloudTenant",
    "PersonIds",
    "_Fetch",
]
