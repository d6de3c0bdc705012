"""The API under bad input: every malformed id, integer, date, instant and oversized body is a
4xx problem naming what was wrong, never a 5xx or a traceback; every answer carries nosniff and
HSTS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from tests.support.api import API, Live, running

from carebridge.api.app import create_app
from carebridge.api.main import build, max_body_bytes, shell
from carebridge.errors import ConfigError

pytestmark = pytest.mark.anyio

HSTS = "max-age=63072000; includeSubDomains"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db"), patients=4) as running_live:
        yield running_live


def problem(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["status"] == status
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


async def a_patient(live: Live) -> str:
    reply = await live.get("/patients", limit=1)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["data"][0]["id"])


async def test_empty_or_malformed_ids_are_422_naming_the_parameter(live: Live) -> None:
    window = {"start": "2026-12-10", "end": "2026-12-11"}
    for value in ("", "x", "pat_abc", "vr_ABC", "vr_a b"):
        reply = await live.get("/availability", visit_reason_id=value, **window)
        assert fields(problem(reply, 422)) == {"visit_reason_id"}, value
    assert fields(problem(await live.get("/balances", patient_id=""), 422)) == {"patient_id"}
    assert fields(problem(await live.get("/labs", patient_id=""), 422)) == {"patient_id"}
    assert fields(problem(await live.get("/patients/vr_1"), 422)) == {"patient_id"}
    assert fields(problem(await live.get("/claims/-1"), 422)) == {"claim_id"}
    reply = await live.get("/appointments", provider_id="", location_id="loc_")
    assert fields(problem(reply, 422)) == {"provider_id", "location_id"}
    reply = await live.get("/eligibility", patient_id="")
    assert fields(problem(reply, 422)) == {"patient_id"}


async def test_sequence_numbers_past_signed_64_bits_are_422(live: Live) -> None:
    for path in ("/events", "/audit_events"):
        for after in ("9223372036854775808", "99999999999999999999999", "-1"):
            assert fields(problem(await live.get(path, after=after), 422)) == {"after"}, path
        reply = await live.get(path, after="9223372036854775807")
        assert reply.status_code == 200, reply.text
        assert reply.json()["data"] == []


async def test_instants_whose_utc_conversion_overflows_are_422(live: Live) -> None:
    patient = await a_patient(live)
    for start in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        reply = await live.post("/create_encounter", {"patient_id": patient, "start": start})
        assert fields(problem(reply, 422)) == {"start"}, start
        reply = await live.get("/encounters", start=start)
        assert fields(problem(reply, 422)) == {"start"}, start
        for path in ("/patients", "/claims", "/payments"):
            reply = await live.get(path, updated_since=start)
            assert fields(problem(reply, 422)) == {"updated_since"}, (path, start)


async def test_windows_past_the_calendar_are_422_with_a_readable_detail(live: Live) -> None:
    reply = await live.get("/appointments", start="9999-12-31", end="9999-12-31")
    body = problem(reply, 422)
    assert fields(body) == {"start", "end"}
    assert all("1900-01-01 to 2199-12-31" in e["message"] for e in body["errors"])
    reply = await live.get(
        "/availability", visit_reason_id="vr_1", start="9999-12-30", end="9999-12-31"
    )
    assert fields(problem(reply, 422)) == {"start", "end"}
    reply = await live.get("/eligibility", patient_id="pat_1", service_date="0001-01-01")
    assert fields(problem(reply, 422)) == {"service_date"}
    # a day within the calendar still reads, as a day or as an instant
    for start in ("2026-11-20", "2026-11-20T00:00:00-05:00"):
        assert (await live.get("/appointments", start=start)).status_code == 200, start


async def test_updated_since_is_an_rfc3339_instant_never_an_epoch(live: Live) -> None:
    for value in ("0.5", "1700000000", "2026-11-01T00:00:00", "2026-11-01", "yesterday"):
        reply = await live.get("/patients", updated_since=value)
        assert fields(problem(reply, 422)) == {"updated_since"}, value
    for value in ("2026-11-01T00:00:00Z", "2026-11-01T00:00:00.5+01:00"):
        assert (await live.get("/patients", updated_since=value)).status_code == 200, value
    spec = (await live.client.get("/openapi.json")).json()
    since = next(
        p for p in spec["paths"]["/patients"]["get"]["parameters"] if p["name"] == "updated_since"
    )
    assert "RFC 3339" in since["description"]
    assert "epoch" in since["description"]


async def test_numbers_for_dates_and_instants_in_bodies_are_422(live: Live) -> None:
    patient = await a_patient(live)
    reply = await live.post("/create_encounter", {"patient_id": patient, "start": 0.5})
    assert fields(problem(reply, 422)) == {"start"}
    charge = {
        "patient_id": patient,
        "procedure_code": "99213",
        "diagnosis_codes": ["J06.9"],
        "service_date": 1700000000,
    }
    assert fields(problem(await live.post("/create_charge", charge), 422)) == {"service_date"}


async def test_a_body_over_the_limit_is_413_before_it_is_parsed(live: Live) -> None:
    before = live.upstream.writes()
    headers = live.auth("admin_a") | {"content-type": "application/json"}
    huge = b'{"patient_id": "' + b"a" * (50 * 1024 * 1024) + b'"}'
    reply = await live.client.post("/create_encounter", content=huge, headers=headers)
    body = problem(reply, 413)
    assert body["title"] == "Content Too Large"
    assert "1048576" in body["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(64):
            yield b"[" * 65536

    reply = await live.client.post("/create_encounter", content=chunks(), headers=headers)
    assert "content-length" not in reply.request.headers
    problem(reply, 413)
    assert live.upstream.writes() == before


async def test_the_body_limit_is_configurable(live: Live) -> None:
    app = build(live.deployment, max_body_bytes=64)
    headers = live.auth("admin_a") | {"content-type": "application/json"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API) as c:
        small = b'{"encounter_id": "enc_1"}'
        reply = await c.post("/sign_encounter", content=small, headers=headers)
        assert reply.status_code == 404, reply.text  # parsed: the encounter is unknown
        big = b'{"encounter_id": "enc_' + b"1" * 64 + b'"}'
        problem(await c.post("/sign_encounter", content=big, headers=headers), 413)
        bad_json = b"{" * 65  # over the limit is 413, not the 422 that parsing would give
        problem(await c.post("/sign_encounter", content=bad_json, headers=headers), 413)


async def test_every_answer_has_nosniff_and_hsts_and_phi_is_never_cached(live: Live) -> None:
    patient = await a_patient(live)
    replies = [
        await live.client.get("/health"),
        await live.client.get("/openapi.json"),
        await live.client.get("/patients"),  # 401
        await live.get("/patients", limit=1),
        await live.get(f"/patients/{patient}"),
        await live.get("/patients/pat_unknown"),  # 404
        await live.get("/patients", limit=0),  # 422
        await live.get("/no/such/route"),
        await live.client.delete("/patients", headers=live.auth("admin_a")),  # 405
        await live.post("/create_encounter", {"patient_id": patient, "start": "nope"}),
    ]
    for reply in replies:
        assert reply.headers["x-content-type-options"] == "nosniff", reply.request.url
        assert reply.headers["strict-transport-security"] == HSTS, reply.request.url
        assert "no-store" in reply.headers["cache-control"], reply.request.url
    read = replies[3]
    assert read.headers["cache-control"] == "private, no-store"
    assert "age" in read.headers  # the freshness header is kept
    assert replies[8].status_code == 405
    assert replies[8].headers["allow"] == "GET"


def test_the_deployment_reads_its_body_limit_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CAREBRIDGE_MAX_BODY_BYTES", raising=False)
    assert max_body_bytes() == 1024 * 1024
    monkeypatch.setenv("CAREBRIDGE_MAX_BODY_BYTES", "4096")
    assert max_body_bytes() == 4096
    for wrong in ("0", "-1", "1e6", "lots"):
        monkeypatch.setenv("CAREBRIDGE_MAX_BODY_BYTES", wrong)
        with pytest.raises(ConfigError):
            max_body_bytes()


async def test_an_undeclared_query_parameter_is_422_naming_it(live: Live) -> None:
    body = problem(await live.get("/patients", update_since="2026-11-01T00:00:00Z"), 422)
    assert fields(body) == {"update_since"}
    assert fields(problem(await live.get("/events", **{"": "0.0"}), 422)) == {""}
    reply = await live.client.get("/patients?x=1")  # the credential is asked for first
    assert reply.status_code == 401
    # routes without a caller check their query all the same
    for path in ("/health?x=1", "/docs?x=1", "/redoc?x=1"):
        assert fields(problem(await live.client.get(path), 422)) == {"x"}, path
    answer = await live.client.post("/authenticate?x=1", json={})
    assert fields(problem(answer, 422)) == {"x"}
    assert (await live.client.get("/health")).status_code == 200


async def test_an_app_refuses_a_route_that_would_let_undeclared_parameters_pass(
    live: Live,
) -> None:
    unchecked = APIRouter()

    @unchecked.get("/unchecked")
    async def route(limit: int = 1) -> dict[str, int]:
        return {"limit": limit}

    with pytest.raises(TypeError, match="/unchecked"):
        create_app(live.deployment.live, live.deployment.keys, extra_routers=[unchecked])


async def test_a_path_the_mount_cannot_route_is_a_problem_with_the_headers(live: Live) -> None:
    @asynccontextmanager
    async def lifespan(outer: FastAPI) -> AsyncIterator[None]:
        outer.mount("/", build(live.deployment))
        yield

    app = shell(lifespan)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=API) as client:
            reply = await client.get("/webhooks/a%0Ab/deliveries", headers=live.auth("admin_a"))
    problem(reply, 404)
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["strict-transport-security"] == HSTS
