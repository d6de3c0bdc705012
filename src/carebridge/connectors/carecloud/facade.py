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
  only where the portal lacks something: the Connector's logical patient id, for the crosswalk.

Every payload passes ``drift.check``/``check_list`` into the tenant's one :class:`DriftReport`
before it is mapped; every mapping's ``dropped`` paths are counted per endpoint. Ids of one
person on every surface are kept in an in-memory crosswalk. Logging names endpoint templates,
counts, pages and latencies, never a value of a payload (payloads are PHI).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from carebridge.connectors.carecloud import drift, writes
from carebridge.connectors.carecloud.client import SurfaceClient
from carebridge.connectors.carecloud.drift import DriftReport
from carebridge.connectors.carecloud.mapping import fhir as fmap
from carebridge.connectors.carecloud.mapping import portal as pmap
from carebridge.connectors.carecloud.mapping import v2 as vmap
from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.surfaces import Connection
from carebridge.connectors.carecloud.wire import fhir as fw
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.connectors.carecloud.writes import WriteContext
from carebridge.domain import (
    Allergy,
    Appointment,
    Balance,
    Charge,
    Claim,
    Coverage,
    Document,
    EligibilityCheck,
    EligibilityRequest,
    Encounter,
    Immunization,
    LabResult,
    Location,
    Medication,
    Patient,
    Payment,
    Problem,
    Provider,
    Remittance,
    Resource,
    Slot,
    Statement,
    VisitReason,
)
from carebridge.domain.provenance import Surface
from carebridge.domain.values import (
    AppointmentId,
    EncounterId,
    LocationId,
    PatientId,
    ProviderId,
    ResourceId,
    VisitReasonId,
)
from carebridge.domain.vocab import AppointmentStatus
from carebridge.errors import ConfigError, UpstreamStatusError
from carebridge.ports.upstream import (
    NewAppointment,
    NewCharge,
    NewClaim,
    NewEncounter,
    WriteResult,
)

log = logging.getLogger("carebridge.connector")

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

PORTAL_PAGE_SIZE = 100
FHIR_PAGE_SIZE = 100
AVAILABILITY_DAYS = (7, 28)
"""Windows searched for a visit reason's usual duration (v2 lists name none)."""


@dataclass
class PersonIds:
    """One person's ids on every surface."""

    patient_id: PatientId
    chart_number: str
    v2_id: str | None = None
    rcm_account_number: str | None = None
    fhir_id: str | None = None


class _Fetch:
    """Times one endpoint's fetch and logs it without PHI."""

    def __init__(self, surface: str, endpoint: str) -> None:
        self.surface = surface
        self.endpoint = endpoint
        self.pages = 0
        self.count = 0
        self.started = time.monotonic()

    def page(self, items: int) -> None:
        self.pages += 1
        self.count += items

    def done(self) -> None:
        log.debug(
            "fetched %s %s: %d records, %d pages, %.1f ms",
            self.surface,
            self.endpoint,
            self.count,
            self.pages,
            (time.monotonic() - self.started) * 1000,
            extra={
                "surface": self.surface,
                "endpoint": self.endpoint,
                "records": self.count,
                "pages": self.pages,
            },
        )


