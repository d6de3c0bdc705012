"""v2 ledger transactions, balances and eligibility requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from pydantic import ValidationError

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.mapping.v2._base import (
    PatientRef,
    _build,
    _dropped,
    _location_id,
    _money,
    _path_of,
    _payer_id,
    _provider_id,
    _Run,
    _service_type,
    _text,
    _track,
    _valid,
    _word,
)
from carebridge.connectors.carecloud.mapping.v2.codes import (
    _CHARGE_KINDS,
    coverage_level,
    eligibility_status,
    ledger_kind,
    policy_type,
    responsible_party,
    transaction_status,
)
from carebridge.connectors.carecloud.wire.v2 import (
    BalancePayload,
    BenefitPayload,
    EligibilityCreatedPayload,
    EligibilityRequestPayload,
    TransactionPayload,
)
from carebridge.domain import (
    AgingBuckets,
    AppointmentId,
    Balance,
    Benefit,
    Charge,
    ChargeId,
    EligibilityCheck,
    EligibilityCheckId,
    EligibilityRequest,
    EncounterId,
    LedgerEntry,
    LedgerEntryId,
    to_money,
)
from carebridge.domain.vocab import (
    CoverageStatus,
    ResponsibleParty,
    TransactionStatus,
)
from carebridge.errors import UnexpectedPayload

# --- billing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeDetails:
    """What a v2 ledger charge does not say and a ``Charge`` needs: the v2 ledger
    (``list_transactions.jbuilder``) has no date of service, codes or responsible party. They
    come from the portal's RCM ledger (same transaction id) or from the write that created the
    charge."""

    responsible: ResponsibleParty
    service_date: date | None = None
    """None: the posting date (a charge is posted on or after its date of service)."""
    procedure_code: str | None = None
    modifiers: tuple[str, ...] = ()
    diagnosis_codes: tuple[str, ...] = ()
    billed: bool = False
    encounter_id: int | None = None
    appointment_id: str | None = None
    """The v2 GUID of the appointment the charge was entered for."""


def is_charge(wire: TransactionPayload) -> bool:
    """True for the ledger's charge kinds (``charge``, ``simple_charge``): map them with
    ``map_charge``, every other kind with ``map_ledger_entry``."""
    return wire.transaction_type in _CHARGE_KINDS


def _transaction_status(ctx: Context, t: TransactionPayload, upstream_id: int) -> TransactionStatus:
    status = transaction_status(t.transaction_status)
    if status is None:
        raise UnexpectedPayload(
            f"v2 transaction {upstream_id} has an unknown transaction_status",
            field_path="transaction_status",
            endpoint=ctx.endpoint,
        )
    return status


def map_charge(
    wire: TransactionPayload, ctx: Context, *, patient: PatientRef, details: ChargeDetails
) -> Mapped[Charge]:
    """A ledger charge (``charge`` or ``simple_charge``) of ``patient``.

    Raises:
        ValueError: ``wire`` is not a charge (see ``is_charge``).
        UnexpectedPayload: an unknown status, a negative amount, or a balance above the amount.
    """
    if not is_charge(wire):
        raise ValueError("not a charge: map it with map_ledger_entry")
    run = _Run()
    w = _track(wire, run)
    status = _transaction_status(ctx, w, wire.id)
    units = w.units
    charge = _build(
        Charge,
        "transaction",
        str(wire.id),
        ctx,
        id=ChargeId.new(ctx.key("transaction", str(w.id))),
        sources=(ctx.source(str(wire.id)),),
        patient_id=patient.patient_id(ctx),
        kind=w.transaction_type,
        status=status,
        service_date=details.service_date or w.posting_date,
        posting_date=w.posting_date,
        procedure_code=details.procedure_code,
        modifiers=details.modifiers,
        units=units if units and units > 0 else 1,
        diagnosis_codes=details.diagnosis_codes,
        description=_text(w.description),
        amount=to_money(w.amount),
        balance=_money(w.balance) or Decimal("0.00"),
        responsible=details.responsible,
        billed=details.billed,
        encounter_id=None
        if details.encounter_id is None
        else EncounterId.new(ctx.key("encounter", str(details.encounter_id))),
        appointment_id=None
        if details.appointment_id is None
        else AppointmentId.new(ctx.key("appointment", details.appointment_id.lower())),
        provider_id=_provider_id(ctx, w.provider_id),
        attending_provider_id=_provider_id(ctx, w.attending_provider_id),
        location_id=_location_id(ctx, w.location_id),
    )
    unapplied = _money(w.unapplied_credit)
    if unapplied:
        run.reject(w, "unapplied_credit")
    return Mapped(charge, _dropped(run, wire))


def map_ledger_entry(
    wire: TransactionPayload, ctx: Context, *, patient: PatientRef
) -> Mapped[LedgerEntry]:
    """Any other ledger transaction (payments, adjustments, refunds, reversals) of ``patient``;
    the amount keeps the ledger's sign (credits negative).

    Raises:
        ValueError: ``wire`` is a charge (see ``is_charge``).
        UnexpectedPayload: an unknown ``transaction_type`` or ``transaction_status``.
    """
    if is_charge(wire):
        raise ValueError("a charge: map it with map_charge")
    run = _Run()
    w = _track(wire, run)
    kind = ledger_kind(w.transaction_type)
    if kind is None:
        raise UnexpectedPayload(
            f"v2 transaction {wire.id} has an unknown transaction_type",
            field_path="transaction_type",
            endpoint=ctx.endpoint,
        )
    status = _transaction_status(ctx, w, wire.id)
    if _money(w.balance):  # an open balance belongs on charges; a credit's is zero
        run.reject(w, "balance")
    unapplied = _valid(run, w, "unapplied_credit", to_money)
    if unapplied is not None and unapplied < 0:
        run.reject(w, "unapplied_credit")
        unapplied = None
    entry = _build(
        LedgerEntry,
        "transaction",
        str(wire.id),
        ctx,
        id=LedgerEntryId.new(ctx.key("transaction", str(w.id))),
        sources=(ctx.source(str(wire.id)),),
        patient_id=patient.patient_id(ctx),
        kind=kind,
        status=status,
        posting_date=w.posting_date,
        amount=to_money(w.amount),
        unapplied_credit=unapplied or Decimal("0.00"),
        description=_text(w.description),
        provider_id=_provider_id(ctx, w.provider_id),
        location_id=_location_id(ctx, w.location_id),
    )
    return Mapped(entry, _dropped(run, wire))


def _balance(ctx: Context, b: BalancePayload, ref: PatientRef, as_of: date | None) -> Balance:
    responsible = responsible_party(b.balance_type)
    if responsible is None:
        raise UnexpectedPayload(
            f"v2 balance of patient {ref.v2_id} has an unknown balance_type",
            field_path="balance_type",
            endpoint=ctx.endpoint,
        )
    upstream_id = f"{ref.v2_id}/{responsible}"
    return _build(
        Balance,
        "balance",
        upstream_id,
        ctx,
        sources=(ctx.source(upstream_id),),
        patient_id=ref.patient_id(ctx),
        responsible=responsible,
        aging=_aging(
            (b.current, b.greater_than_30, b.greater_than_60, b.greater_than_90, b.greater_than_120)
        ),
        unbilled=to_money(b.unbilled),
        unapplied_credit=to_money(b.unapplied_credit),
        total=to_money(b.total),
        as_of=as_of,
    )


AGINGS_KEPT = 4096
"""Distinct aging rows :func:`_aging` keeps the buckets of."""

_agings: dict[tuple[str, ...], AgingBuckets] = {}
_FIVE_STRINGS = (str, str, str, str, str)


def _aging(amounts: tuple[str, str, str, str, str]) -> AgingBuckets:
    """The buckets of a balance row's five amounts (current, over 30, 60, 90, 120 days): the
    same (frozen) buckets for the same amounts, as most rows repeat a few (all zero, mostly).
    Only strings are looked up (``True`` equals ``1``, and is refused as money)."""
    text = tuple(map(type, amounts)) == _FIVE_STRINGS
    known = _agings.get(amounts) if text else None
    if known is not None:
        return known
    current, over_30, over_60, over_90, over_120 = amounts
    aging = AgingBuckets(
        current=to_money(current),
        over_30=to_money(over_30),
        over_60=to_money(over_60),
        over_90=to_money(over_90),
        over_120=to_money(over_120),
    )
    if text and len(_agings) < AGINGS_KEPT:
        _agings[amounts] = aging
    return aging


def map_balance(
    wire: BalancePayload, ctx: Context, *, patient: PatientRef, as_of: date | None = None
) -> Mapped[Balance]:
    """One row of ``GET /v2/patients/{id}/balance`` (one responsible party).

    Raises:
        UnexpectedPayload: an unknown ``balance_type``, or a total that is not
            ``unbilled + buckets - unapplied_credit``.
    """
    run = _Run()
    balance = _balance(ctx, _track(wire, run), patient, as_of)
    return Mapped(balance, _dropped(run, wire))


def _fraction(text: str | None) -> Decimal | None:
    if text is None or not str(text).strip():
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError("not a decimal") from None
    if value > 1:  # a percentage (20) rather than a fraction (0.20)
        value = value / 100
    return value


def _benefit(run: _Run, b: BenefitPayload, status: CoverageStatus) -> Benefit | None:
    service_type = _valid(run, b, "service_type_code", _service_type)
    if service_type is None:
        run.reject_path(_path_of(b))
        return None
    level = coverage_level(b.coverage_level)
    if level is None and _word(b.coverage_level):
        run.reject(b, "coverage_level")
    try:
        return Benefit(
            service_type=service_type,
            coverage_status=status,
            coverage_level=level or "individual",
            in_network=b.in_network,
            copay=_valid(run, b, "co_payment", to_money),
            coinsurance=_valid(run, b, "co_insurance", _fraction),
            deductible=_valid(run, b, "deductible", to_money),
            deductible_remaining=_valid(run, b, "deductible_remaining", to_money),
            out_of_pocket_max=_valid(run, b, "out_of_pocket_max", to_money),
            out_of_pocket_remaining=_valid(run, b, "out_of_pocket_remaining", to_money),
        )
    except ValidationError:
        run.reject_path(_path_of(b))
        return None


def map_eligibility(
    wire: EligibilityRequestPayload | EligibilityCreatedPayload,
    ctx: Context,
    *,
    patient: PatientRef,
    requested_at: datetime | None = None,
    request: EligibilityRequest | None = None,
    appointment_id: AppointmentId | None = None,
) -> Mapped[EligibilityCheck]:
    """An electronic eligibility request, as created (``pending``) or polled.

    The v2 payload carries no timestamps: ``requested_at`` is when the caller sent the request
    (default: this fetch), and ``responded_at`` of an answered check is this fetch
    (``ctx.fetched_at``: the answer was there by then). ``request`` is what was asked; by
    default, the generic inquiry (``30``) for the ``eligibility_date``.

    Raises:
        UnexpectedPayload: an unknown status, or an answered check without an answer.
    """
    run = _Run()
    w = _track(wire, run)
    status = eligibility_status(w.status)
    if status is None:
        raise UnexpectedPayload(
            f"v2 eligibility request {wire.id} has an unknown status",
            field_path="status",
            endpoint=ctx.endpoint,
        )
    asked_at = requested_at or ctx.fetched_at
    data: dict[str, Any] = {}
    service_date = asked_at.date()
    if isinstance(wire, EligibilityRequestPayload):
        e = cast(EligibilityRequestPayload, w)
        service_date = e.eligibility_date
        answer = e.response
        if answer is not None and status != "pending":
            word = _word(answer.coverage_status)
            coverage: CoverageStatus = (
                cast(CoverageStatus, word) if word in ("active", "inactive") else "unknown"
            )
            if word not in ("active", "inactive", "unknown"):
                run.reject(answer, "coverage_status")
            benefits = [_benefit(run, b, coverage) for b in answer.benefits]
            payer = answer.payer
            data = {
                "coverage_status": coverage,
                "benefits": tuple(b for b in benefits if b is not None),
                "payer_id": None if payer is None or payer.id is None else _payer_id(ctx, payer.id),
                "payer_name": "" if payer is None else _text(payer.name),
                "member_number": _text(answer.member_number) or None,
                "plan_type": None if not answer.plan_type else policy_type(answer.plan_type),
                "reason": _text(answer.reason),
            }
        elif answer is not None:
            run.reject_path("response")
    check = _build(
        EligibilityCheck,
        "eligibility request",
        str(wire.id),
        ctx,
        id=EligibilityCheckId.new(ctx.key("eligibility", str(w.id))),
        sources=(ctx.source(str(wire.id)),),
        patient_id=patient.patient_id(ctx),
        appointment_id=appointment_id,
        method="electronic",
        status=status,
        request=request or EligibilityRequest(service_date=service_date),
        requested_at=asked_at,
        responded_at=None if status == "pending" else ctx.fetched_at,
        **data,
    )
    return Mapped(check, _dropped(run, wire))
