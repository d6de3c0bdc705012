"""What every portal mapper (and the Connector's) shares: derived ids, the tracing harness that
computes ``dropped``, money, and the portal's code lists."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TypeVar, cast, get_args

from pydantic import TypeAdapter, ValidationError

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.wire.portal import TracedModel, forget, reading, unread
from carebridge.domain import (
    AllergyId,
    AppointmentId,
    ChargeId,
    ClaimId,
    ClaimStatus,
    CoverageId,
    DocumentId,
    Email,
    EncounterId,
    ImmunizationId,
    LabResultId,
    LocationId,
    MedicationId,
    PatientId,
    PayerId,
    PaymentId,
    Phone,
    ProblemId,
    ProviderId,
    RemittanceId,
    StatementId,
    VitalsId,
    to_e164,
    to_money,
)
from carebridge.domain.vocab import (
    AdministrativeGender,
    EncounterType,
    ImmunizationStatus,
    PaymentMethod,
)
from carebridge.errors import UnexpectedPayload

T = TypeVar("T")

# --- ids ----------------------------------------------------------------------------------------


def patient_id(ctx: Context, chart_number: str) -> PatientId:
    """A patient's id: derived from the chart number, the key every surface shares."""
    return PatientId.new(ctx.key("patient", chart_number.strip()))


def coverage_id(ctx: Context, policy_id: int | str) -> CoverageId:
    """A coverage's id: the v2 insurance policy's id, the key a patient's coverages share."""
    return CoverageId.new(ctx.key("coverage", str(policy_id)))


def encounter_id(ctx: Context, upstream_id: int | str) -> EncounterId:
    """An encounter's id; the portal's ``id`` N and the Connector's ``enc-N`` share the key N."""
    return EncounterId.new(ctx.key("encounter", str(upstream_id)))


def vitals_id(ctx: Context, upstream_id: int | str) -> VitalsId:
    """A vitals set's id; the portal's ``id`` N and the Connector's ``vit-N-*`` share N."""
    return VitalsId.new(ctx.key("vitals", str(upstream_id)))


def problem_id(ctx: Context, upstream_id: int | str) -> ProblemId:
    return ProblemId.new(ctx.key("problem", str(upstream_id)))


def medication_id(ctx: Context, upstream_id: int | str) -> MedicationId:
    return MedicationId.new(ctx.key("medication", str(upstream_id)))


def allergy_id(ctx: Context, upstream_id: int | str) -> AllergyId:
    return AllergyId.new(ctx.key("allergy", str(upstream_id)))


def lab_result_id(ctx: Context, upstream_id: int | str) -> LabResultId:
    return LabResultId.new(ctx.key("lab", str(upstream_id)))


def immunization_id(ctx: Context, upstream_id: int | str) -> ImmunizationId:
    return ImmunizationId.new(ctx.key("immunization", str(upstream_id)))


def document_id(ctx: Context, upstream_id: int | str) -> DocumentId:
    return DocumentId.new(ctx.key("document", str(upstream_id)))


def provider_id(ctx: Context, upstream_id: int | str) -> ProviderId:
    """A provider's id from CareCloud's provider id (the one v2 and the portal share)."""
    return ProviderId.new(ctx.key("provider", str(upstream_id)))


def location_id(ctx: Context, upstream_id: int | str) -> LocationId:
    return LocationId.new(ctx.key("location", str(upstream_id)))


def payer_id(ctx: Context, upstream_id: int | str) -> PayerId:
    return PayerId.new(ctx.key("payer", str(upstream_id)))


def appointment_id(ctx: Context, upstream_id: str) -> AppointmentId:
    """An appointment's id from its v2 GUID (what the portal's ``appointmentId`` holds)."""
    return AppointmentId.new(ctx.key("appointment", upstream_id.strip().lower()))


def charge_id(ctx: Context, upstream_id: int | str) -> ChargeId:
    """A ledger charge's id from its transaction id (the key the v2 ledger uses too)."""
    return ChargeId.new(ctx.key("transaction", str(upstream_id)))


def claim_id(ctx: Context, claim_number: str) -> ClaimId:
    return ClaimId.new(ctx.key("claim", claim_number))


def payment_id(ctx: Context, upstream_id: int | str) -> PaymentId:
    """A payment's id; an ERA's ``eraId`` is its payment id."""
    return PaymentId.new(ctx.key("payment", str(upstream_id)))


def remittance_id(ctx: Context, era_id: int | str, claim_number: str) -> RemittanceId:
    """A remittance's id: one claim on one ERA (the portal gives it no id of its own)."""
    return RemittanceId.new(ctx.key("remittance", f"{era_id}/{claim_number}"))