class CareCloudTenant:
    """A tenant's CareCloud practice, read through v2, the portal and the Connector.

    Args:
        connection: the tenant's surface clients (``surfaces.connect``).
        tenant: carebridge's tenant id (entity ids derive from it).
        v2_base: the v2 API root (``https://api.carecloud.com``), without ``/v2``.
        portal_api: the portal API root (``.../portal/api``).
        fhir_base: the practice's Connector FHIR base, if configured.
        clock: the current instant (aware UTC).
    """

    def __init__(
        self,
        connection: Connection,
        *,
        tenant: str,
        v2_base: str,
        portal_api: str,
        fhir_base: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.connection = connection
        self.tenant = tenant
        self.v2_base = v2_base.rstrip("/")
        self.portal_api = portal_api.rstrip("/")
        self.fhir_base = fhir_base.rstrip("/") if fhir_base else None
        self.clock = clock
        self.drift = DriftReport(clock=clock)
        self.dropped: dict[str, Counter[str]] = {}
        self._people: dict[PatientId, PersonIds] = {}
        self._appointments: dict[AppointmentId, str] = {}
        self._locations: dict[LocationId, int] = {}
        self._resources: dict[ResourceId, int] = {}
        self._visit_reasons: dict[VisitReasonId, int] = {}
        self._default_providers: dict[int, int] = {}
        self._cancellation_reasons: dict[int, vw.CancellationReasonPayload] | None = None
        self._fhir_scanned = False
        self._practice_indexed = False
        self._writes = WriteContext(
            conn=connection,
            tenant=tenant,
            v2_url=f"{self.v2_base}/v2",
            portal_url=self.portal_api,
            drift=self.drift,
            clock=clock,
        )
        """The writes' context: it shares the drift report, and reads fill its id index."""

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def _v2(self) -> SurfaceClient[Any]:
        if self.connection.v2 is None:
            raise ConfigError("the v2 surface is not configured for this tenant")
        return self.connection.v2

    @property
    def _portal(self) -> SurfaceClient[Any]:
        if self.connection.portal is None:
            raise ConfigError("the portal surface is not configured for this tenant")
        return self.connection.portal

    def _ctx(self, surface: Surface, endpoint: str) -> Context:
        return Context(
            tenant=self.tenant, surface=surface, endpoint=endpoint, fetched_at=self.clock()
        )

    def _keep(self, endpoint: str, mapped: Mapped[T]) -> T:
        if mapped.dropped:
            self.dropped.setdefault(endpoint, Counter()).update(mapped.dropped)
        return mapped.value

    async def _v2_get(self, endpoint: str, path: str, params: dict[str, Any] | None = None) -> Any:
        fetch = _Fetch("v2", endpoint)
        response = await self._v2.request(
            "GET", f"{self.v2_base}{path}", params=params, endpoint=endpoint
        )
        body = response.json()
        fetch.page(len(body) if isinstance(body, list) else 1)
        fetch.done()
        return body

    async def _v2_list(
        self, endpoint: str, path: str, model: type[M], params: dict[str, Any] | None = None
    ) -> list[M]:
        """Every item of a paged v2 array, each page checked for drift."""
        fetch = _Fetch("v2", endpoint)
        items: list[M] = []
        async for response in self._v2.v2_pages(f"{self.v2_base}{path}", params):
            page = drift.check_list(response.json(), model, endpoint, self.drift)
            fetch.page(len(page))
            items.extend(page)
        fetch.done()
        return items

    async def _portal_get(self, endpoint: str, path: str, model: type[M]) -> M:
        fetch = _Fetch("portal", endpoint)
        response = await self._portal.request("GET", f"{self.portal_api}{path}", endpoint=endpoint)
        item = drift.check(response.json(), model, endpoint, self.drift)
        fetch.page(1)
        fetch.done()
        return item

    async def _portal_list(
        self, endpoint: str, path: str, model: type[M], params: dict[str, Any] | None = None
    ) -> list[M]:
        """Every item of a paged portal list, each page checked against ``Page[model]``."""
        fetch = _Fetch("portal", endpoint)
        page_model: type[pw.Page[Any]] = pw.Page[model]  # type: ignore[valid-type]
        items: list[M] = []
        async for body in self._portal.portal_pages(
            f"{self.portal_api}{path}", {"pageSize": PORTAL_PAGE_SIZE, **(params or {})}
        ):
            page = drift.check(body, page_model, endpoint, self.drift)
            fetch.page(len(page.items))
            items.extend(page.items)
        fetch.done()
        return items

    # --- the crosswalk ----------------------------------------------------------------------

    def _person(self, chart_number: str) -> PersonIds:
        pid = vmap.patient_id(self._ctx("v2", "crosswalk"), chart_number)
        person = self._people.get(pid)
        if person is None:
            person = self._people[pid] = PersonIds(pid, chart_number.strip())
        return person

    def _link(self, chart_number: str, v2_id: str) -> None:
        """Record a person's v2 GUID (here and in the writes' id index)."""
        self._person(chart_number).v2_id = v2_id
        self._writes.index.add_patient(self._ctx("v2", "crosswalk"), v2_id, chart_number)

    def crosswalk(self) -> dict[PatientId, PersonIds]:
        """Every person read so far: ``pat_`` id -> v2 GUID, chart and RCM account numbers,
        FHIR logical id (a copy)."""
        return {k: PersonIds(**asdict(v)) for k, v in self._people.items()}

    async def _known(self, patient_id: PatientId) -> PersonIds:
        person = self._people.get(patient_id)
        if person is None:
            await self._scan_patients()
            person = self._people.get(patient_id)
        if person is None:
            raise UpstreamStatusError(
                "patient not found upstream", status=404, endpoint="GET /portal/api/patients"
            )
        return person

    async def _v2_ref(self, patient_id: PatientId) -> vmap.PatientRef:
        person = await self._known(patient_id)
        if person.v2_id is None:
            self._link(person.chart_number, await self._find_v2_id(person.chart_number))
        assert person.v2_id is not None  # noqa: S101 - _link set it
        return vmap.PatientRef(person.v2_id, person.chart_number)

    async def _find_v2_id(self, chart_number: str) -> str:
        endpoint = "POST /v2/patients/search"
        fetch = _Fetch("v2", endpoint)
        response = await self._v2.request(
            "POST",
            f"{self.v2_base}/v2/patients/search",
            json={"terms": [chart_number]},
            idempotent=True,
            endpoint=endpoint,
        )
        hits = drift.check(response.json(), vw.PatientSearchResponse, endpoint, self.drift)
        fetch.page(len(hits.patients))
        fetch.done()
        for hit in hits.patients:
            if hit.chart_number.strip().lower() == chart_number.strip().lower():
                return hit.id
        raise UpstreamStatusError("patient not found in v2", status=404, endpoint=endpoint)

    async def _scan_fhir(self) -> None:
        """Fill the crosswalk's FHIR logical ids from the Connector's Patient search."""
        if self.fhir_base is None or self.connection.fhir is None or self._fhir_scanned:
            return
        endpoint = "GET /Patient"
        fetch = _Fetch("fhir", endpoint)
        async for bundle in self.connection.fhir.fhir_pages(
            f"{self.fhir_base}/Patient", {"_count": FHIR_PAGE_SIZE}
        ):
            checked = drift.check(bundle, fw.Bundle, endpoint, self.drift)
            fetch.page(len(checked.entry))
            for entry in checked.entry:
                if entry.resource is None:
                    continue
                resource = drift.check(entry.resource, fw.Patient, endpoint, self.drift)
                chart = fmap.chart_number_of(resource)
                if chart and resource.id:
                    self._person(chart).fhir_id = resource.id
        fetch.done()
        self._fhir_scanned = True

    # --- practice ---------------------------------------------------------------------------

    async def providers(self) -> AsyncIterator[Provider]:
        endpoint = "GET /v2/providers"
        body = await self._v2_get(endpoint, "/v2/providers")
        ctx = self._ctx("v2", endpoint)
        for wire in drift.check(body, vw.ProvidersResponse, endpoint, self.drift).providers:
            yield self._keep(endpoint, vmap.map_provider(wire, ctx))

    async def locations(self) -> AsyncIterator[Location]:
        endpoint = "GET /v2/locations"
        body = await self._v2_get(endpoint, "/v2/locations")
        ctx = self._ctx("v2", endpoint)
        for wire in drift.check(body, vw.LocationsResponse, endpoint, self.drift).locations:
            location = self._keep(endpoint, vmap.map_location(wire, ctx))
            self._locations[location.id] = self._writes.index.locations[location.id] = wire.id
            yield location

    async def resources(self) -> AsyncIterator[Resource]:
        listed = "GET /v2/appointment_resources"
        shown = "GET /v2/appointment_resources/{id}"
        reasons = "GET /v2/appointment_resources/{id}/visit_reasons"
        body = await self._v2_get(listed, "/v2/appointment_resources")
        envelopes = drift.check_list(body, vw.ResourceEnvelope, listed, self.drift)
        ctx = self._ctx("v2", shown)
        for envelope in envelopes:
            rid = envelope.resource.id
            detail = drift.check(
                await self._v2_get(shown, f"/v2/appointment_resources/{rid}"),
                vw.ResourceDetailResponse,
                shown,
                self.drift,
            ).resource
            visit_reasons = drift.check_list(
                await self._v2_get(reasons, f"/v2/appointment_resources/{rid}/visit_reasons"),
                vw.VisitReasonPayload,
                reasons,
                self.drift,
            )
            resource = self._keep(
                shown, vmap.map_resource(detail, ctx, visit_reasons=visit_reasons)
            )
            self._resources[resource.id] = self._writes.index.resources[resource.id] = rid
            if detail.default_provider is not None and detail.default_provider.id is not None:
                self._default_providers[rid] = detail.default_provider.id
            yield resource

    async def visit_reasons(self) -> AsyncIterator[VisitReason]:
        endpoint = "GET /v2/visit_reasons"
        wires = drift.check_list(
            await self._v2_get(endpoint, "/v2/visit_reasons"),
            vw.VisitReasonPayload,
            endpoint,
            self.drift,
        )
        requestable = {
            w.id
            for w in drift.check_list(
                await self._v2_get(endpoint, "/v2/visit_reasons", {"request_types_only": "true"}),
                vw.VisitReasonPayload,
                endpoint,
                self.drift,
            )
        }
        ctx = self._ctx("v2", endpoint)
        for wire in wires:
            minutes = await self._usual_duration(wire.id)
            if minutes is None:
                log.warning(
                    "visit reason without a bookable slot: its duration is unknown",
                    extra={"endpoint": endpoint},
                )
                continue
            reason = self._keep(
                endpoint,
                vmap.map_visit_reason(
                    wire, ctx, duration_minutes=minutes, bookable_by_request=wire.id in requestable
                ),
            )
            self._visit_reasons[reason.id] = wire.id
            self._writes.index.visit_reasons[reason.id] = wire.id
            yield reason

    async def _usual_duration(self, reason: int) -> int | None:
        today = self.clock().date()
        for days in AVAILABILITY_DAYS:
            groups = await self._availability(
                reason, today + timedelta(days=1), today + timedelta(days=days)
            )
            minutes = vmap.usual_duration(groups)
            if minutes is not None:
                return minutes
        return None

    async def _availability(
        self,
        reason: int,
        start: date,
        end: date,
        location_ids: Sequence[int] = (),
        resource_ids: Sequence[int] = (),
    ) -> list[vw.AvailabilityGroupPayload]:
        endpoint = "GET /v2/appointment_availability"
        params: dict[str, Any] = {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "visit_reason_id": str(reason),
        }
        if location_ids:
            params["location_ids"] = ",".join(str(i) for i in location_ids)
        if resource_ids:
            params["resource_ids"] = ",".join(str(i) for i in resource_ids)
        body = await self._v2_get(endpoint, "/v2/appointment_availability", params)
        return drift.check_list(body, vw.AvailabilityGroupPayload, endpoint, self.drift)

    async def _fill_practice(self, need: Iterable[dict[Any, int]]) -> None:
        """Read the lists whose reverse maps (domain id -> upstream id) are still empty."""
        wanted = list(need)
        if any(m is self._locations and not m for m in wanted):
            async for _ in self.locations():
                pass
        if any(m is self._resources and not m for m in wanted):
            async for _r in self.resources():
                pass
        if any(m is self._visit_reasons and not m for m in wanted):
            async for _v in self.visit_reasons():
                pass

    async def availability(
        self,
        visit_reason_id: VisitReasonId,
        start: date,
        end: date,
        *,
        location_ids: tuple[LocationId, ...] = (),
        resource_ids: tuple[ResourceId, ...] = (),
    ) -> list[Slot]:
        await self._fill_practice(
            [
                self._visit_reasons,
                *([self._locations] if location_ids else []),
                self._resources,
            ]
        )
        reason = self._visit_reasons.get(visit_reason_id)
        if reason is None:
            raise UpstreamStatusError(
                "visit reason not found upstream", status=404, endpoint="GET /v2/visit_reasons"
            )
        locs = [self._locations[i] for i in location_ids if i in self._locations]
        ress = [self._resources[i] for i in resource_ids if i in self._resources]
        if (location_ids and not locs) or (resource_ids and not ress):
            return []
        groups = await self._availability(reason, start, end, locs, ress)
        endpoint = "GET /v2/appointment_availability"
        ctx = self._ctx("v2", endpoint)
        slots: list[Slot] = []
        for group in groups:
            mapped = vmap.map_slots(group, ctx, default_providers=self._default_providers)
            found: tuple[Slot, ...] = self._keep(endpoint, mapped)
            slots.extend(found)
        if location_ids:
            slots = [s for s in slots if s.location_id in location_ids]
        if resource_ids:
            slots = [s for s in slots if s.resource_id in resource_ids]
        return sorted(slots, key=lambda s: (s.start, str(s.resource_id)))

    # --- patients ---------------------------------------------------------------------------

    async def patients(self, *, updated_since: datetime | None = None) -> AsyncIterator[Patient]:
        """Every patient (updated after ``updated_since``), enumerated from the portal's list and
        read from v2 (demographics, coverages and balances)."""
        await self._scan_fhir()
        params = {"updatedSince": updated_since.isoformat()} if updated_since else None
        items = await self._portal_list(
            "GET /portal/api/patients", "/patients", pw.PatientItemPayload, params
        )
        for item in items:
            person = self._person(item.chart_number)
            person.rcm_account_number = item.rcm_account_number or person.rcm_account_number
        for item in items:
            yield await self.patient(self._person(item.chart_number).patient_id)

    async def patient(self, patient_id: PatientId) -> Patient:
        ref = await self._v2_ref(patient_id)
        shown = "GET /v2/patients/{id}"
        balance = "GET /v2/patients/{id}/balance"
        wire = drift.check(
            await self._v2_get(shown, f"/v2/patients/{ref.v2_id}"),
            vw.PatientShowResponse,
            shown,
            self.drift,
        ).patient
        balances = drift.check_list(
            await self._v2_get(balance, f"/v2/patients/{ref.v2_id}/balance"),
            vw.BalancePayload,
            balance,
            self.drift,
        )
        return self._keep(shown, vmap.map_patient(wire, self._ctx("v2", shown), balances=balances))

    async def coverages(self, patient_id: PatientId) -> list[Coverage]:
        ref = await self._v2_ref(patient_id)
        endpoint = "GET /v2/patients/{id}/insurances"
        profiles = drift.check(
            await self._v2_get(endpoint, f"/v2/patients/{ref.v2_id}/insurances"),
            vw.InsurancesResponse,
            endpoint,
            self.drift,
        ).insurance_profiles
        mapped = vmap.map_coverages(profiles, self._ctx("v2", endpoint), patient=ref)
        coverages: tuple[Coverage, ...] = self._keep(endpoint, mapped)
        return list(coverages)

    async def balance(self, patient_id: PatientId) -> list[Balance]:
        ref = await self._v2_ref(patient_id)
        endpoint = "GET /v2/patients/{id}/balance"
        rows = drift.check_list(
            await self._v2_get(endpoint, f"/v2/patients/{ref.v2_id}/balance"),
            vw.BalancePayload,
            endpoint,
            self.drift,
        )
        ctx = self._ctx("v2", endpoint)
        return [self._keep(endpoint, vmap.map_balance(b, ctx, patient=ref)) for b in rows]

    # --- schedule ---------------------------------------------------------------------------

    async def _reasons(self) -> dict[int, vw.CancellationReasonPayload]:
        if self._cancellation_reasons is None:
            endpoint = "GET /v2/appointment_cancellation_reasons"
            envelopes = drift.check_list(
                await self._v2_get(endpoint, "/v2/appointment_cancellation_reasons"),
                vw.CancellationReasonEnvelope,
                endpoint,
                self.drift,
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
        for envelope in envelopes:
            wire = envelope.appointment
            a = self._keep(endpoint, vmap.map_appointment(wire, ctx, cancellation_reasons=reasons))
            self._appointments[a.id] = self._writes.index.appointments[a.id] = wire.id
            self._link(wire.patient.chart_number, wire.patient.id)
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
        by ``appointments`` first: v2 ids are GUIDs that a ``apt_`` id does not reveal)."""
        guid = self._appointments.get(appointment_id)
        endpoint = "GET /v2/appointments/{id}"
        if guid is None:
            raise UpstreamStatusError(
                "appointment not in the crosswalk", status=404, endpoint=endpoint
            )
        confirmations_endpoint = "GET /v2/appointments/{id}/confirmations"
        wire = drift.check(
            await self._v2_get(endpoint, f"/v2/appointments/{guid}"),
            vw.AppointmentDetailResponse,
            endpoint,
            self.drift,
        ).appointment
        confirmations = [
            e.appointment_confirmation
            for e in drift.check_list(
                await self._v2_get(
                    confirmations_endpoint, f"/v2/appointments/{guid}/confirmations"
                ),
                vw.ConfirmationEnvelope,
                confirmations_endpoint,
                self.drift,
            )
        ]
        mapped = vmap.map_appointment(
            wire,
            self._ctx("v2", endpoint),
            confirmations=confirmations,
            cancellation_reasons=await self._reasons(),
        )
        return self._keep(endpoint, mapped)

    # --- charts -----------------------------------------------------------------------------

    async def _charts(self, patient_id: PatientId | None) -> list[str]:
        if patient_id is not None:
            return [(await self._known(patient_id)).chart_number]
        return await self._scan_patients()

    async def _scan_patients(self) -> list[str]:
        """Every chart number, from the portal's patient list (one paged read), crosswalked."""
        items = await self._portal_list(
            "GET /portal/api/patients", "/patients", pw.PatientItemPayload
        )
        for item in items:
            person = self._person(item.chart_number)
            person.rcm_account_number = item.rcm_account_number or person.rcm_account_number
        return [i.chart_number for i in items]

    async def encounters(
        self, *, patient_id: PatientId | None = None, updated_since: datetime | None = None
    ) -> AsyncIterator[Encounter]:
        """Encounters from the portal: each one's detail (note, codes, vitals, addenda)."""
        listed = "GET /portal/api/patients/{chartNumber}/encounters"
        shown = "GET /portal/api/encounters/{id}"
        params = {"updatedSince": updated_since.isoformat()} if updated_since else None
        for chart in await self._charts(patient_id):
            items = await self._portal_list(
                listed, f"/patients/{chart}/encounters", pw.EncounterItemPayload, params
            )
            for item in items:
                detail = await self._portal_get(
                    shown, f"/encounters/{item.id}", pw.EncounterDetailPayload
                )
                encounter = self._keep(
                    shown, pmap.encounter_from_portal(detail, self._ctx("portal", shown))
                )
                self._writes.index.encounters[encounter.id] = item.id  # for sign_encounter
                yield encounter

    async def _chart_list(
        self,
        patient_id: PatientId,
        path: str,
        model: type[M],
        mapper: Callable[..., Mapped[T]],
    ) -> AsyncIterator[T]:
        endpoint = f"GET /portal/api/patients/{{chartNumber}}/{path}"
        chart = (await self._known(patient_id)).chart_number
        items = await self._portal_list(endpoint, f"/patients/{chart}/{path}", model)
        ctx = self._ctx("portal", endpoint)
        for item in items:
            yield self._keep(endpoint, mapper(item, ctx, chart_number=chart))

    def problems(self, patient_id: PatientId) -> AsyncIterator[Problem]:
        return self._chart_list(patient_id, "problems", pw.ProblemPayload, pmap.problem_from_portal)

    def medications(self, patient_id: PatientId) -> AsyncIterator[Medication]:
        return self._chart_list(
            patient_id, "medications", pw.MedicationPayload, pmap.medication_from_portal
        )

    def allergies(self, patient_id: PatientId) -> AsyncIterator[Allergy]:
        return self._chart_list(
            patient_id, "allergies", pw.AllergyPayload, pmap.allergy_from_portal
        )

    def labs(self, patient_id: PatientId) -> AsyncIterator[LabResult]:
        return self._chart_list(patient_id, "labs", pw.LabPayload, pmap.lab_from_portal)

    def immunizations(self, patient_id: PatientId) -> AsyncIterator[Immunization]:
        return self._chart_list(
            patient_id, "immunizations", pw.ImmunizationPayload, pmap.immunization_from_portal
        )

    async def documents(self, patient_id: PatientId) -> AsyncIterator[Document]:
        """A patient's clinical documents (metadata) from v2."""
        ref = await self._v2_ref(patient_id)
        endpoint = "GET /v2/documents"
        fetch = _Fetch("v2", endpoint)
        ctx = self._ctx("v2", endpoint)
        async for response in self._v2.v2_pages(
            f"{self.v2_base}/v2/documents", {"patient_id": ref.v2_id}
        ):
            docs = drift.check(response.json(), vw.DocumentsResponse, endpoint, self.drift)
            fetch.page(len(docs.documents))
            for wire in docs.documents:
                yield self._keep(endpoint, vmap.map_document(wire, ctx, patient=ref))
        fetch.done()

    # --- revenue cycle ----------------------------------------------------------------------

    async def charges(self, *, patient_id: PatientId | None = None) -> AsyncIterator[Charge]:
        """Ledger charges from the portal's RCM ledger."""
        endpoint = "GET /portal/api/charges"
        params = {"patient": (await self._known(patient_id)).chart_number} if patient_id else None
        items = await self._portal_list(endpoint, "/charges", pw.ChargePayload, params)
        ctx = self._ctx("portal", endpoint)
        for item in items:
            charge = self._keep(endpoint, pmap.charge_from_portal(item, ctx))
            self._writes.index.charges[charge.id] = item.id  # for submit_claim
            yield charge

    async def claims(
        self, *, status: str | None = None, updated_since: datetime | None = None
    ) -> AsyncIterator[Claim]:
        """Claims from the portal, each one's detail (lines, attachments, 277 history)."""
        listed = "GET /portal/api/claims"
        shown = "GET /portal/api/claims/{claimNumber}"
        params: dict[str, Any] = {}
        if status:
            params["status"] = status
        if updated_since:
            params["updatedSince"] = updated_since.isoformat()
        items = await self._portal_list(listed, "/claims", pw.ClaimItemPayload, params)
        for item in items:
            detail = await self._portal_get(
                shown, f"/claims/{item.claim_number}", pw.ClaimDetailPayload
            )
            if detail.patient.rcm_account_number:
                self._person(
                    detail.patient.chart_number
                ).rcm_account_number = detail.patient.rcm_account_number
            yield self._keep(shown, pmap.claim_from_portal(detail, self._ctx("portal", shown)))

    async def payments(self, *, updated_since: datetime | None = None) -> AsyncIterator[Payment]:
        endpoint = "GET /portal/api/payments"
        params = {"updatedSince": updated_since.isoformat()} if updated_since else None
        items = await self._portal_list(endpoint, "/payments", pw.PaymentPayload, params)
        ctx = self._ctx("portal", endpoint)
        for item in items:
            yield self._keep(endpoint, pmap.payment_from_portal(item, ctx))

    async def remittances(
        self, *, updated_since: datetime | None = None
    ) -> AsyncIterator[Remittance]:
        """Remittances from the ERAs (835s) the portal lists among payments."""
        listed = "GET /portal/api/payments"
        shown = "GET /portal/api/eras/{id}"
        params: dict[str, Any] = {"kind": "era"}
        if updated_since:
            params["updatedSince"] = updated_since.isoformat()
        items = await self._portal_list(listed, "/payments", pw.PaymentPayload, params)
        for item in items:
            era = await self._portal_get(shown, f"/eras/{item.id}", pw.EraPayload)
            for mapped in pmap.remittances_from_era(era, self._ctx("portal", shown)):
                yield self._keep(shown, mapped)

    async def statements(
        self, *, updated_since: datetime | None = None
    ) -> AsyncIterator[Statement]:
        endpoint = "GET /portal/api/statements"
        params = {"updatedSince": updated_since.isoformat()} if updated_since else None
        items = await self._portal_list(endpoint, "/statements", pw.StatementPayload, params)
        ctx = self._ctx("portal", endpoint)
        for item in items:
            yield self._keep(endpoint, pmap.statement_from_portal(item, ctx))

    # --- writes (``writes.py``: each confirmed by a read-back) -------------------------------

    async def check_eligibility(
        self, patient_id: PatientId, request: EligibilityRequest
    ) -> EligibilityCheck:
        await self._v2_ref(patient_id)  # the writes' index needs the patient's v2 id
        return (await writes.check_eligibility(self._writes, patient_id, request)).value

    async def _prime(self, patient_id: PatientId | None, *, practice: bool = False) -> None:
        """Fill the writes' id index with what a command names: the patient's upstream ids,
        and the practice's lists (once per connection)."""
        if patient_id is not None:
            await self._v2_ref(patient_id)
        if practice and not self._practice_indexed:
            await writes.index_practice(self._writes)
            self._practice_indexed = True

    async def create_appointment(self, command: NewAppointment) -> WriteResult[Appointment]:
        await self._prime(command.patient_id, practice=True)
        return await writes.create_appointment(self._writes, command)

    async def cancel_appointment(
        self, appointment_id: AppointmentId, *, reason_code: str | None, comments: str = ""
    ) -> WriteResult[Appointment]:
        return await writes.cancel_appointment(
            self._writes, appointment_id, reason_code=reason_code, comments=comments
        )

    async def reschedule_appointment(
        self, appointment_id: AppointmentId, command: NewAppointment
    ) -> WriteResult[Appointment]:
        await self._prime(command.patient_id, practice=True)
        return await writes.reschedule_appointment(self._writes, appointment_id, command)

    async def check_in(self, appointment_id: AppointmentId) -> WriteResult[Appointment]:
        return await writes.check_in(self._writes, appointment_id)

    async def check_out(self, appointment_id: AppointmentId) -> WriteResult[Appointment]:
        return await writes.check_out(self._writes, appointment_id)

    async def push_encounter(self, command: NewEncounter) -> WriteResult[Encounter]:
        await self._prime(command.patient_id, practice=True)
        return await writes.push_encounter(self._writes, command)

    async def add_addendum(self, encounter_id: EncounterId, text: str) -> WriteResult[Encounter]:
        return await writes.add_addendum(self._writes, encounter_id, text)

    async def sign_encounter(self, encounter_id: EncounterId) -> WriteResult[Encounter]:
        return await writes.sign_encounter(self._writes, encounter_id)

    async def create_charge(self, command: NewCharge) -> WriteResult[Charge]:
        await self._prime(command.patient_id, practice=True)
        return await writes.create_charge(self._writes, command)

    async def submit_claim(self, command: NewClaim) -> WriteResult[Claim]:
        await self._prime(command.patient_id)
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
