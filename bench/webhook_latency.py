"""Upstream change to verified webhook, end to end with the default settings.

Run: ``.venv/bin/python bench/webhook_latency.py [--patients 2000] [--changes 15] [--rounds 3]``

An emulated tenant (seed 42, ``--patients``, generated around today) runs in its own process
(``carebridge sandbox serve``). carebridge runs in this process over a temporary SQLite store
exactly as ``carebridge serve`` runs it: ``open_deployment`` with its defaults (the AIMD
throttle from 20 req/s, the change feed every ``CAREBRIDGE_FEED_INTERVAL`` = 2 s, the
delivery loop woken by queued deliveries with its 10 s fallback poll) and the loops of
``wiring.jobs.background`` (the in-process sync every 300 s). Webhooks may go to loopback,
as ``carebridge run`` allows. A webhook is subscribed to appointment events at a real HTTP
receiver (uvicorn on a loopback port) that verifies every delivery with ``standardwebhooks``.

Each change is a cancellation made upstream by **another client** (a connector of its own,
which carebridge's store does not see), of a scheduled appointment one to three weeks ahead,
spaced by a random 0-2.5 s (seeded) so the changes fall at every phase of the feed's poll.
The latency runs from just before the cancellation is sent to the receiver's verified arrival
of its ``appointment.cancelled``. Each round prints p50/p95; the summary gives the spread of
the rounds and the feed's upstream requests per minute (the deployment's connection sent
nothing else meanwhile).

The baseline, in the same run: what the same change cost before the feed, a full read of the
appointment window by the sync (timed here) after waiting for the sync's 300 s interval, so
p95 = 0.95 x 300 s + one window read; and that window read's requests per minute at that
interval (the rest of the full sync comes on top).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.connector as connector

from carebridge.domain import AppointmentStatus
from carebridge.domain.urls import LOOPBACK, UrlPolicy
from carebridge.errors import CarebridgeError
from carebridge.events.webhooks import new_secret
from carebridge.store.vault import KeyRing
from carebridge.wiring.api import Deployment, open_deployment
from carebridge.wiring.carecloud import from_sandbox, open_tenant
from carebridge.wiring.jobs import background

TENANT = "ten_bench"
SYNC_INTERVAL = 300.0  # CAREBRIDGE_SYNC_INTERVAL's default
SETUP = ["providers", "locations", "resources", "visit_reasons", "appointments"]
"""What the bench syncs before it measures (the other streams take minutes and are not what a
cancellation's webhook waits on)."""


class Receiver:
    """Verifies each delivery (standardwebhooks) and notes when each (entity, type) arrived."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.arrived: dict[tuple[str, str], float] = {}
        self.rejected = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            data = Webhook(self.secret).verify(body, headers)["data"]
            self.arrived.setdefault((data["entity_id"], data["type"]), time.perf_counter())
            status = 204
        except Exception:  # noqa: BLE001 - a malformed header is a ValueError
            self.rejected += 1
            status = 400
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _serve(app: Any) -> tuple[str, uvicorn.Server]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/hook", server


def _sent(deployment: Deployment) -> int:
    health = deployment.upstreams.health(TENANT) or {}
    return sum(int(b.get("sent") or 0) for b in health.get("brokers", {}).values())


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def _until(receiver: Receiver, key: tuple[str, str], deadline: float) -> float:
    while key not in receiver.arrived:
        if time.perf_counter() > deadline:
            raise SystemExit(f"a change was not delivered: {key[1]}")
        await asyncio.sleep(0.01)
    return receiver.arrived[key]


async def run(base_url: str, changes: int, rounds: int, seed: int) -> None:
    workdir = tempfile.mkdtemp(prefix="cb-bench-webhooks-")
    deployment = await open_deployment(
        f"sqlite:///{workdir}/store.db",
        KeyRing.generate(),
        webhook_allow=UrlPolicy.parse(LOOPBACK),  # as carebridge run: the receiver is local
    )
    receiver = Receiver(new_secret())
    hook, server = _serve(receiver)
    document = httpx.get(f"{base_url}/_sandbox/credentials", timeout=10).json()
    settings, secrets = from_sandbox(document)
    other = open_tenant(TENANT, settings, secrets, clock=lambda: datetime.now(UTC))
    tasks: list[asyncio.Task[None]] = []
    try:
        await deployment.onboard(
            tenant_id=TENANT, name="bench", upstream="carecloud", settings=settings, secrets=secrets
        )
        await deployment.sync(tenant_id=TENANT, streams=SETUP)  # the window, stored once
        sent = _sent(deployment)
        began = time.perf_counter()
        await deployment.sync(tenant_id=TENANT, streams=["appointments"])
        window_seconds = time.perf_counter() - began
        window_requests = _sent(deployment) - sent
        await deployment.webhooks.create(
            TENANT,
            url=hook,
            event_types=("appointment.*",),
            secret=receiver.secret,
            now=datetime.now(UTC),
            scopes=frozenset({"appointment.read"}),  # deliveries carry the appointments
        )
        today = datetime.now(UTC).date()
        listed = [
            a
            async for a in other.appointments(today + timedelta(days=7), today + timedelta(days=21))
            if a.status is AppointmentStatus.SCHEDULED
        ]
        if len(listed) < changes * rounds:
            raise SystemExit(f"only {len(listed)} scheduled appointments to cancel")
        rng = random.Random(seed)
        rng.shuffle(listed)
        tasks = [
            asyncio.create_task(loop) for loop in background(deployment, sync_every=SYNC_INTERVAL)
        ]
        await asyncio.sleep(3)  # the feed's first poll sets its marks
        sent_before, clock_before = _sent(deployment), time.perf_counter()
        per_round: list[list[float]] = []
        for r in range(rounds):
            waits: list[float] = []
            pending: list[tuple[tuple[str, str], float]] = []
            for appointment in listed[r * changes : (r + 1) * changes]:
                await asyncio.sleep(rng.uniform(0, 2.5))
                changed = time.perf_counter()
                try:
                    await other.cancel_appointment(appointment.id, reason_code=None)
                except CarebridgeError as err:  # the other client's failure: not a sample
                    print(f"    a cancellation failed upstream-side: {type(err).__name__}")
                    continue
                pending.append(((str(appointment.id), "appointment.cancelled"), changed))
            deadline = time.perf_counter() + 60
            for key, changed in pending:
                waits.append(await _until(receiver, key, deadline) - changed)
            per_round.append(waits)
            print(
                f"round {r + 1}: {len(waits)} cancellations, change -> verified webhook "
                f"p50 {statistics.median(waits):.2f} s, p95 {_p95(waits):.2f} s, "
                f"max {max(waits):.2f} s"
            )
        elapsed = time.perf_counter() - clock_before
        feed_requests = _sent(deployment) - sent_before
        if receiver.rejected:
            raise SystemExit(f"{receiver.rejected} deliveries failed verification")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.should_exit = True
        await other.connection.aclose()
        await deployment.aclose()

    every = [w for waits in per_round for w in waits]
    p50s = [statistics.median(w) for w in per_round]
    p95s = [_p95(w) for w in per_round]
    baseline_p95 = 0.95 * SYNC_INTERVAL + window_seconds
    per_minute = feed_requests / elapsed * 60
    sync_per_minute = window_requests * 60 / SYNC_INTERVAL
    print(f"--- {len(every)} upstream cancellations in {rounds} rounds, default settings ---")
    print(
        f"change -> verified webhook: p50 {statistics.median(every):.2f} s "
        f"(rounds {min(p50s):.2f}-{max(p50s):.2f}), p95 {_p95(every):.2f} s "
        f"(rounds {min(p95s):.2f}-{max(p95s):.2f})"
    )
    print(
        f"baseline (no feed): sync every {SYNC_INTERVAL:.0f} s + a window read of "
        f"{window_seconds:.2f} s -> p95 ~{baseline_p95:.0f} s; ratio feed/baseline p95 "
        f"{_p95(every) / baseline_p95:.3f}"
    )
    print(
        f"feed cost: {per_minute:.0f} upstream requests/min ({per_minute / 60:.1f}/s, through "
        f"the tenant's throttle); the sync's window read alone: {window_requests} requests, "
        f"{sync_per_minute:.0f}/min at its {SYNC_INTERVAL:.0f} s interval"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=15, help="cancellations per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    connector.PATIENTS = args.patients
    connector.ANCHOR = datetime.now(UTC).date()  # the practice's today is the wall clock's
    base_url, stop = connector.start_sandbox()
    try:
        asyncio.run(run(base_url, args.changes, args.rounds, args.seed))
    finally:
        stop()


if __name__ == "__main__":
    main()
