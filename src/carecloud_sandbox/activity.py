"""The activity clock: the practice keeps working while the tenant's clock moves.

Time is cut into 15-minute ticks on a UTC grid. Each tick draws from its own RNG, seeded by the
tenant's seed and the tick's start, so the same seed and the same clock give the same practice.
Within a tick, for each practice:

- appointments starting now are checked in (or become no-shows); those ending are checked out,
  which opens the encounter (vitals, labs, immunizations) and posts the visit's charges;
- during office hours patients book (sometimes as new patients), cancel and reschedule, and
  reminders confirm tomorrow's visits;
- once a day (18:00 local) the back office runs: encounters are signed, claims are scrubbed and
  submitted, the clearinghouse accepts or rejects them, payers adjudicate after their lag and
  ERAs are posted, denials are appealed, statements go out, patients pay, and coverage ends or
  starts at month boundaries.

Every write advances ``updated_at`` and appends to the change log with source ``clock``.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from carecloud_sandbox import billing, clinical, codes, crosswalk, statements
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.availability import find_slots

TICK = timedelta(minutes=15)
SOURCE = "clock"
BACK_OFFICE = time(18, 0)
REMINDERS = time(10, 0)
OFFICE = (time(8, 0), time(17, 0))
NO_SHOW_RATE = 0.04
CANCEL_SHARE = 0.09  # cancellations per booking
RESCHEDULE_SHARE = 0.03
NEW_PATIENT_SHARE = 0.04
REJECT_RATE = 0.03
APPEAL_RATE = 0.4

SQL_TRANSACTION = (
    "INSERT INTO transactions(id, practice_id, patient_id, transaction_type, transaction_status, "
    "balance_type, amount_cents, balance_cents, posting_date, service_date, location_id, "
    "provider_id, attending_provider_id, units, description, procedure_code, "
    "diagnosis_codes_json, encounter_id, appointment_id, charge_id, insurance_profile_id, billed, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?, ?)"
)


class ClockError(Exception):
    """The tenant's clock cannot be moved (it is not a manual or offset clock)."""


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _floor(moment: datetime) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return epoch + TICK * ((moment - epoch) // TICK)


def _kind(reason_name: str) -> str:
    name = reason_name.upper()
    for word, kind in (
        ("NEW", "new"),
        ("ESTABLISHED", "established"),
        ("FOLLOW", "follow_up"),
        ("WELL", "preventive"),
        ("SICK", "sick"),
        ("NURSE", "nurse"),
    ):
        if word in name:
            return kind
    return "established"


@dataclass
class Practice:
    """What the clock needs to know about one practice, loaded once per run."""

    id: int
    code: str
    tz: Any
    statuses: dict[str, int]
    bookings_per_tick: float
    reasons: list[tuple[int, str, int, str | None]]  # id, kind, duration, procedure code
    patients: int
    first_patient: int | None = None  # internal ids, for uniform picks by index seek
    last_patient: int | None = None


class Activity:
    """Drives one tenant's practice through time."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.db = tenant.db
        self.counts: Counter[str] = Counter()
        self._practices: list[Practice] | None = None

    # --- the clock -----------------------------------------------------------------------------

    def _move_clock(self, to: datetime) -> None:
        clock = self.tenant.clock
        advance = getattr(clock, "advance", None)
        if advance is None:
            raise ClockError("the tenant's clock cannot be advanced")
        delta = to - clock.now()
        if delta > timedelta(0):
            advance(delta)

    def advance(self, minutes: int) -> dict[str, int]:
        """Move the clock forward by ``minutes``, running the practice tick by tick."""
        if minutes < 0:
            raise ValueError("minutes must not be negative")
        target = self.tenant.now() + timedelta(minutes=minutes)
        return self.run_until(target, move_clock=True)

    def run_until(self, target: datetime, *, move_clock: bool = False) -> dict[str, int]:
        """Run every whole tick that ends by ``target``; returns what happened, by kind."""
        self.counts = Counter()
        stored = self.db.get_meta("activity_at")
        cursor = _instant(stored) if stored else _floor(self.tenant.now())
        if stored is None:  # the practice starts working now; later calls catch up from here
            self.db.set_meta("activity_at", _z(cursor))
        while cursor + TICK <= target:
            if move_clock:
                self._move_clock(cursor + TICK)
            self.tick(cursor, cursor + TICK)
            cursor += TICK
            self.db.set_meta("activity_at", _z(cursor))
        if move_clock:
            self._move_clock(target)
        return dict(sorted(self.counts.items()))

    # --- one tick ------------------------------------------------------------------------------

    def practices(self) -> list[Practice]:
        """The practices and their booking rates (from the last 28 days of bookings)."""
        if self._practices is not None:
            return self._practices
        out: list[Practice] = []
        now = self.tenant.now()
        since = _z(now - timedelta(days=28))
        for p in self.db.all("SELECT id, fhir_code FROM practices ORDER BY id"):
            pid = int(p["id"])
            booked = int(
                self.db.scalar(
                    "SELECT COUNT(*) FROM appointments WHERE practice_id = ? AND created_at >= ?",
                    (pid, since),
                )
            )
            per_weekday = booked / 20  # bookings land on office hours of weekdays
            bounds = self.db.one(
                "SELECT MIN(internal_id), MAX(internal_id) FROM patients WHERE practice_id = ?",
                (pid,),
            ) or (None, None)
            out.append(
                Practice(
                    id=pid,
                    code=str(p["fhir_code"]),
                    tz=self.tenant.tz(pid),
                    statuses={
                        r["code"]: int(r["id"])
                        for r in self.db.all(
                            "SELECT id, code FROM appointment_statuses WHERE practice_id = ?",
                            (pid,),
                        )
                    },
                    bookings_per_tick=per_weekday / 36,
                    reasons=[
                        (int(r["id"]), _kind(r["name"]), int(r["duration"]), r["procedure_code"])
                        for r in self.db.all(
                            "SELECT id, name, duration, procedure_code FROM visit_reasons "
                            "WHERE practice_id = ? AND status = 'A' ORDER BY id",
                            (pid,),
                        )
                    ],
                    patients=int(
                        self.db.scalar(
                            "SELECT COUNT(*) FROM patients WHERE practice_id = ?", (pid,)
                        )
                    ),
                    first_patient=bounds[0],
                    last_patient=bounds[1],
                )
            )
        self._practices = out
        return out

    def tick(self, t0: datetime, t1: datetime) -> None:
        """Everything that happens in [t0, t1), practice by practice, in one transaction each."""
        seed = self.tenant.config.seed
        for practice in self.practices():
            rng = random.Random(f"{seed}:tick:{practice.id}:{_z(t0)}")
            local0 = t0.astimezone(practice.tz)
            with self.db.transaction() as conn:
                self.arrivals(conn, rng, practice, t0, t1)
                self.departures(conn, rng, practice, t0, t1)
                weekday = local0.weekday() < 5
                if weekday and OFFICE[0] <= local0.time() < OFFICE[1]:
                    self.front_desk(conn, rng, practice, t1)
                if weekday and local0.time() <= REMINDERS < (local0 + TICK).time():
                    self.reminders(conn, rng, practice, local0.date(), t1)
                if local0.time() <= BACK_OFFICE < (local0 + TICK).time():
                    self.back_office(conn, rng, practice, local0.date(), t1)

    def log(
        self,
        conn: sqlite3.Connection,
        practice: Practice,
        entity: str,
        entity_id: Any,
        action: str,
        at: datetime,
    ) -> None:
        """Append to the change log and count it."""
        self.db.log_change(
            conn,
            at=_z(at),
            practice_id=practice.id,
            entity=entity,
            entity_id=entity_id,
            action=action,
            source=SOURCE,
        )
        self.counts[f"{entity}.{action}"] += 1

    # --- visits --------------------------------------------------------------------------------

    def arrivals(
        self,
        conn: sqlite3.Connection,
        rng: random.Random,
        practice: Practice,
        t0: datetime,
        t1: datetime,
    ) -> None:
        rows = conn.execute(
            "SELECT id, start_time FROM appointments WHERE practice_id = ? AND status_code = 'P' "
            "AND start_time >= ? AND start_time < ? ORDER BY start_time, internal_id",
            (practice.id, _z(t0), _z(t1)),
        ).fetchall()
        for row in rows:
            start = _instant(row["start_time"])
            if rng.random() < NO_SHOW_RATE:
                code, action, extra = "N", "no_show", {}
            else:
                arrived = max(start - timedelta(minutes=rng.randrange(0, 15)), t0)
                code, action, extra = "I", "checked_in", {"arrived_at": _z(arrived)}
            self._status(conn, practice, row["id"], code, t1, extra)
            self.log(conn, practice, "appointment", row["id"], action, t1)

    def _status(
        self,
        conn: sqlite3.Connection,
        practice: Practice,
        appointment_id: str,
        code: str,
        at: datetime,
        extra: dict[str, Any],
    ) -> None:
        sets = {
            "appointment_status_id": practice.statuses[code],
            "status_code": code,
            "updated_at": _z(at),
            "updated_by_application": "CareCloud Central",
            **extra,
        }
        assignments = ", ".join(f"{k} = ?" for k in sets)
        conn.execute(
            f"UPDATE appointments SET {assignments} WHERE id = ?", (*sets.values(), appointment_id)
        )

    def departures(
        self,
        conn: sqlite3.Connection,
        rng: random.Random,
        practice: Practice,
        t0: datetime,
        t1: datetime,
    ) -> None:
        rows = conn.execute(
            "SELECT a.*, p.dob, p.gender_code FROM appointments a JOIN patients p ON p.id = a.patient_id "
            "WHERE a.practice_id = ? AND a.start_time >= ? AND a.start_time < ? "
            "AND a.status_code = 'I' AND a.end_time < ? ORDER BY a.end_time, a.internal_id",
            (practice.id, _z(t0 - timedelta(days=1)), _z(t1), _z(t1)),
        ).fetchall()
        for row in rows:
            departed = max(_instant(row["end_time"]), t0) + timedelta(minutes=rng.randrange(0, 10))
            departed = min(departed, t1)
            encounter = int(row["internal_id"])
            if conn.execute("SELECT 1 FROM encounters WHERE id = ?", (encounter,)).fetchone():
                encounter = billing.next_row_id(conn, "encounters")  # the id went to a pushed one
            self._status(
                conn,
                practice,
                row["id"],
                "O",
                t1,
                {"departed_at": _z(departed), "encounter_id": encounter},
            )
            self.log(conn, practice, "appointment", row["id"], "checked_out", t1)
            self.visit(conn, rng, practice, row, encounter, departed, t1)

    def visit(
        self,
        conn: sqlite3.Connection,
        rng: random.Random,
        practice: Practice,
        appt: sqlite3.Row,
        encounter: int,
        departed: datetime,
        now: datetime,
    ) -> None:
        """The encounter and the charges of a checked-out visit."""
        reason = next((r for r in practice.reasons if r[0] == appt["nature_of_visit_id"]), None)
        kind = reason[1] if reason else "established"
        day = _instant(appt["start_time"]).astimezone(practice.tz).date()
        dob = date.fromisoformat(appt["dob"]) if appt["dob"] else day - timedelta(days=365 * 40)
        age = (day - dob).days // 365
        problems = [
            r[0]
            for r in conn.execute(
                "SELECT icd10_code FROM problems WHERE patient_id = ? AND status = 'active' ORDER BY id",
                (appt["patient_id"],),
            )
        ]
        lines, dx = plan_visit(rng, kind, age, problems, reason[3] if reason else None)
        start = max(
            _instant(appt["arrived_at"] or appt["start_time"]), _instant(appt["start_time"])
        )

        def add(sql: str, values: tuple[Any, ...]) -> None:
            conn.execute(sql, values)

        clinical.visit_chart(
            add,
            rng,
            encounter_id=encounter,
            practice_id=practice.id,
            patient_id=appt["patient_id"],
            appointment_id=appt["id"],
            provider_id=int(appt["provider_id"]),
            location_id=appt["location_id"],
            encounter_date=day,
            start=min(start, departed),
            end=departed,
            complaint=appt["reason_for_visit"] or "Office visit",
            dx=dx,
            lines=lines,
            age=age,
            gender=appt["gender_code"] or "U",
            nurse=kind == "nurse",
            signed_at=None,
            now=now,
        )
        self.log(conn, practice, "encounter", encounter, "created", now)
        profile = conn.execute(
            "SELECT profile_id FROM insurance_policies WHERE patient_id = ? AND policy_priority = 1 "
            "AND (effective_to IS NULL OR effective_to >= ?) ORDER BY id LIMIT 1",
            (appt["patient_id"], day.isoformat()),
        ).fetchone()
        next_id = billing.next_row_id(conn, "transactions")
        for n, (code, units) in enumerate(lines):
            proc = codes.PROCEDURE_BY_CODE.get(code)
            amount = (proc.fee_cents if proc else 10000) * units
            conn.execute(
                SQL_TRANSACTION,
                (
                    next_id + n,
                    practice.id,
                    appt["patient_id"],
                    "charge",
                    "not_posted",
                    "insurance" if profile else "patient",
                    amount,
                    amount,
                    day.isoformat(),
                    day.isoformat(),
                    appt["location_id"],
                    appt["provider_id"],
                    appt["provider_id"],
                    units,
                    proc.label if proc else code,
                    code,
                    orjson.dumps(dx).decode(),
                    encounter,
                    appt["id"],
                    None,
                    None if profile is None else profile[0],
                    0,
                    _z(now),
                    _z(now),
                ),
            )
            self.log(conn, practice, "charge", next_id + n, "created", now)

    # --- the front desk ------------------------------------------------------------------------

    def front_desk(
        self, conn: sqlite3.Connection, rng: random.Random, practice: Practice, now: datetime
    ) -> None:
        expected = practice.bookings_per_tick
        bookings = int(expected) + (rng.random() < expected - int(expected))
        for _ in range(bookings):
            self.book(conn, rng, practice, now, patient_id=None)
        if rng.random() < expected * CANCEL_SHARE:
            self.cancel(conn, rng, practice, now, reschedule=False)
        if rng.random() < expected * RESCHEDULE_SHARE:
            self.cancel(conn, rng, practice, now, reschedule=True)

    def book(
        self,
        conn: sqlite3.Connection,
        rng: random.Random,
        practice: Practice,
        now: datetime,
        *,
        patient_id: str | None,
        reason_id: int | None = None,
    ) -> str | None:
        """Book one visit in a free slot; a new patient now and then."""
        if patient_id is None:
            if rng.random() < NEW_PATIENT_SHARE:
                patient_id = self.new_patient(conn, rng, practice, now)
            else:
                row = self._random_patient(conn, rng, practice)
                if row is None:
                    return None
                patient_id = str(row[0])
        reasons = practice.reasons
        if reason_id is None:
            weights = [
                {
                    "new": 0.08,
                    "established": 0.35,
                    "follow_up": 0.2,
                    "preventive": 0.17,
                    "sick": 0.17,
                    "nurse": 0.03,
                }[r[1]]
                for r in reasons
            ]
            reason = rng.choices(reasons, weights=weights)[0]
        else:
            reason = next(r for r in reasons if r[0] == reason_id)
        today = now.astimezone(practice.tz).date()
        lead = rng.randrange(0, 2) if reason[1] == "sick" else rng.randrange(2, 45)
        day = today + timedelta(days=lead)
        slots = find_slots(
            self.tenant,
            practice.id,
            visit_reason_id=reason[0],
            start=day,
            end=day + timedelta(days=4),
            dow="1111111",
            limit=24,
        )
        if not slots:
            return None
        slot = slots[rng.randrange(len(slots))]
        resource = conn.execute(
            "SELECT default_provider_id FROM resources WHERE id = ?", (slot.resource_id,)
        ).fetchone()
        provider = resource[0] if resource and resource[0] else None
        if provider is None:
            return None
        internal = int(
            conn.execute("SELECT COALESCE(MAX(internal_id), 0) + 1 FROM appointments").fetchone()[0]
        )
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        at = _z(now)
        complaint = {
            "sick": "Sick visit",
            "preventive": "Annual physical",
            "new": "New patient, establish care",
            "nurse": "Vaccine visit",
        }.get(reason[1], "Follow-up visit")
        conn.execute(
            "INSERT INTO appointments(id, internal_id, practice_id, patient_id, provider_id, location_id, "
            "resource_id, nature_of_visit_id, appointment_status_id, status_code, start_time, end_time, "
            "reason_for_visit, comments, created_by_application, updated_by_application, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'P', ?, ?, ?, '', 'CareCloud Central', 'CareCloud Central', ?, ?)",
            (
                guid,
                internal,
                practice.id,
                patient_id,
                provider,
                slot.location_id,
                slot.resource_id,
                reason[0],
                practice.statuses["P"],
                _z(slot.start),
                _z(slot.end),
                complaint,
                at,
                at,
            ),
        )
        self.log(conn, practice, "appointment", guid, "created", now)
        return guid

    def _random_patient(
        self, conn: sqlite3.Connection, rng: random.Random, practice: Practice
    ) -> sqlite3.Row | None:
        """An active patient of the practice, uniformly by internal id (an index seek)."""
        if practice.first_patient is None or practice.last_patient is None:
            return None
        pick = rng.randint(practice.first_patient, practice.last_patient)
        row: sqlite3.Row | None = conn.execute(
            "SELECT id FROM patients WHERE +practice_id = ? AND status = 'A' AND internal_id >= ? "
            "ORDER BY internal_id LIMIT 1",
            (practice.id, pick),
        ).fetchone()
        return row

    def cancel(
        self,
        conn: sqlite3.Connection,
        rng: random.Random,
        practice: Practice,
        now: datetime,
        *,
        reschedule: bool,
    ) -> None:
        horizon = _z(now + timedelta(days=21))
        count = int(
            conn.execute(
                "SELECT COUNT(*) FROM appointments WHERE practice_id = ? AND status_code = 'P' AND start_time > ? AND start_time < ?",
                (practice.id, _z(now + timedelta(hours=2)), horizon),
            ).fetchone()[0]
        )
        if not count:
            return
        row = conn.execute(
            "SELECT id, patient_id, nature_of_visit_id FROM appointments WHERE practice_id = ? AND status_code = 'P' "
            "AND start_time > ? AND start_time < ? ORDER BY start_time, internal_id LIMIT 1 OFFSET ?",
            (practice.id, _z(now + timedelta(hours=2)), horizon, rng.randrange(count)),
        ).fetchone()
        if reschedule:
            self._status(conn, practice, row["id"], "R", now, {})
            self.log(conn, practice, "appointment", row["id"], "rescheduled", now)
            self.book(
                conn,
                rng,
                practice,
                now,
                patient_id=row["patient_id"],
                reason_id=row["nature_of_visit_id"],
            )
            return
        reason = conn.execute(
            "SELECT id FROM cancellation_reasons WHERE practice_id = ? OR practice_id IS NULL ORDER BY id",
            (practice.id,),
        ).fetchall()
        self._status(
            conn,
            practice,
            row["id"],
            "C",
            now,
            {
                "cancellation_reason_id": rng.choice(reason)[0] if reason else None,
                "cancellation_comments": "Patient called to cancel",
            },
        )
        self.log(conn, practice, "appointment", row["id"], "cancelled", now)

    def reminders(
        self,
        conn: sqlite3.Connection,
        rng: random.Random,
        practice: Practice,
        today: date,
        now: datetime,
    ) -> None:
        tomorrow = today + timedelta(days=3 if today.weekday() == 4 else 1)
        lo = _z(datetime.combine(tomorrow, time(0), practice.tz))
        hi = _z(datetime.combine(tomorrow + timedelta(days=1), time(0), practice.tz))
        rows = conn.execute(
            "SELECT id, preferred_confirmation_method FROM appointments WHERE practice_id = ? AND status_code = 'P' "
            "AND is_confirmed = 0 AND start_time >= ? AND start_time < ? ORDER BY start_time, internal_id",
            (practice.id, lo, hi),
        ).fetchall()
        for row in rows:
            if rng.random() >= 0.65:
                continue
            method = row["preferred_confirmation_method"] or "text_message"
            conn.execute(
                "INSERT INTO appointment_confirmations(appointment_id, date_confirmed, communication_method, "
                "communication_method_description, communication_outcome, comments, created_at, updated_at) "
                "VALUES (?, ?, ?, 'Automated reminder', 'confirmed', '', ?, ?)",
                (row["id"], _z(now), method, _z(now), _z(now)),
            )
            self._status(
                conn, practice, row["id"], "P", now, {"is_confirmed": 1, "patient_contacted": 1}
            )
            self.log(conn, practice, "appointment", row["id"], "confirmed", now)

    def new_patient(
        self, conn: sqlite3.Connection, rng: random.Random, practice: Practice, now: datetime
    ) -> str:
        """Register a new patient, insured like a random existing patient of the practice."""
        internal = int(
            conn.execute("SELECT COALESCE(MAX(internal_id), 0) + 1 FROM patients").fetchone()[0]
        )
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        gender = "F" if rng.random() < 0.51 else "M"
        first = rng.choice(FIRST_NAMES[gender])
        last = rng.choice(LAST_NAMES)
        dob = now.date() - timedelta(days=rng.randrange(365, 85 * 365))
        at = _z(now)
        data = {
            "addresses": [],
            "phones": [],
            "responsible_party": {"relationship": "self"},
            "language_code": "eng",
        }
        conn.execute(
            "INSERT INTO patients(id, internal_id, practice_id, chart_number, account_number, first_name, "
            "last_name, middle_initial, dob, gender_code, email, phone_digits, status, data_json, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, '', ?, 'A', ?, ?, ?)",
            (
                guid,
                internal,
                practice.id,
                f"{practice.code[:2]}{internal:06d}",
                f"A{practice.id}{internal:07d}",
                first,
                last,
                dob.isoformat(),
                gender,
                f"555{rng.randrange(10**6, 10**7)}",
                orjson.dumps(data).decode(),
                at,
                at,
            ),
        )
        crosswalk.link(conn, "Patient", practice.id, guid)
        template = conn.execute(
            "SELECT * FROM insurance_policies WHERE policy_priority = 1 AND patient_id IN "
            "(SELECT id FROM patients WHERE practice_id = ?) ORDER BY id LIMIT 1 OFFSET ?",
            (practice.id, rng.randrange(max(practice.patients // 2, 1))),
        ).fetchone()
        if template is not None and rng.random() < 0.9:
            profile_id = billing.next_row_id(conn, "insurance_profiles")
            conn.execute(
                "INSERT INTO insurance_profiles(id, patient_id, name, is_default, created_at, updated_at) VALUES (?, ?, 'Primary', 1, ?, ?)",
                (profile_id, guid, at, at),
            )
            policy = dict(template)
            policy.update(
                id=billing.next_row_id(conn, "insurance_policies"),
                profile_id=profile_id,
                patient_id=guid,
                member_number=f"{str(template['member_number'])[:3]}{rng.randrange(10**7, 10**8)}",
                effective_from=now.date().replace(day=1).isoformat(),
                effective_to=None,
                insured_json=orjson.dumps(
                    {
                        "first_name": first,
                        "last_name": last,
                        "middle_initial": "",
                        "date_of_birth": dob.isoformat(),
                        "gender": gender,
                        "relation_to_patient": "self",
                        "addresses": [],
                        "phones": [],
                    }
                ).decode(),
                created_at=at,
                updated_at=at,
            )
            names = ", ".join(policy)
            conn.execute(
                f"INSERT INTO insurance_policies({names}) VALUES ({', '.join('?' for _ in policy)})",
                tuple(policy.values()),
            )
        practice.patients += 1
        practice.last_patient = max(practice.last_patient or internal, internal)
        practice.first_patient = practice.first_patient or internal
        self.log(conn, practice, "patient", guid, "created", now)
        return guid

    # --- the back office -----------------------------------------------------------------------

    def back_office(
        self,
        conn: sqlite3.Connection,
        rng: random.Random,
        practice: Practice,
        today: date,
        now: datetime,
    ) -> None:
        at = _z(now)
        # Providers sign yesterday's and today's notes.
        for row in conn.execute(
            "SELECT id, provider_id FROM encounters WHERE practice_id = ? AND status = 'open' AND end_time IS NOT NULL "
            "AND end_time <= ? ORDER BY id",
            (practice.id, _z(now - timedelta(hours=1))),
        ).fetchall():
            if rng.random() < 0.8:
                conn.execute(
                    "UPDATE encounters SET status = 'signed', signed_at = ?, signed_by = ?, updated_at = ? WHERE id = ?",
                    (at, row["provider_id"], at, row["id"]),
                )
                self.log(conn, practice, "encounter", row["id"], "signed", now)
        # Claims for signed visits with unbilled insured charges.
        for row in conn.execute(
            "SELECT DISTINCT e.id, e.patient_id FROM transactions t JOIN encounters e "
            "ON e.id = t.encounter_id WHERE t.practice_id = ? AND t.billed = 0 "
            "AND t.transaction_type = 'charge' AND t.insurance_profile_id IS NOT NULL "
            "AND e.status = 'signed' ORDER BY e.id",
            (practice.id,),
        ).fetchall():
            charges = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM transactions WHERE encounter_id = ? AND transaction_type = 'charge' AND billed = 0 ORDER BY id",
                    (row["id"],),
                )
            ]
            try:
                claim_id = billing.create_claim(
                    conn,
                    practice_id=practice.id,
                    practice_code=practice.code,
                    patient_id=row["patient_id"],
                    charge_ids=charges,
                    attachments=[],
                    today=today,
                    at=at,
                )
            except billing.ClaimError:
                self.counts["claim.scrub_failed"] += 1
                continue
            self.log(conn, practice, "claim", claim_id, "submitted", now)
        # The clearinghouse and the payers.
        for claim in conn.execute(
            "SELECT id, status, payer_id, submitted_at, updated_at FROM claims WHERE practice_id = ? AND status IN "
            "('submitted', 'rejected', 'accepted', 'pending', 'denied') AND updated_at < ? ORDER BY id",
            (practice.id, _z(now - timedelta(hours=12))),
        ).fetchall():
            self.advance_claim(conn, rng, practice, claim, today, now)
        # Statements on each patient's cycle day, then some patients pay.
        for row in conn.execute(
            "SELECT p.id FROM patients p WHERE p.practice_id = ? AND (p.internal_id % 28) + 1 = ? AND EXISTS "
            "(SELECT 1 FROM transactions t WHERE t.patient_id = p.id AND t.transaction_type = 'charge' "
            "AND t.balance_type = 'patient' AND t.balance_cents > 0) ORDER BY p.internal_id",
            (practice.id, today.day),
        ).fetchall():
            statement = statements.issue(
                conn, practice_id=practice.id, patient_id=row["id"], on=today, at=at
            )
            if statement is not None:
                self.log(conn, practice, "statement", statement, "created", now)
        for row in conn.execute(
            "SELECT id, patient_id, balance_cents FROM statements WHERE practice_id = ? AND status = 'sent' ORDER BY id",
            (practice.id,),
        ).fetchall():
            if rng.random() < 0.06:
                self.patient_payment(conn, practice, row, today, now)
        self.coverage(conn, rng, practice, today, now)

    def advance_claim(
        self,
        conn: sqlite3.Connection,
        rng: random.Random,
        practice: Practice,
        claim: sqlite3.Row,
        today: date,
        now: datetime,
    ) -> None:
        at = _z(now)
        status = claim["status"]
        if status == "submitted":
            if rng.random() < REJECT_RATE:
                billing.record_status(
                    conn,
                    claim["id"],
                    "rejected",
                    at,
                    "Rejected by the clearinghouse: invalid subscriber id",
                )
                action = "rejected"
            else:
                billing.record_status(conn, claim["id"], "accepted", at, "Accepted by the payer")
                conn.execute(
                    "UPDATE claims SET payer_control_number = ? WHERE id = ?",
                    (f"{claim['payer_id']}{claim['id']:011d}", claim["id"]),
                )
                action = "accepted"
        elif status == "rejected":
            for step, note in (
                ("draft", "Corrected"),
                ("scrubbed", "Passed the scrubber"),
                ("submitted", "Resubmitted"),
            ):
                billing.record_status(conn, claim["id"], step, at, note)
            action = "resubmitted"
        elif status == "accepted":
            billing.record_status(conn, claim["id"], "pending", at, "In adjudication")
            action = "pending"
        elif status == "pending":
            payer = codes.PAYER_BY_ID.get(int(claim["payer_id"]))
            lag = payer.lag_days if payer else 14
            submitted = _instant(claim["submitted_at"]).date()
            if (today - submitted).days < lag + (int(claim["id"]) % 7) - 3:
                return
            action = billing.adjudicate(conn, rng, int(claim["id"]), at=at, paid_on=today)
            self.counts[f"claim.final.{action}"] += 1
            era = conn.execute(
                "SELECT payment_id FROM remittances WHERE claim_id = ? ORDER BY id DESC LIMIT 1",
                (claim["id"],),
            ).fetchone()
            if era is not None:
                self.log(conn, practice, "payment", era[0], "posted", now)
        elif status == "denied":
            # The billing team reviews a denial once, ten days after it arrives.
            age = now - _instant(claim["updated_at"])
            if not timedelta(days=10) <= age < timedelta(days=11) or rng.random() >= APPEAL_RATE:
                return
            billing.record_status(conn, claim["id"], "appealed", at, "Appeal sent")
            action = "appealed"
        else:
            return
        self.log(conn, practice, "claim", claim["id"], action, now)

    def patient_payment(
        self,
        conn: sqlite3.Connection,
        practice: Practice,
        statement: sqlite3.Row,
        today: date,
        now: datetime,
    ) -> None:
        at = _z(now)
        payment_id = billing.next_row_id(conn, "payments")
        conn.execute(
            billing.SQL_PAYMENT,
            (
                payment_id,
                practice.id,
                "patient",
                None,
                statement["patient_id"],
                f"WEB{payment_id:08d}",
                "card",
                today.isoformat(),
                statement["balance_cents"],
                at,
                at,
            ),
        )
        tx = billing.next_row_id(conn, "transactions")
        for n, charge in enumerate(
            conn.execute(
                "SELECT * FROM transactions WHERE patient_id = ? AND transaction_type = 'charge' AND balance_type = 'patient' AND balance_cents > 0 ORDER BY id",
                (statement["patient_id"],),
            ).fetchall()
        ):
            conn.execute(
                SQL_TRANSACTION,
                (
                    tx + n,
                    practice.id,
                    charge["patient_id"],
                    "patient_payment",
                    "posted",
                    "patient",
                    -int(charge["balance_cents"]),
                    0,
                    today.isoformat(),
                    charge["service_date"],
                    charge["location_id"],
                    charge["provider_id"],
                    charge["provider_id"],
                    None,
                    "Patient payment",
                    None,
                    "[]",
                    charge["encounter_id"],
                    charge["appointment_id"],
                    charge["id"],
                    None,
                    1,
                    at,
                    at,
                ),
            )
            conn.execute(
                "UPDATE transactions SET balance_cents = 0, transaction_status = 'closed', updated_at = ? WHERE id = ?",
                (at, charge["id"]),
            )
        conn.execute(
            "UPDATE statements SET status = 'paid', updated_at = ? WHERE id = ?",
            (at, statement["id"]),
        )
        self.log(conn, practice, "payment", payment_id, "posted", now)
        self.log(conn, practice, "statement", statement["id"], "paid", now)

    def coverage(
        self,
        conn: sqlite3.Connection,
        rng: random.Random,
        practice: Practice,
        today: date,
        now: datetime,
    ) -> None:
        """Coverage ends at month boundaries: announced during the month, effective after it."""
        at = _z(now)
        for row in conn.execute(
            "SELECT i.id, i.patient_id FROM insurance_policies i JOIN patients p ON p.id = i.patient_id "
            "WHERE p.practice_id = ? AND i.effective_to = ? ORDER BY i.id",
            (practice.id, (today - timedelta(days=1)).isoformat()),
        ).fetchall():
            conn.execute("UPDATE patients SET updated_at = ? WHERE id = ?", (at, row["patient_id"]))
            self.log(conn, practice, "eligibility", row["patient_id"], "changed", now)
        expected = practice.patients * 0.0004
        for _ in range(int(expected) + (rng.random() < expected - int(expected))):
            offset = rng.randrange(max(practice.patients, 1))
            policy = conn.execute(
                "SELECT i.id FROM insurance_policies i JOIN patients p ON p.id = i.patient_id WHERE p.practice_id = ? "
                "AND i.policy_priority = 1 AND i.effective_to IS NULL ORDER BY i.id LIMIT 1 OFFSET ?",
                (practice.id, offset // 2),
            ).fetchone()
            if policy is None:
                continue
            month_end = (today.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(
                days=1
            )
            conn.execute(
                "UPDATE insurance_policies SET effective_to = ?, updated_at = ? WHERE id = ?",
                (month_end.isoformat(), at, policy[0]),
            )
            self.log(conn, practice, "insurance_policy", policy[0], "terminated", now)


def plan_visit(
    rng: random.Random, kind: str, age: int, problems: list[str], reason_code: str | None
) -> tuple[list[tuple[str, int]], list[str]]:
    """What a visit of this kind bills and diagnoses, given the patient's active problems."""
    child = age < 18
    lines: list[tuple[str, int]] = []
    dx: list[str] = []
    if kind == "preventive":
        band = next(b for b in reversed(codes.PREVENTIVE_BY_AGE) if age >= b[0])
        lines.append((band[2], 1))
        dx.append("Z00.129" if child else "Z00.00")
    elif kind == "nurse":
        lines.extend((("90686", 1), ("90471", 1)))
        dx.append("Z23")
    elif kind == "sick":
        acute = codes.ACUTE_CHILD if child else codes.ACUTE_ADULT
        problem = acute[min(int(rng.expovariate(0.35)), len(acute) - 1)]
        dx.append(problem)
        lines.append(("99213" if rng.random() < 0.65 else "99214", 1))
        if problem.startswith("J02"):
            lines.append(("87880", 1))
    else:
        code = (
            reason_code
            if reason_code in codes.PROCEDURE_BY_CODE
            else ("99203" if kind == "new" else "99213")
        )
        lines.append((code, 1))
        dx.extend(problems[:3] or ["Z76.0"])
        if any(c.startswith("E11") for c in dx) and rng.random() < 0.4:
            lines.extend((("36415", 1), ("83036", 1)))
    return lines, dx


FIRST_NAMES = {
    "F": (
        "Avery",
        "Harper",
        "Quinn",
        "Rowan",
        "Sage",
        "Emery",
        "Hollis",
        "Marlow",
        "Wren",
        "Tatum",
    ),
    "M": (
        "Ellis",
        "Reid",
        "Callum",
        "Brooks",
        "Dane",
        "Emmett",
        "Hayes",
        "Rhett",
        "Soren",
        "Tobin",
    ),
}
LAST_NAMES = (
    "Ashford",
    "Brantley",
    "Calloway",
    "Dunmore",
    "Ellery",
    "Fairbanks",
    "Galloway",
    "Hartwell",
    "Iverson",
    "Kingsley",
    "Lockridge",
    "Merriweather",
)


def start_realtime(tenant: Tenant, interval: float = 5.0) -> threading.Event:
    """Run the practice in wall-clock time on a daemon thread; set the returned event to stop."""
    stop = threading.Event()
    activity = Activity(tenant)

    def loop() -> None:
        while not stop.wait(interval):
            activity.run_until(tenant.now())

    threading.Thread(target=loop, name="sandbox-activity", daemon=True).start()
    return stop
