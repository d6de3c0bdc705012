"""The client's own behaviour at its transport seam (``httpx.MockTransport`` answering as the
API does): retries honouring ``Retry-After``, one idempotency key across a write's retries,
problems raised as their typed classes, auto-paging by cursor and by ``after``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from carebridge.client import (
    ApiError,
    Carebridge,
    Conflict,
    ConnectionFailed,
    IdempotencyKeyReused,
    MissingScope,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServerError,
    ServiceUnavailable,
    Unprocessable,
    UpstreamBusy,
)
from carebridge.client._core import parse_retry_after
from carebridge.client._errors import BY_TYPE
from carebridge.contract import PROBLEM_TYPES, TYPES_BASE

EVENT = {
    "id": "evt_1",
    "seq": 1,
    "type": "appointment.cancelled",
    "kind": "appointment",
    "entity_id": "apt_x",
    "patient_id": "pat_x",
    "diff": {"status": ["scheduled", "cancelled"]},
    "occurred_at": "2026-11-24T15:00:00Z",
    "detected_at": "2026-11-24T15:00:02Z",
    "redacted": False,
}


def problem(status: int, slug: str, **extra: Any) -> httpx.Response:
    body = {
        "type": f"{TYPES_BASE}{slug}",
        "title": "t",
        "status": status,
        "detail": "d",
        "request_id": "req_abc",
    }
    return httpx.Response(
        status,
        json=body | extra,
        headers={"content-type": "application/problem+json", "x-request-id": "req_abc"}
        | extra.pop("headers", {}),
    )


class Script:
    """Answers in order, recording each request."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.answers.pop(0)


def client(script: Any, **options: Any) -> tuple[Carebridge, list[float]]:
    waits: list[float] = []
    made = Carebridge(
        "http://api.test",
        api_key="cbk_test",
        transport=httpx.MockTransport(script),
        sleep=waits.append,
        retry=options.pop("retry", RetryPolicy(jitter=0)),
        **options,
    )
    return made, waits


def test_a_429_is_retried_after_its_retry_after_seconds() -> None:
    script = Script(
        problem(429, "rate-limited", headers={"Retry-After": "7"}),
        httpx.Response(200, json={"status": "ok"}),
    )
    api, waits = client(script)
    assert api.operations.health().status == "ok"
    assert waits == [7.0]
    assert script.seen[0].headers["authorization"] == "Bearer cbk_test"


def test_a_503_without_retry_after_backs_off_exponentially_then_raises_its_type() -> None:
    script = Script(*(problem(503, "upstream-busy") for _ in range(3)))
    api, waits = client(script)
    with pytest.raises(UpstreamBusy) as raised:
        api.operations.health()
    assert waits == [0.5, 1.0]
    assert isinstance(raised.value, ServiceUnavailable)
    assert raised.value.request_id == "req_abc"
    assert len(script.seen) == 3


def test_a_retry_after_beyond_the_policy_is_not_waited_for() -> None:
    script = Script(problem(429, "rate-limited", headers={"Retry-After": "3600"}))
    api, waits = client(script)
    with pytest.raises(RateLimited) as raised:
        api.operations.health()
    assert waits == []
    assert raised.value.retry_after == 3600


