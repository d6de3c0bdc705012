"""The registry of kinds: every kind of record carebridge serves, described once.

A kind is what the store keeps, the API lists, the sync pulls, the export writes and the events
name: ``patient``, ``appointment``, ``lab``... Each entry says, for its kind:

- ``model``: the domain model whose JSON the store keeps;
- ``scope``: the scope resource that guards it (a read needs ``<scope>.read``, a write
  ``<scope>.write``); the practice's lists share ``practice``, labs and immunizations are
  the encounter's, remittances and statements the payment's;
- ``phi``: whether reading it is PHI access (audited with the patients it names);
- ``upstream``: the :class:`~carebridge.ports.upstream.Upstream` method that reads it, and
  ``reach``: for the whole tenant, one patient at a time, or by a window of dates;
- ``incremental``: the method takes ``updated_since``; ``max_age``: how stale a read-through
  slice may be (None: the deployment's default);
- ``stream`` and ``tombstones``: the sync stream that pulls it (None: read through only), and
  whether that stream marks records the upstream no longer lists as deleted;
  ``synced_by_default``: whether a sync that names no streams (the schedule's, ``carebridge
  sync``) runs it; the others run only when named;
- ``table``: the export's table (None: not exported);
- ``events``: the event types about it;
- ``writes``: the write operations that change it, and whether each creates a record;
- ``patient_key``: where its patient id sits (``id`` for a patient, ``patient_id`` otherwise,
  None when it names no patient);
- ``columns``: the store's index columns a field of another name fills (a patient's
  ``provider_id`` column holds its ``primary_provider_id``); a column not named here is filled
  by the field of its own name. A list filters on a column under its field's name.

Every other table of kinds (the read path's sources and PHI set, the sync's streams, the
export's tables and models, the store's index columns, the write operations, the events'
scopes) is derived from :data:`KINDS`. Adding a kind is one entry here plus its mapper.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from carebridge.domain.billing import Charge, Claim, Payment, Remittance, Statement
from carebridge.domain.clinical import Document, Encounter, Immunization, LabResult
from carebridge.domain.eligibility import EligibilityCheck
from carebridge.domain.patients import Patient
from carebridge.domain.provenance import DomainModel
from carebridge.domain.scheduling import Appointment, Location, Provider, Resource, VisitReason

Reach = Literal["tenant", "patient", "window"]
"""How the upstream is read: the whole tenant at once, one patient at a time, or by dates."""

StreamMode = Literal["incremental", "per_patient", "window", "full"]
"""How a sync stream reads its kind (derived from ``reach`` and ``incremental``)."""


@dataclass(frozen=True)
class Write:
    """One write operation (``create_appointment``...): the kind it changes, whether it creates
    a record (the API answers 201), and the scope it needs (``<kind's scope>.write``)."""

    operation: str
    kind: str
    creates: bool
    scope: str


@dataclass(frozen=True)
class Kind:
    """One kind of record, as every layer sees it (see the module docstring)."""

    name: str
    model: type[DomainModel]
    scope: str
    phi: bool
    upstream: str
    reach: Reach = "tenant"
    incremental: bool = False
    max_age: timedelta | None = None
    stream: str | None = None
    tombstones: bool = False
    synced_by_default: bool = True
    table: str | None = None
    events: tuple[str, ...] = ()
    creates: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    patient_key: Literal["id", "patient_id"] | None = "patient_id"
    columns: tuple[tuple[str, str], ...] = ()

    def field_of(self, column: str) -> str:
        """The record's field that fills index column ``column``."""
        return dict(self.columns).get(column, column)

    def column_of(self, field: str) -> str:
        """The index column a filter on the record's field ``field`` reads."""
        return next((c for c, f in self.columns if f == field), field)

    @property
    def read_scope(self) -> str:
        """The scope a read of this kind needs."""
        return f"{self.scope}.read"

    @property
    def write_scope(self) -> str:
        """The scope a write of this kind needs."""
        return f"{self.scope}.write"

    @property
    def stored(self) -> bool:
        """Whether the store keeps records of this kind (eligibility is asked, never kept)."""
        return self.table is not None

    @property
    def stream_mode(self) -> StreamMode | None:
        """How its sync stream reads it (None without a stream)."""
        if self.stream is None:
            return None
        if self.reach == "window":
            return "window"
        if self.reach == "patient":
            return "per_patient"
        return "incremental" if self.incremental else "full"

    @property
    def writes(self) -> tuple[Write, ...]:
        """Its write operations, creating ones first."""
        return tuple(Write(op, self.name, True, self.write_scope) for op in self.creates) + tuple(
            Write(op, self.name, False, self.write_scope) for op in self.changes
        )


_DAY = timedelta(days=1)

KINDS: Final[dict[str, Kind]] = {
    k.name: k
    for k in (
        # The practice's lists, in the order a full sync pulls them (they rarely change).
        Kind("provider", Provider, "practice", False, "providers", max_age=_DAY,
             stream="providers", tombstones=True, table="providers", patient_key=None),
        Kind("location", Location, "practice", False, "locations", max_age=_DAY,
             stream="locations", tombstones=True, table="locations", patient_key=None),
        Kind("resource", Resource, "practice", False, "resources", max_age=_DAY,
             stream="resources", tombstones=True, table="resources", patient_key=None),
        Kind("visit_reason", VisitReason, "practice", False, "visit_reasons", max_age=_DAY,
             stream="visit_reasons", tombstones=True, table="visit_reasons", patient_key=None),
        # Patients and the schedule.
        Kind("patient", Patient, "patient", True, "patients", incremental=True,
             stream="patients", table="patients", patient_key="id",
             events=("patient.created", "patient.updated"),
             columns=(("provider_id", "primary_provider_id"),
                      ("location_id", "primary_location_id"), ("status", "active"))),
        Kind("appointment", Appointment, "appointment", True, "appointments", reach="window",
             stream="appointments", tombstones=True, table="appointments",
             events=("appointment.created", "appointment.updated", "appointment.rescheduled",
                     "appointment.cancelled", "appointment.checked_in",
                     "appointment.checked_out", "appointment.no_show"),
             creates=("create_appointment",),
             changes=("reschedule_appointment", "cancel_appointment", "check_in", "check_out")),
        # Charts.
        Kind("encounter", Encounter, "encounter", True, "encounters", reach="patient",
             incremental=True, stream="encounters", table="encounters",
             events=("encounter.created", "encounter.signed", "encounter.amended"),
             creates=("create_encounter", "add_addendum"), changes=("sign_encounter",)),
        # Revenue cycle.
        Kind("charge", Charge, "charge", True, "charges", stream="charges", table="charges",
             creates=("create_charge",)),
        Kind("claim", Claim, "claim", True, "claims", incremental=True, stream="claims",
             table="claims",
             events=("claim.submitted", "claim.status_changed", "claim.paid", "claim.denied"),
             creates=("submit_claim",)),
        Kind("payment", Payment, "payment", True, "payments", incremental=True,
             stream="payments", table="payments", events=("payment.posted",),
             columns=(("status", "kind"),)),
        Kind("remittance", Remittance, "payment", True, "remittances", incremental=True,
             stream="remittances", table="remittances", events=("remittance.received",),
             columns=(("status", "claim_status_code"),)),
        Kind("statement", Statement, "payment", True, "statements", incremental=True,
             stream="statements", table="statements"),
        # Read through per patient; their streams run only when a sync names them (through
        # the Connector's Bulk export where the tenant has it, else one list per patient).
        Kind("lab", LabResult, "encounter", True, "labs", reach="patient", table="labs",
             stream="labs", synced_by_default=False),
        Kind("immunization", Immunization, "encounter", True, "immunizations",
             reach="patient", table="immunizations", stream="immunizations",
             synced_by_default=False),
        Kind("document", Document, "document", True, "documents", reach="patient",
             table="documents", columns=(("status", "active"),), stream="documents",
             synced_by_default=False),
        # Asked in real time, never stored.
        Kind("eligibility", EligibilityCheck, "eligibility", True, "check_eligibility",
             reach="patient", events=("eligibility.changed",)),
    )
}  # fmt: skip
"""Every kind, in the order a full sync pulls the ones it streams."""

OPERATIONAL_EVENTS: Final = frozenset(
    {"upstream.drift", "integration.degraded", "webhook.disabled"}
)
"""Event types about carebridge's own state (a stream, an endpoint, a webhook), not a record."""

EXPORT_ORDER: Final = (
    "patient", "appointment", "encounter", "claim", "charge", "payment", "remittance",
    "statement", "provider", "location", "resource", "visit_reason", "lab", "immunization",
    "document",
)  # fmt: skip
"""The order the export writes its tables: the patient-facing kinds first."""


def kind(name: str) -> Kind:
    """The kind called ``name`` (KeyError for an unknown one)."""
    return KINDS[name]


def stored_kinds() -> tuple[Kind, ...]:
    """The kinds the store keeps, in registry order."""
    return tuple(k for k in KINDS.values() if k.stored)


def streamed_kinds() -> tuple[Kind, ...]:
    """The kinds a sync pulls, in the order a full sync runs their streams."""
    return tuple(k for k in KINDS.values() if k.stream is not None)


def writes() -> dict[str, Write]:
    """Every write operation by name."""
    return {w.operation: w for k in KINDS.values() for w in k.writes}


def event_types() -> frozenset[str]:
    """Every event type: those about each kind, and the operational ones."""
    return frozenset(t for k in KINDS.values() for t in k.events) | OPERATIONAL_EVENTS


def read_scope(name: str) -> str:
    """The scope a read of kind ``name`` needs."""
    return KINDS[name].read_scope
