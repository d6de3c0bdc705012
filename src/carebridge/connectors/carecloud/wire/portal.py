"""Wire models of the portal: the JSON calls of CareCloud's web app (Charts and RCM).

The portal speaks like a single-page app: camelCase keys (the aliases below), instants in UTC
(``2026-11-24T15:00:00Z``), dates ``YYYY-MM-DD``, money as decimal strings (``"135.00"``, kept as
``str`` here and converted by the mappers), and its own ids: patients by ``chartNumber``,
claims by ``claimNumber``, everything else by integer ids.

::

    session     MfaRequiredPayload | AuthenticatedPayload   (POST /session, .../mfa/verify)
                MfaChallengePayload                         (POST /session/mfa/challenge)
                WhoAmIPayload                               (GET /session)
    errors      ErrorEnvelope { error: ErrorPayload }
    lists       Page[T] { items[T], page, pageSize, totalItems, totalPages }
    Charts      PatientItemPayload < PatientSummaryPayload
                EncounterItemPayload < EncounterDetailPayload
                  ├─ notes, diagnoses[], procedures[], vitals[VitalsPayload], addenda[]
                  └─ signedAt / signedBy, chargeIds[]
                ProblemPayload  MedicationPayload  AllergyPayload  LabPayload
                ImmunizationPayload  VitalsPayload
    RCM         ChargePayload
                ClaimItemPayload < ClaimDetailPayload
                  ├─ diagnoses[], lines[], attachments[], scrubErrors[], referringProvider
                  ├─ statusHistory[] (277 category codes)
                  └─ remittances[RemittancePayload] ─ lines[] ─ adjustments[] (835 CAS)
                PaymentPayload < EraPayload ─ claims[EraClaimPayload < RemittancePayload]
                StatementPayload ─ aging, lines[]
                DenialItemPayload (a ClaimItemPayload + denial)  CollectionsItemPayload

Every model here is a :class:`TracedModel`: while a mapper runs inside :func:`reading`, the
fields it reads are recorded, and :func:`unread` then lists the fields that were present in the
payload but never read. That list is what a mapping reports as ``dropped``: computed from the
payload and the mapper's own reads, never kept by hand. The FHIR wire models share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import Field

from carebridge.connectors.carecloud.wire import WireModel

# --- read tracing ------------------------------------------------------------------------------

Reads = set[tuple[int, str]]
"""What a mapper read: ``(id(model), field name)`` pairs."""

_READS: ContextVar[Reads | None] = ContextVar("carebridge_wire_reads", default=None)


class TracedModel(WireModel):
    """A wire model that records which of its fields are read while :func:`reading` is active.

    ``trace_exempt`` names fields that are structure rather than data (a FHIR
    ``resourceType``), which :func:`unread` never reports.
    """

    trace_exempt: ClassVar[frozenset[str]] = frozenset()

    if not TYPE_CHECKING:
        # Only at run time: to mypy, attribute access keeps its declared types.
        def __getattribute__(self, name: str) -> Any:
            if name[:1] != "_":
                reads = _READS.get()
                if reads is not None:
                    reads.add((id(self), name))
            return object.__getattribute__(self, name)


def forget(model: TracedModel, name: str) -> None:
    """Take back a read: the mapper looked at ``name`` but could not carry its value."""
    reads = _READS.get()
    if reads is not None:
        reads.discard((id(model), name))


@contextmanager
def reading() -> Iterator[Reads]:
    """Record the wire fields read inside the block (nested blocks share the outer record)."""
    outer = _READS.get()
    if outer is not None:
        yield outer
        return
    reads: Reads = set()
    token = _READS.set(reads)
    try:
        yield reads
    finally:
        _READS.reset(token)


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and not value)


def _members(model: TracedModel) -> Iterator[tuple[str, str, object]]:
    """``(attribute, upstream name, value)`` of every field and extra that holds something."""
    exempt = type(model).trace_exempt
    for name, info in type(model).model_fields.items():
        value = model.__dict__.get(name)
        if name not in exempt and not _is_empty(value):
            yield name, info.alias or name, value
    for key, value in (model.__pydantic_extra__ or {}).items():
        if not _is_empty(value):
            yield key, key, value


def _leaves(value: object, path: str, out: list[str]) -> None:
    """Every non-empty leaf under ``value`` (a model, raw JSON or a scalar) as a path."""
    if isinstance(value, TracedModel):
        for _, upstream, item in _members(value):
            _leaves(item, f"{path}.{upstream}", out)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not _is_empty(item):
                _leaves(item, f"{path}.{key}", out)
    elif isinstance(value, list | tuple):
        for item in value:
            if not _is_empty(item):
                _leaves(item, f"{path}[]", out)
    else:
        out.append(path)


def _unread_model(model: TracedModel, reads: Reads, prefix: str, out: list[str]) -> None:
    for name, upstream, value in _members(model):
        path = prefix + upstream
        if (id(model), name) not in reads:
            _leaves(value, path, out)
        elif isinstance(value, TracedModel):
            _unread_model(value, reads, path + ".", out)
        elif isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, TracedModel):
                    _unread_model(item, reads, path + "[].", out)


def unread(
    payloads: TracedModel | Iterable[TracedModel],
    reads: Reads,
    *,
    skip: Sequence[str] = (),
    prefix: str = "",
) -> tuple[str, ...]:
    """The upstream paths of the leaves present in ``payloads`` and never read, sorted.

    Paths are dotted upstream names, ``[]`` marking an array (``lines[].adjustments[].carc``),
    each starting with ``prefix`` (where the payloads sit in their response). A field that was
    read counts as carried, and the models under it are walked in turn; an unread field reports
    every non-empty leaf under it. Empty values (null, ``""``, ``[]``, ``{}``) carry nothing and
    are never reported; neither are the paths in ``skip`` and what lies under them (the parts
    another mapper carries).
    """
    found: list[str] = []
    items = [payloads] if isinstance(payloads, TracedModel) else list(payloads)
    for payload in items:
        _unread_model(payload, reads, prefix, found)
    skipped = [prefix + s for s in skip]
    kept = {
        path
        for path in found
        if not any(path == s or path.startswith((s + ".", s + "[]")) for s in skipped)
    }
    return tuple(sorted(kept))


# --- session ------------------------------------------------------------------------------------


class PracticePayload(TracedModel):
    id: int
    name: str
    business_entity_id: str = Field(alias="businessEntityId")


class UserPayload(TracedModel):
    id: int
    username: str
    first_name: str = Field(alias="firstName")
    last_name: str = Field(alias="lastName")
    practice: PracticePayload


class MfaRequiredPayload(TracedModel):
    """``POST /portal/api/session``: the password was right; a second factor is next."""

    status: Literal["mfa_required"]
    methods: list[str]
    destinations: dict[str, str] = Field(default_factory=dict)
    code_ttl: int | None = Field(default=None, alias="codeTtl")


class MfaChallengePayload(TracedModel):
    """``POST /portal/api/session/mfa/challenge``."""

    status: Literal["challenge_ready", "challenge_sent"]
    method: str
    destination: str
    expires_in: int | None = Field(default=None, alias="expiresIn")


class AuthenticatedPayload(TracedModel):
    """A verified session (sign-in with a remembered device, or ``.../mfa/verify``)."""

    status: Literal["authenticated"]
    csrf_token: str = Field(alias="csrfToken", repr=False)
    user: UserPayload
    idle_timeout: int | None = Field(default=None, alias="idleTimeout")
    expires_at: datetime | None = Field(default=None, alias="expiresAt")
    signed_in_at: datetime | None = Field(default=None, alias="signedInAt")
    device_token: str | None = Field(default=None, alias="deviceToken", repr=False)
    device_expires_at: datetime | None = Field(default=None, alias="deviceExpiresAt")


class WhoAmIPayload(AuthenticatedPayload):
    """``GET /portal/api/session``: the signed-in user and the session's clocks."""

    last_seen_at: datetime | None = Field(default=None, alias="lastSeenAt")
    idle_expires_at: datetime | None = Field(default=None, alias="idleExpiresAt")


