"""Rows of the tenant rendered as FHIR R4 resources (US Core 3.1.1 flavoured).

One builder per row kind; each takes the full table row, the ``sub`` key (the vital sign of a
vitals row) and a :class:`Ctx`, and returns a plain dict. Empty strings, lists and objects are
dropped at the end (:func:`clean`): FHIR forbids empty values.

Logical ids: Patient, Practitioner, Location and Organization come from ``fhir_ids``; the rest
are prefixed row ids: ``enc-<id>`` (Encounter), ``prb-<id>`` (Condition), ``alg-<id>``
(AllergyIntolerance), ``med-<id>`` (MedicationRequest), ``lab-<id>`` and ``vit-<id>-<sign>``
(Observation), ``imm-<id>`` (Immunization), ``doc-<id>`` (DocumentReference), ``cov-<id>``
(Coverage).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from carecloud_sandbox.fhir.common import Practice
from carecloud_sandbox.fhir.ids import IdMap
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.common import loads

SID = "https://connector.carecloud.invalid/sid/"
CHART_SYSTEM = SID + "chart-number"
ACCOUNT_SYSTEM = SID + "account-number"
PAYER_SYSTEM = SID + "payer-id"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
TIN_SYSTEM = "urn:oid:2.16.840.1.113883.4.4"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"
CPT = "http://www.ama-assn.org/go/cpt"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
DOC_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"

GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown"}
ENCOUNTER_STATUS = {"signed": "finished", "open": "in-progress"}
ENCOUNTER_CLASS = {"telephone": ("VR", "virtual")}
DOCUMENT_TYPES = {
    "Progress note": ("11506-3", "Progress note"),
    "Consult note": ("11488-4", "Consult note"),
    "Discharge summary": ("18842-5", "Discharge summary"),
    "History and Physical": ("34117-2", "History and physical note"),
    "Procedure Note": ("28570-0", "Procedure note"),
}
DEFAULT_DOCUMENT_TYPE = ("34133-9", "Summary of episode note")
OMB_RACE = {
    "1002-5": "American Indian or Alaska Native",
    "2028-9": "Asian",
    "2054-5": "Black or African American",
    "2076-8": "Native Hawaiian or Other Pacific Islander",
    "2106-3": "White",
}
DETAILED_RACE = {"2131-1": "Other Race"}
ETHNICITY = {"H": ("2135-2", "Hispanic or Latino"), "N": ("2186-5", "Not Hispanic or Latino")}
LANGUAGES = {"eng": ("en", "English"), "spa": ("es", "Spanish")}
MARITAL = {
    "M": "Married",
    "S": "Never Married",
    "D": "Divorced",
    "W": "Widowed",
    "L": "Legally Separated",
    "A": "Annulled",
}
PHONE_USE = {"C": "mobile", "H": "home", "B": "work", "W": "work", "TF": "work"}
RELATIONSHIP = {
    "self": "self",
    "spouse": "spouse",
    "mother": "child",
    "father": "child",
    "parent": "child",
    "guardian": "child",
    "child": "parent",
}
POLICY_TYPES = {"ppo": "PPO", "hmo": "HMO", "pos": "POS"}


@dataclass(frozen=True)
class VitalSign:
    """One US Core vital sign carried by a vitals row."""

    key: str
    loinc: str
    display: str
    column: str
    unit: str
    profile: str


VITAL_SIGNS: tuple[VitalSign, ...] = (
    VitalSign(
        "bp",
        "85354-9",
        "Blood pressure panel with all children optional",
        "systolic_mmhg",
        "mm[Hg]",
        "bp",
    ),
    VitalSign("hr", "8867-4", "Heart rate", "heart_rate_bpm", "/min", "heartrate"),
    VitalSign("rr", "9279-1", "Respiratory rate", "respiratory_rate", "/min", "resprate"),
    VitalSign("temp", "8310-5", "Body temperature", "temperature_c", "Cel", "bodytemp"),
    VitalSign("height", "8302-2", "Body height", "height_cm", "cm", "bodyheight"),
    VitalSign("weight", "29463-7", "Body weight", "weight_kg", "kg", "bodyweight"),
    VitalSign("bmi", "39156-5", "Body mass index (BMI) [Ratio]", "bmi", "kg/m2", "bmi"),
    VitalSign(
        "spo2",
        "59408-5",
        "Oxygen saturation in Arterial blood by Pulse oximetry",
        "spo2_pct",
        "%",
        "oxygensat",
    ),
)
SIGNS_BY_KEY = {s.key: s for s in VITAL_SIGNS}


@dataclass
class Ctx:
    """What a builder needs beyond its row."""

    tenant: Tenant
    practice: Practice
    ids: IdMap
    payers: dict[int, sqlite3.Row] = field(default_factory=dict)

    def ref(self, resource_type: str, entity: str, entity_id: object) -> dict[str, str] | None:
        """A reference through the crosswalk; None when the target has no logical id."""
        fid = self.ids.get(resource_type, entity, entity_id)
        return None if fid is None else {"reference": f"{resource_type}/{fid}"}

    def patient(self, guid: str) -> dict[str, str] | None:
        """A reference to a patient by its GUID."""
        return self.ref("Patient", "patients", guid)

    def practitioner(self, provider_id: object) -> dict[str, str] | None:
        """A reference to a provider."""
        return self.ref("Practitioner", "providers", provider_id)

    def organization(self) -> dict[str, str] | None:
        """A reference to the practice's Organization."""
        return self.ref("Organization", "practices", self.practice.id)


