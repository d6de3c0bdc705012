"""What every route module shares: the caller's principal (and its rate limit), the query and
header parameters, the response models, and how answers are rendered (JSON, ``Age``, the
upstream budget's ``X-Upstream-RateLimit-*`` headers, the list envelope)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, cast

import orjson
from fastapi import Depends, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from carebridge.api import problems
from carebridge.contract.envelopes import Page, WriteAnswer
from carebridge.contract.examples import EXAMPLES
from carebridge.contract.records import CURRENCY, MONEY_KINDS, record_model, with_currency
from carebridge.contract.time import rfc3339
from carebridge.domain.kinds import KINDS
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


def page_of(model: type[BaseModel]) -> Any:
    """The list envelope of ``model``'s records (``Page[Patient]``)."""
    return cast(Any, Page)[model]


def _example_page(example: Any) -> dict[str, Any]:
    return {"data": [example], "has_more": True, "next_cursor": "cGF0X2M1NDV5MzRtamFvM3U2emxq"}


def _json_example(example: Any) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"example": example}}}}


def listed(kind: str) -> dict[str, Any]:
    """A list route's response model and example: a page of ``kind``'s records."""
    return {
        "response_model": page_of(record_model(kind)),
        "responses": _json_example(_example_page(EXAMPLES[kind])),
    }


def one_of(kind: str) -> dict[str, Any]:
    """A get-by-id route's response model and example: one of ``kind``'s records."""
    return {"response_model": record_model(kind), "responses": _json_example(EXAMPLES[kind])}


def written(kind: str, *, creates: bool = False) -> dict[str, Any]:
    """A write route's response model and example: the record written, read back."""
    example = {
        "data": EXAMPLES[kind],
        "confirmation": "confirmed",
        "diverged": [],
        "ledger_id": "led_1",
    }
    status = 201 if creates else 200
    return {
        "response_model": cast(Any, WriteAnswer)[record_model(kind)],
        "responses": {status: {"content": {"application/json": {"example": example}}}},
        "status_code": status,
    }


def paged(model: type[BaseModel], next_cursor: str) -> dict[str, Any]:
    """A list's response model and example, from the example ``model`` carries (its
    ``json_schema_extra``); ``next_cursor`` as this list issues them."""
    extra = model.model_config.get("json_schema_extra")
    example = extra["examples"][0] if isinstance(extra, dict) else {}  # type: ignore[index]
    return {
        "response_model": page_of(model),
        "responses": _json_example(envelope([example], next_cursor)),
    }


def live_page(model: type[BaseModel], example: Any) -> dict[str, Any]:
    """A real-time list's response model (one page, never more) and example."""
    return {
        "response_model": page_of(model),
        "responses": _json_example({"data": [example], "has_more": False, "next_cursor": None}),
    }


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
    """The caller's tenant's upstream budget (requests a second, shared by every key of the
    tenant), as ``X-Upstream-RateLimit-*``: information, not the caller's own quota (that is
    ``RateLimit``). None before the tenant's first upstream call."""
    budget = service.budget(principal.tenant_id)
    if budget is None:
        return {}
    quota, remaining = budget
    return {
        "X-Upstream-RateLimit-Limit": str(quota),
        "X-Upstream-RateLimit-Remaining": str(remaining),
    }


def instant(at: datetime | None) -> str | None:
    """An instant in the API's one format (``2026-11-24T15:00:00Z``)."""
    return None if at is None else rfc3339(at)


def instant_text(at: Any) -> Any:
    """An instant given as RFC 3339 text (any offset, any precision) in the API's one format;
    anything else as it is."""
    if isinstance(at, str):
        try:
            return rfc3339(datetime.fromisoformat(at))
        except ValueError:
            return at
    if isinstance(at, datetime):
        return rfc3339(at)
    return at


def envelope(data: list[Any], next_cursor: str | None = None) -> dict[str, Any]:
    """The list envelope: ``{data, has_more, next_cursor}``."""
    return {"data": data, "has_more": next_cursor is not None, "next_cursor": next_cursor}