SessionPayload = MfaRequiredPayload | AuthenticatedPayload
"""What ``POST /portal/api/session`` answers with 200 (tell them apart by ``status``)."""


# --- errors -------------------------------------------------------------------------------------


class FieldErrorPayload(TracedModel):
    """One objection of the claim scrubber."""

    field: str
    message: str


class ErrorPayload(TracedModel):
    """The ``error`` object: a stable ``code``, a message without PHI, and context."""

    code: str
    message: str
    field: str | None = None
    methods: list[str] | None = None
    """``mfa_required``: the factors that may answer."""
    reason: str | None = None
    """``session_expired``: idle_timeout, absolute_timeout, evicted, killed, logout, none."""
    locked_until: datetime | None = Field(default=None, alias="lockedUntil")
    errors: list[FieldErrorPayload] | None = None
    """``validation_failed`` from the scrubber: every objection."""
    claim_status: str | None = Field(default=None, alias="claimStatus")


class ErrorEnvelope(TracedModel):
    """Every portal error: ``{"error": {"code", "message", "field"?}}``."""

    error: ErrorPayload


# --- lists --------------------------------------------------------------------------------------

ItemT = TypeVar("ItemT")


class Page(TracedModel, Generic[ItemT]):
    """One page of a portal list (see ``paging.portal_next``)."""

    items: list[ItemT]
    page: int
    page_size: int = Field(alias="pageSize")
    total_items: int = Field(alias="totalItems")
    total_pages: int = Field(alias="totalPages")


