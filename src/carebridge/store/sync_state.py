"""``SyncStore`` over the entities, events and freshness tables.

A stream's cursor is a ``freshness`` row: ``kind`` the stream's kind, ``scope`` ``sync:<stream>``,
``refreshed_at`` when its last page was fetched, ``cursor`` the stream's progress (JSON). It is
written in the transaction of the page it checkpoints, with the page's per-patient marks
(``sync_marks``) and the renewal of the stream's lease (``sync_leases``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.domain.provenance import DomainModel
from carebridge.ports.sync import BeforeCommit, Claim, Hold, LeaseLost
from carebridge.store import entities
from carebridge.store import events as event_log
from carebridge.store.engine import Transactions, commit_one, read_first
from carebridge.store.schema import entities as entity_table
from carebridge.store.schema import freshness, sync_leases, sync_marks

SCOPE_PREFIX = "sync:"


def scope_of(stream: str) -> str:
    """The freshness scope that holds a stream's cursor."""
    return f"{SCOPE_PREFIX}{stream}"


_CHECKPOINTS: dict[str, Any] = {}


def _checkpoint_statement(dialect: str) -> Any:
    """The cursor's ``INSERT ... ON CONFLICT DO UPDATE``, built once per dialect and bound by
    name (building it, with the cursor as a literal, cost more than running it)."""
    found = _CHECKPOINTS.get(dialect)
    if found is None:
        statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(freshness)
        found = _CHECKPOINTS[dialect] = statement.on_conflict_do_update(
            index_elements=["tenant_id", "kind", "scope"],
            set_={
                "refreshed_at": statement.excluded.refreshed_at,
                "cursor": statement.excluded.cursor,
            },
        )
    return found


async def _checkpoint(
    conn: AsyncConnection,
    tenant_id: str,
    kind: str,
    stream: str,
    cursor: dict[str, Any],
    at: datetime,
) -> None:
    await conn.execute(
        _checkpoint_statement(conn.dialect.name),
        {
            "tenant_id": tenant_id,
            "kind": kind,
            "scope": scope_of(stream),
            "refreshed_at": at,
            "cursor": cursor,
        },
    )


def _utc(at: datetime) -> datetime:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


