"""Wire models of the Connector: the FHIR R4 resources it serves, lightly.

Only the elements the mappers read are declared, with FHIR's own names (camelCase aliases); every
other element is kept as an extra, so it is reported as ``dropped`` by the mapping and as drift by
the drift checks, never lost silently. These are not a FHIR library: no profile or invariant is
checked here (``fhir.resources`` validates in the tests only).

Elements typed ``dateTime``/``date`` in FHIR stay strings (they may be partial, or a date where
the mapper wants an instant); ``instant`` elements parse as aware datetimes.

::

    Bundle (searchset) ─ link[BundleLink] ─ entry[BundleEntry] ─ resource (raw; parse_resource)
    BulkManifest ─ output[BulkOutput]          OperationOutcome ─ issue[OperationOutcomeIssue]
    Resource ─┬─ Patient  Practitioner  Organization  Location  Coverage
              └─ Encounter  Condition  AllergyIntolerance  MedicationRequest  Observation
                 Immunization  DocumentReference
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from carebridge.connectors.carecloud.wire.portal import TracedModel

# --- data types ---------------------------------------------------------------------------------


class Coding(TracedModel):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(TracedModel):
    coding: list[Coding] = Field(default_factory=list)
    text: str | None = None


class Reference(TracedModel):
    reference: str | None = None
    display: str | None = None


class Identifier(TracedModel):
    use: str | None = None
    type: CodeableConcept | None = None
    system: str | None = None
    value: str | None = None


class Period(TracedModel):
    start: str | None = None
    end: str | None = None


class Quantity(TracedModel):
    value: float | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None


class Money(TracedModel):
    value: float | None = None
    currency: str | None = None


class HumanName(TracedModel):
    use: str | None = None
    family: str | None = None
    given: list[str] = Field(default_factory=list)
    prefix: list[str] = Field(default_factory=list)
    suffix: list[str] = Field(default_factory=list)


class ContactPoint(TracedModel):
    system: str | None = None
    value: str | None = None
    use: str | None = None
    rank: int | None = None


class Address(TracedModel):
    use: str | None = None
    line: list[str] = Field(default_factory=list)
    city: str | None = None
    district: str | None = None
    state: str | None = None
    postal_code: str | None = Field(default=None, alias="postalCode")
    country: str | None = None


class Extension(TracedModel):
    url: str
    value_code: str | None = Field(default=None, alias="valueCode")
    value_coding: Coding | None = Field(default=None, alias="valueCoding")
    value_string: str | None = Field(default=None, alias="valueString")
    extension: list[Extension] = Field(default_factory=list)


class Meta(TracedModel):
    last_updated: datetime | None = Field(default=None, alias="lastUpdated")


# --- resources ----------------------------------------------------------------------------------


class Resource(TracedModel):
    """What every resource has: its type, logical id and ``meta``."""

    trace_exempt: ClassVar[frozenset[str]] = frozenset({"resource_type"})

    resource_type: str = Field(alias="resourceType")
    id: str
    meta: Meta | None = None


class PatientCommunication(TracedModel):
    language: CodeableConcept
    preferred: bool | None = None


class Patient(Resource):
    resource_type: Literal["Patient"] = Field(alias="resourceType")
    extension: list[Extension] = Field(default_factory=list)
    identifier: list[Identifier] = Field(default_factory=list)
    active: bool | None = None
    name: list[HumanName] = Field(default_factory=list)
    telecom: list[ContactPoint] = Field(default_factory=list)
    gender: str | None = None
    birth_date: str | None = Field(default=None, alias="birthDate")
    deceased_date_time: str | None = Field(default=None, alias="deceasedDateTime")
    address: list[Address] = Field(default_factory=list)
    marital_status: CodeableConcept | None = Field(default=None, alias="maritalStatus")
    communication: list[PatientCommunication] = Field(default_factory=list)
    general_practitioner: list[Reference] = Field(default_factory=list, alias="generalPractitioner")


class PractitionerQualification(TracedModel):
    code: CodeableConcept


class Practitioner(Resource):
    resource_type: Literal["Practitioner"] = Field(alias="resourceType")
    identifier: list[Identifier] = Field(default_factory=list)
    active: bool | None = None
    name: list[HumanName] = Field(default_factory=list)
    telecom: list[ContactPoint] = Field(default_factory=list)
    qualification: list[PractitionerQualification] = Field(default_factory=list)


class Organization(Resource):
    resource_type: Literal["Organization"] = Field(alias="resourceType")
    identifier: list[Identifier] = Field(default_factory=list)
    active: bool | None = None
    type: list[CodeableConcept] = Field(default_factory=list)
    name: str | None = None


class Position(TracedModel):
    latitude: float
    longitude: float


class Location(Resource):
    resource_type: Literal["Location"] = Field(alias="resourceType")
    identifier: list[Identifier] = Field(default_factory=list)
    status: str | None = None
    name: str | None = None
    alias: list[str] = Field(default_factory=list)
    type: list[CodeableConcept] = Field(default_factory=list)
    telecom: list[ContactPoint] = Field(default_factory=list)
    address: Address | None = None
    position: Position | None = None


class CoverageClass(TracedModel):
    type: CodeableConcept
    value: str
    name: str | None = None


class CoverageCost(TracedModel):
    type: CodeableConcept | None = None
    value_money: Money | None = Field(default=None, alias="valueMoney")


class Coverage(Resource):
    resource_type: Literal["Coverage"] = Field(alias="resourceType")
    identifier: list[Identifier] = Field(default_factory=list)
    type: CodeableConcept | None = None
    subscriber: Reference | None = None
    subscriber_id: str | None = Field(default=None, alias="subscriberId", repr=False)
    beneficiary: Reference
    relationship: CodeableConcept | None = None
    period: Period | None = None
    payor: list[Reference] = Field(default_factory=list)
    coverage_class: list[CoverageClass] = Field(default_factory=list, alias="class")
    order: int | None = None
    cost_to_beneficiary: list[CoverageCost] = Field(default_factory=list, alias="costToBeneficiary")


class EncounterParticipant(TracedModel):
    type: list[CodeableConcept] = Field(default_factory=list)
    individual: Reference | None = None


class EncounterLocation(TracedModel):
    location: Reference


class Encounter(Resource):
    resource_type: Literal["Encounter"] = Field(alias="resourceType")
    identifier: list[Identifier] = Field(default_factory=list)
    status: str
    encounter_class: Coding | None = Field(default=None, alias="class")
    type: list[CodeableConcept] = Field(default_factory=list)
    subject: Reference | None = None
    participant: list[EncounterParticipant] = Field(default_factory=list)
    period: Period | None = None
    reason_code: list[CodeableConcept] = Field(default_factory=list, alias="reasonCode")
    location: list[EncounterLocation] = Field(default_factory=list)


class Condition(Resource):
    resource_type: Literal["Condition"] = Field(alias="resourceType")
    clinical_status: CodeableConcept | None = Field(default=None, alias="clinicalStatus")
    code: CodeableConcept | None = None
    subject: Reference
    encounter: Reference | None = None
    onset_date_time: str | None = Field(default=None, alias="onsetDateTime")
    abatement_date_time: str | None = Field(default=None, alias="abatementDateTime")
    recorded_date: str | None = Field(default=None, alias="recordedDate")


class AllergyReaction(TracedModel):
    manifestation: list[CodeableConcept] = Field(default_factory=list)
    severity: str | None = None


class AllergyIntolerance(Resource):
    resource_type: Literal["AllergyIntolerance"] = Field(alias="resourceType")
    clinical_status: CodeableConcept | None = Field(default=None, alias="clinicalStatus")
    category: list[str] = Field(default_factory=list)
    code: CodeableConcept | None = None
    patient: Reference
    recorded_date: str | None = Field(default=None, alias="recordedDate")
    reaction: list[AllergyReaction] = Field(default_factory=list)


class Dosage(TracedModel):
    text: str | None = None


class DispenseRequest(TracedModel):
    validity_period: Period | None = Field(default=None, alias="validityPeriod")


class MedicationRequest(Resource):
    resource_type: Literal["MedicationRequest"] = Field(alias="resourceType")
    status: str
    medication_codeable_concept: CodeableConcept | None = Field(
        default=None, alias="medicationCodeableConcept"
    )
    subject: Reference
    encounter: Reference | None = None
    authored_on: str | None = Field(default=None, alias="authoredOn")
    requester: Reference | None = None
    dosage_instruction: list[Dosage] = Field(default_factory=list, alias="dosageInstruction")
    dispense_request: DispenseRequest | None = Field(default=None, alias="dispenseRequest")


class ReferenceRange(TracedModel):
    low: Quantity | None = None
    high: Quantity | None = None


class ObservationComponent(TracedModel):
    code: CodeableConcept
    value_quantity: Quantity | None = Field(default=None, alias="valueQuantity")


class Observation(Resource):
    """A lab result (category ``laboratory``) or one vital sign (``vital-signs``)."""

    resource_type: Literal["Observation"] = Field(alias="resourceType")
    status: str
    category: list[CodeableConcept] = Field(default_factory=list)
    code: CodeableConcept
    subject: Reference
    encounter: Reference | None = None
    effective_date_time: str | None = Field(default=None, alias="effectiveDateTime")
    issued: datetime | None = None
    value_quantity: Quantity | None = Field(default=None, alias="valueQuantity")
    value_string: str | None = Field(default=None, alias="valueString", repr=False)
    interpretation: list[CodeableConcept] = Field(default_factory=list)
    reference_range: list[ReferenceRange] = Field(default_factory=list, alias="referenceRange")
    component: list[ObservationComponent] = Field(default_factory=list)


class Immunization(Resource):
    resource_type: Literal["Immunization"] = Field(alias="resourceType")
    status: str
    vaccine_code: CodeableConcept = Field(alias="vaccineCode")
    patient: Reference
    encounter: Reference | None = None
    occurrence_date_time: str | None = Field(default=None, alias="occurrenceDateTime")
    lot_number: str | None = Field(default=None, alias="lotNumber")
    site: CodeableConcept | None = None
    route: CodeableConcept | None = None


class Attachment(TracedModel):
    content_type: str | None = Field(default=None, alias="contentType")
    size: int | None = None
    title: str | None = Field(default=None, repr=False)


class DocumentContent(TracedModel):
    attachment: Attachment


class DocumentContext(TracedModel):
    period: Period | None = None


class DocumentReference(Resource):
    resource_type: Literal["DocumentReference"] = Field(alias="resourceType")
    identifier: list[Identifier] = Field(default_factory=list)
    status: str
    type: CodeableConcept | None = None
    subject: Reference
    date: str | None = None
    description: str | None = Field(default=None, repr=False)
    content: list[DocumentContent] = Field(default_factory=list)
    context: DocumentContext | None = None


# --- bundles, Bulk Data and errors --------------------------------------------------------------


class BundleLink(TracedModel):
    relation: str
    url: str


class BundleEntry(TracedModel):
    full_url: str | None = Field(default=None, alias="fullUrl")
    resource: dict[str, Any] | None = None
    """Raw: read it with :func:`parse_resource`, whose model the mapping then traces."""


class Bundle(TracedModel):
    """A searchset Bundle: ``total``, an absolute ``link[next]`` and the matches."""

    trace_exempt: ClassVar[frozenset[str]] = frozenset({"resource_type"})

    resource_type: Literal["Bundle"] = Field(alias="resourceType")
    type: str
    total: int | None = None
    link: list[BundleLink] = Field(default_factory=list)
    entry: list[BundleEntry] = Field(default_factory=list)

    def next_url(self) -> str | None:
        """The next page's URL, or None on the last page."""
        return next((link.url for link in self.link if link.relation == "next"), None)


