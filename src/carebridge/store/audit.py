"""The audit log of PHI access: append-only, hash-chained per tenant, written by group commit.

Each entry records who (principal) read or wrote which patients' data through which route or
tool, and when. Its hash covers the previous entry's hash and its own canonical content, so
editing, deleting or reordering any entry breaks every later hash; :func:`verify` finds the first
break. Writers call :meth:`AuditLog.record`, which returns once the entry is committed: callers
that arrive while a commit is running are written together in the next one (group commit), so
durability before the response costs one transaction per burst, not per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.store.schema import audit_log

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """One access to PHI."""

    tenant_id: str
    principal: str
    route: str
    patient_ids: tuple[str, ...]
    at: datetime


def entry_hash(previous: str, entry: AuditEntry) -> str:
    """The chain hash of ``entry`` after ``previous``."""
    at = entry.at.astimezone(UTC).replace(microsecond=0).isoformat()
    body = json.dumps(
        [entry.tenant_id, entry.principal, entry.route, sorted(entry.patient_ids), at],
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{previous}|{body}".encode()).hexdigest()


class AuditLog:
    """Appends entries for every tenant through one engine, by group commit."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._pending: list[tuple[AuditEntry, asyncio.Future[int]]] = []
        self._lock = asyncio.Lock()
        self.commits = 0

    async def record(self, entry: AuditEntry) -> int:
        """Append ``entry``; returns its sequence number once it is committed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        async with self._lock:
            if not future.done():  # nobody committed it while we waited: lead this commit
                batch, self._pending = self._pending, []
                try:
                    await self._commit(batch)
                except BaseException as err:
                    for _, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(err)
                    raise
        return await future

    async def _commit(self, batch: Sequence[tuple[AuditEntry, asyncio.Future[int]]]) -> None:
        heads: dict[str, str] = {}
        async with self.engine.begin() as conn:
            for entry, future in batch:
                previous = heads.get(entry.tenant_id) or await _head(conn, entry.tenant_id)
                digest = entry_hash(previous, entry)
                result = await conn.execute(
                    audit_log.insert().values(
                        tenant_id=entry.tenant_id,
                        principal=entry.principal,
                        route=entry.route,
                        patient_ids=sorted(entry.patient_ids),
                        at=entry.at.astimezone(UTC).replace(microsecond=0),
                        prev_hash=previous,
                        hash=digest,
                    )
                )
                heads[entry.tenant_id] = digest
                key = result.inserted_primary_key
                future.set_result(int(key[0]) if key else 0)
        self.commits += 1


async def _head(conn: AsyncConnection, tenant_id: str) -> str:
    row = (
        await conn.execute(
            select(audit_log.c.hash)
            .where(audit_log.c.tenant_id == tenant_id)
            .order_by(audit_log.c.seq.desc())
            .limit(1)
        )
    ).first()
    return str(row[0]) if row else GENESIS


@dataclass(frozen=True)
class Verification:
    """The result of walking one tenant's chain."""

    entries: int
    first_broken: int | None  # the seq of the first entry whose hash does not follow

    @property
    def intact(self) -> bool:
        """No entry was edited, removed or reordered."""
        return self.first_broken is None


async def verify(engine: AsyncEngine, tenant_id: str) -> Verification:
    """Recompute the tenant's chain in sequence order."""
    previous = GENESIS
    count = 0
    async with engine.connect() as conn:
        result = await conn.stream(
            select(audit_log).where(audit_log.c.tenant_id == tenant_id).order_by(audit_log.c.seq)
        )
        try:
            async for row in result:
                count += 1
                at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
                entry = AuditEntry(
                    row.tenant_id, row.principal, row.route, tuple(row.patient_ids), at
                )
                if row.prev_hash != previous or row.hash != entry_hash(previous, entry):
                    return Verification(count, int(row.seq))
                previous = row.hash
        finally:
            await result.close()  # a server-side cursor must not outlive an early return
    return Verification(count, None)
