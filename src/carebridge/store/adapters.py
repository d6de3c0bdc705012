"""The store behind the ports the use cases see (``carebridge.ports.records``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.domain.provenance import DomainModel
from carebridge.ports.records import KeyRecord, RecordPage
from carebridge.ports.writes import Audited, Opened, Outcome, Start
from carebridge.store import entities, idempotency
from carebridge.store import events as event_log
from carebridge.store import tenants as repo
from carebridge.store.audit import AuditEntry, AuditLog
from carebridge.store.engine import Generations, Transactions, commit_one, read_all, read_first
from carebridge.store.schema import (
    GENERATION_KEYS,
    audit_log,
    entities_generation,
    freshness,
    write_ledger,
)
from carebridge.store.schema import entities as entity_table
from carebridge.store.vault import Vault

KEY_CACHE = 10_000
"""API keys one process keeps verified (the oldest goes first beyond it)."""


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


PAGE_CACHE_BYTES = 64 * 2**20
"""How much record JSON one process keeps in served pages, at most (the least recently served
page goes first beyond it)."""

RECORD_CACHE = 10_000
"""Single records one process keeps (the least recently read goes first beyond it)."""

_PageKey = tuple[Any, ...]


class SqlRecords:
    """``RecordStore`` over the entities table.

    Pages are kept, as served (their JSON array serialized once, on first use), with the
    generation of their kind for the tenant: a counter that migration 0008's triggers bump in
    the transaction of every insert, update or delete of such a record, by any writer in any
    process. A page is served again while the generation has not moved (one primary-key read),
    and read again from the table once it has.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        generations: Generations | None = None,
        *,
        cache_bytes: int = PAGE_CACHE_BYTES,
    ) -> None:
        self.engine = engine
        self.generations = generations or Generations(engine)
        self.transactions = Transactions.of(engine)
        self.cache_bytes = cache_bytes
        self._pages: OrderedDict[_PageKey, tuple[int, RecordPage, int]] = OrderedDict()
        self._held = 0
        self._records: OrderedDict[tuple[str, str, str], tuple[int, dict[str, Any] | None]] = (
            OrderedDict()
        )
        self.misses = 0  # pages read from the table (tests, benchmarks)

    def _keep(self, key: _PageKey, generation: int, page: RecordPage) -> None:
        size = sum(len(text) for text in page.raw)
        old = self._pages.pop(key, None)
        if old is not None:
            self._held -= old[2]
        if size > self.cache_bytes:
            return
        while self._pages and self._held + size > self.cache_bytes:
            self._held -= self._pages.popitem(last=False)[1][2]
        self._pages[key] = (generation, page, size)
        self._held += size

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
        order: str = "id",
    ) -> RecordPage:
        key = (
            tenant_id,
            kind,
            tuple(sorted(filters.items())),
            updated_since,
            starts_from,
            starts_before,
            limit,
            cursor,
            order,
        )
        # read before the page: a write committed after it moves it, and the page read next
        generation = await self.generations.value(tenant_id, entities_generation(kind))
        kept = self._pages.get(key)
        if kept is not None and kept[0] == generation:
            self._pages.move_to_end(key)
            return kept[1]
        self.misses += 1
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
            order=order,
        )
        page = RecordPage(found.raw, found.patient_ids, found.next_cursor)
        self._keep(key, generation, page)
        return page

    async def get(self, tenant_id: str, kind: str, entity_id: str) -> dict[str, Any] | None:
        """One record (None: not stored, or a tombstone), kept like a page: served again from
        memory while its kind's generation has not moved (a write's ownership checks of the
        patient, resource, location and visit reason cost a generation read each)."""
        key = (tenant_id, kind, entity_id)
        generation = await self.generations.value(tenant_id, entities_generation(kind))
        kept = self._records.get(key)
        if kept is not None and kept[0] == generation:
            self._records.move_to_end(key)
            return None if kept[1] is None else dict(kept[1])
        plain = self.generations.plain()
        if plain is not None:  # a primary-key read on a SQLite file: microseconds, in place
            text = plain.execute(
                "SELECT data FROM entities WHERE tenant_id = ? AND kind = ? AND id = ? "
                "AND deleted = 0",
                (tenant_id, kind, entity_id),
            ).fetchone()
            found = None if text is None else dict(orjson.loads(text[0]))
        else:
            row = await read_first(
                self.engine,
                select(entity_table.c.data).where(
                    entity_table.c.tenant_id == tenant_id,
                    entity_table.c.kind == kind,
                    entity_table.c.id == entity_id,
                    entity_table.c.deleted.is_(False),
                ),
            )
            found = None if row is None else dict(row[0])
        self._records[key] = (generation, found)
        if len(self._records) > RECORD_CACHE:
            self._records.popitem(last=False)
        return None if found is None else dict(found)

    async def put(
        self, tenant_id: str, kind: str, records: Sequence[DomainModel], fetched_at: datetime
    ) -> int:
        """Upsert records of one kind, with the events of their changes and the webhook
        deliveries those events owe, in one transaction; returns how many changed."""

        async def body(conn: AsyncConnection) -> int:
            changes = await entities.upsert(conn, tenant_id, kind, records, fetched_at=fetched_at)
            await event_log.append(conn, tenant_id, changes, detected_at=fetched_at)
            return len(changes)

        # records and their events are read again from the upstream if a power cut loses them
        return await self.transactions.run(body, durable=False)

    async def refreshed_at(self, tenant_id: str, kind: str, scope: str) -> datetime | None:
        row = await read_first(
            self.engine,
            select(freshness.c.refreshed_at).where(
                freshness.c.tenant_id == tenant_id,
                freshness.c.kind == kind,
                freshness.c.scope == scope,
            ),
        )
        return None if row is None else _aware(row[0])

    async def mark_refreshed(self, tenant_id: str, kind: str, scope: str, at: datetime) -> None:
        async with self.engine.begin() as conn:
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
                freshness
            )
            await conn.execute(
                insert.values(
                    tenant_id=tenant_id, kind=kind, scope=scope, refreshed_at=at
                ).on_conflict_do_update(
                    index_elements=["tenant_id", "kind", "scope"], set_={"refreshed_at": at}
                )
            )


