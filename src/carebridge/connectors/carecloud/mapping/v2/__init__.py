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

The mappers live by family: ``patients`` (patients, coverages, payers), ``scheduling`` (the
practice, slots, appointments), ``billing`` (ledger, balances, eligibility), ``clinical``
(documents); ``codes`` holds the code lists, ``contacts`` the addresses and phones, ``_base``
the recorder and ids they share. This package re-exports every public name.

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

from carebridge.connectors.carecloud.mapping.v2._base import PatientRef, patient_id, present_paths
from carebridge.connectors.carecloud.mapping.v2.billing import (
    ChargeDetails,
    is_charge,
    map_balance,
    map_charge,
    map_eligibility,
    map_ledger_entry,
)
from carebridge.connectors.carecloud.mapping.v2.clinical import map_document
from carebridge.connectors.carecloud.mapping.v2.codes import (
    appointment_status,
    confirmation_method,
    confirmation_outcome,
    coverage_level,
    eligibility_status,
    employment_status,
    ethnicity,
    gender,
    ledger_kind,
    marital_status,
    payer_kind,
    phone_kind,
    policy_type,
    relationship,
    responsible_party,
    student_status,
    transaction_status,
)
from carebridge.connectors.carecloud.mapping.v2.patients import (
    map_coverage,
    map_coverages,
    map_patient,
    map_payer,
)
from carebridge.connectors.carecloud.mapping.v2.scheduling import (
    map_appointment,
    map_confirmation,
    map_location,
    map_provider,
    map_resource,
    map_slot,
    map_slots,
    map_visit_reason,
    usual_duration,
)

__all__ = [
    "ChargeDetails",
    "PatientRef",
    "appointment_status",
    "confirmation_method",
    "confirmation_outcome",
    "coverage_level",
    "eligibility_status",
    "employment_status",
    "ethnicity",
    "gender",
    "is_charge",
    "ledger_kind",
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
    "marital_status",
    "patient_id",
    "payer_kind",
    "phone_kind",
    "policy_type",
    "present_paths",
    "relationship",
    "responsible_party",
    "student_status",
    "transaction_status",
    "usual_duration",
]
