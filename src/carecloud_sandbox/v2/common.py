"""Conventions every v2 route shares: error bodies, JSON, ids, dates, money, paging, auth.

Reproduces ``upstream/carecloud.md`` §2.3: errors are ``{"error": "<text>"}`` (the text often
``"<Call> Failed - <detail>"``), money is a string, timestamps are practice-local with an offset,
pages are numbered with the state in an RFC 5988 ``Link`` header whose entries are each followed
by ``", "`` (so the header ends with a trailing comma and space).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import Response

GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
UNRECOVERABLE = "An error occured we cannot recover from. If this continues please contact support."


class ApiError(Exception):
    """An error answer: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def failed(call: str, detail: str, status: int = 400) -> ApiError:
    """Build the upstream's ``"<Call> Failed - <detail>"`` error."""
    return ApiError(status, f"{call} Failed - {detail}")


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Serialize with orjson, as the hot paths do."""
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def error_response(err: ApiError) -> Response:
    """Render an :class:`ApiError` as the upstream does: one key, always JSON."""
    key = "error" if err.status >= 400 else "message"
    return json_response({key: err.message}, status=err.status, headers=err.headers)


# --- request bodies -------------------------------------------------------------------------


async def read_json_object(request: Request, call: str, max_bytes: int) -> dict[str, Any]:
    """Parse the body as a JSON object, or raise the upstream-style 400/413.

    Args:
        request: the incoming request.
        call: the call description used in error texts (e.g. ``"Appointment Creation"``).
        max_bytes: bodies larger than this are refused with 413.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise failed(call, "Request body is too large.", 413)
    raw = await request.body()
    if len(raw) > max_bytes:
        raise failed(call, "Request body is too large.", 413)
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise failed(call, "Request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise failed(call, "Request body must be a JSON object.")
    return parsed


async def read_form_or_json(request: Request, max_bytes: int) -> dict[str, str]:
    """Read a token request: form-encoded (the standard) or JSON (accepted by the upstream)."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise ApiError(413, "Request body is too large.")
    ctype = request.headers.get("content-type", "")
    if "json" in ctype:
        try:
            parsed = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Request body is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise ApiError(400, "Request body must be a JSON object.")
        return {str(k): str(v) for k, v in parsed.items() if v is not None}
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "Request body is not valid form data.") from None
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


# --- ids ------------------------------------------------------------------------------------


def is_guid(value: str) -> bool:
    """True for a canonical 8-4-4-4-12 hex GUID."""
    return bool(GUID_RE.match(value))


def parse_int_id(value: Any) -> int | None:
    """An integer id from a path, query or body value; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if 0 < number < 2**63 else None
    return None


def parse_id_list(value: str | None) -> list[int] | None:
    """A comma-separated list of integer ids (``location_ids=1,2``); None when absent.

    Raises:
        ValueError: when an element is not an integer id.
    """
    if value is None or value.strip() == "":
        return None
    ids = []
    for part in value.split(","):
        parsed = parse_int_id(part)
        if parsed is None:
            raise ValueError(part)
        ids.append(parsed)
    return ids


# --- dates, times and money -----------------------------------------------------------------


def parse_iso_date(value: str) -> date:
    """``YYYY-MM-DD``, strictly (raises ValueError otherwise)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(value)
    parsed = date.fromisoformat(value)
    if not 1900 <= parsed.year <= 2200:
        raise ValueError(value)
    return parsed


def parse_timestamp(value: Any, tz: ZoneInfo) -> datetime:
    """An ISO 8601 timestamp; a naive one is taken as practice-local (raises ValueError)."""
    if not isinstance(value, str) or len(value) < 16:
        raise ValueError(value)
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if not 1900 <= parsed.year <= 2200:
        raise ValueError(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def to_db_instant(moment: datetime) -> str:
    """An aware instant in the database's UTC text form."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_db_instant(text: str) -> datetime:
    """Parse the database's UTC text form (``fromisoformat`` is ~20x faster than strptime)."""
    if len(text) != 20 or text[-1] != "Z":
        raise ValueError(f"not a stored instant: {text!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def local_iso(text: str | None, tz: ZoneInfo) -> str | None:
    """Render a stored UTC instant in practice-local time with its offset."""
    if text is None:
        return None
    return _local_iso(text, tz)


@lru_cache(maxsize=65_536)
def _local_iso(text: str, tz: ZoneInfo) -> str:
    # A page of a listing renders the same instants again and again (slot starts, batch
    # stamps): each distinct one is converted once.
    return from_db_instant(text).astimezone(tz).isoformat(timespec="seconds")


def local_day_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[str, str]:
    """The UTC half-open range ``[start 00:00, end+1 00:00)`` of local days, in DB form."""
    lo = datetime.combine(start, time(0), tzinfo=tz)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)
    return to_db_instant(lo), to_db_instant(hi)


def money(cents: int | None) -> str | None:
    """Cents as the upstream's ``'%.2f'`` string (``"125.00"``)."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def ruby_decimal(cents: int | None) -> str | None:
    """Cents as Ruby's ``BigDecimal#to_s`` renders them in insurance policies (``"25.0"``)."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    text = f"{sign}{whole}.{frac:02d}"
    if text.endswith("0"):
        text = text[:-1]
    return text


def parse_money(value: Any) -> int | None:
    """A decimal amount (string or number) in cents; None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if not re.fullmatch(r"-?\d{1,9}(\.\d{1,2})?", text):
        return None
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    cents = int(whole) * 100 + int((frac + "00")[:2])
    return -cents if negative else cents


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """A cached ZoneInfo."""
    return ZoneInfo(name)


def loads(text: str | bytes | None) -> Any:
    """Parse a JSON column."""
    return None if text is None else orjson.loads(text)


def dumps(value: Any) -> str:
    """Serialize a JSON column."""
    return orjson.dumps(value).decode()


# --- paging ---------------------------------------------------------------------------------


def parse_page(value: str | None) -> int:
    """The ``page`` query parameter; default 1, and anything unusable reads as 1 (as upstream)."""
    parsed = parse_int_id(value) if value is not None else None
    return parsed or 1


def link_header(base_url: str, path: str, params: Mapping[str, str], page: int, last: int) -> str:
    """The upstream's ``Link`` header: first, prev, last, next, each followed by ``", "``.

    ``prev`` is present only after page 1 and ``next`` only before the last page.
    """
    last = max(last, 1)

    def url(number: int) -> str:
        query = {k: v for k, v in params.items() if k != "page"}
        query["page"] = str(number)
        return f"{base_url.rstrip('/')}{path}?{urlencode(query)}"

    parts = [f'<{url(1)}>; rel="first", ']
    if page > 1:
        parts.append(f'<{url(min(page - 1, last))}>; rel="prev", ')
    parts.append(f'<{url(last)}>; rel="last", ')
    if page < last:
        parts.append(f'<{url(page + 1)}>; rel="next", ')
    return "".join(parts)


@dataclass(frozen=True)
class Page:
    """One page of a numbered listing."""

    rows: list[sqlite3.Row]
    page: int
    last: int


def paginate(
    fetch: Callable[[int, int], list[sqlite3.Row]], total: int, page: int, size: int
) -> Page:
    """Fetch page ``page`` of ``size`` rows with ``fetch(limit, offset)``."""
    last = max(1, math.ceil(total / size))
    rows = fetch(size, (page - 1) * size) if page <= last else []
    return Page(rows=rows, page=page, last=last)


def paged_response(request: Request, base_url: str, body: Any, page: Page) -> Response:
    """A JSON body with the upstream's ``Link`` header."""
    params = dict(request.query_params)
    header = link_header(base_url, request.url.path, params, page.page, page.last)
    return json_response(body, headers={"Link": header})
