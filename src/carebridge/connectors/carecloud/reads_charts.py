"""Charts from the portal (encounters, problems, medications, allergies, labs,
immunizations) and documents from v2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.base import M, T, _Fetch
from carebridge.connectors.carecloud.identity import Identity
from carebridge.connectors.carecloud.mapping import portal as pmap
from carebridge.connectors.carecloud.mapping import v2 as vmap
from carebridge.connectors.carecloud.mapping.common import Mapped
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.domain import (
    Allergy,
    Document,
    Encounter,
    Immunization,
    LabResult,
    Medication,
    Problem,
)
from carebridge.domain.values import PatientId


class ChartReads(Identity):
    """Encounters and the chart's lists (portal), documents (v2)."""

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
                self._learn("encounter", "portal", item.id, encounter.id)
                await self._flush_page()
                yield encounter
            await self._flush()  # the chart's encounters, one batch

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
