"""Webhook delivery end to end: carebridge over the emulated CareCloud queues a delivery per
change, and the worker POSTs it to a real HTTP receiver (uvicorn on a loopback port) that
verifies every request with ``standardwebhooks``. The retry schedule runs on the harness's
manual clock; the HTTP is real.

Proved here: every delivery verifies; a receiver that is down and comes back gets every event
exactly once, in order per entity, with the same ``webhook-id`` across retries; deliveries die
after the retry budget and do not block the entity; a replay re-sends with the same ids; a
rotated secret overlaps with the old one, then replaces it; a subscription that keeps failing
is disabled with a ``webhook.disabled`` event; the routes are tenant-scoped and strict.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import text
from tests.support.webhooks import TOKEN, Arrival, Hooks, arrive, book, hooked

from carebridge.events.webhooks import FAILED
from carebridge.store.webhooks import LEASE

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[Hooks]:
    async with hooked(str(tmp_path / "store.db")) as h:
        yield h


def _in_order_per_entity(arrivals: list[Arrival]) -> None:
    seqs: dict[str, list[int]] = defaultdict(list)
    for arrival in arrivals:
        seqs[arrival.entity].append(arrival.seq)
    for entity, seen in seqs.items():
        assert seen == sorted(seen), entity


# --- tests ------------------------------------------------------------------------------------


async def test_down_then_up_delivers_each_event_once_in_order_with_stable_ids(
    hooks: Hooks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await _down_then_up(hooks)
    # ids and statuses are logged; never the URL's query or a payload
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "webhook delivered" in text
    assert "127.0.0.1" in text  # httpx's own request line, its query string cut
    assert TOKEN not in text
    names = (await hooks.live.get("/patients", limit=500)).json()["data"]
    assert not any(p["name"]["last"] in text for p in names)


@pytest.mark.postgres
async def test_delivery_on_postgresql(pg_url: str) -> None:
    async with hooked(pg_url) as on_postgres:
        await _down_then_up(on_postgres)
        await _disabled_after_persistent_failure(on_postgres)


async def _down_then_up(hooks: Hooks) -> None:
    hook, endpoint = await hooks.subscribe("all", ["patient.*", "appointment.*"])
    deliverer = hooks.deliverer()
    patients = (await hooks.live.get("/patients", limit=500)).json()["data"]
    assert await deliverer.drain() > 0  # the receiver is up: these go out at once
    first = await hooks.events("patient.*", "appointment.*")
    assert endpoint.unique() == {e["id"] for e in first}

    await hooks.server.down()
    appointment = await book(hooks.live, patients[0]["id"], nth=3)
    later = await hooks.events("patient.*", "appointment.*", after=first[-1]["seq"])
    mine = [e["type"] for e in later if e["entity_id"] == appointment]
    assert mine == ["appointment.created", "appointment.checked_in"]
    assert await deliverer.drain() > 0  # refused: retries scheduled
    await hooks.pump(deliverer, rounds=4, step=timedelta(minutes=30))
    pending = [d for d in await hooks.log(hook) if d["state"] == "pending"]
    assert pending
    assert all(d["attempts"] >= 2 for d in pending if d["type"] != "appointment.checked_in")
    assert {d["last_error"] for d in pending if d["attempts"]} == {FAILED}
    # the checked_in waits behind created, so it has never been tried
    waiting = [d for d in pending if d["type"] == "appointment.checked_in"]
    assert [d["attempts"] for d in waiting] == [0]

    await hooks.server.up()
    await hooks.pump(deliverer, rounds=2, step=timedelta(hours=1, seconds=1))
    assert endpoint.rejected == 0
    every = first + later
    assert len(endpoint.arrivals) == len(endpoint.unique()) == len(every)
    assert endpoint.unique() == {e["id"] for e in every}
    _in_order_per_entity(endpoint.arrivals)
    log = await hooks.log(hook)
    assert {d["state"] for d in log} == {"delivered"}
    assert {d["message_id"] for d in log} == endpoint.unique()  # the same ids after retries
    retried = [d for d in log if d["attempts"] > 1]
    assert retried
    assert all(d["last_status"] == 204 for d in log)


async def test_deliveries_die_after_the_retry_budget_and_replay_resends_them(
    hooks: Hooks,
) -> None:
    hook, endpoint = await hooks.subscribe("dead", ["patient.created"])
    deliverer = hooks.deliverer(disable_after_failures=10**6)
    await hooks.server.down()
    await hooks.live.get("/patients", limit=500)
    created = await hooks.events("patient.created")
    assert created
    await deliverer.drain()
    await hooks.pump(deliverer, rounds=13, step=timedelta(hours=6))  # 78 h > 3 days
    log = await hooks.log(hook)
    assert len(log) == len(created)
    assert {d["state"] for d in log} == {"dead"}
    assert all(d["attempts"] > 5 and d["last_error"] for d in log)
    assert all(d["next_attempt_at"] is None for d in log)

    await hooks.server.up()
    assert await deliverer.drain() == 0  # dead stays dead
    replay = await hooks.live.post(f"/webhooks/{hook}/replay?from_seq=1", None)
    assert replay.status_code == 202, replay.text
    assert replay.json()["queued"] == len(created)
    await deliverer.drain()
    assert endpoint.unique() == {e["id"] for e in created}
    assert len(endpoint.arrivals) == len(created)
    assert endpoint.rejected == 0


async def _by_type(hooks: Hooks, hook: str, appointment: str) -> dict[str, dict[str, Any]]:
    log = await hooks.log(hook)
    return {d["type"]: d for d in log if d["entity"] == f"appointment:{appointment}"}


async def test_a_dead_delivery_does_not_block_the_entitys_later_events(hooks: Hooks) -> None:
    hook, endpoint = await hooks.subscribe("entity", ["appointment.*"])
    deliverer = hooks.deliverer(give_up_after=timedelta(hours=2), disable_after_failures=10**6)
    patient = (await hooks.live.get("/patients", limit=1)).json()["data"][0]["id"]
    endpoint.mode = "fail"
    appointment = await book(hooks.live, patient, nth=4, check_in=False)
    hooks.live.clock.advance(timedelta(minutes=90))
    await arrive(hooks.live, appointment)
    await deliverer.drain()
    states = await _by_type(hooks, hook, appointment)
    assert states["appointment.checked_in"]["attempts"] == 0  # behind created
    await hooks.pump(deliverer, rounds=1, step=timedelta(hours=1))  # created's 2 h are up
    states = await _by_type(hooks, hook, appointment)
    assert states["appointment.created"]["state"] == "dead"
    assert states["appointment.checked_in"]["state"] == "pending"
    assert states["appointment.checked_in"]["attempts"] >= 1  # unblocked by the dead one
    endpoint.mode = "ok"
    await hooks.pump(deliverer, rounds=1, step=timedelta(hours=1, seconds=1))
    states = await _by_type(hooks, hook, appointment)
    assert states["appointment.checked_in"]["state"] == "delivered"
    mine = [a.type for a in endpoint.arrivals if a.entity == f"appointment:{appointment}"]
    assert mine == ["appointment.checked_in"]


async def test_the_background_loop_delivers_changes_as_they_happen(hooks: Hooks) -> None:
    hook, endpoint = await hooks.subscribe("loop", ["patient.created"])
    deliverer = hooks.deliverer()
    await hooks.live.get("/patients", limit=500)
    created = await hooks.events("patient.created")
    endpoint.expected = len(created)
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(partial(deliverer.serve, interval=0.01, stop=stop))
        with anyio.fail_after(10):
            await endpoint.all_in.wait()  # the receiver's socket says when
        stop.set()
    assert endpoint.unique() == {e["id"] for e in created}

    # cancelling the loop (a lifespan's task group at shutdown) cuts no write in half
    endpoint.expected = 2 * len(created)
    endpoint.all_in = asyncio.Event()
    await hooks.live.post(f"/webhooks/{hook}/replay?from_seq=1", None)
    async with anyio.create_task_group() as group:
        group.start_soon(partial(deliverer.serve, interval=0.01))
        with anyio.fail_after(10):
            await endpoint.all_in.wait()
        group.cancel_scope.cancel()
    # an attempt cut off in flight is unrecorded, not half-recorded: it goes again, same id,
    # once the lease its loop took has expired
    cut = [d for d in await hooks.log(hook) if d["state"] != "delivered"]
    assert all(d["state"] == "pending" and d["attempts"] == 0 for d in cut)
    await deliverer.drain()
    assert [d for d in await hooks.log(hook) if d["state"] != "delivered"] == cut
    hooks.live.clock.advance(LEASE + timedelta(seconds=1))
    await deliverer.drain()
    assert {d["state"] for d in await hooks.log(hook)} == {"delivered"}
    assert endpoint.unique() == {e["id"] for e in created}


async def test_an_answer_slower_than_the_timeout_is_a_failure(hooks: Hooks) -> None:
    hook, endpoint = await hooks.subscribe("slow", ["patient.created"])
    deliverer = hooks.deliverer(timeout=0.3, concurrency=64)
    endpoint.mode = "hang"
    await hooks.live.get("/patients", limit=500)
    created = await hooks.events("patient.created")
    assert await deliverer.drain() == len(created)  # concurrently: one timeout for all
    log = await hooks.log(hook)
    assert {(d["state"], d["last_error"], d["last_status"]) for d in log} == {
        ("pending", FAILED, None)
    }
    endpoint.release.set()
    endpoint.mode = "ok"
    await hooks.pump(deliverer, rounds=1, step=timedelta(seconds=10))
    assert endpoint.unique() == {e["id"] for e in created}
    assert {d["attempts"] for d in await hooks.log(hook)} == {2}


async def test_replay_from_a_seq_resends_with_the_same_message_ids(hooks: Hooks) -> None:
    hook, endpoint = await hooks.subscribe("replay", [])
    deliverer = hooks.deliverer()
    await hooks.live.get("/patients", limit=500)
    await deliverer.drain()
    every = await hooks.events()
    assert endpoint.unique() == {e["id"] for e in every}
    middle = every[len(every) // 2]["seq"]
    replay = await hooks.live.post(f"/webhooks/{hook}/replay?from_seq={middle}", None)
    assert replay.status_code == 202
    again = [e for e in every if e["seq"] >= middle]
    assert replay.json()["queued"] == len(again)
    before = len(endpoint.arrivals)
    await deliverer.drain()
    resent = endpoint.arrivals[before:]
    assert sorted(a.message_id for a in resent) == sorted(e["id"] for e in again)
    assert endpoint.unique() == {e["id"] for e in every}  # dedup by webhook-id: nothing new
    assert endpoint.rejected == 0


async def test_a_rotated_secret_overlaps_with_the_old_one_then_replaces_it(hooks: Hooks) -> None:
    hook, endpoint = await hooks.subscribe("rotate", ["patient.created"])
    old = endpoint.secrets[0]
    deliverer = hooks.deliverer(disable_after_failures=10**6)
    await hooks.live.get("/patients", limit=500)
    await deliverer.drain()
    assert endpoint.arrivals
    assert {a.signatures for a in endpoint.arrivals} == {1}

    rotated = await hooks.live.post(f"/webhooks/{hook}/rotate_secret?overlap_hours=24", None)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    listed = (await hooks.live.get("/webhooks")).json()["data"]
    assert all("secret" not in h for h in listed)

    async def replay() -> int:
        count = len(endpoint.arrivals)
        r = await hooks.live.post(f"/webhooks/{hook}/replay?from_seq=1", None)
        assert r.status_code == 202
        await deliverer.drain()
        return len(endpoint.arrivals) - count

    sent = len(endpoint.unique())
    endpoint.secrets = [old]  # a receiver that has not switched yet
    assert await replay() == sent
    endpoint.secrets = [new]  # a receiver that has
    assert await replay() == sent
    assert {a.signatures for a in endpoint.arrivals[-sent:]} == {2}
    assert endpoint.rejected == 0

    hooks.live.clock.advance(timedelta(hours=24, seconds=1))  # the overlap is over
    endpoint.secrets = [old]
    assert await replay() == 0
    assert endpoint.rejected == sent
    assert {d["last_status"] for d in (await hooks.log(hook))[:sent]} == {400}
    endpoint.secrets = [new]
    await hooks.pump(deliverer, rounds=1, step=timedelta(hours=1, seconds=1))
    assert len(endpoint.arrivals) == 3 * sent + sent
    assert {a.signatures for a in endpoint.arrivals[-sent:]} == {1}


async def test_a_persistently_failing_subscription_is_disabled_with_an_event(
    hooks: Hooks,
) -> None:
    await _disabled_after_persistent_failure(hooks)


async def _disabled_after_persistent_failure(hooks: Hooks) -> None:
    hook, endpoint = await hooks.subscribe("flaky", ["patient.*"])
    watch, watcher = await hooks.subscribe("watch", ["webhook.*"])
    deliverer = hooks.deliverer(disable_after_failures=5, disable_after=timedelta(hours=24))
    endpoint.mode = "busy"
    await hooks.live.get("/patients", limit=500)
    await hooks.live.post(f"/webhooks/{hook}/replay?from_seq=1", None)  # a store read before
    await deliverer.drain()
    failing = (await hooks.live.get(f"/webhooks/{hook}")).json()
    assert failing["consecutive_failures"] > 0
    assert failing["state"] == "enabled"

    endpoint.mode = "ok"  # one success restarts the count
    await hooks.pump(deliverer, rounds=1, step=timedelta(hours=1, seconds=1))
    assert (await hooks.live.get(f"/webhooks/{hook}")).json()["consecutive_failures"] == 0

    endpoint.mode = "busy"
    await hooks.live.post(f"/webhooks/{hook}/replay?from_seq=1", None)
    await deliverer.drain()
    await hooks.pump(deliverer, rounds=11, step=timedelta(hours=2))  # 22 h: not yet
    assert (await hooks.live.get(f"/webhooks/{hook}")).json()["state"] == "enabled"
    await hooks.pump(deliverer, rounds=2, step=timedelta(hours=2))
    disabled = (await hooks.live.get(f"/webhooks/{hook}")).json()
    assert disabled["state"] == "disabled"
    assert disabled["disabled_at"] is not None

    announced = await hooks.events("webhook.disabled")
    assert [(e["kind"], e["entity_id"]) for e in announced] == [("webhook", hook)]
    assert announced[0]["diff"]["state"] == ["enabled", "disabled"]
    assert [a.type for a in watcher.arrivals] == ["webhook.disabled"]  # the other hook hears
    assert watch != hook
    assert await deliverer.run_once() == 0  # a disabled hook's deliveries wait
    endpoint.mode = "ok"
    hooks.live.clock.advance(timedelta(hours=2))
    assert await deliverer.drain() == 0


async def test_webhook_routes_are_tenant_scoped_and_need_their_scopes(hooks: Hooks) -> None:
    hook, _ = await hooks.subscribe("mine", ["claim.*"])
    assert (await hooks.live.get("/webhooks", key="admin_b")).json()["data"] == []
    for method, path in (
        ("GET", f"/webhooks/{hook}"),
        ("DELETE", f"/webhooks/{hook}"),
        ("POST", f"/webhooks/{hook}/rotate_secret"),
        ("GET", f"/webhooks/{hook}/deliveries"),
        ("POST", f"/webhooks/{hook}/replay?from_seq=1"),
    ):
        r = await hooks.live.client.request(method, path, headers=hooks.live.auth("admin_b"))
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    await hooks.live.key("ten_a", "patient.read", "reader_a")
    assert (await hooks.live.get("/webhooks", key="reader_a")).status_code == 403
    await hooks.live.key("ten_a", "webhook.read", "hook_reader")
    assert (await hooks.live.get("/webhooks", key="hook_reader")).status_code == 200
    refused = await hooks.live.post(
        "/webhooks", {"url": "https://example.com/x"}, key="hook_reader"
    )
    assert refused.status_code == 403
    assert (await hooks.live.client.get("/webhooks")).status_code == 401

    mine = await hooks.live.get(f"/webhooks/{hook}")
    assert mine.json()["event_types"] == ["claim.*"]
    assert "secret" not in mine.json()
    gone = await hooks.live.client.delete(f"/webhooks/{hook}", headers=hooks.live.auth("admin_a"))
    assert gone.status_code == 204
    assert (await hooks.live.get(f"/webhooks/{hook}")).status_code == 404
    assert (await hooks.live.get("/webhooks")).json()["data"] == []
    async with hooks.live.deployment.engine.connect() as conn:
        left = (
            await conn.execute(text("SELECT name FROM vault_secrets WHERE name LIKE 'webhook.%'"))
        ).all()
    assert left == []


BAD = [
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "example.com/hook"}, "url"),
    ({"url": "https:///nohost"}, "url"),
    ({"event_types": ["patient.*"]}, "url"),
    ({"url": "https://example.com/x", "event_types": ["appointment.exploded"]}, "event_types"),
    ({"url": "https://example.com/x", "event_types": ["spaceship.*"]}, "event_types"),
    ({"url": "https://example.com/x", "event_types": "patient.*"}, "event_types"),
    ({"url": "https://example.com/x", "secret": "whsec_mine"}, "secret"),
]


async def test_bad_subscriptions_are_problems(hooks: Hooks) -> None:
    for body, field_name in BAD:
        r = await hooks.live.post("/webhooks", body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert [e["field"] for e in problem["errors"]] == [field_name], body
        assert "example.com" not in json.dumps(problem)  # problems never repeat the URL
    assert (await hooks.live.get("/webhooks")).json()["data"] == []


async def test_bad_paging_and_replay_arguments_are_problems(hooks: Hooks) -> None:
    hook, _ = await hooks.subscribe("args", [])
    cursor = await hooks.live.get(f"/webhooks/{hook}/deliveries", cursor="abc")
    assert cursor.status_code == 400
    assert cursor.json()["errors"][0]["field"] == "cursor"
    assert (await hooks.live.post(f"/webhooks/{hook}/replay?from_seq=0", None)).status_code == 422
    assert (await hooks.live.post(f"/webhooks/{hook}/replay", None)).status_code == 422
    overlap = await hooks.live.post(f"/webhooks/{hook}/rotate_secret?overlap_hours=1000", None)
    assert overlap.status_code == 422


async def test_two_delivery_loops_never_send_one_delivery_twice(hooks: Hooks) -> None:
    """Each loop claims what it sends (a lease), so two loops on one store split the work."""
    hook, endpoint = await hooks.subscribe("pair", [])
    del hook
    first, second = hooks.deliverer(), hooks.deliverer()
    await hooks.live.get("/patients", limit=500)
    every = await hooks.events()
    async with anyio.create_task_group() as group:
        group.start_soon(first.drain)
        group.start_soon(second.drain)
    assert len(endpoint.arrivals) == len(every)  # nothing twice
    assert endpoint.unique() == {e["id"] for e in every}  # nothing lost


async def test_a_claimed_delivery_is_not_due_again_until_its_lease_expires(hooks: Hooks) -> None:
    await hooks.subscribe("lease", ["patient.created"])
    await hooks.live.get("/patients", limit=500)
    now = hooks.live.clock.now()
    taken = await hooks.store.due(now=now, limit=1000)
    assert taken
    assert await hooks.store.due(now=now, limit=1000) == []  # another loop finds nothing
    later = now + LEASE + timedelta(seconds=1)
    again = await hooks.store.due(now=later, limit=1000)  # the taker died: they go again
    assert [d.message_id for d in again] == [d.message_id for d in taken]
