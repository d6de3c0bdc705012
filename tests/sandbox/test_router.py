"""The tenant's indexed router picks, for every path and method, the route Starlette's own
router picks: the same full match, the same 405 (and ``Allow``), the same trailing-slash
redirect, the same 404."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message
from tests.support.sandbox import ANCHOR

from carecloud_sandbox.app import IndexedRouter, build_app
from carecloud_sandbox.config import SandboxConfig
from carecloud_sandbox.tenant import Tenant

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
pytestmark = pytest.mark.anyio
PARAM = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(:[a-zA-Z_][a-zA-Z0-9_]*)?\}")


def _tenant_routes() -> list[Route]:
    tenant = Tenant.open(SandboxConfig(seed=42, patients=5, practices=2, anchor=ANCHOR))
    app = build_app(tenant)
    starlette = app.app  # type: ignore[attr-defined]  # the control middleware wraps Starlette
    routes = [r for r in starlette.router.routes if isinstance(r, Route)]
    assert len(routes) == len(starlette.router.routes)
    tenant.db.close()
    return routes


def _labelled(routes: list[Route]) -> list[BaseRoute]:
    """The same paths and methods, each answering its own position."""

    def endpoint(i: int) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            return PlainTextResponse(f"{i} {sorted(request.path_params.items())}")

        return answer

    labelled: list[BaseRoute] = [
        Route(r.path, endpoint(i), methods=sorted(r.methods) if r.methods else None)
        for i, r in enumerate(routes)
    ]
    # Routes whose first segment is (partly) a parameter: every path is a candidate for them.
    labelled.insert(20, Route("/{first}/providers", endpoint(-1), methods=["DELETE"]))
    labelled.append(Route("/v2{rest:path}", endpoint(-2), methods=["GET"]))
    return labelled


def _paths(routes: list[Route]) -> Iterator[str]:
    seen: set[str] = set()
    extra = ["/", "/nowhere", "/v2", "/v2/", "/v2x", "/x/providers", "/portal", "/api/fhir"]
    for r in routes:
        for value in ("abc", "123", "$export", "_search"):

            def fill(m: re.Match[str], value: str = value) -> str:
                return "a/b" if m.group(2) == ":path" else value

            filled = PARAM.sub(fill, r.path)
            extra += [filled, filled + "/", filled + "/more", filled.rstrip("/") + "x"]
    for path in extra:
        if path not in seen:
            seen.add(path)
            yield path


async def _answer(app: Starlette, method: str, path: str) -> tuple[int, list[Any], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("127.0.0.1", 8700),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8700")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], sent[0]["headers"], body


async def test_every_path_and_method_reaches_the_route_starlette_picks() -> None:
    routes = _tenant_routes()
    labelled = _labelled(routes)
    plain = Starlette(routes=labelled)
    indexed = Starlette(routes=labelled)
    indexed.router = IndexedRouter(labelled)
    paths = list(_paths(routes))
    assert len(paths) > 400
    for path in paths:
        for method in METHODS:
            want = await _answer(plain, method, path)
            assert await _answer(indexed, method, path) == want, (method, path)
