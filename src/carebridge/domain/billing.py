"""The revenue cycle: ledger charges and credits, claims, payments, remittances (ERA), statements
and balances.

::

    Charge ─┐                      (a ledger charge; LedgerEntry: every other ledger transaction)
            └─> Claim ─ lines[ClaimLine] ─ status_history[ClaimStatusChange]
                  ^
    Payment ──> Remittance (one claim on an ERA, 835 CLP)
                  └─ lines[RemittanceLine] (835 SVC) ─ adjustments[Adjustment] (835 CAS)
    Statement ─ aging[AgingBuckets] ─ lines[StatementLine]
    Balance (per patient and responsible party) ─ aging[AgingBuckets]

Invariants held by validators:
- a claim's ``billed`` is the sum of its lines; its status history follows the claim lifecycle
  and ends in its status;
- a remittance line balances: ``billed = paid + sum(adjustments)``; a remittance's totals are the
  sums of its lines, and its patient responsibility is the sum of the ``PR`` adjustments;
- a balance's ``total = unbilled + aging - unapplied_credit``; a statement's balance equals its
  aging and the sum of its lines.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import pairwise

from pydantic import Field, model_validator

from carebridge.domain.provenance import DomainModel, NonEmptyStr, Record, check_timestamps
from carebridge.domain.values import (
    CARC,
    ICD10CM,
    RARC,
    AppointmentId,
    ChargeId,
    ClaimId,
    ClaimStatusCategory,
    CoverageId,
    DocumentId,
    EncounterId,
    Instant,
    LedgerEntryId,
    LocationId,
    Modifier,
    Money,
    NonNegativeMoney,
    PatientId,
    PayerId,
    PaymentId,
    ProcedureCode,
    ProviderId,
    RemittanceId,
    StatementId,
    money_sum,
)
from carebridge.domain.vocab import (
    CLAIM_TRANSITIONS,
    AdjustmentGroup,
    ChargeKind,
    ClaimStatus,
    LedgerEntryKind,
    PaymentKind,
    PaymentMethod,
    RemittanceClaimStatus,
    ResponsibleParty,
    StatementStatus,
    TransactionStatus,
)

MAX_MODIFIERS = 4
MAX_CHARGE_DIAGNOSES = 8  # CareCloud's diagnosis1..8_code
MAX_CLAIM_DIAGNOSES = 12  # 837P HI segment
MAX_DIAGNOSIS_POINTERS = 4  # 837P SV107


# --- balances ------------------------------------------------------------------------------------


class AgingBuckets(DomainModel):
    """Open amounts by age: 0-30 days, 31-60, 61-90, 91-120, over 120."""

    current: Money = Decimal("0.00")
    over_30: Money = Decimal("0.00")
    over_60: Money = Decimal("0.00")
    over_90: Money = Decimal("0.00")
    over_120: Money = Decimal("0.00")

    @property
    def total(self) -> Decimal:
        """The sum of the buckets."""
        return money_sum((self.current, self.over_30, self.over_60, self.over_90, self.over_120))


class Balance(Record):
    """What a patient's account owes, for one responsible party (the patient or insurance)."""

    patient_id: PatientId
    responsible: ResponsibleParty
    aging: AgingBuckets = AgingBuckets()
    """Billed open amounts, aged from the posting date."""
    unbilled: Money = Decimal("0.00")
    """Open amounts of charges not yet on a claim."""
    unapplied_credit: NonNegativeMoney = Decimal("0.00")
    """Payments received and not yet applied to a charge."""
    total: Money
    as_of: date | None = None

    @model_validator(mode="after")
    def _total_adds_up(self) -> Balance:
        expected = money_sum((self.unbilled, self.aging.total, -self.unapplied_credit))
        if self.total != expected:
            raise ValueError("total: must equal unbilled + aging buckets - unapplied_credit")
        return self


# --- ledger --------------------------------------------------------------------------------------


