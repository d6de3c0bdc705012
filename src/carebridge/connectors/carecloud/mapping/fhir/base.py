"""What every Connector mapper shares: code systems, the patient and reference indexes, and the
small readers of FHIR datatypes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.mapping.portal.base import (
    unexpected,
)
from carebridge.connectors.carecloud.wire import fhir as w
from carebridge.connectors.carecloud.wire.portal import forget
from carebridge.domain import (
    US_STATE_CODES,
    Address,
    LocationId,
    PayerId,
    Phone,
    ProviderId,
    to_e164,
)
from carebridge.errors import UnresolvedReference

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


def chart_number_of(patient: w.Patient | w.PatientKeys) -> str | None:
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


def reference_id(reference: w.Reference | None, resource_type: str) -> str | None:
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
        logical = reference_id(reference, "Patient")
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