# --- shared references --------------------------------------------------------------------------


class ProviderRefPayload(TracedModel):
    """A provider as the portal embeds it: id, display name and NPI."""

    id: int
    name: str | None = None
    npi: str | None = None


class PayerRefPayload(TracedModel):
    id: int
    name: str | None = None


# --- Charts: patients ---------------------------------------------------------------------------


class PatientItemPayload(TracedModel):
    """A patient in ``GET /portal/api/patients``."""

    chart_number: str = Field(alias="chartNumber")
    rcm_account_number: str | None = Field(alias="rcmAccountNumber")
    first_name: str = Field(alias="firstName", repr=False)
    last_name: str = Field(alias="lastName", repr=False)
    middle_initial: str | None = Field(default=None, alias="middleInitial", repr=False)
    date_of_birth: date | None = Field(alias="dateOfBirth", repr=False)
    sex: str
    status: str
    updated_at: datetime = Field(alias="updatedAt")


class InsuranceSummaryPayload(TracedModel):
    priority: int
    payer: PayerRefPayload
    member_number: str = Field(alias="memberNumber", repr=False)
    group_number: str | None = Field(default=None, alias="groupNumber")
    policy_type: str = Field(alias="policyType")
    effective_from: date | None = Field(default=None, alias="effectiveFrom")
    effective_to: date | None = Field(default=None, alias="effectiveTo")


class BalanceSummaryPayload(TracedModel):
    patient: str
    insurance: str
    total: str


class ChartCountsPayload(TracedModel):
    active_problems: int = Field(alias="activeProblems")
    active_medications: int = Field(alias="activeMedications")
    active_allergies: int = Field(alias="activeAllergies")
    open_encounters: int = Field(alias="openEncounters")


class PatientSummaryPayload(PatientItemPayload):
    """``GET /portal/api/patients/{chartNumber}``: the chart's summary."""

    email: str | None = Field(default=None, repr=False)
    phone: str | None = Field(default=None, repr=False)
    last_seen_date: date | None = Field(default=None, alias="lastSeenDate")
    primary_provider: ProviderRefPayload | None = Field(default=None, alias="primaryProvider")
    primary_location_id: int | None = Field(default=None, alias="primaryLocationId")
    preferred_language: str | None = Field(default=None, alias="preferredLanguage")
    created_at: datetime | None = Field(default=None, alias="createdAt")
    insurance: list[InsuranceSummaryPayload] = Field(default_factory=list)
    balance: BalanceSummaryPayload | None = None
    counts: ChartCountsPayload | None = None


# --- Charts: encounters -------------------------------------------------------------------------


