"""A worker killed with ``kill -9`` mid-job does not jam the queue: its jobs stay ``doing`` (and
hold their locks) only until its heartbeat is stale, then another worker retries them; the
retried sync takes over its dead attempt's lease, and the tenant syncs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import psycopg
import pytest

from carebridge.cli.worker import conninfo
from carebridge.jobs.queue import build_app, nudge_sync
from carebridge.store.vault import KeyRing
from carebridge.wiring.api import open_deployment
from carebridge.wiring.carecloud import from_sandbox

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
TENANT = "ten_jobs"
STALLED_AFTER = 3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo(url)) as conn:
        return list(conn.execute(sql, params).fetchall())


def _worker(url: str, ring: KeyRing) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env["CAREBRIDGE_VAULT_KEY"] = ring.to_text()
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "carebridge",
            "worker",
            "--processes=1",
            "--concurrency=2",
            f"--stalled-after={STALLED_AFTER}",
            f"--db={url}",
        ],
        env=env,
        start_new_session=True,
    )


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGINT)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _until(what: str, check: Any, seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


async def test_a_killed_workers_sync_job_is_retried_and_the_tenant_syncs(
    pg_url: str,
    sandbox: str,
) -> None:
    ring = KeyRing.generate()
    deployment = await open_deployment(pg_url, ring)
    try:
        settings, secrets = from_sandbox(httpx.get(f"{sandbox}/_sandbox/credentials").json())
        await deployment.onboard(
            tenant_id=TENANT, name="jobs", upstream="carecloud", settings=settings, secrets=secrets
        )
    finally:
        await deployment.aclose()
    # the sandbox's Bulk exports are ready at once: its clock is real, and the encounters
    # stream's export would wait its default 10 s of Retry-After
    httpx.put(f"{sandbox}/_sandbox/settings", json={"bulk_export_seconds": 0}).raise_for_status()
    for pattern in ("/portal/api/*", "/v2/*"):  # slow enough to be killed mid-job
        httpx.post(
            f"{sandbox}/_sandbox/faults",
            json={"pattern": pattern, "latency_ms": 1500, "count": 1_000_000},
        ).raise_for_status()

    first = _worker(pg_url, ring)
    second: subprocess.Popen[bytes] | None = None
    queue = build_app(conninfo(pg_url))
    try:
        _until(
            "the worker never created its queue",
            lambda: _rows(pg_url, "SELECT 1 FROM pg_tables WHERE tablename = 'procrastinate_jobs'"),
        )
        async with queue.open_async():
            await nudge_sync(queue, TENANT, "patients")
        job_id, lock = _until(
            "no patients sync started",
            lambda: _rows(
                pg_url,
                "SELECT id, lock FROM procrastinate_jobs WHERE status = 'doing' "
                "AND task_name = 'carebridge.sync_stream' AND args->>'stream' = 'patients'",
            ),
        )[0]
        _until(
            "the sync never took its lease",
            lambda: _rows(pg_url, "SELECT holder FROM sync_leases WHERE stream = 'patients'"),
        )
        os.killpg(first.pid, signal.SIGKILL)  # kill -9, mid-job
        first.wait()
        httpx.delete(f"{sandbox}/_sandbox/faults").raise_for_status()
        holder = _rows(pg_url, "SELECT holder FROM sync_leases WHERE stream = 'patients'")
        assert holder == [(f"job:{job_id}:0",)]
        async with queue.open_async():
            await nudge_sync(queue, TENANT, "patients")  # waits behind the dead job's lock
            await nudge_sync(queue, TENANT, "appointments")
        stuck = _rows(pg_url, "SELECT status FROM procrastinate_jobs WHERE id = %s", job_id)
        assert stuck == [("doing",)]  # the dead worker's job holds its lock

        second = _worker(pg_url, ring)  # a restart: it finds the dead worker's job, retries it
        _until(
            "the dead worker's job was never retried and run",
            lambda: _rows(
                pg_url,
                "SELECT 1 FROM procrastinate_jobs WHERE id = %s AND status = 'succeeded' "
                "AND attempts >= 1",
                job_id,
            ),
        )
        async with queue.open_async():
            # the nudge that waited was folded into the retry, so this one queues, unless the
            # workers' own schedule has queued one meanwhile (under load it can): either way a
            # later job of the same lock must run
            await nudge_sync(queue, TENANT, "patients")
        _until(
            "a later job for the same lock never ran",
            lambda: _rows(
                pg_url,
                "SELECT 1 FROM procrastinate_jobs WHERE lock = %s AND id > %s "
                "AND status = 'succeeded'",
                lock,
                job_id,
            ),
        )
        _until(
            "the appointments never synced",
            lambda: _rows(
                pg_url,
                "SELECT 1 FROM procrastinate_jobs WHERE args->>'stream' = 'appointments' "
                "AND status = 'succeeded'",
            ),
        )
        assert second.poll() is None
    finally:
        _stop(first)
        if second is not None:
            _stop(second)

    patients = _rows(
        pg_url, "SELECT COUNT(*) FROM entities WHERE tenant_id = %s AND kind = 'patient'", TENANT
    )
    assert patients == [(40,)]
    failed = _rows(pg_url, "SELECT id FROM procrastinate_jobs WHERE status = 'failed'")
    assert failed == []
    assert _rows(pg_url, "SELECT holder FROM sync_leases WHERE stream = 'patients'") == []
