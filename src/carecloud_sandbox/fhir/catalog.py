"""What the Connector serves: one :class:`TypeSpec` per resource type.

Each type has a *source*: one or more SQL queries (*arms*) with one row per resource and a fixed
set of columns

- ``k``: an indexed integer key of the arm; arm ``i`` adds ``i * ARM_SPAN`` to make the type's
  cursor (the keyset of paging and export), so arms follow one another and each pages by its key;
- ``fid``: the logical id; ``kind`` / ``row_id`` / ``sub``: which builder renders which row;
- ``practice_id`` (NULL for rows every practice shares, the payers), ``patient_id`` (a GUID),
  ``lu`` (meta.lastUpdated, a UTC instant);
- ``c_*``: the columns search parameters compare.

Observation unites lab results and vitals (one arm per vital sign); Organization unites the
practice and the payers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from carecloud_sandbox.fhir import resources as r

ParamKind = Literal["token", "date", "reference", "string", "id"]
DateKind = Literal["instant", "date"]


@dataclass(frozen=True)
class Param:
    """One search parameter of a type."""

    kind: ParamKind
    columns: tuple[str, ...]
    date_kind: DateKind = "instant"
    system: str | None = None
    target: str | None = None  # the referenced type of a reference parameter

    @property
    def column(self) -> str:
        """The first (usually the only) column."""
        return self.columns[0]


@dataclass(frozen=True)
class Loader:
    """How to load the full rows of one kind."""

    table: str
    key: str = "id"


@dataclass(frozen=True)
class TypeSpec:
    """A resource type the Connector reads, searches and exports."""

    name: str
    arms: tuple[str, ...]
    params: dict[str, Param] = field(default_factory=dict)
    id_pattern: str | None = None  # regex of prefixed ids; group 1 is the row id
    patient_compartment: bool = True


COMMON: dict[str, Param] = {
    "_id": Param("id", ("fid",)),
    "_lastUpdated": Param("date", ("lu",)),
}
PATIENT_REF = Param("reference", ("patient_id",), target="Patient")

LOADERS: dict[str, Loader] = {
    "patient": Loader("patients"),
    "provider": Loader("providers"),
    "practice": Loader("practices"),
    "payer": Loader("payers"),
    "location": Loader("locations"),
    "coverage": Loader("insurance_policies"),
    "encounter": Loader("encounters"),
    "problem": Loader("problems"),
    "allergy": Loader("allergies"),
    "medication": Loader("medications"),
    "lab": Loader("lab_results"),
    "vital": Loader("vitals"),
    "immunization": Loader("immunizations"),
    "document": Loader("documents"),
}

GENERATED = "(SELECT value FROM meta WHERE key = 'generated')"
ARM_SPAN = 10**12


def _case(column: str, mapping: dict[str, str], default: str) -> str:
    """A SQL CASE rendering ``mapping`` (literals only, from this module)."""
    arms = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"CASE {column} {arms} ELSE '{default}' END"


def _crosswalk(resource_type: str, entity: str, alias: str, key: str) -> str:
    return (
        f"JOIN fhir_ids f ON f.resource_type = '{resource_type}' AND f.entity = '{entity}' "
        f"AND f.entity_id = CAST({alias}.{key} AS TEXT)"
    )


PATIENT_SOURCE = f"""
SELECT p.internal_id AS k, f.fhir_id AS fid, 'patient' AS kind, p.id AS row_id, '' AS sub,
       p.practice_id AS practice_id, p.id AS patient_id, p.updated_at AS lu,
       p.last_name AS c_family, p.first_name AS c_given, p.dob AS c_birthdate,
       {_case("p.gender_code", r.GENDER, "unknown")} AS c_gender,
       p.chart_number AS c_identifier, CASE p.status WHEN 'A' THEN 'true' ELSE 'false' END AS c_active