def statement_id(ctx: Context, statement_number: str) -> StatementId:
    return StatementId.new(ctx.key("statement", statement_number))


def _opt_encounter(ctx: Context, value: int | None) -> EncounterId | None:
    return encounter_id(ctx, value) if value is not None else None


# --- the tracing harness (shared with mapping.fhir) ----------------------------------------------


def unexpected(ctx: Context, field_path: str, message: str) -> UnexpectedPayload:
    """The error of a value the domain cannot take (the message names no PHI)."""
    return UnexpectedPayload(message, field_path=field_path, endpoint=ctx.endpoint)


def map_traced(
    payloads: TracedModel | Sequence[TracedModel],
    build: Callable[[], T],
    ctx: Context,
    *,
    skip: Sequence[str] = (),
    prefix: str = "",
) -> Mapped[T]:
    """Run ``build`` while recording its reads; ``dropped`` is what it left unread.

    Raises:
        UnexpectedPayload: the record breaks a domain rule (named by its domain field).
    """
    with reading() as reads:
        try:
            value = build()
        except ValidationError as exc:
            raise unexpected(
                ctx, _domain_field(exc), f"{exc.title} does not fit the domain model"
            ) from None
    return Mapped(value, unread(payloads, reads, skip=skip, prefix=prefix))


# A model-level rule names its field first ("billed: must equal ..."); the messages of the
# domain never echo an input, so reading the name off the message leaks nothing.
_RULE_FIELD = re.compile(r"(?:Value error, )?([a-z_][a-z0-9_]*):")


def _domain_field(exc: ValidationError) -> str:
    """The domain field a validation error is about (``model.field`` or the rule's field)."""
    errors = exc.errors(include_input=False, include_url=False)
    if not errors:
        return "(record)"
    first = errors[0]
    if first["loc"]:
        return ".".join(str(part) for part in first["loc"])
    match = _RULE_FIELD.match(first["msg"])
    return match.group(1) if match else "(record)"


def money(ctx: Context, value: str, field_path: str) -> Decimal:
    """A decimal-string amount as money."""
    try:
        return to_money(value)
    except ValueError:
        raise unexpected(ctx, field_path, "not a money amount") from None


def _required(ctx: Context, value: T | None, field_path: str) -> T:
    if value is None:
        raise unexpected(ctx, field_path, "a required value is missing")
    return value


def _phone(model: TracedModel, name: str, value: str | None) -> tuple[Phone, ...]:
    if not value:
        return ()
    try:
        return (Phone(number=to_e164(value), kind="other", is_primary=True),)
    except ValueError:
        forget(model, name)
        return ()


_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


def _email(model: TracedModel, name: str, value: str | None) -> str | None:
    if not value:
        return None
    try:
        return _EMAIL.validate_python(value)
    except ValidationError:
        forget(model, name)
        return None


GENDERS = frozenset({"male", "female", "other", "unknown"})
ENCOUNTER_TYPES = frozenset({"office_visit", "nurse_visit", "telephone", "telehealth"})
PAYMENT_METHODS: dict[str, PaymentMethod] = {
    "ach": "ach",
    "eft": "ach",
    "chk": "check",
    "check": "check",
    "card": "card",
    "credit_card": "card",
    "cash": "cash",
}
IMMUNIZATION_STATUSES = frozenset(get_args(ImmunizationStatus))


def sex(value: str) -> AdministrativeGender | None:
    """A patient's ``sex`` as the domain's gender; None when it is not one."""
    return cast(AdministrativeGender, value) if value in GENDERS else None


def encounter_type(value: str) -> EncounterType | None:
    """An ``encounterType`` as the domain's; None when the domain has no such type."""
    return cast(EncounterType, value) if value in ENCOUNTER_TYPES else None


def payment_method(value: str) -> PaymentMethod | None:
    """A payment's ``method`` (``ACH``, ``CHK``, ``card``...) as the domain's; None when unknown."""
    return PAYMENT_METHODS.get(value.strip().lower())


def immunization_status(value: str) -> ImmunizationStatus | None:
    """An immunization's FHIR-spelled ``status`` (``entered-in-error``) as the domain's."""
    word = value.replace("-", "_")
    return cast(ImmunizationStatus, word) if word in IMMUNIZATION_STATUSES else None


def claim_status(ctx: Context, value: str, field_path: str) -> ClaimStatus:
    """A claim status word as ``ClaimStatus``."""
    try:
        return ClaimStatus(value)
    except ValueError:
        raise unexpected(ctx, field_path, "not a claim status") from None
