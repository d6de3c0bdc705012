"""The sync engine against an emulated CareCloud: a full sync equals the ground truth, an
incremental one after the practice worked makes exactly the events the sandbox's change log
announces, a crash between a page and its checkpoint (or right after it) loses and repeats
nothing, a rerun with no upstream change makes no event, and chaos (5xx, 429, resets, a killed
portal session) still converges to the truth.

Ids are spelled out independently of the mappers: a carebridge id is the hash of
``<tenant>:<kind>:<upstream key>`` (``Id.new``), the key being the chart number, the v2 GUID,
the claim or statement number, or the row id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
import typer
from sqlalchemy import func, select
from tests.support.api import ANCHOR, SANDBOX, START, Counting, FakeTime, Live, running
from tests.support.sync import (
    PRACTICE,
    TENANT,
    control,
    id_key,
    store_ids,
    stored_events,
    truth_ids,
    window,
    zulu,
)
from typer.testing import CliRunner

from carebridge.api.app import create_app
from carebridge.api.routes import sync as sync_routes
from carebridge.cli import sync as cli_sync
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.domain import (
    AppointmentId,
    ChargeId,
    ClaimId,
    EncounterId,
    PatientId,
    PaymentId,
    RemittanceId,
    StatementId,
)
from carebridge.store.schema import events as event_table
from carebridge.store.sync_state import SqlSyncStore
from carebridge.store.vault import KeyRing
from carebridge.sync.engine import (
    DEFAULT_STREAMS,
    Phase,
    SyncReport,
    UnknownStream,
    high_water,
    sync,
)
from carebridge.wiring.api import Deployment, open_deployment
from carebridge.wiring.carecloud import from_sandbox
from carecloud_sandbox.app import build_app
from carecloud_sandbox.clock import ManualClock
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.control import credentials
from carecloud_sandbox.tenant import Tenant

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db")) as running_live:
        yield running_live


class Crash(Exception):
    """The injected fault."""


# --- helpers ---------------------------------------------------------------------------------


async def _sync(live: Live, **kwargs: Any) -> SyncReport:
    upstream = await live.deployment.upstreams.of(TENANT)
    return await sync(
        SqlSyncStore(live.deployment.engine), upstream, TENANT, clock=live.clock.now, **kwargs
    )


async def _advance(live: Live, hours: int) -> None:
    await control(live, "POST", "/_sandbox/clock/advance", {"minutes": hours * 60})


async def _changes(live: Live, after: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page: list[dict[str, Any]] = await control(live, "GET", f"/_sandbox/changes?after={after}")
        if not page:
            return out
        out.extend(page)
        after = page[-1]["seq"]


async def assert_store_equals_truth(live: Live) -> None:
    truth, stored = truth_ids(live), await store_ids(live)
    for kind, expected in truth.items():
        assert expected, kind
        assert stored[kind] == expected, (
            kind,
            len(stored[kind] - expected),
            len(expected - stored[kind]),
        )


async def _last_seq(live: Live) -> int:
    async with live.deployment.engine.connect() as conn:
        found = await conn.scalar(
            select(func.max(event_table.c.seq)).where(event_table.c.tenant_id == TENANT)
        )
    return int(found or 0)


def assert_no_duplicate_events(events: list[dict[str, Any]]) -> None:
    seen = Counter(
        (e["kind"], e["entity_id"], e["type"], orjson.dumps(e["diff"], option=orjson.OPT_SORT_KEYS))
        for e in events
    )
    twice = [key[:3] for key, n in seen.items() if n > 1]
    assert not twice, twice[:5]


EVENTFUL = frozenset({"appointment", "encounter", "claim", "payment", "remittance", "patient"})
"""The kinds whose changes ``domain.events.classify`` turns into events."""


def _named(live: Live, changes: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """The (kind, carebridge id) of each change-log entry, with its actions; an ERA's posting
    names the ERA's remittances too, and a patient's eligibility change names the patient."""
    charts = {
        r["id"]: r["chart_number"].strip()
        for r in live.truth(
            "SELECT id, chart_number FROM patients WHERE practice_id = ?", (PRACTICE,)
        )
    }
    claims = {
        str(r["id"]): r["claim_number"]
        for r in live.truth(
            "SELECT id, claim_number FROM claims WHERE practice_id = ?", (PRACTICE,)
        )
    }
    statements = {
        str(r["id"]): r["statement_number"]
        for r in live.truth(
            "SELECT id, statement_number FROM statements WHERE practice_id = ?", (PRACTICE,)
        )
    }
    named: dict[tuple[str, str], list[str]] = {}

    def add(kind: str, entity_id: str, action: str) -> None:
        named.setdefault((kind, entity_id), []).append(action)

    for c in changes:
        entity, key, action = c["entity"], str(c["entity_id"]), c["action"]
        if entity == "appointment":
            add("appointment", AppointmentId.new(id_key("appointment", key.lower())), action)
        elif entity == "encounter":
            add("encounter", EncounterId.new(id_key("encounter", key)), action)
        elif entity == "charge":
            add("charge", ChargeId.new(id_key("transaction", key)), action)
        elif entity == "claim":
            add("claim", ClaimId.new(id_key("claim", claims[key])), action)
        elif entity == "statement":
            add("statement", StatementId.new(id_key("statement", statements[key])), action)
        elif entity == "payment":
            add("payment", PaymentId.new(id_key("payment", key)), action)
            for r in live.truth(
                "SELECT c.claim_number FROM remittances r JOIN claims c ON c.id = r.claim_id "
                "WHERE r.payment_id = ?",
                (int(key),),
            ):
                add(
                    "remittance",
                    RemittanceId.new(id_key("remittance", f"{key}/{r['claim_number']}")),
                    action,
                )
        elif entity in ("patient", "eligibility"):
            add("patient", PatientId.new(id_key("patient", charts[key])), action)
    return named


# --- tests -----------------------------------------------------------------------------------


async def test_a_full_sync_equals_the_truth_and_a_rerun_makes_no_event(live: Live) -> None:
    report = await _sync(live)
    assert report.ok, report.as_json()
    await assert_store_equals_truth(live)
    events = await stored_events(live)
    assert_no_duplicate_events(events)
    created = Counter(e["type"] for e in events if e["type"].endswith(".created"))
    truth = truth_ids(live)
    assert created["patient.created"] == len(truth["patient"])
    assert created["encounter.created"] == len(truth["encounter"])
    assert report.streams["patients"].changed == len(truth["patient"])

    before = await _last_seq(live)
    again = await _sync(live)
    assert again.ok
    assert again.changed == 0
    assert await _last_seq(live) == before
    # the incremental streams re-read their boundary (updated_since = high water - lag)
    assert again.streams["claims"].read >= 1
    assert again.streams["claims"].read < report.streams["claims"].read
    assert again.streams["patients"].changed == 0


def _content(value: Any) -> Any:
    """A record's JSON without provenance, at every depth."""
    if isinstance(value, dict):
        return {k: _content(v) for k, v in value.items() if k != "sources"}
    if isinstance(value, list):
        return [_content(v) for v in value]
    return value


