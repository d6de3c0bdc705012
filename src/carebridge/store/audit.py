"""The audit log of PHI access: append-only, MAC-chained per tenant, written by group commit.

Each entry records who (principal) read or wrote which patients' data through which route or
tool, and when (to the microsecond). Its MAC is an HMAC-SHA256, under the tenant's audit key,
of the previous entry's MAC and a canonical encoding of every field, so editing, deleting or
reordering any entry breaks every later MAC, and nobody without the key can recompute the chain
after an edit. The key is a random 256-bit secret sealed in the vault (slot ``audit.key``),
created with the tenant's first entry; it never leaves this module.

Each tenant's head is checkpointed in ``audit_heads`` (last seq, entry count, head MAC, itself
MAC'd), rewritten in the transaction of every append: removing the newest entries, or the whole
log, no longer goes unnoticed. Each process keeps the heads it wrote in memory and moves the
checkpoint only from the head it knows (a conditional UPDATE); when another process appended
first, it rolls back and appends again from the checkpoint read under its row lock, so
appenders in several processes extend one chain, one after another. The cost of an append does
not depend on the length of the log.

Writers call :meth:`AuditLog.record`, which returns once the entry is committed: callers that
arrive while a commit is running are written together in the next one (group commit), so
durability before the response costs one transaction per burst, not per request.
:func:`verify` walks a chain from genesis and checks it reaches the checkpoint.

What stays out of reach: someone who can write the database *and* open the vault, or who
restores an older copy of both the log and its checkpoint (anchor the checkpoint elsewhere,
e.g. in the exported logs, for that).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.errors import CarebridgeError
from carebridge.ports.vault import Verification as Verification
from carebridge.store.engine import Transactions
from carebridge.store.schema import audit_heads, audit_log, vault_secrets
from carebridge.store.vault import Sealed, Vault, needs_vault

GENESIS = "0" * 64
KEY_SLOT = "audit.key"
_ENTRY = "carebridge-audit-entry/v1"
_HEAD = "carebridge-audit-head/v1"
_UNSIGNED = "-" * 64  # a checkpoint written over one that did not authenticate: never valid

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class AuditEntry:
    """One access to PHI."""

    tenant_id: str
    principal: str
    route: str
    patient_ids: tuple[str, ...]
    at: datetime


def _utc(at: datetime) -> datetime:
    """In UTC; a naive instant (SQLite hands them back so) already is."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


def at_text(at: datetime) -> str:
    """The instant as the MAC covers it: UTC, to the microsecond."""
    return _utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_mac(key: bytes, previous: str, entry: AuditEntry) -> str:
    """The chain MAC of ``entry`` after ``previous``, under the tenant's audit key."""
    body = [
        _ENTRY,
        entry.tenant_id,
        entry.principal,
        entry.route,
        sorted(entry.patient_ids),
        at_text(entry.at),
        previous,
    ]
    return _mac(key, body)


def head_mac(key: bytes, tenant_id: str, last_seq: int, entries: int, head: str) -> str:
    """The MAC of a tenant's checkpoint."""
    return _mac(key, [_HEAD, tenant_id, last_seq, entries, head])


