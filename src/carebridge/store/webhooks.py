"""Webhook subscriptions and their delivery outbox in the store (``ports.webhooks``).

Signing secrets are vault secrets of the tenant named ``webhook.<id>.current`` and
``webhook.<id>.previous``, sealed in the same transaction as the subscription row they belong
to. Every query filters by the tenant, except :meth:`SqlWebhooks.due`, the worker's scan over
all tenants, whose joins keep each delivery with its own tenant's subscription and event.

This is persistence only: when to retry, when a failure streak disables a subscription and what
its ``webhook.disabled`` event says are decisions of :mod:`carebridge.domain.delivery`.
"""

from __future__ import annotations

import secrets as random_ids
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.domain.delivery import disabled_event, streak_start
from carebridge.domain.events import matches
from carebridge.ports.webhooks import (
    DeliveryRecord,
    DueDelivery,
    FailureStreak,
    SigningSecrets,
    Subscription,
)
from carebridge.store import events as event_log
from carebridge.store.engine import read_all, read_first
from carebridge.store.schema import deliveries, events, vault_secrets, webhooks
from carebridge.store.tenants import put_secret_in
from carebridge.store.vault import Sealed, Vault

_REPLAY_BATCH = 1000


LEASE = timedelta(minutes=2)
"""How long a claimed delivery is held by the loop that took it (far above the 5 s timeout):
by default, how long a killed process's claimed deliveries wait before another loop sends them
(``CAREBRIDGE_DELIVERY_LEASE_SECONDS`` sets it)."""


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _maybe(at: datetime | None) -> datetime | None:
    return None if at is None else _aware(at)


def slot(webhook_id: str, which: str) -> str:
    """The vault slot of a subscription's ``current`` or ``previous`` secret."""
    return f"webhook.{webhook_id}.{which}"


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        tenant_id=row.tenant_id,
        url=row.url,
        event_types=tuple(row.event_types or ()),
        scopes=frozenset(row.scopes or ()),
        state=row.state,
        consecutive_failures=int(row.consecutive_failures),
        previous_secret_expires_at=_maybe(row.previous_secret_expires_at),
        created_at=_aware(row.created_at),
        disabled_at=_maybe(row.disabled_at),
    )


def _webhook(tenant_id: str, webhook_id: str) -> ColumnElement[bool]:
    """The condition naming one of a tenant's webhooks."""
    return and_(webhooks.c.tenant_id == tenant_id, webhooks.c.id == webhook_id)


async def _attempted(
    conn: AsyncConnection, tenant_id: str, delivery_id: int, **outcome: Any
) -> Any:
    """Count one more attempt of a delivery and keep its ``outcome``; the delivery's webhook
    (None when the delivery is gone)."""
    return (
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.tenant_id == tenant_id, deliveries.c.id == delivery_id)
            .values(attempts=deliveries.c.attempts + 1, **outcome)
            .returning(deliveries.c.webhook_id)
        )
    ).scalar_one_or_none()


