"""The event log and the webhook outbox, written in the transaction of the change they record.

:func:`append` gives each change its event types (``domain.events.classify``), numbers them
from the tenant's counter (monotonic, gap-free, one writer per tenant at a time), and queues one
delivery per enabled subscription that wants the type. A rolled-back change leaves neither an
event nor a delivery; a committed one leaves both.

Each event has a deterministic identity, its ``message_id`` (the webhook-id of its deliveries):
a hash of the tenant, the type, the entity and the version it describes (nothing for a
``*.created``, which happens once per entity; the hash of the record's content otherwise). It
is unique per tenant, and the writer skips an event whose identity is already logged, under the
tenant's counter lock: two writers that saw the same change (two syncs, a sync and a read's
fetch-through) record it once, with one webhook-id.

A transaction that queues deliveries wakes the delivery loops once it commits
(:func:`queued`): on PostgreSQL it sends ``NOTIFY carebridge_deliveries`` (delivered at commit,
to every process listening: :func:`listen`), and on any store it marks its connection, so that
the engine's pool wakes this process's loop when the connection comes back committed
(:func:`wake_on_commit`). A loop in another process on SQLite has no such signal: its slow
fallback poll finds the deliveries.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from sqlalchemy import bindparam, event, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.domain.events import classify, content, diff, matches
from carebridge.ports.events import Announcement
from carebridge.store.engine import read_all
from carebridge.store.entities import Change
from carebridge.store.schema import counters, deliveries, events, webhooks

SEQ = "event_seq"
CHANNEL = "carebridge_deliveries"
"""The PostgreSQL channel a transaction that queued deliveries notifies (payload: the tenant)."""
_QUEUED = "carebridge.deliveries_queued"
"""The connection's mark (in its ``info``, kept through the pool) that deliveries were queued."""

log = logging.getLogger("carebridge.events")


async def queued(conn: AsyncConnection, tenant_id: str) -> None:
    """Say that the caller's transaction queued deliveries: the delivery loops wake once it
    commits (``NOTIFY`` on PostgreSQL, delivered only at commit; the pool's check-in of this
    connection in this process: :func:`wake_on_commit`). A rolled-back transaction's
    notification is dropped by PostgreSQL; its mark wakes a loop that finds nothing."""
    conn.sync_connection.info[_QUEUED] = True  # type: ignore[union-attr]  # a live connection
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_notify(CHANNEL, tenant_id)))


def wake_on_commit(engine: AsyncEngine, wake: Callable[[], None]) -> None:
    """Call ``wake`` each time a connection of ``engine`` whose transaction queued deliveries
    returns to the pool (after its commit, or its rollback)."""

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checkin(dbapi_connection: object, record: object) -> None:
        del dbapi_connection
        info = getattr(record, "info", None)
        if isinstance(info, dict) and info.pop(_QUEUED, False):
            wake()


async def listen(conninfo: str, wake: Callable[[], None]) -> None:
    """Call ``wake`` for each ``NOTIFY`` on :data:`CHANNEL` (and once on connecting, for what
    was queued while no one listened) until cancelled. PostgreSQL only; ``conninfo`` is a
    libpq connection string. A lost connection raises (the caller reconnects)."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(f"LISTEN {CHANNEL}")
        wake()
        async for _notice in conn.notifies():
            wake()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


_SEEDS: dict[str, Any] = {}
_TOUCH = (
    update(counters)
    .where(counters.c.tenant_id == bindparam("c_tenant"), counters.c.name == bindparam("c_name"))
    .values(value=counters.c.value)
)
_ADD = (
    update(counters)
    .where(counters.c.tenant_id == bindparam("c_tenant"), counters.c.name == bindparam("c_name"))
    .values(value=counters.c.value + bindparam("c_count"))
    .returning(counters.c.value)
)
"""The counter's statements, built once and bound by name (building one cost more than
running it): its row's ``INSERT ... ON CONFLICT DO NOTHING`` (per dialect), the no-op
``UPDATE`` that takes its lock, and the ``UPDATE ... RETURNING`` that reserves numbers."""


def _seed(dialect: str) -> Any:
    found = _SEEDS.get(dialect)
    if found is None:
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(counters)
        found = _SEEDS[dialect] = insert.on_conflict_do_nothing()
    return found


async def lock_counter(conn: AsyncConnection, tenant_id: str) -> None:
    """Take the tenant's event counter for the caller's transaction: event writers of one
    tenant run one at a time from here to their commit, and each sees what the last wrote."""
    await conn.execute(_seed(conn.dialect.name), {"tenant_id": tenant_id, "name": SEQ, "value": 0})
    await conn.execute(_TOUCH, {"c_tenant": tenant_id, "c_name": SEQ})


async def next_seqs(conn: AsyncConnection, tenant_id: str, count: int) -> int:
    """Reserve ``count`` sequence numbers; returns the first."""
    await lock_counter(conn, tenant_id)
    return await _reserve(conn, tenant_id, count)


async def _reserve(conn: AsyncConnection, tenant_id: str, count: int) -> int:
    """:func:`next_seqs` for a caller that holds the counter's lock already."""
    result = await conn.execute(_ADD, {"c_tenant": tenant_id, "c_name": SEQ, "c_count": count})
    return int(result.scalar_one()) - count + 1