def _insert(conn: AsyncConnection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


_RENEW = (
    update(sync_leases)
    .where(
        sync_leases.c.tenant_id == bindparam("r_tenant"),
        sync_leases.c.stream == bindparam("r_stream"),
        sync_leases.c.holder == bindparam("r_holder"),
    )
    .values(expires_at=bindparam("r_expires"))
)
_MARKS: dict[str, Any] = {}


def _marks_statement(dialect: str) -> Any:
    found = _MARKS.get(dialect)
    if found is None:
        statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(sync_marks)
        found = _MARKS[dialect] = statement.on_conflict_do_update(
            index_elements=["tenant_id", "stream", "parent_id"],
            set_={"high_water": statement.excluded.high_water},
        )
    return found


async def _renew(
    conn: AsyncConnection, tenant_id: str, stream: str, hold: Hold, now: datetime
) -> bool:
    result = await conn.execute(
        _RENEW,
        {
            "r_tenant": tenant_id,
            "r_stream": stream,
            "r_holder": hold.holder,
            "r_expires": _utc(now) + hold.ttl,
        },
    )
    return bool(result.rowcount)


async def _save_marks(
    conn: AsyncConnection, tenant_id: str, stream: str, marks: Mapping[str, datetime]
) -> None:
    if not marks:
        return
    await conn.execute(
        _marks_statement(conn.dialect.name),
        [
            {"tenant_id": tenant_id, "stream": stream, "parent_id": parent, "high_water": _utc(at)}
            for parent, at in sorted(marks.items())
        ],
    )


MARKS_CHUNK = 5_000
"""Marks dropped per statement on SQLite: a ``DELETE`` gathers the rowids it removes in memory
first, so a window of a million marks is dropped a chunk at a time (memory stays flat)."""


async def _drop_marks(conn: AsyncConnection, tenant_id: str, stream: str) -> None:
    ours = (sync_marks.c.tenant_id == tenant_id, sync_marks.c.stream == stream)
    if conn.dialect.name != "sqlite":
        await conn.execute(delete(sync_marks).where(*ours))
        return
    chunk = select(sync_marks.c.parent_id).where(*ours).limit(MARKS_CHUNK).scalar_subquery()
    while True:
        result = await conn.execute(
            delete(sync_marks).where(*ours, sync_marks.c.parent_id.in_(chunk))
        )
        if not result.rowcount:
            return


class SqlSyncStore:
    """Sync cursors, checkpointed pages and tombstones."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.transactions = Transactions.of(engine)

    async def cursor(self, tenant_id: str, stream: str) -> dict[str, Any] | None:
        row = await read_first(
            self.engine,
            select(freshness.c.cursor).where(
                freshness.c.tenant_id == tenant_id,
                freshness.c.scope == scope_of(stream),
            ),
        )
        return None if row is None or row[0] is None else dict(row[0])

    async def save_page(
        self,
        tenant_id: str,
        kind: str,
        records: Sequence[DomainModel],
        *,
        stream: str,
        cursor: dict[str, Any],
        fetched_at: datetime,
        before_commit: BeforeCommit | None = None,
        hold: Hold | None = None,
        marks: Mapping[str, datetime] | None = None,
    ) -> int:
        """The page in one transaction of the store's :class:`Transactions` (on a SQLite file,
        one trip to a worker thread, where the async driver crossed threads for each of the
        page's dozen statements; ``before_commit`` runs there too)."""

        async def body(conn: AsyncConnection) -> int:
            if hold is not None and not await _renew(conn, tenant_id, stream, hold, fetched_at):
                raise LeaseLost(f"another sync took {stream} over")
            changes = await entities.upsert(conn, tenant_id, kind, records, fetched_at=fetched_at)
            await event_log.append(conn, tenant_id, changes, detected_at=fetched_at)
            await _checkpoint(conn, tenant_id, kind, stream, cursor, fetched_at)
            await _save_marks(conn, tenant_id, stream, marks or {})
            if before_commit is not None:
                before_commit()
            return len(changes)

        return await self.transactions.run(body)

    async def marks(self, tenant_id: str, stream: str) -> dict[str, datetime]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(sync_marks.c.parent_id, sync_marks.c.high_water).where(
                    sync_marks.c.tenant_id == tenant_id, sync_marks.c.stream == stream
                )
            )
            return {row.parent_id: _utc(row.high_water) for row in rows}

    async def acquire(
        self,
        tenant_id: str,
        stream: str,
        holder: str,
        *,
        now: datetime,
        ttl: timedelta,
        supersedes: str | None = None,
    ) -> Claim:
        now = _utc(now)
        taken = or_(sync_leases.c.expires_at <= now, sync_leases.c.holder == holder)
        if supersedes:
            taken = or_(taken, sync_leases.c.holder.startswith(supersedes, autoescape=True))
        async with self.engine.begin() as conn:
            statement = _insert(conn)(sync_leases).values(
                tenant_id=tenant_id,
                stream=stream,
                holder=holder,
                acquired_at=now,
                expires_at=now + ttl,
            )
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["tenant_id", "stream"],
                    set_={
                        "holder": statement.excluded.holder,
                        "acquired_at": statement.excluded.acquired_at,
                        "expires_at": statement.excluded.expires_at,
                    },
                    where=taken,
                )
            )
            row = (
                await conn.execute(
                    select(sync_leases.c.holder, sync_leases.c.expires_at).where(
                        sync_leases.c.tenant_id == tenant_id, sync_leases.c.stream == stream
                    )
                )
            ).one()
        return Claim(row.holder == holder, row.holder, _utc(row.expires_at))

    async def renew(self, tenant_id: str, stream: str, hold: Hold, *, now: datetime) -> bool:
        async def body(conn: AsyncConnection) -> bool:
            return await _renew(conn, tenant_id, stream, hold, now)

        return await self.transactions.run(body)

    async def release(self, tenant_id: str, stream: str, holder: str) -> None:
        await commit_one(
            self.engine,
            delete(sync_leases).where(
                sync_leases.c.tenant_id == tenant_id,
                sync_leases.c.stream == stream,
                sync_leases.c.holder == holder,
            ),
        )

    async def ids(
        self,
        tenant_id: str,
        kind: str,
        *,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
        patient_ids: Collection[str] | None = None,
    ) -> set[str]:
        statement = select(entity_table.c.id).where(
            entity_table.c.tenant_id == tenant_id,
            entity_table.c.kind == kind,
            entity_table.c.deleted.is_(False),
        )
        if starts_from is not None:
            statement = statement.where(entity_table.c.starts_at >= starts_from.astimezone(UTC))
        if starts_before is not None:
            statement = statement.where(entity_table.c.starts_at < starts_before.astimezone(UTC))
        if patient_ids is None:
            async with self.engine.connect() as conn:
                return {row[0] for row in await conn.execute(statement)}
        chosen = sorted(patient_ids)
        found: set[str] = set()
        async with self.engine.connect() as conn:
            for start in range(0, len(chosen), 500):
                part = statement.where(entity_table.c.patient_id.in_(chosen[start : start + 500]))
                found.update(row[0] for row in await conn.execute(part))
        return found

    async def tombstone(
        self,
        tenant_id: str,
        kind: str,
        ids: Collection[str],
        *,
        at: datetime,
        stream: str | None = None,
        cursor: dict[str, Any] | None = None,
        hold: Hold | None = None,
    ) -> int:
        gone = sorted(ids)
        marked = 0
        async with self.engine.begin() as conn:
            if (
                hold is not None
                and stream is not None
                and not await _renew(conn, tenant_id, stream, hold, at)
            ):
                raise LeaseLost(f"another sync took {stream} over")
            for start in range(0, len(gone), 500):
                result = await conn.execute(
                    update(entity_table)
                    .where(
                        entity_table.c.tenant_id == tenant_id,
                        entity_table.c.kind == kind,
                        entity_table.c.id.in_(gone[start : start + 500]),
                        entity_table.c.deleted.is_(False),
                    )
                    .values(deleted=True, fetched_at=at)
                )
                marked += int(result.rowcount or 0)
            if stream is not None and cursor is not None:
                await _checkpoint(conn, tenant_id, kind, stream, cursor, at)
        return marked

    async def forget_marks(self, tenant_id: str, stream: str) -> None:
        async with self.engine.begin() as conn:
            await _drop_marks(conn, tenant_id, stream)

    async def sweep(
        self,
        tenant_id: str,
        kind: str,
        *,
        stream: str,
        starts_from: datetime,
        starts_before: datetime,
        at: datetime,
        cursor: dict[str, Any],
        hold: Hold | None = None,
    ) -> int:
        marked = (
            select(sync_marks.c.parent_id)
            .where(
                sync_marks.c.tenant_id == tenant_id,
                sync_marks.c.stream == stream,
                sync_marks.c.parent_id == entity_table.c.id,
            )
            .correlate(entity_table)
        )
        async with self.engine.begin() as conn:
            if hold is not None and not await _renew(conn, tenant_id, stream, hold, at):
                raise LeaseLost(f"another sync took {stream} over")
            result = await conn.execute(
                update(entity_table)
                .where(
                    entity_table.c.tenant_id == tenant_id,
                    entity_table.c.kind == kind,
                    entity_table.c.deleted.is_(False),
                    entity_table.c.starts_at >= starts_from.astimezone(UTC),
                    entity_table.c.starts_at < starts_before.astimezone(UTC),
                    ~exists(marked),
                )
                .values(deleted=True, fetched_at=at)
            )
            swept = int(result.rowcount or 0)
            await _drop_marks(conn, tenant_id, stream)
            await _checkpoint(conn, tenant_id, kind, stream, cursor, at)
        return swept