_EMPTY: tuple[Any, ...] = ("", [], {})


def clean(value: Any) -> Any:
    """Drop None, empty strings, empty lists and empty objects, recursively (strings stripped).

    A resource is a few hundred values, most of them strings: each is stripped and judged
    where its container is walked, without a call of its own.
    """
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return _clean_dict(value)
    if isinstance(value, list):
        return _clean_list(value)
    return value


def _clean_dict(value: dict[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    item: Any
    for key, item in value.items():
        if item is None:
            continue
        if isinstance(item, str):
            item = item.strip()
            if item:
                out[key] = item
        elif isinstance(item, dict):
            item = _clean_dict(item)
            if item:
                out[key] = item
        elif isinstance(item, list):
            item = _clean_list(item)
            if item:
                out[key] = item
        elif item not in _EMPTY:
            out[key] = item
    return out


def _clean_list(value: list[Any]) -> list[Any]:
    out: list[Any] = []
    item: Any
    for item in value:
        if item is None:
            continue
        if isinstance(item, str):
            item = item.strip()
            if item:
                out.append(item)
        elif isinstance(item, dict):
            item = _clean_dict(item)
            if item:
                out.append(item)
        elif isinstance(item, list):
            item = _clean_list(item)
            if item:
                out.append(item)
        elif item not in _EMPTY:
            out.append(item)
    return out


def coding(system: str, code: str | None, display: str | None = None) -> dict[str, Any]:
    """One Coding."""
    return {"system": system, "code": code, "display": display}


def concept(system: str, code: str | None, display: str | None = None) -> dict[str, Any]:
    """A CodeableConcept with one coding and its display as text."""
    return {"coding": [coding(system, code, display)], "text": display}


def meta(lu: str, *profiles: str) -> dict[str, Any]:
    """``meta`` with lastUpdated and profiles."""
    return {"lastUpdated": lu, "profile": list(profiles)}


def address(raw: Any) -> dict[str, Any]:
    """An Address from the tenant's address JSON."""
    if not isinstance(raw, dict):
        return {}
    lines = [str(raw.get(k) or "") for k in ("line1", "line2", "line3")]
    return {
        "use": "work" if "county_name" in raw else None,
        "line": [line for line in lines if line.strip()],
        "city": raw.get("city"),
        "district": raw.get("county_name"),
        "state": raw.get("state_code"),
        "postalCode": raw.get("zip_code"),
        "country": "US",
    }


def phone_telecom(phones: Any, type_key: str) -> list[dict[str, Any]]:
    """ContactPoints from the tenant's phone JSON (``phone_type`` or ``phone_type_code``)."""
    out = []
    for rank, phone in enumerate(phones if isinstance(phones, list) else []):
        kind = str(phone.get(type_key) or "")
        out.append(
            {
                "system": "fax" if kind == "F" else "phone",
                "value": phone.get("phone_number"),
                "use": PHONE_USE.get(kind),
                "rank": rank + 1,
            }
        )
    return out


# --- administrative ----------------------------------------------------------------------------


def patient(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """patients -> Patient."""
    del sub
    data = loads(row["data_json"]) or {}
    extensions: list[dict[str, Any]] = []
    race = str(data.get("race_code") or "")
    if race in OMB_RACE or race in DETAILED_RACE:
        label = OMB_RACE.get(race) or DETAILED_RACE[race]
        slot = "ombCategory" if race in OMB_RACE else "detailed"
        extensions.append(
            {
                "url": US_CORE + "us-core-race",
                "extension": [
                    {
                        "url": slot,
                        "valueCoding": coding("urn:oid:2.16.840.1.113883.6.238", race, label),
                    },
                    {"url": "text", "valueString": label},
                ],
            }
        )
    ethnicity = ETHNICITY.get(str(data.get("ethnicity_code") or ""))
    if ethnicity:
        extensions.append(
            {
                "url": US_CORE + "us-core-ethnicity",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": coding("urn:oid:2.16.840.1.113883.6.238", *ethnicity),
                    },
                    {"url": "text", "valueString": ethnicity[1]},
                ],
            }
        )
    if row["gender_code"] in ("M", "F"):
        extensions.append({"url": US_CORE + "us-core-birthsex", "valueCode": row["gender_code"]})
    telecom = phone_telecom(data.get("phones"), "phone_type_code")
    if row["email"]:
        telecom.append({"system": "email", "value": row["email"], "use": "home"})
    marital = str(data.get("marital_status_code") or "")
    language = LANGUAGES.get(str(data.get("language_code") or ""))
    given = [row["first_name"]]
    if row["middle_initial"]:
        given.append(row["middle_initial"])
    return {
        "resourceType": "Patient",
        "id": fid,
        "meta": meta(row["updated_at"], US_CORE + "us-core-patient"),
        "extension": extensions,
        "identifier": [
            {
                "use": "usual",
                "type": concept(
                    "http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number"
                ),
                "system": CHART_SYSTEM,
                "value": row["chart_number"],
            },
            {"use": "secondary", "system": ACCOUNT_SYSTEM, "value": row["account_number"]},
        ],
        "active": row["status"] == "A",
        "name": [
            {
                "use": "official",
                "family": row["last_name"],
                "given": given,
                "prefix": [data.get("prefix") or ""],
                "suffix": [data.get("suffix") or ""],
            }
        ],
        "telecom": telecom,
        "gender": GENDER.get(row["gender_code"] or "U", "unknown"),
        "birthDate": row["dob"],
        "deceasedDateTime": data.get("date_of_death"),
        "address": [
            {**address(a), "use": "home"}
            for a in (data.get("addresses") or [])
            if isinstance(a, dict)
        ],
        "maritalStatus": (
            concept(
                "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", marital, MARITAL[marital]
            )
            if marital in MARITAL
            else None
        ),
        "communication": (
            [{"language": concept("urn:ietf:bcp:47", *language), "preferred": True}]
            if language
            else []
        ),
        "generalPractitioner": [ctx.practitioner(row["primary_provider_id"])],
        "managingOrganization": ctx.organization(),
    }


def practitioner(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """providers -> Practitioner."""
    del sub, ctx
    return {
        "resourceType": "Practitioner",
        "id": fid,
        "meta": meta(row["lu"], US_CORE + "us-core-practitioner"),
        "identifier": [{"system": NPI_SYSTEM, "value": row["npi"]}],
        "active": row["status"] == "A",
        "name": [
            {
                "use": "official",
                "family": row["last_name"],
                "given": [row["first_name"]],
                "suffix": [row["credentials"]],
            }
        ],
        "telecom": [
            {"system": "phone", "value": row["phone_number"], "use": "work"},
            {"system": "email", "value": row["email"], "use": "work"},
        ],
        "qualification": (
            [
                {
                    "code": concept(
                        "http://nucc.org/provider-taxonomy", row["taxonomy"], row["specialty_name"]
                    )
                }
            ]
            if row["taxonomy"]
            else []
        ),
    }


def practice_organization(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """practices -> Organization (a provider organization)."""
    del sub, ctx
    return {
        "resourceType": "Organization",
        "id": fid,
        "meta": meta(row["lu"], US_CORE + "us-core-organization"),
        "identifier": [
            {"system": NPI_SYSTEM, "value": row["npi"]},
            {"system": TIN_SYSTEM, "value": row["tax_id"]},
        ],
        "active": True,
        "type": [
            concept(
                "http://terminology.hl7.org/CodeSystem/organization-type",
                "prov",
                "Healthcare Provider",
            )
        ],
        "name": row["name"],
        "address": [address(loads(row["address_json"]))],
    }


def payer_organization(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """payers -> Organization (an insurance company)."""
    del sub, ctx
    return {
        "resourceType": "Organization",
        "id": fid,
        "meta": meta(row["lu"]),
        "identifier": [{"system": PAYER_SYSTEM, "value": row["payer_code"]}],
        "active": row["status"] == "A",
        "type": [
            concept("http://terminology.hl7.org/CodeSystem/organization-type", "pay", "Payer")
        ],
        "name": row["name"],
        "telecom": phone_telecom(loads(row["phones_json"]), "phone_type"),
        "address": [address(loads(row["address_json"]))],
    }


def location(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """locations -> Location."""
    del sub
    addr = loads(row["address_json"]) or {}
    position = None
    try:
        position = {
            "latitude": float(addr.get("latitude") or ""),
            "longitude": float(addr.get("longitude") or ""),
        }
    except ValueError:
        position = None
    return {
        "resourceType": "Location",
        "id": fid,
        "meta": meta(row["lu"], US_CORE + "us-core-location"),
        "identifier": [{"system": NPI_SYSTEM, "value": row["npi"]}],
        "status": "active" if row["status"] == "A" else "inactive",
        "name": row["name"],
        "alias": [row["mnemonic"]],
        "mode": "instance",
        "type": [
            {
                "coding": [
                    coding(
                        "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
                        row["place_of_service_code"],
                    )
                ]
            }
        ],
        "telecom": phone_telecom(loads(row["phones_json"]), "phone_type"),
        "address": address(addr),
        "position": position,
        "managingOrganization": ctx.organization(),
    }


def coverage(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """insurance_policies (+ payers) -> Coverage."""
    del sub
    insured = loads(row["insured_json"]) or {}
    relation = str(insured.get("relation_to_patient") or "self")
    today = ctx.tenant.today(ctx.practice.id).isoformat()
    ended = row["effective_to"] is not None and row["effective_to"] < today
    payer = ctx.payers.get(int(row["payer_id"]))
    plans = loads(payer["plans_json"]) if payer is not None else []
    plan = next((p for p in plans or [] if p.get("id") == row["plan_id"]), None)
    classes = []
    if row["group_number"]:
        classes.append(
            {
                "type": concept(
                    "http://terminology.hl7.org/CodeSystem/coverage-class", "group", "Group"
                ),
                "value": row["group_number"],
                "name": row["group_name"],
            }
        )
    if plan is not None:
        classes.append(
            {
                "type": concept(
                    "http://terminology.hl7.org/CodeSystem/coverage-class", "plan", "Plan"
                ),
                "value": str(plan["id"]),
                "name": plan.get("name"),
            }
        )
    policy_type = str(row["insurance_policy_type"])
    type_code = POLICY_TYPES.get(policy_type)
    payer_ref = ctx.ref("Organization", "payers", row["payer_id"]) or {}
    if payer is not None:
        payer_ref = {**payer_ref, "display": payer["name"]}
    subscriber_name = " ".join(
        str(insured.get(k) or "") for k in ("first_name", "last_name") if insured.get(k)
    )
    costs = []
    if row["co_payment_cents"] is not None:
        costs.append(
            {
                "type": concept(
                    "http://terminology.hl7.org/CodeSystem/coverage-copay-type", "copay", "Copay"
                ),
                "valueMoney": {"value": row["co_payment_cents"] / 100, "currency": "USD"},
            }
        )
    return {
        "resourceType": "Coverage",
        "id": fid,
        "meta": meta(row["updated_at"]),
        "identifier": [{"system": SID + "member-number", "value": row["member_number"]}],
        "status": "cancelled" if ended else "active",
        "type": {
            "coding": [coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", type_code)]
            if type_code
            else [],
            "text": policy_type,
        },
        "subscriber": (
            ctx.patient(row["patient_id"]) if relation == "self" else {"display": subscriber_name}
        ),
        "subscriberId": row["member_number"],
        "beneficiary": ctx.patient(row["patient_id"]),
        "relationship": concept(
            "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
            RELATIONSHIP.get(relation, "other"),
        ),
        "period": {"start": row["effective_from"], "end": row["effective_to"]},
        "payor": [payer_ref or {"display": "Unknown payer"}],
        "class": classes,
        "order": row["policy_priority"],
        "costToBeneficiary": costs,
    }


# --- clinical ----------------------------------------------------------------------------------


def encounter(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """encounters -> Encounter."""
    del sub
    procedures = loads(row["procedures_json"]) or []
    diagnoses = loads(row["diagnoses_json"]) or []
    class_code, class_display = ENCOUNTER_CLASS.get(row["encounter_type"], ("AMB", "ambulatory"))
    kind = str(row["encounter_type"]).replace("_", " ")
    encounter_type: dict[str, Any] = {"text": kind}
    if procedures:
        first = procedures[0]
        encounter_type["coding"] = [coding(CPT, first.get("code"), first.get("description"))]
    practitioner_ref = ctx.practitioner(row["provider_id"])
    location_ref = ctx.ref("Location", "locations", row["location_id"])
    return {
        "resourceType": "Encounter",
        "id": fid,
        "meta": meta(row["updated_at"], US_CORE + "us-core-encounter"),
        "identifier": [{"system": SID + "encounter-id", "value": str(row["id"])}],
        "status": ENCOUNTER_STATUS.get(row["status"], "unknown"),
        "class": coding(
            "http://terminology.hl7.org/CodeSystem/v3-ActCode", class_code, class_display
        ),
        "type": [encounter_type],
        "subject": ctx.patient(row["patient_id"]),
        "participant": (
            [
                {
                    "type": [
                        concept(
                            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "PPRF",
                            "primary performer",
                        )
                    ],
                    "individual": practitioner_ref,
                }
            ]
            if practitioner_ref
            else []
        ),
        "period": {"start": row["start_time"], "end": row["end_time"]},
        "reasonCode": [
            {"text": row["chief_complaint"]},
            *(
                concept(ICD10, d.get("code"), d.get("description"))
                for d in diagnoses
                if isinstance(d, dict)
            ),
        ],
        "location": [{"location": location_ref}] if location_ref else [],
        "serviceProvider": ctx.organization(),
    }


def encounter_ref(encounter_id: object) -> dict[str, str] | None:
    """A reference to an encounter by its row id."""
    return None if encounter_id is None else {"reference": f"Encounter/enc-{encounter_id}"}


def condition(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """problems -> Condition (problem-list-item)."""
    del sub
    resolved = row["status"] == "resolved"
    return {
        "resourceType": "Condition",
        "id": fid,
        "meta": meta(row["updated_at"], US_CORE + "us-core-condition"),
        "clinicalStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "resolved" if resolved else "active",
        ),
        "verificationStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"
        ),
        "category": [concept(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
        "code": concept(ICD10, row["icd10_code"], row["description"]),
        "subject": ctx.patient(row["patient_id"]),
        "encounter": encounter_ref(row["encounter_id"]),
        "onsetDateTime": row["onset_date"],
        "abatementDateTime": row["resolved_date"] if resolved else None,
        "recordedDate": row["created_at"],
    }


def allergy(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """allergies -> AllergyIntolerance."""
    del sub
    system = RXNORM if row["allergen_system"] == "rxnorm" else SNOMED
    return {
        "resourceType": "AllergyIntolerance",
        "id": fid,
        "meta": meta(row["updated_at"], US_CORE + "us-core-allergyintolerance"),
        "clinicalStatus": concept(
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "active" if row["status"] == "active" else "inactive",
        ),
        "verificationStatus": concept(
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed"
        ),
        "type": "allergy",
        "category": [row["category"]]
        if row["category"] in ("food", "medication", "environment", "biologic")
        else [],
        "code": concept(system, row["allergen_code"], row["allergen_name"]),
        "patient": ctx.patient(row["patient_id"]),
        "recordedDate": row["recorded_date"],
        "reaction": [
            {
                "manifestation": [{"text": row["reaction"]}],
                "severity": row["severity"]
                if row["severity"] in ("mild", "moderate", "severe")
                else None,
            }
        ],
    }


def medication_request(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """medications -> MedicationRequest."""
    del sub
    return {
        "resourceType": "MedicationRequest",
        "id": fid,
        "meta": meta(row["updated_at"], US_CORE + "us-core-medicationrequest"),
        "status": row["status"]
        if row["status"] in ("active", "stopped", "completed", "on-hold", "cancelled")
        else "unknown",
        "intent": "order",
        "medicationCodeableConcept": concept(RXNORM, row["rxnorm_code"], row["name"]),
        "subject": ctx.patient(row["patient_id"]),
        "encounter": encounter_ref(row["encounter_id"]),
        "authoredOn": row["start_date"],
        "requester": ctx.practitioner(row["prescriber_id"]),
        "dosageInstruction": [{"text": row["sig"]}],
        "dispenseRequest": {"validityPeriod": {"start": row["start_date"], "end": row["end_date"]}},
    }


def quantity(value: float | int, unit: str) -> dict[str, Any]:
    """A UCUM Quantity."""
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def lab_observation(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """lab_results -> Observation (laboratory)."""
    del sub
    value: dict[str, Any] = {}
    if row["value_num"] is not None:
        if row["unit"]:
            value["valueQuantity"] = quantity(row["value_num"], row["unit"])
        else:
            value["valueQuantity"] = {"value": row["value_num"]}
    elif row["value_text"]:
        value["valueString"] = row["value_text"]
    ranges = {}
    unit = row["unit"] or ""
    for bound, column in (("low", "reference_low"), ("high", "reference_high")):
        if row[column] is not None:
            ranges[bound] = quantity(row[column], unit) if unit else {"value": row[column]}
    return {
        "resourceType": "Observation",
        "id": fid,
        "meta": meta(row["updated_at"], US_CORE + "us-core-observation-lab"),
        "status": row["status"] if row["status"] in ("preliminary", "final") else "unknown",
        "category": [concept(OBS_CATEGORY, "laboratory", "Laboratory")],
        "code": concept(LOINC, row["loinc_code"], row["name"]),
        "subject": ctx.patient(row["patient_id"]),
        "encounter": encounter_ref(row["encounter_id"]),
        "effectiveDateTime": row["collected_at"],
        "issued": row["resulted_at"],
        **value,
        "interpretation": [
            concept(
                "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                row["interpretation"],
            )
        ],
        "referenceRange": [ranges] if ranges else [],
    }


def vital_observation(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """vitals -> one Observation (vital-signs) per sign, ``sub`` naming the sign."""
    sign = SIGNS_BY_KEY[sub]
    codings = [coding(LOINC, sign.loinc, sign.display)]
    if sign.key == "spo2":
        codings.append(coding(LOINC, "2708-6", "Oxygen saturation in Arterial blood"))
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "id": fid,
        "meta": meta(row["updated_at"], "http://hl7.org/fhir/StructureDefinition/" + sign.profile),
        "status": "final",
        "category": [concept(OBS_CATEGORY, "vital-signs", "Vital Signs")],
        "code": {"coding": codings, "text": sign.display},
        "subject": ctx.patient(row["patient_id"]),
        "encounter": encounter_ref(row["encounter_id"]),
        "effectiveDateTime": row["taken_at"],
    }
    if sign.key == "bp":
        body["component"] = [
            {
                "code": concept(LOINC, "8480-6", "Systolic blood pressure"),
                "valueQuantity": quantity(row["systolic_mmhg"], "mm[Hg]"),
            },
            {
                "code": concept(LOINC, "8462-4", "Diastolic blood pressure"),
                "valueQuantity": quantity(row["diastolic_mmhg"], "mm[Hg]"),
            },
        ]
    else:
        body["valueQuantity"] = quantity(row[sign.column], sign.unit)
    return body


def immunization(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """immunizations -> Immunization."""
    del sub
    return {
        "resourceType": "Immunization",
        "id": fid,
        "meta": meta(row["updated_at"], US_CORE + "us-core-immunization"),
        "status": row["status"]
        if row["status"] in ("completed", "entered-in-error", "not-done")
        else "completed",
        "vaccineCode": {
            "coding": [coding(CVX, row["cvx_code"], row["name"]), coding(CPT, row["cpt_code"])],
            "text": row["name"],
        },
        "patient": ctx.patient(row["patient_id"]),
        "encounter": encounter_ref(row["encounter_id"]),
        "occurrenceDateTime": row["administered_on"],
        "primarySource": True,
        "lotNumber": row["lot_number"],
        "site": concept("http://terminology.hl7.org/CodeSystem/v2-0163", row["site"]),
        "route": concept("http://terminology.hl7.org/CodeSystem/v2-0162", row["route"]),
    }


def document_reference(row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """documents -> DocumentReference."""
    del sub
    code, display = DOCUMENT_TYPES.get(row["document_source_name"], DEFAULT_DOCUMENT_TYPE)
    return {
        "resourceType": "DocumentReference",
        "id": fid,
        "meta": meta(row["updated_at"], US_CORE + "us-core-documentreference"),
        "identifier": [{"system": SID + "document-id", "value": str(row["id"])}],
        "status": "current" if row["status"] == "A" else "entered-in-error",
        "docStatus": "final",
        "type": {"coding": [coding(LOINC, code, display)], "text": row["document_source_name"]},
        "category": [concept(DOC_CATEGORY, "clinical-note", "Clinical Note")],
        "subject": ctx.patient(row["patient_id"]),
        "date": row["created_at"],
        "custodian": ctx.organization(),
        "description": row["description"],
        "content": [
            {
                "attachment": {
                    "contentType": row["content_type"],
                    "url": f"{ctx.practice.base}/Binary/{fid}",
                    "size": row["size_bytes"],
                    "title": row["name"],
                    "creation": row["created_at"],
                },
                "format": coding(
                    "http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem",
                    "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                    "mimeType Sufficient",
                ),
            }
        ],
        "context": {"period": {"start": row["document_date"]}},
    }


Builder = Callable[[sqlite3.Row, str, str, Ctx], dict[str, Any]]

BUILDERS: dict[str, Builder] = {
    "patient": patient,
    "provider": practitioner,
    "practice": practice_organization,
    "payer": payer_organization,
    "location": location,
    "coverage": coverage,
    "encounter": encounter,
    "problem": condition,
    "allergy": allergy,
    "medication": medication_request,
    "lab": lab_observation,
    "vital": vital_observation,
    "immunization": immunization,
    "document": document_reference,
}


def build(kind: str, row: sqlite3.Row, sub: str, fid: str, ctx: Ctx) -> dict[str, Any]:
    """Render one row as a resource, without empty values."""
    resource: dict[str, Any] = clean(BUILDERS[kind](row, sub, fid, ctx))
    return resource
