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
the others), so a background load on the machine hits both alike; a slice's requests/s counts
the responses completed inside it, its latencies (p50/p90/p99/max, per request from sending to
the last byte) every request that overlapped it, those still in flight at its end included (a
server that starved a few connections, e.g. with granian's ``--backpressure``, would otherwise
look faster at the tail by leaving them out). Any non-200 answer or broken connection is an error, and fails the run.
The ratio is given over the whole run and as min / median / max of the 3 slice pairs (slice i
of carebridge against slice i of the baseline). The API key's own rate limit is lifted for the
run (``CAREBRIDGE_RATE_LIMIT``): the bench measures the read path, not the quota.

This machine has 2 cores, shared by the server and the load generator, so the absolute numbers
are a floor: the ratio carebridge/baseline, measured in the same run, is the number to watch.
The "load CPU" column says how busy the load generator was (near 100 %: it, not the server,
would be the limit); "min/conn" is the fewest requests one connection completed in one slice
(0: the server left a connection unserved, and the percentiles flatter it).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
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
    spans: list[tuple[float, float]] = field(default_factory=list)  # (sent, done) per request
    completed: int = 0  # requests completed inside the measured windows
    fewest: int = 0  # the fewest completed on one connection in one slice
    slices: list[float] = field(default_factory=list)  # requests/s of each slice
    seconds: float = 0.0
    errors: int = 0  # non-200 answers and broken connections, warm-ups included
    body_bytes: int = 0
    load_cpu: float = 0.0  # the load generator's CPU seconds
    load_wall: float = 0.0

    def add(self, run: Slice) -> None:
        self.latencies.extend(run.latencies)
        self.spans.extend(run.spans)
        self.completed += run.completed
        self.fewest = run.fewest if not self.slices else min(self.fewest, run.fewest)
        self.slices.append(run.completed / run.seconds)
        self.seconds += run.seconds
        self.errors += run.errors
        self.body_bytes = run.body_bytes
        self.load_cpu += run.cpu
        self.load_wall += run.wall

    @property
    def rps(self) -> float:
        return self.completed / self.seconds

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

    latencies: list[float]  # every request that overlapped the window
    spans: list[tuple[float, float]]
    completed: int  # requests completed inside the window
    fewest: int  # the fewest of them on one connection (0: a connection was starved)
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
) -> tuple[list[float], list[tuple[float, float]], int, int, int, int]:
    start = time.perf_counter()
    measure_from, measure_to = start + warmup, start + warmup + seconds
    latencies: list[float] = []
    spans: list[tuple[float, float]] = []
    completed = 0
    served: list[int] = []  # requests completed inside the window, per connection
    errors = 0
    body = 0

    async def connection() -> None:
        nonlocal errors, body, completed
        mine = 0
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
                        served.append(mine)
                        return
                    writer.write(request)
                    status, body = await _response(reader)
                    done = time.perf_counter()
                    if status != 200:
                        errors += 1
                    elif done >= measure_from and sent <= measure_to:
                        # every request the window saw, those it left in flight included
                        # (a server that starves some connections cannot hide them)
                        latencies.append(done - sent)
                        spans.append((sent, done))
                        completed += done <= measure_to
                        mine += done <= measure_to
            except (OSError, ValueError, asyncio.IncompleteReadError):
                errors += 1
            finally:
                writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return latencies, spans, completed, min(served, default=0), errors, body


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
    latencies, spans, completed, fewest, errors, body = run(
        _drive(port, request, connections, warmup, seconds)
    )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Slice(latencies, spans, completed, fewest, seconds, errors, body, cpu, wall)


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