class VitalsPayload(TracedModel):
    """One set of vital signs (``.../vitals`` and an encounter's ``vitals``)."""

    id: int
    encounter_id: int = Field(alias="encounterId")
    taken_at: datetime = Field(alias="takenAt")
    height_cm: float | None = Field(default=None, alias="heightCm")
    weight_kg: float | None = Field(default=None, alias="weightKg")
    bmi: float | None = None
    systolic_mmhg: int | None = Field(default=None, alias="systolicMmHg")
    diastolic_mmhg: int | None = Field(default=None, alias="diastolicMmHg")
    heart_rate_bpm: int | None = Field(default=None, alias="heartRateBpm")
    respiratory_rate: int | None = Field(default=None, alias="respiratoryRate")
    temperature_c: float | None = Field(default=None, alias="temperatureC")
    spo2_pct: int | None = Field(default=None, alias="spo2Pct")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class EncounterItemPayload(TracedModel):
    """An encounter in ``GET /portal/api/patients/{chartNumber}/encounters``."""

    id: int
    chart_number: str = Field(alias="chartNumber")
    appointment_id: str | None = Field(default=None, alias="appointmentId")
    encounter_type: str = Field(alias="type")
    service_date: date = Field(alias="date")
    start_time: datetime = Field(alias="startTime")
    end_time: datetime | None = Field(default=None, alias="endTime")
    status: str
    chief_complaint: str = Field(default="", alias="chiefComplaint", repr=False)
    provider: ProviderRefPayload | None
    location_id: int | None = Field(default=None, alias="locationId")
    signed_at: datetime | None = Field(default=None, alias="signedAt")
    signed_by: ProviderRefPayload | None = Field(default=None, alias="signedBy")
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class NotesPayload(TracedModel):
    """A SOAP note; sections not yet written are absent."""

    subjective: str | None = Field(default=None, repr=False)
    objective: str | None = Field(default=None, repr=False)
    assessment: str | None = Field(default=None, repr=False)
    plan: str | None = Field(default=None, repr=False)


class DiagnosisPayload(TracedModel):
    rank: int
    code: str
    description: str = ""


class ProcedurePayload(TracedModel):
    code: str
    units: int = 1
    modifiers: list[str] = Field(default_factory=list)
    description: str = ""


class AddendumPayload(TracedModel):
    id: int
    author: ProviderRefPayload | None
    text: str = Field(repr=False)
    created_at: datetime = Field(alias="createdAt")


class EncounterDetailPayload(EncounterItemPayload):
    """``GET /portal/api/encounters/{id}`` (also what the encounter writes answer)."""

    notes: NotesPayload = Field(default_factory=NotesPayload)
    diagnoses: list[DiagnosisPayload] = Field(default_factory=list)
    procedures: list[ProcedurePayload] = Field(default_factory=list)
    vitals: list[VitalsPayload] = Field(default_factory=list)
    addenda: list[AddendumPayload] = Field(default_factory=list)
    charge_ids: list[int] = Field(default_factory=list, alias="chargeIds")


# --- Charts: lists ------------------------------------------------------------------------------


class ProblemPayload(TracedModel):
    id: int
    code: str
    code_system: str = Field(alias="codeSystem")
    description: str = ""
    status: str
    onset_date: date | None = Field(default=None, alias="onsetDate")
    resolved_date: date | None = Field(default=None, alias="resolvedDate")
    encounter_id: int | None = Field(default=None, alias="encounterId")
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class MedicationPayload(TracedModel):
    id: int
    rxnorm_code: str = Field(alias="rxnormCode")
    name: str
    sig: str = ""
    status: str
    start_date: date = Field(alias="startDate")
    end_date: date | None = Field(default=None, alias="endDate")
    prescriber_id: int | None = Field(default=None, alias="prescriberId")
    encounter_id: int | None = Field(default=None, alias="encounterId")
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class AllergyPayload(TracedModel):
    id: int
    allergen_code: str = Field(alias="allergenCode")
    allergen_system: str = Field(alias="allergenSystem")
    allergen_name: str = Field(alias="allergenName")
    category: str
    reaction: str = Field(default="", repr=False)
    severity: str | None = None
    status: str
    recorded_date: date = Field(alias="recordedDate")
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class ReferenceRangePayload(TracedModel):
    low: float | None = None
    high: float | None = None


