"""One running deployment: the store, the vault, the tenants' upstream connections, and the use
cases over them, ready for the API (``carebridge.api.main``) or a test to serve."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.connectors.carecloud.throttle import AimdThrottle
from carebridge.domain.urls import ALLOW_ENV, UrlPolicy
from carebridge.errors import ConfigError
from carebridge.events.webhooks import Deliverer, DeliveryPolicy, Resolver, resolve, webhook_client
from carebridge.services.admin import SHELL, Admin, TenantSpec
from carebridge.services.live import Backend, Live
from carebridge.services.records import Principal
from carebridge.services.sessions import Sessions
from carebridge.services.sync import Syncs
from carebridge.services.webhooks import Webhooks
from carebridge.store import migrate
from carebridge.store.adapters import (
    SqlAudit,
    SqlEvents,
    SqlIdempotency,
    SqlKeys,
    SqlLedger,
    SqlRecords,
    SqlWriteJournal,
)
from carebridge.store.engine import Transactions, create_engine
from carebridge.store.events import SqlAnnouncer, wake_on_commit
from carebridge.store.people import SqlPeople, totp_source
from carebridge.store.sync_state import SqlSyncStore
from carebridge.store.tenants import tenant_ids
from carebridge.store.vault import KeyRing, Vault
from carebridge.store.webhooks import LEASE as DELIVERY_LEASE
from carebridge.store.webhooks import SqlWebhooks
from carebridge.sync import engine as sync_engine
from carebridge.sync.feed import FEED_INTERVAL, ChangeFeed
from carebridge.wiring.admin import admin_over
from carebridge.wiring.carecloud import TenantUpstreams


def _now() -> datetime:
    return datetime.now(UTC)


def webhook_urls(environ: Mapping[str, str] | None = None) -> UrlPolicy:
    """Where webhooks may go: public https hosts, plus the development allow-list of
    ``CAREBRIDGE_WEBHOOK_ALLOW`` (comma-separated host names, addresses and CIDRs, which may
    also use http). ``carebridge run`` sets it to loopback.

    Raises:
        ConfigError: the setting names something that is neither a host nor a network.
    """
    text = (os.environ if environ is None else environ).get(ALLOW_ENV)
    try:
        return UrlPolicy.parse(text)
    except ValueError as err:
        raise ConfigError(str(err)) from None


LEASE_ENV = "CAREBRIDGE_SYNC_LEASE_SECONDS"


def sync_lease(environ: Mapping[str, str] | None = None) -> timedelta:
    """How long a sync's lease on a stream outlives its last renewal: how long a stream stays
    blocked after a sync is killed with ``kill -9`` (``CAREBRIDGE_SYNC_LEASE_SECONDS``, 10 to
    3600; two minutes by default). Renewals come every third of it, so a page read slower than
    that loses the lease (and saves nothing) rather than overlap another sync.

    Raises:
        ConfigError: the setting is not a whole number of seconds from 10 to 3600.
    """
    text = (os.environ if environ is None else environ).get(LEASE_ENV)
    if text is None or not text.strip():
        return sync_engine.LEASE_TTL
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if not 10 <= seconds <= 3600:
        raise ConfigError(f"{LEASE_ENV} must be a whole number of seconds from 10 to 3600")
    return timedelta(seconds=seconds)


DELIVERY_LEASE_ENV = "CAREBRIDGE_DELIVERY_LEASE_SECONDS"


def delivery_lease(environ: Mapping[str, str] | None = None) -> timedelta:
    """How long a claimed webhook delivery is held by the loop that claimed it: how long the
    deliveries a process killed mid-round (``kill -9``) had claimed wait before another loop
    sends them (``CAREBRIDGE_DELIVERY_LEASE_SECONDS``, 10 to 3600; two minutes by default, far
    above an attempt's 5 s timeout).

    Raises:
        ConfigError: the setting is not a whole number of seconds from 10 to 3600.
    """
    text = (os.environ if environ is None else environ).get(DELIVERY_LEASE_ENV)
    if text is None or not text.strip():
        return DELIVERY_LEASE
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if not 10 <= seconds <= 3600:
        raise ConfigError(f"{DELIVERY_LEASE_ENV} must be a whole number of seconds from 10 to 3600")
    return timedelta(seconds=seconds)


FEED_ENV = "CAREBRIDGE_FEED_INTERVAL"


def feed_interval(environ: Mapping[str, str] | None = None) -> float:
    """Seconds between two polls of each tenant's change feed (``CAREBRIDGE_FEED_INTERVAL``,
    0 turns the feed off, else 0.5 to 3600; 2 by default).

    Raises:
        ConfigError: the setting is not a number of seconds in that range.
    """
    text = (os.environ if environ is None else environ).get(FEED_ENV)
    if text is None or not text.strip():
        return FEED_INTERVAL
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if seconds != 0 and not 0.5 <= seconds <= 3600:
        raise ConfigError(f"{FEED_ENV} must be 0 (off) or a number of seconds from 0.5 to 3600")
    return seconds


@dataclass
class Deployment:
    """Everything one API process serves from."""

    engine: AsyncEngine
    vault: Vault
    records: SqlRecords
    live: Live
    keys: SqlKeys
    audit: SqlAudit
    events: SqlEvents
    ledger: SqlLedger
    sessions: Sessions
    upstreams: TenantUpstreams
    syncs: Syncs
    clock: Callable[[], datetime]
    webhooks: SqlWebhooks
    subscriptions: Webhooks
    deliverer: Deliverer
    admin: Admin
    urls: UrlPolicy = field(default_factory=UrlPolicy)  # where webhooks may go
    resolver: Resolver = resolve  # how a webhook URL's host is resolved (at registration too)
    lease: timedelta = sync_engine.LEASE_TTL  # a stream's sync lease (CAREBRIDGE_SYNC_LEASE_...)
    feed: ChangeFeed | None = None  # the change feed (CAREBRIDGE_FEED_INTERVAL; None: off)

    async def session_principal(self, token: str) -> Principal | None:
        """The principal of a session token from ``POST /authenticate``."""
        return await self.sessions.principal(token)

    async def onboard(
        self,
        *,
        tenant_id: str,
        name: str,
        upstream: str,
        settings: Mapping[str, Any],
        secrets: Mapping[str, str],
    ) -> None:
        """Add a tenant whose profile is complete; its secrets are sealed before they are
        stored (the administration use case, as the host's operator)."""
        await self.admin.onboard(SHELL, TenantSpec(tenant_id, name, upstream, settings, secrets))

    async def sync(
        self,
        *,
        tenant_id: str,
        streams: list[str] | None = None,
        reconcile: timedelta | None = None,
        holder: str | None = None,
        supersedes: str | None = None,
    ) -> dict[str, Any]:
        """Sync a tenant's streams now; returns the report as JSON (``POST /sync``)."""
        report = await self.sync_report(
            tenant_id, streams, reconcile=reconcile, holder=holder, supersedes=supersedes
        )
        return report.as_json()

    async def sync_report(
        self,
        tenant_id: str,
        streams: list[str] | None = None,
        *,
        reconcile: timedelta | None = None,
        progress: sync_engine.Progress | None = None,
        holder: str | None = None,
        supersedes: str | None = None,
    ) -> sync_engine.SyncReport:
        """Sync a tenant's streams now (:meth:`carebridge.services.sync.Syncs.run`)."""
        return await self.syncs.run(
            tenant_id,
            streams,
            reconcile=reconcile,
            progress=progress,
            holder=holder,
            supersedes=supersedes,
        )

    async def aclose(self) -> None:
        """Close the upstream connections, the webhook client and the store."""
        await self.deliverer.http.aclose()
        await self.upstreams.aclose()
        Transactions.of(self.engine).dispose()
        await self.engine.dispose()


async def open_deployment(
    url: str,
    ring: KeyRing,
    *,
    clock: Callable[[], datetime] = _now,
    transport: httpx.AsyncBaseTransport | None = None,
    throttle: Callable[[], AimdThrottle] | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    webhook_allow: UrlPolicy | None = None,
) -> Deployment:
    """Migrate the store at ``url`` and assemble the use cases over it.

    Args:
        transport: how upstream requests travel (tests pass the sandbox's ASGI transport).
        throttle: makes each tenant's throttle (tests pass one on a fake clock).
        webhook_transport: how webhook deliveries travel (default: the network, through the
            URL policy's guarded client).
        webhook_allow: where webhooks may go (default: :func:`webhook_urls` of the environment).
    """
    urls = webhook_urls() if webhook_allow is None else webhook_allow
    await anyio.to_thread.run_sync(migrate.upgrade, url)
    engine = create_engine(url)
    vault = Vault(ring)
    records = SqlRecords(engine)
    audit = SqlAudit(engine, vault)
    ledger = SqlLedger(engine)
    upstreams = TenantUpstreams(engine, vault, clock=clock, transport=transport, throttle=throttle)
    live = Live(
        records,
        audit,
        Backend(upstreams, records, SqlIdempotency(engine), ledger, SqlWriteJournal(engine, audit)),
        clock=clock,
    )
    sessions = Sessions(SqlPeople(engine), totp_source(engine, vault), clock=clock)
    hooks = SqlWebhooks(engine, vault, lease=delivery_lease())
    policy = DeliveryPolicy()
    deliverer = Deliverer(
        hooks,
        webhook_client(urls, timeout=policy.timeout)
        if webhook_transport is None
        else httpx.AsyncClient(
            timeout=policy.timeout, follow_redirects=False, transport=webhook_transport
        ),
        clock,
        policy=policy,
        urls=urls,
    )
    wake_on_commit(engine, deliverer.wake.set)  # queued deliveries wake this process's loop
    lease = sync_lease()
    every = feed_interval()
    feed = ChangeFeed(SqlSyncStore(engine), upstreams, clock=clock, interval=every)
    return Deployment(
        engine=engine,
        vault=vault,
        records=records,
        live=live,
        keys=SqlKeys(engine),
        audit=audit,
        events=SqlEvents(engine),
        ledger=ledger,
        sessions=sessions,
        upstreams=upstreams,
        syncs=Syncs(
            SqlSyncStore(engine),
            upstreams,
            records,
            SqlAnnouncer(engine),
            partial(tenant_ids, engine),
            clock=clock,
            lease=lease,
        ),
        clock=clock,
        webhooks=hooks,
        subscriptions=Webhooks(hooks, clock, urls=urls, resolver=resolve),
        deliverer=deliverer,
        admin=admin_over(engine, vault, clock=clock),
        urls=urls,
        lease=lease,
        feed=feed if every > 0 else None,
    )
