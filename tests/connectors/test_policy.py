"""The retry policy table: every kind of outcome maps to one action."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from carebridge.connectors.carecloud.policy import (
    MAX_RETRY_AFTER,
    Action,
    Surface,
    classify,
    parse_retry_after,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REQUEST = httpx.Request("GET", "https://upstream.invalid/v2/patients")


def _response(
    status: int, *, headers: dict[str, str] | None = None, json: object = None
) -> httpx.Response:
    return httpx.Response(status, headers=headers, json=json, request=REQUEST)


@pytest.mark.parametrize("status", [200, 201, 204, 302])
def test_success_is_ok(status: int) -> None:
    assert classify(_response(status), surface="v2", idempotent=True).action is Action.OK


@pytest.mark.parametrize(
    ("surface", "action"),
    [("v2", Action.REFRESH), ("fhir", Action.REFRESH), ("portal", Action.RELOGIN)],
)
def test_unauthorized_renews_the_surface_credential(surface: Surface, action: Action) -> None:
    assert classify(_response(401), surface=surface, idempotent=True).action is action


def test_portal_401_carries_the_envelope_code() -> None:
    body = {"error": {"code": "mfa_required", "message": "again"}}
    resolution = classify(_response(401, json=body), surface="portal", idempotent=False)
    assert (resolution.action, resolution.reason) == (Action.RELOGIN, "mfa_required")


def test_rate_limited_with_retry_after_seconds() -> None:
    resolution = classify(
        _response(429, headers={"Retry-After": "7"}), surface="v2", idempotent=False
    )
    assert resolution.action is Action.RATE_LIMITED
    assert resolution.retry_after == 7.0
    assert resolution.congestion


def test_retry_after_as_an_http_date() -> None:
    assert parse_retry_after("Wed, 25 Nov 2026 12:00:30 GMT", now=NOW) == 30.0
    assert parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now=NOW) == 0.0
    assert parse_retry_after("999999", now=NOW) == MAX_RETRY_AFTER
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_server_errors_retry_reads_and_verify_writes(status: int) -> None:
    read = classify(_response(status), surface="v2", idempotent=True)
    write = classify(_response(status), surface="v2", idempotent=False)
    assert read.action is Action.RETRY
    assert write.action is Action.VERIFY
    assert read.congestion


@pytest.mark.parametrize("status", [400, 403, 404, 409, 413, 422])
def test_client_errors_fail(status: int) -> None:
    resolution = classify(_response(status), surface="v2", idempotent=True)
    assert resolution.action is Action.FAIL
    assert resolution.status == status


def test_portal_lockout_fails_with_its_wait() -> None:
    body = {"error": {"code": "account_locked", "message": "locked"}}
    resolution = classify(
        _response(423, headers={"Retry-After": "900"}, json=body), surface="portal", idempotent=True
    )
    assert (resolution.action, resolution.reason, resolution.retry_after) == (
        Action.FAIL,
        "account_locked",
        300.0,
    )


def test_a_connect_error_is_safe_to_resend_even_for_a_write() -> None:
    error = httpx.ConnectError("refused", request=REQUEST)
    assert classify(error, surface="v2", idempotent=False).action is Action.RETRY


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("slow", request=REQUEST),
        httpx.RemoteProtocolError("dropped", request=REQUEST),
        httpx.ReadError("reset", request=REQUEST),
    ],
)
def test_a_lost_write_is_verified_before_any_retry(error: Exception) -> None:
    assert classify(error, surface="v2", idempotent=False).action is Action.VERIFY
    assert classify(error, surface="v2", idempotent=True).action is Action.RETRY


def test_an_unknown_exception_fails() -> None:
    resolution = classify(ValueError("bug"), surface="fhir", idempotent=True)
    assert (resolution.action, resolution.reason) == (Action.FAIL, "ValueError")


def test_a_socket_error_below_httpx_is_a_lost_connection() -> None:
    assert (
        classify(ConnectionAbortedError(), surface="v2", idempotent=False).action is Action.VERIFY
    )
    assert classify(ConnectionRefusedError(), surface="v2", idempotent=False).action is Action.RETRY
