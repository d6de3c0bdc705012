"""Conventions every portal call shares: the error envelope, bodies, paging, ids and rendering.

The portal is the JSON side of CareCloud's single-page web app, so it speaks like one: camelCase
keys, an envelope on every error, ``{"items", "page", "pageSize", "totalItems", "totalPages"}``
pages, instants in UTC (``2026-11-24T15:00:00Z``), dates ``YYYY-MM-DD`` and money as decimal
strings (``"135.00"``).

Errors are ``{"error": {"code": "...", "message": "...", "field": "..."}}``; ``field`` is
present only when the error is about one input. Messages never echo what the client sent (no
usernames, names or dates of birth).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from carecloud_sandbox.v2.common import from_db_instant, to_db_instant

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_TEXT = 20_000  # characters of one free-text field (a note section, an addendum)

ICD10_RE = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
PROCEDURE_RE = re.compile(r"^([0-9]{4}[0-9A-Z]|[A-V][0-9]{4})$")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class PortalError(Exception):
    """An error answer in the portal's envelope.

    Attributes:
        status: the HTTP status.
        code: the stable machine code (``invalid_credentials``, ``validation_failed`` ...).
        message: a human sentence without PHI.
        field: the input the error is about, when there is one.
        extra: more members of the ``error`` object (e.g. ``errors`` of the scrubber).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


def to_int(value: Any) -> int | None:
    """A positive id from JSON (an int) or text (ASCII digits); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 19):
            return None
        value = int(text)
    if isinstance(value, int) and 0 < value < 2**63:
        return value
    return None


def invalid(field: str, message: str) -> PortalError:
    """A 422 ``validation_failed`` about one input."""
    return PortalError(422, "validation_failed", message, field=field)


def not_found(what: str = "resource") -> PortalError:
    """The envelope 404."""
    return PortalError(404, "not_found", f"No such {what}.")


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Serialize with orjson."""
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def error_response(err: PortalError) -> Response:
    """Render a :class:`PortalError` in the envelope."""
    body: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.field is not None:
        body["field"] = err.field
    body.update(err.extra)
    return json_response({"error": body}, status=err.status, headers=err.headers)


Endpoint = Callable[[Request], Awaitable[Response]]


def dispatch(methods: Mapping[str, Endpoint]) -> Endpoint:
    """One endpoint for a path that answers the envelope 405 for any method it lacks."""
    allowed = ", ".join(sorted(methods))

    async def endpoint(request: Request) -> Response:
        handler = methods.get(request.method)
        if handler is None and request.method == "HEAD":
            handler = methods.get("GET")
        if handler is None:
            return error_response(
                PortalError(
                    405,
                    "method_not_allowed",
                    "This method is not allowed here.",
                    headers={"Allow": allowed},
                )
            )
        return await handler(request)

    return endpoint


# --- bodies ---------------------------------------------------------------------------------


