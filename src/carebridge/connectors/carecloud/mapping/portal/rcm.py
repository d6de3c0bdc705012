"""The portal's revenue cycle to the domain: charges, claims, remittances, payments and
statements."""

from __future__ import annotations

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.mapping.portal.base import (
    _opt_encounter,
    _required,
    charge_id,
    claim_id,
    claim_status,
    coverage_id,
    document_id,
    location_id,
    map_traced,
    money,
    patient_id,
    payer_id,
    payment_id,
    payment_method,
    provider_id,
    remittance_id,
    statement_id,
    unexpected,
)
from carebridge.connectors.carecloud.wire import portal as wire
from carebridge.connectors.carecloud.wire.portal import forget
from carebridge.domain import (
    Adjustment,
    AgingBuckets,
    Charge,
    Claim,
    ClaimAttachment,
    ClaimLine,
    ClaimStatusChange,
    Payment,
    Remittance,
    RemittanceLine,
    ScrubError,
    Statement,
    StatementLine,
)

# --- RCM: charges -------------------------------------------------------------------------------


def charge_from_portal(payload: wire.ChargePayload, ctx: Context) -> Mapped[Charge]:
    """A ledger charge of ``GET /portal/api/charges``."""

    def build() -> Charge:
        c = payload
        return Charge(
            id=charge_id(ctx, c.id),
            patient_id=patient_id(ctx, c.chart_number),
            kind="charge" if c.procedure_code else "simple_charge",
            status=c.status,
            service_date=_required(ctx, c.service_date, "serviceDate"),
            posting_date=c.posting_date,
            procedure_code=c.procedure_code or None,
            modifiers=tuple(c.modifiers),
            units=c.units or 1,
            diagnosis_codes=tuple(c.diagnosis_codes),
            description=c.description,
            amount=money(ctx, c.amount, "amount"),
            balance=money(ctx, c.balance, "balance"),
            responsible=c.balance_type,
            billed=c.billed,
            encounter_id=_opt_encounter(ctx, c.encounter_id),
            provider_id=provider_id(ctx, c.provider_id) if c.provider_id is not None else None,
            location_id=location_id(ctx, c.location_id) if c.location_id is not None else None,
            updated_at=c.updated_at,
            sources=(ctx.source(str(c.id)),),
        )

    return map_traced(payload, build, ctx)


# --- RCM: claims --------------------------------------------------------------------------------


def claim_from_portal(payload: wire.ClaimDetailPayload, ctx: Context) -> Mapped[Claim]:
    """A claim from ``GET /portal/api/claims/{claimNumber}`` (a list item lacks its lines and
    diagnoses, which a claim cannot do without). Its ``remittances`` are mapped by
    :func:`remittances_from_claim` and are not reported as dropped here."""

    def build() -> Claim:
        c = payload
        diagnoses = sorted(c.diagnoses, key=lambda d: d.pointer)
        if [d.pointer for d in diagnoses] != list(range(1, len(diagnoses) + 1)):
            raise unexpected(ctx, "diagnoses[].pointer", "pointers run 1, 2, 3 ...")
        rendering = _required(ctx, c.rendering_provider, "renderingProvider")
        return Claim(
            id=claim_id(ctx, c.claim_number),
            claim_number=c.claim_number,
            patient_id=patient_id(ctx, c.patient.chart_number),
            payer_id=payer_id(ctx, c.payer.id),
            coverage_id=(
                coverage_id(ctx, c.insurance_policy_id)
                if c.insurance_policy_id is not None
                else None
            ),
            encounter_id=_opt_encounter(ctx, c.encounter_id),
            provider_id=provider_id(ctx, rendering.id),
            location_id=location_id(ctx, c.location_id) if c.location_id is not None else None,
            status=claim_status(ctx, c.status, "status"),
            status_history=tuple(
                ClaimStatusChange(
                    status=claim_status(ctx, h.status, "statusHistory[].status"),
                    at=h.at,
                    category_code=h.category_code,
                    note=h.note,
                )
                for h in c.status_history
            ),
            service_from=c.service_from,
            service_to=c.service_to,
            diagnoses=tuple(d.code for d in diagnoses),
            lines=tuple(
                ClaimLine(
                    line_number=line.line_number,
                    charge_id=charge_id(ctx, line.charge_id),
                    procedure_code=line.procedure_code,
                    modifiers=tuple(line.modifiers),
                    units=line.units,
                    service_date=line.service_date,
                    billed=money(ctx, line.billed_amount, "lines[].billedAmount"),
                    diagnosis_pointers=tuple(line.diagnosis_pointers),
                )
                for line in c.lines
            ),
            billed=money(ctx, c.billed_amount, "billedAmount"),
            paid=money(ctx, c.paid_amount, "paidAmount"),
            patient_responsibility=money(ctx, c.patient_responsibility, "patientResponsibility"),
            attachments=tuple(
                ClaimAttachment(document_id=document_id(ctx, a.document_id), kind=a.attachment_type)
                for a in c.attachments
            ),
            scrub_errors=tuple(
                ScrubError(field=s.field, message=s.message) for s in c.scrub_errors
            ),
            payer_control_number=c.payer_control_number,
            submitted_at=c.submitted_at,
            adjudicated_at=c.adjudicated_at,
            created_at=c.created_at,
            updated_at=c.updated_at,
            sources=(ctx.source(c.claim_number),),
        )

    return map_traced(payload, build, ctx, skip=("remittances",))


