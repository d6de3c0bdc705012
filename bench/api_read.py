"""Requests/s of the cached read path, ``GET /patients?limit=100``, against a bare baseline.

Run: ``.venv/bin/python bench/api_read.py [--seconds 8] [--connections 32] [--patients 500]``

It seeds a temporary SQLite store (one tenant, one ``patient.read`` API key, 500 synthetic
patients), fetches the page once in-process, then starts two servers with the same setup
(granian, ASGI, 1 worker, uvloop, pinned to core 0):

- **carebridge**: the real API, ``create_app(records=, keys=, audit=)`` over ``SqlRecords``,
  ``SqlKeys`` and ``SqlAudit``: the API key checked (cached in process, its tenant's key
  generation read once per request), the page (kept serialized until its kind's generation
  moves: one read per request), the audit entry committed (group commit) before the answer;
- **baseline**: a bare Starlette app whose ``/patients`` returns ``orjson.dumps`` of the very
  same page (checked equal as JSON against each server's answer before the load starts).

The load generator is a separate process (pinned to core 1) of raw asyncio streams on uvloop:
``--connections`` keep-alive HTTP/1.1 connections, each sending the same request (with the
bearer key) and reading the response by Content-Length, closed loop. Each app gets ``--seconds``
measured, in 3 slices alternating with the other app's (2 s warm-up before the first, 1 s before
the others), so a background load on the machine hits both alike; a slice counts the responses
completed inside it. Any non-200 answer or broken connection is an error, and fails the run.
The ratio is given over the whole run and as min / median / max of the 3 slice pairs (slice i
of carebridge against slice i of the baseline). The API key's own rate limit is lifted for the
run (``CAREBRIDGE_RATE_LIMIT``): the bench measures the read path, not the quota.

This machine has 2 cores, shared by the server and the load generator, so the absolute numbers
are a floor: the ratio carebridge/baseline, measured in the same run, is the number to watch.
The "load CPU" column says how busy the load generator was (near 100 %: it, not the server,
would be the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import _apps
import httpx
import orjson
from _seed import seed

ROOT = Path(__file__).resolve().parent.parent
PATH = "/patients?limit=100"
WARMUP = 2.0  # before the first slice of each app
REWARM = 1.0  # before each later slice (fresh connections)
ROUNDS = 3  # slices per app, alternating, so background load hits both alike
SERVER_CORE, LOAD_CORE = 0, 1


@dataclass
class Result:
    """The load on one app, over every measured slice."""

    latencies: list[float] = field(default_factory=list)
    slices: list[float] = field(default_factory=list)  # requests/s of each slice
    seconds: float = 0.0
    errors: int = 0  # non-200 answers and broken connections, warm-ups included
    body_bytes: int = 0
    load_cpu: float = 0.0  # the load generator's CPU seconds
    load_wall: float = 0.0

    def add(self, run: Slice) -> None:
        self.latencies.extend(run.latencies)
        self.slices.append(len(run.latencies) / run.seconds)
        self.seconds += run.seconds
        self.errors += run.errors
        self.body_bytes = run.body_bytes
        self.load_cpu += run.cpu
        self.load_wall += run.wall

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        if q == 50:
            return statistics.median(ordered) * 1000
        return ordered[max(0, int(len(ordered) * q / 100) - 1)] * 1000


@dataclass(frozen=True)
class Slice:
    """One load run: the latencies of the requests completed inside its measured window."""

    latencies: list[float]
    seconds: float
    errors: int
    body_bytes: int
    cpu: float
    wall: float


# --- the load generator (runs in its own process) ------------------------------------------------


async def _response(reader: asyncio.StreamReader) -> tuple[int, int]:
    """Read one HTTP/1.1 response: (status, body length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 2)
        length = int(head[at + 17 : end])
        await reader.readexactly(length)
        return status, length
    if b"\r\ntransfer-encoding: chunked" not in lower:
        raise ValueError("response without Content-Length or chunked encoding")
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        total += size
        if size == 0:
            return status, total


async def _drive(
    port: int, request: bytes, connections: int, warmup: float, seconds: float
) -> tuple[list[float], int, int]:
    start = time.perf_counter()
    measure_from, measure_to = start + warmup, start + warmup + seconds
    latencies: list[float] = []
    errors = 0
    body = 0

    async def connection() -> None:
        nonlocal errors, body
        while time.perf_counter() < measure_to:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                errors += 1
                await asyncio.sleep(0.01)
                continue
            try:
                while True:
                    sent = time.perf_counter()
                    if sent >= measure_to:
                        return
                    writer.write(request)
                    status, body = await _response(reader)
                    done = time.perf_counter()
                    if status != 200:
                        errors += 1
                    elif measure_from <= done <= measure_to:
                        latencies.append(done - sent)
            except (OSError, ValueError, asyncio.IncompleteReadError):
                errors += 1
            finally:
                writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return latencies, errors, body