class Charge(Record):
    """A charge on the patient ledger: one procedure on one date of service."""

    id: ChargeId
    patient_id: PatientId
    kind: ChargeKind = "charge"
    status: TransactionStatus = "posted"
    service_date: date
    posting_date: date
    procedure_code: ProcedureCode | None = None
    """None only for a simple charge (a practice-defined fee such as a no-show fee)."""
    modifiers: tuple[Modifier, ...] = Field(default=(), max_length=MAX_MODIFIERS)
    units: int = Field(default=1, ge=1)
    diagnosis_codes: tuple[ICD10CM, ...] = Field(default=(), max_length=MAX_CHARGE_DIAGNOSES)
    description: str = ""
    amount: NonNegativeMoney
    balance: Money
    """The open amount still owed on it (negative when overpaid)."""
    responsible: ResponsibleParty
    """Who owes the open balance now."""
    billed: bool = False
    """True once the charge is on a claim; open balances of unbilled charges age as ``unbilled``."""
    encounter_id: EncounterId | None = None
    appointment_id: AppointmentId | None = None
    coverage_id: CoverageId | None = None
    provider_id: ProviderId | None = None
    attending_provider_id: ProviderId | None = None
    location_id: LocationId | None = None
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Charge:
        if self.kind == "charge" and self.procedure_code is None:
            raise ValueError("procedure_code: a charge needs a procedure code")
        if self.balance > self.amount:
            raise ValueError("balance: cannot exceed the charged amount")
        if self.posting_date < self.service_date:
            raise ValueError("posting_date: must not be before service_date")
        check_timestamps(self.created_at, self.updated_at)
        return self


class LedgerEntry(Record):
    """Any other ledger transaction: payments, adjustments, refunds, reversals, returned checks.

    Amounts are signed as the ledger keeps them: credits negative, reversals of credits positive.
    """

    id: LedgerEntryId
    patient_id: PatientId
    kind: LedgerEntryKind
    status: TransactionStatus = "posted"
    posting_date: date
    amount: Money
    unapplied_credit: NonNegativeMoney = Decimal("0.00")
    responsible: ResponsibleParty | None = None
    charge_id: ChargeId | None = None
    """The charge it settles or reverses."""
    payment_id: PaymentId | None = None
    description: str = ""
    provider_id: ProviderId | None = None
    location_id: LocationId | None = None
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> LedgerEntry:
        check_timestamps(self.created_at, self.updated_at)
        return self


# --- claims --------------------------------------------------------------------------------------


class ClaimLine(DomainModel):
    """One service line of a claim (837P loop 2400)."""

    line_number: int = Field(ge=1, le=50)
    charge_id: ChargeId
    procedure_code: ProcedureCode
    modifiers: tuple[Modifier, ...] = Field(default=(), max_length=MAX_MODIFIERS)
    units: int = Field(default=1, ge=1)
    service_date: date
    billed: NonNegativeMoney
    diagnosis_pointers: tuple[int, ...] = Field(
        default=(1,), min_length=1, max_length=MAX_DIAGNOSIS_POINTERS
    )
    """1-based positions in the claim's ``diagnoses``."""

    @model_validator(mode="after")
    def _check(self) -> ClaimLine:
        if len(set(self.diagnosis_pointers)) != len(self.diagnosis_pointers):
            raise ValueError("diagnosis_pointers: must not repeat")
        if any(not 1 <= p <= MAX_CLAIM_DIAGNOSES for p in self.diagnosis_pointers):
            raise ValueError(f"diagnosis_pointers: each is 1..{MAX_CLAIM_DIAGNOSES}")
        return self


class ClaimStatusChange(DomainModel):
    """One step of a claim's history, with the 277 category it was reported with."""

    status: ClaimStatus
    at: Instant
    category_code: ClaimStatusCategory | None = None
    note: str = ""


class ClaimAttachment(DomainModel):
    """A document sent with the claim (837P PWK)."""

    document_id: DocumentId
    kind: NonEmptyStr
    """The attachment report type, e.g. ``OZ`` (support data) or a practice label."""