def _provenance_only(event: dict[str, Any]) -> bool:
    """An event whose diff is only nested provenance (``vitals[].sources``): see
    ``test_a_later_rerun_with_no_upstream_change_makes_no_event``."""
    return all(_content(old) == _content(new) for old, new in event["diff"].values())


def assert_events_match_the_change_log(
    live: Live, changes: list[dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    """Every entity the change log names (of a kind that has events) has an event, and every
    event names an entity of the change log (provenance-only diffs aside)."""
    named = _named(live, changes)
    lo, hi = window(live)
    in_window = truth_ids(live)["appointment"]
    evented = {(e["kind"], e["entity_id"]) for e in events}
    missing = [
        (kind, entity_id, actions)
        for (kind, entity_id), actions in named.items()
        if kind in EVENTFUL
        and (kind, entity_id) not in evented
        and (kind != "appointment" or entity_id in in_window)
    ]
    assert not missing, missing
    unnamed = [
        (e["type"], e["entity_id"], sorted(e["diff"]))
        for e in events
        if (e["kind"], e["entity_id"]) not in named and not _provenance_only(e)
    ]
    assert not unnamed, unnamed
    assert lo < hi


async def _practice_works(live: Live, hours: int) -> tuple[list[dict[str, Any]], int]:
    """Advance the sandbox ``hours`` (the practice works); returns practice 1's change-log
    entries of that time and the last event seq before it."""
    log_start = max([0, *(c["seq"] for c in await _changes(live, 0))])
    seq = await _last_seq(live)
    await _advance(live, hours)
    changes = [c for c in await _changes(live, log_start) if c["practice_id"] == PRACTICE]
    assert changes
    return changes, seq


async def test_an_incremental_sync_after_a_working_practice_matches_the_change_log(
    live: Live,
) -> None:
    assert (await _sync(live)).ok
    store = SqlSyncStore(live.deployment.engine)
    high = (await store.cursor(TENANT, "claims") or {})["high_water"]
    types: Counter[str] = Counter()
    for hours in (48, 5, 9, 31):  # each sync resumes from the last one's cursors
        changes, seq = await _practice_works(live, hours)
        report = await _sync(live)
        assert report.ok, report.as_json()
        await assert_store_equals_truth(live)
        new = await stored_events(live, seq)
        assert_no_duplicate_events(new)
        assert_events_match_the_change_log(live, changes, new)
        # incremental: only what changed was read
        assert report.streams["claims"].read < len(truth_ids(live)["claim"])
        types.update(e["type"] for e in new)
    assert_no_duplicate_events(await stored_events(live))
    assert (await store.cursor(TENANT, "claims") or {})["high_water"] > high
    assert min(types["appointment.created"], types["claim.submitted"], types["payment.posted"])


def test_the_high_water_mark_is_the_newest_record_but_never_past_the_pass_start() -> None:
    start = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    earlier, later = start - timedelta(hours=1), start + timedelta(hours=3)
    assert high_water(None, earlier, start) == earlier  # an upstream clock behind ours
    assert high_water(earlier - timedelta(days=1), earlier, start) == earlier
    assert high_water(None, later, start) == start  # records stamped in the future
    assert high_water(earlier, None, start) == start  # nothing dated was read
    assert high_water(None, None, start) == start


async def test_a_later_rerun_with_no_upstream_change_makes_no_event(live: Live) -> None:
    """Re-reading an encounter a minute later changes only the ``fetched_at`` of its vitals'
    provenance, which is not content at any depth."""
    assert (await _sync(live)).ok
    seq = await _last_seq(live)
    live.clock.advance(timedelta(minutes=1))  # less than a sandbox tick: the practice is idle
    report = await _sync(live, streams=["encounters", "patients", "claims", "appointments"])
    assert report.ok
    assert await stored_events(live, seq) == []


@pytest.mark.parametrize("phase", ["before_commit", "after_commit"])
@pytest.mark.parametrize("stream", ["appointments", "encounters", "claims"])
async def test_a_crash_at_a_checkpoint_loses_and_repeats_nothing(
    live: Live, stream: str, phase: Phase
) -> None:
    assert (await _sync(live)).ok
    changes, seq = await _practice_works(live, 48)
    store = SqlSyncStore(live.deployment.engine)
    pages: list[tuple[str, int, str]] = []

    def crash(name: str, page: int, at: Phase) -> None:
        pages.append((name, page, at))
        if (name, page, at) == (stream, 2, phase):
            raise Crash

    with pytest.raises(Crash):
        await _sync(live, on_page=crash, page_size=3)
    cursor = await store.cursor(TENANT, stream)
    assert cursor is not None
    assert "pass" in cursor, cursor  # the pass is in progress
    if stream == "encounters":
        assert cursor["pass"]["after"]  # the patients done are not read again

    report = await _sync(live, page_size=3)
    assert report.ok, report.as_json()
    assert "pass" not in (await store.cursor(TENANT, stream) or {})
    await assert_store_equals_truth(live)
    new = await stored_events(live, seq)
    assert_no_duplicate_events(new)
    assert_events_match_the_change_log(live, changes, new)


async def test_chaos_converges_to_the_truth(live: Live) -> None:
    assert (await _sync(live)).ok
    upstream = await live.deployment.upstreams.of(TENANT)
    renewals = upstream.health()["brokers"]["portal"]["renewals"]
    changes, seq = await _practice_works(live, 24)
    await control(live, "POST", "/_sandbox/sessions/kill", {})
    live.clock.advance(timedelta(seconds=31))  # a fresh TOTP step for the re-login
    many = 1_000_000
    rules = [
        # more failures in a row than the connector retries: the engine retries the stream
        {"pattern": "/portal/api/claims", "error_rate": 1.0, "status": 500, "count": 12},
        {"pattern": "/portal/api/*", "error_rate": 0.15, "status": 503, "count": many},
        {"pattern": "/v2/*", "error_rate": 0.1, "status": 502, "count": many},
        {"pattern": "/v2/*", "rate_429": 0.1, "retry_after": 1, "count": many},
        {"pattern": "/portal/api/*", "drop_rate": 0.05, "count": many},
    ]
    for rule in rules:
        await control(live, "POST", "/_sandbox/faults", rule)
    reports = []
    for _ in range(4):
        reports.append(await _sync(live))
        if reports[-1].ok:
            break
    hit = sum(many - r["count"] for r in await control(live, "GET", "/_sandbox/faults"))
    await control(live, "DELETE", "/_sandbox/faults")
    assert reports[-1].ok, [r.as_json() for r in reports]
    assert max(r.streams["claims"].attempts for r in reports) >= 2
    assert hit > 100
    assert upstream.health()["brokers"]["portal"]["renewals"] > renewals
    await assert_store_equals_truth(live)
    new = await stored_events(live, seq)
    assert_no_duplicate_events(new)
    assert_events_match_the_change_log(live, changes, new)


async def test_labs_immunizations_and_documents_run_only_when_named(live: Live) -> None:
    """A sync naming no streams leaves the three per-patient chart lists alone (each costs an
    export or a list per patient); naming them stores every record the sandbox holds for the
    practice's patients, and a rerun changes nothing."""
    everything = await _sync(live)
    assert everything.ok, everything.as_json()
    assert {"labs", "immunizations", "documents"}.isdisjoint(everything.streams)
    named = ["patients", "labs", "immunizations", "documents"]
    report = await _sync(live, streams=named)
    assert report.ok, report.as_json()
    assert list(report.streams) == named
    store = SqlSyncStore(live.deployment.engine)
    of_practice = "SELECT COUNT(*) AS n FROM {} t JOIN patients p ON p.id = t.patient_id "
    of_practice += "WHERE p.practice_id = ?"
    for stream, kind, table in (
        ("labs", "lab", "lab_results"),
        ("immunizations", "immunization", "immunizations"),
    ):
        (row,) = live.truth(of_practice.format(table), (PRACTICE,))
        assert row["n"] > 0
        assert len(await store.ids(TENANT, kind)) == row["n"], stream
        assert report.streams[stream].changed == row["n"]
    assert len(await store.ids(TENANT, "document")) == report.streams["documents"].changed > 0
    again = await _sync(live, streams=named)
    assert again.ok
    assert again.changed == 0


async def test_unknown_streams_are_refused(live: Live) -> None:
    with pytest.raises(UnknownStream):
        await _sync(live, streams=["patients", "gizmos"])


async def test_post_sync_runs_the_callers_tenant_and_answers_the_report(live: Live) -> None:
    deployment = live.deployment
    app = create_app(
        deployment.live,
        deployment.keys,
        deployment.audit,
        sessions=deployment.session_principal,
        events=deployment.events,
        extra_routers=[sync_routes.router(deployment.syncs.sync_now)],
    )
    await live.key(TENANT, "patient.read", "reader")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://carebridge.test"
    ) as client:
        ok = await client.post(
            "/sync", json={"streams": ["providers", "patients"]}, headers=live.auth("admin_a")
        )
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert (body["tenant_id"], body["ok"]) == (TENANT, True)
        assert set(body["streams"]) == {"providers", "patients"}
        assert body["streams"]["patients"]["changed"] == len(truth_ids(live)["patient"])
        everything = await client.post("/sync", headers=live.auth("admin_a"))
        assert everything.status_code == 200, everything.text
        assert list(everything.json()["streams"]) == list(DEFAULT_STREAMS)
        assert everything.json()["streams"]["patients"]["changed"] == 0
        refused = await client.post("/sync", json={}, headers=live.auth("reader"))
        assert refused.status_code == 403
        unknown = await client.post(
            "/sync", json={"streams": ["gizmos"]}, headers=live.auth("admin_a")
        )
        # contract v1: well-formed but invalid input is a 422 that names the field
        assert unknown.status_code == 422
        assert "streams" in unknown.text
        extra = await client.post("/sync", json={"everything": True}, headers=live.auth("admin_a"))
        assert extra.status_code in (400, 422)
        anonymous = await client.post("/sync", json={})
        assert anonymous.status_code == 401


async def test_what_vanished_upstream_becomes_a_tombstone_without_an_event(live: Live) -> None:
    assert (await _sync(live)).ok
    lo, hi = window(live)
    gone = live.truth(
        "SELECT id FROM appointments WHERE practice_id = ? AND start_time >= ? "
        "AND start_time < ? ORDER BY id LIMIT 1",
        (PRACTICE, zulu(lo), zulu(hi)),
    )[0]["id"]
    provider = live.truth(
        "SELECT id FROM providers WHERE practice_id = ? AND status = 'A' ORDER BY id DESC LIMIT 1",
        (PRACTICE,),
    )[0]["id"]
    with live.sandbox.db.transaction() as conn:
        conn.execute("DELETE FROM appointments WHERE id = ?", (gone,))
        conn.execute("UPDATE providers SET status = 'I' WHERE id = ?", (provider,))
    seq = await _last_seq(live)
    report = await _sync(live, streams=["providers", "appointments"])
    assert report.ok
    assert report.streams["appointments"].tombstoned == 1
    assert report.streams["providers"].tombstoned == 1
    await assert_store_equals_truth(live)
    assert await stored_events(live, seq) == []
    assert (await _sync(live, streams=["appointments"])).streams["appointments"].tombstoned == 0


def test_the_cli_syncs_a_tenant_and_reports_bad_input_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(START)
    config = SandboxConfig(seed=11, patients=30, practices=2, anchor=ANCHOR, base_url=SANDBOX)
    sandbox = Tenant.open(config, clock=clock)
    transport = Counting(build_app(sandbox))
    fake = FakeTime()
    ring = KeyRing.generate()
    url = f"sqlite:///{tmp_path / 'store.db'}"

    async def opened(database: str, keys: KeyRing) -> Deployment:
        return await open_deployment(
            database,
            keys,
            clock=clock.now,
            transport=transport,
            throttle=lambda: AimdThrottle(
                ThrottleConfig(start_rate=200, max_rate=500), clock=fake.clock, sleep=fake.sleep
            ),
        )

    async def onboard() -> None:
        deployment = await opened(url, ring)
        settings, secrets = from_sandbox(credentials(sandbox), practice=0)
        await deployment.onboard(
            tenant_id=TENANT, name=TENANT, upstream="carecloud", settings=settings, secrets=secrets
        )
        await deployment.aclose()

    anyio.run(onboard)
    monkeypatch.setattr(cli_sync, "open_deployment", opened)
    app = typer.Typer()
    app.command()(cli_sync.sync_command)
    env = {"CAREBRIDGE_VAULT_KEY": ring.to_text(), "CAREBRIDGE_VAULT_KEY_FILE": ""}
    try:
        done = CliRunner().invoke(
            app, ["--tenant", TENANT, "--stream", "patients", "--database", url], env=env
        )
        assert done.exit_code == 0, done.output
        patients = sandbox.db.scalar("SELECT COUNT(*) FROM patients WHERE practice_id = 1")
        assert f"ten_a patients: read {patients}, changed {patients}" in done.output
        clock.advance(timedelta(seconds=30))  # the next run signs in on a fresh TOTP step
        everyone = CliRunner().invoke(app, ["--database", url, "--quiet"], env=env)
        assert everyone.exit_code == 0, everyone.output
        assert "ten_a statements: read" in everyone.output
        for args, message in (
            (["--stream", "gizmos", "--database", url], "error: unknown streams: gizmos"),
            (["--tenant", "ten_nobody", "--database", url], "error: "),
        ):
            failed = CliRunner().invoke(app, args, env=env)
            assert failed.exit_code == 2, failed.output
            lines = [line for line in failed.output.splitlines() if line.startswith("error:")]
            assert len(lines) == 1, failed.output
            assert lines[0].startswith(message), lines
            assert "Traceback" not in failed.output
        no_key = CliRunner().invoke(
            app,
            ["--database", url],
            env={
                "CAREBRIDGE_VAULT_KEY": "",
            },
        )
        assert no_key.exit_code == 2
        assert "error: set CAREBRIDGE_VAULT_KEY" in no_key.output
    finally:
        sandbox.db.close()
