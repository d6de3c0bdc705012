"""R2: ``kill -9`` of the sync, the API and the worker at random points loses, duplicates and
jams nothing.

On SQLite: ``carebridge sync`` is killed several times mid-pass; then ``carebridge serve`` (which
also syncs and delivers webhooks on SQLite) is killed while bookings are in flight and
restarted; each booking is retried with its ``Idempotency-Key`` until it has an answer. On
PostgreSQL (CI's services job): ``carebridge worker`` processes are killed and restarted the
same way. In the end the store equals the ground truth, every booking made exactly one
upstream appointment, and every event reached a real receiver under one ``webhook-id``, in
order per entity, with no delivery or job left stuck.

Kill times come from a seeded generator; the short form kills 3 times, ``make chaos`` more.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from sqlalchemy import select
from tests.chaos.figures import Figures
from tests.chaos.processes import Receiver, Sandbox, carebridge, env, kill9, sandbox, serving, stop
from tests.chaos.truth import duplicate_events
from tests.support.processes import free_port, wait_for
from tests.support.sync import TENANT, store_ids, truth_ids

from carebridge.cli.worker import conninfo
from carebridge.jobs.queue import build_app, nudge_delivery, nudge_sync
from carebridge.services.keys import mint, parse_scopes
from carebridge.store import tenants as repo
from carebridge.store.schema import deliveries, events
from carebridge.store.vault import KeyRing
from carebridge.sync.engine import DEFAULT_STREAMS as ENGINE_STREAMS
from carebridge.wiring.api import Deployment, open_deployment
from carebridge.wiring.carecloud import from_sandbox

TYPES = ("patient.*", "appointment.*")


@dataclass
class Shim:
    """What the truth oracles read: the sandbox's tables and clock, and the store."""

    sandbox: Sandbox
    deployment: Deployment

    @property
    def clock(self) -> Any:
        return self.sandbox.clock

    def truth(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self.sandbox.truth(sql, params)


async def _onboard(database: str, ring: KeyRing, sb: Sandbox, hook: str, secret: str) -> str:
    deployment = await open_deployment(database, ring)
    try:
        document = httpx.get(f"{sb.base}/_sandbox/credentials").json()
        settings, secrets = from_sandbox(document)
        await deployment.onboard(
            tenant_id=TENANT, name="chaos", upstream="carecloud", settings=settings, secrets=secrets
        )
        await deployment.webhooks.create(
            TENANT,
            url=hook,
            event_types=TYPES,
            secret=secret,
            now=datetime.now(UTC),
            scopes=frozenset({"patient.read", "appointment.read"}),
        )
        minted = mint()
        await repo.add_key(
            deployment.engine,
            key_id="key_chaos",
            tenant_id=TENANT,
            prefix=minted.prefix,
            secret_hash=minted.secret_hash,
            scopes=parse_scopes("admin"),
            label="chaos",
            now=datetime.now(UTC),
        )
        return minted.display
    finally:
        await deployment.aclose()


def _bodies(api: str, key: str, count: int) -> list[dict[str, Any]]:
    """``count`` bookings of distinct free slots in the next days."""
    auth = {"Authorization": f"Bearer {key}"}
    patients = httpx.get(f"{api}/patients", params={"limit": 50}, headers=auth, timeout=60)
    assert patients.status_code == 200, patients.text
    people = [p["id"] for p in patients.json()["data"]]
    resource = httpx.get(f"{api}/resources", headers=auth, timeout=60).json()["data"][0]
    reason = resource["visit_reason_ids"][1]
    today = datetime.now(UTC).date()
    slots = httpx.get(
        f"{api}/availability",
        params={
            "visit_reason_id": reason,
            "resource_id": resource["id"],
            "start": str(today + timedelta(days=1)),
            "end": str(today + timedelta(days=4)),
        },
        headers=auth,
        timeout=60,
    )
    assert slots.status_code == 200, slots.text
    free = slots.json()["data"][:count]
    assert len(free) == count, free
    return [
        {
            "patient_id": people[n % len(people)],
            "resource_id": s["resource_id"],
            "location_id": s["location_id"],
            "visit_reason_id": reason,
            "start": s["start"],
        }
        for n, s in enumerate(free)
    ]


def _book(api: str, key: str, idem: str, body: dict[str, Any]) -> httpx.Response | None:
    try:
        return httpx.post(
            f"{api}/create_appointment",
            json=body,
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idem},
            timeout=60,
        )
    except httpx.TransportError:
        return None


