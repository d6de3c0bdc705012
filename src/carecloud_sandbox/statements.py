"""Patient statements: a snapshot of what the patient owes after insurance, with aging.

Statements are not in the public API (``upstream/carecloud.md`` §6.5): a statement lists the
charges whose open balance is the patient's, ages them from the date of service, and goes to
collections once its oldest line is over 90 days old.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import orjson

from carecloud_sandbox.db import TenantDB

SQL_STATEMENT = (
    "INSERT INTO statements(id, statement_number, practice_id, patient_id, statement_date, "
    "due_date, balance_cents, aging_json, lines_json, status, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
BUCKETS = (("current", 0), ("over30", 31), ("over60", 61), ("over90", 91), ("over120", 121))


def cycle_day(internal_id: int) -> int:
    """The day of the month a patient's statements go out (spread over the month)."""
    return internal_id % 28 + 1


def issue(
    conn: sqlite3.Connection,
    *,
    practice_id: int,
    patient_id: str,
    on: date,
    at: str,
) -> int | None:
    """Issue a statement of the patient's open balance as of ``on``; None when nothing is owed.

    Earlier open statements of the patient are marked paid when the balance is gone, else kept.
    """
    charges = conn.execute(
        "SELECT id, service_date, procedure_code, amount_cents, balance_cents FROM transactions "
        "WHERE patient_id = ? AND transaction_type = 'charge' AND balance_type = 'patient' "
        "AND balance_cents > 0 AND service_date <= ? ORDER BY service_date, id",
        (patient_id, on.isoformat()),
    ).fetchall()
    if not charges:
        return None
    aging = {name: 0 for name, _ in BUCKETS}
    lines = []
    for c in charges:
        age = (on - date.fromisoformat(c["service_date"])).days
        bucket = next(name for name, low in reversed(BUCKETS) if age >= low)
        aging[bucket] += int(c["balance_cents"])
        lines.append(
            {
                "chargeId": c["id"],
                "serviceDate": c["service_date"],
                "code": c["procedure_code"],
                "amountCents": c["amount_cents"],
                "balanceCents": c["balance_cents"],
            }
        )
    oldest = (on - date.fromisoformat(charges[0]["service_date"])).days
    row = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM statements").fetchone()
    statement_id = int(row[0])
    conn.execute(
        SQL_STATEMENT,
        (
            statement_id,
            f"S{practice_id}-{statement_id:08d}",
            practice_id,
            patient_id,
            on.isoformat(),
            (on + timedelta(days=25)).isoformat(),
            sum(int(c["balance_cents"]) for c in charges),
            orjson.dumps(aging).decode(),
            orjson.dumps(lines).decode(),
            "collections" if oldest > 90 else "sent",
            at,
            at,
        ),
    )
    return statement_id


def generate_history(db: TenantDB, anchor: date) -> None:
    """The latest statement of every patient who owes something at ``anchor``."""
    patients = db.all(
        "SELECT p.id, p.internal_id, p.practice_id FROM patients p WHERE EXISTS (SELECT 1 FROM "
        "transactions t WHERE t.patient_id = p.id AND t.transaction_type = 'charge' AND "
        "t.balance_type = 'patient' AND t.balance_cents > 0) ORDER BY p.internal_id"
    )
    with db.transaction() as conn:
        for p in patients:
            day = cycle_day(int(p["internal_id"]))
            on = (
                anchor.replace(day=day)
                if day <= anchor.day
                else ((anchor.replace(day=1) - timedelta(days=1)).replace(day=day))
            )
            issue(
                conn,
                practice_id=int(p["practice_id"]),
                patient_id=str(p["id"]),
                on=on,
                at=f"{on.isoformat()}T12:00:00Z",
            )
