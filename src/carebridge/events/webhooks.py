"""Webhook delivery: the outbox worker that signs with Standard Webhooks, retries, dead-letters
and disables subscriptions that keep failing.

Each delivery is a POST of ``{"id", "type", "timestamp", "data"}`` (``data`` is the event as
``GET /events`` answers it) with the Standard Webhooks headers ``webhook-id`` (the event's
message id: the same for every retry and replay, so receivers deduplicate on it),
``webhook-timestamp`` and ``webhook-signature``. During a secret rotation's overlap the
signature header carries both signatures, space-separated, and a receiver holding either secret
verifies.

A 2xx answer within ``policy.timeout`` is a success; anything else (another status, a timeout,
a connection error) is a failed attempt. When it is retried, when the delivery is dead and when a
failure streak disables the subscription (with a ``webhook.disabled`` event) are the policy's
pure decisions in :mod:`carebridge.domain.delivery`; this module sends, and records outcomes.

Two clocks: ``clock`` schedules (retries, give-up, disable, secret overlap) and is injected;
``wall`` stamps ``webhook-timestamp``, which receivers check against their own wall clock
(Standard Webhooks allows five minutes), so it is always real time in production.

Logs carry ids, attempt counts and status codes only: never payloads (PHI) or URLs (their
query strings may hold tokens).

Where deliveries may go (SSRF): every attempt first checks its URL with the deployment's
:class:`~carebridge.domain.urls.UrlPolicy`, and the client of :func:`webhook_client` resolves
each host itself, checks every address it resolves to, and connects to a checked address (the
TLS server name and ``Host`` stay the URL's), so a name that resolves to a private address, or
rebinds to one between the check and the connection, is refused. Redirects are not followed.
A failed attempt records only ``refused by policy``, ``connection failed`` or the receiver's
status: nothing that tells an open port from a closed one.

Payloads are filtered by the subscription's scopes (``domain.event_scopes``), like
``GET /events``.

**When the loop runs** (:meth:`Deliverer.serve`): it drains what is due, then waits on a
:class:`Wakeup`, which the store sets when a transaction that queued deliveries commits (in
this process, and on PostgreSQL in any process, through ``LISTEN``/``NOTIFY``), until the
earliest retry it scheduled falls due, or at most ``DeliveryPolicy.fallback_poll`` seconds (10):
the fallback that finds what another process queued on SQLite, a notification missed while the
listener reconnected, and a claim whose loop died.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import httpcore
import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from carebridge.domain.delivery import SECRET_BYTES as SECRET_BYTES
from carebridge.domain.delivery import SECRET_PREFIX as SECRET_PREFIX
from carebridge.domain.delivery import DeliveryPolicy as DeliveryPolicy
from carebridge.domain.delivery import backoff as backoff
from carebridge.domain.delivery import disable_reason, retry_at
from carebridge.domain.delivery import new_secret as new_secret
from carebridge.domain.event_scopes import visible
from carebridge.domain.urls import IPAddress, UrlPolicy, UrlRefused, parse_address
from carebridge.errors import WebhookError
from carebridge.ports.webhooks import DueDelivery, SigningSecrets, WebhookStore
from carebridge.ports.webhooks import Resolver as Resolver

logger = logging.getLogger("carebridge.webhooks")

USER_AGENT = "carebridge-webhooks/1"
REFUSED = "refused by policy"
FAILED = "connection failed"


def body_of(delivery: DueDelivery) -> str:
    """The JSON body of a delivery (the same bytes on every retry): its event as the
    subscription's scopes may see it."""
    event = visible(delivery.event, delivery.scopes)
    return orjson.dumps(
        {
            "id": delivery.message_id,
            "type": event["type"],
            "timestamp": event["detected_at"],
            "data": event,
        }
    ).decode()


def signature(keys: SigningSecrets, message_id: str, at: datetime, body: str) -> str:
    """The ``webhook-signature`` header: the current secret's, then the previous one's during
    a rotation overlap, space-separated."""
    valid = [keys.current] + ([keys.previous] if keys.previous else [])
    return " ".join(Webhook(secret).sign(message_id, at, body) for secret in valid)


def headers_for(keys: SigningSecrets, message_id: str, at: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature(keys, message_id, at, body),
    }


def _wall() -> datetime:
    return datetime.now(UTC)