def message_id(tenant_id: str, event_type: str, kind: str, entity_id: str, version: str) -> str:
    """An event's identity and webhook-id: the same for every writer that records the same
    change, and for every retry and replay of its deliveries."""
    key = "\x1f".join((tenant_id, event_type, kind, entity_id, version))
    return f"evt_{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def change_version(event_type: str, after: dict[str, Any]) -> str:
    """The version a change's event describes: none for ``*.created`` (an entity is created
    once), else the hash of the record's content (provenance aside) after the change."""
    return "" if event_type.endswith(".created") else _digest(content(after))


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
        changed = diff(change.before, change.after)  # once per change, for its types and rows
        types = classify(change.kind, change.before, change.after, changed)
        if not types:
            continue
        patient = change.id if change.kind == "patient" else change.after.get("patient_id")
        occurred = _occurred(change.after, detected_at)
        updated: str | None = None  # the content's hash, worked out once if an event needs it
        for event_type in types:
            if event_type.endswith(".created"):
                version = ""
            else:
                updated = updated or _digest(content(change.after))
                version = updated
            rows.append(
                {
                    "type": event_type,
                    "kind": change.kind,
                    "entity_id": change.id,
                    "patient_id": patient,
                    "diff": changed,
                    "occurred_at": occurred,
                    "message_id": message_id(
                        tenant_id, event_type, change.kind, change.id, version
                    ),
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
    """Record an event that is not a record's change (``upstream.drift``, ``webhook.disabled``);
    its version is its instant and details, so the same announcement twice is one event.
    Returns its seq (the logged one's, for a repeat)."""
    version = f"{_aware(at).astimezone(UTC).isoformat()}:{_digest(details)}"
    identity = message_id(tenant_id, event_type, kind, entity_id, version)
    row = {
        "type": event_type,
        "kind": kind,
        "entity_id": entity_id,
        "patient_id": None,
        "diff": details,
        "occurred_at": at,
        "message_id": identity,
    }
    written = await _write(conn, tenant_id, [row], at)
    if written:
        return written[0]
    logged = await conn.scalar(
        select(events.c.seq).where(events.c.tenant_id == tenant_id, events.c.message_id == identity)
    )
    return int(logged or 0)


_SUBSCRIBED = select(webhooks.c.id, webhooks.c.event_types).where(
    webhooks.c.tenant_id == bindparam("w_tenant"), webhooks.c.state == "enabled"
)
_LOGGED = select(events.c.message_id).where(
    events.c.tenant_id == bindparam("u_tenant"),
    events.c.message_id.in_(bindparam("u_ids", expanding=True)),
)
_EVENTS = events.insert()
_DELIVERIES = deliveries.insert()
"""The statements of :func:`_write`, built once and bound by name."""


async def _write(
    conn: AsyncConnection, tenant_id: str, rows: list[dict[str, Any]], detected_at: datetime
) -> list[int]:
    if not rows:
        return []
    await lock_counter(conn, tenant_id)
    rows = await _unlogged(conn, tenant_id, rows)
    if not rows:
        return []
    first = await _reserve(conn, tenant_id, len(rows))  # the lock is taken: lock_counter
    subscribed = (await conn.execute(_SUBSCRIBED, {"w_tenant": tenant_id})).all()
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
                        "message_id": row["message_id"],
                        "entity_key": f"{row['kind']}:{row['entity_id']}",
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": detected_at,
                        "created_at": detected_at,
                    }
                )
    await conn.execute(_EVENTS, rows)
    if outbox:
        await conn.execute(_DELIVERIES, outbox)
        await queued(conn, tenant_id)
    return seqs


async def _unlogged(
    conn: AsyncConnection, tenant_id: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows whose identity is neither logged yet nor repeated earlier in ``rows``."""
    wanted = list(dict.fromkeys(row["message_id"] for row in rows))
    logged: set[str] = set()
    for start in range(0, len(wanted), 500):
        logged.update(
            await conn.scalars(
                _LOGGED, {"u_tenant": tenant_id, "u_ids": wanted[start : start + 500]}
            )
        )
    fresh: list[dict[str, Any]] = []
    for row in rows:
        if row["message_id"] not in logged:
            logged.add(row["message_id"])
            fresh.append(row)
    return fresh


def as_json(row: Any) -> dict[str, Any]:
    """An event row as the API answers it (and as a webhook carries it)."""
    return {
        "id": row.message_id,
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
    rows = await read_all(engine, statement)
    return [as_json(r) for r in rows]


class SqlAnnouncer:
    """``ports.events.Announcer`` over the events table: each batch in one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def announce(
        self, tenant_id: str, announcements: Sequence[Announcement], *, at: datetime
    ) -> list[int]:
        if not announcements:
            return []
        seqs: list[int] = []
        async with self.engine.begin() as conn:
            for a in announcements:
                seqs.append(
                    await announce(
                        conn,
                        tenant_id,
                        a.event_type,
                        kind=a.kind,
                        entity_id=a.entity_id,
                        details=a.details,
                        at=at,
                    )
                )
        return seqs