FROM patients p {_crosswalk("Patient", "patients", "p", "id")}
"""

PRACTITIONER_SOURCE = f"""
SELECT t.id AS k, f.fhir_id AS fid, 'provider' AS kind, t.id AS row_id, '' AS sub,
       t.practice_id AS practice_id, NULL AS patient_id, {GENERATED} AS lu,
       t.last_name AS c_family, t.first_name AS c_given, t.npi AS c_identifier,
       CASE t.status WHEN 'A' THEN 'true' ELSE 'false' END AS c_active
FROM providers t {_crosswalk("Practitioner", "providers", "t", "id")}
"""

LOCATION_SOURCE = f"""
SELECT t.id AS k, f.fhir_id AS fid, 'location' AS kind, t.id AS row_id, '' AS sub,
       t.practice_id AS practice_id, NULL AS patient_id, {GENERATED} AS lu,
       t.name AS c_name, t.npi AS c_identifier,
       CASE t.status WHEN 'A' THEN 'active' ELSE 'inactive' END AS c_status
FROM locations t {_crosswalk("Location", "locations", "t", "id")}
"""

ORGANIZATION_PRACTICES = f"""
SELECT t.id AS k, f.fhir_id AS fid, 'practice' AS kind, t.id AS row_id, '' AS sub,
       t.id AS practice_id, NULL AS patient_id, {GENERATED} AS lu,
       t.name AS c_name, t.npi AS c_identifier, 'prov' AS c_type
FROM practices t {_crosswalk("Organization", "practices", "t", "id")}
"""

ORGANIZATION_PAYERS = f"""
SELECT t.id AS k, f.fhir_id AS fid, 'payer' AS kind, t.id AS row_id, '' AS sub,
       NULL AS practice_id, NULL AS patient_id, {GENERATED} AS lu,
       t.name AS c_name, t.payer_code AS c_identifier, 'pay' AS c_type
FROM payers t {_crosswalk("Organization", "payers", "t", "id")}
"""

COVERAGE_SOURCE = """
SELECT i.id AS k, 'cov-' || i.id AS fid, 'coverage' AS kind, i.id AS row_id, '' AS sub,
       p.practice_id AS practice_id, i.patient_id AS patient_id, i.updated_at AS lu,
       i.member_number AS c_identifier
FROM insurance_policies i JOIN patients p ON p.id = i.patient_id
"""

ENCOUNTER_SOURCE = f"""
SELECT e.id AS k, 'enc-' || e.id AS fid, 'encounter' AS kind, e.id AS row_id, '' AS sub,
       e.practice_id AS practice_id, e.patient_id AS patient_id, e.updated_at AS lu,
       e.start_time AS c_date, {_case("e.status", r.ENCOUNTER_STATUS, "unknown")} AS c_status,
       CASE e.encounter_type WHEN 'telephone' THEN 'VR' ELSE 'AMB' END AS c_class
FROM encounters e
"""

CONDITION_SOURCE = """
SELECT t.id AS k, 'prb-' || t.id AS fid, 'problem' AS kind, t.id AS row_id, '' AS sub,
       t.practice_id AS practice_id, t.patient_id AS patient_id, t.updated_at AS lu,
       t.icd10_code AS c_code, 'problem-list-item' AS c_category,
       CASE t.status WHEN 'resolved' THEN 'resolved' ELSE 'active' END AS c_clinical_status,
       t.onset_date AS c_onset
FROM problems t
"""

ALLERGY_SOURCE = """
SELECT t.id AS k, 'alg-' || t.id AS fid, 'allergy' AS kind, t.id AS row_id, '' AS sub,
       t.practice_id AS practice_id, t.patient_id AS patient_id, t.updated_at AS lu,
       t.allergen_code AS c_code, t.recorded_date AS c_date,
       CASE t.status WHEN 'active' THEN 'active' ELSE 'inactive' END AS c_clinical_status
FROM allergies t
"""

MEDICATION_SOURCE = """
SELECT t.id AS k, 'med-' || t.id AS fid, 'medication' AS kind, t.id AS row_id, '' AS sub,
       t.practice_id AS practice_id, t.patient_id AS patient_id, t.updated_at AS lu,
       t.rxnorm_code AS c_code, t.status AS c_status, 'order' AS c_intent,
       t.start_date AS c_authoredon
