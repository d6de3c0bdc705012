"""Patients from v2 (enumerated from the portal's list): demographics, coverages, balances."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from carebridge.connectors.carecloud.identity import Identity
from carebridge.connectors.carecloud.mapping import v2 as vmap
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.domain import Balance, Coverage, Patient
from carebridge.domain.values import PatientId


class PatientReads(Identity):
    """Patients, coverages and balances (v2)."""

    async def patients(self, *, updated_since: datetime | None = None) -> AsyncIterator[Patient]:
        """Every patient (updated after ``updated_since``), enumerated from the portal's list and
        read from v2 (demographics, coverages and balances)."""
        await self._scan_fhir()
        params = {"updatedSince": updated_since.isoformat()} if updated_since else None
        items = await self._portal_list(
            "GET /portal/api/patients", "/patients", pw.PatientItemPayload, params
        )
        people = [
            self._person(item.chart_number, rcm_account=item.rcm_account_number) for item in items
        ]
        await self._flush()
        for person in people:
            yield await self._patient(person.patient_id, flush=False)
        await self._flush()  # the v2 GUIDs the last page's searches found

    async def patient(self, patient_id: PatientId) -> Patient:
        return await self._patient(patient_id, flush=True)

    async def _patient(self, patient_id: PatientId, *, flush: bool) -> Patient:
        ref = await self._v2_ref(patient_id, flush=flush)
        shown = "GET /v2/patients/{id}"
        balance = "GET /v2/patients/{id}/balance"
        wire = (
            await self._v2_read(shown, f"/v2/patients/{ref.v2_id}", vw.PatientShowResponse)
        ).patient
        balances = await self._v2_read_list(
            balance, f"/v2/patients/{ref.v2_id}/balance", vw.BalancePayload
        )
        return self._keep(shown, vmap.map_patient(wire, self._ctx("v2", shown), balances=balances))

    async def coverages(self, patient_id: PatientId) -> list[Coverage]:
        ref = await self._v2_ref(patient_id)
        endpoint = "GET /v2/patients/{id}/insurances"
        profiles = (
            await self._v2_read(
                endpoint, f"/v2/patients/{ref.v2_id}/insurances", vw.InsurancesResponse
            )
        ).insurance_profiles
        mapped = vmap.map_coverages(profiles, self._ctx("v2", endpoint), patient=ref)
        coverages: tuple[Coverage, ...] = self._keep(endpoint, mapped)
        return list(coverages)

    async def balance(self, patient_id: PatientId) -> list[Balance]:
        ref = await self._v2_ref(patient_id)
        endpoint = "GET /v2/patients/{id}/balance"
        rows = await self._v2_read_list(
            endpoint, f"/v2/patients/{ref.v2_id}/balance", vw.BalancePayload
        )
        ctx = self._ctx("v2", endpoint)
        return [self._keep(endpoint, vmap.map_balance(b, ctx, patient=ref)) for b in rows]
