"""The revenue cycle from the portal: charges, claims, payments, remittances, statements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from carebridge.connectors.carecloud.identity import Identity
from carebridge.connectors.carecloud.mapping import portal as pmap
from carebridge.connectors.carecloud.wire import portal as pw
from carebridge.domain import Charge, Claim, Payment, Remittance, Statement
from carebridge.domain.values import PatientId


class BillingReads(Identity):
    """Charges, claims, payments, remittances and statements (portal)."""

    async def charges(self, *, patient_id: PatientId | None = None) -> AsyncIterator[Charge]:
        """Ledger charges from the portal's RCM ledger."""
        endpoint = "GET /portal/api/charges"
        params = {"patient": (await self._known(patient_id)).chart_number} if patient_id else None
        items = await self._portal_list(endpoint, "/charges", pw.ChargePayload, params)
        ctx = self._ctx("portal", endpoint)
        charges: list[Charge] = []
        for item in items:
            charge = self._keep(endpoint, pmap.charge_from_portal(item, ctx))
            self._writes.index.charges[charge.id] = item.id  # for submit_claim
            self._learn("charge", "portal", item.id, charge.id)
            charges.append(charge)
        await self._flush()
        for charge in charges:
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
                    detail.patient.chart_number, rcm_account=detail.patient.rcm_account_number
                )
                await self._flush_page()
            yield self._keep(shown, pmap.claim_from_portal(detail, self._ctx("portal", shown)))
        await self._flush()

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
