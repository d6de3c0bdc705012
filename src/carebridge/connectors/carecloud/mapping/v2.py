"""Pure mappers from the v2 wire models to the normalized domain.

::

    map_patient        PatientPayload | PatientSearchItem  -> Patient (+ coverages, balances)
    map_coverage       InsurancePolicyPayload (+ profile)  -> Coverage
    map_coverages      [InsuranceProfilePayload]           -> (Coverage, ...)
    map_payer          PayerPayload (+ plans)              -> Payer
    map_provider       ProviderPayload                     -> Provider
    map_location       LocationPayload                     -> Location
    map_resource       ResourcePayload (+ visit reasons)   -> Resource
    map_visit_reason   VisitReasonPayload (+ duration)     -> VisitReason
    map_slot(s)        AvailabilityGroupPayload            -> Slot, (Slot, ...)
    map_appointment    AppointmentPayload (+ confirmations)-> Appointment
    map_confirmation   ConfirmationPayload                 -> AppointmentConfirmation
    map_charge         TransactionPayload (+ details)      -> Charge       (charge, simple_charge)
    map_ledger_entry   TransactionPayload                  -> LedgerEntry  (every other type)
    map_balance        BalancePayload                      -> Balance
    map_document       DocumentPayload                     -> Document
    map_eligibility    EligibilityRequestPayload           -> EligibilityCheck

Identity: a patient's id is derived from its chart number (``PatientId.new(ctx.key("patient",
chart_number))``), the key the v2 API, the portal and the Connector's MR identifier share, so one
person gets one ``pat_`` id whichever surface saw them first. Every other entity is keyed on its
v2 id (``ctx.key("provider", "40483")``).

``dropped``: every mapper reads the wire model through a recorder that notes each field it
consumes; ``dropped`` is then every field present in the payload with a value (not ``null``, not
empty) that was not consumed, plus every consumed value that failed validation (an e-mail that is
not one, an NPI with a bad check digit): those are left out of the record rather than failing it.
Paths use the upstream's spellings relative to the mapped object, ``[]`` for array items
(``insurance_profiles[].insurance_policies[].payer.phones[].phone_number``).

Errors: when a payload cannot make a valid record (a required value is invalid, or the record
breaks a domain rule such as ``departed_at`` before ``arrived_at``), the mapper raises
``UnexpectedPayload`` naming the field and the record's v2 id, never a value.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from pydantic import TypeAdapter, ValidationError

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.wire.v2 import (
    AddressPayload,
    AppointmentDetailPayload,
    AppointmentPatientPayload,
    AppointmentPayload,
    AvailabilityGroupPayload,
    BalancePayload,
    BenefitPayload,
    CancellationReasonPayload,
    ConfirmationPayload,
    DocumentPayload,
    EligibilityCreatedPayload,
    EligibilityRequestPayload,
    InsurancePolicyPayload,
    InsuranceProfilePayload,
    InsuredPayload,
    LocationPayload,
    PatientPayload,
    PatientSearchItem,
    PayerPayload,
    PhonePayload,
    PlanPayload,
    ProviderPayload,
    ResourceDetailPayload,
    ResourcePayload,
    ResponsiblePartyPayload,
    SlotPayload,
    TransactionPayload,
    V2Model,
    VisitReasonPayload,
)
from carebridge.domain import (
    NPI,
    SSN,
    Address,
    AgingBuckets,
    Appointment,
    AppointmentCancellation,
    AppointmentConfirmation,
    AppointmentId,
    AppointmentStatus,
    Balance,
    Benefit,
    Charge,
    ChargeId,
    Coverage,
    CoverageId,
    Document,
    DocumentId,
    EligibilityCheck,
    EligibilityCheckId,
    EligibilityRequest,
    Email,
    EncounterId,
    Guarantor,
    Insured,
    LedgerEntry,
    LedgerEntryId,
    Location,
    LocationId,
    Patient,
    PatientId,
    PatientIdentifier,
    Payer,
    PayerId,
    PayerPlan,
    PersonName,
    Phone,
    PhoneE164,
    Provider,
    ProviderId,
    Resource,
    ResourceId,
    ServiceTypeCode,
    Slot,
    Taxonomy,
    UpstreamStatus,
    USState,
    VisitReason,
    VisitReasonId,
    ZipCode,
    to_money,
)
from carebridge.domain.patients import DriversLicense
from carebridge.domain.values import (
    LOINC,
    CountryCode,
    LanguageCode,
    RaceCode,
)
from carebridge.domain.vocab import (
    AddressUse,
    AdministrativeGender,
    ConfirmationMethod,
    ConfirmationOutcome,
    CoverageLevel,
    CoverageStatus,
    EligibilityCheckStatus,
    EmploymentStatusCode,
    Ethnicity,
    InsurancePolicyType,
    LedgerEntryKind,
    MaritalStatus,
    PayerKind,
    PhoneKind,
    Relationship,
    ResponsibleParty,
    StudentStatusCode,
    TransactionStatus,
)
from carebridge.errors import UnexpectedPayload

T = TypeVar("T")
W = TypeVar("W", bound=V2Model)
R = TypeVar("R")

# --- the consumption recorder ------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Run:
    """What one mapping consumed and rejected, as upstream field paths."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.rejected: set[str] = set()

    def reject(self, obj: Any, name: str) -> None:
        """Mark field ``name`` of the tracked ``obj`` as read but left out (invalid)."""
        self.rejected.add(_field_path(obj, name))

    def reject_path(self, path: str) -> None:
        self.rejected.add(path)


class _Tracked:
    """A read-only view of a wire model that records the path of every field read through it."""

    __slots__ = ("_cb_model", "_cb_path", "_cb_run")

    def __init__(self, model: V2Model, path: str, run: _Run) -> None:
        object.__setattr__(self, "_cb_model", model)
        object.__setattr__(self, "_cb_path", path)
        object.__setattr__(self, "_cb_run", run)

    def __getattr__(self, name: str) -> Any:
        model: V2Model = object.__getattribute__(self, "_cb_model")
        value = getattr(model, name)
        path = _join(object.__getattribute__(self, "_cb_path"), model.upstream_key(name))
        return _wrap(value, path, object.__getattribute__(self, "_cb_run"))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("wire models are read-only")


