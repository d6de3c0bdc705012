"""One person's ids on every surface, and the facade's lookups of upstream ids, through the
tenant's crosswalk (``ports.crosswalk``: the store's in a deployment, shared by every process).

carebridge ids derive from upstream ids, so a read maps a record without the crosswalk; what it
learns (a person's v2 GUID, chart and RCM account numbers and FHIR id; an appointment's GUID; the
integer ids of locations, resources, visit reasons, providers, encounters and charges) is
remembered, one batch per page of records. A lookup by carebridge id asks this process's cache,
then the crosswalk, then the upstream (a scan of the patient list, a v2 search), so a process
that never listed a record resolves its id as the one that did. The cache is only a cache: what
it holds was read from the upstream or the crosswalk, and every link it learns is remembered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TypeVar

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.base import (
    FHIR_SCAN_PAGE_SIZE,
    PORTAL_PAGE_SIZE,
    PersonIds,
    TenantBase,
    _Fetch,
)
from carebridge.connectors.carecloud.client import json_body
from carebridge.connectors.carecloud.mapping import fhir as fmap
from carebridge.connectors.carecloud.mapping import v2 as vmap
from carebridge.connectors.carecloud.wire import fhir as fw
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.domain.values import AppointmentId, ChargeId, EncounterId, PatientId
from carebridge.errors import UpstreamStatusError
from carebridge.ports.crosswalk import Link

K = TypeVar("K", bound=str)


class Identity(TenantBase):
    """The crosswalk: carebridge ids to upstream ids, and one person's ids on every surface."""

    # --- remembering ------------------------------------------------------------------------

    def _learn(self, kind: str, surface: str, upstream_id: object, entity_id: str) -> None:
        """Note a link for the crosswalk (sent by :meth:`_flush`, or when a page's worth is
        pending); a link this process already remembered is not sent again."""
        link = Link(kind, surface, str(upstream_id), str(entity_id))
        if link not in self._remembered:
            self._pending[(kind, surface, link.upstream_id)] = link

    async def _flush(self) -> None:
        """Remember every pending link in one batch. A cancellation (a listing whose caller
        stopped) waits for the batch's write to end before it goes on: a write cut short
        could leave its connection holding the store's write lock."""
        if not self._pending:
            return
        links = list(self._pending.values())
        self._pending.clear()
        write = asyncio.ensure_future(self.links.remember(self.tenant, links))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.gather(write, return_exceptions=True)
            raise
        self._remembered.update(links)

    async def remember_pending(self) -> None:
        """Remember the links a read left pending (a listing its caller stopped early)."""
        await self._flush()

    async def _flush_page(self) -> None:
        """Remember the pending links once a page's worth has gathered (long reads)."""
        if len(self._pending) >= PORTAL_PAGE_SIZE:
            await self._flush()

    # --- people -----------------------------------------------------------------------------

    def _person(
        self,
        chart_number: str,
        *,
        rcm_account: str | None = None,
        fhir_id: str | None = None,
    ) -> PersonIds:
        pid = vmap.patient_id(self._ctx("v2", "crosswalk"), chart_number)
        person = self._people.get(pid)
        if person is None:
            person = self._people[pid] = PersonIds(pid, chart_number.strip())
        self._learn("patient", "chart_number", person.chart_number, pid)
        if rcm_account:
            person.rcm_account_number = rcm_account
            self._learn("patient", "rcm_account", rcm_account, pid)
        if fhir_id:
            person.fhir_id = fhir_id
            self._learn("patient", "fhir", fhir_id, pid)
        return person

    def _link(self, chart_number: str, v2_id: str) -> None:
        """Record a person's v2 GUID (here, in the writes' id index and for the crosswalk)."""
        person = self._person(chart_number)
        person.v2_id = v2_id
        self._writes.index.add_patient(self._ctx("v2", "crosswalk"), v2_id, chart_number)
        self._learn("patient", "v2", v2_id, person.patient_id)

    def crosswalk(self) -> dict[PatientId, PersonIds]:
        """Every person this process has read or looked up: ``pat_`` id -> v2 GUID, chart and
        RCM account numbers, FHIR logical id (a copy)."""
        return {k: PersonIds(**asdict(v)) for k, v in self._people.items()}

    async def _recall(self, patient_id: PatientId) -> PersonIds | None:
        """A person's ids from the crosswalk (None when it holds no chart number)."""
        links = await self.links.links_of(self.tenant, "patient", [patient_id])
        by_surface: dict[str, str] = {}
        for link in links:  # ordered by upstream id: the smallest wins, as the store answers
            by_surface.setdefault(link.surface, link.upstream_id)
        chart = by_surface.get("chart_number")
        if chart is None:
            return None
        self._remembered.update(links)
        person = self._people[patient_id] = PersonIds(
            patient_id,
            chart,
            v2_id=by_surface.get("v2"),
            rcm_account_number=by_surface.get("rcm_account"),
            fhir_id=by_surface.get("fhir"),
        )
        if person.v2_id is not None:
            self._writes.index.add_patient(self._ctx("v2", "crosswalk"), person.v2_id, chart)
        return person

    async def _known(self, patient_id: PatientId) -> PersonIds:
        person = self._people.get(patient_id) or await self._recall(patient_id)
        if person is None:
            await self._scan_patients()
            person = self._people.get(patient_id)
        if person is None:
            raise UpstreamStatusError(
                "patient not found upstream", status=404, endpoint="GET /portal/api/patients"
            )
        return person

    async def _v2_ref(self, patient_id: PatientId, *, flush: bool = True) -> vmap.PatientRef:
        """The person's v2 GUID and chart number; a GUID found by a v2 search is remembered
        (at once, or with the page when ``flush`` is False)."""
        person = await self._known(patient_id)
        if person.v2_id is None:
            self._link(person.chart_number, await self._find_v2_id(person.chart_number))
            if flush:
                await self._flush()
            else:
                await self._flush_page()
        assert person.v2_id is not None  # noqa: S101 - _link set it
        return vmap.PatientRef(person.v2_id, person.chart_number)

    # --- records ----------------------------------------------------------------------------

    async def _appointment_guid(self, appointment_id: AppointmentId) -> str | None:
        """An appointment's v2 GUID: from this process's reads, else the crosswalk."""
        guid = self._appointments.get(appointment_id) or self._writes.index.appointments.get(
            appointment_id
        )
        if guid is None:
            guid = await self.links.upstream_id(self.tenant, "appointment", "v2", appointment_id)
            if guid is not None:
                self._remembered.add(Link("appointment", "v2", guid, appointment_id))
        if guid is not None:
            self._appointments[appointment_id] = self._writes.index.appointments[appointment_id] = (
                guid
            )
        return guid

    async def _prime_ids(
        self, kind: str, surface: str, table: dict[K, int], ids: tuple[K, ...]
    ) -> bool:
        """Fill ``table`` (an index of the writes) with the integer ids the crosswalk holds
        for ``ids``; True when none is missing after."""
        missing = [i for i in ids if i not in table]
        if missing:
            found = await self.links.upstream_ids(self.tenant, kind, surface, missing)
            for entity in missing:
                upstream = found.get(entity)
                if upstream is not None:
                    table[entity] = int(upstream)
                    self._remembered.add(Link(kind, surface, upstream, entity))
        return all(i in table for i in ids)

    async def _prime_records(
        self,
        *,
        appointment: AppointmentId | None = None,
        encounter: EncounterId | None = None,
        charges: tuple[ChargeId, ...] = (),
    ) -> None:
        """Fill the writes' index with the upstream ids of the records a command names (what
        the crosswalk does not hold stays missing: the write says the id is unknown)."""
        index = self._writes.index
        if appointment is not None:
            await self._appointment_guid(appointment)
        if encounter is not None:
            await self._prime_ids("encounter", "portal", index.encounters, (encounter,))
        if charges:
            await self._prime_ids("charge", "portal", index.charges, charges)

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
        hits = drift.check(json_body(response), vw.PatientSearchResponse, endpoint, self.drift)
        fetch.page(len(hits.patients))
        fetch.done()
        for hit in hits.patients:
            if hit.chart_number.strip().lower() == chart_number.strip().lower():
                return hit.id
        raise UpstreamStatusError("patient not found in v2", status=404, endpoint=endpoint)

    async def _fhir_ids(
        self, people: Sequence[PersonIds], *, updated_since: datetime | None = None
    ) -> None:
        """Give every listed person their Connector logical id: the crosswalk's (one lookup per
        500); for whoever it lacks, a scan of the Patient search, narrowed to what changed
        since ``updated_since`` when the listing is incremental, whole (at most once per
        process) when the narrowed one leaves someone out. A tenant without the Connector has
        none to learn."""
        if self.fhir_base is None or self.connection.fhir is None:
            return
        found = await self._crosswalk_ids([p for p in people if p.fhir_id is None], "fhir")
        for person, fhir_id in found:
            person.fhir_id = fhir_id
        if not any(p.fhir_id is None for p in people):
            return
        if updated_since is not None:
            await self._scan_fhir({"_lastUpdated": f"ge{updated_since.isoformat()}"})
            if not any(p.fhir_id is None for p in people):
                return
        if not self._fhir_scanned:
            await self._scan_fhir()
            self._fhir_scanned = True

    async def _crosswalk_ids(
        self, people: Sequence[PersonIds], surface: str
    ) -> list[tuple[PersonIds, str]]:
        """The ids the crosswalk holds for ``people`` on ``surface`` (one lookup per 500), each
        remembered as a link this process knows."""
        out: list[tuple[PersonIds, str]] = []
        for start in range(0, len(people), 500):
            chunk = people[start : start + 500]
            found = await self.links.upstream_ids(
                self.tenant, "patient", surface, [p.patient_id for p in chunk]
            )
            for person in chunk:
                upstream_id = found.get(person.patient_id)
                if upstream_id is not None:
                    self._remembered.add(Link("patient", surface, upstream_id, person.patient_id))
                    out.append((person, upstream_id))
        return out

    async def _scan_fhir(self, search: dict[str, str] | None = None) -> None:
        """Learn FHIR logical ids (by chart number) from the Connector's Patient search, in its
        largest pages: each page compared with a Bundle of Patients (drift in any element) and
        read for nothing but each resource's id and identifiers (the chart number)."""
        assert self.connection.fhir is not None  # noqa: S101 - _fhir_ids checked it
        endpoint = "GET /Patient"
        fetch = _Fetch("fhir", endpoint)
        async for bundle in self.connection.fhir.fhir_pages(
            f"{self.fhir_base}/Patient", {**(search or {}), "_count": FHIR_SCAN_PAGE_SIZE}
        ):
            checked = drift.check_as(
                bundle, fw.PatientBundle, fw.PatientKeysBundle, endpoint, self.drift
            )
            fetch.page(len(checked.entry))
            for entry in checked.entry:
                resource = entry.resource
                if resource is None:
                    continue
                chart = fmap.chart_number_of(resource)
                if chart and resource.id:
                    self._person(chart, fhir_id=resource.id)
        fetch.done()
        await self._flush()

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
            self._person(item.chart_number, rcm_account=item.rcm_account_number)
        await self._flush()
        return [i.chart_number for i in items]


__all__ = ["Identity", "PersonIds"]
