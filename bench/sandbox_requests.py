"""The emulator's CPU per request on the sync's hottest path: a patient's show and balance.

Run: ``.venv/bin/python bench/sandbox_requests.py [--patients 10000] [--pairs 2000] [--rounds 3]``

An emulated tenant (seed 42, ``--patients``, anchor 2026-11-24) is served by ``carebridge
sandbox serve`` in its own process (``bench/connector.py``'s ``start_sandbox``). This process
takes an access token of the first practice (a refresh grant, as ``bench/sync.py``'s dlt side
does), reads the practice's patient GUIDs from the sandbox's ground truth, and then, on one
keep-alive connection, makes ``--pairs`` pairs of ``GET /v2/patients/{id}`` and ``GET
/v2/patients/{id}/balance`` (the two reads a sync makes of each patient), one request at a
time. Each of ``--rounds`` rounds reads the server process's CPU time (user + system, from
``/proc/<pid>/stat``) before and after, and prints the server's CPU per request, the
requests/s and this client's own CPU per request; then the median of the rounds. A warm-up
of 200 pairs runs first.

The client shares the machine with the server, so requests/s depends on the client too; the
server's CPU per request does not, and is the number to compare.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.connector as connector


def _token(base_url: str) -> tuple[str, int]:
    document = httpx.get(f"{base_url}/_sandbox/credentials", timeout=10).json()
    practice = document["practices"][0]
    grant = httpx.post(
        document["token_url"],
        auth=(document["client_id"], document["client_secret"]),
        data={"grant_type": "refresh_token", "refresh_token": practice["refresh_token"]},
        timeout=10,
    ).json()
    return str(grant["access_token"]), int(practice["id"])


def _guids(base_url: str, practice_id: int) -> list[str]:
    body = httpx.get(
        f"{base_url}/_sandbox/truth/patients", params={"practice_id": practice_id}, timeout=120
    ).text
    return [orjson.loads(line)["id"] for line in body.splitlines() if line.strip()]


def _pairs(client: httpx.Client, guids: list[str], count: int, offset: int) -> int:
    """``count`` show + balance pairs, cycling through ``guids``; returns the requests made."""
    for i in range(count):
        guid = guids[(offset + i) % len(guids)]
        for path in (f"/v2/patients/{guid}", f"/v2/patients/{guid}/balance"):
            response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"GET {path} answered {response.status_code}")
    return 2 * count


def main() -> None:
    """Start the sandbox, drive the pairs, print the server's CPU per request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    connector.PATIENTS = args.patients
    base_url, stop = connector.start_sandbox()
    pid = connector.SANDBOX_PIDS[-1]
    try:
        token, practice_id = _token(base_url)
        guids = _guids(base_url, practice_id)
        headers = {"Authorization": f"Bearer {token}"}
        per_request: list[float] = []
        rates: list[float] = []
        client_cpu: list[float] = []
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            offset = _pairs(client, guids, 200, 0) // 2
            for round_no in range(1, args.rounds + 1):
                cpu0, wall0 = connector.process_cpu(pid), time.perf_counter()
                mine0 = time.process_time()
                made = _pairs(client, guids, args.pairs, offset)
                cpu1, wall1 = connector.process_cpu(pid), time.perf_counter()
                client_cpu.append((time.process_time() - mine0) / made * 1000)
                offset += args.pairs
                per_request.append((cpu1 - cpu0) / made * 1000)
                rates.append(made / (wall1 - wall0))
                print(
                    f"round {round_no}: {made} requests, server CPU {cpu1 - cpu0:.2f} s "
                    f"= {per_request[-1]:.3f} ms/request, {rates[-1]:.0f} requests/s, "
                    f"client CPU {client_cpu[-1]:.3f} ms/request"
                )
        print(
            f"median: server CPU {statistics.median(per_request):.3f} ms/request "
            f"(min {min(per_request):.3f}, max {max(per_request):.3f}), "
            f"{statistics.median(rates):.0f} requests/s, "
            f"client CPU {statistics.median(client_cpu):.3f} ms/request "
            f"({args.patients} patients, {len(guids)} in practice {practice_id})"
        )
    finally:
        stop()


if __name__ == "__main__":
    main()