class PatientEntry(TracedModel):
    full_url: str | None = Field(default=None, alias="fullUrl")
    resource: Patient | None = None


class PatientBundle(Bundle):
    """A Patient searchset with its resources: what the crosswalk's scan of FHIR logical ids
    compares a page with (drift), which it then reads as :class:`PatientKeysBundle`."""

    entry: list[PatientEntry] = Field(default_factory=list)  # type: ignore[assignment]


class _Keys(BaseModel):
    """A narrow reading of a payload already compared with its wire model: only the elements
    the caller uses, the rest ignored (not kept as extras: the comparison reported them)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class KeyCoding(_Keys):
    system: str | None = None
    code: str | None = None


class KeyConcept(_Keys):
    coding: list[KeyCoding] = Field(default_factory=list)


class KeyIdentifier(_Keys):
    type: KeyConcept | None = None
    system: str | None = None
    value: str | None = None


class PatientKeys(_Keys):
    """A Patient's logical id and identifiers (its chart number among them)."""

    id: str
    identifier: list[KeyIdentifier] = Field(default_factory=list)


class PatientKeysEntry(_Keys):
    resource: PatientKeys | None = None


class PatientKeysBundle(_Keys):
    """A :class:`PatientBundle` read for its patients' keys only."""

    entry: list[PatientKeysEntry] = Field(default_factory=list)


