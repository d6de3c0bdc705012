"""Connector Encounter, Condition, AllergyIntolerance, MedicationRequest, Immunization and
DocumentReference resources to the domain."""

from __future__ import annotations

from datetime import tzinfo

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.mapping.fhir.base import (
    CPT,
    CVX,
    ICD10CM,
    LOINC,
    NO_KEYS,
    RXNORM,
    SNOMED,
    PatientIndex,
    ReferenceKeys,
    _code,
    _coding,
    _date,
    _instant,
    _label,
    _required,
    _system_is,
    _updated,
    reference_id,
    row_key,
)
from carebridge.connectors.carecloud.mapping.portal.base import (
    allergy_id,
    document_id,
    encounter_id,
    immunization_id,
    map_traced,
    medication_id,
    patient_id,
    problem_id,
    unexpected,
)
from carebridge.connectors.carecloud.wire import fhir as w
from carebridge.connectors.carecloud.wire.portal import forget
from carebridge.domain import (
    Allergen,
    Allergy,
    Document,
    Encounter,
    EncounterDiagnosis,
    EncounterId,
    Immunization,
    Medication,
    Problem,
    ProviderId,
)

# --- encounters ---------------------------------------------------------------------------------

ENCOUNTER_STATUS = {
    "finished": "signed",
    "in-progress": "open",
    "arrived": "open",
    "triaged": "open",
    "onleave": "open",
}
ENCOUNTER_TYPES = {"office_visit", "nurse_visit", "telephone", "telehealth"}
ENCOUNTER_CLASS = {"AMB": "office_visit", "VR": "telehealth"}


def encounter_key(resource: w.Encounter) -> str:
    """The upstream encounter id: its ``encounter-id`` identifier, else ``enc-<id>``."""
    for ident in resource.identifier:
        if ident.value and _system_is(ident.system, "encounter-id"):
            return ident.value
    return row_key(resource.id, "enc")


def _encounter_type(e: w.Encounter) -> str:
    text = (e.type[0].text or "") if e.type else ""
    word = text.strip().lower().replace(" ", "_").replace("-", "_")
    if word in ENCOUNTER_TYPES:
        return word
    if e.type:
        forget(e, "type")
    by_class = ENCOUNTER_CLASS.get(e.encounter_class.code or "") if e.encounter_class else None
    return by_class or "other"


def encounter_from_fhir(
    resource: w.Encounter,
    ctx: Context,
    patients: PatientIndex,
    *,
    practice_tz: tzinfo,
    keys: ReferenceKeys = NO_KEYS,
) -> Mapped[Encounter]:
    """An Encounter; keyed like the portal's (``enc-207`` and 207 are one encounter).

    The Connector carries neither the note, the billed procedures (only the first, as the
    encounter type's CPT coding, reported as dropped) nor the signature. A ``finished``
    encounter is the domain's ``signed`` one, which names a signer and a time: the primary
    performer and ``meta.lastUpdated`` (no earlier than the signature) stand in for them, so a
    store merging the portal's read should prefer the portal's signature.

    Args:
        practice_tz: the practice's time zone; the date of service is the local date of
            ``period.start``.
    """

    def build() -> Encounter:
        e = resource
        chart = patients.chart_number(ctx, e.subject, "subject")
        status = ENCOUNTER_STATUS.get(e.status)
        if status is None:
            raise unexpected(ctx, "status", "an encounter status the domain does not know")
        start = _required(ctx, _instant(e.period.start if e.period else None), "period.start")
        performer = next(
            (
                p.individual
                for p in e.participant
                if p.individual is not None and any(_code(t) == "PPRF" for t in p.type)
            ),
            None,
        ) or next((p.individual for p in e.participant if p.individual is not None), None)
        practitioner = _required(ctx, reference_id(performer, "Practitioner"), "participant")
        provider = keys.provider(ctx, practitioner)
        place = next(
            (
                reference_id(loc.location, "Location")
                for loc in e.location
                if reference_id(loc.location, "Location")
            ),
            None,
        )
        diagnoses: list[EncounterDiagnosis] = []
        complaint = ""
        for reason in e.reason_code:
            coding = _coding(reason, ICD10CM)
            if coding is not None:
                diagnoses.append(
                    EncounterDiagnosis(
                        rank=len(diagnoses) + 1,
                        code=coding.code,
                        description=_label(reason, coding),
                    )
                )
            elif not complaint and reason.text:
                complaint = reason.text
        signed_at = None
        if status == "signed":
            signed_at = max(_updated(e) or start, start)
        return Encounter(
            id=encounter_id(ctx, encounter_key(e)),
            patient_id=patient_id(ctx, chart),
            provider_id=provider,
            location_id=keys.location(ctx, place) if place else None,
            type=_encounter_type(e),
            service_date=start.astimezone(practice_tz).date(),
            start=start,
            end=_instant(e.period.end if e.period else None),
            status=status,
            chief_complaint=complaint,
            diagnoses=tuple(diagnoses),
            signed_at=signed_at,
            signed_by=provider if signed_at is not None else None,
            updated_at=_updated(e),
            sources=(ctx.source(e.id),),
        )

    return map_traced(resource, build, ctx)


