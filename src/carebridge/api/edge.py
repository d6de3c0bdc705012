"""The API's outermost layer: the request id, the ``/v1`` prefix, the contract version, and the
caller's rate-limit headers, on every answer (problems and 500s included).

- ``X-Request-Id``: the request's own (1 to 128 visible ASCII characters) or a new ``req_...``;
  every answer carries it, every problem body carries it as ``request_id``, and every log record
  made while the request runs has it as ``request_id`` (:func:`install_log_ids`).
- ``/v1/...`` is served as ``/...`` (one set of routes); a ``Location`` it answers keeps the
  prefix.
- ``Carebridge-Version: 0`` asks for the shapes before v1 (ADR 0015): a thin rewrite of the few
  JSON answers that changed. Every answer says its version.
- ``RateLimit`` / ``RateLimit-Policy``: the caller's own quota, as the key check left it in the
  request's state (:mod:`carebridge.api.ratelimit`).
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carebridge.api import params
from carebridge.contract import PREVIOUS_VERSION, TYPES_BASE, VERSION

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
"""The id of the request being served (``-`` outside one)."""

_GIVEN_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_PROBLEM = b"application/problem+json"
_JSON = b"application/json"
_PREFIX = "/v1"
_LOG_IDS = {"installed": False}
_OURS = frozenset((b"x-request-id", b"carebridge-version"))
"""Answer headers the edge sets itself (an inner layer's are replaced)."""


def new_request_id() -> str:
    """A fresh request id."""
    return f"req_{secrets.token_hex(8)}"


def install_log_ids() -> None:
    """Give every log record a ``request_id`` attribute (the request being served, or ``-``),
    for formatters to print (``%(request_id)s``). Installed once per process."""
    if _LOG_IDS["installed"]:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    logging.setLogRecordFactory(factory)
    _LOG_IDS["installed"] = True


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


def to_previous(path: str, body: Any) -> Any:
    """A v1 JSON answer in the shapes before v1 (``Carebridge-Version: 0``)."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    if path in ("/events", "/audit_events") and "next_cursor" in out:
        cursor = out.pop("next_cursor")
        out.pop("has_more", None)
        out["next_after"] = None if cursor is None else int(cursor)
        if path == "/audit_events":
            out["data"] = [{k: v for k, v in e.items() if k != "id"} for e in out["data"]]
    ledger = out.get("ledger_id")
    if isinstance(ledger, str) and ledger.startswith("led_"):
        out["ledger_id"] = int(ledger[4:])
    if path.endswith("/deliveries") and isinstance(out.get("data"), list):
        out["data"] = [
            {**d, "id": int(d["id"][4:])} if str(d.get("id", "")).startswith("dlv_") else d
            for d in out["data"]
        ]
    return out


class Edge:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        params.install()  # a query's parameters validated once per distinct query

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given is not None and _GIVEN_ID.match(given) else new_request_id()
        token = REQUEST_ID.set(request_id)
        try:
            await self._serve(scope, receive, send, request_id)
        finally:
            REQUEST_ID.reset(token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        path: str = scope["path"]
        prefixed = path == _PREFIX or path.startswith(_PREFIX + "/")
        if prefixed:
            inner = path[len(_PREFIX) :] or "/"
            raw = scope.get("raw_path")
            scope = {
                **scope,
                "path": inner,
                "raw_path": raw[len(_PREFIX) :] if isinstance(raw, bytes) else raw,
            }
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        asked = (_header(scope, b"carebridge-version") or VERSION).strip()
        if asked not in (VERSION, PREVIOUS_VERSION):
            await self._refuse_version(send, request_id)
            return
        previous = asked == PREVIOUS_VERSION
        start: Message | None = None
        chunks: list[bytes] = []

        async def edged(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.append((b"carebridge-version", asked.encode()))
                limit = state.get("ratelimit")
                if limit is not None:
                    names = {k.lower() for k, _ in headers}
                    headers.extend(h for h in limit.raw_headers() if h[0] not in names)
                if prefixed:
                    headers = [
                        (k, _PREFIX.encode() + bytes(v))
                        if bytes(k).lower() == b"location" and bytes(v).startswith(b"/")
                        else (k, v)
                        for k, v in headers
                    ]
                message = {**message, "headers": headers}
                media = _media(headers)
                if media == _PROBLEM or (previous and media == _JSON):
                    start = message
                    return
                await send(message)
                return
            if message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                body = self._rewrite(body, start, request_id, scope["path"], previous)
                headers = [
                    (k, v) for k, v in start["headers"] if bytes(k).lower() != b"content-length"
                ]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, edged)

    @staticmethod
    def _rewrite(body: bytes, start: Message, request_id: str, path: str, previous: bool) -> bytes:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if _media(start["headers"]) == _PROBLEM:
            if isinstance(parsed, dict):
                parsed["request_id"] = request_id
            return orjson.dumps(parsed)
        return orjson.dumps(to_previous(path, parsed)) if previous else body

    @staticmethod
    async def _refuse_version(send: Send, request_id: str) -> None:
        detail = f"Carebridge-Version must be {VERSION} or {PREVIOUS_VERSION}"
        body = orjson.dumps(
            {
                "type": f"{TYPES_BASE}bad-request",
                "title": "Bad Request",
                "status": 400,
                "detail": detail,
                "request_id": request_id,
                "errors": [{"field": "Carebridge-Version", "rule": "version", "message": detail}],
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", _PROBLEM),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode("latin-1")),
                    (b"carebridge-version", VERSION.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _media(headers: Any) -> bytes:
    for key, value in headers:
        if bytes(key).lower() == b"content-type":
            return bytes(value).split(b";")[0].strip().lower()
    return b""
