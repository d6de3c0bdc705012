"""Idempotency records with Stripe's semantics, per tenant and principal.

A POST with an ``Idempotency-Key`` first calls :func:`begin`:

- a new key records the request as in flight, and the caller runs it (``Start``);
- the same key with the same body replays the stored response (``Replay``);
- the same key with another body is refused with 422 (``Mismatch``);
- the same key while the first request is still running is refused with 409 (``InFlight``).

The caller then :func:`complete`s the record with the response it sent (whatever its status),
or :func:`abandon`s it when the request died before it could answer, so a retry may run it.
Records expire after 24 hours; an expired key starts afresh.

An in-flight claim is a lease (``LEASE``, 30 s) that the running request renews: a process
killed mid-write stops renewing, and a retry a lease later takes the key over as
``Start(resumed=True)``, so the write path looks upstream for what the dead attempt made before
it sends again. A killed process never jams a key for the record's whole life.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.ports.writes import LEASE, InFlight, Mismatch, Outcome, Replay, Start
from carebridge.store.engine import commit_one
from carebridge.store.schema import idempotency

TTL = timedelta(hours=24)


def _key(tenant_id: str, principal: str, key: str) -> Any:
    return and_(
        idempotency.c.tenant_id == tenant_id,
        idempotency.c.principal == principal,
        idempotency.c.key == key,
    )


async def begin(
    engine: AsyncEngine,
    *,
    tenant_id: str,
    principal: str,
    key: str,
    fingerprint: str,
    now: datetime,
) -> Outcome:
    """Claim ``key`` for this request, or say what to answer instead."""
    resumed = False
    for _ in range(2):  # a second pass after clearing an expired record
        try:
            await commit_one(
                engine,
                idempotency.insert().values(
                    tenant_id=tenant_id,
                    principal=principal,
                    key=key,
                    request_hash=fingerprint,
                    state="in_flight",
                    created_at=now,
                    expires_at=now + LEASE,
                ),
            )
            return Start(resumed=resumed)
        except IntegrityError:
            pass
        async with engine.begin() as conn:
            row = (
                await conn.execute(select(idempotency).where(_key(tenant_id, principal, key)))
            ).first()
            if row is None:
                continue  # removed meanwhile: try to claim it again
            expires = (
                row.expires_at
                if row.expires_at.tzinfo
                else row.expires_at.replace(tzinfo=now.tzinfo)
            )
            if expires <= now:
                # an in-flight record past its lease: its request died without an answer
                resumed = row.state == "in_flight"
                await conn.execute(delete(idempotency).where(_key(tenant_id, principal, key)))
                continue
        if row.request_hash != fingerprint:
            return Mismatch()
        if row.state == "in_flight":
            return InFlight()
        return Replay(int(row.status_code), row.response)
    return InFlight()  # claimed by a concurrent request between our two passes


# A write's claim and completion are built once (bound by name), not per request: building a
# statement and its cache key costs several times what running it does on SQLite.
_CLAIMS: dict[str, Any] = {}


def _claim(dialect: str) -> Any:
    """The claim's ``INSERT ... ON CONFLICT DO NOTHING RETURNING key``, built once per dialect."""
    found = _CLAIMS.get(dialect)
    if found is None:
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(idempotency)
        found = _CLAIMS[dialect] = (
            insert.values(
                tenant_id=bindparam("c_tenant"),
                principal=bindparam("c_principal"),
                key=bindparam("c_key"),
                request_hash=bindparam("c_hash"),
                state="in_flight",
                created_at=bindparam("c_now"),
                expires_at=bindparam("c_expires"),
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "principal", "key"])
            .returning(idempotency.c.key)
        )
    return found


_COMPLETE = (
    update(idempotency)
    .where(
        idempotency.c.tenant_id == bindparam("k_tenant"),
        idempotency.c.principal == bindparam("k_principal"),
        idempotency.c.key == bindparam("k_key"),
    )
    .values(
        state="done",
        status_code=bindparam("d_status"),
        response=bindparam("d_response"),
        expires_at=bindparam("d_expires"),
    )
)


