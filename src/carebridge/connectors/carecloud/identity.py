"""One person's ids on every surface, and the facade's lookups of upstream ids."""

from __future__ import annotations

from dataclasses import asdict

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.base import FHIR_PAGE_SIZE, PersonIds, TenantBase, _Fetch
from carebridge.connectors.carecloud.mapping import fhir as fmap
from carebridge.connectors.carecloud.mapping import v2 as vmap
from carebridge.connectors.carecloud.wire import fhir as fw
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.domain.values import PatientId
from carebridge.errors import UpstreamStatusError


class Identity(TenantBase):
    """The crosswalk: carebridge ids to upstream ids, and one person's ids on every surface."""

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


__all__ = ["Identity", "PersonIds"]
