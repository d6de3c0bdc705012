"""Time the activity clock: generate a tenant, then advance it 30 days and report what happened.

    .venv/bin/python bench/activity.py [PATIENTS ...]      (default: 2000 20000)

For each size it prints the generation time, the time to advance 30 days, and the change log's
counts: bookings, cancellations, claims by final status, the denial rate and payments. The
baseline in the same run is the generation of the same tenant (the work of building ~a year of
history), so the ratio says how much a month of simulated activity costs against it.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, date, datetime

from carecloud_sandbox.activity import Activity
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.tenant import Tenant

DAYS = 30


def run(patients: int) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    started = time.perf_counter()
    tenant = Tenant.open(
        SandboxConfig(seed=42, patients=patients, anchor=date(2026, 11, 24)), clock=clock
    )
    generated = time.perf_counter() - started
    started = time.perf_counter()
    counts = Activity(tenant).advance(DAYS * 24 * 60)
    advanced = time.perf_counter() - started
    finals = {k.removeprefix("claim.final."): v for k, v in counts.items() if "final" in k}
    decided = sum(finals.values())
    denied = finals.get("denied", 0)
    print(f"--- {patients:,} patients, {DAYS} days ---")
    print(
        f"generate: {generated:.1f} s   advance {DAYS} days: {advanced:.1f} s   "
        f"ratio advance/generate: {advanced / generated:.2f}"
    )
    print(
        f"bookings {counts.get('appointment.created', 0)}, cancellations "
        f"{counts.get('appointment.cancelled', 0)}, reschedules "
        f"{counts.get('appointment.rescheduled', 0)}, no-shows {counts.get('appointment.no_show', 0)}, "
        f"visits {counts.get('appointment.checked_out', 0)}, new patients "
        f"{counts.get('patient.created', 0)}"
    )
    print(
        f"claims submitted {counts.get('claim.submitted', 0)}, adjudicated {decided} "
        f"{finals}, denial rate {denied / max(decided, 1):.1%}, appeals "
        f"{counts.get('claim.appealed', 0)}, rejections {counts.get('claim.rejected', 0)}"
    )
    print(
        f"payments posted {counts.get('payment.posted', 0)}, statements "
        f"{counts.get('statement.created', 0)}, eligibility changes "
        f"{counts.get('eligibility.changed', 0)}"
    )
    tenant.db.close()


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [2000, 20000]:
        run(size)