# --- RCM: remittances ---------------------------------------------------------------------------


def _remittance(
    r: wire.RemittancePayload,
    ctx: Context,
    claim_number: str,
    chart_number: str,
    payer_control_number: str | None,
) -> Remittance:
    lines = []
    for line in r.lines:
        lines.append(
            RemittanceLine(
                claim_line_number=_required(ctx, line.line_number, "lines[].lineNumber"),
                procedure_code=line.procedure_code or None,
                billed=money(ctx, line.billed_amount, "lines[].billedAmount"),
                allowed=money(ctx, line.allowed_amount, "lines[].allowedAmount"),
                paid=money(ctx, line.paid_amount, "lines[].paidAmount"),
                adjustments=tuple(
                    Adjustment(
                        group=a.group_code,
                        carc=a.carc,
                        rarc=a.rarc or None,
                        amount=money(ctx, a.amount, "lines[].adjustments[].amount"),
                    )
                    for a in line.adjustments
                ),
            )
        )
    return Remittance(
        id=remittance_id(ctx, r.era_id, claim_number),
        payment_id=payment_id(ctx, r.era_id),
        claim_id=claim_id(ctx, claim_number),
        patient_id=patient_id(ctx, chart_number),
        claim_status_code=r.claim_status_code,
        payer_claim_control_number=r.payer_claim_control_number or payer_control_number,
        billed=money(ctx, r.billed_amount, "billedAmount"),
        paid=money(ctx, r.paid_amount, "paidAmount"),
        patient_responsibility=money(ctx, r.patient_responsibility, "patientResponsibility"),
        lines=tuple(lines),
        received_at=r.received_at,
        sources=(ctx.source(f"{r.era_id}/{claim_number}"),),
    )


def remittances_from_claim(
    payload: wire.ClaimDetailPayload, ctx: Context
) -> tuple[Mapped[Remittance], ...]:
    """The remittances (835 CLP, with SVC lines and CAS adjustments) a claim detail lists."""

    def one(r: wire.RemittancePayload) -> Mapped[Remittance]:
        return map_traced(
            r,
            lambda: _remittance(
                r,
                ctx,
                payload.claim_number,
                payload.patient.chart_number,
                payload.payer_control_number,
            ),
            ctx,
            prefix="remittances[].",
        )

    return tuple(one(r) for r in payload.remittances)


def remittances_from_era(payload: wire.EraPayload, ctx: Context) -> tuple[Mapped[Remittance], ...]:
    """The remittances of ``GET /portal/api/eras/{id}``: one per claim the ERA pays."""

    def one(r: wire.EraClaimPayload) -> Mapped[Remittance]:
        return map_traced(
            r,
            lambda: _remittance(r, ctx, r.claim_number, r.chart_number, None),
            ctx,
            prefix="claims[].",
        )

    return tuple(one(r) for r in payload.claims)


# --- RCM: payments and statements ---------------------------------------------------------------


def payment_from_portal(payload: wire.PaymentPayload, ctx: Context) -> Mapped[Payment]:
    """A payment of ``GET /portal/api/payments`` or an ERA of ``/eras/{id}`` (whose ``claims``
    :func:`remittances_from_era` maps)."""

    def build() -> Payment:
        p = payload
        method = payment_method(p.method)
        if method is None:
            forget(p, "method")
        return Payment(
            id=payment_id(ctx, p.id),
            kind=p.kind,
            payer_id=payer_id(ctx, p.payer.id) if p.payer is not None else None,
            patient_id=(patient_id(ctx, p.patient.chart_number) if p.patient is not None else None),
            trace_number=p.trace_number,
            method=method or "other",
            payment_date=p.payment_date,
            amount=money(ctx, p.amount, "amount"),
            created_at=p.created_at,
            updated_at=p.updated_at,
            sources=(ctx.source(str(p.id)),),
        )

    return map_traced(payload, build, ctx, skip=("claims",))


def statement_from_portal(payload: wire.StatementPayload, ctx: Context) -> Mapped[Statement]:
    """A patient statement of ``GET /portal/api/statements`` or ``/statements/{number}``."""

    def build() -> Statement:
        s = payload
        aging = s.aging
        return Statement(
            id=statement_id(ctx, s.statement_number),
            statement_number=s.statement_number,
            patient_id=patient_id(ctx, s.chart_number),
            statement_date=s.statement_date,
            due_date=s.due_date,
            balance=money(ctx, s.balance, "balance"),
            aging=AgingBuckets(
                current=money(ctx, aging.current, "aging.current"),
                over_30=money(ctx, aging.over30, "aging.over30"),
                over_60=money(ctx, aging.over60, "aging.over60"),
                over_90=money(ctx, aging.over90, "aging.over90"),
                over_120=money(ctx, aging.over120, "aging.over120"),
            ),
            lines=tuple(
                StatementLine(
                    charge_id=charge_id(ctx, line.charge_id),
                    service_date=line.service_date,
                    procedure_code=line.code or None,
                    amount=money(ctx, line.amount, "lines[].amount"),
                    balance=money(ctx, line.balance, "lines[].balance"),
                )
                for line in s.lines
            ),
            status=s.status,
            created_at=s.created_at,
            updated_at=s.updated_at,
            sources=(ctx.source(s.statement_number),),
        )

    return map_traced(payload, build, ctx)
