"""ASGI middleware of the API: a request body limit, and the security headers of every answer.

:class:`BodyLimit` refuses a body larger than its limit before anything parses it: at once when
``Content-Length`` says so, else as soon as the streamed body passes the limit. The refusal is a
413 RFC 9457 problem.

:class:`SecureHeaders` adds ``X-Content-Type-Options: nosniff`` and ``Strict-Transport-Security``
to every answer, problems included (browsers ignore HSTS over plain http, so it only takes
effect behind TLS), and ``Cache-Control: no-store`` to any answer that does not set its own
``Cache-Control`` (the read routes set ``private, no-store`` with their ``Age``).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carebridge.errors import CarebridgeError

DEFAULT_MAX_BODY = 1024 * 1024
"""1 MiB: the largest write body is a few KiB."""

HSTS = "max-age=63072000; includeSubDomains"


def _detail(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


class BodyTooLarge(HTTPException, CarebridgeError):
    """The streamed body passed the limit: raised from ``receive`` into the route reading the
    body, which hands it to the problem handlers (a 413 problem)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _detail(limit), headers={"Connection": "close"})


def _problem(limit: int) -> bytes:
    return orjson.dumps(
        {
            "type": "https://carebridge.dev/problems/content-too-large",
            "title": "Content Too Large",
            "status": 413,
            "detail": _detail(limit),
        }
    )


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before they are parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:  # pragma: no cover - an app that answers before reading its body
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = _problem(self.max_bytes)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    """The declared body length; a malformed one counts as over any limit."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 19 else 2**63
    return None


class SecureHeaders:
    """``nosniff``, HSTS, and ``Cache-Control: no-store`` unless the answer sets its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                names = {bytes(name).lower() for name, _ in headers}
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"strict-transport-security", HSTS.encode()))
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, secured)
