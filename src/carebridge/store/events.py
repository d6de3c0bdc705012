"""The event log and the webhook outbox, written in the transaction of the change they record.

:func:`append` gives each change its event types (``domain.events.classify``), numbers them
from the tenant's counter (monotonic, gap-free, one writer per tenant at a time), and queues one
delivery per enabled subscription that wants the type. A rolled-back change leaves neither an
event nor a delivery; a committed one leaves both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.domain.events import classify, diff, matches
from carebridge.store.entities import Change
from carebridge.store.schema import counters, deliveries, events, webhooks

SEQ = "event_seq"


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def next_seqs(conn: AsyncConnection, tenant_id: str, count: int) -> int:
    """Reserve ``count`` sequence numbers; returns the first."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(counters)
    await conn.execute(
        insert.values(tenant_id=tenant_id, name=SEQ, value=0).on_conflict_do_nothing()
    )
    result = await conn.execute(
        update(counters)
        .where(counters.c.tenant_id == tenant_id, counters.c.name == SEQ)
        .values(value=counters.c.value + count)
        .returning(counters.c.value)
    )
    return int(result.scalar_one()) - count + 1


def message_id(tenant_id: str, seq: int) -> str:
    """The ``webhook-id`` of an event: the same for every retry and replay."""
    return f"evt_{tenant_id}_{seq}"


def _occurred(after: dict[str, Any], fallback: datetime) -> datetime:
    text = after.get("updated_at")
    if isinstance(text, str):
        try:
            return _aware(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return fallback
    return fallback


async def append(
    conn: AsyncConnection,
    tenant_id: str,
    changes: Iterable[Change],
    *,
    detected_at: datetime,
) -> list[int]:
    """Record the events of ``changes`` and queue their deliveries; returns the new seqs."""
    rows: list[dict[str, Any]] = []
    for change in changes:
        for event_type in classify(change.kind, change.before, change.after):
            patient = change.after.get("patient_id")
            rows.append(
                {
                    "type": event_type,
                    "kind": change.kind,
                    "entity_id": change.id,
                    "patient_id": change.id if change.kind == "patient" else patient,
                    "diff": diff(change.before, change.after),
                    "occurred_at": _occurred(change.after, detected_at),
                }
            )
    return await _write(conn, tenant_id, rows, detected_at)


async def announce(
    conn: AsyncConnection,
    tenant_id: str,
    event_type: str,
    *,
    kind: str,
    entity_id: str,
    details: dict[str, Any],
    at: datetime,
) -> int:
    """Record an event that is not a record's change (``upstream.drift``, ``webhook.disabled``)."""
    row = {
        "type": event_type,
        "kind": kind,
        "entity_id": entity_id,
        "patient_id": None,
        "diff": details,
        "occurred_at": at,
    }
    return (await _write(conn, tenant_id, [row], at))[0]


async def _write(
    conn: AsyncConnection, tenant_id: str, rows: list[dict[str, Any]], detected_at: datetime
) -> list[int]:
    if not rows:
        return []
    first = await next_seqs(conn, tenant_id, len(rows))
    subscribed = (
        await conn.execute(
            select(webhooks.c.id, webhooks.c.event_types).where(
                webhooks.c.tenant_id == tenant_id, webhooks.c.state == "enabled"
            )
        )
    ).all()
    seqs: list[int] = []
    outbox: list[dict[str, Any]] = []
    for offset, row in enumerate(rows):
        seq = first + offset
        seqs.append(seq)
        row |= {"tenant_id": tenant_id, "seq": seq, "detected_at": detected_at}
        for hook_id, wanted in subscribed:
            if matches(list(wanted or []), row["type"]):
                outbox.append(
                    {
                        "tenant_id": tenant_id,
                        "webhook_id": hook_id,
                        "seq": seq,
                        "message_id": message_id(tenant_id, seq),
                        "entity_key": f"{row['kind']}:{row['entity_id']}",
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": detected_at,
                        "created_at": detected_at,
                    }
                )
    await conn.execute(events.insert(), rows)
    if outbox:
        await conn.execute(deliveries.insert(), outbox)
    return seqs


def as_json(row: Any) -> dict[str, Any]:
    """An event row as the API answers it (and as a webhook carries it)."""
    return {
        "id": message_id(row.tenant_id, int(row.seq)),
        "seq": int(row.seq),
        "type": row.type,
        "kind": row.kind,
        "entity_id": row.entity_id,
        "patient_id": row.patient_id,
        "diff": row.diff,
        "occurred_at": _aware(row.occurred_at).isoformat(),
        "detected_at": _aware(row.detected_at).isoformat(),
    }


async def read(
    engine: AsyncEngine,
    tenant_id: str,
    *,
    after: int = 0,
    types: Sequence[str] = (),
    limit: int = 100,
) -> list[dict[str, Any]]:
    """A tenant's events after ``after`` in seq order, optionally of some types
    (``kind.*`` allowed)."""
    statement = select(events).where(events.c.tenant_id == tenant_id, events.c.seq > after)
    if types:
        exact = [t for t in types if not t.endswith(".*")]
        wanted = [events.c.type.in_(exact)] if exact else []
        wanted += [events.c.type.like(f"{t[:-1]}%") for t in types if t.endswith(".*")]
        statement = statement.where(or_(*wanted))
    statement = statement.order_by(events.c.seq).limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return [as_json(r) for r in rows]