class BulkOutput(TracedModel):
    type: str
    url: str
    count: int | None = None


class BulkManifest(TracedModel):
    """The Bulk Data status response once the export is complete."""

    transaction_time: datetime = Field(alias="transactionTime")
    request: str
    requires_access_token: bool = Field(alias="requiresAccessToken")
    output: list[BulkOutput] = Field(default_factory=list)
    error: list[BulkOutput] = Field(default_factory=list)


class OperationOutcomeIssue(TracedModel):
    severity: str
    code: str
    diagnostics: str | None = None


class OperationOutcome(TracedModel):
    """Every error under ``/api/fhir`` (and the Bulk kick-off's acknowledgement)."""

    trace_exempt: ClassVar[frozenset[str]] = frozenset({"resource_type"})

    resource_type: Literal["OperationOutcome"] = Field(alias="resourceType")
    issue: list[OperationOutcomeIssue] = Field(default_factory=list)


AnyResource = (
    Patient
    | Practitioner
    | Organization
    | Location
    | Coverage
    | Encounter
    | Condition
    | AllergyIntolerance
    | MedicationRequest
    | Observation
    | Immunization
    | DocumentReference
)

RESOURCE_TYPES: Mapping[str, type[Resource]] = {
    model.__name__: model
    for model in (
        Patient,
        Practitioner,
        Organization,
        Location,
        Coverage,
        Encounter,
        Condition,
        AllergyIntolerance,
        MedicationRequest,
        Observation,
        Immunization,
        DocumentReference,
    )
}
"""The resource types the Connector serves that the mappers read, by ``resourceType``."""


def parse_resource(raw: Mapping[str, Any]) -> Resource:
    """A raw resource (a Bundle entry's, or an NDJSON line) as its wire model.

    Raises:
        ValueError: ``resourceType`` is missing or not one of ``RESOURCE_TYPES``
            (a ``pydantic.ValidationError`` when the resource itself does not fit).
    """
    model = RESOURCE_TYPES.get(str(raw.get("resourceType")))
    if model is None:
        raise ValueError("not a resource type the Connector mappers read")
    return model.model_validate(raw)
