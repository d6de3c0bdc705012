"""Webhook subscriptions: subscribe, list, read, unsubscribe, rotate the signing secret, read
the delivery log, replay from a seq.

Scopes ``webhook.read`` and ``webhook.write``; another tenant's subscription is
:class:`NotFound`. A subscription hears only the event types the creating key's scopes may read
(:class:`Forbidden` names the scope a type needs); no types, or ``*``, means every type the key
may read and is stored as that, and the key's scopes are stored with it: deliveries carry events
filtered by them, like ``GET /events`` (``domain.event_scopes``).

Where a subscription may point (SSRF): the deployment's :class:`~carebridge.domain.urls.UrlPolicy`
(public ``https`` hosts, unless allow-listed); a host that resolves to a non-public address is
refused at registration when it can be looked up (:class:`UrlRefused`), and each delivery checks
again where it connects. Sending, signing and the delivery policy are not here: see
``events.webhooks`` and ``domain.delivery``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio

from carebridge.domain.delivery import new_secret
from carebridge.domain.event_scopes import readable_types, unreadable
from carebridge.domain.urls import UrlPolicy
from carebridge.errors import BadRequest, Forbidden, NotFound
from carebridge.ports.webhooks import DeliveryRecord, Resolver, Subscription, WebhookStore
from carebridge.services.records import Principal

__all__ = [
    "Created",
    "DeliveryPage",
    "DeliveryRecord",
    "Resolver",
    "Rotated",
    "Subscription",
    "WebhookStore",
    "Webhooks",
    "subscribed_types",
]

RESOLVE_SECONDS = 3.0  # the registration's look-up of the host; each delivery checks again
READ = "webhook.read"
WRITE = "webhook.write"


@dataclass(frozen=True)
class Created:
    """A new subscription, and its signing secret (shown once)."""

    subscription: Subscription
    secret: str


@dataclass(frozen=True)
class Rotated:
    """A rotated subscription's new secret (shown once), and until when the old one stays
    valid."""

    webhook_id: str
    secret: str
    previous_secret_expires_at: datetime


@dataclass(frozen=True)
class DeliveryPage:
    """A page of a subscription's delivery log, newest first, and the next page's cursor."""

    lines: list[DeliveryRecord]
    next_cursor: str | None


def subscribed_types(principal: Principal, wanted: Sequence[str]) -> tuple[str, ...]:
    """The filter a subscription is stored with: what was asked, if the key may read all of it;
    every readable type for none or ``*``.

    Raises:
        Forbidden: the key may not read a type asked for (the message names the scope).
    """
    if not wanted or "*" in wanted:
        return readable_types(principal.scopes)
    missing = unreadable(principal.scopes, wanted)
    if missing:
        needs = ", ".join(f"{scope} for {kind}" for kind, scope in sorted(missing.items()))
        raise Forbidden(f"this key lacks the scope {needs}")
    return tuple(wanted)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Webhooks:
    """The subscription use cases over a :class:`WebhookStore`.

    Args:
        urls: where subscriptions may point (default: public https hosts only).
        resolver: looks a URL's host up at registration, to refuse one that resolves to a
            private address early (None: the delivery's check alone).
    """

    store: WebhookStore
    clock: Callable[[], datetime] = _now
    urls: UrlPolicy = field(default_factory=UrlPolicy)
    resolver: Resolver | None = None
    secrets: Callable[[], str] = new_secret

    async def check_url(self, url: str) -> None:
        """Refuse a URL the policy refuses, or whose host resolves (now) to a non-public
        address; a host that does not resolve now passes (each delivery checks again).

        Raises:
            UrlRefused: the URL, or an address its host resolves to, is not allowed.
        """
        target = self.urls.check_url(url)
        if self.resolver is None or target.address is not None or target.listed:
            return
        try:
            with anyio.fail_after(RESOLVE_SECONDS):
                addresses = await self.resolver(target.host, target.port)
        except (OSError, TimeoutError):
            return  # not resolvable now: each delivery resolves and checks it again
        for address in addresses:
            self.urls.check_address(address)

    async def _owned(self, tenant_id: str, webhook_id: str) -> Subscription:
        hook = await self.store.get(tenant_id, webhook_id)
        if hook is None:
            raise NotFound(f"no webhook {webhook_id}")
        return hook

    async def create(self, principal: Principal, url: str, event_types: Sequence[str]) -> Created:
        """Subscribe ``url`` to ``event_types`` (``webhook.write``), with the caller's scopes.

        Raises:
            Forbidden: the caller lacks ``webhook.write``, or may not read a type.
            UrlRefused: where the URL points is not allowed.
        """
        principal.require(WRITE)
        wanted = subscribed_types(principal, event_types)
        await self.check_url(url)
        secret = self.secrets()
        hook = await self.store.create(
            principal.tenant_id,
            url=url,
            event_types=wanted,
            secret=secret,
            now=self.clock(),
            scopes=principal.scopes,
        )
        return Created(hook, secret)

    async def subscriptions(self, principal: Principal) -> list[Subscription]:
        """The caller's tenant's subscriptions, oldest first (``webhook.read``)."""
        principal.require(READ)
        return await self.store.subscriptions(principal.tenant_id)

    async def get(self, principal: Principal, webhook_id: str) -> Subscription:
        """One of the caller's tenant's subscriptions (``webhook.read``).

        Raises:
            NotFound: no such subscription in the tenant.
        """
        principal.require(READ)
        return await self._owned(principal.tenant_id, webhook_id)

    async def delete(self, principal: Principal, webhook_id: str) -> None:
        """Unsubscribe: the subscription, its deliveries and its secrets go (``webhook.write``).

        Raises:
            NotFound: no such subscription in the tenant.
        """
        principal.require(WRITE)
        if not await self.store.delete(principal.tenant_id, webhook_id):
            raise NotFound(f"no webhook {webhook_id}")

    async def rotate(self, principal: Principal, webhook_id: str, overlap: timedelta) -> Rotated:
        """A new signing secret; the old one stays valid for ``overlap`` (``webhook.write``).

        Raises:
            NotFound: no such subscription in the tenant.
        """
        principal.require(WRITE)
        secret = self.secrets()
        now = self.clock()
        until = now + overlap
        if not await self.store.rotate(
            principal.tenant_id, webhook_id, secret=secret, overlap_until=until, now=now
        ):
            raise NotFound(f"no webhook {webhook_id}")
        return Rotated(webhook_id, secret, until)

    async def deliveries(
        self, principal: Principal, webhook_id: str, *, limit: int, cursor: str | None
    ) -> DeliveryPage:
        """A subscription's delivery log, newest first, from ``cursor`` (``webhook.read``).

        Raises:
            NotFound: no such subscription in the tenant.
            BadRequest: a cursor this API did not give.
        """
        principal.require(READ)
        await self._owned(principal.tenant_id, webhook_id)
        before = None
        if cursor is not None:
            if not cursor.isdigit():
                raise BadRequest("the cursor is not one this API gave", field="cursor")
            before = int(cursor)
        lines = await self.store.deliveries(
            principal.tenant_id, webhook_id, limit=limit, before=before
        )
        more = len(lines) == limit
        return DeliveryPage(lines, str(lines[-1].id) if lines and more else None)

    async def replay(self, principal: Principal, webhook_id: str, from_seq: int) -> int:
        """Queue again every event from ``from_seq`` on that the subscription takes, with their
        first ``webhook-id`` (``webhook.write``); returns how many.

        Raises:
            NotFound: no such subscription in the tenant.
        """
        principal.require(WRITE)
        queued = await self.store.replay(
            principal.tenant_id, webhook_id, from_seq=from_seq, now=self.clock()
        )
        if queued is None:
            raise NotFound(f"no webhook {webhook_id}")
        return queued
