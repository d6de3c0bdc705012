"""Nothing a generated tenant holds is stamped after the tenant clock's instant.

A tenant generated on the wall clock before its practice's 09:00 (evenings in the US are the next
day in UTC) once held bookings, postings and statements stamped hours ahead; the first v2 write
then stamped an `updated_at` before the record's `created_at`, which the driver rightly refuses.
The invariant is checked on every instant column of every table, for two clocks: the test
suite's usual 09:00 practice-local, and 20:00 practice-local (already the next day in UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.tenant import Tenant

INSTANT = "____-__-__T__:__:__Z"


def _instant_columns(tenant: Tenant) -> list[tuple[str, str]]:
    tables = [
        str(r[0])
        for r in tenant.db.all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return [
        (table, str(c[1]))
        for table in tables
        for c in tenant.db.all(f'PRAGMA table_info("{table}")')
        if str(c[1]).endswith("_at")
    ]


@pytest.mark.parametrize(
    "start",
    [datetime(2026, 11, 24, 15, 0, tzinfo=UTC), datetime(2026, 11, 25, 2, 0, tzinfo=UTC)],
    ids=["09:00-chicago", "20:00-chicago-next-utc-day"],
)
def test_no_instant_lies_after_the_clock_and_no_record_changes_before_it_exists(
    start: datetime,
) -> None:
    tenant = Tenant.open(SandboxConfig(patients=60, seed=7, practices=2), clock=ManualClock(start))
    now = tenant.now_db()
    columns = _instant_columns(tenant)
    assert ("appointments", "created_at") in columns
    ahead = {
        f"{table}.{column}": n
        for table, column in columns
        if (
            n := tenant.db.scalar(
                f'SELECT COUNT(*) FROM "{table}" WHERE "{column}" > ? AND "{column}" LIKE ?',
                (now, INSTANT),
            )
        )
    }
    assert ahead == {}
    names = {table for table, _ in columns}
    backwards = {
        table: n
        for table in names
        if {(table, "created_at"), (table, "updated_at")} <= set(columns)
        and (
            n := tenant.db.scalar(
                f'SELECT COUNT(*) FROM "{table}" WHERE updated_at < created_at '
                "AND updated_at LIKE ? AND created_at LIKE ?",
                (INSTANT, INSTANT),
            )
        )
    }
    assert backwards == {}
    booked = tenant.db.scalar("SELECT COUNT(*) FROM appointments WHERE start_time > ?", (now,))
    assert booked > 0  # the window ahead is still booked: only the stamps moved