def _wrap(value: Any, path: str, run: _Run) -> Any:
    if isinstance(value, V2Model):
        return _Tracked(value, path, run)
    if isinstance(value, list | tuple) and any(isinstance(v, V2Model) for v in value):
        return [_wrap(v, f"{path}[]", run) for v in value]
    run.used.add(path)
    return value


def _track(model: W, run: _Run) -> W:
    """``model`` seen through a recorder; typed as the model so mappers stay type-checked."""
    return cast(W, _Tracked(model, "", run))


def _field_path(obj: Any, name: str) -> str:
    if isinstance(obj, _Tracked):
        model: V2Model = object.__getattribute__(obj, "_cb_model")
        return _join(object.__getattribute__(obj, "_cb_path"), model.upstream_key(name))
    return name


def _path_of(obj: Any) -> str:
    return str(object.__getattribute__(obj, "_cb_path")) if isinstance(obj, _Tracked) else ""


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple | dict) and not value)


def present_paths(model: V2Model, path: str = "") -> set[str]:
    """The paths of every field of ``model`` (extras included) that carries a value."""
    found: set[str] = set()
    extra = model.model_extra or {}
    for name in model.model_fields_set:
        if name in type(model).model_fields:
            key, value = model.upstream_key(name), getattr(model, name)
        else:
            key, value = name, extra.get(name)
        _present(value, _join(path, key), found)
    return found


def _present(value: Any, path: str, found: set[str]) -> None:
    if _empty(value):
        return
    if isinstance(value, V2Model):
        found |= present_paths(value, path)
    elif isinstance(value, list | tuple) and any(isinstance(v, V2Model) for v in value):
        for item in value:
            _present(item, f"{path}[]", found)
    else:
        found.add(path)


def _dropped(run: _Run, *wires: V2Model) -> tuple[str, ...]:
    present: set[str] = set()
    for wire in wires:
        present |= present_paths(wire)
    left = {p for p in present if p not in run.used}
    return tuple(sorted(left | run.rejected))