class LabPayload(TracedModel):
    id: int
    encounter_id: int | None = Field(default=None, alias="encounterId")
    order_code: str = Field(alias="orderCode")
    loinc_code: str = Field(alias="loincCode")
    name: str
    value: float | str | None = Field(default=None, repr=False)
    """A number, or text (``"Negative"``)."""
    unit: str | None = None
    reference_range: ReferenceRangePayload | None = Field(default=None, alias="referenceRange")
    interpretation: str | None = None
    status: str
    collected_at: datetime = Field(alias="collectedAt")
    resulted_at: datetime | None = Field(default=None, alias="resultedAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class ImmunizationPayload(TracedModel):
    id: int
    encounter_id: int | None = Field(default=None, alias="encounterId")
    cvx_code: str = Field(alias="cvxCode")
    cpt_code: str | None = Field(default=None, alias="cptCode")
    name: str
    lot_number: str | None = Field(default=None, alias="lotNumber")
    administered_on: date = Field(alias="administeredOn")
    site: str | None = None
    route: str | None = None
    status: str
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


# --- RCM: charges -------------------------------------------------------------------------------


class ChargePayload(TracedModel):
    """A ledger charge in ``GET /portal/api/charges``."""

    id: int
    chart_number: str = Field(alias="chartNumber")
    service_date: date | None = Field(alias="serviceDate")
    posting_date: date = Field(alias="postingDate")
    procedure_code: str | None = Field(default=None, alias="procedureCode")
    modifiers: list[str] = Field(default_factory=list)
    units: int | None = None
    description: str = ""
    diagnosis_codes: list[str] = Field(default_factory=list, alias="diagnosisCodes")
    amount: str
    balance: str
    balance_type: str = Field(alias="balanceType")
    status: str
    billed: bool
    encounter_id: int | None = Field(default=None, alias="encounterId")
    provider_id: int | None = Field(default=None, alias="providerId")
    location_id: int | None = Field(default=None, alias="locationId")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


# --- RCM: claims and remittances ----------------------------------------------------------------


class ClaimPatientPayload(TracedModel):
    chart_number: str = Field(alias="chartNumber")
    rcm_account_number: str | None = Field(default=None, alias="rcmAccountNumber")


class ClaimItemPayload(TracedModel):
    """A claim in ``GET /portal/api/claims``."""

    claim_number: str = Field(alias="claimNumber")
    status: str
    patient: ClaimPatientPayload
    payer: PayerRefPayload
    insurance_policy_id: int | None = Field(default=None, alias="insurancePolicyId")
    """The patient's insurance policy billed (837P loop 2000B), a v2 ``insurance_policies`` id."""
    rendering_provider: ProviderRefPayload | None = Field(alias="renderingProvider")
    encounter_id: int | None = Field(default=None, alias="encounterId")
    location_id: int | None = Field(default=None, alias="locationId")
    service_from: date = Field(alias="serviceFrom")
    service_to: date = Field(alias="serviceTo")
    billed_amount: str = Field(alias="billedAmount")
    paid_amount: str = Field(alias="paidAmount")
    patient_responsibility: str = Field(alias="patientResponsibility")
    payer_control_number: str | None = Field(default=None, alias="payerControlNumber")
    submitted_at: datetime | None = Field(default=None, alias="submittedAt")
    adjudicated_at: datetime | None = Field(default=None, alias="adjudicatedAt")
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class ClaimDiagnosisPayload(TracedModel):
    pointer: int
    code: str
    description: str = ""


class ClaimLinePayload(TracedModel):
    line_number: int = Field(alias="lineNumber")
    charge_id: int = Field(alias="chargeId")
    procedure_code: str = Field(alias="procedureCode")
    modifiers: list[str] = Field(default_factory=list)
    units: int = 1
    service_date: date = Field(alias="serviceDate")
    billed_amount: str = Field(alias="billedAmount")
    diagnosis_pointers: list[int] = Field(default_factory=list, alias="diagnosisPointers")


class AttachmentPayload(TracedModel):
    document_id: int = Field(alias="documentId")
    attachment_type: str = Field(alias="type")
    """An X12 PWK01 report type code (``09``, ``LA``, ``M1`` ...)."""


class ReferringProviderPayload(TracedModel):
    npi: str
    name: str | None = None


class StatusChangePayload(TracedModel):
    status: str
    category_code: str | None = Field(default=None, alias="categoryCode")
    """The X12 277 claim status category (``A1``, ``A2``, ``A3``, ``P1``, ``F1``, ``F2`` ...)."""
    note: str = ""
    at: datetime


class AdjustmentPayload(TracedModel):
    """One 835 CAS adjustment."""

    group_code: str = Field(alias="groupCode")
    carc: str
    carc_description: str | None = Field(default=None, alias="carcDescription")
    rarc: str | None = None
    amount: str


class RemittanceLinePayload(TracedModel):
    """One 835 SVC service line."""

    line_number: int | None = Field(alias="lineNumber")
    procedure_code: str | None = Field(default=None, alias="procedureCode")
    billed_amount: str = Field(alias="billedAmount")
    allowed_amount: str = Field(alias="allowedAmount")
    paid_amount: str = Field(alias="paidAmount")
    adjustments: list[AdjustmentPayload] = Field(default_factory=list)


class RemittancePayload(TracedModel):
    """One claim on an ERA (835 CLP), as a claim's ``remittances`` lists it."""

    era_id: int = Field(alias="eraId")
    claim_status_code: str = Field(alias="claimStatusCode")
    payer_claim_control_number: str | None = Field(default=None, alias="payerClaimControlNumber")
    """835 CLP07, the payer's own number for the claim."""
    billed_amount: str = Field(alias="billedAmount")
    paid_amount: str = Field(alias="paidAmount")
    patient_responsibility: str = Field(alias="patientResponsibility")
    received_at: datetime = Field(alias="receivedAt")
    lines: list[RemittanceLinePayload] = Field(default_factory=list)


class ClaimDetailPayload(ClaimItemPayload):
    """``GET /portal/api/claims/{claimNumber}`` (also what the claim writes answer)."""

    diagnoses: list[ClaimDiagnosisPayload] = Field(default_factory=list)
    lines: list[ClaimLinePayload] = Field(default_factory=list)
    attachments: list[AttachmentPayload] = Field(default_factory=list)
    scrub_errors: list[FieldErrorPayload] = Field(default_factory=list, alias="scrubErrors")
    referring_provider: ReferringProviderPayload | None = Field(
        default=None, alias="referringProvider"
    )
    status_history: list[StatusChangePayload] = Field(default_factory=list, alias="statusHistory")
    remittances: list[RemittancePayload] = Field(default_factory=list)


# --- RCM: payments, ERAs and statements ---------------------------------------------------------


class PaymentPatientPayload(TracedModel):
    chart_number: str = Field(alias="chartNumber")


class PaymentPayload(TracedModel):
    """A payment in ``GET /portal/api/payments``: a payer's ERA or a patient's payment."""

    id: int
    kind: str
    payer: PayerRefPayload | None = None
    patient: PaymentPatientPayload | None = None
    trace_number: str = Field(alias="traceNumber")
    method: str
    payment_date: date = Field(alias="paymentDate")
    amount: str
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class EraClaimPayload(RemittancePayload):
    """One claim an ERA pays, in ``GET /portal/api/eras/{id}``."""

    claim_number: str = Field(alias="claimNumber")
    chart_number: str = Field(alias="chartNumber")


class EraPayload(PaymentPayload):
    """``GET /portal/api/eras/{id}``: a payer's ERA (835) with every claim it pays."""

    claims: list[EraClaimPayload] = Field(default_factory=list)


class AgingPayload(TracedModel):
    current: str = "0.00"
    over30: str = "0.00"
    over60: str = "0.00"
    over90: str = "0.00"
    over120: str = "0.00"


class StatementLinePayload(TracedModel):
    charge_id: int = Field(alias="chargeId")
    service_date: date = Field(alias="serviceDate")
    code: str | None = None
    amount: str
    balance: str


class StatementPayload(TracedModel):
    """A patient statement (``GET /portal/api/statements`` and ``/statements/{number}``)."""

    statement_number: str = Field(alias="statementNumber")
    chart_number: str = Field(alias="chartNumber")
    rcm_account_number: str | None = Field(default=None, alias="rcmAccountNumber")
    statement_date: date = Field(alias="statementDate")
    due_date: date = Field(alias="dueDate")
    balance: str
    status: str
    aging: AgingPayload
    lines: list[StatementLinePayload] = Field(default_factory=list)
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


# --- RCM: work queues ---------------------------------------------------------------------------


class DenialPayload(TracedModel):
    group_code: str = Field(alias="groupCode")
    carc: str
    carc_description: str | None = Field(default=None, alias="carcDescription")
    rarc: str | None = None


class DenialItemPayload(ClaimItemPayload):
    """A claim in ``GET /portal/api/workqueues/denials`` (oldest first)."""

    denial: DenialPayload | None = None
    days_since_denial: int = Field(alias="daysSinceDenial")
    appealable: bool


class CollectionsItemPayload(TracedModel):
    """A patient in ``GET /portal/api/workqueues/collections``."""

    chart_number: str = Field(alias="chartNumber")
    rcm_account_number: str | None = Field(default=None, alias="rcmAccountNumber")
    patient_balance: str = Field(alias="patientBalance")
    balance_over_90: str = Field(alias="balanceOver90")
    oldest_service_date: date | None = Field(default=None, alias="oldestServiceDate")
    reasons: list[str] = Field(default_factory=list)
    statement: StatementPayload | None = None
