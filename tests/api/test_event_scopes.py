"""``event.read`` opens the change log, not the records: events are filtered by the reader's
scopes, on ``GET /events`` and in webhook deliveries.

Proved here: a key with ``event.read`` alone sees every event's place in the log but no diff or
patient of a record it may not read (addresses, balances), and operational events whole; a key
that may read a kind sees its events whole; the audit log names only the patients shown; paging
keeps its positions; a webhook key may subscribe only to the types its scopes read ("every
type" is stored as every readable type), and each delivery carries what the subscribing key may
see.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.support.api import Live, running

from carebridge.domain.event_scopes import KIND_SCOPES
from carebridge.events.webhooks import Deliverer, DeliveryPolicy
from carebridge.services.reads import PHI_KINDS, read_scope
from carebridge.store import events as event_log

pytestmark = pytest.mark.anyio

SHOWN = {"id", "seq", "type", "kind", "occurred_at", "detected_at", "redacted"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async with running(str(tmp_path / "store.db"), patients=12) as made:
        await made.get("/patients", limit=500)  # patient.created, with addresses and balances
        await made.get("/appointments", limit=500)  # appointment.created
        async with made.deployment.engine.begin() as conn:
            await event_log.announce(
                conn,
                "ten_a",
                "integration.degraded",
                kind="stream",
                entity_id="claims",
                details={"stream": "claims", "error": "UpstreamStatusError"},
                at=made.clock.now(),
            )
        await made.key("ten_a", "event.read", "events_only")
        await made.key("ten_a", "event.read,patient.read", "events_patients")
        yield made


async def _events(live: Live, key: str, **params: Any) -> list[dict[str, Any]]:
    answer = await live.get("/events", key=key, limit=500, **params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def test_the_event_scopes_are_the_read_routes_scopes() -> None:
    for kind, scope in KIND_SCOPES.items():
        assert scope == read_scope(kind), kind
    assert {"patient", "appointment", "claim", "payment", "eligibility"} <= set(KIND_SCOPES)
    assert set(KIND_SCOPES) <= PHI_KINDS


async def test_event_read_alone_sees_the_log_but_no_record(live: Live) -> None:
    whole = await _events(live, "admin_a")
    seen = await _events(live, "events_only")
    assert [e["seq"] for e in seen] == [e["seq"] for e in whole]  # every place, in order
    kinds = {e["kind"] for e in seen}
    assert {"patient", "appointment", "stream"} <= kinds
    for event in seen:
        if event["kind"] == "stream":
            assert event["redacted"] is False
            assert event["diff"] == {"stream": "claims", "error": "UpstreamStatusError"}
            continue
        assert event["redacted"] is True
        assert event["diff"] is None
        assert event["patient_id"] is None
        assert event["entity_id"] is None
        assert {k for k, v in event.items() if v is not None} == SHOWN
    text = orjson.dumps(seen).decode()
    patients = (await live.get("/patients", limit=500)).json()["data"]
    for patient in patients:
        assert patient["name"]["last"] not in text
        assert patient["id"] not in text
    # the admin's view of the same events is whole
    assert all(e["redacted"] is False for e in whole)
    assert any(e["diff"] and "addresses" in e["diff"] for e in whole if e["kind"] == "patient")


async def test_a_kinds_read_scope_shows_that_kinds_events_whole(live: Live) -> None:
    seen = await _events(live, "events_patients")
    patients = [e for e in seen if e["kind"] == "patient"]
    appointments = [e for e in seen if e["kind"] == "appointment"]
    assert patients
    assert appointments
    assert all(e["redacted"] is False and e["diff"] and e["patient_id"] for e in patients)
    assert all(e["redacted"] is True and e["diff"] is None for e in appointments)
    only = await _events(live, "events_only", types=["patient.*"])
    assert [e["seq"] for e in only] == [e["seq"] for e in patients]


async def test_paging_keeps_its_positions_and_the_audit_names_only_patients_shown(
    live: Live,
) -> None:
    first = await live.get("/events", key="events_only", limit=3)
    page = first.json()
    assert page["next_cursor"] == str(page["data"][-1]["seq"])
    assert page["has_more"] is True
    following = await live.get("/events", key="events_only", limit=3, after=page["next_cursor"])
    assert following.json()["data"][0]["seq"] > page["data"][-1]["seq"]
    audit = (await live.get("/audit_events", limit=500)).json()["data"]
    reads = [e for e in audit if e["route"] == "GET /events"]
    assert reads
    assert all(e["patient_ids"] == [] for e in reads)
    await _events(live, "events_patients")
    audit = (await live.get("/audit_events", limit=500)).json()["data"]
    assert [e for e in audit if e["route"] == "GET /events"][-1]["patient_ids"]


async def test_a_webhook_key_subscribes_only_to_what_it_may_read(live: Live) -> None:
    await live.key("ten_a", "webhook.write,webhook.read", "hooks_only")
    await live.key("ten_a", "webhook.write,appointment.read", "hooks_appointments")
    url = "https://hooks.example.com/carebridge"

    refused = await live.post(
        "/webhooks", {"url": url, "event_types": ["patient.*"]}, key="hooks_only"
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == "this key lacks the scope patient.read for patient.*"
    refused = await live.post(
        "/webhooks",
        {"url": url, "event_types": ["appointment.created", "claim.paid", "payment.posted"]},
        key="hooks_appointments",
    )
    assert refused.status_code == 403
    assert "claim.read for claim.paid" in refused.json()["detail"]
    assert "payment.read for payment.posted" in refused.json()["detail"]
    assert (await live.get("/webhooks")).json()["data"] == []

    every: dict[str, list[str]] = {}
    for key in ("hooks_only", "hooks_appointments", "admin_a"):
        for asked in ([], ["*"]):
            made = await live.post("/webhooks", {"url": url, "event_types": asked}, key=key)
            assert made.status_code == 201, made.text
            every.setdefault(key, made.json()["event_types"])
            assert made.json()["event_types"] == every[key]
    assert every["hooks_only"] == ["integration.*", "upstream.*", "webhook.*"]
    assert every["hooks_appointments"] == [
        "appointment.*",
        "integration.*",
        "upstream.*",
        "webhook.*",
    ]
    assert every["admin_a"] == []
    fine = await live.post(
        "/webhooks", {"url": url, "event_types": ["appointment.*"]}, key="hooks_appointments"
    )
    assert fine.status_code == 201
    assert fine.json()["scopes"] == ["appointment.read", "webhook.write"]


async def test_deliveries_carry_what_the_subscribing_key_may_read(live: Live) -> None:
    await live.key("ten_a", "webhook.write,appointment.read", "hooks_appointments")
    bodies: dict[str, list[dict[str, Any]]] = {}

    def receive(request: httpx.Request) -> httpx.Response:
        bodies.setdefault(request.url.path, []).append(orjson.loads(request.content)["data"])
        return httpx.Response(204)

    hooks: dict[str, str] = {}
    for path, key in {"/appointments-key": "hooks_appointments", "/admin": "admin_a"}.items():
        made = await live.post(
            "/webhooks", {"url": f"https://hooks.example.com{path}", "event_types": []}, key=key
        )
        assert made.status_code == 201, made.text
        hooks[path] = made.json()["id"]
    # one made before subscriptions kept their key's scopes: it may read nothing
    old = await live.deployment.webhooks.create(
        "ten_a",
        url="https://hooks.example.com/old",
        event_types=("patient.created",),
        secret="whsec_" + "A" * 43 + "=",
        now=live.clock.now(),
    )
    hooks["/old"] = old.id
    for hook in hooks.values():  # every event so far, to every subscription that takes it
        replayed = await live.post(f"/webhooks/{hook}/replay?from_seq=1", None)
        assert replayed.json()["queued"] > 0, replayed.text
    deliverer = Deliverer(
        live.deployment.webhooks,
        httpx.AsyncClient(transport=httpx.MockTransport(receive)),
        live.clock.now,
        random.Random(3),
        DeliveryPolicy(),
    )
    await deliverer.drain()
    by_admin, by_key, by_old = bodies["/admin"], bodies["/appointments-key"], bodies["/old"]
    assert {e["kind"] for e in by_key} == {"appointment", "stream"}
    assert all(e["redacted"] is False and e["diff"] for e in by_key)
    assert {e["kind"] for e in by_admin} == {"appointment", "patient", "stream"}
    assert all(e["redacted"] is False and e["diff"] for e in by_admin)
    assert {e["type"] for e in by_old} == {"patient.created"}
    assert all(e["redacted"] is True and e["diff"] is None for e in by_old)
    assert all(e["patient_id"] is None and e["entity_id"] is None for e in by_old)
