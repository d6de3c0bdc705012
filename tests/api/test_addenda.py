"""``POST /encounters/{id}/addenda``: an addendum on a signed encounter, through the write path
(ledger, idempotency, read-back), seen in the emulator's own database; refusals write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.api import Live, running

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    path = Path(tmp_path_factory.mktemp("addenda")) / "store.db"
    async with running(str(path), patients=6) as here:
        await here.key("ten_a", "encounter.read", "reader_a")
        yield here


def addenda(live: Live, text: str) -> int:
    rows = live.truth("SELECT COUNT(*) AS n FROM encounter_addenda WHERE text = ?", (text,))
    return int(rows[0]["n"])


async def test_an_addendum_on_a_signed_encounter_is_201_naming_the_encounter(live: Live) -> None:
    patient = (await live.get("/patients", limit=1)).json()["data"][0]["id"]
    made = await live.post("/create_encounter", {"patient_id": patient, "diagnoses": ["J06.9"]})
    assert made.status_code == 201, made.text
    encounter = made.json()["data"]["id"]
    path = f"/encounters/{encounter}/addenda"

    early = "Addendum sent while the encounter is open."
    refused = await live.post(path, {"text": early})
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert addenda(live, early) == 0

    assert (await live.post("/sign_encounter", {"encounter_id": encounter})).status_code == 200
    note = "Culture result reviewed after signing; plan unchanged."
    answer = await live.post(path, {"text": note}, idem="addendum-1")
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == f"/encounters/{encounter}"
    body = answer.json()
    assert body["confirmation"] == "confirmed"
    assert body["ledger_id"].startswith("led_")
    assert body["data"]["id"] == encounter
    assert [a["text"] for a in body["data"]["addenda"]] == [note]
    assert addenda(live, note) == 1

    again = await live.post(path, {"text": note}, idem="addendum-1")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["ledger_id"] == body["ledger_id"]
    assert addenda(live, note) == 1, "a replayed key writes nothing"

    stored = (await live.get(f"/encounters/{encounter}")).json()
    assert [a["text"] for a in stored["addenda"]] == [note]
    v1 = await live.post(f"/v1{path}", {"text": note + " (v1)"})
    assert v1.status_code == 201, v1.text
    entries = await live.deployment.ledger.entries("ten_a")
    assert [e["state"] for e in entries if e["operation"] == "add_addendum"] == [
        "rejected",
        "confirmed",
        "confirmed",
    ]


async def test_bad_addenda_are_refused_and_write_nothing(live: Live) -> None:
    before = live.upstream.writes()
    patient = (await live.get("/patients", limit=1)).json()["data"][0]["id"]
    encounters = (await live.get("/encounters", patient_id=patient)).json()["data"]
    mine = encounters[0]["id"]
    empty = await live.post(f"/encounters/{mine}/addenda", {"text": "   "})
    assert empty.status_code == 422
    assert [e["field"] for e in empty.json()["errors"]] == ["text"]
    extra = await live.post(f"/encounters/{mine}/addenda", {"text": "ok", "author": "x"})
    assert extra.status_code == 422
    unknown = await live.post("/encounters/enc_unknown1/addenda", {"text": "a note"})
    assert unknown.status_code == 404
    foreign = await live.post(f"/encounters/{mine}/addenda", {"text": "a note"}, key="admin_b")
    assert foreign.status_code == 404, "another tenant's encounter is not found, not forbidden"
    reader = await live.post(f"/encounters/{mine}/addenda", {"text": "a note"}, key="reader_a")
    assert reader.status_code == 403
    assert live.upstream.writes() == before
