"""R3: 1,000 concurrent duplicate writes make one upstream appointment.

Half of the callers repeat one request with one ``Idempotency-Key`` (a client retrying in a
storm); the other half ask for the same slot under keys of their own (several clients racing
for it). The upstream's own table (the oracle) must hold exactly one appointment in that slot;
every same-key answer is the first answer or "in flight"; every other key is refused as taken
(or in flight), and the write ledger holds one booking.

The short form sends 200 of each; ``make chaos`` sends 500 of each, and runs on PostgreSQL too
in CI's services job.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from tests.chaos.figures import Figures
from tests.support.api import Live, book_body, running

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _in_flight(answer: httpx.Response) -> bool:
    return answer.status_code == 409 and str(answer.json().get("type", "")).endswith(
        "idempotency-key-in-flight"
    )


def _but_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != "request_id"}


def _in_slot(live: Live, body: dict[str, Any]) -> set[str]:
    """The upstream's booked (not cancelled) appointments at the body's slot."""
    start = body["start"].replace("Z", "")[:16]
    return {
        str(row["id"])
        for row in live.truth(
            "SELECT id, start_time FROM appointments WHERE practice_id = 1 AND status_code <> 'C'"
        )
        if str(row["start_time"]).replace("Z", "").replace(" ", "T")[:16] == start
    }


async def _race(live: Live, figures: Figures, each: int) -> None:
    patient = (await live.get("/patients", limit=1)).json()["data"][0]["id"]
    body = await book_body(live, patient, nth=2)
    posts_before = live.upstream.seen["POST /v2/appointments"]
    before = _in_slot(live, body)
    same: list[httpx.Response] = []
    other: list[httpx.Response] = []

    async def repeat() -> None:
        same.append(await live.post("/create_appointment", body, idem="storm-key"))

    async def rival(n: int) -> None:
        other.append(await live.post("/create_appointment", body, idem=f"rival-{n}"))

    async with anyio.create_task_group() as group:
        for n in range(each):
            group.start_soon(repeat)
            group.start_soon(rival, n)

    after = _in_slot(live, body)
    statuses = Counter(a.status_code for a in same + other)
    mine = [a.json() for a in same if a.status_code == 201]
    won = {a.json()["data"]["id"] for a in same + other if a.status_code == 201}
    upstream_new = len(after - before)
    figures.runs += 1
    figures.compared = 2 * each
    # an upstream appointment nobody was answered for is a duplicate; an answer without one,
    # or a same-key answer unlike the first, is wrong
    figures.duplicated = max(0, upstream_new - len(won))
    figures.lost = 0 if won else 1
    figures.wrong = sum(1 for c in mine if c != mine[0]) + max(0, len(won) - upstream_new)
    figures.notes = {f"http_{k}": v for k, v in sorted(statuses.items())} | {
        "upstream_new_in_slot": upstream_new,
        "upstream_posts": live.upstream.seen["POST /v2/appointments"] - posts_before,
    }

    assert set(statuses) <= {201, 409}, statuses
    assert won, "nobody booked the slot"
    # the repeated request won the slot or lost it to a rival: either way, every answer to it
    # is that one answer, or "still in flight"
    # (a replayed refusal is the same problem but for its own request_id)
    settled = [_but_request_id(a.json()) for a in same if not _in_flight(a)]
    assert settled, "the repeated request never finished"
    assert all(answer == settled[0] for answer in settled), "the same key answered differently"
    rivals = [a.json() for a in other if a.status_code == 409 and not _in_flight(a)]
    assert all(p["type"].endswith("slot-taken") for p in rivals), rivals[:3]
    ledger = await live.deployment.ledger.entries("ten_a")
    booked = {e["entity_id"] for e in ledger if e["operation"] == "create_appointment"}
    assert won <= booked
    assert figures.clean(), figures


STORM_LIMIT = "100000/60"
"""The storm is one key's thousand requests in a second: the key's own rate limit (tested in
tests/api) is lifted, so what is raced is the idempotency slot, not the quota."""


@pytest.mark.parametrize("each", [200, pytest.param(500, marks=pytest.mark.chaos)])
async def test_a_thousand_concurrent_duplicates_book_one_appointment(
    each: int, tmp_path: Path, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREBRIDGE_RATE_LIMIT", STORM_LIMIT)
    async with running(str(tmp_path / "store.db")) as live:
        await _race(live, figures, each)


@pytest.mark.postgres
async def test_concurrent_duplicates_book_one_appointment_on_postgresql(
    pg_url: str, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREBRIDGE_RATE_LIMIT", STORM_LIMIT)
    async with running(pg_url) as live:
        await _race(live, figures, 500)