FROM medications t
"""

VITAL_ARMS = tuple(
    f"""SELECT v.id AS k, 'vit-' || v.id || '-{s.key}' AS fid,
       'vital' AS kind, v.id AS row_id, '{s.key}' AS sub, v.practice_id AS practice_id,
       v.patient_id AS patient_id, v.updated_at AS lu, v.taken_at AS c_date,
       '{s.loinc}' AS c_code, 'vital-signs' AS c_category, 'final' AS c_status
FROM vitals v WHERE v.{s.column} IS NOT NULL"""
    for s in r.VITAL_SIGNS
)

LAB_SOURCE = """
SELECT t.id AS k, 'lab-' || t.id AS fid, 'lab' AS kind, t.id AS row_id, '' AS sub,
       t.practice_id AS practice_id, t.patient_id AS patient_id, t.updated_at AS lu,
       t.collected_at AS c_date, t.loinc_code AS c_code, 'laboratory' AS c_category,
       t.status AS c_status
FROM lab_results t
"""

IMMUNIZATION_SOURCE = """
SELECT t.id AS k, 'imm-' || t.id AS fid, 'immunization' AS kind, t.id AS row_id, '' AS sub,
       t.practice_id AS practice_id, t.patient_id AS patient_id, t.updated_at AS lu,
       t.administered_on AS c_date, t.cvx_code AS c_code, t.status AS c_status
FROM immunizations t
"""

DOCUMENT_SOURCE = f"""
SELECT t.id AS k, 'doc-' || t.id AS fid, 'document' AS kind, t.id AS row_id, '' AS sub,
       t.practice_id AS practice_id, t.patient_id AS patient_id, t.updated_at AS lu,
       t.created_at AS c_date, t.document_date AS c_period,
       {_case("t.document_source_name", {k: v[0] for k, v in r.DOCUMENT_TYPES.items()}, r.DEFAULT_DOCUMENT_TYPE[0])} AS c_type,
       'clinical-note' AS c_category,
       CASE t.status WHEN 'A' THEN 'current' ELSE 'entered-in-error' END AS c_status
