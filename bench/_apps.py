"""ASGI factories for ``bench/api_read.py``, served by ``granian --interface asgi --factory``.

Configured by environment variables (set by the benchmark before it starts each server):

- ``CAREBRIDGE_BENCH_DB``: the store URL (``sqlite:///...``) for :func:`carebridge_app`;
- ``CAREBRIDGE_BENCH_PAYLOAD``: a JSON file holding the page :func:`baseline_app` serves.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from carebridge.api import heap
from carebridge.api.app import create_app
from carebridge.services.live import Live
from carebridge.store.adapters import SqlAudit, SqlKeys, SqlRecords
from carebridge.store.engine import create_engine
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

DB_ENV = "CAREBRIDGE_BENCH_DB"
PAYLOAD_ENV = "CAREBRIDGE_BENCH_PAYLOAD"
DIAG_ENV = "CAREBRIDGE_BENCH_DIAG"
UNSETTLED_ENV = "CAREBRIDGE_BENCH_UNSETTLED"
"""Set (to anything): carebridge's garbage collector is left as CPython sets it (to compare)."""
"""Set (to anything): each app also answers ``GET /_diag`` with what :class:`Diag` saw."""
BENCH_VAULT = Vault(
    KeyRing({"bench": bytes(KEY_BYTES)}, "bench")
)  # every worker opens one audit key


class Diag:
    """What a served app did, for ``GET /_diag`` (``$CAREBRIDGE_BENCH_DIAG``): each request's
    time in the app, each garbage collection's pause, each audit commit, and each stall of the
    event loop over ``STALL`` seconds (a task wakes every ``TICK``; its lateness is the stall).
    Instants are ``time.perf_counter()``: the monotonic clock, comparable across processes."""

    TICK = 0.002
    STALL = 0.003

    def __init__(self, app: Any, audit: Any = None) -> None:
        self.app = app
        self.requests: list[tuple[float, float]] = []
        self.gcs: list[tuple[float, int, float, int]] = []  # start, generation, seconds, collected
        self.commits: list[tuple[float, float, int]] = []  # start, seconds, entries
        self.stalls: list[tuple[float, float]] = []
        self._gc_start = 0.0
        self._ticker: asyncio.Task[None] | None = None
        gc.callbacks.append(self._gc)
        if audit is not None:
            log = audit.log
            write = log._write

            async def timed(batch: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await write(batch, **kwargs)
                finally:
                    self.commits.append((start, time.perf_counter() - start, len(batch)))

            log._write = timed

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            now = time.perf_counter()
            self.gcs.append(
                (self._gc_start, info["generation"], now - self._gc_start, info["collected"])
            )

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.TICK)
            late = time.perf_counter() - before - self.TICK
            if late > self.STALL:
                self.stalls.append((before + self.TICK, late))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/_diag":
            body = orjson.dumps(
                {
                    "requests": self.requests,
                    "gcs": self.gcs,
                    "commits": self.commits,
                    "stalls": self.stalls,
                    "gc_threshold": gc.get_threshold(),
                    "gc_frozen": gc.get_freeze_count(),
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.requests.append((start, time.perf_counter() - start))


def build_carebridge(url: str, *, diag: bool = False) -> tuple[Any, AsyncEngine]:
    """The real carebridge API over the store at ``url``, and its engine (to dispose)."""
    engine = create_engine(url)
    audit = SqlAudit(engine, BENCH_VAULT)
    app = create_app(Live(SqlRecords(engine), audit), SqlKeys(engine), audit)
    return (Diag(app, audit) if diag else app), engine


def carebridge_app() -> Any:
    """The real carebridge API over the store at ``$CAREBRIDGE_BENCH_DB``."""
    app = build_carebridge(os.environ[DB_ENV], diag=bool(os.environ.get(DIAG_ENV)))[0]
    if not os.environ.get(UNSETTLED_ENV):
        heap.settle()  # as carebridge.api.main does once its app is built
    return app


def baseline_app() -> Any:
    """A bare Starlette app: ``GET /patients`` answers the saved page, serialized by orjson on
    every request (the same work a hand-tuned route would do, and nothing else)."""
    payload = orjson.loads(Path(os.environ[PAYLOAD_ENV]).read_bytes())

    async def patients(request: Request) -> Response:
        del request
        return Response(orjson.dumps(payload), media_type="application/json")

    app = Starlette(routes=[Route("/patients", patients)])
    return Diag(app) if os.environ.get(DIAG_ENV) else app