def _encounter_ref(ctx: Context, reference: w.Reference | None) -> EncounterId | None:
    logical = reference_id(reference, "Encounter")
    return encounter_id(ctx, row_key(logical, "enc")) if logical else None


def _practitioner_ref(
    ctx: Context, keys: ReferenceKeys, reference: w.Reference | None
) -> ProviderId | None:
    logical = reference_id(reference, "Practitioner")
    return keys.provider(ctx, logical) if logical else None


# --- chart lists --------------------------------------------------------------------------------

CONDITION_STATUS = {
    "active": "active",
    "recurrence": "active",
    "relapse": "active",
    "inactive": "inactive",
    "remission": "inactive",
    "resolved": "resolved",
}


def problem_from_fhir(
    resource: w.Condition, ctx: Context, patients: PatientIndex
) -> Mapped[Problem]:
    """A Condition (problem-list item) coded in ICD-10-CM."""

    def build() -> Problem:
        c = resource
        chart = patients.chart_number(ctx, c.subject, "subject")
        coding = _coding(c.code, ICD10CM)
        if coding is None:
            raise unexpected(ctx, "code", "a problem is coded in ICD-10-CM")
        status = CONDITION_STATUS.get(_code(c.clinical_status) or "active")
        if status is None:
            raise unexpected(ctx, "clinicalStatus", "a clinical status the domain does not know")
        return Problem(
            id=problem_id(ctx, row_key(c.id, "prb")),
            patient_id=patient_id(ctx, chart),
            code=coding.code,
            description=_label(c.code, coding),
            status=status,
            onset_date=_date(c.onset_date_time),
            resolved_date=_date(c.abatement_date_time),
            encounter_id=_encounter_ref(ctx, c.encounter),
            created_at=_instant(c.recorded_date),
            updated_at=_updated(c),
            sources=(ctx.source(c.id),),
        )

    return map_traced(resource, build, ctx)


def allergy_from_fhir(
    resource: w.AllergyIntolerance, ctx: Context, patients: PatientIndex
) -> Mapped[Allergy]:
    """An AllergyIntolerance coded in RxNorm (drugs) or SNOMED CT."""

    def build() -> Allergy:
        a = resource
        chart = patients.chart_number(ctx, a.patient, "patient")
        coding = _coding(a.code, RXNORM, SNOMED)
        if coding is None:
            raise unexpected(ctx, "code", "an allergen is coded in RxNorm or SNOMED CT")
        reaction = next(iter(a.reaction), None)
        manifestations = (
            [_label(mf, next(iter(mf.coding), None)) for mf in reaction.manifestation]
            if reaction is not None
            else []
        )
        return Allergy(
            id=allergy_id(ctx, row_key(a.id, "alg")),
            patient_id=patient_id(ctx, chart),
            allergen=Allergen(
                system="rxnorm" if coding.system == RXNORM else "snomed",
                code=coding.code,
                name=_label(a.code, coding) or coding.code,
            ),
            category=_required(ctx, next(iter(a.category), None), "category"),
            reaction="; ".join(m for m in manifestations if m),
            severity=reaction.severity if reaction is not None else None,
            status=_code(a.clinical_status) or "active",
            recorded_date=_required(ctx, _date(a.recorded_date), "recordedDate"),
            updated_at=_updated(a),
            sources=(ctx.source(a.id),),
        )

    return map_traced(resource, build, ctx)


MEDICATION_STATUS = {
    "active": "active",
    "on-hold": "on_hold",
    "completed": "completed",
    "stopped": "stopped",
    "cancelled": "stopped",
    "entered-in-error": "entered_in_error",
}