class ScrubError(DomainModel):
    """A problem the scrubber found before submission."""

    field: NonEmptyStr
    message: NonEmptyStr


class Claim(Record):
    """A professional claim (837P) for one patient, payer and provider."""

    id: ClaimId
    claim_number: NonEmptyStr
    """The practice's claim number (the portal's id, e.g. ``MG-000123``)."""
    patient_id: PatientId
    payer_id: PayerId
    coverage_id: CoverageId | None = None
    encounter_id: EncounterId | None = None
    provider_id: ProviderId
    """The billing/rendering provider."""
    location_id: LocationId | None = None
    status: ClaimStatus
    status_history: tuple[ClaimStatusChange, ...] = ()
    service_from: date
    service_to: date
    diagnoses: tuple[ICD10CM, ...] = Field(min_length=1, max_length=MAX_CLAIM_DIAGNOSES)
    """ICD-10-CM codes in pointer order (the first is the principal diagnosis)."""
    lines: tuple[ClaimLine, ...] = Field(min_length=1, max_length=50)
    billed: NonNegativeMoney
    paid: Money = Decimal("0.00")
    patient_responsibility: Money = Decimal("0.00")
    attachments: tuple[ClaimAttachment, ...] = ()
    scrub_errors: tuple[ScrubError, ...] = ()
    payer_control_number: str | None = None
    """The payer's claim control number, known once it accepts the claim."""
    submitted_at: Instant | None = None
    adjudicated_at: Instant | None = None
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Claim:
        if self.service_to < self.service_from:
            raise ValueError("service_to: must not be before service_from")
        numbers = [line.line_number for line in self.lines]
        if numbers != list(range(1, len(self.lines) + 1)):
            raise ValueError("lines: line numbers run 1, 2, 3 ... in order")
        if self.billed != money_sum(line.billed for line in self.lines):
            raise ValueError("billed: must equal the sum of the lines' billed amounts")
        if len(set(self.diagnoses)) != len(self.diagnoses):
            raise ValueError("diagnoses: must not repeat")
        for line in self.lines:
            if not self.service_from <= line.service_date <= self.service_to:
                raise ValueError("lines: service_date must fall within service_from..service_to")
            if max(line.diagnosis_pointers) > len(self.diagnoses):
                raise ValueError("lines: diagnosis_pointers must point at a listed diagnosis")
        self._check_history()
        if self.submitted_at and self.adjudicated_at and self.adjudicated_at < self.submitted_at:
            raise ValueError("adjudicated_at: must not be before submitted_at")
        check_timestamps(self.created_at, self.updated_at)
        return self

    def _check_history(self) -> None:
        history = self.status_history
        if not history:
            return
        if history[-1].status != self.status:
            raise ValueError("status_history: the last entry must be the claim's status")
        for before, after in pairwise(history):
            if after.at < before.at:
                raise ValueError("status_history: entries are in time order")
            if after.status not in CLAIM_TRANSITIONS[before.status]:
                raise ValueError(
                    f"status_history: {before.status.value} cannot move to {after.status.value}"
                )


# --- payments and remittances --------------------------------------------------------------------

TraceNumber = NonEmptyStr


class Payment(Record):
    """Money received: a payer's ERA payment (EFT or check) or a patient's payment."""

    id: PaymentId
    kind: PaymentKind
    payer_id: PayerId | None = None
    """Set for an ERA payment only."""
    patient_id: PatientId | None = None
    """Set for a patient payment only."""
    trace_number: TraceNumber
    """The EFT trace or check number (835 TRN02)."""
    method: PaymentMethod
    payment_date: date
    amount: NonNegativeMoney
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Payment:
        if self.kind == "era" and (self.payer_id is None or self.patient_id is not None):
            raise ValueError("payer_id: an ERA payment has a payer and no patient")
        if self.kind == "patient" and (self.patient_id is None or self.payer_id is not None):
            raise ValueError("patient_id: a patient payment has a patient and no payer")
        check_timestamps(self.created_at, self.updated_at)
        return self