def _settle(api: str, key: str, idem: str, body: dict[str, Any], seconds: float) -> Any:
    """Retry one booking with its key until it has a final answer; None if it stays in flight
    (a key jammed by the killed process) past ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = _book(api, key, idem, body)
        if answer is not None and answer.status_code < 500:
            problem = answer.json() if answer.status_code == 409 else {}
            if not str(problem.get("type", "")).endswith("in-flight"):
                return answer
        time.sleep(0.5)
    return None


def _in_slots(sb: Sandbox, bodies: list[dict[str, Any]]) -> int:
    starts = {b["start"].replace("Z", "")[:16] for b in bodies}
    rows = sb.truth(
        "SELECT start_time FROM appointments WHERE practice_id = 1 AND status_code <> 'C'"
    )
    return sum(1 for r in rows if str(r["start_time"]).replace("Z", "")[:16] in starts)


def _pending(database: str) -> int:
    path = database.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM deliveries WHERE state <> 'delivered'").fetchone()[0]
        )


async def _store_figures(
    database: str, ring: KeyRing, sb: Sandbox, receiver: Receiver, figures: Figures
) -> None:
    deployment = await open_deployment(database, ring)
    try:
        shim = Shim(sb, deployment)
        truth, stored = truth_ids(shim), await store_ids(shim)  # type: ignore[arg-type]
        for kind, expected in truth.items():
            figures.compared += len(expected)
            missing = len(expected - stored[kind])
            figures.lost += missing
            figures.duplicated += len(stored[kind] - expected)
            if missing:
                figures.notes[f"lost_{kind}"] = missing
        async with deployment.engine.connect() as conn:
            logged = [
                dict(r._mapping)
                for r in await conn.execute(
                    select(events).where(events.c.tenant_id == TENANT).order_by(events.c.seq)
                )
            ]
            states = [
                r.state
                for r in await conn.execute(
                    select(deliveries.c.state).where(deliveries.c.tenant_id == TENANT)
                )
            ]
    finally:
        await deployment.aclose()
    figures.duplicates += duplicate_events(logged)
    wanted = {e["seq"] for e in logged if e["kind"] in ("patient", "appointment")}
    ids: dict[int, set[str]] = defaultdict(set)
    first: dict[str, list[int]] = defaultdict(list)
    for arrival in receiver.arrivals:
        ids[arrival.seq].add(arrival.message_id)
        if arrival.seq not in first[arrival.entity]:
            first[arrival.entity].append(arrival.seq)
    figures.delivered += len(ids)
    undelivered = len(wanted - ids.keys())
    figures.lost += undelivered
    figures.notes["undelivered"] = undelivered
    figures.duplicates += sum(len(v) - 1 for v in ids.values())
    figures.wrong += sum(1 for seqs in first.values() if seqs != sorted(seqs))
    figures.stuck += sum(1 for s in states if s != "delivered")
    figures.notes["events"] = len(logged)
    figures.notes["redeliveries"] = len(receiver.arrivals) - len(ids)


@pytest.mark.parametrize(
    ("seed", "kills"),
    [
        (5, 3),
        pytest.param(6, 8, marks=pytest.mark.chaos),
        pytest.param(7, 8, marks=pytest.mark.chaos),
    ],
)
def test_kill9_of_sync_and_api_on_sqlite_loses_duplicates_and_jams_nothing(
    seed: int, kills: int, tmp_path: Path, figures: Figures
) -> None:
    rng = random.Random(seed)
    figures.seeds.append(seed)
    database = f"sqlite:///{tmp_path / 'store.db'}"
    ring = KeyRing.generate()
    receiver = Receiver()
    with sandbox(seed=seed, patients=40) as sb, serving(receiver.app) as hooks:
        key = anyio.run(_onboard, database, ring, sb, f"{hooks}/hook", receiver.secret)
        # a killed sync blocks its streams for a lease, and a killed server's claimed webhook
        # deliveries wait out theirs: 15 s and 10 s here, two minutes each by default
        children = env(
            database,
            ring.to_text(),
            CAREBRIDGE_SYNC_INTERVAL="3600",
            CAREBRIDGE_SYNC_LEASE_SECONDS="15",
            CAREBRIDGE_DELIVERY_LEASE_SECONDS="10",
        )
        killed = 0
        for _ in range(kills):
            child = carebridge(["sync", f"--tenant={TENANT}", "--quiet"], children)
            time.sleep(rng.uniform(0.3, 5.0))
            killed += kill9(child)

        port = free_port()
        api = f"http://127.0.0.1:{port}"
        server = carebridge(["serve", f"--port={port}"], children, tmp_path / "serve.log")
        try:
            wait_for(f"{api}/health")
            bodies = _bodies(api, key, 6)
            before = _in_slots(sb, bodies)
            with ThreadPoolExecutor(len(bodies)) as pool:
                for n, body in enumerate(bodies):
                    pool.submit(_book, api, key, f"chaos-{seed}-{n}", body)
                time.sleep(rng.uniform(0.05, 0.8))
                killed += kill9(server)
            server = carebridge(["serve", f"--port={port}"], children, tmp_path / "serve.log")
            wait_for(f"{api}/health")
            answers = [
                _settle(api, key, f"chaos-{seed}-{n}", body, 90) for n, body in enumerate(bodies)
            ]
            jammed = sum(1 for a in answers if a is None)
            figures.notes["answers"] = ",".join(
                "jammed"
                if a is None
                else f"{a.status_code}:{str(a.json().get('type', '')).rsplit('/', 1)[-1]}"
                for a in answers
            )
            booked = {
                a.json()["data"]["id"] for a in answers if a is not None and a.status_code == 201
            }
            new_upstream = _in_slots(sb, bodies) - before
            figures.duplicated += max(0, new_upstream - len(booked))
            figures.wrong += max(0, len(booked) - new_upstream)
            figures.stuck += jammed

            # a killed sync keeps its streams' leases until they lapse: the next sync skips
            # those streams (and says so) until then
            finals = 0
            while True:
                finals += 1
                final = subprocess.run(  # noqa: S603 - our own CLI
                    [sys.executable, "-m", "carebridge", "sync", f"--tenant={TENANT}", "--quiet"],
                    env=children,
                    capture_output=True,
                    timeout=600,
                    check=False,
                )
                assert final.returncode == 0, final.stderr.decode()[-2000:]
                if b"skipped" not in final.stdout or finals >= 40:
                    break
                time.sleep(2)
            figures.notes["final_syncs"] = finals
            deadline = time.monotonic() + 180
            while _pending(database) and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            stop(server)
        figures.runs += 1
        figures.notes |= {"killed": killed, "bookings": len(bodies), "booked": len(booked)}
        anyio.run(_store_figures, database, ring, sb, receiver, figures)
    assert receiver.rejected == 0
    assert figures.clean(), figures


# --- PostgreSQL: carebridge worker -----------------------------------------------------------

STREAMS = tuple(ENGINE_STREAMS)
STALLED_AFTER = 5
"""Seconds without a heartbeat after which the test's workers count as dead (30 by default)."""


