"""R4: a receiver down for an hour of simulated time gets every event once it is back: each
event under one ``webhook-id`` (the same id on every retry), in order per entity, nothing dead,
and no delivery left pending.

While the receiver is down, the practice keeps working: bookings and check-ins through the API
and a sync of what the emulated practice did on its own. The delivery loop keeps trying every
five simulated minutes, with its jittered backoff. The short form books three appointments;
``make chaos`` books ten.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from tests.chaos.figures import Figures
from tests.support.sync import TENANT, control
from tests.support.webhooks import book, hooked

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("bookings", [3, pytest.param(10, marks=pytest.mark.chaos)])
async def test_a_receiver_down_for_an_hour_gets_every_event_once_in_order(
    bookings: int, tmp_path: Path, figures: Figures
) -> None:
    async with hooked(str(tmp_path / "store.db")) as hooks:
        live = hooks.live
        hook, endpoint = await hooks.subscribe("all", ["patient.*", "appointment.*"])
        deliverer = hooks.deliverer()
        patients = (await live.get("/patients", limit=500)).json()["data"]
        await deliverer.drain()

        await hooks.server.down()
        for n in range(bookings):
            await book(live, patients[n % len(patients)]["id"], nth=n + 1)
        await control(live, "POST", "/_sandbox/clock/advance", {"minutes": 120})
        report = await live.deployment.sync_report(TENANT, ["appointments", "patients"])
        assert report.ok, report.as_json()
        for _ in range(12):  # an hour, a try every five minutes
            await hooks.pump(deliverer, rounds=1, step=timedelta(minutes=5))
        down_log = await hooks.log(hook)
        assert any(d["state"] == "pending" and d["attempts"] for d in down_log)
        assert not [d for d in down_log if d["state"] == "dead"]

        await hooks.server.up()
        await hooks.pump(deliverer, rounds=4, step=timedelta(hours=1, seconds=1))

        events = await hooks.events("patient.*", "appointment.*")
        log = await hooks.log(hook)
        order: dict[str, list[int]] = defaultdict(list)  # first arrivals, per entity
        for arrival in endpoint.arrivals:
            if arrival.seq not in order[arrival.entity]:
                order[arrival.entity].append(arrival.seq)
        figures.runs += 1
        figures.compared = len(events)
        figures.delivered = len(endpoint.unique())
        figures.lost = len({e["id"] for e in events} - endpoint.unique())
        figures.duplicates = len(endpoint.unique()) - len({a.seq for a in endpoint.arrivals})
        figures.wrong = sum(1 for seqs in order.values() if seqs != sorted(seqs))
        figures.stuck = sum(1 for d in log if d["state"] != "delivered")
        figures.notes = {
            "arrivals": len(endpoint.arrivals),
            "retried": sum(1 for d in log if d["attempts"] > 1),
            "max_attempts": max(d["attempts"] for d in log),
        }
        assert endpoint.rejected == 0
        assert {d["message_id"] for d in log} == endpoint.unique()
        assert figures.clean(), figures
