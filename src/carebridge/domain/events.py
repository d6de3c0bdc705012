"""Change events: what a change to a normalized record means, named as webhook types.

:func:`classify` turns one record's before and after (their JSON, as the store keeps them) into
the event types a receiver subscribes to. It is pure: the store calls it in the transaction that
writes the change, so every change, whether a sync, a read-through or a write found it, becomes
events exactly once. Provenance (``sources``) is not content: a record read again unchanged is
not a change.
"""

from __future__ import annotations

from typing import Any, Final

from carebridge.domain.kinds import event_types

EVENT_TYPES: Final = event_types()
"""Every event type (from the registry of kinds); subscriptions filter on these (or on
``<kind>.*``)."""

PROVENANCE: Final = frozenset({"sources"})

STICKY: Final = {"appointment": frozenset({"created_by_application"})}
"""Fields some upstream reads omit (the v2 appointment list has no ``created_by_application``;
the appointment detail has it): a missing value never overwrites a known one, so reading the
same record through two endpoints is not a change."""


def keep_sticky(kind: str, before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """``after``, with the :data:`STICKY` fields it lacks taken from ``before``."""
    fields = STICKY.get(kind)
    if not fields or before is None:
        return after
    kept = {f: before[f] for f in fields if after.get(f) is None and before.get(f) is not None}
    return after | kept if kept else after


_APPOINTMENT_STATUS: Final = {
    "cancelled": "appointment.cancelled",
    "arrived": "appointment.checked_in",
    "checked_out": "appointment.checked_out",
    "no_show": "appointment.no_show",
}
_CLAIM_STATUS: Final = {
    "paid": "claim.paid",
    "partially_paid": "claim.paid",
    "denied": "claim.denied",
}
_SUBMITTED: Final = frozenset({"submitted", "accepted", "pending"})
_UNSENT: Final = frozenset({"draft", "scrubbed", "rejected"})


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in PROVENANCE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def content(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record without its provenance, at every depth (vitals carry their own)."""
    if record is None:
        return None
    stripped: dict[str, Any] = _strip(record)
    return stripped


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, list[Any]]:
    """The top-level fields that changed, as ``{field: [before, after]}`` (all of them for a new
    record, with ``None`` before)."""
    old = content(before) or {}
    new = content(after) or {}
    return {
        key: [old.get(key), new.get(key)]
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    }


def _coverage_terms(patient: dict[str, Any] | None) -> list[Any]:
    if not patient:
        return []
    return sorted(
        (str(c.get("id")), c.get("effective_from"), c.get("effective_to"))
        for c in patient.get("coverages") or []
    )


def classify(kind: str, before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """The event types of one change; empty when only provenance changed."""
    changed = diff(before, after)
    if not changed:
        return []
    new = before is None
    if kind == "appointment":
        if new:
            return ["appointment.created"]
        status = _APPOINTMENT_STATUS.get(str(after.get("status")))
        if "status" in changed and status:
            return [status]
        if "start" in changed:
            return ["appointment.rescheduled"]
        return ["appointment.updated"]
    if kind == "encounter":
        out = ["encounter.created"] if new else []
        if after.get("status") == "signed" and (new or "status" in changed):
            out.append("encounter.signed")
        elif not new and "addenda" in changed:
            out.append("encounter.amended")
        return out or ["encounter.amended"]
    if kind == "claim":
        status = str(after.get("status"))
        moved = new or "status" in changed
        previous = None if new else changed.get("status", [None])[0]
        out = []
        if moved and status in _SUBMITTED and (new or previous in _UNSENT):
            out.append("claim.submitted")
        if moved and status in _CLAIM_STATUS:
            out.append(_CLAIM_STATUS[status])
        return out or ["claim.status_changed"]
    if kind == "payment":
        return ["payment.posted"] if new else []
    if kind == "remittance":
        return ["remittance.received"] if new else []
    if kind == "patient":
        out = ["patient.created" if new else "patient.updated"]
        if not new and _coverage_terms(before) != _coverage_terms(after):
            out.append("eligibility.changed")
        return out
    if kind == "eligibility":
        return ["eligibility.changed"]
    return []


def matches(wanted: list[str] | tuple[str, ...], event_type: str) -> bool:
    """Whether a subscription's filter takes an event type (``*``, ``kind.*`` or exact)."""
    if not wanted:
        return True
    kind = event_type.split(".", 1)[0]
    return any(w in ("*", event_type, f"{kind}.*") for w in wanted)