def _pg(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo(url)) as conn:
        return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]


async def _nudge(url: str) -> None:
    queue = build_app(conninfo(url))
    async with queue.open_async():
        for stream in STREAMS:
            await nudge_sync(queue, TENANT, stream)
        await nudge_delivery(queue)


def _synced(url: str, after: int) -> bool:
    """Every stream synced by a job deferred after job ``after`` (the last kill's queue)."""
    done = _pg(
        url,
        "SELECT DISTINCT args->>'stream' FROM procrastinate_jobs "
        f"WHERE task_name = 'carebridge.sync_stream' AND status = 'succeeded' AND id > {after}",
    )
    return {stream for (stream,) in done} >= set(STREAMS)


def _stuck(url: str) -> int:
    """Jobs held by a worker that is gone or has not beaten its heart for a minute: what a
    killed worker leaves behind until it is recovered. (The schedule keeps nudging, so waiting
    and running jobs come and go; only these would be stuck.)"""
    return int(
        _pg(
            url,
            "SELECT COUNT(*) FROM procrastinate_jobs j "
            "LEFT JOIN procrastinate_workers w ON w.id = j.worker_id "
            "WHERE j.status = 'doing' AND "
            "(w.id IS NULL OR w.last_heartbeat < now() - interval '60 seconds')",
        )[0][0]
    )


