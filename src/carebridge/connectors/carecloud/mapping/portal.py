"""Portal payloads to the normalized domain: pure functions, one per entity.

Each mapper returns ``Mapped[T]``: the domain record and ``dropped``, the upstream paths that
were present in the payload and not carried. ``dropped`` is computed, never listed by hand: the
wire models record what a mapper reads (``wire.portal.reading``), and whatever was present and
never read is reported (``wire.portal.unread``). A value that was read but could not be carried
(an unknown encounter type, a phone number that does not dial) is taken back with
``wire.portal.forget`` and reported too.

Ids are derived, not stored: ``PatientId.new(ctx.key("patient", chartNumber))`` on every surface
(the v2 and FHIR mappers use the same chart-number key), and every other entity from its own
upstream id (``ctx.key("encounter", "207")``, ``ctx.key("claim", "MGFM-0000076")`` ...), so a
record read twice, or read on another surface with the same key, gets the same id.

::

    patient summary | list item  -> Patient      (no coverages or balances: see below)
    encounter detail | list item -> Encounter    (+ VitalSigns, diagnoses, procedures, note,
                                                  addenda, signature; a list item has no note
                                                  or codes)
    vitals, problems, medications, allergies, labs, immunizations -> their records
    charge                       -> Charge
    claim detail                 -> Claim        (remittances: remittances_from_claim)
    payment | ERA                -> Payment      (the ERA's claims: remittances_from_era)
    remittance (claim's or ERA's) -> Remittance  (keyed by ERA and claim, so both merge)
    statement                    -> Statement

Not carried, so reported as dropped: the summary's ``insurance`` (it has no policy id to key a
``Coverage`` on; the v2 and FHIR surfaces have one), its ``balance`` (totals without aging cannot
form a ``Balance``) and ``counts``; embedded provider names and NPIs (a ``Provider`` comes from
its own surface); ``carcDescription`` (derived from the CARC); a claim's ``referringProvider``.

Errors: a value outside the domain's vocabulary, or a record that breaks a domain invariant,
raises ``UnexpectedPayload`` naming the field, never a bare ``ValidationError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TypeVar, cast, get_args

from pydantic import TypeAdapter, ValidationError

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.wire import portal as wire
from carebridge.connectors.carecloud.wire.portal import TracedModel, forget, reading, unread
from carebridge.domain import (
    Addendum,
    Adjustment,
    AgingBuckets,
    Allergen,
    Allergy,
    AllergyId,
    AppointmentId,
    Charge,
    ChargeId,
    Claim,
    ClaimAttachment,
    ClaimId,
    ClaimLine,
    ClaimStatus,
    ClaimStatusChange,
    ClinicalNote,
    DocumentId,
    Email,
    Encounter,
    EncounterDiagnosis,
    EncounterId,
    EncounterProcedure,
    Immunization,
    ImmunizationId,
    LabResult,
    LabResultId,
    LocationId,
    Medication,
    MedicationId,
    Patient,
    PatientId,
    PatientIdentifier,
    PayerId,
    Payment,
    PaymentId,
    PersonName,
    Phone,
    Problem,
    ProblemId,
    ProviderId,
    Remittance,
    RemittanceId,
    RemittanceLine,
    ScrubError,
    Statement,
    StatementId,
    StatementLine,
    VitalsId,
    VitalSigns,
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


# --- patients -----------------------------------------------------------------------------------


def patient_from_portal(payload: wire.PatientItemPayload, ctx: Context) -> Mapped[Patient]:
    """A patient from ``GET /portal/api/patients`` (a list item) or ``/patients/{chart}``."""

    def build() -> Patient:
        p = payload
        summary = p if isinstance(p, wire.PatientSummaryPayload) else None
        identifiers = [PatientIdentifier(kind="chart_number", value=p.chart_number)]
        if p.rcm_account_number:
            identifiers.append(PatientIdentifier(kind="account_number", value=p.rcm_account_number))
        gender = sex(p.sex)
        if gender is None:
            raise unexpected(ctx, "sex", "not an administrative gender")
        if p.status not in ("active", "inactive"):
            raise unexpected(ctx, "status", "not a patient status")
        language = None
        if summary is not None and summary.preferred_language:
            language = summary.preferred_language.strip().lower()
            if len(language) != 3 or not language.isalpha():
                forget(summary, "preferred_language")
                language = None
        provider = summary.primary_provider if summary is not None else None
        return Patient(
            id=patient_id(ctx, p.chart_number),
            name=PersonName(first=p.first_name, last=p.last_name, middle=p.middle_initial or ""),
            birth_date=p.date_of_birth,
            gender=gender,
            active=p.status == "active",
            identifiers=tuple(identifiers),
            email=_email(summary, "email", summary.email) if summary is not None else None,
            phones=_phone(summary, "phone", summary.phone) if summary is not None else (),
            last_seen_date=summary.last_seen_date if summary is not None else None,
            primary_provider_id=provider_id(ctx, provider.id) if provider is not None else None,
            primary_location_id=(
                location_id(ctx, summary.primary_location_id)
                if summary is not None and summary.primary_location_id is not None
                else None
            ),
            language=language,
            created_at=summary.created_at if summary is not None else None,
            updated_at=p.updated_at,
            sources=(ctx.source(p.chart_number),),
        )

    return map_traced(payload, build, ctx)


# --- encounters ---------------------------------------------------------------------------------


def _vitals(
    v: wire.VitalsPayload, ctx: Context, patient: PatientId, encounter: EncounterId
) -> VitalSigns:
    return VitalSigns(
        id=vitals_id(ctx, v.id),
        patient_id=patient,
        encounter_id=encounter,
        taken_at=v.taken_at,
        height_cm=v.height_cm,
        weight_kg=v.weight_kg,
        bmi=v.bmi,
        systolic_mmhg=v.systolic_mmhg,
        diastolic_mmhg=v.diastolic_mmhg,
        heart_rate_bpm=v.heart_rate_bpm,
        respiratory_rate=v.respiratory_rate,
        temperature_c=v.temperature_c,
        spo2_percent=v.spo2_pct,
        sources=(ctx.source(str(v.id)),),
    )


def vitals_from_portal(
    payload: wire.VitalsPayload, ctx: Context, *, chart_number: str
) -> Mapped[VitalSigns]:
    """A vitals set from ``GET /portal/api/patients/{chart}/vitals`` (the list is per chart)."""
    return map_traced(
        payload,
        lambda: _vitals(
            payload,
            ctx,
            patient_id(ctx, chart_number),
            encounter_id(ctx, payload.encounter_id),
        ),
        ctx,
    )


def _encounter_type(e: wire.EncounterItemPayload) -> EncounterType:
    found = encounter_type(e.encounter_type)
    if found is not None:
        return found
    forget(e, "encounter_type")  # "other" does not carry the upstream's word
    return "other"


def encounter_from_portal(payload: wire.EncounterItemPayload, ctx: Context) -> Mapped[Encounter]:
    """An encounter from ``GET /portal/api/encounters/{id}`` (note, codes, vitals, addenda and
    signature) or a list item of ``.../encounters`` (no note, codes, vitals or addenda)."""

    def build() -> Encounter:
        e = payload
        detail = e if isinstance(e, wire.EncounterDetailPayload) else None
        patient = patient_id(ctx, e.chart_number)
        this = encounter_id(ctx, e.id)
        provider = _required(ctx, e.provider, "provider")
        note = ClinicalNote()
        diagnoses: tuple[EncounterDiagnosis, ...] = ()
        procedures: tuple[EncounterProcedure, ...] = ()
        vitals: tuple[VitalSigns, ...] = ()
        addenda: tuple[Addendum, ...] = ()
        if detail is not None:
            n = detail.notes
            note = ClinicalNote(
                subjective=n.subjective or "",
                objective=n.objective or "",
                assessment=n.assessment or "",
                plan=n.plan or "",
            )
            diagnoses = tuple(
                EncounterDiagnosis(rank=d.rank, code=d.code, description=d.description)
                for d in detail.diagnoses
            )
            procedures = tuple(
                EncounterProcedure(
                    code=p.code,
                    units=p.units,
                    modifiers=tuple(p.modifiers),
                    description=p.description,
                )
                for p in detail.procedures
            )
            for v in detail.vitals:
                if v.encounter_id != e.id:
                    raise unexpected(ctx, "vitals[].encounterId", "vitals of another encounter")
            vitals = tuple(_vitals(v, ctx, patient, this) for v in detail.vitals)
            addenda = tuple(
                Addendum(
                    author_id=provider_id(ctx, _required(ctx, a.author, "addenda[].author").id),
                    text=a.text,
                    created_at=a.created_at,
                )
                for a in detail.addenda
            )
        return Encounter(
            id=this,
            patient_id=patient,
            appointment_id=(
                appointment_id(ctx, e.appointment_id) if e.appointment_id is not None else None
            ),
            provider_id=provider_id(ctx, provider.id),
            location_id=location_id(ctx, e.location_id) if e.location_id is not None else None,
            type=_encounter_type(e),
            service_date=e.service_date,
            start=e.start_time,
            end=e.end_time,
            status=e.status,
            chief_complaint=e.chief_complaint,
            note=note,
            diagnoses=diagnoses,
            procedures=procedures,
            vitals=vitals,
            addenda=addenda,
            signed_at=e.signed_at,
            signed_by=provider_id(ctx, e.signed_by.id) if e.signed_by is not None else None,
            created_at=e.created_at,
            updated_at=e.updated_at,
            sources=(ctx.source(str(e.id)),),
        )

    return map_traced(payload, build, ctx)


# --- chart lists --------------------------------------------------------------------------------


def _opt_encounter(ctx: Context, value: int | None) -> EncounterId | None:
    return encounter_id(ctx, value) if value is not None else None


def problem_from_portal(
    payload: wire.ProblemPayload, ctx: Context, *, chart_number: str
) -> Mapped[Problem]:
    """A problem-list entry (ICD-10-CM) of ``GET /portal/api/patients/{chart}/problems``."""

    def build() -> Problem:
        p = payload
        if p.code_system.replace("-", "").upper() != "ICD10CM":
            raise unexpected(ctx, "codeSystem", "a problem is coded in ICD-10-CM")
        return Problem(
            id=problem_id(ctx, p.id),
            patient_id=patient_id(ctx, chart_number),
            code=p.code,
            description=p.description,
            status=p.status,
            onset_date=p.onset_date,
            resolved_date=p.resolved_date,
            encounter_id=_opt_encounter(ctx, p.encounter_id),
            created_at=p.created_at,
            updated_at=p.updated_at,
            sources=(ctx.source(str(p.id)),),
        )

    return map_traced(payload, build, ctx)


def medication_from_portal(
    payload: wire.MedicationPayload, ctx: Context, *, chart_number: str
) -> Mapped[Medication]:
    """A medication (RxNorm) of ``GET /portal/api/patients/{chart}/medications``."""

    def build() -> Medication:
        m = payload
        return Medication(
            id=medication_id(ctx, m.id),
            patient_id=patient_id(ctx, chart_number),
            rxnorm_code=m.rxnorm_code,
            name=m.name,
            sig=m.sig,
            status=m.status,
            start_date=m.start_date,
            end_date=m.end_date,
            prescriber_id=(
                provider_id(ctx, m.prescriber_id) if m.prescriber_id is not None else None
            ),
            encounter_id=_opt_encounter(ctx, m.encounter_id),
            created_at=m.created_at,
            updated_at=m.updated_at,
            sources=(ctx.source(str(m.id)),),
        )

    return map_traced(payload, build, ctx)


def allergy_from_portal(
    payload: wire.AllergyPayload, ctx: Context, *, chart_number: str
) -> Mapped[Allergy]:
    """An allergy (RxNorm or SNOMED CT) of ``GET /portal/api/patients/{chart}/allergies``."""

    def build() -> Allergy:
        a = payload
        return Allergy(
            id=allergy_id(ctx, a.id),
            patient_id=patient_id(ctx, chart_number),
            allergen=Allergen(system=a.allergen_system, code=a.allergen_code, name=a.allergen_name),
            category=a.category,
            reaction=a.reaction,
            severity=a.severity,
            status=a.status,
            recorded_date=a.recorded_date,
            created_at=a.created_at,
            updated_at=a.updated_at,
            sources=(ctx.source(str(a.id)),),
        )

    return map_traced(payload, build, ctx)


def lab_from_portal(
    payload: wire.LabPayload, ctx: Context, *, chart_number: str
) -> Mapped[LabResult]:
    """A lab result (LOINC) of ``GET /portal/api/patients/{chart}/labs``."""

    def build() -> LabResult:
        lab = payload
        value = lab.value
        number = float(value) if isinstance(value, int | float) else None
        text = value if isinstance(value, str) else None
        unit = lab.unit if number is not None else None
        if lab.unit and number is None:
            forget(lab, "unit")  # the domain keeps units for numbers only
        ranges = lab.reference_range
        return LabResult(
            id=lab_result_id(ctx, lab.id),
            patient_id=patient_id(ctx, chart_number),
            encounter_id=_opt_encounter(ctx, lab.encounter_id),
            order_code=lab.order_code,
            loinc_code=lab.loinc_code,
            name=lab.name,
            value_number=number,
            value_text=text,
            unit=unit,
            reference_low=ranges.low if ranges is not None else None,
            reference_high=ranges.high if ranges is not None else None,
            interpretation=lab.interpretation,
            status=lab.status,
            collected_at=lab.collected_at,
            resulted_at=lab.resulted_at,
            updated_at=lab.updated_at,
            sources=(ctx.source(str(lab.id)),),
        )

    return map_traced(payload, build, ctx)


def immunization_from_portal(
    payload: wire.ImmunizationPayload, ctx: Context, *, chart_number: str
) -> Mapped[Immunization]:
    """An immunization (CVX) of ``GET /portal/api/patients/{chart}/immunizations``."""

    def build() -> Immunization:
        i = payload
        status = immunization_status(i.status)
        if status is None:
            raise unexpected(ctx, "status", "not an immunization status")
        return Immunization(
            id=immunization_id(ctx, i.id),
            patient_id=patient_id(ctx, chart_number),
            encounter_id=_opt_encounter(ctx, i.encounter_id),
            cvx_code=i.cvx_code,
            cpt_code=i.cpt_code or None,
            name=i.name,
            lot_number=i.lot_number or "",
            administered_on=i.administered_on,
            site=i.site or None,
            route=i.route or None,
            status=status,
            updated_at=i.updated_at,
            sources=(ctx.source(str(i.id)),),
        )

    return map_traced(payload, build, ctx)


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
        claim_status_code=r.claim_status_code,
        payer_claim_control_number=payer_control_number,
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
            lambda: _remittance(r, ctx, payload.claim_number, payload.payer_control_number),
            ctx,
            prefix="remittances[].",
        )

    return tuple(one(r) for r in payload.remittances)


def remittances_from_era(payload: wire.EraPayload, ctx: Context) -> tuple[Mapped[Remittance], ...]:
    """The remittances of ``GET /portal/api/eras/{id}``: one per claim the ERA pays."""

    def one(r: wire.EraClaimPayload) -> Mapped[Remittance]:
        return map_traced(
            r, lambda: _remittance(r, ctx, r.claim_number, None), ctx, prefix="claims[]."
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
