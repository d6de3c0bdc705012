"""Portal payloads to the normalized domain: pure functions, one per entity.

Each mapper returns ``Mapped[T]``: the domain record and ``dropped``, the upstream paths that
were present in the payload and not carried. ``dropped`` is computed, never listed by hand: the
wire models record what a mapper reads (``wire.portal.reading``), and whatever was present and
never read is reported (``wire.portal.unread``). A value that was read but could not be carried
(an unknown encounter type, a phone number that does not dial) is taken back with
``wire.portal.forget`` and reported too.

Ids are derived, not stored: ``PatientId.new(ctx.key("patient", chartNumber))`` on every surface
(the v2 and FHIR mappers use the same chart-number key), and every other entity from its own
upstream id (``ctx.key("encounter", "207")``, ``ctx.key("claim", "MGFM-0000076")`` ...), so a
record read twice, or read on another surface with the same key, gets the same id.

::

    patient summary | list item  -> Patient      (no coverages or balances: see below)
    encounter detail | list item -> Encounter    (+ VitalSigns, diagnoses, procedures, note,
                                                  addenda, signature; a list item has no note
                                                  or codes)
    vitals, problems, medications, allergies, labs, immunizations -> their records
    charge                       -> Charge
    claim detail                 -> Claim        (remittances: remittances_from_claim)
    payment | ERA                -> Payment      (the ERA's claims: remittances_from_era)
    remittance (claim's or ERA's) -> Remittance  (keyed by ERA and claim, so both merge)
    statement                    -> Statement

Not carried, so reported as dropped: the summary's ``insurance`` (it has no policy id to key a
``Coverage`` on; the v2 and FHIR surfaces have one), its ``balance`` (totals without aging cannot
form a ``Balance``) and ``counts``; embedded provider names and NPIs (a ``Provider`` comes from
its own surface); ``carcDescription`` (derived from the CARC); a claim's ``referringProvider``.

Errors: a value outside the domain's vocabulary, or a record that breaks a domain invariant,
raises ``UnexpectedPayload`` naming the field, never a bare ``ValidationError``.

The mappers live by family: ``charts`` (patients, encounters, chart lists) and ``rcm``
(charges, claims, remittances, payments, statements); ``base`` holds the ids, the tracing
harness and the code lists they share with ``mapping.fhir``. This package re-exports every
public name.
"""

from __future__ import annotations

from carebridge.connectors.carecloud.mapping.portal.base import (
    ENCOUNTER_TYPES,
    GENDERS,
    IMMUNIZATION_STATUSES,
    PAYMENT_METHODS,
    allergy_id,
    appointment_id,
    charge_id,
    claim_id,
    claim_status,
    document_id,
    encounter_id,
    encounter_type,
    immunization_id,
    immunization_status,
    lab_result_id,
    location_id,
    map_traced,
    medication_id,
    money,
    patient_id,
    payer_id,
    payment_id,
    payment_method,
    problem_id,
    provider_id,
    remittance_id,
    sex,
    statement_id,
    unexpected,
    vitals_id,
)
from carebridge.connectors.carecloud.mapping.portal.charts import (
    allergy_from_portal,
    encounter_from_portal,
    immunization_from_portal,
    lab_from_portal,
    medication_from_portal,
    patient_from_portal,
    problem_from_portal,
    vitals_from_portal,
)
from carebridge.connectors.carecloud.mapping.portal.rcm import (
    charge_from_portal,
    claim_from_portal,
    payment_from_portal,
    remittances_from_claim,
    remittances_from_era,
    statement_from_portal,
)

__all__ = [
    "ENCOUNTER_TYPES",
    "GENDERS",
    "IMMUNIZATION_STATUSES",
    "PAYMENT_METHODS",
    "allergy_from_portal",
    "allergy_id",
    "appointment_id",
    "charge_from_portal",
    "charge_id",
    "claim_from_portal",
    "claim_id",
    "claim_status",
    "document_id",
    "encounter_from_portal",
    "encounter_id",
    "encounter_type",
    "immunization_from_portal",
    "immunization_id",
    "immunization_status",
    "lab_from_portal",
    "lab_result_id",
    "location_id",
    "map_traced",
    "medication_from_portal",
    "medication_id",
    "money",
    "patient_from_portal",
    "patient_id",
    "payer_id",
    "payment_from_portal",
    "payment_id",
    "payment_method",
    "problem_from_portal",
    "problem_id",
    "provider_id",
    "remittance_id",
    "remittances_from_claim",
    "remittances_from_era",
    "sex",
    "statement_from_portal",
    "statement_id",
    "unexpected",
    "vitals_from_portal",
    "vitals_id",
]