class RedactUrls(logging.Filter):
    """Strips the query string and user info from the URLs httpx logs at INFO
    (``HTTP Request: POST <url> ...``): a receiver's URL may carry a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                a.copy_with(query=None, fragment=None, username=None, password=None)
                if isinstance(a, httpx.URL)
                else a
                for a in record.args
            )
        return True


def redact_httpx_logs() -> None:
    """Install :class:`RedactUrls` on the ``httpx`` logger (once)."""
    target = logging.getLogger("httpx")
    if not any(isinstance(f, RedactUrls) for f in target.filters):
        target.addFilter(RedactUrls())


# --- where deliveries may connect ---------------------------------------------------------------


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the system resolver), in its order, once each."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


class PolicyRefused(httpcore.ConnectError, WebhookError):
    """A connection the URL policy refused: the host is, or resolves to, no public address."""


async def checked_addresses(
    urls: UrlPolicy, resolver: Resolver, host: str, port: int
) -> list[IPAddress]:
    """The addresses of ``host`` a delivery may connect to: all of them, each checked.

    Raises:
        UrlRefused: one of them is not public (and the host is not allow-listed), or there are
            none.
    """
    literal = parse_address(host.strip("[]"))
    addresses = [literal] if literal is not None else await resolver(host, port)
    if not addresses:
        raise UrlRefused("the url's host resolves to no address")
    listed = urls.listed(host)
    for address in addresses:
        urls.check_address(address, listed=listed)
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves a host itself, checks every address with the
    URL policy, and connects only to a checked address, so DNS cannot rebind in between."""

    def __init__(
        self,
        urls: UrlPolicy,
        resolver: Resolver = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.urls = urls
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await checked_addresses(self.urls, self.resolver, host, port)
        except UrlRefused as err:
            raise PolicyRefused(str(err)) from None
        except OSError:
            raise httpcore.ConnectError(FAILED) from None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError):
                continue
        raise httpcore.ConnectError(FAILED)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        del path, timeout, socket_options
        raise PolicyRefused("webhooks do not go to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a :class:`GuardedBackend` (no proxy, no unix socket)."""

    def __init__(self, urls: UrlPolicy, resolver: Resolver = resolve) -> None:
        super().__init__(trust_env=False, retries=0)
        limits = httpx.Limits()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(urls, resolver),
        )


def webhook_client(
    urls: UrlPolicy, *, timeout: float, resolver: Resolver = resolve
) -> httpx.AsyncClient:
    """The client deliveries go out with: guarded by ``urls``, no redirects, no proxies."""
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        transport=GuardedTransport(urls, resolver),
    )


class Wakeup:
    """A wake-up for a waiting loop: :meth:`set` from any thread or callback (a pool's
    check-in, a ``NOTIFY`` listener); :meth:`wait` returns once it is set, or after a timeout.
    It stays set until the waiter clears it, so a wake-up during a pass is not lost."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.count = 0
        """How many times it was set (for tests and the bench)."""

    def set(self) -> None:
        self.count += 1
        loop = self._loop
        if loop is None or loop.is_closed():
            self._event.set()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._event.set()
        else:
            loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set (True) or ``timeout`` seconds pass (False)."""
        self._loop = asyncio.get_running_loop()
        with anyio.move_on_after(timeout):
            await self._event.wait()
            return True
        return False


@dataclass(frozen=True)
class Outcome:
    """One attempt's result."""

    ok: bool
    status: int | None
    error: str


