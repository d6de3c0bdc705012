"""Latency of the MCP server over stdio: ``carebridge mcp`` in its own process, driven by the
SDK's stdio client, against ``carebridge sandbox serve`` in another.

Measured in one run: a ``tools/list`` round trip (the transport's floor, the baseline), a read tool
(``search_patients``, served from the store), a write preview (``book_appointment`` without a
confirmation: a live availability read and a token) and the confirmed write (the upstream
booking with its read-back). Prints medians and p95 in milliseconds, the ratios to tools/list, and
writes one preview/confirm transcript to ``bench/mcp_transcript.json``.

    .venv/bin/python bench/mcp_stdio.py [rounds]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from connector import start_sandbox

from carebridge.services.admin import SHELL, KeySpec
from carebridge.wiring.admin import new_key_ring, parse_key_ring
from carebridge.wiring.api import open_deployment
from carebridge.wiring.carecloud import from_sandbox
from mcp import Client, StdioServerParameters


async def onboard(database: str, ring: str, sandbox: str) -> str:
    deployment = await open_deployment(database, parse_key_ring(ring))
    try:
        async with httpx.AsyncClient() as client:
            document = (await client.get(f"{sandbox}/_sandbox/credentials")).json()
        settings, secrets = from_sandbox(document, practice=0)
        await deployment.onboard(
            tenant_id="ten_bench", name="bench", upstream="carecloud", settings=settings,
            secrets=secrets,
        )  # fmt: skip
        minted = await deployment.admin.mint_key(
            SHELL, KeySpec(tenant_id="ten_bench", scopes="admin", label="bench")
        )
        return minted.key
    finally:
        await deployment.aclose()


async def timed(samples: list[float], call: Any) -> Any:
    start = time.perf_counter()
    result = await call
    samples.append((time.perf_counter() - start) * 1000)
    return result


def ok(result: Any) -> dict[str, Any]:
    if result.is_error:
        raise SystemExit(f"tool error: {result.content[0].text}")
    return dict(result.structured_content)


def summary(name: str, samples: list[float], floor: float) -> str:
    median = statistics.median(samples)
    p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
    return (
        f"{name:<22} median {median:8.2f} ms  p95 {p95:8.2f} ms  x{median / floor:6.1f} tools/list"
    )


async def main(rounds: int) -> None:
    sandbox, stop = start_sandbox()
    folder = Path(tempfile.mkdtemp(prefix="mcp-bench-"))
    database = f"sqlite:///{folder / 'store.db'}"
    ring = new_key_ring().to_text()
    try:
        key = await onboard(database, ring, sandbox)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
        environment |= {
            "CAREBRIDGE_DATABASE_URL": database,
            "CAREBRIDGE_VAULT_KEY": ring,
            "CAREBRIDGE_API_KEY": key,
        }
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "carebridge", "mcp"], env=environment
        )
        pings: list[float] = []
        reads: list[float] = []
        previews: list[float] = []
        writes: list[float] = []
        transcript: list[dict[str, Any]] = []
        async with Client(params, cache=None) as client:
            patients = ok(await client.call_tool("search_patients", {"limit": 5}))["patients"]
            resource = ok(await client.call_tool("list_practice", {"kind": "resource"}))["items"][0]
            reason = resource["visit_reason_ids"][1]
            today = datetime.now(UTC).date()  # the emulator's schedule runs on the wall clock
            slots = ok(
                await client.call_tool(
                    "find_availability",
                    {
                        "visit_reason_id": reason,
                        "start": (today + timedelta(days=1)).isoformat(),
                        "end": (today + timedelta(days=3)).isoformat(),
                        "resource_id": resource["id"],
                    },
                )
            )["slots"]
            for _ in range(rounds):
                await timed(pings, client.list_tools())
                await timed(reads, client.call_tool("search_patients", {"limit": 5}))
            # the server's per-key limit is 60 tool calls a minute: at most 15 bookings (30
            # calls) after the 3 set-up calls and the rounds of reads
            for n in range(min(rounds, len(slots), 15, max(0, (57 - rounds) // 2))):
                slot = slots[n]
                args = {
                    "patient_id": patients[n % len(patients)]["id"],
                    "resource_id": slot["resource_id"],
                    "location_id": slot["location_id"],
                    "visit_reason_id": reason,
                    "start": slot["start"],
                }
                preview = ok(await timed(previews, client.call_tool("book_appointment", args)))
                confirmed = args | {"confirmation": preview["confirmation_token"]}
                done = ok(await timed(writes, client.call_tool("book_appointment", confirmed)))
                if not transcript:
                    transcript = [
                        {"call": "book_appointment", "arguments": args, "answer": preview},
                        {"call": "book_appointment", "arguments": confirmed, "answer": done},
                    ]
        floor = statistics.median(pings)
        print(f"MCP over stdio, {rounds} rounds ({len(writes)} bookings); a shared machine")
        for name, samples in (
            ("tools/list (baseline)", pings),
            ("read: search_patients", reads),
            ("write preview", previews),
            ("confirmed write", writes),
        ):
            print(summary(name, samples, floor))
        out = Path(__file__).with_name("mcp_transcript.json")
        out.write_text(json.dumps(transcript, indent=2) + "\n")
        print(f"transcript: {out}")
    finally:
        stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
