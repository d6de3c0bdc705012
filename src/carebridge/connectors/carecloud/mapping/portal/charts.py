"""Portal patients, encounters and chart lists (vitals, problems, medications, allergies, labs,
immunizations) to the domain."""

from __future__ import annotations

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.mapping.portal.base import (
    _email,
    _opt_encounter,
    _phone,
    _required,
    allergy_id,
    appointment_id,
    encounter_id,
    encounter_type,
    immunization_id,
    immunization_status,
    lab_result_id,
    location_id,
    map_traced,
    medication_id,
    patient_id,
    problem_id,
    provider_id,
    sex,
    unexpected,
    vitals_id,
)
from carebridge.connectors.carecloud.wire import portal as wire
from carebridge.connectors.carecloud.wire.portal import forget
from carebridge.domain import (
    Addendum,
    Allergen,
    Allergy,
    ClinicalNote,
    Encounter,
    EncounterDiagnosis,
    EncounterId,
    EncounterProcedure,
    Immunization,
    LabResult,
    Medication,
    Patient,
    PatientId,
    PatientIdentifier,
    PersonName,
    Problem,
    VitalSigns,
)
from carebridge.domain.vocab import (
    EncounterType,
)

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
