"""The store behind the ports the use cases see (``carebridge.ports.records``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.ports.records import KeyRecord, RecordPage
from carebridge.store import entities
from carebridge.store import tenants as repo
from carebridge.store.audit import AuditEntry, AuditLog
from carebridge.store.schema import audit_log
from carebridge.store.schema import entities as entity_table


class SqlRecords:
    """``RecordStore`` over the entities table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(
        self,
        tenant_id: str,
        kind: str,
        *,
        filters: dict[str, str],
        updated_since: datetime | None,
        starts_from: datetime | None,
        starts_before: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> RecordPage:
        found = await entities.query(
            self.engine,
            tenant_id,
            kind,
            filters=filters,
            updated_since=updated_since,
            starts_from=starts_from,
            starts_before=starts_before,
            limit=limit,
            cursor=cursor,
        )
        return RecordPage(found.items, found.next_cursor)

    async def get(self, tenant_id: str, kind: str, entity_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(entity_table.c.data).where(
                        entity_table.c.tenant_id == tenant_id,
                        entity_table.c.kind == kind,
                        entity_table.c.id == entity_id,
                        entity_table.c.deleted.is_(False),
                    )
                )
            ).first()
        return None if row is None else dict(row[0])


class SqlKeys:
    """``KeyStore`` over the api_keys table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def by_prefix(self, prefix: str) -> KeyRecord | None:
        key = await repo.key_by_prefix(self.engine, prefix)
        if key is None:
            return None
        return KeyRecord(key.id, key.tenant_id, key.secret_hash, key.scopes, key.revoked)


class SqlAudit:
    """``AuditSink`` and ``AuditReader`` over the hash-chained audit log (group commit)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.log = AuditLog(engine)

    async def events(self, tenant_id: str, *, after: int, limit: int) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(audit_log)
                    .where(audit_log.c.tenant_id == tenant_id, audit_log.c.seq > after)
                    .order_by(audit_log.c.seq)
                    .limit(limit)
                )
            ).all()
        return [
            {
                "seq": int(r.seq),
                "principal": r.principal,
                "route": r.route,
                "patient_ids": list(r.patient_ids),
                "at": (r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)).isoformat(),
                "hash": r.hash,
            }
            for r in rows
        ]

    async def record(
        self, tenant_id: str, principal: str, route: str, patient_ids: Sequence[str], at: datetime
    ) -> int:
        return await self.log.record(
            AuditEntry(tenant_id, principal, route, tuple(patient_ids), at)
        )