FROM documents t
"""

ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"

TYPES: dict[str, TypeSpec] = {
    spec.name: spec
    for spec in (
        TypeSpec(
            "Patient",
            (PATIENT_SOURCE,),
            {
                "family": Param("string", ("c_family",)),
                "given": Param("string", ("c_given",)),
                "name": Param("string", ("c_family", "c_given")),
                "birthdate": Param("date", ("c_birthdate",), date_kind="date"),
                "gender": Param("token", ("c_gender",)),
                "identifier": Param("token", ("c_identifier",), system=r.CHART_SYSTEM),
                "active": Param("token", ("c_active",)),
                "_id": COMMON["_id"],
            },
        ),
        TypeSpec(
            "Practitioner",
            (PRACTITIONER_SOURCE,),
            {
                "family": Param("string", ("c_family",)),
                "given": Param("string", ("c_given",)),
                "name": Param("string", ("c_family", "c_given")),
                "identifier": Param("token", ("c_identifier",), system=r.NPI_SYSTEM),
                "active": Param("token", ("c_active",)),
            },
            patient_compartment=False,
        ),
        TypeSpec(
            "Organization",
            (ORGANIZATION_PRACTICES, ORGANIZATION_PAYERS),
            {
                "name": Param("string", ("c_name",)),
                "identifier": Param("token", ("c_identifier",)),
                "type": Param("token", ("c_type",), system=ORG_TYPE),
            },
            patient_compartment=False,
        ),
        TypeSpec(
            "Location",
            (LOCATION_SOURCE,),
            {
                "name": Param("string", ("c_name",)),
                "identifier": Param("token", ("c_identifier",), system=r.NPI_SYSTEM),
                "status": Param("token", ("c_status",)),
            },
            patient_compartment=False,
        ),
        TypeSpec(
            "Encounter",
            (ENCOUNTER_SOURCE,),
            {
                "patient": PATIENT_REF,
                "subject": PATIENT_REF,
                "date": Param("date", ("c_date",)),
                "status": Param("token", ("c_status",)),
                "class": Param("token", ("c_class",)),
            },
            id_pattern=r"enc-(\d{1,18})",
        ),
        TypeSpec(
            "Condition",
            (CONDITION_SOURCE,),
            {
                "patient": PATIENT_REF,
                "subject": PATIENT_REF,
                "code": Param("token", ("c_code",), system=r.ICD10),
                "category": Param("token", ("c_category",), system=r.CONDITION_CATEGORY),
                "clinical-status": Param("token", ("c_clinical_status",)),
                "onset-date": Param("date", ("c_onset",), date_kind="date"),
            },
            id_pattern=r"prb-(\d{1,18})",
        ),
        TypeSpec(
            "AllergyIntolerance",
            (ALLERGY_SOURCE,),
            {
                "patient": PATIENT_REF,
                "code": Param("token", ("c_code",)),
                "clinical-status": Param("token", ("c_clinical_status",)),
                "date": Param("date", ("c_date",), date_kind="date"),
            },
            id_pattern=r"alg-(\d{1,18})",
        ),
        TypeSpec(
            "MedicationRequest",
            (MEDICATION_SOURCE,),
            {
                "patient": PATIENT_REF,
                "subject": PATIENT_REF,
                "code": Param("token", ("c_code",), system=r.RXNORM),
                "status": Param("token", ("c_status",)),
                "intent": Param("token", ("c_intent",)),
                "authoredon": Param("date", ("c_authoredon",), date_kind="date"),
            },
            id_pattern=r"med-(\d{1,18})",
        ),
        TypeSpec(
            "Observation",
            (LAB_SOURCE, *VITAL_ARMS),
            {
                "patient": PATIENT_REF,
                "subject": PATIENT_REF,
                "category": Param("token", ("c_category",), system=r.OBS_CATEGORY),
                "code": Param("token", ("c_code",), system=r.LOINC),
                "date": Param("date", ("c_date",)),
                "status": Param("token", ("c_status",)),
            },
            id_pattern=r"(?:lab-(\d{1,18})|vit-(\d{1,18})-[a-z0-9]{1,8})",
        ),
        TypeSpec(
            "Immunization",
            (IMMUNIZATION_SOURCE,),
            {
                "patient": PATIENT_REF,
                "date": Param("date", ("c_date",), date_kind="date"),
                "status": Param("token", ("c_status",)),
                "vaccine-code": Param("token", ("c_code",), system=r.CVX),
            },
            id_pattern=r"imm-(\d{1,18})",
        ),
        TypeSpec(
            "DocumentReference",
            (DOCUMENT_SOURCE,),
            {
                "patient": PATIENT_REF,
                "subject": PATIENT_REF,
                "date": Param("date", ("c_date",)),
                "period": Param("date", ("c_period",), date_kind="date"),
                "type": Param("token", ("c_type",), system=r.LOINC),
                "category": Param("token", ("c_category",), system=r.DOC_CATEGORY),
                "status": Param("token", ("c_status",)),
            },
            id_pattern=r"doc-(\d{1,18})",
        ),
        TypeSpec(
            "Coverage",
            (COVERAGE_SOURCE,),
            {
                "patient": PATIENT_REF,
                "beneficiary": PATIENT_REF,
                "identifier": Param("token", ("c_identifier",), system=r.SID + "member-number"),
            },
            id_pattern=r"cov-(\d{1,18})",
        ),
    )
}

for _spec in TYPES.values():
    for _name, _param in COMMON.items():
        _spec.params.setdefault(_name, _param)

# The export order of a bulk export without ``_type``.
EXPORT_TYPES = tuple(TYPES)