class SqlWebhooks:
    """``WebhookStore`` over the webhooks, deliveries, events and vault_secrets tables."""

    def __init__(self, engine: AsyncEngine, vault: Vault, *, lease: timedelta = LEASE) -> None:
        self.engine = engine
        self.vault = vault
        self.lease = lease

    # --- secrets ---------------------------------------------------------------------------

    async def _opened(
        self, conn: AsyncConnection, tenant_id: str, webhook_id: str
    ) -> dict[str, str]:
        names = [slot(webhook_id, "current"), slot(webhook_id, "previous")]
        rows = (
            await conn.execute(
                select(vault_secrets.c.name, vault_secrets.c.sealed).where(
                    vault_secrets.c.tenant_id == tenant_id, vault_secrets.c.name.in_(names)
                )
            )
        ).all()
        return {
            name: self.vault.open_text(tenant_id, name, Sealed.from_text(text))
            for name, text in rows
        }

    # --- subscriptions ---------------------------------------------------------------------

    async def create(
        self,
        tenant_id: str,
        *,
        url: str,
        event_types: tuple[str, ...],
        secret: str,
        now: datetime,
        scopes: frozenset[str] = frozenset(),
    ) -> Subscription:
        webhook_id = f"whk_{random_ids.token_hex(16)}"
        row = {
            "id": webhook_id,
            "tenant_id": tenant_id,
            "url": url,
            "event_types": list(event_types),
            "scopes": sorted(scopes),
            "state": "enabled",
            "consecutive_failures": 0,
            "previous_secret_expires_at": None,
            "created_at": now,
            "disabled_at": None,
        }
        async with self.engine.begin() as conn:
            await conn.execute(webhooks.insert().values(**row))
            await put_secret_in(
                conn, self.vault, tenant_id, slot(webhook_id, "current"), secret, now=now
            )
        return Subscription(
            id=webhook_id,
            tenant_id=tenant_id,
            url=url,
            event_types=tuple(event_types),
            scopes=frozenset(scopes),
            state="enabled",
            consecutive_failures=0,
            previous_secret_expires_at=None,
            created_at=now,
            disabled_at=None,
        )

    async def subscriptions(self, tenant_id: str) -> list[Subscription]:
        rows = await read_all(
            self.engine,
            select(webhooks)
            .where(webhooks.c.tenant_id == tenant_id)
            .order_by(webhooks.c.created_at, webhooks.c.id),
        )
        return [_subscription(r) for r in rows]

    async def get(self, tenant_id: str, webhook_id: str) -> Subscription | None:
        row = await read_first(
            self.engine,
            select(webhooks).where(_webhook(tenant_id, webhook_id)),
        )
        return None if row is None else _subscription(row)

    async def delete(self, tenant_id: str, webhook_id: str) -> bool:
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(deliveries).where(
                    deliveries.c.tenant_id == tenant_id, deliveries.c.webhook_id == webhook_id
                )
            )
            gone = await conn.execute(delete(webhooks).where(_webhook(tenant_id, webhook_id)))
            if not gone.rowcount:
                return False
            await conn.execute(
                delete(vault_secrets).where(
                    vault_secrets.c.tenant_id == tenant_id,
                    vault_secrets.c.name.in_(
                        [slot(webhook_id, "current"), slot(webhook_id, "previous")]
                    ),
                )
            )
        return True

    async def rotate(
        self,
        tenant_id: str,
        webhook_id: str,
        *,
        secret: str,
        overlap_until: datetime,
        now: datetime,
    ) -> bool:
        async with self.engine.begin() as conn:
            found = await conn.execute(
                update(webhooks)
                .where(_webhook(tenant_id, webhook_id))
                .values(previous_secret_expires_at=overlap_until)
            )
            if not found.rowcount:
                return False
            opened = await self._opened(conn, tenant_id, webhook_id)
            old = opened.get(slot(webhook_id, "current"))
            if old is not None:
                # sealed values are bound to their slot: the old secret is re-sealed, not copied
                await put_secret_in(
                    conn, self.vault, tenant_id, slot(webhook_id, "previous"), old, now=now
                )
            await put_secret_in(
                conn, self.vault, tenant_id, slot(webhook_id, "current"), secret, now=now
            )
        return True

    async def secrets(
        self, tenant_id: str, webhook_id: str, *, now: datetime
    ) -> SigningSecrets | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(webhooks.c.previous_secret_expires_at).where(
                        _webhook(tenant_id, webhook_id)
                    )
                )
            ).first()
            if row is None:
                return None
            opened = await self._opened(conn, tenant_id, webhook_id)
        current = opened.get(slot(webhook_id, "current"))
        if current is None:
            return None
        expires = _maybe(row.previous_secret_expires_at)
        previous = opened.get(slot(webhook_id, "previous"))
        valid = previous if expires is not None and expires > now else None
        return SigningSecrets(current=current, previous=valid)

    async def disable(self, tenant_id: str, webhook_id: str, *, reason: str, now: datetime) -> bool:
        async with self.engine.begin() as conn:
            changed = await conn.execute(
                update(webhooks)
                .where(
                    _webhook(tenant_id, webhook_id),
                    webhooks.c.state == "enabled",
                )
                .values(state="disabled", disabled_at=now)
                .returning(webhooks.c.consecutive_failures)
            )
            failures = changed.scalar_one_or_none()
            if failures is None:
                return False
            # after the update: the disabled subscription is not sent its own disabling
            event_type, kind, entity_id, details = disabled_event(webhook_id, reason, int(failures))
            await event_log.announce(
                conn, tenant_id, event_type, kind=kind, entity_id=entity_id, details=details, at=now
            )
        return True

    # --- the outbox ------------------------------------------------------------------------

    async def due(self, *, now: datetime, limit: int) -> list[DueDelivery]:
        d = deliveries
        earlier = deliveries.alias("earlier")
        blocked = exists().where(
            earlier.c.tenant_id == d.c.tenant_id,
            earlier.c.webhook_id == d.c.webhook_id,
            earlier.c.entity_key == d.c.entity_key,
            earlier.c.state == "pending",
            or_(earlier.c.seq < d.c.seq, and_(earlier.c.seq == d.c.seq, earlier.c.id < d.c.id)),
        )
        statement = (
            select(
                events,
                d.c.id.label("d_id"),
                d.c.webhook_id.label("d_webhook_id"),
                d.c.message_id.label("d_message_id"),
                d.c.entity_key.label("d_entity_key"),
                d.c.attempts.label("d_attempts"),
                d.c.created_at.label("d_created_at"),
                webhooks.c.url.label("w_url"),
                webhooks.c.scopes.label("w_scopes"),
            )
            .select_from(
                d.join(
                    webhooks,
                    and_(webhooks.c.id == d.c.webhook_id, webhooks.c.tenant_id == d.c.tenant_id),
                ).join(events, and_(events.c.tenant_id == d.c.tenant_id, events.c.seq == d.c.seq))
            )
            .where(
                d.c.state == "pending",
                d.c.next_attempt_at <= now,
                webhooks.c.state == "enabled",
                ~blocked,
            )
            .order_by(d.c.seq, d.c.id)
            .limit(limit)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(statement)).all()
            if not rows:
                return []
            # Claim them: a lease moves next_attempt_at ahead, and only rows still due are
            # taken, so two delivery loops never send one delivery at once. A loop that dies
            # mid-send leaves its lease to expire; the delivery is then sent again (same id).
            claimed = {
                int(r[0])
                for r in await conn.execute(
                    update(d)
                    .where(
                        d.c.id.in_([int(r.d_id) for r in rows]),
                        d.c.state == "pending",
                        d.c.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=now + self.lease)
                    .returning(d.c.id)
                )
            }
        rows = [r for r in rows if int(r.d_id) in claimed]
        return [
            DueDelivery(
                id=int(r.d_id),
                tenant_id=r.tenant_id,
                webhook_id=r.d_webhook_id,
                url=r.w_url,
                seq=int(r.seq),
                message_id=r.d_message_id,
                entity_key=r.d_entity_key,
                attempts=int(r.d_attempts),
                created_at=_aware(r.d_created_at),
                event=event_log.as_json(r),
                scopes=frozenset(r.w_scopes or ()),
            )
            for r in rows
        ]

    async def delivered(
        self, tenant_id: str, delivery_id: int, *, status: int, now: datetime
    ) -> None:
        async with self.engine.begin() as conn:
            hook = await _attempted(
                conn,
                tenant_id,
                delivery_id,
                state="delivered",
                last_status=status,
                last_error=None,
                delivered_at=now,
            )
            if hook is not None:
                await conn.execute(
                    update(webhooks).where(_webhook(tenant_id, hook)).values(consecutive_failures=0)
                )

    async def failed(
        self,
        tenant_id: str,
        delivery_id: int,
        *,
        status: int | None,
        error: str,
        retry_at: datetime | None,
        now: datetime,
    ) -> FailureStreak:
        async with self.engine.begin() as conn:
            hook = await _attempted(
                conn,
                tenant_id,
                delivery_id,
                state="pending" if retry_at is not None else "dead",
                last_status=status,
                last_error=error[:200],
                next_attempt_at=retry_at if retry_at is not None else now,
            )
            if hook is None:
                return FailureStreak(0, now)
            count = (
                await conn.execute(
                    update(webhooks)
                    .where(_webhook(tenant_id, hook))
                    .values(consecutive_failures=webhooks.c.consecutive_failures + 1)
                    .returning(webhooks.c.consecutive_failures)
                )
            ).scalar_one_or_none()
            mine = and_(deliveries.c.tenant_id == tenant_id, deliveries.c.webhook_id == hook)
            success = (
                await conn.execute(
                    select(func.max(deliveries.c.delivered_at)).where(
                        mine, deliveries.c.state == "delivered"
                    )
                )
            ).scalar_one_or_none()
            failing = select(func.min(deliveries.c.created_at)).where(
                mine, deliveries.c.state.in_(("pending", "dead")), deliveries.c.attempts > 0
            )
            if success is not None:
                failing = failing.where(deliveries.c.created_at >= success)
            first = (await conn.execute(failing)).scalar_one_or_none()
        return FailureStreak(int(count or 0), streak_start(_maybe(first), _maybe(success), now))

    async def deliveries(
        self, tenant_id: str, webhook_id: str, *, limit: int, before: int | None
    ) -> list[DeliveryRecord]:
        statement = (
            select(deliveries, events.c.type)
            .select_from(
                deliveries.join(
                    events,
                    and_(
                        events.c.tenant_id == deliveries.c.tenant_id,
                        events.c.seq == deliveries.c.seq,
                    ),
                )
            )
            .where(deliveries.c.tenant_id == tenant_id, deliveries.c.webhook_id == webhook_id)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            statement = statement.where(deliveries.c.id < before)
        rows = await read_all(self.engine, statement)
        return [
            DeliveryRecord(
                id=int(r.id),
                seq=int(r.seq),
                message_id=r.message_id,
                type=r.type,
                entity_key=r.entity_key,
                state=r.state,
                attempts=int(r.attempts),
                last_status=r.last_status,
                last_error=r.last_error,
                next_attempt_at=_aware(r.next_attempt_at) if r.state == "pending" else None,
                created_at=_aware(r.created_at),
                delivered_at=_maybe(r.delivered_at),
            )
            for r in rows
        ]

    async def replay(
        self, tenant_id: str, webhook_id: str, *, from_seq: int, now: datetime
    ) -> int | None:
        queued = 0
        async with self.engine.begin() as conn:
            hook = (
                await conn.execute(
                    select(webhooks.c.event_types).where(_webhook(tenant_id, webhook_id))
                )
            ).first()
            if hook is None:
                return None
            wanted: Sequence[str] = list(hook.event_types or [])
            after = from_seq - 1
            while True:
                rows = (
                    await conn.execute(
                        select(
                            events.c.seq,
                            events.c.type,
                            events.c.kind,
                            events.c.entity_id,
                            events.c.message_id,
                        )
                        .where(events.c.tenant_id == tenant_id, events.c.seq > after)
                        .order_by(events.c.seq)
                        .limit(_REPLAY_BATCH)
                    )
                ).all()
                if not rows:
                    break
                after = int(rows[-1].seq)
                outbox = [
                    {
                        "tenant_id": tenant_id,
                        "webhook_id": webhook_id,
                        "seq": int(r.seq),
                        "message_id": r.message_id,
                        "entity_key": f"{r.kind}:{r.entity_id}",
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for r in rows
                    if matches(list(wanted), r.type)
                ]
                if outbox:
                    await conn.execute(deliveries.insert(), outbox)
                    queued += len(outbox)
            if queued:
                await event_log.queued(conn, tenant_id)
        return queued