@pytest.mark.postgres
@pytest.mark.parametrize(("seed", "kills"), [(8, 2), pytest.param(9, 6, marks=pytest.mark.chaos)])
def test_kill9_of_workers_on_postgresql_loses_duplicates_and_jams_nothing(
    seed: int,
    kills: int,
    pg_url: str,
    tmp_path: Path,
    figures: Figures,
) -> None:
    rng = random.Random(seed)
    figures.seeds.append(seed)
    ring = KeyRing.generate()
    receiver = Receiver()
    with sandbox(seed=seed, patients=40) as sb, serving(receiver.app) as hooks:
        anyio.run(_onboard, pg_url, ring, sb, f"{hooks}/hook", receiver.secret)
        # a killed worker's claimed deliveries wait out their lease (10 s here, two minutes by
        # default) and its jobs hold their locks until its heartbeat is stale (STALLED_AFTER
        # here, 30 s by default)
        children = env(pg_url, ring.to_text(), CAREBRIDGE_DELIVERY_LEASE_SECONDS="10")
        command = [
            "worker",
            "--processes=2",
            "--concurrency=4",
            f"--stalled-after={STALLED_AFTER}",
            f"--db={pg_url}",
        ]
        killed = 0
        workers = carebridge(command, children, tmp_path / "worker.log")
        try:
            deadline = time.monotonic() + 150
            while not _pg(pg_url, "SELECT 1 FROM pg_tables WHERE tablename = 'procrastinate_jobs'"):
                assert time.monotonic() < deadline, "the worker never created its queue"
                time.sleep(0.2)
            for _ in range(kills):
                anyio.run(_nudge, pg_url)
                time.sleep(rng.uniform(0.5, 6.0))
                killed += kill9(workers)
                workers = carebridge(command, children, tmp_path / "worker.log")
            after = int(_pg(pg_url, "SELECT COALESCE(MAX(id), 0) FROM procrastinate_jobs")[0][0])
            deadline = time.monotonic() + 420
            while time.monotonic() < deadline:
                assert workers.poll() is None, "the workers exited"
                anyio.run(_nudge, pg_url)
                pending = _pg(pg_url, "SELECT COUNT(*) FROM deliveries WHERE state <> 'delivered'")
                if _synced(pg_url, after) and pending[0][0] == 0 and not _stuck(pg_url):
                    break
                time.sleep(1)
            stuck_jobs = _stuck(pg_url) + (0 if _synced(pg_url, after) else 1)
            figures.notes["converged_s"] = round(420 - (deadline - time.monotonic()))
        finally:
            stop(workers)
        figures.runs += 1
        figures.stuck += stuck_jobs
        figures.notes |= {"killed": killed}
        anyio.run(_store_figures, pg_url, ring, sb, receiver, figures)
    assert receiver.rejected == 0
    assert figures.clean(), figures