def medication_from_fhir(
    resource: w.MedicationRequest,
    ctx: Context,
    patients: PatientIndex,
    keys: ReferenceKeys = NO_KEYS,
) -> Mapped[Medication]:
    """A MedicationRequest coded in RxNorm."""

    def build() -> Medication:
        m = resource
        chart = patients.chart_number(ctx, m.subject, "subject")
        coding = _coding(m.medication_codeable_concept, RXNORM)
        if coding is None:
            raise unexpected(ctx, "medicationCodeableConcept", "a medication is coded in RxNorm")
        status = MEDICATION_STATUS.get(m.status)
        if status is None:
            raise unexpected(ctx, "status", "a medication status the domain does not know")
        validity = m.dispense_request.validity_period if m.dispense_request else None
        return Medication(
            id=medication_id(ctx, row_key(m.id, "med")),
            patient_id=patient_id(ctx, chart),
            rxnorm_code=coding.code,
            name=_label(m.medication_codeable_concept, coding) or coding.code,
            sig=next((d.text for d in m.dosage_instruction if d.text), ""),
            status=status,
            start_date=_required(ctx, _date(m.authored_on), "authoredOn"),
            end_date=_date(validity.end) if validity is not None else None,
            prescriber_id=_practitioner_ref(ctx, keys, m.requester),
            encounter_id=_encounter_ref(ctx, m.encounter),
            updated_at=_updated(m),
            sources=(ctx.source(m.id),),
        )

    return map_traced(resource, build, ctx)


IMMUNIZATION_SITES = {
    "LA",
    "RA",
    "LD",
    "RD",
    "LT",
    "RT",
    "LVL",
    "RVL",
    "LG",
    "RG",
    "LUA",
    "RUA",
    "BN",
    "LN",
    "RN",
}
IMMUNIZATION_ROUTES = {"IM", "SC", "ID", "IN", "NS", "PO", "IV", "OTH"}


def _table_code(
    owner: w.Resource, name: str, concept: w.CodeableConcept | None, allowed: set[str]
) -> str | None:
    code = _code(concept)
    if code is None:
        return None
    if code in allowed:
        return code
    forget(owner, name)
    return None


def immunization_from_fhir(
    resource: w.Immunization, ctx: Context, patients: PatientIndex
) -> Mapped[Immunization]:
    """An Immunization coded in CVX (with the CPT product code when present)."""

    def build() -> Immunization:
        i = resource
        chart = patients.chart_number(ctx, i.patient, "patient")
        cvx = _coding(i.vaccine_code, CVX)
        if cvx is None:
            raise unexpected(ctx, "vaccineCode", "a vaccine is coded in CVX")
        cpt = _coding(i.vaccine_code, CPT)
        return Immunization(
            id=immunization_id(ctx, row_key(i.id, "imm")),
            patient_id=patient_id(ctx, chart),
            encounter_id=_encounter_ref(ctx, i.encounter),
            cvx_code=cvx.code,
            cpt_code=cpt.code if cpt is not None else None,
            name=i.vaccine_code.text or cvx.display or cvx.code,
            lot_number=i.lot_number or "",
            administered_on=_required(ctx, _date(i.occurrence_date_time), "occurrenceDateTime"),
            site=_table_code(i, "site", i.site, IMMUNIZATION_SITES),
            route=_table_code(i, "route", i.route, IMMUNIZATION_ROUTES),
            status=i.status.replace("-", "_"),
            updated_at=_updated(i),
            sources=(ctx.source(i.id),),
        )

    return map_traced(resource, build, ctx)


def document_from_fhir(
    resource: w.DocumentReference, ctx: Context, patients: PatientIndex
) -> Mapped[Document]:
    """A DocumentReference's metadata (its content is fetched separately)."""

    def build() -> Document:
        d = resource
        chart = patients.chart_number(ctx, d.subject, "subject")
        upstream = next(
            (i.value for i in d.identifier if i.value and _system_is(i.system, "document-id")),
            None,
        ) or row_key(d.id, "doc")
        attachment = _required(ctx, next(iter(d.content), None), "content").attachment
        loinc = _coding(d.type, LOINC)
        period = d.context.period if d.context is not None else None
        created = _instant(d.date)
        return Document(
            id=document_id(ctx, upstream),
            patient_id=patient_id(ctx, chart),
            name=_required(ctx, attachment.title, "content[].attachment.title"),
            description=d.description or "",
            source_name=(d.type.text or "") if d.type is not None else "",
            type_loinc=loinc.code if loinc is not None else None,
            document_date=_required(
                ctx, _date(period.start if period else None) or _date(d.date), "context.period"
            ),
            content_type=_required(
                ctx, attachment.content_type, "content[].attachment.contentType"
            ),
            size_bytes=attachment.size or 0,
            active=d.status != "entered-in-error",
            created_at=created,
            updated_at=_updated(d),
            sources=(ctx.source(d.id),),
        )

    return map_traced(resource, build, ctx)
