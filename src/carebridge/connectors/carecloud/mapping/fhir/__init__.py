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

The mappers live by family: ``people`` (Patient, Practitioner, Location, Coverage),
``charts`` (Encounter and the chart lists, DocumentReference), ``observations`` (labs and
vitals); ``base`` holds the code systems, indexes and readers they share. This package
re-exports every public name.
"""

from __future__ import annotations

from carebridge.connectors.carecloud.mapping.fhir.base import (
    ACCOUNT_NUMBER,
    ADDRESS_USES,
    CHART_NUMBER,
    COUNTRIES,
    CPT,
    CVX,
    ICD10CM,
    LOINC,
    MEMBER_NUMBER,
    NO_KEYS,
    NPI_SYSTEM,
    NUCC,
    PAYER_CODE,
    PHONE_KINDS,
    RXNORM,
    SNOMED,
    V2_0203,
    PatientIndex,
    ReferenceKeys,
    chart_number_of,
    keys_by_identifier,
    row_key,
)
from carebridge.connectors.carecloud.mapping.fhir.charts import (
    CONDITION_STATUS,
    ENCOUNTER_CLASS,
    ENCOUNTER_STATUS,
    ENCOUNTER_TYPES,
    IMMUNIZATION_ROUTES,
    IMMUNIZATION_SITES,
    MEDICATION_STATUS,
    allergy_from_fhir,
    document_from_fhir,
    encounter_from_fhir,
    encounter_key,
    immunization_from_fhir,
    medication_from_fhir,
    problem_from_fhir,
)
from carebridge.connectors.carecloud.mapping.fhir.observations import (
    BP_PANEL,
    INTERPRETATIONS,
    LAB_STATUS,
    UNIT_FACTORS,
    VITAL_CODES,
    WHOLE_NUMBERS,
    is_laboratory,
    is_vital_sign,
    lab_from_fhir,
    vitals_from_fhir,
    vitals_key,
)
from carebridge.connectors.carecloud.mapping.fhir.people import (
    ACT_CODE_POLICY,
    ETHNICITY,
    ETHNICITY_URL,
    LANGUAGES,
    MARITAL,
    POLICY_TYPES,
    POS_SYSTEM_HINT,
    RACE_URL,
    SUBSCRIBER_RELATIONSHIP,
    coverage_from_fhir,
    location_from_fhir,
    patient_from_fhir,
    provider_from_fhir,
)
from carebridge.errors import UnresolvedReference

__all__ = [
    "ACCOUNT_NUMBER",
    "ACT_CODE_POLICY",
    "ADDRESS_USES",
    "BP_PANEL",
    "CHART_NUMBER",
    "CONDITION_STATUS",
    "COUNTRIES",
    "CPT",
    "CVX",
    "ENCOUNTER_CLASS",
    "ENCOUNTER_STATUS",
    "ENCOUNTER_TYPES",
    "ETHNICITY",
    "ETHNICITY_URL",
    "ICD10CM",
    "IMMUNIZATION_ROUTES",
    "IMMUNIZATION_SITES",
    "INTERPRETATIONS",
    "LAB_STATUS",
    "LANGUAGES",
    "LOINC",
    "MARITAL",
    "MEDICATION_STATUS",
    "MEMBER_NUMBER",
    "NO_KEYS",
    "NPI_SYSTEM",
    "NUCC",
    "PAYER_CODE",
    "PHONE_KINDS",
    "POLICY_TYPES",
    "POS_SYSTEM_HINT",
    "RACE_URL",
    "RXNORM",
    "SNOMED",
    "SUBSCRIBER_RELATIONSHIP",
    "UNIT_FACTORS",
    "V2_0203",
    "VITAL_CODES",
    "WHOLE_NUMBERS",
    "PatientIndex",
    "ReferenceKeys",
    "UnresolvedReference",
    "allergy_from_fhir",
    "chart_number_of",
    "coverage_from_fhir",
    "document_from_fhir",
    "encounter_from_fhir",
    "encounter_key",
    "immunization_from_fhir",
    "is_laboratory",
    "is_vital_sign",
    "keys_by_identifier",
    "lab_from_fhir",
    "location_from_fhir",
    "medication_from_fhir",
    "patient_from_fhir",
    "problem_from_fhir",
    "provider_from_fhir",
    "row_key",
    "vitals_from_fhir",
    "vitals_key",
]
