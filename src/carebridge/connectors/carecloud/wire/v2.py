"""Wire models of the CareCloud API v2 (``upstream/carecloud.md`` §2.4-2.6), as the upstream sends them.

::

    patients          PatientSearchResponse{patients[PatientSearchItem]}
                      PatientShowResponse{patient: PatientPayload}
                        ├─ primary_location: PatientLocationPayload ─ address: AddressPayload
                        ├─ responsible_party: ResponsiblePartyPayload ─ addresses[], phones[]
                        ├─ insurance_profiles[InsuranceProfilePayload]
                        ├─ addresses[AddressPayload]
                        └─ phones[PhonePayload]
    insurances        InsurancesResponse{insurance_profiles[InsuranceProfilePayload]}
                        └─ insurance_policies[InsurancePolicyPayload]
                             ├─ plan: NamedRef   ├─ insured: InsuredPayload
                             └─ payer: PolicyPayerPayload
    balance           [BalancePayload]                           (one per balance_type)
    ledger            [TransactionPayload]                       (transactions and charges)
    eligibility       EligibilityCreatedResponse{eligibility_request: EligibilityCreatedPayload}
                      EligibilityResponse{eligibility_request: EligibilityRequestPayload}
                        └─ response: EligibilityAnswerPayload ─ benefits[BenefitPayload]
    documents         DocumentsResponse{documents[DocumentPayload]}, DocumentResponse{document}
    appointments      [AppointmentEnvelope{appointment: AppointmentPayload}]
                      AppointmentDetailResponse{appointment: AppointmentDetailPayload}
                        ├─ appointment_status: AppointmentStatusPayload
                        ├─ patient: AppointmentPatientPayload   ├─ location: NamedRef
                        └─ cancellation_details: CancellationDetailsPayload
                      AppointmentCreatedResponse, CancelAppointmentResponse
    statuses          [AppointmentStatusEnvelope{appointment_status}]
    cancel reasons    [CancellationReasonEnvelope{appointment_cancellation_reason}]
    confirmations     [ConfirmationEnvelope{appointment_confirmation: ConfirmationPayload}]
    availability      [AvailabilityGroupPayload{location, visit_reason, resource, slots[SlotPayload]}]
    providers         ProvidersResponse{providers[ProviderPayload]}, PhysicianResponse{physician}
    locations         LocationsResponse{locations[LocationPayload]}
    resources         [ResourceEnvelope{resource: ResourcePayload}], ResourceDetailResponse
    visit reasons     [VisitReasonPayload]                       (a bare array)
    payers            PayersResponse{payers[PayerPayload]}, PlansResponse{plans[PlanPayload]}

Conventions:
- A field without a default is one the upstream always sends (it may be ``null`` where the type
  says so); its absence is breaking drift. Fields with a default are sent only sometimes.
- Money stays the upstream's decimal string (``"125.00"``, ``"25.0"``): mapping makes it a
  ``Decimal``. Timestamps are practice-local with an offset and must carry one. Dates are
  ``YYYY-MM-DD`` (``MM/DD/YYYY`` is accepted too).
- Patients and appointments have GUID ids (strings); everything else has integer ids.
- Upstream aliases are accepted both ways: ``visit_reason_id`` / ``nature_of_visit_id``,
  ``chief_complaint`` / ``reason_for_visit``, ``phone_type_code`` / ``phone_type``,
  ``extension`` / ``phone_ext``, ``state_code`` / ``state``.
- Each model knows which spelling the upstream used for each field (``upstream_key``), so
  drift reports and the mappers' ``dropped`` paths name the upstream's field, not ours: the
  field's one key, or for a field of several (an ``AliasedV2Model``'s) the one sent.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    model_validator,
)

from carebridge.connectors.carecloud.wire import WireModel

# --- value types ---------------------------------------------------------------------------------

MoneyText = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^-?[0-9]+(\.[0-9]+)?$")
]
"""An amount as the upstream writes it: ``"125.00"`` (``'%.2f'``) or ``"25.0"`` (Ruby BigDecimal)."""

_US_DATE = re.compile(r"([0-9]{2})[/-]([0-9]{2})[/-]([0-9]{4})")


def _date_text(value: Any) -> Any:
    """``MM/DD/YYYY`` or ``MM-DD-YYYY`` as ISO; an empty string as ``None``; the rest unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        match = _US_DATE.fullmatch(text)
        if match:
            month, day, year = match.groups()
            return f"{year}-{month}-{day}"
        return text
    return value


