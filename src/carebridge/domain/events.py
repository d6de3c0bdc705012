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


_NESTED: Final = (dict, list)
_CONTAINERS: Final = frozenset(_NESTED)


def _strip(value: Any) -> Any:
    """``value`` without provenance at any depth; a leaf is returned as is (no call per leaf:
    records are wide and mostly leaves), and so is a dict or list that holds neither provenance
    nor a dict or list (most of a record's parts: a name, an address), found by a scan of its
    values' types in C. The result shares those parts with ``value``: read it, do not change
    it."""
    kind = type(value)
    if kind is dict:
        if _CONTAINERS.isdisjoint(map(type, value.values())):
            if PROVENANCE.isdisjoint(value):
                return value
            return {k: v for k, v in value.items() if k not in PROVENANCE}
        return {
            k: (_strip(v) if type(v) in _NESTED else v)
            for k, v in value.items()
            if k not in PROVENANCE
        }
    if kind is list:
        if _CONTAINERS.isdisjoint(map(type, value)):
            return value
        return [_strip(v) if type(v) in _NESTED else v for v in value]
    return value


def content(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record without its provenance, at every depth (vitals carry their own). It shares
    the parts that hold no provenance with ``record``: read it, do not change it."""
    if record is None:
        return None
    stripped: dict[str, Any] = _strip(record)
    return stripped


def _same(old: Any, new: Any) -> bool:
    """Whether two JSON values are equal once stripped of provenance, without stripping them:
    equal values are equal stripped, so only unequal dicts and lists are walked (and only down
    their unequal branches)."""
    if old == new:
        return True
    kind = type(old)
    if kind is not type(new):
        return False  # a dict never equals a non-dict, nor a list a non-list, once stripped
    if kind is dict:
        keys = old.keys() - PROVENANCE
        if keys != new.keys() - PROVENANCE:
            return False
        return all(_same(old[k], new[k]) for k in keys)
    if kind is list:
        return len(old) == len(new) and all(map(_same, old, new))
    return False


def same_content(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """``content(before) == content(after)``, without building either."""
    if before is None or after is None:
        return before is after
    return _same(before, after)


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, list[Any]]:
    """The top-level fields that changed, as ``{field: [before, after]}`` (all of them for a new
    record, with ``None`` before), their values stripped of provenance (sharing the parts that
    hold none with ``before`` and ``after``: read them, do not change them)."""
    if not before:  # a new record: every field it has, each stripped on its own
        return {
            key: [None, _strip(value) if type(value) in _NESTED else value]
            for key in sorted(after)
            if key not in PROVENANCE and (value := after[key]) is not None
        }
    old = before
    changed: dict[str, list[Any]] = {}
    for key in sorted((old.keys() | after.keys()) - PROVENANCE):
        was, now = old.get(key), after.get(key)
        if was == now:
            continue  # equal raw, equal stripped
        was, now = _strip(was), _strip(now)
        if was != now:
            changed[key] = [was, now]
    return changed


def _coverage_terms(patient: dict[str, Any] | None) -> list[Any]:
    if not patient:
        return []
    return sorted(
        (str(c.get("id")), c.get("effective_from"), c.get("effective_to"))
        for c in patient.get("coverages") or []
    )


def classify(
    kind: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    changed: dict[str, list[Any]] | None = None,
) -> list[str]:
    """The event types of one change; empty when only provenance changed. ``changed`` is the
    change's :func:`diff`, when the caller has it already."""
    if changed is None:
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
