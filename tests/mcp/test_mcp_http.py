"""The API's ``/mcp`` over streamable HTTP, in process: the API app over an emulated tenant,
reached through httpx2's ASGI transport by the SDK's own client. Without a credential ``/mcp``
answers 401 naming its protected-resource metadata; with a key, ``tools/list`` shows that key's
tools only, a read tool answers, and a booking previewed then confirmed is in the emulator's
own database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from mcp.client.streamable_http import streamable_http_client
from tests.support.mcp import Bed, bed

from carebridge.api.main import build
from carebridge.mcp.server import READ_SCOPES, WRITE_OPERATIONS
from mcp import Client

pytestmark = pytest.mark.anyio

BASE = "http://carebridge.test"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bed]:
    path = Path(tmp_path_factory.mktemp("mcp-http")) / "store.db"
    async with bed(str(path), patients=6) as here:
        await here.key("ten_a", "admin", "admin_a")
        await here.key("ten_a", "patient.read", "reader_a")
        yield here


@pytest.fixture(scope="module")
def app(live: Bed) -> FastAPI:
    return build(live.deployment)


def _http(app: FastAPI, token: str | None = None) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url=BASE, headers=headers, timeout=30
    )


@asynccontextmanager
async def mcp_client(app: FastAPI, token: str) -> AsyncIterator[Client]:
    """The SDK's client over streamable HTTP, reaching the app in process."""
    async with _http(app, token) as http:
        transport = streamable_http_client(f"{BASE}/mcp", http_client=http)
        async with Client(transport, cache=None) as client:
            yield client


async def _tool(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_mcp_without_a_credential_is_401_naming_its_resource_metadata(app: FastAPI) -> None:
    async with _http(app) as http:
        for token in (None, "cbk_not_a_key"):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            answer = await http.post("/mcp", json=ping, headers=headers)
            assert answer.status_code == 401
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["status"] == 401
            challenge = answer.headers["www-authenticate"]
            assert challenge == (
                f'Bearer resource_metadata="{BASE}/.well-known/oauth-protected-resource/mcp"'
            )
        for path in (
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ):
            found = await http.get(path)
            assert found.status_code == 200
            metadata = found.json()
            assert metadata["resource"] == f"{BASE}/mcp"
            assert metadata["authorization_servers"] == [BASE]
            assert metadata["bearer_methods_supported"] == ["header"]
            assert {"patient.read", "appointment.write", "admin"} <= set(
                metadata["scopes_supported"]
            )


async def test_tools_list_over_http_follows_the_keys_scopes(live: Bed, app: FastAPI) -> None:
    async with mcp_client(app, live.keys["reader_a"]) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"search_patients", "get_patient_summary"}
        found = await _tool(client, "search_patients", limit=2)
        assert len(found["patients"]) == 2
        assert set(found["patients"][0]) == {"id", "name", "birth_date", "active"}
        refused = await client.call_tool("list_denials", {"limit": 1})
        assert refused.is_error
        assert "claim.read" in refused.content[0].text  # type: ignore[union-attr]
    async with mcp_client(app, live.keys["admin_a"]) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == set(READ_SCOPES) | set(WRITE_OPERATIONS)


def _booked(live: Bed, start: str) -> int:
    at = datetime.fromisoformat(start).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = live.truth(
        "SELECT COUNT(*) AS n FROM appointments WHERE start_time = ? AND status_code "
        "NOT IN ('C', 'R')",
        (at,),
    )
    return int(rows[0]["n"])


async def test_a_booking_over_http_is_previewed_then_confirmed_upstream(
    live: Bed, app: FastAPI
) -> None:
    async with mcp_client(app, live.keys["admin_a"]) as client:
        patient = (await _tool(client, "search_patients", limit=1))["patients"][0]["id"]
        resource = (await _tool(client, "list_practice", kind="resource"))["items"][0]
        reason = resource["visit_reason_ids"][1]
        slots = await _tool(
            client,
            "find_availability",
            visit_reason_id=reason,
            start="2026-11-25",
            end="2026-11-26",
            resource_id=resource["id"],
        )
        slot = slots["slots"][1]
        args = {
            "patient_id": patient,
            "resource_id": slot["resource_id"],
            "location_id": slot["location_id"],
            "visit_reason_id": reason,
            "start": slot["start"],
        }
        before = _booked(live, slot["start"])
        preview = await _tool(client, "book_appointment", **args)
        assert preview["stage"] == "preview"
        assert preview["checks"][0]["ok"] is True
        assert _booked(live, slot["start"]) == before
        token = preview["confirmation_token"]
        done = await _tool(client, "book_appointment", **args, confirmation=token)
        assert done["stage"] == "done"
        assert done["confirmation"] == "confirmed"
        assert done["record"]["patient_id"] == patient
        assert _booked(live, slot["start"]) == before + 1
    entries = await live.deployment.audit.events("ten_a", after=0, limit=10_000)
    done_entry = next(e for e in entries if str(e["route"]).startswith("MCP book_appointment done"))
    assert done_entry["principal"] == "key_admin_a"
    assert done_entry["patient_ids"] == [patient]


async def test_a_policy_is_set_by_an_admin_with_a_strict_boolean_only(
    live: Bed, app: FastAPI
) -> None:
    async with _http(app, live.keys["admin_a"]) as admin:
        set_ = await admin.put("/mcp/policies/key_reader_a", json={"needs_person": True})
        coerced = await admin.put("/mcp/policies/key_reader_a", json={"needs_person": 0})
        cleared = await admin.put("/mcp/policies/key_reader_a", json={"needs_person": False})
    async with _http(app, live.keys["reader_a"]) as reader:
        refused = await reader.put("/mcp/policies/key_reader_a", json={"needs_person": False})
    assert (set_.status_code, set_.json()) == (200, {"needs_person": True})
    assert coerced.status_code == 422
    assert coerced.headers["content-type"].startswith("application/problem+json")
    assert "needs_person" in coerced.text
    assert cleared.json() == {"needs_person": False}
    assert refused.status_code == 403
