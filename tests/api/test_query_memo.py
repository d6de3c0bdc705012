"""The query memo (``carebridge.api.params``): a query is validated once per distinct set of
values under the declared names, answers what FastAPI's own validation answers, and never
keeps a refusal; other names in the query do not split the memo."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Header, Query
from fastapi.dependencies import utils as fastapi_utils
from starlette.datastructures import Headers, QueryParams

from carebridge.api import params
from carebridge.domain.values import RequestInstant


def _fields() -> list[Any]:
    app = FastAPI()

    @app.get("/things")
    async def things(
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        name: Annotated[str | None, Query(max_length=20)] = None,
        since: RequestInstant | None = None,
        tags: Annotated[list[str] | None, Query()] = None,
    ) -> None:
        del limit, name, since, tags

    route = next(r for r in app.routes if getattr(r, "path", "") == "/things")
    return list(route.dependant.query_params)  # type: ignore[attr-defined]


def _counting() -> tuple[Any, list[int]]:
    original = getattr(
        fastapi_utils.request_params_to_args,
        "__wrapped__",
        fastapi_utils.request_params_to_args,
    )
    calls: list[int] = []

    def counted(fields: Any, received: Any) -> Any:
        calls.append(1)
        return original(fields, received)

    return params.memoized(counted), calls


def test_a_query_is_validated_once_and_answers_as_fastapi_does() -> None:
    fields = _fields()
    resolve, calls = _counting()
    original = getattr(
        fastapi_utils.request_params_to_args,
        "__wrapped__",
        fastapi_utils.request_params_to_args,
    )
    for query in (
        "limit=20&name=Ada",
        "since=2026-12-01T15:00:00Z",
        "limit=20&name=Ada&other=1",  # another name: the same values under the declared ones
        "",
    ):
        expected = original(fields, QueryParams(query))
        assert resolve(fields, QueryParams(query)) == expected
        assert resolve(fields, QueryParams(query)) == expected
    assert len(calls) == 3  # "limit=20&name=Ada" twice, the others once each
    first = resolve(fields, QueryParams("limit=20"))[0]
    first["limit"] = 99  # a caller's copy: the memo keeps its own
    assert resolve(fields, QueryParams("limit=20"))[0]["limit"] == 20


def test_a_refusal_and_mutable_values_are_worked_out_each_time() -> None:
    fields = _fields()
    resolve, calls = _counting()
    for _ in range(2):
        values, errors = resolve(fields, QueryParams("limit=0"))
        assert errors
        assert errors[0]["loc"] == ("query", "limit")
        values, errors = resolve(fields, QueryParams("since=1700000000"))  # an epoch: refused
        assert errors
        values, errors = resolve(fields, QueryParams("tags=a&tags=b"))
        assert not errors
        assert values["tags"] == ["a", "b"]
    assert len(calls) == 6


def test_headers_are_resolved_as_fastapi_does() -> None:
    fields = _fields()
    resolve, calls = _counting()
    resolve(fields, Headers({"limit": "3"}))
    resolve(fields, Headers({"limit": "3"}))
    assert len(calls) == 2


def test_plain_text_headers_are_read_as_fastapi_validates_them_and_never_kept() -> None:
    app = FastAPI()

    @app.get("/plain")
    async def plain(
        authorization: Annotated[str | None, Header()] = None,
        cache_control: Annotated[str | None, Header(alias="Cache-Control")] = None,
    ) -> None:
        del authorization, cache_control

    route = next(r for r in app.routes if getattr(r, "path", "") == "/plain")
    fields = list(route.dependant.header_params)  # type: ignore[attr-defined]
    resolve, calls = _counting()
    original = getattr(
        fastapi_utils.request_params_to_args,
        "__wrapped__",
        fastapi_utils.request_params_to_args,
    )
    for sent in (
        {},
        {"Authorization": "Bearer cbk_x", "cache-control": "no-cache"},
        {"authorization": "", "CACHE-CONTROL": "max-age=5"},
    ):
        assert resolve(fields, Headers(sent)) == original(fields, Headers(sent))
    assert calls == []


def test_install_wraps_fastapi_once() -> None:
    assert params.install()
    assert params.install()
    wrapped = fastapi_utils.request_params_to_args
    assert getattr(wrapped, "__wrapped__", None) is not None
    assert getattr(wrapped.__wrapped__, "__wrapped__", None) is None  # type: ignore[attr-defined]