class SqlIdempotency:
    """``Idempotency`` over the idempotency table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def begin(
        self, tenant_id: str, principal: str, key: str, fingerprint: str, now: datetime
    ) -> Outcome:
        return await idempotency.begin(
            self.engine,
            tenant_id=tenant_id,
            principal=principal,
            key=key,
            fingerprint=fingerprint,
            now=now,
        )

    async def complete(
        self, tenant_id: str, principal: str, key: str, status_code: int, response: Any
    ) -> None:
        await idempotency.complete(
            self.engine,
            tenant_id=tenant_id,
            principal=principal,
            key=key,
            status_code=status_code,
            response=response,
        )

    async def abandon(self, tenant_id: str, principal: str, key: str) -> None:
        await idempotency.abandon(self.engine, tenant_id=tenant_id, principal=principal, key=key)

    async def renew(self, tenant_id: str, principal: str, key: str, now: datetime) -> None:
        await idempotency.renew(
            self.engine, tenant_id=tenant_id, principal=principal, key=key, now=now
        )


class SqlLedger:
    """``WriteLedger`` over the write_ledger table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def open(
        self, tenant_id: str, operation: str, request: dict[str, Any], now: datetime
    ) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                write_ledger.insert()
                .values(
                    tenant_id=tenant_id,
                    operation=operation,
                    request=request,
                    state="accepted",
                    created_at=now,
                    updated_at=now,
                )
                .returning(write_ledger.c.id)
            )
            return int(result.scalar_one())

    async def close(
        self,
        entry: int,
        *,
        state: str,
        entity_id: str | None,
        diverged: Sequence[str],
        now: datetime,
    ) -> None:
        await commit_one(
            self.engine,
            update(write_ledger)
            .where(write_ledger.c.id == entry)
            .values(state=state, entity_id=entity_id, diverged=list(diverged), updated_at=now),
        )

    async def entries(self, tenant_id: str) -> list[dict[str, Any]]:
        """A tenant's ledger, oldest first (tests and operators)."""
        rows = await read_all(
            self.engine,
            select(write_ledger)
            .where(write_ledger.c.tenant_id == tenant_id)
            .order_by(write_ledger.c.id),
        )
        return [dict(r._mapping) for r in rows]


class SqlKeys:
    """``KeyStore`` over the api_keys table, cached in process.

    A key read once is kept with its tenant's key generation (a counter that migration 0008's
    triggers bump in the transaction of every revocation or change of a key); each later lookup
    compares the generation with one primary-key read and reads the key again when it moved. A
    revocation in any process is therefore honoured by the next request in every process.
    """

    def __init__(self, engine: AsyncEngine, generations: Generations | None = None) -> None:
        self.engine = engine
        self.generations = generations or Generations(engine)
        self._cache: dict[str, tuple[KeyRecord, int]] = {}
        self.lookups = 0  # keys read from the table (tests, benchmarks)

    async def by_prefix(self, prefix: str) -> KeyRecord | None:
        cached = self._cache.get(prefix)
        if cached is not None:
            record, generation = cached
            if await self.generations.value(record.tenant_id, GENERATION_KEYS) == generation:
                return record
        self.lookups += 1
        found = await repo.key_and_generation(self.engine, prefix)
        if found is None:
            self._cache.pop(prefix, None)
            return None
        key, generation = found
        record = KeyRecord(key.id, key.tenant_id, key.secret_hash, key.scopes, key.revoked)
        if len(self._cache) >= KEY_CACHE and prefix not in self._cache:
            self._cache.pop(next(iter(self._cache)))  # the oldest entry
        self._cache[prefix] = (record, generation)
        return record