def _valid(run: _Run, obj: Any, name: str, convert: Callable[[Any], R]) -> R | None:
    """Field ``name`` of tracked ``obj`` converted, or None when empty; an invalid value is
    rejected (it goes to ``dropped``) instead of failing the record."""
    value = getattr(obj, name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return convert(value)
    except (ValueError, TypeError):
        run.reject(obj, name)
        return None


def _first(*values: str | None) -> str | None:
    """The first non-empty of ``values``; every one is read (consumed) by the call."""
    return next((v for v in values if v is not None and v.strip()), None)


def _twin(run: _Run, obj: Any, name: str, twin: str, convert: Callable[[Any], R]) -> R | None:
    """Field ``name`` converted, else its ``twin`` (the same value under another key, such as
    ``race_code`` and ``race``); both are consumed, and only the one used can be rejected."""
    value = _valid(run, obj, name, convert)
    if value is not None:
        getattr(obj, twin)
        return value
    return _valid(run, obj, twin, convert)


def _adapter(annotation: Any) -> Callable[[Any], Any]:
    return TypeAdapter(annotation).validate_python


_email = _adapter(Email)
_ssn = _adapter(SSN)
_npi = _adapter(NPI)
_phone_number = _adapter(PhoneE164)
_state = _adapter(USState)
_zip = _adapter(ZipCode)
_country = _adapter(CountryCode)
_language = _adapter(LanguageCode)
_race = _adapter(RaceCode)
_taxonomy = _adapter(Taxonomy)
_loinc = _adapter(LOINC)
_service_type = _adapter(ServiceTypeCode)


_RULE_FIELD = re.compile(r"(?:Value error, )?([a-z_][a-z0-9_.]*):")


def _build(factory: Callable[..., T], what: str, upstream_id: str, ctx: Context, **data: Any) -> T:
    """``factory(**data)``, with a domain validation error turned into ``UnexpectedPayload``."""
    try:
        return factory(**data)
    except ValidationError as err:
        first = err.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        if not where:  # a model rule: the domain's messages start with the field they are about
            named = _RULE_FIELD.match(first["msg"])
            where = named.group(1) if named else what
        raise UnexpectedPayload(
            f"v2 {what} {upstream_id} does not make a valid record: {where} ({first['type']})",
            field_path=where,
            endpoint=ctx.endpoint,
        ) from None


def _money(text: str | None) -> Decimal | None:
    return None if text is None or not str(text).strip() else to_money(text)


def _text(value: str | None) -> str:
    return "" if value is None else value.strip()


# --- ids -------------------------------------------------------------------------------------------


def patient_id(ctx: Context, chart_number: str) -> PatientId:
    """The carebridge id of the patient with ``chart_number`` (shared by every surface)."""
    return PatientId.new(ctx.key("patient", chart_number.strip()))


def _provider_id(ctx: Context, upstream: int | None) -> ProviderId | None:
    return None if upstream is None else ProviderId.new(ctx.key("provider", str(upstream)))


def _location_id(ctx: Context, upstream: int | None) -> LocationId | None:
    return None if upstream is None else LocationId.new(ctx.key("location", str(upstream)))


def _resource_id(ctx: Context, upstream: int | None) -> ResourceId | None:
    return None if upstream is None else ResourceId.new(ctx.key("resource", str(upstream)))


def _visit_reason_id(ctx: Context, upstream: int | None) -> VisitReasonId | None:
    return None if upstream is None else VisitReasonId.new(ctx.key("visit_reason", str(upstream)))


def _payer_id(ctx: Context, upstream: int) -> PayerId:
    return PayerId.new(ctx.key("payer", str(upstream)))


@dataclass(frozen=True)
class PatientRef:
    """The patient a per-patient payload belongs to (its route's ``{patient_id}``): ledgers,
    balances, insurances, documents and eligibility requests do not name the chart number."""

    v2_id: str
    chart_number: str

    @classmethod
    def of(cls, wire: PatientPayload | PatientSearchItem | AppointmentPatientPayload) -> PatientRef:
        """The reference of a patient payload."""
        return cls(v2_id=wire.id, chart_number=wire.chart_number)

    def patient_id(self, ctx: Context) -> PatientId:
        """The patient's carebridge id."""
        return patient_id(ctx, self.chart_number)


# --- vocabularies ----------------------------------------------------------------------------------

_GENDERS: dict[str, AdministrativeGender] = {
    "m": "male",
    "male": "male",
    "f": "female",
    "female": "female",
    "o": "other",
    "other": "other",
    "u": "unknown",
    "unknown": "unknown",
}
_MARITAL: dict[str, MaritalStatus] = {
    "a": "annulled",
    "d": "divorced",
    "i": "interlocutory",
    "l": "legally_separated",
    "m": "married",
    "p": "polygamous",
    "s": "never_married",
    "single": "never_married",
    "t": "domestic_partner",
    "w": "widowed",
    "u": "unknown",
    **{v: v for v in typing.get_args(MaritalStatus)},
}
_ETHNICITY: dict[str, Ethnicity] = {
    "h": "hispanic_or_latino",
    "2135-2": "hispanic_or_latino",
    "n": "not_hispanic_or_latino",
    "2186-5": "not_hispanic_or_latino",
    "u": "unknown",
    **{v: v for v in typing.get_args(Ethnicity)},
}
_RELATIONSHIPS: frozenset[str] = frozenset(typing.get_args(Relationship))
_EMPLOYMENT: frozenset[str] = frozenset(typing.get_args(EmploymentStatusCode))
_STUDENT: frozenset[str] = frozenset(typing.get_args(StudentStatusCode))
_PHONE_KINDS: dict[str, PhoneKind] = {
    "b": "work",
    "business": "work",
    "work": "work",
    "office": "work",
    "m": "main",
    "main": "main",
    "f": "fax",
    "fa": "fax",
    "fax": "fax",
    "tf": "toll_free",
    "tollfree": "toll_free",
    "toll_free": "toll_free",
    "s800": "toll_free",
    "n800": "toll_free",
    "v": "voip",
    "voip": "voip",
    "p": "pager",
    "pager": "pager",
    "c": "mobile",
    "cell": "mobile",
    "mobile": "mobile",
    "h": "home",
    "home": "home",
    "sms": "sms",
}
_POLICY_TYPES: frozenset[str] = frozenset(typing.get_args(InsurancePolicyType))
_POLICY_ALIASES: dict[str, InsurancePolicyType] = {
    "commercial": "commercial_insurance",
    "bcbs": "blue_cross_blue_shield",
    "workers_comp": "workers_compensation",
    "auto": "auto_insurance",
    "tricare": "champus",
}
_LEDGER_KINDS: frozenset[str] = frozenset(typing.get_args(LedgerEntryKind))
_TRANSACTION_STATUSES: frozenset[str] = frozenset(typing.get_args(TransactionStatus))
_CHARGE_KINDS = frozenset({"charge", "simple_charge"})
_CONFIRMATION_METHODS: frozenset[str] = frozenset(typing.get_args(ConfirmationMethod))
_CONFIRMATION_OUTCOMES: frozenset[str] = frozenset(typing.get_args(ConfirmationOutcome))
_COVERAGE_LEVELS: frozenset[str] = frozenset(typing.get_args(CoverageLevel))
_ELIGIBILITY_STATUSES: frozenset[str] = frozenset(typing.get_args(EligibilityCheckStatus))
_RESPONSIBLE: frozenset[str] = frozenset(typing.get_args(ResponsibleParty))


def _word(value: str | None) -> str:
    return re.sub(r"[\s-]+", "_", _text(value).lower())


def _gender(*values: str | None) -> AdministrativeGender | None:
    for value in values:
        found = _GENDERS.get(_word(value))
        if found is not None:
            return found
    return None


def relationship(value: str | None) -> Relationship:
    """CareCloud's relationship word as the domain's; its rarer values become ``other``."""
    word = _word(value)
    if not word:
        return "unknown"
    return cast(Relationship, word) if word in _RELATIONSHIPS else "other"


def policy_type(value: str | None) -> InsurancePolicyType:
    """``insurance_policy_type`` (or a display word such as ``Commercial``) as the domain's."""
    word = _word(value)
    if word in _POLICY_TYPES:
        return cast(InsurancePolicyType, word)
    return _POLICY_ALIASES.get(word, "other")


def phone_kind(value: str | None) -> PhoneKind:
    """A phone type code (``B``, ``C``, ``TF``...) or word (``Business``) as the domain's kind."""
    return _PHONE_KINDS.get(_word(value), "other")


def payer_kind(plan_types: Iterable[str | None]) -> PayerKind:
    """What kind of payer offers plans of these types (the v2 payer directory does not say).

    Blue Cross Blue Shield if any plan is BCBS; Medicare, Medicaid, TRICARE, workers' comp or
    auto when every plan is of that family; commercial otherwise, ``other`` without plans.
    """
    kinds = [policy_type(t) for t in plan_types]
    if not kinds:
        return "other"
    if "blue_cross_blue_shield" in kinds:
        return "bcbs"
    families: list[tuple[PayerKind, tuple[str, ...]]] = [
        ("medicare", ("medicare_",)),
        ("medicaid", ("medicaid",)),
        ("tricare", ("champus", "champ_va")),
        ("workers_comp", ("workers_compensation",)),
        ("auto", ("auto_insurance",)),
    ]
    for kind, prefixes in families:
        if all(k.startswith(prefixes) for k in kinds):
            return kind
    return "commercial"


_STATUS_CODES: dict[str, AppointmentStatus] = {
    "P": AppointmentStatus.SCHEDULED,
    "I": AppointmentStatus.ARRIVED,
    "O": AppointmentStatus.CHECKED_OUT,
    "C": AppointmentStatus.CANCELLED,
    "R": AppointmentStatus.RESCHEDULED,
    "N": AppointmentStatus.NO_SHOW,
}


def appointment_status(code: str | None, name: str | None, is_confirmed: bool) -> AppointmentStatus:
    """The domain status of an upstream status code (``P I O C R``, ``N``) or, for a
    practice-defined code, of its name; a pending appointment that is confirmed is ``confirmed``.
    """
    status = _STATUS_CODES.get(_text(code).upper())
    if status is None:
        words = set(re.findall(r"[a-z]+", _text(name).lower()))
        if {"no", "show"} <= words or "noshow" in words:
            status = AppointmentStatus.NO_SHOW
        elif any(w.startswith("cancel") for w in words):
            status = AppointmentStatus.CANCELLED
        elif any(w.startswith("resched") for w in words):
            status = AppointmentStatus.RESCHEDULED
        elif words & {"out", "departed", "completed"}:
            status = AppointmentStatus.CHECKED_OUT
        elif words & {"in", "arrived"}:
            status = AppointmentStatus.ARRIVED
        else:
            status = AppointmentStatus.SCHEDULED
    if status is AppointmentStatus.SCHEDULED and is_confirmed:
        return AppointmentStatus.CONFIRMED
    return status


# --- contacts --------------------------------------------------------------------------------------


def _coordinate(value: float | str | None) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return float(value)


def _address(run: _Run, a: AddressPayload, use: AddressUse) -> Address | None:
    state = _valid(run, a, "state_code", _state)
    if state is not None:
        a.state_name  # noqa: B018 - the same state's name, carried by its code
    country = _valid(run, a, "country", _country)
    latitude = _valid(run, a, "latitude", _coordinate)
    longitude = _valid(run, a, "longitude", _coordinate)
    if (latitude is None) != (longitude is None):
        run.reject(a, "latitude" if latitude is not None else "longitude")
        latitude = longitude = None
    data: dict[str, Any] = {
        "line1": _text(a.line1),
        "line2": _text(a.line2),
        "line3": _text(a.line3),
        "city": _text(a.city),
        "state": state,
        "zip_code": _valid(run, a, "zip_code", _zip),
        "county": _text(a.county_name),
        "latitude": latitude,
        "longitude": longitude,
        "use": use,
        "is_primary": bool(a.is_primary),
    }
    if country is not None:
        data["country"] = country
    try:
        return Address(**data)
    except ValidationError:
        run.reject_path(_path_of(a))
        return None


def _addresses(run: _Run, items: Sequence[AddressPayload], use: AddressUse) -> tuple[Address, ...]:
    found = (_address(run, a, use) for a in items)
    return _one_primary(run, [a for a in found if a is not None], items)


def _phone(run: _Run, p: PhonePayload, default_kind: PhoneKind = "other") -> Phone | None:
    number = _valid(run, p, "phone_number", _phone_number)
    if number is None:
        return None
    kind = phone_kind(p.phone_type) if p.phone_type else default_kind
    extension = _text(p.extension) or None
    try:
        return Phone(number=number, kind=kind, extension=extension, is_primary=bool(p.is_primary))
    except ValidationError:
        run.reject(p, "extension")
        return Phone(number=number, kind=kind, is_primary=bool(p.is_primary))


def _phones(run: _Run, items: Sequence[PhonePayload]) -> tuple[Phone, ...]:
    found = (_phone(run, p) for p in items)
    return _one_primary(run, [p for p in found if p is not None], items)


_Contact = TypeVar("_Contact", Address, Phone)


def _one_primary(run: _Run, items: list[_Contact], sources: Sequence[Any]) -> tuple[_Contact, ...]:
    """At most one primary: a later primary loses the flag (and is reported as dropped)."""
    kept: list[_Contact] = []
    seen = False
    for item in items:
        if item.is_primary and seen:
            run.reject_path(f"{_path_of(sources[0]).removesuffix('[]')}[].is_primary")
            item = item.model_copy(update={"is_primary": False})
        seen = seen or item.is_primary
        kept.append(item)
    return tuple(kept)


def _person_name(
    run: _Run, obj: Any, first: str | None, last: str | None, middle: str | None = None
) -> PersonName | None:
    if not _text(first) or not _text(last):
        return None
    try:
        return PersonName(first=_text(first), last=_text(last), middle=_text(middle))
    except ValidationError:  # pragma: no cover - both parts were checked non-empty
        run.reject_path(_path_of(obj))
        return None


# --- patients --------------------------------------------------------------------------------------


def map_patient(
    wire: PatientPayload | PatientSearchItem,
    ctx: Context,
    *,
    balances: Sequence[BalancePayload] = (),
) -> Mapped[Patient]:
    """A patient from ``GET /v2/patients/{id}`` (or, with less, a search hit), with the coverages
    its insurance profiles embed and, when given, its ``/balance`` rows.

    Raises:
        UnexpectedPayload: the payload cannot make a valid patient.
    """
    run = _Run()
    ref = PatientRef.of(wire)
    pid = ref.patient_id(ctx)
    w = _track(wire, run)
    data: dict[str, Any] = {
        "id": pid,
        "sources": (ctx.source(w.id),),
        "birth_date": w.dob,
        "gender": _gender(w.gender_code, w.gender),
        "last_seen_date": w.last_seen_date,
    }
    w.name  # noqa: B018 - "First Last", carried as the parts below
    name = _person_name(run, w, w.first_name, w.last_name, w.middle_initial)
    identifiers = [
        PatientIdentifier(kind="chart_number", value=w.chart_number),
        PatientIdentifier(kind="v2_id", value=ref.v2_id),
    ]
    if isinstance(wire, PatientPayload):
        s = cast(PatientPayload, w)
        if name is not None:
            name = name.model_copy(update={"prefix": _text(s.prefix), "suffix": _text(s.suffix)})
        for kind, value in (
            ("account_number", s.account_number),
            ("legacy_patient_id", s.legacy_patient_id),
        ):
            if not _empty(value) and str(value).strip():
                identifiers.append(PatientIdentifier(kind=kind, value=str(value).strip()))
        license_number = _text(s.drivers_license_number)
        marital = _MARITAL.get(_word(_first(s.marital_status_code, s.marital_status)))
        ethnicity = _ETHNICITY.get(_word(_first(s.ethnicity_code, s.ethnicity)))
        employment = _text(s.employment_status_code).upper()
        student = _text(s.student_status_code).upper()
        location = s.primary_location
        data.update(
            {
                "death_date": s.date_of_death,
                "ssn": _valid(run, s, "ssn", _ssn),
                "email": _valid(run, s, "email_address", _email),
                "addresses": _addresses(run, s.addresses, "home"),
                "phones": _phones(run, s.phones),
                "drivers_license": None
                if not license_number
                else DriversLicense(
                    number=license_number,
                    state=_valid(run, s, "drivers_license_state_code", _state),
                ),
                "marital_status": marital,
                "language": _twin(run, s, "language_code", "language", _language),
                "race": _twin(run, s, "race_code", "race", _race),
                "ethnicity": ethnicity,
                "employment_status": employment if employment in _EMPLOYMENT else None,
                "student_status": student if student in _STUDENT else None,
                "employer_name": _text(s.employer_name),
                "school_name": _text(s.school_name),
                "active": _active(s.status, s.status_id),
                "primary_location_id": None if location is None else _location_id(ctx, location.id),
                "primary_provider_id": _provider_id(ctx, s.primary_provider_id),
                "primary_care_physician_npi": _valid(run, s, "primary_care_physician_npi", _npi),
                "referring_physician_npi": _valid(run, s, "referring_physician_npi", _npi),
                "guarantor": _guarantor(run, s.responsible_party),
                "coverages": _coverages(run, ctx, s.insurance_profiles, ref),
                "created_at": s.created_at,
                "updated_at": s.updated_at,
            }
        )
        for unknown, field in (
            (marital is None, "marital_status_code" if s.marital_status_code else "marital_status"),
            (ethnicity is None, "ethnicity_code" if s.ethnicity_code else "ethnicity"),
            (bool(employment) and employment not in _EMPLOYMENT, "employment_status_code"),
            (bool(student) and student not in _STUDENT, "student_status_code"),
        ):
            if unknown and not _empty(getattr(wire, field, None)):
                run.reject(s, field)
    else:
        h = cast(PatientSearchItem, w)
        data["primary_location_id"] = _location_id(ctx, h.primary_location_id)
    if name is None:
        raise UnexpectedPayload(
            f"v2 patient {ref.v2_id} has no first or last name",
            field_path="last_name" if _text(wire.first_name) else "first_name",
            endpoint=ctx.endpoint,
        )
    data["name"] = name
    data["identifiers"] = tuple(identifiers)
    if balances:
        brun = _Run()
        data["balances"] = tuple(_balance(ctx, _track(b, brun), ref, None) for b in balances)
    patient = _build(Patient, "patient", ref.v2_id, ctx, **data)
    return Mapped(patient, _dropped(run, wire))


def _active(status: str | None, status_id: int | None) -> bool:
    word = _word(status)
    if word:
        return word in ("active", "a")
    return status_id != 2


def _guarantor(run: _Run, party: ResponsiblePartyPayload | None) -> Guarantor | None:
    if party is None:
        return None
    rel = relationship(
        _first(party.relationship, party.responsible_party_person_relationship_type_code)
    )
    if rel == "self":
        return None
    party.name  # noqa: B018 - "First Last", carried as the parts
    name = _person_name(run, party, party.first_name, party.last_name, party.middle_initial)
    if name is None:
        run.reject_path(_path_of(party))
        return None
    try:
        return Guarantor(
            relationship=rel,
            name=name,
            birth_date=party.dob,
            gender=_gender(party.gender),
            email=_valid(run, party, "email", _email),
            addresses=_addresses(run, party.addresses, "home"),
            phones=_phones(run, party.phones),
        )
    except ValidationError:
        run.reject_path(_path_of(party))
        return None


# --- insurance -------------------------------------------------------------------------------------


def _insured(run: _Run, i: InsuredPayload | None) -> Insured:
    if i is None:
        return Insured()
    rel = relationship(i.relation_to_patient)
    name = _person_name(run, i, i.first_name, i.last_name, i.middle_initial)
    try:
        return Insured(
            relationship=rel,
            name=name,
            birth_date=i.date_of_birth,
            gender=_gender(i.gender),
            addresses=_addresses(run, i.addresses, "home"),
            phones=_phones(run, i.phones),
        )
    except ValidationError:
        run.reject_path(_path_of(i))
        return Insured(relationship=rel if rel != "self" or name else "self")


def _coverage(
    run: _Run,
    ctx: Context,
    p: InsurancePolicyPayload,
    profile: InsuranceProfilePayload,
    ref: PatientRef,
) -> Coverage:
    plan = p.plan
    payer = p.payer
    return _build(
        Coverage,
        "insurance policy",
        str(p.id),
        ctx,
        id=CoverageId.new(ctx.key("coverage", str(p.id))),
        sources=(ctx.source(str(p.id)),),
        patient_id=ref.patient_id(ctx),
        payer_id=_payer_id(ctx, payer.id),
        payer_name=_text(payer.name),
        plan_name="" if plan is None else _text(plan.name),
        policy_type=policy_type(p.type),
        priority=p.policy_priority,
        profile_name=_text(profile.name),
        is_default_profile=profile.default,
        member_number=p.member_number,
        policy_number=_text(p.policy_number),
        group_number=_text(p.group_number),
        group_name=_text(p.group_name),
        effective_from=p.effective_from,
        effective_to=p.effective_to,
        copay=_valid(run, p, "co_payment", to_money),
        deductible=_valid(run, p, "deductible", to_money),
        requires_authorization=bool(p.requires_authorization),
        insured=_insured(run, p.insured),
    )


def _coverages(
    run: _Run, ctx: Context, profiles: Sequence[InsuranceProfilePayload], ref: PatientRef
) -> tuple[Coverage, ...]:
    found = []
    for profile in profiles:
        for policy in profile.insurance_policies:
            try:
                found.append(_coverage(run, ctx, policy, profile, ref))
            except UnexpectedPayload:
                run.reject_path(_path_of(policy))
    return tuple(found)


def map_coverage(
    policy: InsurancePolicyPayload,
    ctx: Context,
    *,
    patient: PatientRef,
    profile: InsuranceProfilePayload,
) -> Mapped[Coverage]:
    """One policy of ``profile`` (from ``GET /v2/patients/{id}/insurances``).

    ``dropped`` covers the policy only (the profile's own fields are reported by
    ``map_coverages``).

    Raises:
        UnexpectedPayload: the policy cannot make a valid coverage (e.g. no member number).
    """
    run = _Run()
    prun = _Run()
    coverage = _coverage(run, ctx, _track(policy, run), _track(profile, prun), patient)
    return Mapped(coverage, _dropped(run, policy))


def map_coverages(
    profiles: Sequence[InsuranceProfilePayload], ctx: Context, *, patient: PatientRef
) -> Mapped[tuple[Coverage, ...]]:
    """Every policy of every profile; a policy that cannot make a coverage is dropped."""
    run = _Run()
    tracked = [_wrap(p, "[]", run) for p in profiles]
    coverages = _coverages(run, ctx, tracked, patient)
    present: set[str] = set()
    for profile in profiles:
        present |= present_paths(profile, "[]")
    dropped = {p for p in present if p not in run.used} | run.rejected
    return Mapped(coverages, tuple(sorted(dropped)))


def map_payer(
    wire: PayerPayload, ctx: Context, *, plans: Sequence[PlanPayload] = ()
) -> Mapped[Payer]:
    """A payer of the directory, with its plans from ``GET /v2/payers/{id}/plans`` when given.

    ``kind`` is not in the directory: it is inferred from the plans' types (``payer_kind``).

    Raises:
        UnexpectedPayload: no usable ``payer_code``, or another invalid required value.
    """
    run = _Run()
    prun = _Run()
    w = _track(wire, run)
    tracked_plans = [_track(p, prun) for p in plans]
    address = None if w.address is None else _address(run, w.address, "mailing")
    phones = _phones(run, w.phones)
    payer_plans: list[PayerPlan] = []
    for p in tracked_plans:
        if p.name and p.name not in {pp.name for pp in payer_plans}:
            payer_plans.append(
                PayerPlan(
                    name=p.name,
                    policy_type=policy_type(p.insurance_policy_type),
                    upstream_id=str(p.id),
                )
            )
    payer = _build(
        Payer,
        "payer",
        str(wire.id),
        ctx,
        id=_payer_id(ctx, w.id),
        sources=(ctx.source(str(wire.id)),),
        name=w.name,
        payer_code=_text(w.payer_code),
        kind=payer_kind(p.insurance_policy_type for p in plans),
        pending=bool(w.pending),
        address=address,
        phones=phones,
        plans=tuple(payer_plans),
    )
    return Mapped(payer, _dropped(run, wire) + _plans_dropped(prun, plans))


def _plans_dropped(run: _Run, plans: Sequence[PlanPayload]) -> tuple[str, ...]:
    present: set[str] = set()
    for plan in plans:
        present |= {f"plans[].{p}" for p in present_paths(plan)}
    used = {f"plans[].{p}" for p in run.used}
    return tuple(sorted(present - used))


# --- practice ---------------------------------------------------------------------------------------


def map_provider(wire: ProviderPayload, ctx: Context) -> Mapped[Provider]:
    """A billing provider; its credentials come from ``name`` (``"First Last, MD"``).

    Raises:
        UnexpectedPayload: the NPI is not valid, or the name is incomplete.
    """
    run = _Run()
    w = _track(wire, run)
    full = _text(w.name)
    credentials = full.rsplit(",", 1)[1].strip() if "," in full else ""
    specialty = w.specialty
    taxonomy = None if specialty is None else _valid(run, specialty, "taxonomy", _taxonomy)
    specialty_name = None if specialty is None else _text(specialty.name) or None
    if specialty_name and taxonomy is None:
        run.reject(specialty, "name")
        specialty_name = None
    phone = None
    number = _valid(run, w, "phone_number", _phone_number)
    if number is not None:
        phone = Phone(number=number, kind="work", is_primary=True)
    provider = _build(
        Provider,
        "provider",
        str(wire.id),
        ctx,
        id=_provider_id(ctx, w.id),
        sources=(ctx.source(str(wire.id)),),
        npi=w.npi,
        name=PersonName(first=w.first_name, last=w.last_name)
        if _text(wire.first_name) and _text(wire.last_name)
        else None,
        credentials=credentials,
        email=_valid(run, w, "email", _email),
        phone=phone,
        taxonomy=taxonomy,
        specialty_name=specialty_name,
    )
    return Mapped(provider, _dropped(run, wire))


def map_location(wire: LocationPayload, ctx: Context) -> Mapped[Location]:
    """A practice location (the v2 list names no time zone; ``time_zone`` stays None).

    Raises:
        UnexpectedPayload: no valid place of service code.
    """
    run = _Run()
    w = _track(wire, run)
    location = _build(
        Location,
        "location",
        str(wire.id),
        ctx,
        id=_location_id(ctx, w.id),
        sources=(ctx.source(str(wire.id)),),
        name=w.name,
        mnemonic=_text(w.mnemonic),
        npi=_valid(run, w, "npi", _npi),
        place_of_service=_text(w.place_of_service_code),
        address=None if w.address is None else _address(run, w.address, "work"),
        phones=_phones(run, w.phones),
        visible_in_scheduler=w.is_visible_appointment_scheduler is not False,
        is_default=bool(w.is_default),
    )
    return Mapped(location, _dropped(run, wire))


def map_resource(
    wire: ResourcePayload | ResourceDetailPayload,
    ctx: Context,
    *,
    visit_reasons: Sequence[VisitReasonPayload] = (),
) -> Mapped[Resource]:
    """A schedulable resource; ``visit_reasons`` from
    ``GET /v2/appointment_resources/{id}/visit_reasons`` fill ``visit_reason_ids``."""
    run = _Run()
    vrun = _Run()
    w = _track(wire, run)
    default_provider = None
    if isinstance(wire, ResourceDetailPayload):
        ref = cast(ResourceDetailPayload, w).default_provider
        default_provider = None if ref is None else _provider_id(ctx, ref.id)
    reasons = [_track(v, vrun) for v in visit_reasons]
    ids = [_visit_reason_id(ctx, v.id) for v in reasons]
    resource = _build(
        Resource,
        "resource",
        str(wire.id),
        ctx,
        id=_resource_id(ctx, w.id),
        sources=(ctx.source(str(wire.id)),),
        name=w.name,
        code=_text(w.code),
        description=_text(w.description),
        default_provider_id=default_provider,
        bookable_by_request=w.is_for_requests is not False,
        confirmation_mode=_text(w.appointment_confirmation),
        sort_code=w.sort_code,
        visit_reason_ids=tuple(dict.fromkeys(i for i in ids if i is not None)),
        active=_text(w.status).upper() in ("", "A"),
        created_at=w.created_at,
        updated_at=w.updated_at,
    )
    return Mapped(resource, _dropped(run, wire))


def map_visit_reason(
    wire: VisitReasonPayload,
    ctx: Context,
    *,
    duration_minutes: int,
    bookable_by_request: bool = True,
) -> Mapped[VisitReason]:
    """A visit reason. The v2 list sends only ``id``, ``name`` and ``description``: the caller
    supplies the default duration (e.g. ``usual_duration`` of an availability search without
    ``duration``) and whether it is listed with ``request_types_only=true``.

    Raises:
        UnexpectedPayload: the duration is out of range.
    """
    run = _Run()
    w = _track(wire, run)
    reason = _build(
        VisitReason,
        "visit reason",
        str(wire.id),
        ctx,
        id=_visit_reason_id(ctx, w.id),
        sources=(ctx.source(str(wire.id)),),
        name=w.name,
        description=_text(w.description),
        duration_minutes=duration_minutes,
        bookable_by_request=bookable_by_request,
    )
    return Mapped(reason, _dropped(run, wire))


def usual_duration(groups: Iterable[AvailabilityGroupPayload]) -> int | None:
    """The most common slot length, in minutes, of an availability search: a visit reason's
    default duration when the search was made without ``duration``."""
    lengths: dict[int, int] = {}
    for group in groups:
        for slot in group.slots:
            minutes = int((slot.end_time - slot.start_time).total_seconds() // 60)
            lengths[minutes] = lengths.get(minutes, 0) + 1
    return max(lengths, key=lambda m: (lengths[m], -m)) if lengths else None


def _slot(
    ctx: Context,
    g: AvailabilityGroupPayload,
    s: SlotPayload,
    default_providers: Mapping[int, int],
) -> Slot:
    resource = g.resource.id
    start = s.start_time
    upstream_id = f"{resource}@{start.isoformat()}"
    return _build(
        Slot,
        "slot",
        upstream_id,
        ctx,
        sources=(ctx.source(upstream_id),),
        start=start,
        end=s.end_time,
        location_id=_location_id(ctx, g.location.id),
        resource_id=_resource_id(ctx, resource),
        visit_reason_id=_visit_reason_id(ctx, g.visit_reason.id),
        provider_id=_provider_id(ctx, default_providers.get(resource or 0)),
    )


def map_slot(
    slot: SlotPayload,
    group: AvailabilityGroupPayload,
    ctx: Context,
    *,
    default_providers: Mapping[int, int] | None = None,
) -> Mapped[Slot]:
    """One free slot of an availability group. ``default_providers`` (resource id to provider
    id, from ``GET /v2/appointment_resources/{id}``) fills ``provider_id``.

    Raises:
        UnexpectedPayload: the slot ends before it starts, or names no location or resource.
    """
    run = _Run()
    grun = _Run()
    mapped = _slot(ctx, _track(group, grun), _track(slot, run), default_providers or {})
    return Mapped(mapped, _dropped(run, slot))


def map_slots(
    group: AvailabilityGroupPayload,
    ctx: Context,
    *,
    default_providers: Mapping[int, int] | None = None,
) -> Mapped[tuple[Slot, ...]]:
    """Every slot of an availability group (the group's names are dropped: the domain keys on
    ids)."""
    run = _Run()
    g = _track(group, run)
    slots = tuple(_slot(ctx, g, s, default_providers or {}) for s in g.slots)
    return Mapped(slots, _dropped(run, group))


# --- appointments ----------------------------------------------------------------------------------


def _confirmation(run: _Run, c: ConfirmationPayload) -> AppointmentConfirmation:
    method = _word(c.communication_method)
    if method not in _CONFIRMATION_METHODS:
        run.reject(c, "communication_method")
        method = "other"
    outcome = _word(c.communication_outcome)
    if outcome and outcome not in _CONFIRMATION_OUTCOMES:
        run.reject(c, "communication_outcome")
    c.appointment_id  # noqa: B018 - the appointment it belongs to: the record it is attached to
    return AppointmentConfirmation(
        method=cast(ConfirmationMethod, method),
        outcome=cast(ConfirmationOutcome, outcome) if outcome in _CONFIRMATION_OUTCOMES else None,
        method_description=_text(c.communication_method_description),
        comments=_text(c.comments),
        confirmed_at=c.date_confirmed,
        recorded_at=c.created_at,
    )


def map_confirmation(wire: ConfirmationPayload, ctx: Context) -> Mapped[AppointmentConfirmation]:
    """One confirmation attempt of ``GET /v2/appointments/{id}/confirmations``."""
    del ctx  # a confirmation is part of its appointment: no id or provenance of its own
    run = _Run()
    confirmation = _confirmation(run, _track(wire, run))
    return Mapped(confirmation, _dropped(run, wire))


def map_appointment(
    wire: AppointmentPayload | AppointmentDetailPayload,
    ctx: Context,
    *,
    confirmations: Sequence[ConfirmationPayload] = (),
    cancellation_reasons: Mapping[int, CancellationReasonPayload] | None = None,
) -> Mapped[Appointment]:
    """An appointment (list item or show), with its confirmation history when given.

    Status: ``P`` scheduled (``confirmed`` when ``is_confirmed``), ``I`` arrived, ``O``
    checked out, ``C`` cancelled, ``R`` rescheduled, ``N`` no show; a practice-defined code is
    read by its name (``appointment_status``). ``cancellation_reasons`` (by id, from
    ``GET /v2/appointment_cancellation_reasons``) add the reason's code to the cancellation.

    Raises:
        UnexpectedPayload: the appointment breaks a domain rule (it ends before it starts; it
            departed before it arrived; it is checked in without ``arrived_at``...).
    """
    run = _Run()
    crun = _Run()
    w = _track(wire, run)
    status_ref = w.appointment_status
    status = appointment_status(status_ref.code, status_ref.name, w.is_confirmed)
    cancellation = None
    details = w.cancellation_details
    reason_id = w.appointment_cancellation_reason_id
    cancelled = status in (AppointmentStatus.CANCELLED, AppointmentStatus.RESCHEDULED)
    if cancelled and (details is not None or reason_id is not None):
        key = reason_id if reason_id is not None else (details.id if details else None)
        reason = None if key is None else (cancellation_reasons or {}).get(key)
        cancellation = AppointmentCancellation(
            reason_code="" if reason is None else _text(reason.code),
            reason_name=_text(details.detail if details else None)
            or ("" if reason is None else _text(reason.name)),
            comments="" if details is None else _text(details.comments),
        )
        if details is not None:
            details.id  # noqa: B018 - the same reason as appointment_cancellation_reason_id
    elif details is not None or reason_id is not None:
        # only a cancelled or rescheduled appointment has a cancellation in the domain
        if details is not None:
            run.reject_path("cancellation_details")
        if reason_id is not None:
            run.reject(w, "appointment_cancellation_reason_id")
    extended: dict[str, Any] = {}
    if isinstance(wire, AppointmentDetailPayload):
        d = cast(AppointmentDetailPayload, w)
        preferred = _word(d.preferred_confirmation_method)
        if preferred and preferred not in _CONFIRMATION_METHODS:
            run.reject(d, "preferred_confirmation_method")
        extended = {
            "preferred_confirmation_method": preferred
            if preferred in _CONFIRMATION_METHODS
            else None,
            "encounter_id": None
            if d.encounter_id is None
            else EncounterId.new(ctx.key("encounter", str(d.encounter_id))),
            "created_by_application": d.created_by_application,
        }
    tracked_confirmations = [_track(c, crun) for c in confirmations]
    appointment = _build(
        Appointment,
        "appointment",
        wire.id,
        ctx,
        id=AppointmentId.new(ctx.key("appointment", w.id)),
        sources=(ctx.source(wire.id),),
        patient_id=patient_id(ctx, w.patient.chart_number),
        provider_id=_provider_id(ctx, w.provider_id),
        location_id=None if w.location is None else _location_id(ctx, w.location.id),
        resource_id=_resource_id(ctx, w.resource_id),
        visit_reason_id=_visit_reason_id(ctx, w.visit_reason_id),
        status=status,
        upstream_status=UpstreamStatus(code=status_ref.code, name=_text(status_ref.name)),
        start=w.start_time,
        end=w.end_time,
        chief_complaint=_text(w.chief_complaint),
        comments=_text(w.comments),
        is_confirmed=w.is_confirmed,
        confirmations=tuple(_confirmation(crun, c) for c in tracked_confirmations),
        patient_contacted=bool(w.patient_contacted),
        is_force_overbook=bool(w.is_force_overbook),
        cancellation=cancellation,
        arrived_at=w.arrived_at,
        departed_at=w.departed_at,
        referring_physician_npi=_valid(run, w, "referring_physician_npi", _npi),
        updated_by_application=w.updated_by_application,
        created_at=w.created_at,
        updated_at=w.updated_at,
        **extended,
    )
    dropped = _dropped(run, wire) + tuple(
        f"confirmations[].{p}" for p in _dropped(crun, *confirmations)
    )
    return Mapped(appointment, tuple(sorted(set(dropped))))


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
    status = _word(t.transaction_status)
    if status not in _TRANSACTION_STATUSES:
        raise UnexpectedPayload(
            f"v2 transaction {upstream_id} has an unknown transaction_status",
            field_path="transaction_status",
            endpoint=ctx.endpoint,
        )
    return cast(TransactionStatus, status)


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
    kind = _word(w.transaction_type)
    if kind not in _LEDGER_KINDS:
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
    responsible = _word(b.balance_type)
    if responsible not in _RESPONSIBLE:
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
        aging=AgingBuckets(
            current=to_money(b.current),
            over_30=to_money(b.greater_than_30),
            over_60=to_money(b.greater_than_60),
            over_90=to_money(b.greater_than_90),
            over_120=to_money(b.greater_than_120),
        ),
        unbilled=to_money(b.unbilled),
        unapplied_credit=to_money(b.unapplied_credit),
        total=to_money(b.total),
        as_of=as_of,
    )


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


# --- documents and eligibility ---------------------------------------------------------------------


def map_document(wire: DocumentPayload, ctx: Context, *, patient: PatientRef) -> Mapped[Document]:
    """A clinical document's metadata.

    Raises:
        UnexpectedPayload: it belongs to another patient, or its content type is not a MIME type.
    """
    run = _Run()
    w = _track(wire, run)
    if w.patient_id != patient.v2_id.lower():
        raise UnexpectedPayload(
            f"v2 document {wire.id} belongs to another patient than requested",
            field_path="patient_id",
            endpoint=ctx.endpoint,
        )
    coding = w.document_type
    loinc = None
    if coding is not None:
        system = _text(coding.system)
        if system in ("", "http://loinc.org"):
            loinc = _valid(run, coding, "code", _loinc)
    document = _build(
        Document,
        "document",
        str(wire.id),
        ctx,
        id=DocumentId.new(ctx.key("document", str(w.id))),
        sources=(ctx.source(str(wire.id)),),
        patient_id=patient.patient_id(ctx),
        name=w.name,
        description=_text(w.description),
        source_name=_text(w.document_source_name),
        type_loinc=loinc,
        document_date=w.document_date,
        content_type=_text(w.content_type),
        size_bytes=w.size,
    )
    return Mapped(document, _dropped(run, wire))


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
    level = _word(b.coverage_level)
    if level and level not in _COVERAGE_LEVELS:
        run.reject(b, "coverage_level")
    try:
        return Benefit(
            service_type=service_type,
            coverage_status=status,
            coverage_level=cast(CoverageLevel, level)
            if level in _COVERAGE_LEVELS
            else "individual",
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
    status = _word(w.status)
    if status not in _ELIGIBILITY_STATUSES:
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


__all__ = [
    "ChargeDetails",
    "PatientRef",
    "appointment_status",
    "is_charge",
    "map_appointment",
    "map_balance",
    "map_charge",
    "map_confirmation",
    "map_coverage",
    "map_coverages",
    "map_document",
    "map_eligibility",
    "map_ledger_entry",
    "map_location",
    "map_patient",
    "map_payer",
    "map_provider",
    "map_resource",
    "map_slot",
    "map_slots",
    "map_visit_reason",
    "patient_id",
    "payer_kind",
    "phone_kind",
    "policy_type",
    "present_paths",
    "relationship",
    "usual_duration",
]
