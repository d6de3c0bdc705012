"""The CareCloud connector's read throughput, and its share of a hidden rate limit.

Run: ``.venv/bin/python bench/connector.py`` (``BENCH_SECONDS`` sets part (b)'s run, 20 s).

An emulated tenant (seed 42, 2,000 patients, wall clock) is served by uvicorn on a loopback
port in a thread of this process; every request goes to 127.0.0.1.

(a) A full read of the practice: every appointment, by monthly date windows (``Link``-paged,
    100 a page), then every patient the schedule names (``GET /v2/patients/{id}``). Pages/s
    of the connector (``SurfaceClient.v2_pages`` and requests on 16 worker tasks under its
    throttle, started at 1,000 requests/s and concurrency 16: no limit is set) against a naive sequential ``httpx`` loop over the same
    endpoints, in the same run. Both share this process (and its GIL) with the server.
(b) With the hidden limit set (``rate_limit_rps`` 20, burst 20), the connector (default
    throttle: AIMD from 20 requests/s) runs 16 workers on ``GET /v2/providers`` for a bounded
    time; it reports the sustained rate of answered requests as % of the limit and the share
    of attempts refused with 429.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from carebridge.connectors.carecloud.client import SurfaceClient
from carebridge.connectors.carecloud.paging import v2_next
from carebridge.connectors.carecloud.surfaces import V2Secrets, connect
from carebridge.connectors.carecloud.throttle import AimdThrottle, ThrottleConfig
from carebridge.errors import UpstreamError

ANCHOR = date(2026, 11, 24)
PATIENTS = 2000
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
LIMIT_RPS = 20
WORKERS = int(os.environ.get("BENCH_WORKERS", "16"))


SANDBOX_PIDS: list[int] = []
"""The processes :func:`start_sandbox` started, newest last (a bench reads their CPU time)."""


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) process ``pid`` has used (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_sandbox() -> tuple[str, Callable[[], None]]:
    """``carebridge sandbox serve`` in its own process on a free loopback port, so the server
    does not share this process's interpreter with the clients being measured."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    base_url = f"http://127.0.0.1:{port}"
    exe = str(Path(sys.executable).with_name("carebridge"))
    proc = subprocess.Popen(
        [
            exe,
            "sandbox",
            "serve",
            "--port",
            str(port),
            "--patients",
            str(PATIENTS),
            "--anchor",
            ANCHOR.isoformat(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600  # a 10k-patient tenant generates for minutes on a busy box
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/_sandbox/credentials", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise SystemExit("the sandbox did not start within 120 s")

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=10)

    SANDBOX_PIDS.append(proc.pid)
    return base_url, stop


def windows() -> list[tuple[str, str]]:
    """Monthly date windows over the schedule: a year of history and two months ahead."""
    out: list[tuple[str, str]] = []
    start = ANCHOR - timedelta(days=366)
    end = ANCHOR + timedelta(days=62)
    while start <= end:
        stop = min(start + timedelta(days=29), end)
        out.append((start.isoformat(), stop.isoformat()))
        start = stop + timedelta(days=1)
    return out


class Counting(httpx.AsyncBaseTransport):
    """Loopback transport counting answers by status."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.status: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "127.0.0.1":
            raise httpx.ConnectError("bench requests go to 127.0.0.1 only", request=request)
        response = await self.inner.handle_async_request(request)
        self.status[response.status_code] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def secrets(creds: dict[str, Any]) -> V2Secrets:
    return V2Secrets(
        creds["token_url"],
        creds["client_id"],
        creds["client_secret"],
        creds["practices"][0]["refresh_token"],
    )


def now() -> datetime:
    return datetime.now(UTC)


async def pool(jobs: list[Callable[[], Awaitable[None]]], workers: int = WORKERS) -> None:
    """Run ``jobs`` on a fixed number of tasks (a task per job would queue a thousand waiters
    on the throttle's condition, and each release wakes them all)."""
    queue = list(reversed(jobs))

    async def work() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(work() for _ in range(workers)))


# --- (a) full read --------------------------------------------------------------------------


async def connector_read(base: str, creds: dict[str, Any]) -> tuple[int, float, list[str]]:
    """Pages read and seconds taken by the connector; the patient GUIDs it found."""
    throttle = AimdThrottle(ThrottleConfig(start_rate=1000, max_rate=2000, start_concurrency=16))
    conn = connect(clock=now, transport=Counting(), v2=secrets(creds), throttle=throttle)
    v2: SurfaceClient[Any] | None = conn.v2
    assert v2 is not None
    pages = 0
    guids: set[str] = set()
    await v2.request("GET", f"{base}/v2/providers")  # the token, outside the timing

    async def window(lo: str, hi: str) -> None:
        nonlocal pages
        url = f"{base}/v2/appointments"
        async for page in v2.v2_pages(url, {"start_date": lo, "end_date": hi}):
            pages += 1
            guids.update(item["appointment"]["patient"]["id"] for item in page.json())

    async def patient(guid: str) -> None:
        nonlocal pages
        (
            await v2.request("GET", f"{base}/v2/patients/{guid}", endpoint="GET /v2/patients/{id}")
        ).json()
        pages += 1

    started = time.perf_counter()
    await pool([functools.partial(window, lo, hi) for lo, hi in windows()])
    ordered = sorted(guids)
    await pool([functools.partial(patient, g) for g in ordered])
    elapsed = time.perf_counter() - started
    await conn.aclose()
    return pages, elapsed, ordered


def naive_read(base: str, creds: dict[str, Any], guids: list[str]) -> tuple[int, float]:
    """The same pages, one request after another, with a plain ``httpx.Client``."""
    token = httpx.post(
        creds["token_url"],
        auth=(creds["client_id"], creds["client_secret"]),
        data={
            "grant_type": "refresh_token",
            "refresh_token": creds["practices"][0]["refresh_token"],
        },
    ).json()["access_token"]
    pages = 0
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        started = time.perf_counter()
        for lo, hi in windows():
            url: str | None = f"{base}/v2/appointments?start_date={lo}&end_date={hi}"
            while url:
                r = client.get(url)
                r.raise_for_status()
                r.json()
                pages += 1
                url = v2_next(r.headers.get("link"))
        for guid in guids:
            r = client.get(f"{base}/v2/patients/{guid}")
            r.raise_for_status()
            r.json()
            pages += 1
        elapsed = time.perf_counter() - started
    return pages, elapsed


# --- (b) under the hidden limit ------------------------------------------------------------------


async def limited_run(base: str, creds: dict[str, Any]) -> dict[str, float]:
    transport = Counting()
    conn = connect(clock=now, transport=transport, v2=secrets(creds), throttle=AimdThrottle())
    v2 = conn.v2
    assert v2 is not None
    ok = failed = 0
    deadline = time.perf_counter() + SECONDS

    async def worker() -> None:
        nonlocal ok, failed
        while time.perf_counter() < deadline:
            try:
                await v2.request("GET", f"{base}/v2/providers")
                ok += 1
            except UpstreamError:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    elapsed = time.perf_counter() - started
    budget = conn.throttle.budget()
    await conn.aclose()
    sent = sum(transport.status.values())
    refused = transport.status[429]
    return {
        "elapsed": elapsed,
        "ok": ok,
        "failed": failed,
        "sent": sent,
        "refused": refused,
        "rate": ok / elapsed,
        "final_rate": budget.rate,
        "final_concurrency": budget.concurrency,
    }


def main() -> None:
    t0 = time.perf_counter()
    base, stop = start_sandbox()
    try:
        creds = httpx.get(f"{base}/_sandbox/credentials").json()
        print(f"sandbox: {PATIENTS} patients, up in {time.perf_counter() - t0:.1f} s at {base}")

        pages, seconds, guids = asyncio.run(connector_read(base, creds))
        naive_pages, naive_seconds = naive_read(base, creds, guids)
        fast, slow = pages / seconds, naive_pages / naive_seconds
        print(
            f"(a) full read, {len(windows())} monthly appointment windows + {len(guids)} patients"
        )
        print(f"    connector: {pages} pages in {seconds:.2f} s = {fast:.0f} pages/s")
        print(f"    naive:     {naive_pages} pages in {naive_seconds:.2f} s = {slow:.0f} pages/s")
        print(f"    ratio connector/naive: {fast / slow:.2f}x")

        settings = {"rate_limit_rps": LIMIT_RPS, "rate_limit_burst": LIMIT_RPS}
        httpx.put(f"{base}/_sandbox/settings", json=settings).raise_for_status()
        r = asyncio.run(limited_run(base, creds))
        print(
            f"(b) hidden limit {LIMIT_RPS} req/s (burst {LIMIT_RPS}), {WORKERS} workers, "
            f"{r['elapsed']:.1f} s"
        )
        print(
            f"    answered {r['ok']:.0f} ({r['rate']:.1f} req/s = {100 * r['rate'] / LIMIT_RPS:.0f}%"
            f" of the limit), gave up on {r['failed']:.0f}"
        )
        print(
            f"    attempts {r['sent']:.0f}, refused 429: {r['refused']:.0f} "
            f"({100 * r['refused'] / max(r['sent'], 1):.1f}%); throttle ends at "
            f"{r['final_rate']:.1f} req/s, concurrency {r['final_concurrency']:.0f}"
        )
    finally:
        stop()


if __name__ == "__main__":
    main()