class Adjustment(DomainModel):
    """One claim adjustment (835 CAS): why part of the billed amount was not paid."""

    group: AdjustmentGroup
    carc: CARC
    rarc: RARC | None = None
    amount: Money
    """Positive reduces the payment; negative (reversals) increases it."""


class RemittanceLine(DomainModel):
    """How the payer treated one claim line (835 SVC)."""

    claim_line_number: int = Field(ge=1, le=50)
    procedure_code: ProcedureCode | None = None
    billed: Money
    allowed: Money
    paid: Money
    adjustments: tuple[Adjustment, ...] = ()

    @model_validator(mode="after")
    def _balances(self) -> RemittanceLine:
        if self.billed != money_sum((self.paid, *(a.amount for a in self.adjustments))):
            raise ValueError("billed: must equal paid + the sum of the adjustments")
        return self

    @property
    def patient_responsibility(self) -> Decimal:
        """The sum of the ``PR`` adjustments: what goes to the patient."""
        return money_sum(a.amount for a in self.adjustments if a.group == "PR")


class Remittance(Record):
    """One claim as a payer's ERA (835 loop 2100, CLP) reports it."""

    id: RemittanceId
    payment_id: PaymentId
    claim_id: ClaimId
    patient_id: PatientId | None = None
    """The claim's patient (835 loop 2100 NM1*QC); None only in a record stored before the
    connector mapped it."""
    claim_status_code: RemittanceClaimStatus
    """835 CLP02 (``1`` processed as primary, ``4`` denied, ``22`` reversal ...)."""
    payer_claim_control_number: str | None = None
    billed: Money
    paid: Money
    patient_responsibility: Money
    lines: tuple[RemittanceLine, ...] = Field(min_length=1)
    received_at: Instant
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _totals_add_up(self) -> Remittance:
        numbers = [line.claim_line_number for line in self.lines]
        if len(set(numbers)) != len(numbers):
            raise ValueError("lines: each claim line is remitted once")
        if self.billed != money_sum(line.billed for line in self.lines):
            raise ValueError("billed: must equal the sum of the lines' billed amounts")
        if self.paid != money_sum(line.paid for line in self.lines):
            raise ValueError("paid: must equal the sum of the lines' paid amounts")
        if self.patient_responsibility != money_sum(
            line.patient_responsibility for line in self.lines
        ):
            raise ValueError("patient_responsibility: must equal the sum of the PR adjustments")
        check_timestamps(self.created_at, self.updated_at)
        return self


# --- statements ----------------------------------------------------------------------------------


class StatementLine(DomainModel):
    """An open charge on a statement."""

    charge_id: ChargeId
    service_date: date
    procedure_code: ProcedureCode | None = None
    description: str = ""
    amount: Money
    balance: Money

    @model_validator(mode="after")
    def _check(self) -> StatementLine:
        if self.balance > self.amount:
            raise ValueError("balance: cannot exceed the charged amount")
        return self


class Statement(Record):
    """A patient statement: a snapshot of what the patient owes after insurance."""

    id: StatementId
    statement_number: NonEmptyStr
    patient_id: PatientId
    statement_date: date
    due_date: date
    balance: Money
    aging: AgingBuckets
    lines: tuple[StatementLine, ...] = ()
    status: StatementStatus
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Statement:
        if self.due_date < self.statement_date:
            raise ValueError("due_date: must not be before statement_date")
        if self.balance != self.aging.total:
            raise ValueError("balance: must equal the sum of the aging buckets")
        if self.lines and self.balance != money_sum(line.balance for line in self.lines):
            raise ValueError("balance: must equal the sum of the lines' balances")
        if any(line.service_date > self.statement_date for line in self.lines):
            raise ValueError("lines: service_date must not be after statement_date")
        check_timestamps(self.created_at, self.updated_at)
        return self
