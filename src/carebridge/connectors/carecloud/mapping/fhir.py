"""Connector (FHIR R4) resources to the normalized domain: pure functions, one per entity.

Like the portal's, each mapper returns ``Mapped[T]`` whose ``dropped`` is computed from what it
read (``wire.portal.reading``/``unread``): the FHIR wire models declare only the elements read
here, so every other element (``meta.profile``, narrative, extensions nobody maps ...) shows up.

Ids follow the shared rules (``mapping.portal``): a patient is keyed by its chart number, the
Patient identifier typed ``MR`` (or of the chart-number system), so the same person gets the
same ``pat_`` id from v2, the portal and here. A resource that points at a Patient by logical
id needs that chart number: the injected :class:`PatientIndex` (logical id -> chart number,
built from the Patient resources) supplies it. Resources with prefixed row ids share the key of
the portal's row (``enc-207`` and the portal encounter 207 map to one ``enc_`` id; likewise
``prb-``, ``alg-``, ``med-``, ``lab-``, ``imm-``, ``doc-``, ``cov-`` and ``vit-<id>-<sign>``).
Practitioners, Locations and Organizations have opaque logical ids; an injected
:class:`ReferenceKeys` maps them to CareCloud's provider, location and payer ids (see
:func:`keys_by_identifier`, e.g. by NPI), and without it they are keyed by logical id.

::

    Patient            -> Patient        (identifiers: chart number, account number, logical id)
    Practitioner       -> Provider       Location -> Location      Coverage -> Coverage
    Encounter          -> Encounter      (no note, procedures or vitals on this surface; the
                                          signature is inferred, see encounter_from_fhir)
    Condition          -> Problem        AllergyIntolerance -> Allergy
    MedicationRequest  -> Medication     Immunization -> Immunization
    Observation (laboratory)            -> LabResult  (its order CPT injected: not on FHIR)
    Observation (vital-signs), grouped  -> VitalSigns (one per vitals set: vit-<id>-*)
    DocumentReference  -> Document
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import TypeVar, get_args

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.mapping.portal import (
    allergy_id,
    document_id,
    encounter_id,
    immunization_id,
    lab_result_id,
    map_traced,
    medication_id,
    patient_id,
    problem_id,
    unexpected,
    vitals_id,
)
from carebridge.connectors.carecloud.wire import fhir as w
from carebridge.connectors.carecloud.wire.portal import forget
from carebridge.domain import (
    US_STATE_CODES,
    Address,
    Allergen,
    Allergy,
    Coverage,
    CoverageId,
    Document,
    Encounter,
    EncounterDiagnosis,
    EncounterId,
    Immunization,
    Insured,
    LabResult,
    Location,
    LocationId,
    Medication,
    Patient,
    PatientIdentifier,
    PayerId,
    PersonName,
    Phone,
    Problem,
    Provider,
    ProviderId,
    VitalSigns,
    to_e164,
    to_money,
)
from carebridge.domain.vocab import InsurancePolicyType
from carebridge.errors import UnresolvedReference as UnresolvedReference

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"
CPT = "http://www.ama-assn.org/go/cpt"
NUCC = "http://nucc.org/provider-taxonomy"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
# CareCloud's own identifier systems end in these names (the host is theirs to choose).
CHART_NUMBER = "chart-number"
ACCOUNT_NUMBER = "account-number"
MEMBER_NUMBER = "member-number"
PAYER_CODE = "payer-id"


T = TypeVar("T")


# --- indexes ------------------------------------------------------------------------------------


def _system_is(system: str | None, name: str) -> bool:
    return bool(system) and (system == name or str(system).rstrip("/").endswith("/" + name))


def chart_number_of(patient: w.Patient) -> str | None:
    """The chart number: the identifier typed ``MR``, else the one of the chart-number system."""
    for ident in patient.identifier:
        if (
            ident.value
            and ident.type is not None
            and any(c.code == "MR" and c.system in (None, V2_0203) for c in ident.type.coding)
        ):
            return ident.value
    return next(
        (i.value for i in patient.identifier if i.value and _system_is(i.system, CHART_NUMBER)),
        None,
    )


def _reference_id(reference: w.Reference | None, resource_type: str) -> str | None:
    """The logical id a reference points at (relative or absolute), if it is of that type."""
    if reference is None or not reference.reference:
        return None
    parts = reference.reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


@dataclass(frozen=True)
class PatientIndex:
    """Patient logical id -> chart number: how a reference to a Patient finds its ``pat_`` id."""

    charts: Mapping[str, str]

    @classmethod
    def from_patients(cls, patients: Iterable[w.Patient]) -> PatientIndex:
        """Index Patient resources (those without a chart number are left out)."""
        charts = {}
        for patient in patients:
            chart = chart_number_of(patient)
            if chart:
                charts[patient.id] = chart
        return cls(charts)

    def chart_number(self, ctx: Context, reference: w.Reference | None, field_path: str) -> str:
        """The chart number of the referenced Patient.

        Raises:
            UnresolvedReference: the reference is missing, not a Patient, or not indexed.
        """
        logical = _reference_id(reference, "Patient")
        chart = self.charts.get(logical) if logical else None
        if chart is None:
            raise UnresolvedReference(
                "the referenced Patient is not in the patient index",
                field_path=field_path,
                endpoint=ctx.endpoint,
            )
        return chart


@dataclass(frozen=True)
class ReferenceKeys:
    """Logical ids of Practitioners, Locations and Organizations -> CareCloud's own ids.

    An id found here keys the entity as the v2 API and the portal do (``ctx.key("provider",
    "40483")``); one that is not is keyed by its logical id, which the crosswalk links later.
    """

    practitioners: Mapping[str, str] = field(default_factory=dict)
    locations: Mapping[str, str] = field(default_factory=dict)
    organizations: Mapping[str, str] = field(default_factory=dict)

    def provider(self, ctx: Context, logical_id: str) -> ProviderId:
        return ProviderId.new(ctx.key("provider", self.practitioners.get(logical_id, logical_id)))

    def location(self, ctx: Context, logical_id: str) -> LocationId:
        return LocationId.new(ctx.key("location", self.locations.get(logical_id, logical_id)))

    def payer(self, ctx: Context, logical_id: str) -> PayerId:
        return PayerId.new(ctx.key("payer", self.organizations.get(logical_id, logical_id)))


NO_KEYS = ReferenceKeys()


def keys_by_identifier(
    resources: Iterable[w.Practitioner | w.Location | w.Organization],
    system: str,
    upstream_ids: Mapping[str, str],
) -> dict[str, str]:
    """Logical id -> upstream id, matching each resource's identifier of ``system`` (an NPI, a
    payer code) against ``upstream_ids`` (identifier value -> CareCloud id)."""
    keys: dict[str, str] = {}
    for resource in resources:
        for ident in resource.identifier:
            if ident.value and _system_is(ident.system, system) and ident.value in upstream_ids:
                keys[resource.id] = upstream_ids[ident.value]
                break
    return keys


# --- small readers ------------------------------------------------------------------------------

_ROW_ID = re.compile(r"([a-z]+)-([0-9]+)(?:-[a-z0-9]+)?")


def row_key(logical_id: str, prefix: str) -> str:
    """The upstream row id of a prefixed logical id (``enc-207`` -> ``207``), else the id."""
    match = _ROW_ID.fullmatch(logical_id)
    return match.group(2) if match and match.group(1) == prefix else logical_id


def _coding(concept: w.CodeableConcept | None, *systems: str) -> w.Coding | None:
    if concept is None:
        return None
    return next((c for c in concept.coding if c.code and c.system in systems), None)


def _code(concept: w.CodeableConcept | None) -> str | None:
    """The first code of a concept, whatever its system."""
    if concept is None:
        return None
    return next((c.code for c in concept.coding if c.code), None)


def _label(concept: w.CodeableConcept | None, coding: w.Coding | None) -> str:
    """A concept's display: its coding's, else its text."""
    if coding is not None and coding.display:
        return coding.display
    return (concept.text or "") if concept is not None else ""


def _date(text: str | None) -> date | None:
    """The date of a FHIR date or dateTime; None when it is partial (``2026``, ``2026-11``)."""
    if not text or len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _instant(text: str | None) -> datetime | None:
    """An instant from a FHIR dateTime that has a time and an offset; else None."""
    if not text or "T" not in text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _updated(resource: w.Resource) -> datetime | None:
    return resource.meta.last_updated if resource.meta is not None else None


def _required(ctx: Context, value: T | None, field_path: str) -> T:
    if value is None or value == "":
        raise unexpected(ctx, field_path, "a required element is missing")
    return value


def _person_name(names: Sequence[w.HumanName]) -> w.HumanName | None:
    return next((n for n in names if n.use == "official"), names[0] if names else None)


def _phone(point: w.ContactPoint, kind: str, primary: bool) -> Phone | None:
    try:
        return Phone(number=to_e164(point.value or ""), kind=kind, is_primary=primary)
    except ValueError:
        forget(point, "value")
        return None


PHONE_KINDS = {"mobile": "mobile", "home": "home", "work": "work"}


def _phones(points: Sequence[w.ContactPoint]) -> tuple[Phone, ...]:
    phones: list[Phone] = []
    primary_taken = False
    for point in points:
        if point.system not in ("phone", "sms", "fax") or not point.value:
            continue
        kind = "fax" if point.system == "fax" else PHONE_KINDS.get(point.use or "", "other")
        primary = point.rank == 1 and not primary_taken
        phone = _phone(point, kind, primary)
        if phone is not None:
            primary_taken = primary_taken or primary
            phones.append(phone)
    return tuple(phones)


def _email(points: Sequence[w.ContactPoint]) -> str | None:
    return next((p.value for p in points if p.system == "email" and p.value), None)


COUNTRIES = {"US": "USA", "USA": "USA"}
ADDRESS_USES = {"home": "home", "work": "work", "billing": "billing", "temp": "other"}


_ZIP = re.compile(r"[0-9]{5}(-?[0-9]{4})?")


def _address(
    a: w.Address, *, use: str | None = None, position: w.Position | None = None
) -> Address:
    """An Address; a state, ZIP code or country the domain cannot take is left out (and so
    reported as dropped)."""
    lines = list(a.line)
    state = (a.state or "").strip().upper() or None
    if state is not None and state not in US_STATE_CODES:
        forget(a, "state")
        state = None
    zip_code = (a.postal_code or "").strip() or None
    if zip_code is not None and not _ZIP.fullmatch(zip_code):
        forget(a, "postal_code")
        zip_code = None
    country = (a.country or "US").strip().upper()
    country = COUNTRIES.get(country, country)
    if not re.fullmatch(r"[A-Z]{3}", country):
        forget(a, "country")  # an ISO alpha-2 code other than US: no table here to convert it
        country = "USA"
    return Address(
        line1=lines[0] if lines else "",
        line2=lines[1] if len(lines) > 1 else "",
        line3=" ".join(lines[2:]),
        city=a.city or "",
        state=state,
        zip_code=zip_code,
        county=a.district or "",
        country=country,
        latitude=position.latitude if position is not None else None,
        longitude=position.longitude if position is not None else None,
        use=use or ADDRESS_USES.get(a.use or "", "other"),
    )


# --- patients, providers, locations, coverages --------------------------------------------------

MARITAL = {
    "A": "annulled",
    "D": "divorced",
    "I": "interlocutory",
    "L": "legally_separated",
    "M": "married",
    "P": "polygamous",
    "S": "never_married",
    "T": "domestic_partner",
    "W": "widowed",
    "U": "unknown",
}
ETHNICITY = {"2135-2": "hispanic_or_latino", "2186-5": "not_hispanic_or_latino"}
LANGUAGES = {
    "en": "eng",
    "es": "spa",
    "fr": "fra",
    "de": "deu",
    "zh": "zho",
    "vi": "vie",
    "ko": "kor",
    "ru": "rus",
    "ar": "ara",
    "pt": "por",
    "it": "ita",
    "pl": "pol",
    "ja": "jpn",
    "tl": "tgl",
    "hi": "hin",
    "ht": "hat",
}
RACE_URL = "us-core-race"
ETHNICITY_URL = "us-core-ethnicity"


def _omb(extensions: Sequence[w.Extension], url_name: str) -> str | None:
    """The first ``ombCategory`` (else ``detailed``) code of a US Core race/ethnicity extension."""
    for ext in extensions:
        if not ext.url.endswith(url_name):
            continue
        for slot in ("ombCategory", "detailed"):
            for inner in ext.extension:
                if inner.url == slot and inner.value_coding is not None:
                    return inner.value_coding.code
    return None


def patient_from_fhir(
    resource: w.Patient, ctx: Context, keys: ReferenceKeys = NO_KEYS
) -> Mapped[Patient]:
    """A Patient; keyed by its chart number (``chart_number_of``)."""

    def build() -> Patient:
        p = resource
        chart = chart_number_of(p)
        if not chart:
            raise unexpected(ctx, "identifier", "a Patient without a chart number")
        identifiers = [
            PatientIdentifier(kind="chart_number", value=chart),
            PatientIdentifier(kind="fhir_id", value=p.id),
        ]
        for ident in p.identifier:
            if ident.value and _system_is(ident.system, ACCOUNT_NUMBER):
                identifiers.append(PatientIdentifier(kind="account_number", value=ident.value))
                break
        name = _required(ctx, _person_name(p.name), "name")
        given = list(name.given)
        language = None
        for comm in p.communication:
            code = _code(comm.language)
            language = LANGUAGES.get((code or "").split("-")[0].lower())
            if language is None:
                forget(comm, "language")
            if language or comm.preferred:
                break
        marital = None
        if p.marital_status is not None:
            marital = MARITAL.get(_code(p.marital_status) or "")
            if marital is None:
                forget(p, "marital_status")
        race = _omb(p.extension, RACE_URL)
        ethnicity_code = _omb(p.extension, ETHNICITY_URL)
        practitioner = next(
            (
                _reference_id(r, "Practitioner")
                for r in p.general_practitioner
                if _reference_id(r, "Practitioner")
            ),
            None,
        )
        return Patient(
            id=patient_id(ctx, chart),
            name=PersonName(
                first=_required(ctx, given[0] if given else None, "name[].given"),
                last=_required(ctx, name.family, "name[].family"),
                middle=" ".join(given[1:]),
                prefix=" ".join(name.prefix),
                suffix=" ".join(name.suffix),
            ),
            birth_date=_date(p.birth_date),
            death_date=_date(p.deceased_date_time),
            gender=p.gender,
            email=_email(p.telecom),
            phones=_phones(p.telecom),
            addresses=tuple(_address(a) for a in p.address),
            identifiers=tuple(identifiers),
            marital_status=marital,
            language=language,
            race=race if race and re.fullmatch(r"[0-9]{4}-[0-9]", race) else None,
            ethnicity=ETHNICITY.get(ethnicity_code or "", "unknown") if ethnicity_code else None,
            active=p.active if p.active is not None else True,
            primary_provider_id=keys.provider(ctx, practitioner) if practitioner else None,
            updated_at=_updated(p),
            sources=(ctx.source(p.id),),
        )

    return map_traced(resource, build, ctx)


def provider_from_fhir(
    resource: w.Practitioner, ctx: Context, keys: ReferenceKeys = NO_KEYS
) -> Mapped[Provider]:
    """A Practitioner; its NPI is required, its suffixes are the credentials."""

    def build() -> Provider:
        p = resource
        npi = next((i.value for i in p.identifier if i.system == NPI_SYSTEM and i.value), None)
        name = _required(ctx, _person_name(p.name), "name")
        given = list(name.given)
        phone = next(
            (
                _phone(t, PHONE_KINDS.get(t.use or "", "work"), True)
                for t in p.telecom
                if t.system == "phone" and t.value
            ),
            None,
        )
        taxonomy = None
        specialty = None
        for qualification in p.qualification:
            coding = _coding(qualification.code, NUCC)
            if coding is not None:
                taxonomy = coding.code
                specialty = _label(qualification.code, coding) or None
                break
        return Provider(
            id=keys.provider(ctx, p.id),
            npi=_required(ctx, npi, "identifier"),
            name=PersonName(
                first=_required(ctx, given[0] if given else None, "name[].given"),
                last=_required(ctx, name.family, "name[].family"),
                middle=" ".join(given[1:]),
                prefix=" ".join(name.prefix),
            ),
            credentials=" ".join(name.suffix),
            email=_email(p.telecom),
            phone=phone,
            taxonomy=taxonomy,
            specialty_name=specialty,
            active=p.active if p.active is not None else True,
            sources=(ctx.source(p.id),),
        )

    return map_traced(resource, build, ctx)


POS_SYSTEM_HINT = "place-of-service"


def location_from_fhir(
    resource: w.Location, ctx: Context, keys: ReferenceKeys = NO_KEYS
) -> Mapped[Location]:
    """A Location; its place of service comes from ``type`` (the CMS POS code set)."""

    def build() -> Location:
        loc = resource
        place = next(
            (
                c.code
                for t in loc.type
                for c in t.coding
                if c.code and POS_SYSTEM_HINT in (c.system or "").lower().replace("_", "-")
            ),
            None,
        )
        npi = next((i.value for i in loc.identifier if i.system == NPI_SYSTEM and i.value), None)
        return Location(
            id=keys.location(ctx, loc.id),
            name=_required(ctx, loc.name, "name"),
            mnemonic=loc.alias[0] if loc.alias else "",
            npi=npi,
            place_of_service=_required(ctx, place, "type"),
            address=(
                _address(loc.address, use="work", position=loc.position)
                if loc.address is not None
                else None
            ),
            phones=_phones(loc.telecom),
            active=loc.status != "inactive",
            sources=(ctx.source(loc.id),),
        )

    return map_traced(resource, build, ctx)


POLICY_TYPES = frozenset(get_args(InsurancePolicyType)) - {"other"}
ACT_CODE_POLICY = {"PPO": "ppo", "HMO": "hmo", "POS": "pos", "EPO": "epo"}
# FHIR's subscriber-relationship is the beneficiary's relation to the subscriber; the domain's
# is the insured's relation to the patient: the inverse ("child": the insured is a parent).
SUBSCRIBER_RELATIONSHIP = {
    "self": "self",
    "spouse": "spouse",
    "parent": "child",
    "common": "domestic_partner",
    "child": "other",
    "other": "other",
    "injured": "other",
}


def _insured_name(display: str | None) -> PersonName | None:
    words = (display or "").split()
    if not words:
        return None
    return PersonName(first=" ".join(words[:-1]) or words[0], last=words[-1])


def coverage_from_fhir(
    resource: w.Coverage, ctx: Context, patients: PatientIndex, keys: ReferenceKeys = NO_KEYS
) -> Mapped[Coverage]:
    """A Coverage (``cov-<policy id>``) of an indexed patient."""

    def build() -> Coverage:
        c = resource
        chart = patients.chart_number(ctx, c.beneficiary, "beneficiary")
        payor = next(iter(c.payor), None)
        organization = _reference_id(payor, "Organization")
        group = next((k for k in c.coverage_class if _code(k.type) == "group"), None)
        plan = next((k for k in c.coverage_class if _code(k.type) == "plan"), None)
        policy_type = (c.type.text or "") if c.type is not None else ""
        if policy_type not in POLICY_TYPES:
            policy_type = ACT_CODE_POLICY.get(_code(c.type) or "", "other")
            if policy_type == "other" and c.type is not None:
                forget(c, "type")
        member = c.subscriber_id or next(
            (i.value for i in c.identifier if i.value and _system_is(i.system, MEMBER_NUMBER)),
            None,
        )
        copay = next(
            (
                cost.value_money.value
                for cost in c.cost_to_beneficiary
                if _code(cost.type) == "copay"
                and cost.value_money is not None
                and cost.value_money.value is not None
            ),
            None,
        )
        relation = SUBSCRIBER_RELATIONSHIP.get(_code(c.relationship) or "self", "other")
        subscriber_is_patient = _reference_id(c.subscriber, "Patient") is not None
        insured = Insured(
            relationship=relation,
            name=(
                None
                if relation == "self" or subscriber_is_patient
                else _insured_name(c.subscriber.display if c.subscriber else None)
            ),
        )
        return Coverage(
            id=CoverageId.new(ctx.key("coverage", row_key(c.id, "cov"))),
            patient_id=patient_id(ctx, chart),
            payer_id=keys.payer(ctx, _required(ctx, organization, "payor")),
            payer_name=(payor.display or "") if payor is not None else "",
            plan_name=(plan.name or "") if plan is not None else "",
            policy_type=policy_type,
            priority=c.order or 1,
            member_number=_required(ctx, member, "subscriberId"),
            group_number=group.value if group is not None else "",
            group_name=(group.name or "") if group is not None else "",
            effective_from=_date(c.period.start) if c.period is not None else None,
            effective_to=_date(c.period.end) if c.period is not None else None,
            copay=to_money(Decimal(str(copay))) if copay is not None else None,
            insured=insured,
            updated_at=_updated(c),
            sources=(ctx.source(c.id),),
        )

    return map_traced(resource, build, ctx)


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
        practitioner = _required(ctx, _reference_id(performer, "Practitioner"), "participant")
        provider = keys.provider(ctx, practitioner)
        place = next(
            (
                _reference_id(loc.location, "Location")
                for loc in e.location
                if _reference_id(loc.location, "Location")
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
    logical = _reference_id(reference, "Encounter")
    return encounter_id(ctx, row_key(logical, "enc")) if logical else None


def _practitioner_ref(
    ctx: Context, keys: ReferenceKeys, reference: w.Reference | None
) -> ProviderId | None:
    logical = _reference_id(reference, "Practitioner")
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


# --- observations -------------------------------------------------------------------------------


def _category(observation: w.Observation) -> set[str]:
    return {c.code for concept in observation.category for c in concept.coding if c.code}


def is_vital_sign(observation: w.Observation) -> bool:
    """True for a vital-signs Observation."""
    return "vital-signs" in _category(observation)


def is_laboratory(observation: w.Observation) -> bool:
    """True for a laboratory Observation."""
    return "laboratory" in _category(observation)


LAB_STATUS = {
    "preliminary": "preliminary",
    "final": "final",
    "amended": "amended",
    "corrected": "corrected",
    "cancelled": "cancelled",
    "entered-in-error": "entered_in_error",
}
INTERPRETATIONS = {"N", "H", "L", "A", "HH", "LL", "AA"}


def lab_from_fhir(
    resource: w.Observation,
    ctx: Context,
    patients: PatientIndex,
    *,
    order_codes: Mapping[str, str],
) -> Mapped[LabResult]:
    """A laboratory Observation coded in LOINC.

    Args:
        order_codes: the CPT each lab was billed under, by upstream lab id (``lab-12`` -> ``12``;
            the portal's ``orderCode``). The Connector does not carry it and the domain needs it.

    Raises:
        UnresolvedReference: the lab's order code is not in ``order_codes``.
    """

    def build() -> LabResult:
        o = resource
        chart = patients.chart_number(ctx, o.subject, "subject")
        loinc = _coding(o.code, LOINC)
        if loinc is None:
            raise unexpected(ctx, "code", "a lab result is coded in LOINC")
        upstream = row_key(o.id, "lab")
        order = order_codes.get(upstream)
        if order is None:
            raise UnresolvedReference(
                "the lab's order code is not known", field_path="code", endpoint=ctx.endpoint
            )
        status = LAB_STATUS.get(o.status)
        if status is None:
            raise unexpected(ctx, "status", "a result status the domain does not know")
        quantity = o.value_quantity
        number = quantity.value if quantity is not None else None
        unit = (quantity.unit or quantity.code) if quantity is not None else None
        reference = next(iter(o.reference_range), None)
        interpretation = next((_code(i) for i in o.interpretation if _code(i)), None)
        if interpretation is not None and interpretation not in INTERPRETATIONS:
            forget(o, "interpretation")
            interpretation = None
        return LabResult(
            id=lab_result_id(ctx, upstream),
            patient_id=patient_id(ctx, chart),
            encounter_id=_encounter_ref(ctx, o.encounter),
            order_code=order,
            loinc_code=loinc.code,
            name=_label(o.code, loinc) or loinc.code,
            value_number=number,
            value_text=o.value_string,
            unit=unit if number is not None else None,
            reference_low=reference.low.value if reference and reference.low else None,
            reference_high=reference.high.value if reference and reference.high else None,
            interpretation=interpretation,
            status=status,
            collected_at=_required(ctx, _instant(o.effective_date_time), "effectiveDateTime"),
            resulted_at=o.issued,
            updated_at=_updated(o),
            sources=(ctx.source(o.id),),
        )

    return map_traced(resource, build, ctx)


# LOINC code -> (VitalSigns field, {UCUM unit: factor to the domain's unit} or a converter key)
VITAL_CODES: Mapping[str, str] = {
    "8867-4": "heart_rate_bpm",
    "9279-1": "respiratory_rate",
    "8310-5": "temperature_c",
    "8302-2": "height_cm",
    "29463-7": "weight_kg",
    "39156-5": "bmi",
    "59408-5": "spo2_percent",
    "2708-6": "spo2_percent",
    "8480-6": "systolic_mmhg",
    "8462-4": "diastolic_mmhg",
}
BP_PANEL = "85354-9"
UNIT_FACTORS: Mapping[str, Mapping[str, float]] = {
    "height_cm": {"cm": 1.0, "m": 100.0, "[in_i]": 2.54, "in": 2.54},
    "weight_kg": {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237},
}
WHOLE_NUMBERS = frozenset(
    {"heart_rate_bpm", "respiratory_rate", "spo2_percent", "systolic_mmhg", "diastolic_mmhg"}
)


def _vital_value(quantity: w.Quantity | None, target: str) -> float | int | None:
    if quantity is None or quantity.value is None:
        return None
    value = quantity.value
    unit = quantity.code or quantity.unit or ""
    if target == "temperature_c" and unit in ("[degF]", "degF", "°F"):
        value = (value - 32) * 5 / 9
    elif target in UNIT_FACTORS:
        value = value * UNIT_FACTORS[target].get(unit, 1.0)
    return round(value) if target in WHOLE_NUMBERS else value


def vitals_key(observation: w.Observation) -> str:
    """The vitals set an Observation belongs to: ``vit-<id>-<sign>`` -> ``<id>``, else its
    encounter and time."""
    match = _ROW_ID.fullmatch(observation.id)
    if match and match.group(1) == "vit":
        return match.group(2)
    encounter = observation.encounter.reference if observation.encounter else ""
    return f"{encounter}@{observation.effective_date_time or ''}"


def vitals_from_fhir(
    observations: Iterable[w.Observation], ctx: Context, patients: PatientIndex
) -> tuple[Mapped[VitalSigns], ...]:
    """One ``VitalSigns`` per vitals set, from its vital-signs Observations (one per sign).

    Observations that are not vital signs are ignored; the sets come out in the order their
    first Observation came in. Each record's ``sources`` lists every Observation that fed it.
    """
    groups: dict[str, list[w.Observation]] = {}
    for observation in observations:
        if is_vital_sign(observation):
            groups.setdefault(vitals_key(observation), []).append(observation)
    return tuple(_vitals_set(key, group, ctx, patients) for key, group in groups.items())


def _vitals_set(
    key: str, group: list[w.Observation], ctx: Context, patients: PatientIndex
) -> Mapped[VitalSigns]:
    def build() -> VitalSigns:
        first = group[0]
        chart = patients.chart_number(ctx, first.subject, "subject")
        values: dict[str, float | int | None] = {}
        for o in group:
            codes = [c.code for c in o.code.coding if c.system == LOINC and c.code]
            if BP_PANEL in codes:
                for component in o.component:
                    target = next(
                        (
                            VITAL_CODES[c.code]
                            for c in component.code.coding
                            if c.system == LOINC and c.code is not None and c.code in VITAL_CODES
                        ),
                        None,
                    )
                    if target is not None:
                        values[target] = _vital_value(component.value_quantity, target)
                continue
            target = next((VITAL_CODES[c] for c in codes if c in VITAL_CODES), None)
            if target is not None:
                values[target] = _vital_value(o.value_quantity, target)
        encounter = _required(ctx, _encounter_ref(ctx, first.encounter), "encounter")
        return VitalSigns(
            id=vitals_id(ctx, key),
            patient_id=patient_id(ctx, chart),
            encounter_id=encounter,
            taken_at=_required(ctx, _instant(first.effective_date_time), "effectiveDateTime"),
            sources=tuple(ctx.source(o.id) for o in group),
            **values,
        )

    return map_traced(group, build, ctx)
