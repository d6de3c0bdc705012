"""The activity clock: the practice works as the tenant clock moves, deterministically."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.support.sandbox import (
    ANCHOR,
    START,
    LiveTenant,
    fhir_base,
    portal_login,
    portal_persona,
    smart_token,
    start_live,
)

from carecloud_sandbox import billing
from carecloud_sandbox.activity import Activity, ClockError
from carecloud_sandbox.clock import ManualClock, SystemClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.tenant import Tenant

CONFIG = SandboxConfig(seed=7, patients=150, practices=2, anchor=ANCHOR)
DAYS = 4


def _run(config: SandboxConfig, days: int = DAYS) -> tuple[Tenant, dict[str, int]]:
    tenant = Tenant.open(config, clock=ManualClock(START))
    happened = Activity(tenant).advance(days * 24 * 60)
    return tenant, happened


@pytest.fixture(scope="module")
def worked() -> Iterator[tuple[Tenant, dict[str, int]]]:
    tenant, happened = _run(CONFIG)
    yield tenant, happened
    tenant.db.close()


def _dump(tenant: Tenant, table: str, order: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in tenant.db.all(f"SELECT * FROM {table} ORDER BY {order}")]


def test_same_seed_and_clock_give_the_same_practice(
    worked: tuple[Tenant, dict[str, int]],
) -> None:
    first, happened = worked
    second, again = _run(CONFIG)
    try:
        assert happened == again
        for table, order in (
            ("change_log", "seq"),
            ("appointments", "internal_id"),
            ("encounters", "id"),
            ("transactions", "id"),
            ("claims", "id"),
            ("claim_status_history", "id"),
            ("remittances", "id"),
            ("adjustments", "id"),
            ("statements", "id"),
            ("patients", "internal_id"),
        ):
            assert _dump(first, table, order) == _dump(second, table, order), table
    finally:
        second.db.close()


def test_another_seed_gives_another_practice(worked: tuple[Tenant, dict[str, int]]) -> None:
    first, _ = worked
    other, _ = _run(SandboxConfig(**{**CONFIG.__dict__, "seed": 8}), days=1)
    try:
        mine = _dump(first, "change_log", "seq")[:50]
        theirs = _dump(other, "change_log", "seq")[:50]
        assert mine != theirs
    finally:
        other.db.close()


def test_the_practice_works_every_kind_of_day(worked: tuple[Tenant, dict[str, int]]) -> None:
    _, happened = worked
    for kind in (
        "appointment.created",
        "appointment.checked_in",
        "appointment.checked_out",
        "appointment.confirmed",
        "encounter.created",
        "encounter.signed",
        "charge.created",
        "claim.submitted",
        "claim.accepted",
        "claim.pending",
        "payment.posted",
        "statement.created",
    ):
        assert happened.get(kind, 0) > 0, kind


def test_the_change_log_is_the_ground_truth_of_the_counts(
    worked: tuple[Tenant, dict[str, int]],
) -> None:
    tenant, happened = worked
    logged = Counter(
        f"{r['entity']}.{r['action']}"
        for r in tenant.db.all("SELECT entity, action FROM change_log WHERE source = 'clock'")
    )
    assert {k: v for k, v in happened.items() if not k.startswith("claim.final")} == {
        k: v for k, v in logged.items() if k in happened
    }
    assert set(logged) <= set(happened)


def test_every_checked_out_visit_has_an_encounter_and_charges(
    worked: tuple[Tenant, dict[str, int]],
) -> None:
    tenant, _ = worked
    rows = tenant.db.all(
        "SELECT a.id, a.encounter_id, a.departed_at FROM change_log c JOIN appointments a "
        "ON a.id = c.entity_id WHERE c.source = 'clock' AND c.action = 'checked_out'"
    )
    assert rows
    for row in rows:
        assert row["departed_at"] is not None
        encounter = tenant.db.one("SELECT * FROM encounters WHERE id = ?", (row["encounter_id"],))
        assert encounter is not None
        assert encounter["appointment_id"] == row["id"]
        charges = tenant.db.scalar(
            "SELECT COUNT(*) FROM transactions WHERE encounter_id = ? AND transaction_type = "
            "'charge'",
            (row["encounter_id"],),
        )
        assert charges >= 1


def test_updated_at_advances_with_each_change(worked: tuple[Tenant, dict[str, int]]) -> None:
    tenant, _ = worked
    now = tenant.now_db()
    for entity, table in (("appointment", "appointments"), ("claim", "claims")):
        rows = tenant.db.all(
            f"SELECT t.updated_at, MAX(c.at) AS last FROM change_log c JOIN {table} t "
            f"ON CAST(t.id AS TEXT) = c.entity_id WHERE c.entity = ? AND c.source = 'clock' "
            "GROUP BY t.id",
            (entity,),
        )
        assert rows
        for row in rows:
            assert row["updated_at"] >= row["last"]
            assert row["updated_at"] <= now


def test_claims_follow_the_lifecycle_and_eras_balance(
    worked: tuple[Tenant, dict[str, int]],
) -> None:
    tenant, _ = worked
    history: dict[int, list[str]] = {}
    for row in tenant.db.all("SELECT claim_id, status FROM claim_status_history ORDER BY id"):
        history.setdefault(int(row["claim_id"]), []).append(row["status"])
    assert history
    for steps in history.values():
        assert steps[0] == "draft"
        for before, after in itertools.pairwise(steps):
            assert after in billing.TRANSITIONS[before], steps
    for claim in tenant.db.all("SELECT id, status FROM claims"):
        assert history[int(claim["id"])][-1] == claim["status"]
    unbalanced = tenant.db.scalar(
        "SELECT COUNT(*) FROM remittance_lines l WHERE billed_cents != paid_cents + "
        "(SELECT COALESCE(SUM(amount_cents), 0) FROM adjustments a WHERE a.remittance_line_id = l.id)"
    )
    assert unbalanced == 0
    categories = {
        r[0] for r in tenant.db.all("SELECT DISTINCT category_code FROM claim_status_history")
    }
    assert {"A1", "A2", "P1", "F1"} <= categories


def test_charges_balance_after_payments(worked: tuple[Tenant, dict[str, int]]) -> None:
    tenant, _ = worked
    bad = tenant.db.scalar(
        "SELECT COUNT(*) FROM transactions c WHERE c.transaction_type = 'charge' AND "
        "c.balance_cents != c.amount_cents + (SELECT COALESCE(SUM(amount_cents), 0) FROM "
        "transactions t WHERE t.charge_id = c.id AND t.transaction_type != 'charge')"
    )
    assert bad == 0


def test_a_clock_that_cannot_move_is_refused() -> None:
    tenant = Tenant.open(
        SandboxConfig(seed=1, patients=10, practices=1, anchor=ANCHOR), clock=SystemClock()
    )
    try:
        with pytest.raises(ClockError):
            Activity(tenant).advance(60)
        with pytest.raises(ValueError, match="negative"):
            Activity(tenant).advance(-1)
    finally:
        tenant.db.close()


# --- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clocked() -> Iterator[LiveTenant]:
    tenant, stop = start_live(SandboxConfig(seed=42, patients=60, practices=2, anchor=ANCHOR))
    yield tenant
    stop()


def test_advance_over_http_moves_the_clock_and_shows_on_v2(clocked: LiveTenant) -> None:
    with clocked.client() as c:
        before = c.get("/_sandbox/clock").json()
        r = c.post("/_sandbox/clock/advance", json={"minutes": 24 * 60})
        assert r.status_code == 200
        body = r.json()
        assert body["now"] > before["now"]
        assert datetime.fromisoformat(body["now"].replace("Z", "+00:00")) == START + timedelta(
            days=1
        )
        assert body["activity"]["appointment.checked_out"] > 0
        changes = c.get("/_sandbox/changes").json()
    checked_out = [ch for ch in changes if ch["action"] == "checked_out" and ch["practice_id"] == 1]
    assert checked_out
    assert {ch["source"] for ch in checked_out} == {"clock"}
    # A token issued now: the one from before the advance has expired with the day.
    with clocked.client(clocked.token(0)) as api:
        shown = api.get(f"/v2/appointments/{checked_out[0]['entity_id']}")
    assert shown.status_code == 200
    appointment = shown.json()["appointment"]
    assert appointment["appointment_status"]["name"] == "Checked Out"
    assert appointment["encounter_id"] is not None


@pytest.mark.parametrize("body", [{"minutes": -1}, {"minutes": "60"}, {"minutes": True}, {}, []])
def test_advance_rejects_bad_minutes(clocked: LiveTenant, body: Any) -> None:
    with clocked.client() as c:
        r = c.post("/_sandbox/clock/advance", json=body)
    assert r.status_code == 400
    assert "error" in r.json()


def test_clock_moves_only_forward_in_whole_ticks(clocked: LiveTenant) -> None:
    with clocked.client() as c:
        start = c.get("/_sandbox/clock").json()
        r = c.post("/_sandbox/clock/advance", json={"minutes": 7})
        assert r.status_code == 200
        after = c.get("/_sandbox/clock").json()
    assert after["now"] > start["now"]
    at = datetime.fromisoformat(after["activity_at"].replace("Z", "+00:00"))
    assert at.tzinfo is not None
    assert at.astimezone(UTC).minute % 15 == 0


def test_a_visit_the_clock_charts_shows_on_the_portal_and_the_connector(
    clocked: LiveTenant,
) -> None:
    with clocked.client() as c:
        assert c.post("/_sandbox/clock/advance", json={"minutes": 6 * 60}).status_code == 200
    row = clocked.tenant.db.one(
        "SELECT e.* FROM change_log c JOIN encounters e ON CAST(e.id AS TEXT) = c.entity_id "
        "WHERE c.source = 'clock' AND c.entity = 'encounter' AND c.action = 'created' "
        "AND e.practice_id = 1 ORDER BY c.seq DESC LIMIT 1"
    )
    assert row is not None
    with clocked.client() as portal:
        portal_login(clocked, portal, portal_persona(clocked))
        shown = portal.get(f"/portal/api/encounters/{row['id']}")
    assert shown.status_code == 200
    assert shown.json()["updatedAt"] == row["updated_at"]
    with clocked.client(smart_token(clocked)) as fhir:
        resource = fhir.get(f"{fhir_base(clocked)}/Encounter/enc-{row['id']}")
    assert resource.status_code == 200
    body = resource.json()
    assert body["meta"]["lastUpdated"].replace("+00:00", "Z") == row["updated_at"]
    patient = clocked.tenant.db.scalar(
        "SELECT fhir_id FROM fhir_ids WHERE entity = 'patients' AND entity_id = ?",
        (row["patient_id"],),
    )
    assert body["subject"]["reference"] == f"Patient/{patient}"
    assert patient != row["patient_id"]


def test_realtime_catch_up_runs_the_ticks_that_passed_without_moving_the_clock() -> None:
    clock = ManualClock(START)
    tenant = Tenant.open(
        SandboxConfig(seed=3, patients=40, practices=1, anchor=ANCHOR), clock=clock
    )
    try:
        activity = Activity(tenant)
        assert activity.run_until(tenant.now()) == {}  # the first call only sets the cursor
        clock.advance(timedelta(hours=3, minutes=10))  # wall time passes (serve --realtime)
        happened = activity.run_until(tenant.now())
        assert tenant.now() == START + timedelta(hours=3, minutes=10)
        assert tenant.db.get_meta("activity_at") == "2026-11-24T18:00:00Z"
        assert sum(happened.values()) > 0
        assert activity.run_until(tenant.now()) == {}  # nothing new until the next tick ends
    finally:
        tenant.db.close()