def location(path: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """The headers of a 201 naming the created object's URL."""
    return {**(headers or {}), "Location": path}


def freshness(max_age: int | None, cache_control: str | None) -> Freshness:
    """``max_age`` wins; else ``Cache-Control: no-cache`` (0) or ``max-age=N``."""
    if max_age is not None:
        return Freshness(timedelta(seconds=max_age))
    header = (cache_control or "").lower()
    if "no-cache" in header:
        return Freshness(timedelta(0))
    found = _MAX_AGE.search(header)
    return Freshness(timedelta(seconds=int(found.group(1)))) if found else Freshness()


def _query_names(dependant: Any) -> frozenset[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


def refuse_undeclared_query(request: Request) -> None:
    """Refuse query parameters the route does not declare (422): a misspelt filter
    (``update_since``) must not silently widen a read."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:  # pragma: no cover - every API route has one
        return
    # kept on the route itself: a table keyed by id() would outlive a collected route, and
    # another app's route could reuse its id
    known: frozenset[str] | None = getattr(route, "_carebridge_query_names", None)
    if known is None:
        known = _query_names(dependant)
        route._carebridge_query_names = known  # type: ignore[union-attr]
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name[:64]),
                    "msg": "not a query parameter of this route",
                }
                for name in unknown
            ]
        )


async def declared_query(request: Request) -> None:
    """The dependency of a route without a :data:`Caller` (public and operator routes):
    :func:`refuse_undeclared_query`. A route with a caller gets the check from :func:`caller`
    (one dependency to solve per request, not two)."""
    refuse_undeclared_query(request)


def refuses_undeclared_query(dependant: Any) -> bool:
    """Whether a route's dependencies include :func:`caller` or :func:`declared_query`."""
    return any(
        sub.call is caller or sub.call is declared_query or refuses_undeclared_query(sub)
        for sub in dependant.dependencies
    )


async def caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller: a session token (``cbs_``) from ``POST /authenticate``, or an API key;
    first, the query's names are checked (:func:`refuse_undeclared_query`)."""
    refuse_undeclared_query(request)
    return await principal_of(request, authorization)


async def principal_of(request: Request, authorization: str | None) -> Principal:
    """The principal of a credential (counted against its rate limit), without the query
    check: a refused request's credential is checked with it (401 before 422)."""
    bare = bearer(authorization)
    sessions: SessionCheck | None = request.app.state.sessions
    if sessions is not None and bare.startswith("cbs_"):
        principal = await sessions(bare)
        if principal is None:
            raise Unauthorized("the session token is not valid or has expired")
    else:
        principal = await authenticate(request.app.state.keys, authorization)
    _limit(request, principal.id)
    return principal


def _limit(request: Request, key: str) -> None:
    """Count the request against the caller's own rate limit (once per request), leaving the
    decision for the answer's ``RateLimit`` headers; 429 over the quota."""
    limiter = getattr(request.app.state, "limiter", None)
    if limiter is None or "ratelimit" in request.scope.setdefault("state", {}):
        return
    decision = limiter.take(key)
    request.scope["state"]["ratelimit"] = decision
    if not decision.allowed:
        limiter.refuse(decision)


Caller = Annotated[Principal, Depends(caller)]

CacheControl = Annotated[
    str | None, Header(alias="Cache-Control", description="max-age=N, or no-cache for live data")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Records per page.")]
SeqOrder = Annotated[
    Literal["seq"], Query(description="By seq, ascending (the one order the log offers).")
]
Order = Annotated[
    Literal["id"],
    Query(description="The list's order: by id, ascending (the one order it offers)."),
]
StartOrder = Annotated[
    Literal["start", "-start", "id"],
    Query(
        description="The list's order: `start` (by start, then id; the default), `-start` "
        "(latest first), or `id`. A cursor belongs to the order that issued it."
    ),
]
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


_CURRENCY_FIELD = b'{"currency":' + orjson.dumps(CURRENCY) + b","


def page_response(
    served: Served, service: Reads, principal: Principal, kind: str | None = None
) -> Response:
    """A page of stored records: their JSON text goes out as it is (no parse, no re-encode);
    a kind that carries amounts gets its ``currency`` spliced in front of each record."""
    records = served.page.spliced(_CURRENCY_FIELD) if kind in MONEY_KINDS else served.page.joined
    more = served.page.next_cursor is not None
    body = b"".join(
        (
            b'{"data":[',
            records,
            b'],"has_more":',
            b"true" if more else b"false",
            b',"next_cursor":',
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
    order: str | None = None,
) -> Response:
    """A page of one kind's records (``GET path`` in the audit log) in ``order`` (None: the
    kind's default), read through when stale, and its answer."""
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
        order=order,
    )
    return page_response(await reads.page(principal, query), reads, principal, kind)


async def one_response(
    reads: Reads, principal: Principal, kind: str, route: str, entity_id: str, fresh: Freshness
) -> Response:
    """One record (``route`` in the audit log), read through when stale, and its answer."""
    found = await reads.one(principal, kind, route, entity_id, freshness=fresh)
    return json_response(
        with_currency(found.record, kind), age=found.age, headers=rate_headers(reads, principal)
    )


def live_response(reads: Reads, principal: Principal, body: Any) -> Response:
    """An answer read in real time (``Age: 0``), with the upstream budget's headers."""
    return json_response(body, age=timedelta(0), headers=rate_headers(reads, principal))


async def write_response(
    service: Reads,
    principal: Principal,
    write: Awaitable[WriteOutcome],
    kind: str | None = None,
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
    answer = outcome.as_json()
    answer["ledger_id"] = f"led_{answer['ledger_id']}"
    record = answer["data"]
    if kind is not None and isinstance(record, dict):
        answer["data"] = with_currency(record, kind)
        if outcome.created and "id" in record:
            headers = location(f"{kind_path(kind)}/{record['id']}", headers)
    return json_response(answer, status=201 if outcome.created else 200, headers=headers)


def with_article(noun: str) -> str:
    """``a charge``, ``an encounter``: a summary's noun with its article."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def kind_path(kind: str) -> str:
    """The path of a kind's list (``/appointments``): its table's name."""
    return f"/{KINDS[kind].table or kind}"


RecordId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[a-z]{2,5}_[a-z0-9_]+$", description="The id."),
]


def one_route(reads: Reads, kind: str, path: str) -> Any:
    """``GET <path>/{id}``: one record of ``kind`` by id (another tenant's is a 404)."""

    async def route(
        principal: Caller,
        id: RecordId,
        max_age: MaxAge = None,
        cache_control: CacheControl = None,
    ) -> Response:
        fresh = freshness(max_age, cache_control)
        return await one_response(reads, principal, kind, f"GET {path}/{{id}}", id, fresh)

    route.__doc__ = f"One {kind.replace('_', ' ')} by id; another tenant's id is a 404."
    return route