def load(port: int, request: bytes, connections: int, warmup: float, seconds: float) -> Slice:
    """Closed-loop load on ``127.0.0.1:port`` from fresh connections: ``warmup`` seconds, then
    ``seconds`` measured."""
    if hasattr(os, "sched_setaffinity") and LOAD_CORE in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {LOAD_CORE})
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    cpu, wall = time.process_time(), time.perf_counter()
    latencies, errors, body = run(_drive(port, request, connections, warmup, seconds))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Slice(latencies, seconds, errors, body, cpu, wall)


# --- the servers ---------------------------------------------------------------------------------


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(target: str, env: dict[str, str], log: Path) -> Iterator[int]:
    """``granian`` serving ``bench._apps:<target>`` on a free port, pinned to the server core."""
    port = _port()
    cmd = [
        str(Path(sys.executable).with_name("granian")),
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--log-level",
        "warning",
        f"bench._apps:{target}",
    ]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", str(SERVER_CORE), *cmd]
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": pythonpath},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{target} exited {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{target} did not start:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the run -------------------------------------------------------------------------------------


async def _page(url: str, key: str) -> Any:
    """The page the carebridge app answers, fetched in-process."""
    app, engine = _apps.build_carebridge(url)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench.test"
        ) as client:
            answer = await client.get(PATH, headers={"Authorization": f"Bearer {key}"})
    finally:
        await engine.dispose()
    assert answer.status_code == 200, answer.text
    return answer.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per app")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--patients", type=int, default=500, help="patients in the store")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="carebridge-bench-") as tmp:
        db = Path(tmp) / "store.db"
        url = f"sqlite:///{db}"
        key = asyncio.run(seed(url, args.patients))
        payload = asyncio.run(_page(url, key))
        payload_file = Path(tmp) / "page.json"
        payload_file.write_bytes(orjson.dumps(payload))
        env = {
            _apps.DB_ENV: url,
            _apps.PAYLOAD_ENV: str(payload_file),
            "CAREBRIDGE_RATE_LIMIT": "1000000000/1",
        }
        auth = {"Authorization": f"Bearer {key}"}

        apps = {"carebridge": "carebridge_app", "baseline": "baseline_app"}
        results = {name: Result() for name in apps}
        with ExitStack() as stack:
            ports = {
                name: stack.enter_context(serve(target, env, Path(tmp) / f"{target}.log"))
                for name, target in apps.items()
            }
            requests = {}
            for name, port in ports.items():
                answer = httpx.get(f"http://127.0.0.1:{port}{PATH}", headers=auth, timeout=30)
                assert answer.status_code == 200, answer.text
                assert orjson.loads(answer.content) == payload, f"{name} answers another page"
                requests[name] = (
                    f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Authorization: Bearer {key}\r\nAccept: application/json\r\n\r\n"
                ).encode()
            pool = stack.enter_context(ProcessPoolExecutor(1, mp_context=get_context("spawn")))
            for round_ in range(ROUNDS):
                for name, port in ports.items():
                    warmup = WARMUP if round_ == 0 else REWARM
                    job = pool.submit(
                        load,
                        port,
                        requests[name],
                        args.connections,
                        warmup,
                        args.seconds / ROUNDS,
                    )
                    results[name].add(job.result())
        with sqlite3.connect(db) as conn:
            audited = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]

    cb, base = results["carebridge"], results["baseline"]
    print(
        f"GET {PATH}: {len(payload['data'])} of {args.patients} patients; body "
        f"{cb.body_bytes:,} B (carebridge) / {base.body_bytes:,} B (baseline), equal as JSON"
    )
    print(
        f"granian {version('granian')} (asgi, 1 worker, uvloop), server on core {SERVER_CORE}, "
        f"load generator on core {LOAD_CORE}; {args.connections} keep-alive connections; "
        f"{args.seconds:g} s measured per app in {ROUNDS} alternating slices"
    )
    print(f"{'app':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'load CPU':>9}")
    for label, r in (
        ("carebridge (FastAPI, store, audit)", cb),
        ("baseline (Starlette + orjson)", base),
    ):
        print(
            f"{label:34} {r.rps:8.0f} {r.percentile_ms(50):8.2f} {r.percentile_ms(99):8.2f} "
            f"{r.errors:7d} {r.load_cpu / r.load_wall:9.0%}"
        )
    pairs = sorted(a / b for a, b in zip(cb.slices, base.slices, strict=True))
    print(
        f"ratio carebridge/baseline (req/s): {cb.rps / base.rps:.3f} over the run; per slice "
        f"pair median {statistics.median(pairs):.3f} (min {pairs[0]:.3f}, max {pairs[-1]:.3f}); "
        f"goal >= 0.6 with p99 <= 25 ms"
    )
    print(f"audit entries committed (one per carebridge request, warm-ups included): {audited:,}")
    if cb.errors or base.errors:
        raise SystemExit("some responses were not 200")


if __name__ == "__main__":
    main()
