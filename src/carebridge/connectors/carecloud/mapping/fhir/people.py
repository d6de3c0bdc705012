"""Connector Patient, Practitioner, Location and Coverage resources to the domain."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import get_args

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.mapping.fhir.base import (
    ACCOUNT_NUMBER,
    MEMBER_NUMBER,
    NO_KEYS,
    NPI_SYSTEM,
    NUCC,
    PHONE_KINDS,
    PatientIndex,
    ReferenceKeys,
    _address,
    _code,
    _coding,
    _date,
    _email,
    _label,
    _person_name,
    _phone,
    _phones,
    _required,
    _system_is,
    _updated,
    chart_number_of,
    reference_id,
    row_key,
)
from carebridge.connectors.carecloud.mapping.portal.base import (
    map_traced,
    patient_id,
    unexpected,
)
from carebridge.connectors.carecloud.wire import fhir as w
from carebridge.connectors.carecloud.wire.portal import forget
from carebridge.domain import (
    Coverage,
    CoverageId,
    Insured,
    Location,
    Patient,
    PatientIdentifier,
    PersonName,
    Provider,
    to_money,
)
from carebridge.domain.vocab import InsurancePolicyType

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
                reference_id(r, "Practitioner")
                for r in p.general_practitioner
                if reference_id(r, "Practitioner")
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
        organization = reference_id(payor, "Organization")
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
        subscriber_is_patient = reference_id(c.subscriber, "Patient") is not None
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
