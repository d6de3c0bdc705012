"""The sync against the live API harness, as its tests and the chaos suite check it.

Ids are spelled out independently of the mappers: a carebridge id is the hash of
``<tenant>:<kind>:<upstream key>`` (``Id.new``), the key being the chart number, the v2 GUID,
the claim or statement number, or the row id. ``truth_ids`` names every record a sync of
practice 1 should hold from the sandbox's own tables; ``store_ids`` what the store holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from tests.support.api import SANDBOX, Live

from carebridge.domain import (
    AppointmentId,
    ChargeId,
    ClaimId,
    EncounterId,
    LocationId,
    PatientId,
    PaymentId,
    ProviderId,
    RemittanceId,
    ResourceId,
    StatementId,
    VisitReasonId,
)
from carebridge.store.schema import events as event_table
from carebridge.store.sync_state import SqlSyncStore
from carebridge.sync.engine import STREAMS, WINDOW_AHEAD, WINDOW_BACK, interior

TENANT = "ten_a"
"""The tenant the sync tests sync: practice 1 of the live API harness."""
PRACTICE = 1
"""Practice 1's id in the sandbox's tables."""


async def control(live: Live, method: str, path: str, body: Any = None) -> Any:
    """Call one of the sandbox's control routes (``/_sandbox/...``), not counted as upstream."""
    async with httpx.AsyncClient(transport=live.upstream.inner, base_url=SANDBOX) as sandbox:
        r = await sandbox.request(method, path, json=body)
    assert r.is_success, r.text
    return r.json() if r.content else None


def id_key(kind: str, upstream_key: object) -> str:
    """What a carebridge id of ``TENANT`` hashes: ``<tenant>:<kind>:<upstream key>``."""
    return f"{TENANT}:{kind}:{upstream_key}"


def window(live: Live) -> tuple[datetime, datetime]:
    """The interior of the appointments' sync window, around the sandbox's today."""
    today = live.clock.now().astimezone(UTC).date()
    return interior(today - WINDOW_BACK, today + WINDOW_AHEAD)


def zulu(moment: datetime) -> str:
    """An instant as the sandbox stores it (UTC, ``...Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def truth_ids(live: Live) -> dict[str, set[str]]:
    """Every synced kind's ids in the sandbox's tables (practice 1), appointments only in the
    window's interior."""
    p = (PRACTICE,)
    lo, hi = window(live)
    return {
        "provider": {
            ProviderId.new(id_key("provider", r["id"]))
            for r in live.truth(
                "SELECT id FROM providers WHERE practice_id = ? AND status = 'A'", p
            )
        },
        "location": {
            LocationId.new(id_key("location", r["id"]))
            for r in live.truth(
                "SELECT id FROM locations WHERE practice_id = ? AND status = 'A'", p
            )
        },
        "resource": {
            ResourceId.new(id_key("resource", r["id"]))
            for r in live.truth(
                "SELECT id FROM resources WHERE practice_id = ? AND status = 'A'", p
            )
        },
        "visit_reason": {
            VisitReasonId.new(id_key("visit_reason", r["id"]))
            for r in live.truth(
                "SELECT id FROM visit_reasons WHERE practice_id = ? AND status = 'A'", p
            )
        },
        "patient": {
            PatientId.new(id_key("patient", r["chart_number"].strip()))
            for r in live.truth("SELECT chart_number FROM patients WHERE practice_id = ?", p)
        },
        "appointment": {
            AppointmentId.new(id_key("appointment", r["id"].lower()))
            for r in live.truth(
                "SELECT id FROM appointments WHERE practice_id = ? "
                "AND start_time >= ? AND start_time < ?",
                (PRACTICE, zulu(lo), zulu(hi)),
            )
        },
        "encounter": {
            EncounterId.new(id_key("encounter", r["id"]))
            for r in live.truth("SELECT id FROM encounters WHERE practice_id = ?", p)
        },
        "charge": {
            ChargeId.new(id_key("transaction", r["id"]))
            for r in live.truth(
                "SELECT id FROM transactions WHERE practice_id = ? AND transaction_type = 'charge'",
                p,
            )
        },
        "claim": {
            ClaimId.new(id_key("claim", r["claim_number"]))
            for r in live.truth("SELECT claim_number FROM claims WHERE practice_id = ?", p)
        },
        "payment": {
            PaymentId.new(id_key("payment", r["id"]))
            for r in live.truth("SELECT id FROM payments WHERE practice_id = ?", p)
        },
        "remittance": {
            RemittanceId.new(id_key("remittance", f"{r['payment_id']}/{r['claim_number']}"))
            for r in live.truth(
                "SELECT r.payment_id, c.claim_number FROM remittances r "
                "JOIN claims c ON c.id = r.claim_id WHERE r.practice_id = ?",
                p,
            )
        },
        "statement": {
            StatementId.new(id_key("statement", r["statement_number"]))
            for r in live.truth("SELECT statement_number FROM statements WHERE practice_id = ?", p)
        },
    }


async def store_ids(live: Live) -> dict[str, set[str]]:
    """Every kind a default sync fills: its ids in the store, appointments only in the
    window's interior."""
    store = SqlSyncStore(live.deployment.engine)
    lo, hi = window(live)
    out = {}
    for stream in STREAMS.values():
        if not stream.default:
            continue
        if stream.kind == "appointment":
            out[stream.kind] = await store.ids(
                TENANT, "appointment", starts_from=lo, starts_before=hi
            )
        else:
            out[stream.kind] = await store.ids(TENANT, stream.kind)
    return out


async def stored_events(live: Live, after: int = 0) -> list[dict[str, Any]]:
    """``TENANT``'s events in the store after ``after``, oldest first, as rows."""
    async with live.deployment.engine.connect() as conn:
        rows = await conn.execute(
            select(event_table)
            .where(event_table.c.tenant_id == TENANT, event_table.c.seq > after)
            .order_by(event_table.c.seq)
        )
        return [dict(r._mapping) for r in rows]