async def claim_in(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    principal: str,
    key: str,
    fingerprint: str,
    now: datetime,
) -> Outcome:
    """:func:`begin` in the caller's transaction (so the write's ledger and audit entries
    commit with the claim, or not at all).

    The claim is an ``INSERT ... ON CONFLICT DO NOTHING``: a concurrent claimer of the same key
    waits for this transaction and then finds the row; an expired record is taken over in place
    under its row lock.
    """
    claimed = (
        await conn.execute(
            _claim(conn.dialect.name),
            {
                "c_tenant": tenant_id,
                "c_principal": principal,
                "c_key": key,
                "c_hash": fingerprint,
                "c_now": now,
                "c_expires": now + LEASE,
            },
        )
    ).first()
    if claimed is not None:
        return Start()
    row = (
        await conn.execute(
            select(idempotency).where(_key(tenant_id, principal, key)).with_for_update()
        )
    ).one()
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=now.tzinfo)
    if expires <= now:
        # past its lease (in flight: its request died without an answer) or its life: start afresh
        await conn.execute(
            update(idempotency)
            .where(_key(tenant_id, principal, key))
            .values(
                request_hash=fingerprint,
                state="in_flight",
                status_code=None,
                response=None,
                created_at=now,
                expires_at=now + LEASE,
            )
        )
        return Start(resumed=row.state == "in_flight")
    if row.request_hash != fingerprint:
        return Mismatch()
    if row.state == "in_flight":
        return InFlight()
    return Replay(int(row.status_code), row.response)


async def complete_in(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    principal: str,
    key: str,
    status_code: int,
    response: Any,
    claimed_at: datetime,
) -> None:
    """:func:`complete` in the caller's transaction, in one statement: the caller says when it
    claimed the key (:func:`claim_in`'s ``now``, the record's ``created_at``)."""
    await conn.execute(
        _COMPLETE,
        {
            "k_tenant": tenant_id,
            "k_principal": principal,
            "k_key": key,
            "d_status": status_code,
            "d_response": response,
            "d_expires": claimed_at + TTL,
        },
    )


async def abandon_in(conn: AsyncConnection, *, tenant_id: str, principal: str, key: str) -> None:
    """:func:`abandon` in the caller's transaction."""
    await conn.execute(
        delete(idempotency).where(
            _key(tenant_id, principal, key), idempotency.c.state == "in_flight"
        )
    )


async def complete(
    engine: AsyncEngine,
    *,
    tenant_id: str,
    principal: str,
    key: str,
    status_code: int,
    response: Any,
) -> None:
    """Store the response a request answered, for replays."""
    async with engine.begin() as conn:
        await conn.execute(
            update(idempotency)
            .where(_key(tenant_id, principal, key))
            .values(state="done", status_code=status_code, response=response)
        )
        created = await conn.scalar(
            select(idempotency.c.created_at).where(_key(tenant_id, principal, key))
        )
        if created is not None:
            await conn.execute(
                update(idempotency)
                .where(_key(tenant_id, principal, key))
                .values(expires_at=created + TTL)
            )


async def renew(
    engine: AsyncEngine, *, tenant_id: str, principal: str, key: str, now: datetime
) -> None:
    """Extend a running request's claim on its key by a lease from ``now``."""
    await commit_one(
        engine,
        update(idempotency)
        .where(_key(tenant_id, principal, key), idempotency.c.state == "in_flight")
        .values(expires_at=now + LEASE),
    )


async def abandon(engine: AsyncEngine, *, tenant_id: str, principal: str, key: str) -> None:
    """Release an in-flight key whose request died without an answer."""
    await commit_one(
        engine,
        delete(idempotency).where(
            _key(tenant_id, principal, key), idempotency.c.state == "in_flight"
        ),
    )


async def purge(engine: AsyncEngine, now: datetime) -> int:
    """Delete expired records; returns how many."""
    result = await commit_one(engine, delete(idempotency).where(idempotency.c.expires_at <= now))
    return int(result.rowcount or 0)
