"""The delivery loop is woken by new deliveries rather than polling for them: a delivery queued
in this process wakes it at once (the store's commit signal), one queued by another process
reaches it through ``NOTIFY`` on PostgreSQL and through the slow fallback poll on SQLite, and a
retry it scheduled shortens its wait to the retry's due time.

The loops here wait with a fallback poll of an hour: a delivery that arrives within the
test's guard (``anyio.fail_after``) can only have been sent because the loop was woken.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tests.support.webhooks import URLS, Endpoint, Receiver, Server

from carebridge.events.webhooks import Deliverer, DeliveryPolicy, webhook_client
from carebridge.ports.events import Announcement
from carebridge.store import migrate
from carebridge.store import tenants as repo
from carebridge.store.engine import create_engine
from carebridge.store.events import SqlAnnouncer, announce, listen, wake_on_commit
from carebridge.store.vault import KeyRing, Vault
from carebridge.store.webhooks import SqlWebhooks
from carebridge.wiring.jobs import conninfo

pytestmark = pytest.mark.anyio

TENANT = "ten_wake"
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
HOUR = 3600.0
APPENDER = Path(__file__).with_name("append_process.py")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Bed:
    url: str
    engine: AsyncEngine
    hooks: SqlWebhooks
    endpoint: Endpoint
    http: httpx.AsyncClient

    def deliverer(self, **policy: float) -> Deliverer:
        return Deliverer(
            self.hooks,
            self.http,
            lambda: NOW,
            random.Random(7),
            DeliveryPolicy(**policy),  # type: ignore[arg-type]
            urls=URLS,
        )

    async def degrade(self, stream: str, engine: AsyncEngine | None = None) -> None:
        """Announce a failing stream: one event, one delivery queued."""
        await SqlAnnouncer(engine or self.engine).announce(
            TENANT,
            [Announcement("integration.degraded", "stream", stream, {"stream": stream})],
            at=NOW,
        )


class Abort(Exception):
    """Rolls a test's transaction back."""


async def _queue_one(conn: AsyncConnection, stream: str) -> None:
    """Log one event (queueing its delivery) in the caller's transaction."""
    await announce(
        conn, TENANT, "integration.degraded", kind="stream", entity_id=stream,
        details={"stream": stream}, at=NOW,
    )  # fmt: skip


async def _rolled_back(engine: AsyncEngine) -> None:
    """Queue one delivery in a transaction that then rolls back."""
    async with engine.begin() as conn:
        await _queue_one(conn, "rolled-back")
        raise Abort


@asynccontextmanager
async def bed(url: str) -> AsyncIterator[Bed]:
    """A migrated store with one tenant subscribed to ``integration.degraded`` at a receiver
    that verifies every request."""
    await anyio.to_thread.run_sync(migrate.upgrade, url)
    engine = create_engine(url)
    vault = Vault(KeyRing.generate())
    await repo.add_tenant(
        engine, vault, tenant_id=TENANT, name=TENANT, upstream="carecloud", settings={},
        secrets={}, now=NOW,
    )  # fmt: skip
    hooks = SqlWebhooks(engine, vault)
    receiver = Receiver()
    server = Server(receiver)
    await server.up()
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    await hooks.create(
        TENANT,
        url=server.url("hook"),
        event_types=("integration.degraded",),
        secret=secret,
        now=NOW,
    )
    endpoint = receiver.endpoints["hook"] = Endpoint([secret])
    http = webhook_client(URLS, timeout=DeliveryPolicy().timeout)
    try:
        yield Bed(url, engine, hooks, endpoint, http)
    finally:
        await http.aclose()
        await server.down()
        await engine.dispose()


class Tally:
    """A wake-up callback that counts its calls; :meth:`reach` waits for a count."""

    def __init__(self, *also: Callable[[], None]) -> None:
        self.count = 0
        self.also = also
        self._changed = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        for call in self.also:
            call()
        self._changed.set()

    async def reach(self, count: int) -> None:
        while self.count < count:
            self._changed.clear()
            await self._changed.wait()


async def _arrivals(endpoint: Endpoint, count: int) -> None:
    endpoint.expected = count
    endpoint.all_in.clear()
    if len(endpoint.arrivals) < count:
        await endpoint.all_in.wait()


