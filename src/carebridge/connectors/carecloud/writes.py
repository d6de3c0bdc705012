"""Writes to CareCloud, each confirmed by reading back (``DESIGN.md`` §3, ADR 0008).

Upstream has no idempotency keys (``upstream/carecloud.md`` §7), so a write is never retried
blind: when its effect is unknown (:class:`WriteUnconfirmed`: a timeout, a dropped connection,
a 5xx after sending) the function first looks for what the first attempt would have made
(appointments by patient, resource and start; charges, encounters and addenda by what was new
since the write began) and sends again only when nothing landed. Every write then reads its
record back through the wire models and mappers and compares what was asked with what the
upstream holds: ``confirmed``, or ``diverged`` with the differing fields.

A :class:`WriteContext` carries the connection, the tenant's mapping context, the drift
report and an :class:`IdIndex` from carebridge ids to upstream ids.

The writes live by family: ``write_context`` (the context, the id index, the practice's
lists), ``portal_errors`` (the portal's error bodies), ``scheduling``, ``charts``, ``billing``
and ``eligibility``. This module keeps the names every caller imports from here.
"""

from __future__ import annotations

from carebridge.connectors.carecloud.billing import create_charge, submit_claim
from carebridge.connectors.carecloud.charts import add_addendum, push_encounter, sign_encounter
from carebridge.connectors.carecloud.eligibility import check_eligibility
from carebridge.connectors.carecloud.scheduling import (
    RESCHEDULED_REASON,
    cancel_appointment,
    check_in,
    check_out,
    create_appointment,
    reschedule_appointment,
)
from carebridge.connectors.carecloud.write_context import (
    MAX_SENDS,
    IdIndex,
    PatientKeys,
    WriteContext,
    index_practice,
)
from carebridge.errors import ClaimRejected, EncounterLocked, SlotTaken, UnknownId

__all__ = [
    "MAX_SENDS",
    "RESCHEDULED_REASON",
    "ClaimRejected",
    "EncounterLocked",
    "IdIndex",
    "PatientKeys",
    "SlotTaken",
    "UnknownId",
    "WriteContext",
    "add_addendum",
    "cancel_appointment",
    "check_eligibility",
    "check_in",
    "check_out",
    "create_appointment",
    "create_charge",
    "index_practice",
    "push_encounter",
    "reschedule_appointment",
    "sign_encounter",
    "submit_claim",
]
