"""What every route module shares: the caller's principal, the query and header parameters,
the response models, and how answers are rendered (JSON, ``Age``, ``RateLimit`` headers)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Query, Request, Response
from pydantic import BaseModel

from carebridge.api import problems
from carebridge.domain.values import RequestBound, RequestInstant
from carebridge.errors import DomainError
from carebridge.services.reads import Freshness, ListQuery, Reads, Served
from carebridge.services.records import Principal, Unauthorized, authenticate, bearer
from carebridge.services.writes import WriteOutcome

MAX_LIMIT = 500
MAX_SEQ = 2**63 - 1
"""The largest sequence number the store holds (signed 64-bit); ``after`` beyond it is 422."""
DATE = r"^\d{4}-\d{2}-\d{2}$"
_MAX_AGE = re.compile(r"max-age=(\d{1,9})")

SessionCheck = Callable[[str], Awaitable[Principal | None]]


class Page(BaseModel):
    """A page of records and the cursor of the next one (None on the last page)."""

    data: list[dict[str, Any]]
    next_cursor: str | None


class Items(BaseModel):
    """Records read in real time (no paging)."""

    data: list[dict[str, Any]]


class WriteAnswer(BaseModel):
    """A write's record as read back, and whether the read-back matched the request."""

    data: dict[str, Any]
    confirmation: str
    diverged: list[str]
    ledger_id: int


class AuditPage(BaseModel):
    """Audit entries in sequence order; ``next_after`` continues the read (the replay cursor)."""

    data: list[dict[str, Any]]
    next_after: int | None


class Health(BaseModel):
    """Liveness."""

    status: str


def json_response(
    body: Any,
    *,
    status: int = 200,
    age: timedelta | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON answer that is never cached; ``age`` becomes the ``Age`` header."""
    return raw_response(orjson.dumps(body), age=age, headers=headers or {}, status=status)


def raw_response(
    body: bytes, *, age: timedelta | None, headers: dict[str, str], status: int = 200
) -> Response:
    """JSON text answered as it is."""
    extra = {"Cache-Control": "private, no-store", **headers}
    if age is not None:
        extra["Age"] = str(max(0, int(age.total_seconds())))
    return Response(body, status_code=status, media_type="application/json", headers=extra)


def rate_headers(service: Reads, principal: Principal) -> dict[str, str]:
    """The ``RateLimit`` headers of the caller's tenant's upstream budget (none before its
    first upstream call)."""
    budget = service.budget(principal.tenant_id)
    if budget is None:
        return {}
    quota, remaining = budget
    return {
        "RateLimit-Policy": f'"upstream";q={quota};w=1',
        "RateLimit": f'"upstream";r={remaining};t=1',
    }


def freshness(max_age: int | None, cache_control: str | None) -> Freshness:
    """``max_age`` wins; else ``Cache-Control: no-cache`` (0) or ``max-age=N``."""
    if max_age is not None:
        return Freshness(timedelta(seconds=max_age))
    header = (cache_control or "").lower()
    if "no-cache" in header:
        return Freshness(timedelta(0))
    found = _MAX_AGE.search(header)
    return Freshness(timedelta(seconds=int(found.group(1)))) if found else Freshness()


async def caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller: a session token (``cbs_``) from ``POST /authenticate``, or an API key."""
    bare = bearer(authorization)
    sessions: SessionCheck | None = request.app.state.sessions
    if sessions is not None and bare.startswith("cbs_"):
        principal = await sessions(bare)
        if principal is None:
            raise Unauthorized("the session token is not valid or has expired")
    else:
        principal = await authenticate(request.app.state.keys, authorization)
    return principal


Caller = Annotated[Principal, Depends(caller)]

CacheControl = Annotated[
    str | None, Header(alias="Cache-Control", description="max-age=N, or no-cache for live data")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Records per page.")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="The `next_cursor` of the previous page.")
]
MaxAge = Annotated[
    int | None,
    Query(ge=0, le=86_400 * 30, description="Oldest acceptable data, in seconds (0 = live)."),
]
Since = Annotated[
    RequestInstant | None,
    Query(
        description="Only records changed at or after this instant: RFC 3339 with its offset "
        "(`2026-12-01T15:00:00Z`); Unix epochs are refused."
    ),
]
From = Annotated[RequestBound | None, Query(description="Window start: a day or an instant.")]
Until = Annotated[RequestBound | None, Query(description="Window end: a day or an instant.")]
After = Annotated[
    int, Query(ge=0, le=MAX_SEQ, description="The last seq you have seen (0 = from the start).")
]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1 to 255 visible ASCII characters (else 400). Replays the first answer "
        "for 24 h; 422 if reused with another body.",
    ),
]


def page_response(served: Served, service: Reads, principal: Principal) -> Response:
    """A page of stored records: their JSON text goes out as it is (no parse, no re-encode)."""
    body = b"".join(
        (
            b'{"data":[',
            ",".join(served.page.raw).encode(),
            b'],"next_cursor":',
            orjson.dumps(served.page.next_cursor),
            b"}",
        )
    )
    return raw_response(body, age=served.age, headers=rate_headers(service, principal))


Paging = tuple[int, str | None, int | None, str | None]
"""A list route's ``limit``, ``cursor``, ``max_age`` and ``Cache-Control``, as given."""


async def list_response(
    reads: Reads,
    principal: Principal,
    kind: str,
    path: str,
    paging: Paging,
    filters: Mapping[str, str] | None = None,
    *,
    updated_since: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Response:
    """A page of one kind's records (``GET path`` in the audit log), read through when stale,
    and its answer."""
    limit, cursor, max_age, cache_control = paging
    query = ListQuery(
        kind,
        f"GET {path}",
        dict(filters or {}),
        updated_since=updated_since,
        starts_from=start,
        starts_before=end,
        limit=limit,
        cursor=cursor,
        freshness=freshness(max_age, cache_control),
    )
    return page_response(await reads.page(principal, query), reads, principal)


async def one_response(
    reads: Reads, principal: Principal, kind: str, route: str, entity_id: str, fresh: Freshness
) -> Response:
    """One record (``route`` in the audit log), read through when stale, and its answer."""
    found = await reads.one(principal, kind, route, entity_id, freshness=fresh)
    return json_response(found.record, age=found.age, headers=rate_headers(reads, principal))


def live_response(reads: Reads, principal: Principal, body: Any) -> Response:
    """An answer read in real time (``Age: 0``), with the upstream budget's headers."""
    return json_response(body, age=timedelta(0), headers=rate_headers(reads, principal))


async def write_response(
    service: Reads, principal: Principal, write: Awaitable[WriteOutcome]
) -> Response:
    """A write's answer: 201 when it created a record, else 200; a refusal by the rules is its
    problem. Either carries ``Idempotent-Replayed: true`` when it replays its key's first
    answer."""
    try:
        outcome = await write
    except DomainError as refused:
        status, content, _ = problems.render(refused)
        headers = rate_headers(service, principal)
        if getattr(refused, "replayed", False):
            headers["Idempotent-Replayed"] = "true"
        return Response(
            orjson.dumps(content), status_code=status, media_type=problems.MEDIA, headers=headers
        )
    headers = rate_headers(service, principal)
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(outcome.as_json(), status=201 if outcome.created else 200, headers=headers)