def test_an_http_date_retry_after_is_read_against_now() -> None:
    now = datetime(2026, 11, 24, 15, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Tue, 24 Nov 2026 15:00:09 GMT", now) == 9.0
    assert parse_retry_after("soon", now) is None


def test_other_errors_are_not_retried() -> None:
    script = Script(problem(500, "internal-error"))
    api, waits = client(script)
    with pytest.raises(ServerError):
        api.operations.health()
    assert waits == []


def test_a_write_keeps_one_generated_idempotency_key_across_its_retries() -> None:
    script = Script(
        problem(503, "upstream-busy", headers={"Retry-After": "1"}),
        httpx.Response(502),
    )
    api, _ = client(script)
    with pytest.raises(ApiError):
        api.appointments.check_in("apt_x")
    keys = {r.headers["idempotency-key"] for r in script.seen}
    assert len(script.seen) == 2
    assert len(keys) == 1
    assert keys.pop().startswith("cbpy_")


def test_a_given_idempotency_key_is_sent_and_each_write_gets_its_own_otherwise() -> None:
    script = Script(*(problem(404, "not-found") for _ in range(3)))
    api, _ = client(script)
    for key in ("mine-1", None, None):
        with pytest.raises(NotFound):
            api.appointments.cancel("apt_x", idempotency_key=key)
    keys = [r.headers["idempotency-key"] for r in script.seen]
    assert keys[0] == "mine-1"
    assert len(set(keys)) == 3
    assert [r.method for r in script.seen] == ["POST"] * 3


def test_a_read_carries_no_idempotency_key() -> None:
    script = Script(httpx.Response(200, json={"status": "ok"}))
    api, _ = client(script)
    api.operations.health()
    assert "idempotency-key" not in script.seen[0].headers


def test_problems_raise_the_class_of_their_type_with_the_rfc_9457_fields() -> None:
    errors = [{"field": "charge_ids.0", "rule": "missing", "message": "required"}]
    script = Script(
        problem(422, "idempotency-key-reused"),
        problem(403, "missing-scope"),
        problem(409, "slot-taken", code="SlotTaken"),
        problem(422, "validation-error", errors=errors),
    )
    api, _ = client(script)
    with pytest.raises(IdempotencyKeyReused):
        api.operations.health()
    with pytest.raises(MissingScope):
        api.operations.health()
    with pytest.raises(Conflict) as conflict:
        api.operations.health()
    assert conflict.value.code == "SlotTaken"
    assert conflict.value.slug == "slot-taken"
    with pytest.raises(Unprocessable) as invalid:
        api.operations.health()
    assert invalid.value.errors[0].field == "charge_ids.0"
    assert invalid.value.errors[0].rule == "missing"
    assert invalid.value.status == 422
    assert invalid.value.detail == "d"


def test_every_problem_type_the_client_names_is_one_the_contract_documents() -> None:
    assert set(BY_TYPE) <= set(PROBLEM_TYPES)


def test_no_answer_is_retried_then_raised_as_connection_failed() -> None:
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)

    api, waits = client(refuse)
    with pytest.raises(ConnectionFailed):
        api.operations.health()
    assert len(calls) == 3
    assert waits == [0.5, 1.0]


def page(data: list[Any], cursor: str | None) -> httpx.Response:
    return httpx.Response(
        200, json={"data": data, "has_more": cursor is not None, "next_cursor": cursor}
    )


def test_the_event_log_pages_by_its_numeric_after() -> None:
    second = EVENT | {"id": "evt_2", "seq": 2}
    script = Script(page([EVENT], "1"), page([second], None))
    api, _ = client(script)
    events = list(api.events.list(after=0, limit=1))
    assert [e.seq for e in events] == [1, 2]
    assert script.seen[0].url.params["after"] == "0"
    assert script.seen[1].url.params["after"] == "1"
    assert "cursor" not in script.seen[1].url.params


def test_a_list_pages_by_cursor_and_keeps_its_filters() -> None:
    webhook = {
        "id": "whk_1",
        "url": "https://hooks.example.com/x",
        "event_types": ["*"],
        "scopes": [],
        "state": "enabled",
        "consecutive_failures": 0,
        "previous_secret_expires_at": None,
        "created_at": "2026-11-24T15:00:00Z",
        "disabled_at": None,
    }
    script = Script(page([webhook], "c2"), page([webhook | {"id": "whk_2"}], None))
    api, _ = client(script)
    ids = [w.id for w in api.webhooks.list(limit=1)]
    assert ids == ["whk_1", "whk_2"]
    assert script.seen[1].url.params["cursor"] == "c2"
    assert script.seen[1].url.params["limit"] == "1"


def test_fields_the_client_does_not_know_yet_are_ignored_at_every_depth() -> None:
    """The API may add fields within a version; an older client keeps reading the page."""
    newer = EVENT | {"added_later": {"x": 1}}
    answer = page([newer], None)
    body = answer.json() | {"also_added": True}
    script = Script(httpx.Response(200, json=body))
    api, _ = client(script)
    events = list(api.events.list(after=0))
    assert [(e.id, e.seq) for e in events] == [("evt_1", 1)]
    assert not hasattr(events[0], "added_later")
