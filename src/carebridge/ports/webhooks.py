"""The port of webhook subscriptions and their delivery outbox.

::

    WebhookStore
    ├── subscriptions  create, list, get, delete (per tenant); disable with a webhook.disabled event
    ├── secrets        the current signing secret, and the previous one during a rotation overlap
    ├── outbox         due deliveries (in per-entity order), delivered, failed (retry or dead)
    └── log            a subscription's deliveries, newest first; replay from a seq

Every method but :meth:`WebhookStore.due` takes the tenant and filters by it. ``due`` is the
delivery worker's scan over every tenant; each :class:`DueDelivery` names its tenant, and the
worker passes it back on every write.

Ordering contract of :meth:`WebhookStore.due`: a pending delivery is due when its
``next_attempt_at`` has come **and** no delivery of the same subscription and entity with an
earlier seq is still pending (retries included). A ``dead`` delivery does not block the ones
after it: once the retry budget is spent the receiver learns of the later changes anyway (each
carries the full diff, and ``GET /events`` or a replay fills the gap), instead of one entity
being frozen forever.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from carebridge.domain.urls import IPAddress

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""Resolves a host name and port to the addresses to connect to, in order."""

DeliveryState = Literal["pending", "delivered", "dead"]
SubscriptionState = Literal["enabled", "disabled"]


@dataclass(frozen=True)
class Subscription:
    """A webhook subscription as stored (never its secrets)."""

    id: str
    tenant_id: str
    url: str
    event_types: tuple[str, ...]  # () = every type
    scopes: frozenset[str]  # the creating key's: deliveries are filtered by them
    state: SubscriptionState
    consecutive_failures: int
    previous_secret_expires_at: datetime | None
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class SigningSecrets:
    """The secrets a delivery is signed with: the current one, and the previous one while a
    rotation's overlap lasts (``None`` otherwise)."""

    current: str
    previous: str | None


@dataclass(frozen=True)
class DueDelivery:
    """A delivery to attempt now, with its event (the JSON of ``GET /events``)."""

    id: int
    tenant_id: str
    webhook_id: str
    url: str
    seq: int
    message_id: str  # the webhook-id header: the same for every retry and replay
    entity_key: str  # kind:id, the ordering key
    attempts: int  # attempts made before this one
    created_at: datetime  # when it was queued: the retry budget runs from here
    event: dict[str, Any]  # whole: the deliverer filters it by ``scopes``
    scopes: frozenset[str] = frozenset()  # the subscription's (none: every record redacted)


@dataclass(frozen=True)
class DeliveryRecord:
    """One line of a subscription's delivery log."""

    id: int
    seq: int
    message_id: str
    type: str
    entity_key: str
    state: DeliveryState
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None  # None once delivered or dead
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class FailureStreak:
    """A subscription's run of failed attempts since its last success."""

    count: int
    since: datetime  # the start of the run (see ``WebhookStore.failed``)


class WebhookStore(Protocol):
    """Subscriptions, their signing secrets and their delivery outbox."""

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
        """A new enabled subscription, its secret sealed in the vault (one transaction).
        ``scopes`` are the creating key's: deliveries show what they may read (none: every
        event about a record goes out redacted, see ``domain.event_scopes``)."""
        ...

    async def subscriptions(self, tenant_id: str) -> list[Subscription]:
        """The tenant's subscriptions, oldest first."""
        ...

    async def get(self, tenant_id: str, webhook_id: str) -> Subscription | None: ...

    async def delete(self, tenant_id: str, webhook_id: str) -> bool:
        """Remove a subscription, its deliveries and its secrets; False if it is not the
        tenant's."""
        ...

    async def rotate(
        self,
        tenant_id: str,
        webhook_id: str,
        *,
        secret: str,
        overlap_until: datetime,
        now: datetime,
    ) -> bool:
        """Make ``secret`` current; the old current one stays valid until ``overlap_until``
        (a second rotation within the overlap drops the oldest secret at once). False if the
        subscription is not the tenant's."""
        ...

    async def secrets(
        self, tenant_id: str, webhook_id: str, *, now: datetime
    ) -> SigningSecrets | None:
        """The signing secrets valid at ``now`` (None if the subscription is gone)."""
        ...

    async def due(self, *, now: datetime, limit: int) -> list[DueDelivery]:
        """Deliveries of enabled subscriptions to attempt at ``now``, at most one per
        (subscription, entity), lowest seq first (see the module's ordering contract)."""
        ...

    async def delivered(
        self, tenant_id: str, delivery_id: int, *, status: int, now: datetime
    ) -> None:
        """Record a success; the subscription's failure streak restarts."""
        ...

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
        """Record a failed attempt: retry at ``retry_at``, or dead when it is None. Returns the
        subscription's failure streak after it.

        ``since`` is the start of the streak: the oldest undelivered delivery that failed after
        the last success (its queueing time, which the worker reaches promptly), and never
        earlier than that success.
        """
        ...

    async def disable(self, tenant_id: str, webhook_id: str, *, reason: str, now: datetime) -> bool:
        """Disable a subscription and record a ``webhook.disabled`` event, in one transaction;
        False if it was not enabled."""
        ...

    async def deliveries(
        self, tenant_id: str, webhook_id: str, *, limit: int, before: int | None
    ) -> list[DeliveryRecord]:
        """The subscription's delivery log, newest first; ``before`` is a delivery id (paging)."""
        ...

    async def replay(
        self, tenant_id: str, webhook_id: str, *, from_seq: int, now: datetime
    ) -> int | None:
        """Queue a new delivery (with the event's stable message id) for every event from
        ``from_seq`` on that the subscription takes; returns how many (None if the subscription
        is not the tenant's)."""
        ...
