"""``SyncStore`` over the entities, events and freshness tables.

A stream's cursor is a ``freshness`` row: ``kind`` the stream's kind, ``scope`` ``sync:<stream>``,
``refreshed_at`` when its last page was fetched, ``cursor`` the stream's progress (JSON). It is
written in the transaction of the page it checkpoints.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.domain.provenance import DomainModel
from carebridge.ports.sync import BeforeCommit
from carebridge.store import entities
from carebridge.store import events as event_log
from carebridge.store.schema import entities as entity_table
from carebridge.store.schema import freshness

SCOPE_PREFIX = "sync:"


def scope_of(stream: str) -> str:
    """The freshness scope that holds a stream's cursor."""
    return f"{SCOPE_PREFIX}{stream}"


async def _checkpoint(
    conn: AsyncConnection,
    tenant_id: str,
    kind: str,
    stream: str,
    cursor: dict[str, Any],
    at: datetime,
) -> None:
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(freshness)
    values = {"refreshed_at": at, "cursor": cursor}
    await conn.execute(
        insert.values(
            tenant_id=tenant_id, kind=kind, scope=scope_of(stream), **values
        ).on_conflict_do_update(index_elements=["tenant_id", "kind", "scope"], set_=values)
    )


class SqlSyncStore:
    """Sync cursors, checkpointed pages and tombstones."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def cursor(self, tenant_id: str, stream: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(freshness.c.cursor).where(
                        freshness.c.tenant_id == tenant_id,
                        freshness.c.scope == scope_of(stream),
                    )
                )
            ).first()
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
    ) -> int:
        async with self.engine.begin() as conn:
            changes = await entities.upsert(conn, tenant_id, kind, records, fetched_at=fetched_at)
            await event_log.append(conn, tenant_id, changes, detected_at=fetched_at)
            await _checkpoint(conn, tenant_id, kind, stream, cursor, fetched_at)
            if before_commit is not None:
                before_commit()
        return len(changes)

    async def ids(
        self,
        tenant_id: str,
        kind: str,
        *,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
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
        async with self.engine.connect() as conn:
            return {row[0] for row in await conn.execute(statement)}

    async def tombstone(
        self,
        tenant_id: str,
        kind: str,
        ids: Collection[str],
        *,
        at: datetime,
        stream: str | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> int:
        gone = sorted(ids)
        marked = 0
        async with self.engine.begin() as conn:
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
