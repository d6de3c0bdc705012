"""RFC 9457 problem details: every error of the API answers ``application/problem+json``.

:func:`render` turns an error into its status and body. The exception handlers use it, and so
do the write routes: a refusal replayed under its idempotency key
(:class:`~carebridge.errors.RefusedReplay`) renders as the refusal first did.
Problem bodies never carry request values (they may be PHI): only messages the code wrote,
field names, rules and codes. Every problem has a type (``TYPES`` + a slug documented in
``docs/problems/``); :class:`~carebridge.api.edge.Edge` adds its ``request_id``.

400 is for malformed syntax (a body that is not JSON, a cursor the API did not issue, a malformed
``Idempotency-Key``); 422 for a well-formed request whose values break a rule.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from carebridge.contract import TYPES_BASE
from carebridge.errors import (
    AuthError,
    BadCursor,
    BadRequest,
    CarebridgeError,
    ConfigError,
    DomainError,
    Forbidden,
    KeyInFlight,
    KeyReused,
    Locked,
    NotConfigured,
    NotFound,
    RateLimited,
    RefusedReplay,
    TenantExists,
    TooManyRequests,
    TransportError,
    Unauthorized,
    UnknownTenant,
    UpstreamError,
    UpstreamStatusError,
)

MEDIA = "application/problem+json"
TYPES = TYPES_BASE
logger = logging.getLogger("carebridge.api")

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    423: "Locked",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


DEFAULT_KINDS = {
    400: "bad-request",
    401: "unauthorized",
    403: "missing-scope",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "content-too-large",
    422: "validation-error",
    423: "locked",
    429: "rate-limited",
    500: "internal-error",
    502: "upstream-error",
    503: "not-configured",
    504: "upstream-unreachable",
}
"""The problem type of a status when no more precise one applies."""

MALFORMED = frozenset({"cursor", "Idempotency-Key"})
"""Fields whose refusal is malformed syntax (400), not an invalid value (422)."""


def body(status: int, detail: str, *, kind: str | None = None, **extra: Any) -> dict[str, Any]:
    """A problem body; ``kind`` names its problem type (default: the status's)."""
    slug = kind or DEFAULT_KINDS.get(status, "internal-error")
    return {
        "type": f"{TYPES}{slug}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }


def problem(
    status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A problem response."""
    content = body(status, detail, **extra) | {"title": title}
    return JSONResponse(content, status_code=status, media_type=MEDIA, headers=headers)


def _field_errors(fields: Any) -> list[dict[str, str]]:
    return [
        {"field": str(f), "rule": "upstream_rule", "message": "refused by the upstream's rules"}
        for f in fields
    ]


def _refusal(status: int, code: str, message: str, fields: Any) -> dict[str, Any]:
    """The problem of a rule's refusal: its class name is its ``code`` and names its type."""
    extra: dict[str, Any] = {"code": code}
    if fields:
        extra["errors"] = _field_errors(fields)
    return body(status, message, kind=_slug(code), **extra)


def render(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status, problem body and headers of an error."""
    message = str(exc)
    if isinstance(exc, Locked):
        retry = str(exc.retry_after)
        return 423, body(423, message, kind="locked"), {"Retry-After": retry}
    if isinstance(exc, Unauthorized):
        return 401, body(401, message), {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, Forbidden):
        return 403, body(403, message, kind="missing-scope"), {}
    if isinstance(exc, NotFound | UnknownTenant):
        return 404, body(404, message), {}
    if isinstance(exc, TooManyRequests):
        return 429, body(429, message), {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, BadCursor):
        error = {"field": "cursor", "rule": "issued_cursor", "message": message}
        return 400, body(400, message, errors=[error]), {}
    if isinstance(exc, BadRequest):
        status = 400 if exc.field in MALFORMED else 422
        rule = "format" if status == 400 else "invalid_value"
        errors = [{"field": exc.field, "rule": rule, "message": message}] if exc.field else []
        return status, body(status, message, errors=errors), {}
    if isinstance(exc, KeyReused):
        return 422, body(422, message, kind="idempotency-key-reused"), {}
    if isinstance(exc, KeyInFlight):
        return 409, body(409, message, kind="idempotency-key-in-flight"), {"Retry-After": "1"}
    if isinstance(exc, TenantExists):
        return 409, body(409, message), {}
    if isinstance(exc, RefusedReplay):  # the first refusal's answer again
        return exc.answered, _refusal(exc.answered, exc.code, message, exc.fields), {}
    if isinstance(exc, DomainError):
        fields = getattr(exc, "fields", None)
        return exc.status, _refusal(exc.status, type(exc).__name__, message, fields), {}
    if isinstance(exc, NotConfigured | ConfigError):
        return 503, body(503, message, kind="not-configured"), {}
    if isinstance(exc, RateLimited):
        wait = str(max(1, round(exc.retry_after or 1)))
        return (
            503,
            body(503, "the upstream is rate limiting", kind="upstream-busy"),
            {"Retry-After": wait},
        )
    if isinstance(exc, TransportError):
        return 504, body(504, "the upstream did not answer", kind="upstream-unreachable"), {}
    if isinstance(exc, AuthError):
        return (
            502,
            body(502, "the upstream refused carebridge's credentials", kind="upstream-auth"),
            {},
        )
    if isinstance(exc, UpstreamStatusError):
        if exc.status == 404:
            return 404, body(404, message), {}
        return 502, body(502, f"the upstream answered {exc.status}", kind="upstream-error"), {}
    if isinstance(exc, UpstreamError):
        return 502, body(502, "the upstream failed", kind="upstream-error"), {}
    logger.error("unexpected %s", type(exc).__name__)  # the type only: messages may hold PHI
    return 500, body(500, "an unexpected error"), {}


def _allowed(request: Request) -> str:
    """Every method the path answers: Starlette's 405 names only the first route that matched
    the path, while one path may have a route per method (``GET`` and ``POST /webhooks``)."""
    return ", ".join(sorted(_methods(request.app.router.routes, request.scope)))


def _methods(routes: Sequence[BaseRoute], scope: Scope) -> set[str]:
    """The methods of the routes matching the request's path, within included routers too
    (FastAPI keeps an included router as one entry; the API includes them without a prefix)."""
    methods: set[str] = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            methods |= _methods(included.routes, scope)
            continue
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


_SOURCES = ("query", "body", "path", "header")


def _field(loc: Sequence[Any]) -> str:
    """A refused input's dotted path, without where it came from (``procedures.0.units``, a
    query or header name as it was sent, even an empty one); the body itself is ``body``."""
    parts = [str(p) for p in loc if p not in _SOURCES]
    return ".".join(parts) if parts else "body"


def _slug(name: str) -> str:
    out = "".join(f"-{c.lower()}" if c.isupper() else c for c in name)
    return out.lstrip("-")


def install(app: FastAPI, credential: Callable[[Request], Awaitable[None]] | None = None) -> None:
    """Register the handlers that turn every error into a problem.

    Args:
        credential: checks a request's credential. A request that fails validation is first
            asked for it, so an unauthenticated caller learns nothing about the route's
            validation (401 comes before 422).
    """

    @app.exception_handler(CarebridgeError)
    async def _known(request: Request, exc: CarebridgeError) -> JSONResponse:
        del request
        status, content, headers = render(exc)
        return JSONResponse(content, status_code=status, media_type=MEDIA, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if credential is not None:
            try:
                await credential(request)
            except CarebridgeError as refused:
                status, content, headers = render(refused)
                return JSONResponse(content, status_code=status, media_type=MEDIA, headers=headers)
        found = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in found):
            error = {"field": "body", "rule": "json_invalid", "message": "the body is not JSON"}
            return problem(400, "Bad Request", "the body is not valid JSON", errors=[error])
        errors = [
            {
                "field": _field(e.get("loc", ())),
                "rule": str(e.get("type", "invalid")),
                "message": e.get("msg", ""),
            }
            for e in found
        ]
        return problem(422, "Unprocessable Content", "the request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        title = TITLES.get(status, str(exc.detail))
        headers = dict(exc.headers or {})
        if status == 405:
            headers["Allow"] = _allowed(request)
        return problem(status, title, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        del request
        status, content, headers = render(exc)
        return JSONResponse(content, status_code=status, media_type=MEDIA, headers=headers)
