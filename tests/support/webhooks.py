"""Webhook deliveries to a real receiver: a Starlette app that verifies every request with
``standardwebhooks``, served by uvicorn in the test's event loop on a loopback port (it can go
down and come back on the same port), and the subscription harness over the live API
(``hooked``: subscribe, read the event and delivery logs, pump a deliverer on the manual clock).
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.support.api import API, Live, running

from carebridge.api.app import create_app
from carebridge.api.routes import auth as auth_routes
from carebridge.api.routes import webhooks as webhook_routes
from carebridge.domain.urls import ALLOW_ENV
from carebridge.events.webhooks import Deliverer, DeliveryPolicy, webhook_client
from carebridge.services.webhooks import Webhooks
from carebridge.store.webhooks import SqlWebhooks
from carebridge.wiring.api import webhook_urls

TOKEN = "tok3n-in-the-query"
"""A secret in every receiving URL's query, which no log may show."""
URLS = webhook_urls({ALLOW_ENV: "127.0.0.1"})  # the receiver is local: the development setting
"""The URL policy of the deliveries: loopback receivers allowed."""


# --- the receiver ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    message_id: str
    type: str
    entity: str
    seq: int
    signatures: int


@dataclass
class Endpoint:
    """One receiving URL: the secrets it verifies with, and how it answers."""

    secrets: list[str]
    mode: str = "ok"  # ok (204) | fail (500) | busy (503) | hang (until released)
    arrivals: list[Arrival] = field(default_factory=list)
    rejected: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)

    def unique(self) -> set[str]:
        return {a.message_id for a in self.arrivals}


class Receiver:
    """A Starlette app that verifies Standard Webhooks signatures, at ``/<name>``."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.app = Starlette(routes=[Route("/{name}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        endpoint = self.endpoints[request.path_params["name"]]
        body = await request.body()
        headers = dict(request.headers)
        payload: Any = None
        for secret in endpoint.secrets:
            try:
                payload = Webhook(secret).verify(body, headers)
                break
            except Exception:  # noqa: BLE001, S112 - a malformed header raises ValueError
                continue
        if payload is None:
            endpoint.rejected += 1
            return Response(status_code=400)
        if endpoint.mode == "fail":
            return Response(status_code=500)
        if endpoint.mode == "busy":
            return Response(status_code=503)
        if endpoint.mode == "hang":
            await endpoint.release.wait()
            return Response(status_code=204)
        data = payload["data"]
        assert payload["id"] == headers["webhook-id"] == data["id"]
        endpoint.arrivals.append(
            Arrival(
                headers["webhook-id"],
                payload["type"],
                f"{data['kind']}:{data['entity_id']}",
                data["seq"],
                len(headers["webhook-signature"].split(" ")),
            )
        )
        if endpoint.expected and len(endpoint.arrivals) >= endpoint.expected:
            endpoint.all_in.set()
        return Response(status_code=204)


def listen(port: int = 0) -> socket.socket:
    """A loopback socket, listening (``port`` 0: any free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


class Server:
    """uvicorn serving the receiver in the test's event loop; it can go down and come back on
    the same port (connections are then refused)."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def up(self) -> None:
        sock = listen(self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.receiver.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            ws="none",
            http="h11",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))

    async def down(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}?token={TOKEN}"


# --- the harness ------------------------------------------------------------------------------


@dataclass
class Hooks:
    live: Live
    store: SqlWebhooks
    receiver: Receiver
    server: Server
    http: httpx.AsyncClient

    def deliverer(self, **policy: Any) -> Deliverer:
        return Deliverer(
            self.store,
            self.http,
            self.live.clock.now,
            random.Random(7),
            DeliveryPolicy(**policy),
            urls=URLS,
        )

    async def subscribe(
        self, name: str, types: list[str], key: str = "admin_a"
    ) -> tuple[str, Endpoint]:
        created = await self.live.post(
            "/webhooks", {"url": self.server.url(name), "event_types": types}, key=key
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["secret"].startswith("whsec_")
        endpoint = Endpoint([hook["secret"]])
        self.receiver.endpoints[name] = endpoint
        return hook["id"], endpoint

    async def events(self, *types: str, after: int = 0) -> list[dict[str, Any]]:
        found = await self.live.get("/events", after=after, types=list(types), limit=500)
        assert found.status_code == 200, found.text
        return list(found.json()["data"])

    async def log(self, hook: str) -> list[dict[str, Any]]:
        found = await self.live.get(f"/webhooks/{hook}/deliveries", limit=500)
        assert found.status_code == 200, found.text
        return list(found.json()["data"])

    async def pump(self, deliverer: Deliverer, *, rounds: int, step: timedelta) -> None:
        for _ in range(rounds):
            self.live.clock.advance(step)
            await deliverer.drain()


@asynccontextmanager
async def hooked(db: str) -> AsyncIterator[Hooks]:
    """The live API harness over ``db`` (16 patients) with the webhook routes, a receiver
    served in this event loop and the delivery's HTTP client."""
    async with running(db, patients=16) as live:
        d = live.deployment
        store = SqlWebhooks(d.engine, d.vault)
        app = create_app(
            d.live,
            d.keys,
            d.audit,
            sessions=d.session_principal,
            events=d.events,
            extra_routers=[
                auth_routes.router(d.sessions),
                webhook_routes.router(Webhooks(store, d.clock, urls=URLS)),
            ],
        )
        built = live.client
        live.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API)
        receiver = Receiver()
        server = Server(receiver)
        await server.up()
        http = webhook_client(URLS, timeout=DeliveryPolicy().timeout)
        try:
            yield Hooks(live, store, receiver, server, http)
        finally:
            await http.aclose()
            await server.down()
            await live.client.aclose()
            live.client = built


async def book(live: Live, patient: str, nth: int, *, check_in: bool = True) -> str:
    """Book ``patient`` into the ``nth`` open slot through the API (and check them in): the
    appointment's id."""
    resource = (await live.get("/resources")).json()["data"][0]
    reason = resource["visit_reason_ids"][1]
    slots = (
        await live.get(
            "/availability",
            visit_reason_id=reason,
            start="2026-11-25",
            end="2026-11-27",
            resource_id=resource["id"],
        )
    ).json()["data"]
    slot = slots[nth]
    booked = await live.post(
        "/create_appointment",
        {
            "patient_id": patient,
            "resource_id": slot["resource_id"],
            "location_id": slot["location_id"],
            "visit_reason_id": reason,
            "start": slot["start"],
        },
        idem=f"hook-book-{nth}",
    )
    assert booked.status_code == 201, booked.text
    appointment = str(booked.json()["data"]["id"])
    if check_in:
        await arrive(live, appointment)
    return appointment


async def arrive(live: Live, appointment: str) -> None:
    """Check ``appointment`` in through the API."""
    arrived = await live.post("/check_in", {"appointment_id": appointment})
    assert arrived.status_code == 200, arrived.text