Day = Annotated[date, BeforeValidator(_date_text)]
"""A calendar date (``YYYY-MM-DD``; ``MM/DD/YYYY`` accepted)."""

OptionalDay = Annotated[date | None, BeforeValidator(_date_text)]
"""A date that may be ``null`` or an empty string (both read as ``None``)."""

Timestamp = AwareDatetime
"""A practice-local timestamp with its UTC offset (``2025-07-10T13:00:00-05:00``)."""

Guid = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1)]
"""A v2 GUID (patients, appointments, business entities), lower-cased."""


# --- base ----------------------------------------------------------------------------------------


class V2Model(WireModel):
    """A v2 payload object: extra fields allowed, input never echoed in errors (it may be PHI).

    Each field's key is its preferred spelling (:func:`preferred_spelling`) unless the field has
    several (``state_code`` / ``state``): a model with such a field is an ``AliasedV2Model``,
    whose validator remembers which key the upstream sent. A model without one needs no
    validator of its own (a Python call per model validated), and a class that gains such a
    field without becoming an ``AliasedV2Model`` is refused when it is defined.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    remembers_spelling: ClassVar[bool] = False
    """Whether the model's validator remembers which key each field came under."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        several = [name for name in cls.__pydantic_fields__ if len(upstream_keys(cls, name)) > 1]
        if several and not cls.remembers_spelling:
            raise TypeError(
                f"{cls.__name__}.{several[0]} has several spellings: the model must be an "
                "AliasedV2Model, which remembers the one sent"
            )

    def upstream_key(self, name: str) -> str:
        """The key the upstream used for field ``name`` (its preferred spelling if not read)."""
        private = self.__pydantic_private__
        spelling = private.get("_spelling") if private else None
        if spelling and name in spelling:
            return str(spelling[name])
        if name in type(self).__pydantic_fields__:
            return upstream_keys(type(self), name)[0]
        return name


