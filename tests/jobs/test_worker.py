"""``carebridge worker`` on PostgreSQL: two worker processes share one tenant, sync it from a
sandbox served over HTTP, and deliver its webhooks to a real receiver, each exactly once and in
order per entity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.support.processes import free_port

from carebridge.cli.worker import conninfo
from carebridge.domain.urls import ALLOW_ENV
from carebridge.events.webhooks import new_secret
from carebridge.jobs.queue import build_app, ensure_schema, nudge_delivery, nudge_sync
from carebridge.store.vault import KeyRing
from carebridge.wiring.api import open_deployment
from carebridge.wiring.carecloud import from_sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
TENANT = "ten_jobs"
STREAMS = ("providers", "patients", "appointments")
FAST_EXPORTS = {"bulk_export_seconds": 0}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Receiver:
    """A real HTTP receiver that verifies every delivery with standardwebhooks."""

    def __init__(self) -> None:
        self.secret = new_secret()
        self.seen: list[tuple[str, str, str]] = []  # (message id, entity key, type), in order
        self.rejected = 0
        self.lock = threading.Lock()

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            payload: Any = Webhook(self.secret).verify(body, dict(request.headers))
        except Exception:  # noqa: BLE001 - a malformed header raises ValueError, not only ours
            with self.lock:
                self.rejected += 1
            return Response(status_code=400)
        data = payload["data"]
        with self.lock:
            self.seen.append(
                (request.headers["webhook-id"], f"{data['kind']}:{data['entity_id']}", data["type"])
            )
        return Response(status_code=204)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    target = Receiver()
    app = Starlette(routes=[Route("/hook", target.hook, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield target, f"http://127.0.0.1:{port}/hook"
    server.should_exit = True
    thread.join(timeout=10)


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo(url)) as conn:
        return list(conn.execute(sql).fetchall())


async def test_two_workers_sync_one_tenant_and_deliver_each_event_once(
    pg_url: str,
    sandbox: str,
    receiver: tuple[Receiver, str],
) -> None:
    target, hook_url = receiver
    # the sandbox's Bulk exports are ready at once: its clock is real, and the encounters
    # stream's export would wait its default 10 s of Retry-After
    httpx.put(f"{sandbox}/_sandbox/settings", json=FAST_EXPORTS).raise_for_status()
    ring = KeyRing.generate()
    deployment = await open_deployment(pg_url, ring)
    try:
        settings, secrets = from_sandbox(httpx.get(f"{sandbox}/_sandbox/credentials").json())
        await deployment.onboard(
            tenant_id=TENANT, name="jobs", upstream="carecloud", settings=settings, secrets=secrets
        )
        await deployment.webhooks.create(
            TENANT,
            url=hook_url,
            event_types=("patient.*", "appointment.*"),
            secret=target.secret,
            now=datetime.now(UTC),
            scopes=frozenset({"patient.read", "appointment.read"}),  # deliveries carry records
        )
    finally:
        await deployment.aclose()

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env["CAREBRIDGE_VAULT_KEY"] = ring.to_text()
    env[ALLOW_ENV] = "127.0.0.1"  # the receiver is local: the development allow-list
    workers = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "carebridge",
            "worker",
            "--processes=2",
            "--concurrency=4",
            f"--db={pg_url}",
        ],
        env=env,
        start_new_session=True,
    )
    queue = build_app(conninfo(pg_url))
    try:
        deadline = time.monotonic() + 150
        while not _rows(pg_url, "SELECT 1 FROM pg_tables WHERE tablename = 'procrastinate_jobs'"):
            assert time.monotonic() < deadline, "the worker never created its queue"
            time.sleep(0.2)
        async with queue.open_async():
            for stream in STREAMS:  # the workers' own schedule may have nudged them already
                await nudge_sync(queue, TENANT, stream)
            peak_workers = 0
            while True:
                assert workers.poll() is None, "the workers exited"
                peak_workers = max(
                    peak_workers, _rows(pg_url, "SELECT COUNT(*) FROM procrastinate_workers")[0][0]
                )
                jobs = _rows(
                    pg_url,
                    "SELECT status, args->>'stream', COUNT(*) FROM procrastinate_jobs "
                    "WHERE task_name = 'carebridge.sync_stream' GROUP BY 1, 2",
                )
                done = {stream for status, stream, _ in jobs if status == "succeeded"}
                busy = [row for row in jobs if row[0] in ("todo", "doing")]
                synced = done >= set(STREAMS) and not busy
                pending = _rows(
                    pg_url, "SELECT COUNT(*) FROM deliveries WHERE state <> 'delivered'"
                )[0][0]
                if synced and pending == 0:
                    break
                assert not [row for row in jobs if row[0] == "failed"], jobs
                assert time.monotonic() < deadline, (jobs, pending)
                await nudge_delivery(queue)
                time.sleep(0.3)
    finally:
        os.killpg(workers.pid, signal.SIGINT)
        try:
            workers.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(workers.pid, signal.SIGKILL)
            workers.wait()

    events = _rows(
        pg_url,
        "SELECT seq, kind || ':' || entity_id, type, message_id FROM events "
        "WHERE type LIKE 'patient.%' OR type LIKE 'appointment.%' ORDER BY seq",
    )
    assert len(events) > 40  # every patient and appointment of the sandbox, created
    assert target.rejected == 0
    ids = [m for m, _, _ in target.seen]
    assert len(ids) == len(set(ids)) == len(events)  # each event once, none twice
    seq_of = {message: seq for seq, _, _, message in events}
    assert set(seq_of) == set(ids)  # the webhook-id is the event's identity
    order: dict[str, list[int]] = {}
    for message, entity, _ in target.seen:
        order.setdefault(entity, []).append(seq_of[message])
    assert all(seqs == sorted(seqs) for seqs in order.values())  # in order per entity
    assert peak_workers >= 2
    stored = _rows(
        pg_url, f"SELECT COUNT(*) FROM entities WHERE tenant_id = '{TENANT}' AND kind = 'patient'"
    )[0][0]
    assert stored == 40


async def test_a_nudge_already_waiting_is_not_queued_twice(pg_url: str) -> None:
    queue = build_app(conninfo(pg_url))
    await ensure_schema(queue)
    async with queue.open_async():
        assert await nudge_sync(queue, TENANT, "claims") is True
        assert await nudge_sync(queue, TENANT, "claims") is False  # one waits: that is enough
        assert await nudge_sync(queue, TENANT, "patients") is True
        assert await nudge_delivery(queue) is True
        assert await nudge_delivery(queue) is False
    waiting = _rows(pg_url, "SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'todo'")
    assert waiting[0][0] == 3