async def read_body(request: Request, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object (an empty body reads as ``{}``).

    Raises:
        PortalError: 413 when too large, 400 ``invalid_json`` when not a JSON object.
    """
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and len(declared) < 16
        and int(declared) > max_bytes
    ):
        raise PortalError(413, "payload_too_large", "The request body is too large.")
    raw = await request.body()
    if len(raw) > max_bytes:
        raise PortalError(413, "payload_too_large", "The request body is too large.")
    if not raw.strip():
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise PortalError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise PortalError(400, "invalid_json", "The request body must be a JSON object.")
    return parsed


def text_field(
    body: Mapping[str, Any],
    name: str,
    *,
    required: bool = False,
    max_len: int = 500,
    field: str | None = None,
    default: str | None = None,
) -> str | None:
    """A string member, stripped; None (or ``default``) when absent.

    Raises:
        PortalError: 422 when required and missing or blank, or not a string, or too long.
    """
    label = field or name
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(label, "This field is required.")
        return default
    if not isinstance(value, str):
        raise invalid(label, "Must be a string.")
    value = value.strip()
    if required and not value:
        raise invalid(label, "This field is required.")
    if len(value) > max_len:
        raise invalid(label, f"Must be at most {max_len} characters.")
    return value


def int_field(body: Mapping[str, Any], name: str, *, field: str | None = None) -> int | None:
    """A positive integer id member; None when absent.

    Raises:
        PortalError: 422 when present but not a positive integer.
    """
    value = body.get(name)
    if value is None:
        return None
    number = to_int(value) if isinstance(value, int) else None
    if number is None:
        raise invalid(field or name, "Must be a positive integer.")
    return number


def date_field(
    body: Mapping[str, Any], name: str, *, required: bool = False, field: str | None = None
) -> str | None:
    """A ``YYYY-MM-DD`` member; None when absent.

    Raises:
        PortalError: 422 when present but not a real date.
    """
    value = text_field(body, name, required=required, max_len=10, field=field)
    if value is None:
        return None
    if not DATE_RE.match(value) or not valid_date(value):
        raise invalid(field or name, "Must be a date YYYY-MM-DD.")
    return value


def valid_date(value: str) -> bool:
    """True for a real calendar date in a sane range."""
    try:
        parsed = datetime.strptime(value, "%Y-%m-%d")  # noqa: DTZ007 - a date only
    except ValueError:
        return False
    return 1900 <= parsed.year <= 2200


def choice_field(
    body: Mapping[str, Any],
    name: str,
    choices: Sequence[str],
    *,
    default: str | None = None,
    field: str | None = None,
) -> str | None:
    """A member limited to ``choices``; ``default`` when absent.

    Raises:
        PortalError: 422 when present but not one of the choices.
    """
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise invalid(field or name, f"Must be one of: {', '.join(choices)}.")
    return value


# --- query parameters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Paging:
    """The page a list call asked for."""

    page: int
    size: int

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.size


def paging(request: Request) -> Paging:
    """``page`` (from 1) and ``pageSize`` (1..100, default 25).

    Raises:
        PortalError: 422 naming the parameter when it is not usable.
    """
    page = _positive(request.query_params.get("page"), "page", 1, 10**6)
    size = _positive(
        request.query_params.get("pageSize"), "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
    )
    return Paging(page, size)


def _positive(raw: str | None, name: str, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    number = to_int(raw)
    if number is None or number > maximum:
        raise invalid(name, f"Must be an integer from 1 to {maximum}.")
    return number


def updated_since(request: Request) -> str | None:
    """The ``updatedSince`` filter as a DB instant (an ISO 8601 instant; naive reads as UTC).

    Raises:
        PortalError: 422 ``updatedSince`` when it is not an instant.
    """
    raw = request.query_params.get("updatedSince")
    if raw is None or raw == "":
        return None
    moment = parse_instant(raw)
    if moment is None:
        raise invalid("updatedSince", "Must be an ISO 8601 instant.")
    return to_db_instant(moment)


def parse_instant(raw: Any) -> datetime | None:
    """An ISO 8601 instant (``Z``, an offset, or naive as UTC); None when it is not one."""
    if not isinstance(raw, str) or not 10 <= len(raw) <= 40:
        return None
    text = raw.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if not 1900 <= parsed.year <= 2200:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def flag(request: Request, name: str) -> bool | None:
    """A boolean query parameter (``true``/``false``/``1``/``0``); None when absent.

    Raises:
        PortalError: 422 when present but not a boolean.
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise invalid(name, "Must be true or false.")


def page_body(items: list[Any], total: int, paged: Paging) -> dict[str, Any]:
    """The list envelope."""
    return {
        "items": items,
        "page": paged.page,
        "pageSize": paged.size,
        "totalItems": total,
        "totalPages": max(1, math.ceil(total / paged.size)),
    }


def fetch_page(
    conn_all: Callable[[str, tuple[Any, ...]], list[sqlite3.Row]],
    scalar: Callable[[str, tuple[Any, ...]], Any],
    *,
    select: str,
    where: list[str],
    params: list[Any],
    order: str,
    paged: Paging,
) -> tuple[list[sqlite3.Row], int]:
    """Count and fetch one page of ``select`` filtered by ``where`` (literal clauses)."""
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = int(scalar(f"SELECT COUNT(*) FROM ({select}{clause})", tuple(params)) or 0)
    rows = conn_all(
        f"{select}{clause} ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, paged.size, paged.offset),
    )
    return rows, total


# --- rendering ------------------------------------------------------------------------------


def money(cents: int | None) -> str | None:
    """Cents as a decimal string."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{frac:02d}"


def seconds_between(earlier: str, later: str) -> float:
    """Seconds from one DB instant to another."""
    return (from_db_instant(later) - from_db_instant(earlier)).total_seconds()


def path_int(request: Request, name: str, what: str) -> int:
    """An integer path parameter; the envelope 404 when it is not one."""
    number = to_int(request.path_params.get(name))
    if number is None:
        raise not_found(what)
    return number