@dataclass
class Deliverer:
    """Delivers due webhook deliveries: concurrently across entities, in seq order within one
    (the store hands out one delivery per subscription and entity at a time)."""

    store: WebhookStore
    http: httpx.AsyncClient
    clock: Callable[[], datetime]
    rng: random.Random = field(default_factory=random.Random)
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    wall: Callable[[], datetime] = _wall
    urls: UrlPolicy = field(default_factory=UrlPolicy)  # public https only, unless allow-listed
    wake: Wakeup = field(default_factory=Wakeup)
    """Set when deliveries are queued (the store's signal); :meth:`serve` waits on it."""
    _next_retry: datetime | None = None

    def __post_init__(self) -> None:
        redact_httpx_logs()

    async def run_once(self, *, limit: int | None = None) -> int:
        """Attempt every delivery due now (at most ``limit``); returns how many were attempted."""
        with anyio.CancelScope(shield=True):
            due = await self.store.due(now=self.clock(), limit=limit or self.policy.batch)
        if not due:
            return 0
        # the store's contract gives one per (subscription, entity); a chain guards it anyway
        chains: dict[tuple[str, str], list[DueDelivery]] = {}
        for delivery in due:
            chains.setdefault((delivery.webhook_id, delivery.entity_key), []).append(delivery)
        keys: dict[str, SigningSecrets | None] = {}
        limiter = anyio.CapacityLimiter(self.policy.concurrency)

        async def chain(items: list[DueDelivery]) -> None:
            async with limiter:
                for item in items:
                    await self._deliver(item, keys)

        async with anyio.create_task_group() as group:
            for items in chains.values():
                group.start_soon(chain, items)
        return len(due)

    async def drain(self, *, max_rounds: int = 1000) -> int:
        """:meth:`run_once` until nothing is due now; returns the attempts made."""
        total = 0
        for _ in range(max_rounds):
            attempted = await self.run_once()
            if not attempted:
                break
            total += attempted
        return total

    async def serve(
        self, *, interval: float | None = None, stop: anyio.Event | None = None
    ) -> None:
        """Drain, then wait for :attr:`wake` (a new delivery queued), the earliest retry this
        loop scheduled, or ``interval`` seconds (the fallback poll; default
        ``policy.fallback_poll``); repeat until ``stop`` is set (a background task). A pass
        in progress finishes first, so no attempt is cut off mid-write."""
        stop = stop or anyio.Event()
        fallback = self.policy.fallback_poll if interval is None else interval

        async def stopper() -> None:
            await stop.wait()
            self.wake.set()

        async with anyio.create_task_group() as group:
            group.start_soon(stopper)
            while not stop.is_set():
                self.wake.clear()
                self._next_retry = None
                try:
                    await self.drain()
                except Exception as err:  # noqa: BLE001 - the loop outlives one bad pass
                    logger.error("webhook delivery pass failed: %s", type(err).__name__)
                if stop.is_set():
                    break
                await self.wake.wait(self._pause(fallback))
            group.cancel_scope.cancel()

    def _pause(self, fallback: float) -> float:
        """How long to wait for a wake-up: the fallback poll, or less when a retry this loop
        scheduled falls due sooner."""
        if self._next_retry is None:
            return fallback
        due = (self._next_retry - self.clock()).total_seconds()
        return min(fallback, max(due, 0.0))

    async def _deliver(
        self, delivery: DueDelivery, cache: dict[str, SigningSecrets | None]
    ) -> None:
        if delivery.webhook_id not in cache:
            with anyio.CancelScope(shield=True):
                cache[delivery.webhook_id] = await self.store.secrets(
                    delivery.tenant_id, delivery.webhook_id, now=self.clock()
                )
        keys = cache[delivery.webhook_id]
        if keys is None:  # deleted meanwhile: its deliveries went with it
            return
        outcome = await self._post(delivery, keys)
        # an attempt's result is recorded whole: a shutdown waits for the short write rather
        # than cutting a transaction (and its connection) off mid-way
        with anyio.CancelScope(shield=True):
            await self._record(delivery, outcome)

    async def _record(self, delivery: DueDelivery, outcome: Outcome) -> None:
        now = self.clock()
        attempt = delivery.attempts + 1
        if outcome.ok:
            await self.store.delivered(
                delivery.tenant_id, delivery.id, status=outcome.status or 200, now=now
            )
            logger.info(
                "webhook delivered: delivery=%s webhook=%s message=%s attempt=%d status=%s",
                delivery.id,
                delivery.webhook_id,
                delivery.message_id,
                attempt,
                outcome.status,
            )
            return
        retry = retry_at(now, delivery.created_at, attempt, self.policy, self.rng)
        if retry is not None and (self._next_retry is None or retry < self._next_retry):
            self._next_retry = retry
        streak = await self.store.failed(
            delivery.tenant_id,
            delivery.id,
            status=outcome.status,
            error=outcome.error,
            retry_at=retry,
            now=now,
        )
        logger.warning(
            "webhook %s: delivery=%s webhook=%s message=%s attempt=%d status=%s error=%s",
            "retry scheduled" if retry else "dead",
            delivery.id,
            delivery.webhook_id,
            delivery.message_id,
            attempt,
            outcome.status,
            outcome.error,
        )
        reason = disable_reason(streak.count, streak.since, now, self.policy)
        if reason is not None and await self.store.disable(
            delivery.tenant_id, delivery.webhook_id, reason=reason, now=now
        ):
            logger.warning(
                "webhook disabled: webhook=%s failures=%d", delivery.webhook_id, streak.count
            )

    async def _post(self, delivery: DueDelivery, keys: SigningSecrets) -> Outcome:
        try:
            self.urls.check_url(delivery.url)
        except UrlRefused:
            return Outcome(False, None, REFUSED)
        body = body_of(delivery)
        headers = headers_for(keys, delivery.message_id, self.wall(), body)
        try:
            with anyio.fail_after(self.policy.timeout):
                response = await self.http.post(
                    delivery.url,
                    content=body.encode(),
                    headers=headers,
                    timeout=self.policy.timeout,
                    follow_redirects=False,
                )
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(False, None, FAILED)  # like a refusal: no port-scan oracle
        except httpx.HTTPError as err:
            refused = isinstance(err.__cause__, PolicyRefused)
            return Outcome(False, None, REFUSED if refused else FAILED)
        if response.is_success:
            return Outcome(True, response.status_code, "")
        return Outcome(False, response.status_code, f"status {response.status_code}")
