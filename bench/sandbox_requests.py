"""The emulator's CPU per request on the sync's hottest path: a patient's show and balance.

Run: ``.venv/bin/python bench/sandbox_requests.py [--patients 10000] [--pairs 2000] [--rounds 3]
[--surfaces]``

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

With ``--surfaces``, the sync's other reads follow, each read twice after a warm-up, with the
server's CPU per request: the appointment window's pages (``Link``, 100 a page, at most 30),
the Connector's Patient search in pages of 1,000 (following ``next``), and the portal's patient
list in pages of 100 (at most 30), each for the first practice.

The client shares the machine with the server, so requests/s depends on the client too; the
server's CPU per request does not, and is the number to compare.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

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


def _fhir_client(base_url: str, document: dict[str, Any]) -> httpx.Client:
    """A client with a Connector token (client credentials, a signed ES384 assertion)."""
    import jwt

    smart = document["connector"]
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": smart["client_id"],
            "sub": smart["client_id"],
            "aud": smart["token_url"],
            "exp": now + 240,
            "jti": str(uuid.uuid4()),
        },
        smart["private_key_pem"],
        algorithm="ES384",
        headers={"kid": smart["kid"]},
    )
    grant = httpx.post(
        smart["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            "scope": smart["scope"],
        },
        timeout=10,
    ).json()
    headers = {"Authorization": f"Bearer {grant['access_token']}"}
    return httpx.Client(base_url=base_url, headers=headers, timeout=120)


def _portal_client(base_url: str, document: dict[str, Any]) -> httpx.Client:
    """A client signed in to the portal as the first practice's user (password, then TOTP)."""
    import pyotp

    user = document["practices"][0]["users"][0]
    client = httpx.Client(base_url=base_url, timeout=60)
    login = {"username": user["username"], "password": user["password"]}
    answer = client.post("/portal/api/session", json=login).json()
    if answer["status"] == "mfa_required":
        client.post("/portal/api/session/mfa/challenge", json={"method": "totp"})
        code = pyotp.TOTP(user["totp_seed"]).now()
        answer = client.post("/portal/api/session/mfa/verify", json={"code": code}).json()
    client.headers["X-CSRF-Token"] = answer["csrfToken"]
    return client


def _surfaces(base_url: str, token: str, pid: int) -> None:
    """The server's CPU per request on the sync's other reads, a few passes of each."""
    document = httpx.get(f"{base_url}/_sandbox/credentials", timeout=10).json()
    fhir_base = document["connector"]["practices"][0]["fhir_base"]
    window = {"start_date": "2026-09-01", "end_date": "2027-01-31"}
    v2 = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    fhir = _fhir_client(base_url, document)
    portal = _portal_client(base_url, document)

    def appointments() -> int:
        made, url = 0, "/v2/appointments"
        params: dict[str, str] | None = window
        while url and made < 30:
            response = v2.get(url, params=params)
            made, params = made + 1, None
            found = re.search(r'<([^>]*)>; rel="next"', response.headers.get("link", ""))
            url = found.group(1) if found else ""
        return made

    def fhir_patients() -> int:
        made, url = 0, f"{fhir_base}/Patient?_count=1000"
        while url:
            bundle = fhir.get(url).json()
            made += 1
            url = next((x["url"] for x in bundle["link"] if x["relation"] == "next"), "")
        return made

    def portal_patients() -> int:
        page, pages = 1, 1
        while page <= min(pages, 30):
            body = portal.get("/portal/api/patients", params={"pageSize": 100, "page": page}).json()
            pages, page = body["totalPages"], page + 1
        return page - 1

    for name, read in (
        ("appointments page (100 a page, Link)", appointments),
        ("Connector Patient search page (_count=1000)", fhir_patients),
        ("portal patients page (pageSize=100)", portal_patients),
    ):
        read()  # warm-up
        cpu0 = connector.process_cpu(pid)
        made = read() + read()
        cpu = connector.process_cpu(pid) - cpu0
        print(f"{name}: {made} requests, server CPU {cpu / made * 1000:.2f} ms/request")
    for client in (v2, fhir, portal):
        client.close()


def main() -> None:
    """Start the sandbox, drive the pairs, print the server's CPU per request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--surfaces", action="store_true", help="also the sync's other reads, per request"
    )
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
        if args.surfaces:
            _surfaces(base_url, token, pid)
    finally:
        stop()


if __name__ == "__main__":
    main()
