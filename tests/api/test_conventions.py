"""The API's conventions (docs/api-conventions.md), enforced on the OpenAPI document and on live
answers: every operation, every list, every object.

One small emulated tenant serves the whole module (a module-scoped harness); the checks walk
what the document lists, so a route added later is held to the same rules without a line here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.api import ADMIN_TOKEN, API, Live, running

from carebridge import errors
from carebridge.api import problems
from carebridge.api.main import build
from carebridge.contract import PROBLEM_TYPES
from carebridge.domain.kinds import KINDS

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
ID = re.compile(r"^[a-z]{2,5}_[a-z0-9_]{1,64}$")
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
LOOKS_LIKE_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
AMOUNT = re.compile(r"^-?\d+\.\d{2}$")
PUBLIC = {("GET", "/health"), ("POST", "/authenticate")}
"""Operations that take no credential."""
PAGING = {"limit", "cursor", "order", "max_age", "after", "start", "end", "types"}
"""Query parameters that page, order or window a list rather than filter on a field."""
AMOUNT_FIELDS = {"amount", "balance", "billed", "paid", "allowed", "patient_responsibility"}
PREFIXES = {
    "provider": "prv", "location": "loc", "resource": "res", "visit_reason": "vr",
    "patient": "pat", "appointment": "apt", "encounter": "enc", "charge": "chg", "claim": "clm",
    "payment": "pay", "remittance": "rem", "statement": "stm", "lab": "lab",
    "immunization": "imm", "document": "doc",
}  # fmt: skip
"""docs/api-conventions.md's id prefix of each stored kind."""
UPSTREAM_IDS = {"upstream_id"}
"""The upstream's own ids (a record's ``sources``), as the upstream spells them: not ids of
this API's objects."""
KNOWN_GAPS: set[str] = set()
"""Breaks of the conventions not fixed yet, each named exactly: the tests fail on any other
break, and on a gap that is fixed and still listed here (take it off the list)."""
MAX_WALK = 3
"""Records of each list whose every field is checked (enough to see each shape)."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Stack:
    live: Live
    doc: dict[str, Any]
    lists: dict[str, list[dict[str, Any]]]
    """The first page of every list the document has, as the admin key reads it."""


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method.upper(), path, operation


def required_params(operation: dict[str, Any], ids: dict[str, str]) -> dict[str, str]:
    """Values for a list's required query parameters, from ids already read."""
    values: dict[str, str] = {}
    for p in operation.get("parameters", []):
        if p["in"] == "query" and p.get("required"):
            values[p["name"]] = ids.get(p["name"], "2026-11-25")
    return values