async def test_a_delivery_queued_in_this_process_wakes_the_loop_at_once(tmp_path: Path) -> None:
    async with bed(f"sqlite:///{tmp_path / 'store.db'}") as b:
        deliverer = b.deliverer(fallback_poll=HOUR)
        wake_on_commit(b.engine, deliverer.wake.set)
        await b.degrade("patients")  # delivered by the loop's first pass
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: deliverer.serve(stop=stop))
            with anyio.fail_after(10):
                await _arrivals(b.endpoint, 1)
            woken = deliverer.wake.count
            await b.degrade("claims")  # the loop now waits an hour unless woken
            assert deliverer.wake.count == woken + 1
            with anyio.fail_after(10):
                await _arrivals(b.endpoint, 2)
            stop.set()
        assert [a.entity for a in b.endpoint.arrivals] == ["stream:patients", "stream:claims"]
        assert b.endpoint.rejected == 0


async def test_a_rolled_back_transaction_queues_nothing_and_only_wakes_a_pass(
    tmp_path: Path,
) -> None:
    async with bed(f"sqlite:///{tmp_path / 'store.db'}") as b:
        deliverer = b.deliverer(fallback_poll=HOUR)
        wake_on_commit(b.engine, deliverer.wake.set)

        with pytest.raises(Abort):
            await _rolled_back(b.engine)
        assert deliverer.wake.count == 1  # the pool saw the mark: a pass that finds nothing
        assert await deliverer.run_once() == 0


async def test_a_retry_the_loop_scheduled_shortens_its_wait_to_the_retry(tmp_path: Path) -> None:
    async with bed(f"sqlite:///{tmp_path / 'store.db'}") as b:
        b.endpoint.mode = "fail"
        deliverer = b.deliverer(fallback_poll=HOUR)
        await b.degrade("patients")
        assert await deliverer.run_once() == 1
        pause = deliverer._pause(HOUR)
        ceiling = DeliveryPolicy().base.total_seconds()
        assert DeliveryPolicy().floor.total_seconds() <= pause <= ceiling


def _append(url: str, stream: str) -> None:
    """Another carebridge process appends an event (and its delivery), then exits."""
    done = subprocess.run(  # noqa: S603 - this interpreter, our own test script
        [sys.executable, str(APPENDER), url, TENANT, stream],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


async def test_another_processs_delivery_is_sent_by_the_fallback_poll_on_sqlite(
    tmp_path: Path,
) -> None:
    async with bed(f"sqlite:///{tmp_path / 'store.db'}") as b:
        deliverer = b.deliverer(fallback_poll=0.2)
        wake_on_commit(b.engine, deliverer.wake.set)
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: deliverer.serve(stop=stop))
            await anyio.to_thread.run_sync(_append, b.url, "statements")
            woken = deliverer.wake.count
            with anyio.fail_after(10):
                await _arrivals(b.endpoint, 1)
            stop.set()
        # no signal crosses processes on SQLite: the fallback poll found it
        assert woken == 0
        assert [a.entity for a in b.endpoint.arrivals] == ["stream:statements"]


@pytest.mark.postgres
async def test_another_processs_delivery_wakes_the_loop_through_notify(pg_url: str) -> None:
    async with bed(pg_url) as b:
        deliverer = b.deliverer(fallback_poll=HOUR)
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            tally = Tally(deliverer.wake.set)
            group.start_soon(listen, conninfo(pg_url), tally)
            with anyio.fail_after(10):
                await tally.reach(1)  # the listener calls once it listens
            group.start_soon(lambda: deliverer.serve(stop=stop))
            await anyio.to_thread.run_sync(_append, b.url, "payments")
            with anyio.fail_after(10):
                await _arrivals(b.endpoint, 1)
            assert tally.count >= 2
            stop.set()
            group.cancel_scope.cancel()
        assert [a.entity for a in b.endpoint.arrivals] == ["stream:payments"]


@pytest.mark.postgres
async def test_a_commit_on_another_connection_notifies_and_a_rollback_does_not(
    pg_url: str,
) -> None:
    async with bed(pg_url) as b:
        tally = Tally()
        other = create_engine(pg_url)  # a writer with no in-process signal: NOTIFY alone
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(listen, conninfo(pg_url), tally)
                with anyio.fail_after(10):
                    await tally.reach(1)
                with pytest.raises(Abort):
                    await _rolled_back(other)
                await b.degrade("remittances", other)
                with anyio.fail_after(10):
                    await tally.reach(2)
                group.cancel_scope.cancel()
        finally:
            await other.dispose()
        # the rolled-back transaction's NOTIFY was dropped; the commit's arrived
        assert tally.count == 2


def test_the_fallback_poll_is_slow_by_default() -> None:
    assert DeliveryPolicy().fallback_poll >= 5
    assert timedelta(seconds=DeliveryPolicy().fallback_poll) < DeliveryPolicy().give_up_after