def _ms(values: list[float], q: float) -> float:
    """The q-th percentile of ``values`` (seconds), in ms (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q / 100) - 1))] * 1000


def _overlap(spans: list[tuple[float, float]], events: list[tuple[float, float]]) -> float:
    """The share of ``spans`` (start, end) that overlap one of ``events`` (start, seconds)."""
    if not spans:
        return float("nan")
    marks = sorted(events)
    starts = [start for start, _ in marks]
    longest = max((length for _, length in marks), default=0.0)
    hit = 0
    for start, end in spans:
        i = bisect.bisect_right(starts, end)
        while i > 0:
            i -= 1
            at, length = marks[i]
            if at + longest < start:
                break
            if at + length >= start:
                hit += 1
                break
    return hit / len(spans)


def diagnosis(name: str, result: Result, diag: dict[str, Any]) -> str:
    """What ``name``'s server did during the measured requests, and during the slowest 1 %."""
    spans = result.spans
    lo = min((sent for sent, _ in spans), default=0.0)
    hi = max((done for _, done in spans), default=0.0)
    cut = result.percentile_ms(99) / 1000
    slow = [(sent, done) for sent, done in spans if done - sent >= cut]
    inside = [r for r in diag["requests"] if lo <= r[0] <= hi]
    gcs = [g for g in diag["gcs"] if lo <= g[0] <= hi]
    commits = [c for c in diag["commits"] if lo <= c[0] <= hi]
    stalls = [(at - length, length) for at, length in diag["stalls"] if lo <= at <= hi]
    lines = [
        f"--- {name} (--diag; gc threshold {tuple(diag['gc_threshold'])}, "
        f"{diag['gc_frozen']:,} objects frozen)",
        f"  in the app per request: p50 {_ms([d for _, d in inside], 50):.2f} ms, p99 "
        f"{_ms([d for _, d in inside], 99):.2f}, max {_ms([d for _, d in inside], 100):.2f}",
    ]
    for generation in (0, 1, 2):
        pauses = [g[2] for g in gcs if g[1] == generation]
        lines.append(
            f"  gc gen {generation}: {len(pauses)} collections, {sum(pauses) * 1000:.0f} ms in "
            f"all, p50 {_ms(pauses, 50):.2f} ms, max {_ms(pauses, 100):.2f}"
        )
    if commits:
        lines.append(
            f"  audit commits: {len(commits)}, entries per commit p50 "
            f"{statistics.median(c[2] for c in commits):.0f} max {max(c[2] for c in commits)}; "
            f"time p50 {_ms([c[1] for c in commits], 50):.2f} ms, p90 "
            f"{_ms([c[1] for c in commits], 90):.2f}, p99 {_ms([c[1] for c in commits], 99):.2f}"
            f", max {_ms([c[1] for c in commits], 100):.2f}"
        )
    lines.append(
        f"  event-loop stalls over {1000 * _apps.Diag.STALL:g} ms: {len(stalls)}, "
        f"{sum(s[1] for s in stalls) * 1000:.0f} ms in all, max {_ms([s[1] for s in stalls], 100):.1f}"
    )
    causes: list[tuple[str, list[tuple[float, float]]]] = [
        ("a gen-2 collection", [(g[0], g[2]) for g in gcs if g[1] == 2]),
        ("any collection over 2 ms", [(g[0], g[2]) for g in gcs if g[2] > 0.002]),
        ("a stall over 10 ms", [s for s in stalls if s[1] > 0.010]),
    ]
    if commits:
        slowest = sorted(c[1] for c in commits)[int(len(commits) * 0.9)]
        causes.append(
            (
                f"an audit commit over its p90 ({slowest * 1000:.1f} ms)",
                [(c[0], c[1]) for c in commits if c[1] >= slowest],
            )
        )
    for label, events in causes:
        lines.append(
            f"  overlapping {label}: {_overlap(slow, events):.0%} of the slowest 1 % "
            f"({len(slow)}), {_overlap(spans, events):.0%} of all"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per app")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--patients", type=int, default=500, help="patients in the store")
    parser.add_argument(
        "--diag",
        action="store_true",
        help="also say what each server did during the slow requests (GC pauses, audit "
        "commits, event-loop stalls): instruments both apps, so the figures move a little",
    )
    parser.add_argument(
        "--cpython-gc",
        action="store_true",
        help="leave carebridge's garbage collector as CPython sets it (no carebridge.api.heap"
        ".settle after start-up), to compare",
    )
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
        if args.diag:
            env[_apps.DIAG_ENV] = "1"
        if args.cpython_gc:
            env[_apps.UNSETTLED_ENV] = "1"
        diags: dict[str, Any] = {}
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
            if args.diag:
                for name, port in ports.items():
                    diags[name] = httpx.get(f"http://127.0.0.1:{port}/_diag", timeout=30).json()
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
    print(
        f"{'app':34} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'errors':>7} {'load CPU':>9} {'min/conn':>8}"
    )
    for label, r in (
        ("carebridge (FastAPI, store, audit)", cb),
        ("baseline (Starlette + orjson)", base),
    ):
        print(
            f"{label:34} {r.rps:8.0f} {r.percentile_ms(50):8.2f} {r.percentile_ms(90):8.2f} "
            f"{r.percentile_ms(99):8.2f} {r.percentile_ms(100):8.2f} {r.errors:7d} "
            f"{r.load_cpu / r.load_wall:9.0%} {r.fewest:8d}"
        )
    pairs = sorted(a / b for a, b in zip(cb.slices, base.slices, strict=True))
    print(
        f"ratio carebridge/baseline (req/s): {cb.rps / base.rps:.3f} over the run; per slice "
        f"pair median {statistics.median(pairs):.3f} (min {pairs[0]:.3f}, max {pairs[-1]:.3f}); "
        f"goal >= 0.6"
    )
    print(
        f"p99 carebridge/baseline: {cb.percentile_ms(99) / base.percentile_ms(99):.2f} "
        f"({cb.percentile_ms(99):.1f} / {base.percentile_ms(99):.1f} ms; goal p99 <= 25 ms); "
        f"p50 {cb.percentile_ms(50) / base.percentile_ms(50):.2f}"
    )
    print(f"audit entries committed (one per carebridge request, warm-ups included): {audited:,}")
    for name, found in diags.items():
        print(diagnosis(name, results[name], found))
    if cb.errors or base.errors:
        raise SystemExit("some responses were not 200")


if __name__ == "__main__":
    main()