def schema_of(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def is_page(doc: dict[str, Any], operation: dict[str, Any]) -> bool:
    ok = operation["responses"].get("200", {}).get("content", {}).get("application/json", {})
    schema = schema_of(doc, ok.get("schema", {}))
    return set(schema.get("properties", {})) == {"data", "has_more", "next_cursor"}


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    db = tmp_path_factory.mktemp("conventions") / "store.db"
    async with running(str(db), patients=8) as live:
        doc = (await live.client.get("/openapi.json")).json()
        patient = (await live.get("/patients", limit=1)).json()["data"][0]["id"]
        reasons = (await live.get("/visit_reasons", limit=1)).json()["data"]
        ids = {"patient_id": patient, "visit_reason_id": reasons[0]["id"], "end": "2026-11-28"}
        lists: dict[str, list[dict[str, Any]]] = {}
        for method, path, operation in operations(doc):
            if method == "GET" and "{" not in path and is_page(doc, operation):
                names = {p["name"] for p in operation.get("parameters", [])}
                paging = {"limit": 50} if "limit" in names else {}
                reply = await live.get(path, **paging, **required_params(operation, ids))
                assert reply.status_code == 200, (path, reply.text[:300])
                lists[path] = reply.json()["data"]
        yield Stack(live, doc, lists)


def assert_only_known(broken: list[str]) -> None:
    """No break of the conventions but the known gaps this check finds."""
    unknown = sorted(set(broken) - KNOWN_GAPS)
    assert not unknown, "\n".join(unknown)


def walk(value: Any, key: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every (key, value, the object holding it) in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v, value
            yield from walk(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, key)


# --- the document ------------------------------------------------------------------------------


async def test_every_operation_is_summarized_typed_secured_and_documents_its_problems(
    stack: Stack,
) -> None:
    doc = stack.doc
    assert "HTTPValidationError" not in str(doc)
    assert "ValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    schemas = doc["components"]["schemas"]
    titles = sorted(s.get("title", name) for name, s in schemas.items())
    assert len(titles) == len(set(titles)), [t for t in titles if titles.count(t) > 1]
    assert not [name for name in schemas if "__" in name]  # no module-qualified twin names
    assert_only_known(operation_breaks(doc))


def operation_breaks(doc: dict[str, Any]) -> list[str]:
    """How the document's operations break the conventions."""
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    broken: list[str] = []
    for method, path, operation in operations(doc):
        where = f"{method} {path}"
        summary = operation.get("summary", "")
        words = summary.split()
        if (
            len(words) < 2
            or all(w[0].isupper() for w in words)
            or re.search(r"\ba [aeiou]", summary)
        ):
            broken.append(f"{where}: summary {summary!r} is not written for a reader")
        if not operation.get("description"):
            broken.append(f"{where}: no description")
        responses = operation["responses"]
        ok = [s for s in responses if s.startswith("2")]
        if len(ok) != 1:
            broken.append(f"{where}: success statuses {ok}")
        for status in ok:
            if status == "204":
                continue
            content = responses[status].get("content", {}).get("application/json", {})
            schema = schema_of(doc, content.get("schema", {}))
            if schema.get("type") != "object" or not schema.get("properties"):
                broken.append(f"{where}: {status} is not a typed object")
            if schema.get("additionalProperties") is True:
                broken.append(f"{where}: {status} is an open object")
            if (
                "example" not in content
                and "examples" not in content
                and not schema.get("examples")
            ):
                broken.append(f"{where}: {status} has no example")
        needed = {"400", "422"}
        if (method, path) not in PUBLIC:
            needed |= {"401", "403", "404", "429", "503"}
            if operation.get("security") != [{"bearer": []}]:
                broken.append(f"{where}: not secured by the bearer scheme")
        for status in needed:
            body = responses.get(status, {}).get("content", {})
            if body.get(PROBLEM, {}).get("schema") != problem_ref:
                broken.append(f"{where}: {status} is not a documented problem")
        for status, response in responses.items():
            if status[0] in "45" and set(response.get("content", {})) != {PROBLEM}:
                broken.append(f"{where}: {status} answers something other than a problem")
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header" and parameter["name"].lower() == "authorization":
                broken.append(f"{where}: the credential is a header parameter")
    return broken


async def test_every_list_is_an_envelope_with_an_order_and_query_names_are_field_names(
    stack: Stack,
) -> None:
    assert_only_known(list_breaks(stack.doc))


def list_breaks(doc: dict[str, Any]) -> list[str]:
    """How the document's lists break the conventions."""
    broken: list[str] = []
    for method, path, operation in operations(doc):
        if method != "GET" or ("{" in path and not path.endswith("/deliveries")):
            continue
        if not is_page(doc, operation):
            continue
        params = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
        live_list = path in ("/availability", "/balances")  # answered in real time, one page
        if "order" not in params and not live_list:
            broken.append(f"{path}: no order parameter")
        page = schema_of(
            doc, operation["responses"]["200"]["content"]["application/json"]["schema"]
        )
        item = schema_of(doc, page["properties"]["data"].get("items", {}))
        fields = set(item.get("properties", {}))
        for name, parameter in params.items():
            if name in PAGING or name == "updated_since":
                continue
            if parameter.get("deprecated"):  # an old name, kept as an alias of a field's
                named = re.findall(r"`(\w+)`", parameter.get("description", ""))
                if not named or named[0] not in fields or named[0] not in params:
                    broken.append(f"{path}: deprecated {name} names no field it stands for")
                continue
            if name == "dob":
                broken.append(f"{path}: dob is not marked deprecated")
                continue
            if name not in fields:
                broken.append(f"{path}: query {name} is not a field of its items")
    return broken


async def test_every_known_gap_is_still_there(stack: Stack) -> None:
    """A gap that is fixed comes off KNOWN_GAPS (so the checks hold it fixed)."""
    assert set(operation_breaks(stack.doc) + list_breaks(stack.doc)) >= KNOWN_GAPS


async def test_every_stored_kind_has_a_get_by_id(stack: Stack) -> None:
    gets = {p for m, p, _ in operations(stack.doc) if m == "GET" and p.endswith("}")}
    for kind in KINDS.values():
        if kind.table is None:
            continue
        assert any(re.fullmatch(rf"/{kind.table}/\{{\w+\}}", p) for p in gets), kind.name
        listed = stack.lists.get(f"/{kind.table}", [])
        if listed:
            first = listed[0]
            one = await stack.live.get(f"/{kind.table}/{first['id']}")
            assert one.status_code == 200, (kind.name, one.text[:200])
            assert one.json() == first
        missing = await stack.live.get(f"/{kind.table}/{PREFIXES[kind.name]}_nosuchthing")
        assert missing.status_code == 404, (kind.name, missing.text[:200])
        assert missing.headers["content-type"] == PROBLEM
    other = (await stack.live.get("/patients", key="admin_b", limit=1)).json()["data"][0]["id"]
    assert (await stack.live.get(f"/patients/{other}")).status_code == 404  # another tenant's


# --- live answers ------------------------------------------------------------------------------


async def test_ids_timestamps_and_money_follow_one_style_in_every_list(stack: Stack) -> None:
    broken: list[str] = []
    assert stack.lists["/appointments"]
    assert stack.lists["/claims"]
    assert stack.lists["/charges"]
    for path, records in stack.lists.items():
        for record in records[:MAX_WALK]:
            if "id" in record and not ID.match(str(record["id"])):
                broken.append(f"{path}: id {record['id']!r}")
            for key, value, holder in walk(record):
                if isinstance(value, str):
                    is_id = key == "id" or key.endswith("_id")
                    if is_id and key not in UPSTREAM_IDS and not ID.match(value):
                        broken.append(f"{path}: {key} {value!r}")
                    if LOOKS_LIKE_INSTANT.match(value) and not INSTANT.match(value):
                        broken.append(f"{path}: {key} {value!r} is not RFC 3339 UTC seconds")
                    if key.endswith("_date") and not DATE.match(value):
                        broken.append(f"{path}: {key} {value!r} is not a date")
                if key in AMOUNT_FIELDS and not isinstance(value, dict | bool | None):
                    if not (isinstance(value, str) and AMOUNT.match(value)):
                        broken.append(f"{path}: {key} {value!r} is not a decimal string")
                    if "currency" not in holder and record.get("currency") != "USD":
                        broken.append(f"{path}: {key} without a currency")
    assert_only_known(broken)


async def test_every_list_answers_the_envelope_and_pages_by_its_cursor(stack: Stack) -> None:
    live = stack.live
    for path in ("/patients", "/appointments", "/charges", "/claims", "/events", "/audit_events"):
        first = await live.get(path, limit=2)
        body = first.json()
        assert set(body) == {"data", "has_more", "next_cursor"}, path
        assert body["has_more"] is (body["next_cursor"] is not None), path
        assert body["has_more"], path
        given = (
            {"after": body["next_cursor"]}
            if path in ("/events", "/audit_events")
            else {"cursor": body["next_cursor"]}
        )
        second = (await live.get(path, limit=2, **given)).json()
        assert not {r.get("id") for r in second["data"]} & {r.get("id") for r in body["data"]}
    hooks = await live.get("/webhooks")
    assert set(hooks.json()) == {"data", "has_more", "next_cursor"}


async def test_appointments_come_by_start_unless_asked_otherwise(stack: Stack) -> None:
    live = stack.live
    window = {"start": "2026-11-01", "end": "2026-12-20"}
    walked: dict[str, list[dict[str, Any]]] = {}
    for order in ("start", "-start", "id", None):
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = (
                window
                | ({"order": order} if order else {})
                | ({"cursor": cursor} if cursor else {})
            )
            reply = await live.get("/appointments", limit=3, **params)
            assert reply.status_code == 200, reply.text[:300]
            seen.extend(reply.json()["data"])
            cursor = reply.json()["next_cursor"]
            if cursor is None:
                break
        walked[str(order)] = seen
    by_start = walked["start"]
    assert len(by_start) > 6
    assert len({a["id"] for a in by_start}) == len(by_start)  # no page repeats or skips a row
    assert [(a["start"], a["id"]) for a in by_start] == sorted(
        (a["start"], a["id"]) for a in by_start
    )
    assert walked["None"] == by_start  # the default
    assert walked["-start"] == by_start[::-1]
    assert [a["id"] for a in walked["id"]] == sorted(a["id"] for a in by_start)
    assert {a["id"] for a in walked["id"]} == {a["id"] for a in by_start}

    refused = await live.get("/appointments", order="status")
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["order"]
    for path in ("/patients", "/claims"):
        assert (await live.get(path, order="-id")).status_code == 422, path
    by_id = (await live.get("/appointments", limit=2, order="id", **window)).json()["next_cursor"]
    crossed = await live.get("/appointments", limit=2, order="start", cursor=by_id, **window)
    assert crossed.status_code == 400  # a cursor belongs to the order that issued it
    assert [e["field"] for e in crossed.json()["errors"]] == ["cursor"]


async def test_every_answer_carries_a_request_id_and_every_problem_names_it(stack: Stack) -> None:
    client = stack.live.client
    answers = [
        await client.get("/health"),
        await client.get("/openapi.json"),
        await stack.live.get("/patients", limit=1),
        await stack.live.get("/patients", limit=0),
        await client.get("/patients"),
        await client.get("/no/such/route"),
        await client.get("/v1/patients"),
    ]
    ids = [reply.headers["x-request-id"] for reply in answers]
    assert all(rid.startswith("req_") for rid in ids)
    assert len(set(ids)) == len(ids)  # one per request
    for reply, rid in zip(answers, ids, strict=True):
        if reply.headers.get("content-type") == PROBLEM:
            assert reply.json()["request_id"] == rid
    mine = await client.get("/patients", headers={"X-Request-Id": "trace-42"})
    assert mine.headers["x-request-id"] == "trace-42"
    assert mine.json()["request_id"] == "trace-42"
    assert {r.status_code for r in answers} >= {200, 401, 404, 422}


def _invalid_request(method: str, path: str) -> dict[str, Any]:
    concrete = re.sub(r"\{[^}]+\}", "xyz_1", path)
    return {"method": method, "url": concrete, "params": {"limit": "-1", "surprise": "1"},
            "json": {"surprise": True}}  # fmt: skip


async def test_every_operation_asks_for_its_credential_before_it_validates(stack: Stack) -> None:
    client = stack.live.client
    wrong: list[str] = []
    for method, path, _ in operations(stack.doc):
        if (method, path) in PUBLIC:
            continue
        for headers in ({}, {"Authorization": "Bearer cbk_not_a_real_key"}):
            reply = await client.request(**_invalid_request(method, path), headers=headers)
            if reply.status_code != 401 or reply.headers["content-type"] != PROBLEM:
                wrong.append(f"{method} {path}: {reply.status_code}")
            elif reply.json().get("errors"):
                wrong.append(f"{method} {path}: a 401 that names the route's fields")
    assert not wrong, "\n".join(wrong)


async def test_malformed_syntax_is_400_and_invalid_values_are_422(stack: Stack) -> None:
    live = stack.live
    auth = live.auth("admin_a") | {"Content-Type": "application/json"}
    for method, path, operation in operations(stack.doc):
        if "requestBody" not in operation or (method, path) in PUBLIC or "{" in path:
            continue
        if path == "/tenants":
            auth_here = {
                "Authorization": f"Bearer {ADMIN_TOKEN}",
                "Content-Type": "application/json",
            }
        else:
            auth_here = auth
        malformed = await live.client.request(method, path, content=b"{nope", headers=auth_here)
        assert malformed.status_code == 400, (path, malformed.text[:200])
        assert malformed.json()["errors"][0]["rule"] == "json_invalid"
        invalid = await live.client.request(method, path, json={"surprise": 1}, headers=auth_here)
        assert invalid.status_code == 422, (path, invalid.text[:200])
        rules = {(e["field"], e["rule"]) for e in invalid.json()["errors"]}
        assert ("surprise", "extra_forbidden") in rules, path
    assert (await live.get("/patients", cursor="!!")).status_code == 400
    bad_version = await live.client.get("/health", headers={"Carebridge-Version": "7"})
    assert bad_version.status_code == 400
    assert (await live.get("/patients", limit=9999)).status_code == 422
    assert (await live.get("/patients", updated_since="1700000000")).status_code == 422


async def test_a_creating_write_answers_201_with_its_location(stack: Stack) -> None:
    live = stack.live
    patient = stack.lists["/charges"][0]["patient_id"]
    body = {"patient_id": patient, "procedure_code": "99213", "diagnosis_codes": ["J06.9"],
            "service_date": "2026-11-24"}  # fmt: skip
    for prefix in ("", "/v1"):
        made = await live.client.post(
            f"{prefix}/create_charge",
            json=body,
            headers=live.auth("admin_a") | {"Idempotency-Key": f"loc{prefix.replace('/', '-')}"},
        )
        assert made.status_code == 201, made.text[:300]
        charge = made.json()["data"]
        assert made.headers["location"] == f"{prefix}/charges/{charge['id']}"
        assert made.json()["ledger_id"].startswith("led_")
        assert charge["currency"] == "USD"
        assert (await live.get(made.headers["location"])).json()["id"] == charge["id"]
    hook = await live.post("/webhooks", {"url": "https://hooks.example.com/x", "event_types": []})
    assert hook.status_code == 201, hook.text[:300]
    assert hook.headers["location"] == f"/webhooks/{hook.json()['id']}"
    assert (await live.get(hook.headers["location"])).status_code == 200


async def test_the_callers_own_rate_limit_is_separate_from_the_upstream_budget(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREBRIDGE_RATE_LIMIT", "3/3600")
    app = build(stack.live.deployment)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API) as client:
        mine, theirs = stack.live.auth("admin_a"), stack.live.auth("admin_b")
        answers = [await client.get("/providers", headers=mine) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["ratelimit"].split(";")[1] for r in answers] == [
            "r=2",
            "r=1",
            "r=0",
            "r=0",
        ]
        assert answers[0].headers["ratelimit-policy"] == '"key";q=3;w=3600'
        refused = answers[3]
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"].endswith("/rate-limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        assert "x-upstream-ratelimit-limit" in answers[0].headers
        assert (await client.get("/providers", headers=theirs)).status_code == 200  # per key


async def test_every_problem_type_has_its_page(stack: Stack) -> None:
    pages = Path(__file__).parents[2] / "docs" / "problems"
    for slug in PROBLEM_TYPES:
        page = pages / f"{slug}.md"
        assert page.is_file(), slug
        text = page.read_text()
        assert text.startswith("# "), slug
        assert f"https://carebridge.dev/problems/{slug}" in text, slug
    documented = {p.stem for p in pages.glob("*.md") if p.stem != "README"}
    assert documented == set(PROBLEM_TYPES)
    rules = [c for c in vars(errors).values() if isinstance(c, type)]
    refusals = {c for c in rules if issubclass(c, errors.DomainError)} - {errors.RefusedReplay}
    assert {problems._slug(c.__name__) for c in refusals} <= set(PROBLEM_TYPES)
    assert set(problems.DEFAULT_KINDS.values()) <= set(PROBLEM_TYPES)
    seen = {
        (await stack.live.get("/patients", limit=0)).json()["type"],
        (await stack.live.client.get("/patients")).json()["type"],
    }
    assert {t.rsplit("/", 1)[1] for t in seen} <= set(PROBLEM_TYPES)