class AliasedV2Model(V2Model):
    """A v2 payload object with a field the upstream spells more than one way."""

    remembers_spelling: ClassVar[bool] = True

    # The spelling lives in ``__pydantic_private__`` as ``{"_spelling": {...}}``, set by the
    # validator below, not as a declared private attribute: pydantic would then make and fill a
    # private dict for every instance in Python (``init_private_attributes``), ~1 µs a model.

    @model_validator(mode="wrap")
    @classmethod
    def _remember_spelling(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        instance = handler(data)
        if isinstance(data, dict) and instance is not data:
            # Which key each field came from depends only on the keys sent: worked out once per
            # model and key set, and shared (read-only) by every instance of that shape.
            shape = (cls, *data)
            private = _SPELLINGS.get(shape)
            if private is None:
                private = {"_spelling": _spelling_of(cls, data)}
                if len(_SPELLINGS) < SPELLINGS_KEPT:
                    _SPELLINGS[shape] = private
            object.__setattr__(instance, "__pydantic_private__", private)
        return instance


@cache
def preferred_spelling(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> its preferred key, for every field of ``model`` (read-only): the spelling of
    a model without fields of several spellings, and of any model made without validation."""
    return {name: upstream_keys(model, name)[0] for name in model.__pydantic_fields__}


SPELLINGS_KEPT = 4096
"""Distinct (model, key set) spellings remembered; past that each is worked out again."""

_SPELLINGS: dict[tuple[Any, ...], dict[str, dict[str, str]]] = {}
"""(model, *keys sent) -> ``{"_spelling": field name -> key}``, the models' shared private dict."""


def _spelling_of(model: type[BaseModel], data: dict[str, Any]) -> dict[str, str]:
    """Field name -> the key ``data`` carried it under (the first of its spellings present),
    or its preferred spelling when ``data`` did not carry it: every field of ``model``."""
    spelling: dict[str, str] = {}
    for name in model.model_fields:
        keys = upstream_keys(model, name)
        spelling[name] = next((key for key in keys if key in data), keys[0])
    return spelling


@cache
def upstream_keys(model: type[BaseModel], name: str) -> tuple[str, ...]:
    """Every key the upstream may use for field ``name`` of ``model``, the preferred one first."""
    info = model.model_fields[name]
    keys: list[str] = []
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        keys.extend(choice for choice in alias.choices if isinstance(choice, str))
    elif isinstance(alias, str):
        keys.append(alias)
    if info.alias and info.alias not in keys:
        keys.append(info.alias)
    if name not in keys:
        keys.append(name)
    return tuple(keys)


def _either(*keys: str) -> Any:
    """``Field`` that accepts any of ``keys`` (the first is the upstream's documented spelling)."""
    return Field(validation_alias=AliasChoices(*keys))


def _either_or_none(*keys: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(*keys))


# --- shared shapes -------------------------------------------------------------------------------


class NamedRef(V2Model):
    """``{"id", "name"}``: a reference to an integer-keyed record (location, plan, resource...)."""

    id: int | None
    name: str | None


class AddressPayload(AliasedV2Model):
    """An address. Its shape varies by record (patients, locations and payers each send their
    own subset), so every field is optional."""

    line1: str | None = None
    line2: str | None = None
    line3: str | None = None
    city: str | None = None
    state_code: str | None = _either_or_none("state_code", "state")
    state_name: str | None = None
    zip_code: str | None = None
    county_name: str | None = None
    county_fips: str | None = None
    country: str | None = None
    """ISO 3166 alpha-3."""
    country_id: int | None = None
    country_name: str | None = None
    latitude: float | str | None = None
    longitude: float | str | None = None
    is_primary: bool | None = None


class PhonePayload(AliasedV2Model):
    """A phone. Patients send ``phone_type_code``/``extension``; locations and payers send
    ``phone_type``/``phone_ext``; type codes (``B``, ``C``...) or words (``Business``) both occur."""

    phone_number: str | None
    phone_type: str | None = _either_or_none("phone_type_code", "phone_type")
    extension: str | None = _either_or_none("extension", "phone_ext")
    is_primary: bool | None = None


# --- patients ------------------------------------------------------------------------------------


class PatientSearchItem(V2Model):
    """One hit of ``POST /v2/patients/search``."""

    id: Guid
    first_name: str
    last_name: str
    middle_initial: str | None
    name: str | None
    dob: OptionalDay
    account_balance: MoneyText | None
    chart_number: str
    last_seen_date: OptionalDay
    gender: str | None
    gender_code: str | None
    primary_location_id: int | None
    photo: Any


class PatientSearchResponse(V2Model):
    patients: list[PatientSearchItem]


class PatientLocationPayload(V2Model):
    """``patient.primary_location``."""

    id: int
    name: str | None
    mnemonic: str | None
    npi: str | None
    is_default: bool | None
    address: AddressPayload | None


class ResponsiblePartyPayload(AliasedV2Model):
    """``patient.responsible_party`` (the guarantor). A patient who is their own guarantor
    comes as ``{"relationship": "self"}``."""

    id: int | str | None = None
    relationship: str | None = None
    responsible_party_person_relationship_type_code: str | None = None
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    middle_initial: str | None = None
    dob: OptionalDay = _either_or_none("dob", "date_of_birth")
    gender: str | None = None
    email: str | None = None
    addresses: list[AddressPayload] = Field(default_factory=list)
    phones: list[PhonePayload] = Field(default_factory=list)


class InsuredPayload(V2Model):
    """``insurance_policies[].insured``: the subscriber."""

    relation_to_patient: str | None
    first_name: str | None = None
    last_name: str | None = None
    middle_initial: str | None = None
    date_of_birth: OptionalDay = None
    gender: str | None = None
    addresses: list[AddressPayload] = Field(default_factory=list)
    phones: list[PhonePayload] = Field(default_factory=list)


class PolicyPayerPayload(AliasedV2Model):
    """``insurance_policies[].payer``."""

    id: int
    name: str
    pending: bool | None = Field(alias="payer_pending?")
    phones: list[PhonePayload]
    address: AddressPayload | None


class InsurancePolicyPayload(V2Model):
    """One policy of an insurance profile."""

    id: int
    policy_priority: int
    member_number: str
    policy_number: str | None
    effective_from: OptionalDay
    effective_to: OptionalDay
    co_payment: MoneyText | None
    deductible: MoneyText | None
    type: str | None
    """``insurance_policy_type`` (``ppo``, ``medicare_b``...) or a display word (``Commercial``)."""
    group_name: str | None
    requires_authorization: bool | None
    plan: NamedRef | None
    insured: InsuredPayload | None
    payer: PolicyPayerPayload
    group_number: str | None = None


class InsuranceProfilePayload(V2Model):
    """An insurance profile: a named set of up to four policies."""

    id: int
    name: str | None
    self_pay: bool
    default: bool
    insurance_policies: list[InsurancePolicyPayload]


class InsurancesResponse(V2Model):
    """``GET /v2/patients/{id}/insurances``."""

    insurance_profiles: list[InsuranceProfilePayload]


class PatientPayload(V2Model):
    """``GET /v2/patients/{id}`` → ``{"patient": {...}}`` (S1 ``PatientShow``)."""

    id: Guid
    first_name: str
    last_name: str
    middle_initial: str | None
    prefix: str | None
    suffix: str | None
    ssn: str | None
    name: str | None
    dob: OptionalDay
    email_address: str | None
    status: str | None
    """``Active`` / ``Inactive``."""
    status_id: int | None
    legacy_patient_id: str | int | None
    chart_number: str
    account_number: str | None
    business_entity_id: str | None
    business_entity_name: str | None
    date_of_death: OptionalDay
    last_seen_date: OptionalDay
    drivers_license_number: str | None
    marital_status: str | None
    language: str | None
    language_code: str | None
    gender: str | None
    gender_code: str | None
    ethnicity: str | None
    ethnicity_code: str | None
    race: str | None
    race_code: str | None
    primary_location: PatientLocationPayload | None
    primary_provider_id: int | None
    referring_physician_npi: str | None
    responsible_party: ResponsiblePartyPayload | None
    insurance_profiles: list[InsuranceProfilePayload]
    addresses: list[AddressPayload]
    phones: list[PhonePayload]
    photo: Any
    marital_status_code: str | None = None
    employment_status_code: str | None = None
    student_status_code: str | None = None
    employer_name: str | None = None
    school_name: str | None = None
    drivers_license_state_code: str | None = None
    primary_care_physician_npi: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class PatientShowResponse(V2Model):
    patient: PatientPayload


class PatientCreatedResponse(V2Model):
    """``POST /v2/patients`` → 201 ``{"patient": "<guid>"}``."""

    patient: Guid


# --- balance and ledger --------------------------------------------------------------------------


class BalancePayload(V2Model):
    """One row of ``GET /v2/patients/{id}/balance``: aging for one ``balance_type``."""

    balance_type: str
    unapplied_credit: MoneyText
    unbilled: MoneyText
    current: MoneyText
    greater_than_30: MoneyText
    greater_than_60: MoneyText
    greater_than_90: MoneyText
    greater_than_120: MoneyText
    total: MoneyText


class TransactionPayload(V2Model):
    """One ledger transaction (``/transactions``, and ``/charges`` for the charge kinds)."""

    id: int
    amount: MoneyText
    balance: MoneyText | None
    unapplied_credit: MoneyText | None
    posting_date: Day
    transaction_type: str
    transaction_status: str
    location_id: int | None
    provider_id: int | None
    attending_provider_id: int | None
    units: int | None
    description: str | None


class ChargeCreatedPayload(V2Model):
    """``POST /v2/patients/{id}/charge`` → 201 ``[{"id", "encounter_id"}]``."""

    id: int
    encounter_id: int | None


# --- eligibility ---------------------------------------------------------------------------------


class BenefitPayload(V2Model):
    """One benefit of an electronic eligibility answer (the shape is undocumented upstream)."""

    service_type_code: str
    co_payment: MoneyText | None = None
    co_insurance: MoneyText | None = None
    """The patient's share as a fraction (``"0.20"``)."""
    deductible: MoneyText | None = None
    deductible_remaining: MoneyText | None = None
    out_of_pocket_max: MoneyText | None = None
    out_of_pocket_remaining: MoneyText | None = None
    coverage_level: str | None = None
    in_network: bool | None = None


class EligibilityAnswerPayload(V2Model):
    """The answer of an electronic eligibility request (a raw pass-through upstream)."""

    coverage_status: str
    benefits: list[BenefitPayload]
    payer: NamedRef | None = None
    member_number: str | None = None
    plan_type: str | None = None
    reason: str | None = None


class EligibilityCreatedPayload(V2Model):
    """``POST /v2/patients/{id}/eligibility_request`` → 201."""

    id: int
    status: str


class EligibilityCreatedResponse(V2Model):
    eligibility_request: EligibilityCreatedPayload


class EligibilityRequestPayload(EligibilityCreatedPayload):
    """``GET /v2/patients/{id}/eligibility_request/{request_id}``."""

    eligibility_date: Day
    response: EligibilityAnswerPayload | None


class EligibilityResponse(V2Model):
    eligibility_request: EligibilityRequestPayload


# --- documents -----------------------------------------------------------------------------------


class CodingPayload(V2Model):
    system: str | None
    code: str | None


class DocumentPayload(V2Model):
    """A clinical document's metadata (``GET /v2/documents?patient_id=``)."""

    id: int
    patient_id: Guid
    name: str
    description: str | None
    document_source_name: str | None
    document_type: CodingPayload | None
    document_date: Day
    content_type: str
    size: int


class DocumentsResponse(V2Model):
    documents: list[DocumentPayload]


class DocumentResponse(V2Model):
    document: DocumentPayload


# --- appointments --------------------------------------------------------------------------------


class AppointmentStatusPayload(V2Model):
    """A practice-configured appointment status: ``P I O C R`` plus the practice's own."""

    id: int
    code: str
    name: str | None


class AppointmentStatusEnvelope(V2Model):
    """``GET /v2/appointment_statuses`` item."""

    appointment_status: AppointmentStatusPayload


class AppointmentPatientPayload(V2Model):
    """``appointment.patient``."""

    id: Guid
    chart_number: str
    date_of_birth: OptionalDay
    first_name: str | None
    last_name: str | None
    middle_initial: str | None
    gender_id: int | None
    email: str | None
    patient_status: str | None
    primary_phone_number: str | None


class CancellationDetailsPayload(V2Model):
    """``appointment.cancellation_details``."""

    id: int | None
    detail: str | None
    comments: str | None


class AppointmentPayload(AliasedV2Model):
    """An appointment as listed (``_appointment.jbuilder``), wrapped ``{"appointment": {...}}``."""

    id: Guid
    appointment_status: AppointmentStatusPayload
    patient: AppointmentPatientPayload
    location: NamedRef | None
    cancellation_details: CancellationDetailsPayload | None
    chief_complaint: str | None = _either("chief_complaint", "reason_for_visit")
    task_id: int | None
    updated_by_application: str | None
    appointment_cancellation_reason_id: int | None
    arrived_at: Timestamp | None
    comments: str | None
    confirmation_details: Any
    departed_at: Timestamp | None
    exam_room_id: int | None
    is_confirmed: bool
    is_force_overbook: bool | None
    patient_contacted: bool | None
    recurrence_id: int | None
    recurrence_index: int | None
    referring_physician_npi: str | None
    visit_reason_id: int | None = _either("visit_reason_id", "nature_of_visit_id")
    resource_id: int | None
    provider_id: int
    start_time: Timestamp
    end_time: Timestamp
    created_at: Timestamp | None
    updated_at: Timestamp | None
    business_entity_id: str | None


class AppointmentDetailPayload(AppointmentPayload):
    """An appointment as shown (``_appointment_extended.jbuilder``): show, check-in, check-out
    and pending return it."""

    admit_diagnosis_id: int | None
    note_set_id: int | None
    document_set_id: int | None
    contrast: Any
    laterality: Any
    created_by_application: str | None
    patient_instructions: str | None
    preferred_confirmation_method: str | None
    encounter_id: int | None


class AppointmentEnvelope(V2Model):
    """``GET /v2/appointments`` and ``/appointments/listbypatient`` item."""

    appointment: AppointmentPayload


class AppointmentDetailResponse(V2Model):
    """``GET /v2/appointments/{id}`` and the check-in, check-out and pending verbs."""

    appointment: AppointmentDetailPayload


class AppointmentCreatedResponse(V2Model):
    """``POST /v2/appointments`` → 201 ``{"appointment": "<guid>"}``."""

    appointment: Guid


class CancelAppointmentResponse(V2Model):
    """``PUT /v2/appointments/{id}/cancel``."""

    appointment_id: Guid
    start_time: Timestamp
    appointment_cancellation_reason_id: int | None
    cancellation_details: CancellationDetailsPayload | None
    cancellation_comments: str | None
    updated_at: Timestamp | None


class CancellationReasonPayload(V2Model):
    """A cancellation reason; a ``null`` ``business_entity_id`` means global."""

    id: int
    business_entity_id: str | None
    code: str | None
    name: str | None
    description: str | None
    is_default: bool | None
    sort_code: int | None
    created_at: Timestamp | None
    updated_at: Timestamp | None


class CancellationReasonEnvelope(V2Model):
    appointment_cancellation_reason: CancellationReasonPayload


class ConfirmationPayload(V2Model):
    """One confirmation attempt (``/appointments/{id}/confirmations`` and the confirm verbs)."""

    id: int
    appointment_id: Guid
    comments: str | None
    communication_method: str
    communication_method_description: str | None
    communication_outcome: str | None
    created_at: Timestamp | None
    date_confirmed: Timestamp | None
    updated_at: Timestamp | None


class ConfirmationEnvelope(V2Model):
    appointment_confirmation: ConfirmationPayload


# --- availability --------------------------------------------------------------------------------


class SlotPayload(V2Model):
    start_time: Timestamp
    end_time: Timestamp


class AvailabilityGroupPayload(V2Model):
    """``GET /v2/appointment_availability`` item: the free slots of one resource at one
    location for one visit reason (at most 100 slots in all, no paging)."""

    location: NamedRef
    visit_reason: NamedRef
    resource: NamedRef
    slots: list[SlotPayload]


# --- reference lists -----------------------------------------------------------------------------


class SpecialtyPayload(V2Model):
    name: str | None
    taxonomy: str | None


class ProviderPayload(V2Model):
    """A billing provider (``_base_provider.jbuilder``); ``name`` is ``"First Last, MD"``."""

    id: int
    npi: str
    name: str | None
    email: str | None
    phone_number: str | None
    specialty: SpecialtyPayload | None
    last_name: str
    first_name: str


class ProvidersResponse(V2Model):
    providers: list[ProviderPayload]


class PhysicianResponse(V2Model):
    """``GET /v2/physicians/{npi}``."""

    physician: ProviderPayload


class LocationPayload(V2Model):
    """A practice location (``_location.jbuilder``; ``address`` is passed through raw)."""

    id: int
    name: str
    is_visible_appointment_scheduler: bool | None
    place_of_service_code: str | None
    address: AddressPayload | None
    phones: list[PhonePayload]
    mnemonic: str | None = None
    npi: str | None = None
    is_default: bool | None = None


class LocationsResponse(V2Model):
    locations: list[LocationPayload]


class ResourcePayload(V2Model):
    """A schedulable resource (a doctor, a room or a machine); active ones only."""

    id: int
    business_entity_id: str | None
    name: str
    code: str | None
    description: str | None
    status: str | None
    sort_code: int | None
    created_at: Timestamp | None
    updated_at: Timestamp | None
    created_by: int | None
    updated_by: int | None
    is_for_requests: bool | None
    appointment_confirmation: str | None


class ResourceDetailPayload(ResourcePayload):
    """``GET /v2/appointment_resources/{id}``: adds the default (billing) provider."""

    default_provider: NamedRef | None


class ResourceEnvelope(V2Model):
    """``GET /v2/appointment_resources`` item."""

    resource: ResourcePayload


class ResourceDetailResponse(V2Model):
    resource: ResourceDetailPayload


class VisitReasonPayload(V2Model):
    """A visit reason (internally "nature of visit"); ``GET /v2/visit_reasons`` is a bare array."""

    id: int
    name: str
    description: str | None


class PayerPayload(AliasedV2Model):
    """A payer of the directory (``GET /v2/payers``, ``POST /v2/payers/search``)."""

    id: int
    name: str
    payer_code: str | None
    address: AddressPayload | None
    phones: list[PhonePayload]
    pending: bool | None = Field(default=None, alias="payer_pending?")


class PayersResponse(V2Model):
    payers: list[PayerPayload]


class PlanPayload(V2Model):
    """A plan of a payer (``GET /v2/payers/{id}/plans``)."""

    id: int
    name: str
    insurance_policy_type: str | None


class PlansResponse(V2Model):
    plans: list[PlanPayload]


__all__ = [
    "AddressPayload",
    "AliasedV2Model",
    "AppointmentCreatedResponse",
    "AppointmentDetailPayload",
    "AppointmentDetailResponse",
    "AppointmentEnvelope",
    "AppointmentPatientPayload",
    "AppointmentPayload",
    "AppointmentStatusEnvelope",
    "AppointmentStatusPayload",
    "AvailabilityGroupPayload",
    "BalancePayload",
    "BenefitPayload",
    "CancelAppointmentResponse",
    "CancellationDetailsPayload",
    "CancellationReasonEnvelope",
    "CancellationReasonPayload",
    "ChargeCreatedPayload",
    "CodingPayload",
    "ConfirmationEnvelope",
    "ConfirmationPayload",
    "Day",
    "DocumentPayload",
    "DocumentResponse",
    "DocumentsResponse",
    "EligibilityAnswerPayload",
    "EligibilityCreatedPayload",
    "EligibilityCreatedResponse",
    "EligibilityRequestPayload",
    "EligibilityResponse",
    "Guid",
    "InsurancePolicyPayload",
    "InsuranceProfilePayload",
    "InsurancesResponse",
    "InsuredPayload",
    "LocationPayload",
    "LocationsResponse",
    "MoneyText",
    "NamedRef",
    "OptionalDay",
    "PatientCreatedResponse",
    "PatientLocationPayload",
    "PatientPayload",
    "PatientSearchItem",
    "PatientSearchResponse",
    "PatientShowResponse",
    "PayerPayload",
    "PayersResponse",
    "PhonePayload",
    "PhysicianResponse",
    "PlanPayload",
    "PlansResponse",
    "PolicyPayerPayload",
    "ProviderPayload",
    "ProvidersResponse",
    "ResourceDetailPayload",
    "ResourceDetailResponse",
    "ResourceEnvelope",
    "ResourcePayload",
    "ResponsiblePartyPayload",
    "SlotPayload",
    "SpecialtyPayload",
    "Timestamp",
    "TransactionPayload",
    "V2Model",
    "VisitReasonPayload",
    "preferred_spelling",
    "upstream_keys",
]