class SqlAudit:
    """``AuditSink`` and ``AuditReader`` over the MAC-chained audit log (group commit); the
    vault holds each tenant's audit key."""

    def __init__(self, engine: AsyncEngine, vault: Vault) -> None:
        self.engine = engine
        self.log = AuditLog(engine, vault)

    async def events(self, tenant_id: str, *, after: int, limit: int) -> list[dict[str, Any]]:
        rows = await read_all(
            self.engine,
            select(audit_log)
            .where(audit_log.c.tenant_id == tenant_id, audit_log.c.seq > after)
            .order_by(audit_log.c.seq)
            .limit(limit),
        )
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


# the journal's ledger statements, built once (bound by name): building one costs several
# times what running it does on SQLite
_LEDGER_OPEN = (
    write_ledger.insert()
    .values(
        tenant_id=bindparam("l_tenant"),
        operation=bindparam("l_operation"),
        request=bindparam("l_request"),
        state="accepted",
        created_at=bindparam("l_at"),
        updated_at=bindparam("l_at"),
    )
    .returning(write_ledger.c.id)
)
_LEDGER_CLOSE = (
    update(write_ledger)
    .where(write_ledger.c.id == bindparam("l_entry"))
    .values(
        state=bindparam("l_state"),
        entity_id=bindparam("l_entity"),
        diverged=bindparam("l_diverged"),
        updated_at=bindparam("l_at"),
    )
)


class SqlWriteJournal:
    """``WriteJournal``: a write's claim, ledger entry and audit entry in one transaction before
    the upstream call; its records (with their events), ledger close and stored answer in one
    after it. Each runs through the store's :class:`~carebridge.store.engine.Transactions`: on a
    SQLite file, one trip to a worker thread per transaction.

    Args:
        engine: the store.
        audit: the audit log the reads append to (its chain head and lock are shared).
    """

    def __init__(self, engine: AsyncEngine, audit: SqlAudit) -> None:
        self.engine = engine
        self.audit = audit.log

    async def open(
        self,
        tenant_id: str,
        *,
        key: str | None,
        fingerprint: str,
        operation: str,
        request: dict[str, Any],
        audited: Audited,
        now: datetime,
    ) -> Opened:
        async def work(conn: AsyncConnection) -> tuple[Opened, bool]:
            outcome: Outcome = Start()
            if key is not None:
                outcome = await idempotency.claim_in(
                    conn,
                    tenant_id=tenant_id,
                    principal=audited.principal,
                    key=key,
                    fingerprint=fingerprint,
                    now=now,
                )
                if not isinstance(outcome, Start):
                    return Opened(outcome), False
            entry = await conn.execute(
                _LEDGER_OPEN,
                {
                    "l_tenant": tenant_id,
                    "l_operation": operation,
                    "l_request": request,
                    "l_at": now,
                },
            )
            return Opened(outcome, int(entry.scalar_one())), True

        entry = AuditEntry(
            tenant_id, audited.principal, audited.route, tuple(audited.patient_ids), now
        )
        opened, _ = await self.audit.record_with(entry, work)
        return opened

    async def close(
        self,
        tenant_id: str,
        *,
        key: str | None,
        principal: str,
        claimed_at: datetime,
        entry: int,
        state: str,
        entity_id: str | None,
        diverged: Sequence[str],
        kind: str,
        records: Sequence[DomainModel],
        status_code: int,
        response: Any,
        now: datetime,
    ) -> None:
        async def body(conn: AsyncConnection) -> None:
            if records:
                changes = await entities.upsert(conn, tenant_id, kind, records, fetched_at=now)
                await event_log.append(conn, tenant_id, changes, detected_at=now)
            await conn.execute(
                _LEDGER_CLOSE,
                {
                    "l_entry": entry,
                    "l_state": state,
                    "l_entity": entity_id,
                    "l_diverged": list(diverged),
                    "l_at": now,
                },
            )
            if key is not None:
                await idempotency.complete_in(
                    conn,
                    tenant_id=tenant_id,
                    principal=principal,
                    key=key,
                    status_code=status_code,
                    response=response,
                    claimed_at=claimed_at,
                )

        # not flushed on its own: a close lost to a power cut is a write that died before it
        # closed (its key's lease runs out, the retry resumes); the open's audit entry is
        await self.audit.transactions.run(body, durable=False)

    async def fail(
        self,
        tenant_id: str,
        *,
        key: str | None,
        principal: str,
        entry: int | None,
        state: str | None,
        now: datetime,
    ) -> None:
        async def body(conn: AsyncConnection) -> None:
            if entry is not None and state is not None:
                await conn.execute(
                    update(write_ledger)
                    .where(write_ledger.c.id == entry)
                    .values(state=state, entity_id=None, diverged=[], updated_at=now)
                )
            if key is not None:
                await idempotency.abandon_in(
                    conn, tenant_id=tenant_id, principal=principal, key=key
                )

        await self.audit.transactions.run(body)


class SqlEvents:
    """``EventReader`` over the events table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def events(
        self, tenant_id: str, *, after: int, types: Sequence[str], limit: int
    ) -> list[dict[str, Any]]:
        return await event_log.read(self.engine, tenant_id, after=after, types=types, limit=limit)
