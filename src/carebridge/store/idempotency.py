"""Idempotency records with Stripe's semantics, per tenant and principal.

A POST with an ``Idempotency-Key`` first calls :func:`begin`:

- a new key records the request as in flight, and the caller runs it (``Start``);
- the same key with the same body replays the stored response (``Replay``);
- the same key with another body is refused with 422 (``Mismatch``);
- the same key while the first request is still running is refused with 409 (``InFlight``).

The caller then :func:`complete`s the record with the response it sent (whatever its status),
or :func:`abandon`s it when the request died before it could answer, so a retry may run it.
Records expire after 24 hours; an expired key starts afresh.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.ports.writes import InFlight, Mismatch, Outcome, Replay, Start
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
    ttl: timedelta = TTL,
) -> Outcome:
    """Claim ``key`` for this request, or say what to answer instead."""
    for _ in range(2):  # a second pass after clearing an expired record
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    idempotency.insert().values(
                        tenant_id=tenant_id,
                        principal=principal,
                        key=key,
                        request_hash=fingerprint,
                        state="in_flight",
                        created_at=now,
                        expires_at=now + ttl,
                    )
                )
            return Start()
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
                await conn.execute(delete(idempotency).where(_key(tenant_id, principal, key)))
                continue
        if row.request_hash != fingerprint:
            return Mismatch()
        if row.state == "in_flight":
            return InFlight()
        return Replay(int(row.status_code), row.response)
    return InFlight()  # claimed by a concurrent request between our two passes


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


async def abandon(engine: AsyncEngine, *, tenant_id: str, principal: str, key: str) -> None:
    """Release an in-flight key whose request died without an answer."""
    async with engine.begin() as conn:
        await conn.execute(
            delete(idempotency).where(
                _key(tenant_id, principal, key), idempotency.c.state == "in_flight"
            )
        )


async def purge(engine: AsyncEngine, now: datetime) -> int:
    """Delete expired records; returns how many."""
    async with engine.begin() as conn:
        result = await conn.execute(delete(idempotency).where(idempotency.c.expires_at <= now))
    return int(result.rowcount or 0)
