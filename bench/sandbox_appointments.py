"""Requests/s of the emulated tenant's ``GET /v2/appointments`` on one core, against a baseline.

Run: ``make bench`` (or ``.venv/bin/python bench/sandbox_appointments.py``).

The sandbox (seed 42, 2,000 patients) runs in its own process pinned to core 0 with
``taskset`` when available; the load generator runs here on the other core. The baseline is a
bare Starlette app returning the same pre-serialized page on the same server setup, so the
ratio isolates the emulator's own work. It also reports the start-up time of
``carebridge sandbox serve --patients 2000`` (until the credentials answer).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
CONCURRENCY = 8
HERE = Path(__file__).resolve().parent
BASELINE = HERE / "_baseline_app.py"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned(cmd: list[str]) -> list[str]:
    return ["taskset", "-c", "0", *cmd] if shutil.which("taskset") else cmd


def _wait(url: str, timeout: float = 120.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"server at {url} did not start")


def _load(url: str, headers: dict[str, str]) -> tuple[float, float, float]:
    latencies: list[float] = []

    def worker(n: int) -> None:
        with httpx.Client(headers=headers, timeout=30) as client:
            for _ in range(n):
                t = time.perf_counter()
                r = client.get(url)
                r.raise_for_status()
                latencies.append(time.perf_counter() - t)

    per = REQUESTS // CONCURRENCY
    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(worker, [per] * CONCURRENCY))
    elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p99 * 1000


def main() -> None:
    exe = str(Path(sys.executable).with_name("carebridge"))
    port = _port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        _pinned(
            [
                exe,
                "sandbox",
                "serve",
                "--port",
                str(port),
                "--patients",
                "2000",
                "--anchor",
                "2026-11-24",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        startup = _wait(f"{base}/_sandbox/credentials")
        creds = httpx.get(f"{base}/_sandbox/credentials").json()
        token = httpx.post(
            creds["token_url"],
            auth=(creds["client_id"], creds["client_secret"]),
            data={
                "grant_type": "refresh_token",
                "refresh_token": creds["practices"][0]["refresh_token"],
            },
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base}/v2/appointments?start_date=2026-11-02&end_date=2026-11-20"
        page = httpx.get(url, headers=headers)
        body = page.content
        items = len(page.json())
        _load(url, headers)  # warm-up
        sandbox = _load(url, headers)
    finally:
        proc.terminate()
        proc.wait()
    BASELINE.write_bytes(
        b"from starlette.applications import Starlette\n"
        b"from starlette.responses import Response\nfrom starlette.routing import Route\n"
        b"BODY = " + repr(body).encode() + b"\n"
        b"async def page(request):\n    return Response(BODY, media_type='application/json')\n"
        b"app = Starlette(routes=[Route('/v2/appointments', page)])\n"
    )
    port = _port()
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    proc = subprocess.Popen(
        _pinned(
            [
                uvicorn,
                "--app-dir",
                str(HERE),
                "_baseline_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        burl = f"http://127.0.0.1:{port}/v2/appointments"
        _wait(burl)
        _load(burl, {})
        baseline = _load(burl, {})
    finally:
        proc.terminate()
        proc.wait()
        BASELINE.unlink(missing_ok=True)
    print(f"sandbox serve --patients 2000 start-up: {startup:.2f} s")
    print(
        f"page: {items} appointments, {len(body):,} bytes; {REQUESTS} requests, {CONCURRENCY} clients"
    )
    print(f"{'':24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'GET /v2/appointments':24} {sandbox[0]:8.0f} {sandbox[1]:8.1f} {sandbox[2]:8.1f}")
    print(f"{'baseline (same bytes)':24} {baseline[0]:8.0f} {baseline[1]:8.1f} {baseline[2]:8.1f}")
    print(f"ratio sandbox/baseline: {sandbox[0] / baseline[0]:.2f}")


if __name__ == "__main__":
    main()
