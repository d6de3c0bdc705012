"""The MCP server over its real transports, each with the SDK's client, against an emulated
tenant served on a loopback port: ``carebridge mcp`` over stdio, and the API's ``/mcp`` over
streamable HTTP (``carebridge serve``). Each lists the tools and books an appointment end to
end (preview, then confirm), and the booking is in the emulator's own database.

The stdio booking runs in the default suite (one small tenant, one child process); the rest is
``slow``. The default suite's HTTP booking is in process (``test_mcp_http.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from tests.support.mcp import served_tenant
from tests.support.processes import free_port, wait_for

from carebridge.services.admin import SHELL, KeySpec
from carebridge.wiring.admin import new_key_ring, parse_key_ring
from carebridge.wiring.api import open_deployment
from carebridge.wiring.carecloud import from_sandbox
from carecloud_sandbox.control import credentials
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio
TENANT = "ten_mcp"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A small emulated tenant on a loopback port, a store with it onboarded, and an admin
    key."""
    folder = tmp_path_factory.mktemp("mcp-procs")
    database = f"sqlite:///{folder / 'store.db'}"
    ring = new_key_ring().to_text()
    with served_tenant(patients=4) as tenant:
        key = anyio.run(_onboard, database, ring, credentials(tenant))
        yield {
            "database": database,
            "ring": ring,
            "sandbox": tenant.config.base_url,
            "key": key,
            "dir": str(folder),
        }


async def _onboard(database: str, ring_text: str, document: dict[str, Any]) -> str:
    deployment = await open_deployment(database, parse_key_ring(ring_text))
    try:
        settings, secrets = from_sandbox(document, practice=0)
        await deployment.onboard(
            tenant_id=TENANT, name="mcp", upstream="carecloud", settings=settings, secrets=secrets
        )
        minted = await deployment.admin.mint_key(
            SHELL, KeySpec(tenant_id=TENANT, scopes="admin", label="agent")
        )
        return minted.key
    finally:
        await deployment.aclose()


def _environment(world: dict[str, str]) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    return environment | {
        "CAREBRIDGE_DATABASE_URL": world["database"],
        "CAREBRIDGE_VAULT_KEY": world["ring"],
        "CAREBRIDGE_SYNC_INTERVAL": "0",
    }


def _booked(sandbox: str, start: str) -> int:
    """Live bookings at ``start`` in the emulator's ground truth."""
    at = datetime.fromisoformat(start).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = httpx.get(f"{sandbox}/_sandbox/truth/appointments", timeout=30).text.splitlines()
    found = [json.loads(r) for r in rows if r.strip()]
    return sum(1 for r in found if r["start_time"] == at and r["status_code"] not in ("C", "R"))


async def _tool(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def book_end_to_end(client: Client, sandbox: str, nth: int) -> dict[str, Any]:
    """List the tools, find a free slot, preview the booking, confirm it; the booking."""
    names = {t.name for t in (await client.list_tools()).tools}
    assert {"search_patients", "book_appointment", "find_availability"} <= names
    patient = (await _tool(client, "search_patients", limit=2))["patients"][0]["id"]
    resource = (await _tool(client, "list_practice", kind="resource"))["items"][0]
    reason = resource["visit_reason_ids"][1]
    today = datetime.now(UTC).date()  # the served emulator runs on the wall clock
    slots = await _tool(
        client,
        "find_availability",
        visit_reason_id=reason,
        start=(today + timedelta(days=1)).isoformat(),
        end=(today + timedelta(days=3)).isoformat(),
        resource_id=resource["id"],
    )
    slot = slots["slots"][nth]
    args = {
        "patient_id": patient,
        "resource_id": slot["resource_id"],
        "location_id": slot["location_id"],
        "visit_reason_id": reason,
        "start": slot["start"],
    }
    before = _booked(sandbox, slot["start"])
    preview = await _tool(client, "book_appointment", **args)
    assert preview["stage"] == "preview"
    assert _booked(sandbox, slot["start"]) == before
    done = await _tool(
        client, "book_appointment", **args, confirmation=preview["confirmation_token"]
    )
    assert done["confirmation"] == "confirmed"
    assert _booked(sandbox, slot["start"]) == before + 1
    return {"preview": preview, "done": done}


async def test_carebridge_mcp_over_stdio_books_an_appointment(world: dict[str, str]) -> None:
    environment = _environment(world) | {"CAREBRIDGE_API_KEY": world["key"]}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "carebridge", "mcp"], env=environment
    )
    async with Client(params, cache=None) as client:
        transcript = await book_end_to_end(client, world["sandbox"], nth=0)
    out = Path(world["dir"]) / "transcript.json"
    out.write_text(json.dumps(transcript, indent=2))


@pytest.mark.slow
def test_carebridge_mcp_without_a_credential_exits_2_with_one_line(
    world: dict[str, str],
) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "carebridge", "mcp"],
        env=_environment(world),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 2
    assert ran.stderr.strip().startswith("error: set CAREBRIDGE_API_KEY")
    assert "Traceback" not in ran.stderr


@contextmanager
def _api(world: dict[str, str]) -> Iterator[str]:
    port = free_port()
    log = Path(world["dir"]) / "api.log"
    with open(log, "ab") as errors:
        child = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "carebridge", "serve", f"--port={port}"],
            env=_environment(world),
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/health")
        yield base
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=30)


@pytest.fixture(scope="module")
def api(world: dict[str, str]) -> Iterator[str]:
    with _api(world) as base:
        yield base


@pytest.mark.slow
async def test_the_api_serves_mcp_over_streamable_http(world: dict[str, str], api: str) -> None:
    headers = {"Authorization": f"Bearer {world['key']}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        transport = streamable_http_client(f"{api}/mcp", http_client=http)
        async with Client(transport, cache=None) as client:
            await book_end_to_end(client, world["sandbox"], nth=2)


@pytest.mark.slow
async def test_mcp_over_http_without_a_credential_names_its_resource_metadata(
    api: str,
) -> None:
    async with httpx.AsyncClient(base_url=api) as http:
        answer = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert answer.status_code == 401
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith("Bearer resource_metadata=")
        assert f'"{api}/.well-known/oauth-protected-resource/mcp"' in challenge
        assert answer.headers["content-type"].startswith("application/problem+json")
        for path in (
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ):
            metadata = (await http.get(path)).json()
            assert metadata["resource"] == f"{api}/mcp"
            assert metadata["authorization_servers"] == [api]
            assert "appointment.write" in metadata["scopes_supported"]


@pytest.mark.slow
def test_the_mcp_inspector_cli_lists_the_tools(world: dict[str, str]) -> None:
    """The MCP Inspector's CLI mode (``npx @modelcontextprotocol/inspector --cli``) lists the
    tools of ``carebridge mcp``; skipped without npx or with the package not cached offline."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx is not installed")
    probe = subprocess.run(  # noqa: S603 - a fixed command
        [npx, "--offline", "--yes", "@modelcontextprotocol/inspector", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("@modelcontextprotocol/inspector is not available offline")
    environment = _environment(world) | {"CAREBRIDGE_API_KEY": world["key"]}
    ran = subprocess.run(  # noqa: S603 - a fixed command
        [npx, "--offline", "--yes", "@modelcontextprotocol/inspector", "--cli",
         sys.executable, "-m", "carebridge", "mcp", "--method", "tools/list"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    names = {t["name"] for t in json.loads(ran.stdout)["tools"]}
    assert {"search_patients", "book_appointment"} <= names