def _mac(key: bytes, fields: list[Any]) -> str:
    canonical = json.dumps(fields, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


# --- the tenant's audit key, in the vault ------------------------------------------------------


async def _stored_key(conn: AsyncConnection, vault: Vault, tenant_id: str) -> bytes | None:
    row = (
        await conn.execute(
            select(vault_secrets.c.sealed).where(
                vault_secrets.c.tenant_id == tenant_id, vault_secrets.c.name == KEY_SLOT
            )
        )
    ).first()
    if row is None:
        return None
    text = vault.open_text(tenant_id, KEY_SLOT, Sealed.from_text(row[0]))
    return base64.urlsafe_b64decode(text.encode())


async def _key_for_append(
    conn: AsyncConnection, vault: Vault, tenant_id: str, now: datetime
) -> tuple[bytes, bool]:
    """The tenant's key, created if it has none; and whether this transaction created it.

    The insert comes first so that the transaction holds the write lock (SQLite) or waits for a
    concurrent creator (PostgreSQL) before it reads.
    """
    fresh = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    sealed = vault.seal(tenant_id, KEY_SLOT, fresh)
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        vault_secrets
    )
    created = (
        await conn.execute(
            insert.values(
                tenant_id=tenant_id,
                name=KEY_SLOT,
                sealed=sealed.to_text(),
                kid=sealed.kid,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
            .returning(vault_secrets.c.name)  # a row only when this statement created the key
        )
    ).first()
    key = await _stored_key(conn, vault, tenant_id)
    if key is None:  # pragma: no cover - inserted or present a statement ago
        raise RuntimeError("the audit key vanished")
    return key, created is not None


# --- appending ---------------------------------------------------------------------------------


@dataclass
class _Head:
    key: bytes
    last_seq: int
    entries: int
    head: str
    signed: bool  # False once a checkpoint did not authenticate: the tamper stays visible
    locked: bool = False  # read under the row's lock in this transaction (else from memory)


class _Moved(CarebridgeError):
    """The checkpoint moved since this process last wrote it: another process appended."""


async def _lock_head(
    conn: AsyncConnection, tenant_id: str, key: bytes, *, new_key: bool, now: datetime
) -> _Head:
    """The tenant's checkpoint, locked for this transaction (created with a new key)."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        audit_heads
    )
    # a key without a checkpoint means the checkpoint was removed: recreate it unsigned
    mac = head_mac(key, tenant_id, 0, 0, GENESIS) if new_key else _UNSIGNED
    await conn.execute(
        insert.values(
            tenant_id=tenant_id, last_seq=0, entries=0, head=GENESIS, mac=mac, updated_at=now
        ).on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    row = (
        await conn.execute(
            select(audit_heads).where(audit_heads.c.tenant_id == tenant_id).with_for_update()
        )
    ).one()
    last_seq, entries = int(row.last_seq), int(row.entries)
    expected = head_mac(key, tenant_id, last_seq, entries, row.head)
    signed = hmac.compare_digest(expected, row.mac)
    if not signed:
        log.warning("the audit checkpoint of tenant %s does not authenticate", tenant_id)
    return _Head(key, last_seq, entries, row.head, signed, locked=True)


# an append's statements, built once (bound by name): building one costs several times what
# running it does on SQLite
_INSERT_ENTRIES = audit_log.insert().returning(audit_log.c.seq, sort_by_parameter_order=True)
_MOVE: dict[str, Any] = {
    "last_seq": bindparam("n_last_seq"),
    "entries": bindparam("n_entries"),
    "head": bindparam("n_head"),
    "mac": bindparam("n_mac"),
    "updated_at": bindparam("n_at"),
}
_MOVE_LOCKED = (
    update(audit_heads).where(audit_heads.c.tenant_id == bindparam("h_tenant")).values(**_MOVE)
)
_MOVE_IF_UNMOVED = (
    update(audit_heads)
    .where(
        audit_heads.c.tenant_id == bindparam("h_tenant"),
        audit_heads.c.last_seq == bindparam("h_last_seq"),
        audit_heads.c.head == bindparam("h_last_head"),
    )
    .values(**_MOVE)
)


class AuditLog:
    """Appends entries for every tenant through one engine, by group commit.

    Each tenant's head (last seq, count, MAC) is kept in memory after this process's last
    commit. A commit chains the batch from it without reading the checkpoint, and moves the
    checkpoint with an UPDATE conditional on the head it started from: when another process
    appended meanwhile, that UPDATE matches nothing, the transaction rolls back, and the batch
    is written again from the checkpoint read under its row lock. The chain stays one chain
    across processes, and an append by the only writer costs one INSERT and one UPDATE, in one
    trip to a worker thread on a SQLite file (:class:`~carebridge.store.engine.Transactions`).

    Args:
        engine: the store.
        vault: opens (and seals, on first use) each tenant's audit key.
    """

    def __init__(self, engine: AsyncEngine, vault: Vault) -> None:
        self.engine = engine
        self.vault = vault
        self.transactions = Transactions.of(engine)
        self._keys: dict[str, bytes] = {}
        self._heads: dict[str, _Head] = {}
        self._pending: list[tuple[AuditEntry, asyncio.Future[int]]] = []
        self._lock = asyncio.Lock()
        self._committer: asyncio.Task[None] | None = None
        self.commits = 0
        self.moved = 0  # commits retried because another process appended first

    async def record(self, entry: AuditEntry) -> int:
        """Append ``entry``; returns its sequence number once it is committed.

        The entry waits in the queue that one committing task drains, a batch per transaction;
        a request awaits only its own entry's commit (no turn at a lock per request)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((entry, future))
        if self._committer is None or self._committer.done():
            self._committer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Commit the queue, a batch at a time, until it is empty (entries queued while a batch
        commits go in the next one). A failed batch fails its entries' requests; the next
        batch is tried all the same."""
        while self._pending:
            async with self._lock:
                batch, self._pending = self._pending, []
                try:
                    await self._commit(batch)
                except Exception as err:  # noqa: BLE001 - handed to each waiting request
                    for _, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(err)
                except BaseException:
                    for _, waiting in batch:
                        waiting.cancel()
                    raise

    async def _commit(self, batch: Sequence[tuple[AuditEntry, asyncio.Future[int]]]) -> None:
        try:
            heads, seqs = await self._write(batch, from_memory=True)
        except _Moved:
            self.moved += 1
            heads, seqs = await self._write(batch, from_memory=False)
        self._remember(heads)
        for (_, future), seq in zip(batch, seqs, strict=True):
            if not future.done():  # its request may have been cancelled meanwhile
                future.set_result(seq)
        self.commits += 1

    async def record_with(
        self,
        entry: AuditEntry,
        work: Callable[[AsyncConnection], Awaitable[tuple[_T, bool]]],
    ) -> tuple[_T, int | None]:
        """Run ``work`` and append ``entry`` (when ``work`` says so) in one transaction: a
        write's claim, ledger entry and audit entry commit together. ``work`` runs again when
        another process appended meanwhile (the transaction rolled back). Returns what ``work``
        returned and the entry's seq (None: not appended)."""
        async with self._lock:
            for from_memory in (True, False):

                async def body(
                    conn: AsyncConnection, from_memory: bool = from_memory
                ) -> tuple[_T, dict[str, _Head], list[int]]:
                    result, audited = await work(conn)
                    if not audited:
                        return result, {}, []
                    heads, seqs = await self._append(conn, [entry], from_memory=from_memory)
                    return result, heads, seqs

                try:
                    result, heads, seqs = await self.transactions.run(body)
                    break
                except _Moved:
                    if not from_memory:  # pragma: no cover - the row lock is held
                        raise
                    self.moved += 1
            self._remember(heads)
        return result, seqs[0] if seqs else None

    def _remember(self, heads: dict[str, _Head]) -> None:
        for tenant, head in heads.items():  # only what is committed
            self._keys[tenant] = head.key
            self._heads[tenant] = _Head(
                head.key, head.last_seq, head.entries, head.head, head.signed
            )

    async def _write(
        self, batch: Sequence[tuple[AuditEntry, asyncio.Future[int]]], *, from_memory: bool
    ) -> tuple[dict[str, _Head], list[int]]:
        """One transaction: the batch's entries, then each tenant's checkpoint moved."""
        entries = [e for e, _ in batch]

        async def body(conn: AsyncConnection) -> tuple[dict[str, _Head], list[int]]:
            return await self._append(conn, entries, from_memory=from_memory)

        return await self.transactions.run(body)

    async def _append(
        self, conn: AsyncConnection, batch: Sequence[AuditEntry], *, from_memory: bool
    ) -> tuple[dict[str, _Head], list[int]]:
        """The batch's entries, then each tenant's checkpoint moved, in the caller's
        transaction (:class:`_Moved` when another process moved a checkpoint first)."""
        heads: dict[str, _Head] = {}
        started: dict[str, tuple[int, str]] = {}
        for entry in batch:
            tenant = entry.tenant_id
            if tenant in heads:
                continue
            held = self._heads.get(tenant) if from_memory else None
            if held is not None:
                heads[tenant] = _Head(held.key, held.last_seq, held.entries, held.head, held.signed)
            else:
                now = _utc(entry.at)
                key = self._keys.get(tenant)
                new_key = False
                if key is None:
                    key, new_key = await _key_for_append(conn, self.vault, tenant, now)
                heads[tenant] = await _lock_head(conn, tenant, key, new_key=new_key, now=now)
            started[tenant] = (heads[tenant].last_seq, heads[tenant].head)
        rows: list[dict[str, Any]] = []
        for entry in batch:
            head = heads[entry.tenant_id]
            digest = entry_mac(head.key, head.head, entry)
            rows.append(
                {
                    "tenant_id": entry.tenant_id,
                    "principal": entry.principal,
                    "route": entry.route,
                    "patient_ids": sorted(entry.patient_ids),
                    "at": _utc(entry.at),
                    "prev_hash": head.head,
                    "hash": digest,
                }
            )
            head.head, head.entries = digest, head.entries + 1
        inserted = await conn.execute(_INSERT_ENTRIES, rows)
        seqs = [int(seq) for seq in inserted.scalars()]
        for entry, seq in zip(batch, seqs, strict=True):
            heads[entry.tenant_id].last_seq = seq
        for tenant, head in heads.items():
            mac = (
                head_mac(head.key, tenant, head.last_seq, head.entries, head.head)
                if head.signed
                else _UNSIGNED
            )
            last_seq, last_head = started[tenant]
            moved = await conn.execute(
                # from memory: only if nobody moved it since this process did
                _MOVE_LOCKED if head.locked else _MOVE_IF_UNMOVED,
                {
                    "h_tenant": tenant,
                    "h_last_seq": last_seq,
                    "h_last_head": last_head,
                    "n_last_seq": head.last_seq,
                    "n_entries": head.entries,
                    "n_head": head.head,
                    "n_mac": mac,
                    "n_at": max(_utc(e.at) for e in batch),
                },
            )
            if moved.rowcount != 1:
                raise _Moved(tenant)  # rolls the transaction back
        return heads, seqs


# --- verifying ---------------------------------------------------------------------------------


async def verify(engine: AsyncEngine, vault: Vault, tenant_id: str) -> Verification:
    """Recompute the tenant's chain from genesis under its key, and hold it to the checkpoint.

    The checkpoint is read first: entries appended meanwhile follow it, and are checked like
    the others.

    Raises:
        carebridge.store.vault.VaultError: the audit key does not open with this vault.
    """
    async with engine.connect() as conn:
        key = await _stored_key(conn, vault, tenant_id)
        checkpoint = (
            await conn.execute(select(audit_heads).where(audit_heads.c.tenant_id == tenant_id))
        ).first()
        if key is None:
            first = (
                await conn.execute(
                    select(audit_log.c.seq)
                    .where(audit_log.c.tenant_id == tenant_id)
                    .order_by(audit_log.c.seq)
                    .limit(1)
                )
            ).first()
            if first is None and checkpoint is None:
                return Verification(0, None)
            seq = None if first is None else int(first[0])
            return Verification(0, seq, "the tenant's audit key is missing from the vault")
        return await _walk(conn, key, tenant_id, checkpoint)


async def _walk(conn: AsyncConnection, key: bytes, tenant_id: str, checkpoint: Any) -> Verification:
    """Entries first (the first one that does not follow is the answer), then the checkpoint."""
    cp: tuple[int, int, str] | None = None
    if checkpoint is not None:
        cp = (int(checkpoint.last_seq), int(checkpoint.entries), str(checkpoint.head))
        if not hmac.compare_digest(head_mac(key, tenant_id, *cp), checkpoint.mac):
            cp = None
    previous = GENESIS
    count = 0
    last_seq = 0
    reached = cp is None or cp == (0, 0, GENESIS)
    result = await conn.stream(
        select(audit_log).where(audit_log.c.tenant_id == tenant_id).order_by(audit_log.c.seq)
    )
    try:
        async for row in result:
            count += 1
            seq = int(row.seq)
            entry = AuditEntry(
                row.tenant_id, row.principal, row.route, tuple(row.patient_ids), row.at
            )
            expected = entry_mac(key, previous, entry)
            if row.prev_hash != previous or not hmac.compare_digest(row.hash, expected):
                return Verification(
                    count,
                    seq,
                    f"entry {seq} does not follow the chain: it was edited, or an entry before "
                    "it removed or reordered",
                )
            if cp is not None and not reached and seq >= cp[0]:
                if (seq, count, row.hash) != cp:
                    return Verification(
                        count, seq, f"entry {seq} does not match the head checkpoint"
                    )
                reached = True
            previous, last_seq = row.hash, seq
    finally:
        await result.close()  # a server-side cursor must not outlive an early return
    if checkpoint is None:
        return Verification(count, None, "the head checkpoint is missing")
    if cp is None:
        return Verification(count, None, "the head checkpoint does not authenticate")
    if not reached:
        return Verification(
            count,
            cp[0],
            f"the newest entries are missing: the log ends at seq {last_seq} after {count} "
            f"entries, the checkpoint at seq {cp[0]} after {cp[1]}",
        )
    return Verification(count, None)


class SqlAuditChain:
    """``AuditChain``: :func:`verify` over one engine and vault (None when no key ring is
    configured: verifying then raises :class:`carebridge.errors.ConfigError`)."""

    def __init__(self, engine: AsyncEngine, vault: Vault | None) -> None:
        self.engine = engine
        self.vault = vault

    async def verify(self, tenant_id: str) -> Verification:
        return await verify(self.engine, needs_vault(self.vault), tenant_id)
