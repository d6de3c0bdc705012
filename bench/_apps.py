"""ASGI factories for ``bench/api_read.py``, served by ``granian --interface asgi --factory``.

Configured by environment variables (set by the benchmark before it starts each server):

- ``CAREBRIDGE_BENCH_DB``: the store URL (``sqlite:///...``) for :func:`carebridge_app`;
- ``CAREBRIDGE_BENCH_PAYLOAD``: a JSON file holding the page :func:`baseline_app` serves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from carebridge.api.app import create_app
from carebridge.services.live import Live
from carebridge.store.adapters import SqlAudit, SqlKeys, SqlRecords
from carebridge.store.engine import create_engine
from carebridge.store.vault import KEY_BYTES, KeyRing, Vault

DB_ENV = "CAREBRIDGE_BENCH_DB"
PAYLOAD_ENV = "CAREBRIDGE_BENCH_PAYLOAD"
BENCH_VAULT = Vault(
    KeyRing({"bench": bytes(KEY_BYTES)}, "bench")
)  # every worker opens one audit key


def build_carebridge(url: str) -> tuple[Any, AsyncEngine]:
    """The real carebridge API over the store at ``url``, and its engine (to dispose)."""
    engine = create_engine(url)
    audit = SqlAudit(engine, BENCH_VAULT)
    app = create_app(Live(SqlRecords(engine), audit), SqlKeys(engine), audit)
    return app, engine


def carebridge_app() -> Any:
    """The real carebridge API over the store at ``$CAREBRIDGE_BENCH_DB``."""
    return build_carebridge(os.environ[DB_ENV])[0]


def baseline_app() -> Any:
    """A bare Starlette app: ``GET /patients`` answers the saved page, serialized by orjson on
    every request (the same work a hand-tuned route would do, and nothing else)."""
    payload = orjson.loads(Path(os.environ[PAYLOAD_ENV]).read_bytes())

    async def patients(request: Request) -> Response:
        del request
        return Response(orjson.dumps(payload), media_type="application/json")

    return Starlette(routes=[Route("/patients", patients)])
