"""``GET /v2/appointment_availability`` (``upstream/carecloud.md`` §2.5, §6.1).

Availability = templates - blockouts - booked. ``dow`` is a 7-character Sunday-to-Saturday
mask (default ``0111110``); ``duration`` defaults to the visit reason's; at most 100 slots are
returned, with no paging.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carecloud_sandbox.tenant import Grant, Tenant
from carecloud_sandbox.v2.common import (
    ApiError,
    failed,
    from_db_instant,
    json_response,
    loads,
    parse_id_list,
    parse_int_id,
    parse_iso_date,
    to_db_instant,
)
from carecloud_sandbox.v2.routing import authed

MAX_SLOTS = 100
DEFAULT_DOW = "0111110"
MAX_RANGE_DAYS = 93
CALL = "Appointment Availability Search"


@dataclass(frozen=True)
class Slot:
    """One bookable interval."""

    location_id: int
    resource_id: int
    start: datetime
    end: datetime


def _sunday_index(day: date) -> int:
    return (day.weekday() + 1) % 7


def find_slots(
    tenant: Tenant,
    practice_id: int,
    *,
    visit_reason_id: int,
    start: date,
    end: date,
    location_ids: list[int] | None = None,
    resource_ids: list[int] | None = None,
    dow: str = DEFAULT_DOW,
    duration: int | None = None,
    meridians: set[str] | None = None,
    limit: int = MAX_SLOTS,
) -> list[Slot]:
    """Free slots for a visit reason between two local dates, earliest first."""
    tz = tenant.tz(practice_id)
    reason = tenant.db.one(
        "SELECT * FROM visit_reasons WHERE id = ? AND practice_id = ? AND status = 'A'",
        (visit_reason_id, practice_id),
    )
    if reason is None:
        raise failed(CALL, "visit_reason_id must be an active visit reason of the practice", 404)
    length = timedelta(minutes=duration or int(reason["duration"]))
    templates = [
        t
        for t in tenant.db.all(
            "SELECT * FROM appointment_templates WHERE practice_id = ? AND status = 'A'",
            (practice_id,),
        )
        if any(v["id"] == visit_reason_id for v in loads(t["visit_reasons_json"]))
    ]
    active_resources = {
        r[0]
        for r in tenant.db.all(
            "SELECT id FROM resources WHERE practice_id = ? AND status = 'A'", (practice_id,)
        )
    }
    blockouts = tenant.db.all(
        "SELECT * FROM appointment_blockouts WHERE practice_id = ? AND status = 'A' "
        "AND start_date <= ? AND end_date >= ?",
        (practice_id, end.isoformat(), start.isoformat()),
    )
    lo = to_db_instant(datetime.combine(start, time(0), tz))
    hi = to_db_instant(datetime.combine(end + timedelta(days=1), time(0), tz))
    booked: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for row in tenant.db.all(
        "SELECT resource_id, start_time, end_time FROM appointments WHERE practice_id = ? "
        "AND start_time >= ? AND start_time < ? AND end_time > ? AND status_code NOT IN ('C', 'R')",
        # A visit is shorter than a day, so the lower bound keeps the index scan to the window.
        (
            practice_id,
            to_db_instant(datetime.combine(start - timedelta(days=1), time(0), tz)),
            hi,
            lo,
        ),
    ):
        booked[row[0]].append((from_db_instant(row[1]), from_db_instant(row[2])))
    now = tenant.now()
    found: list[Slot] = []
    day = start
    while day <= end and len(found) < limit:
        index = _sunday_index(day)
        if dow[index] == "1":
            for template in templates:
                if template["days"][index] != "1" or not (
                    template["effective_from"] <= day.isoformat()
                    and (
                        template["effective_to"] is None
                        or day.isoformat() <= template["effective_to"]
                    )
                ):
                    continue
                window_start = datetime.combine(day, time.fromisoformat(template["start_at"]), tz)
                window_end = datetime.combine(day, time.fromisoformat(template["end_at"]), tz)
                for resource_id in loads(template["resource_ids_json"]):
                    if resource_id not in active_resources or (
                        resource_ids and resource_id not in resource_ids
                    ):
                        continue
                    for location_id in loads(template["location_ids_json"]):
                        if location_ids and location_id not in location_ids:
                            continue
                        cursor = window_start
                        while cursor + length <= window_end:
                            slot_end = cursor + length
                            if (
                                cursor > now
                                and _free(
                                    cursor,
                                    slot_end,
                                    day,
                                    index,
                                    resource_id,
                                    blockouts,
                                    booked,
                                    int(template["max_appointments_allowed"]),
                                    tz,
                                )
                                and (
                                    meridians is None
                                    or ("am" if cursor.hour < 12 else "pm") in meridians
                                )
                            ):
                                found.append(Slot(location_id, resource_id, cursor, slot_end))
                            cursor = slot_end
        day += timedelta(days=1)
    found.sort(key=lambda s: (s.start, s.resource_id))
    return found[:limit]


def _free(
    start: datetime,
    end: datetime,
    day: date,
    index: int,
    resource_id: int,
    blockouts: list[Any],
    booked: dict[int, list[tuple[datetime, datetime]]],
    capacity: int,
    tz: Any,
) -> bool:
    for b in blockouts:
        if resource_id not in loads(b["resource_ids_json"]) or b["days"][index] != "1":
            continue
        if not b["start_date"] <= day.isoformat() <= b["end_date"]:
            continue
        b_start = datetime.combine(day, time.fromisoformat(b["start_at"]), tz)
        b_end = datetime.combine(day, time.fromisoformat(b["end_at"]), tz)
        if b_start < end and b_end > start:
            return False
    overlapping = sum(1 for s, e in booked.get(resource_id, ()) if s < end and e > start)
    return overlapping < capacity


async def availability(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """Search free slots; at most 100, grouped by location, visit reason and resource."""
    q = request.query_params
    if not q.get("start_date"):
        raise failed(CALL, "start_date is required")
    if not q.get("visit_reason_id"):
        raise failed(CALL, "visit_reason_id is required")
    try:
        start = parse_iso_date(q["start_date"])
        end = parse_iso_date(q["end_date"]) if q.get("end_date") else start + timedelta(days=6)
    except ValueError:
        raise failed(CALL, "dates must be formatted YYYY-MM-DD") from None
    if end < start or (end - start).days > MAX_RANGE_DAYS:
        raise failed(CALL, f"end_date must be within {MAX_RANGE_DAYS} days after start_date")
    reason_id = parse_int_id(q["visit_reason_id"])
    if reason_id is None:
        raise failed(CALL, "visit_reason_id must be an integer")
    dow = q.get("dow", DEFAULT_DOW)
    if not re.fullmatch(r"[01]{7}", dow):
        raise failed(CALL, "dow must be 7 characters of 0 and 1, Sunday first")
    duration = None
    if q.get("duration"):
        duration = parse_int_id(q["duration"])
        if duration is None or duration > 480:
            raise failed(CALL, "duration must be a number of minutes up to 480")
    meridians = None
    if q.get("meridian"):
        meridians = {m.strip().lower() for m in q["meridian"].split(",")}
        if not meridians <= {"am", "pm"}:
            raise failed(CALL, "meridian must be am, pm or am,pm")
    try:
        location_ids = parse_id_list(q.get("location_ids"))
        resource_ids = parse_id_list(q.get("resource_ids"))
    except ValueError:
        raise failed(CALL, "location_ids and resource_ids must be integers") from None
    slots = find_slots(
        tenant,
        grant.practice_id,
        visit_reason_id=reason_id,
        start=start,
        end=end,
        location_ids=location_ids,
        resource_ids=resource_ids,
        dow=dow,
        duration=duration,
        meridians=meridians,
    )
    tz = tenant.tz(grant.practice_id)
    names = {
        (table, r[0]): r[1]
        for table in ("locations", "resources", "visit_reasons")
        for r in tenant.db.all(
            f"SELECT id, name FROM {table} WHERE practice_id = ?", (grant.practice_id,)
        )
    }
    groups: dict[tuple[int, int], list[dict[str, str]]] = {}
    for slot in slots:
        groups.setdefault((slot.location_id, slot.resource_id), []).append(
            {
                "start_time": slot.start.astimezone(tz).isoformat(timespec="seconds"),
                "end_time": slot.end.astimezone(tz).isoformat(timespec="seconds"),
            }
        )
    body = [
        {
            "location": {"id": loc, "name": names.get(("locations", loc))},
            "visit_reason": {"id": reason_id, "name": names.get(("visit_reasons", reason_id))},
            "resource": {"id": res, "name": names.get(("resources", res))},
            "slots": items,
        }
        for (loc, res), items in groups.items()
    ]
    return json_response(body)


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The availability route."""
    return [
        Route(
            "/v2/appointment_availability",
            authed(tenant, "scheduling.read", availability),
            methods=["GET"],
        ),
    ]


__all__ = ["ApiError", "Slot", "find_slots", "routes"]
