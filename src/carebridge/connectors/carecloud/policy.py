"""What to do with an upstream outcome: a pure table from a response or an exception to a
:class:`Resolution`. The driver acts on it; nothing here performs I/O.

Writes are never retried blind: a failure whose effect is unknown (a timeout, a dropped
connection or a 5xx after the request was sent) resolves to ``VERIFY``, and the driver reads back
before it tries again.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

import httpx

Surface = Literal["v2", "portal", "fhir"]

MAX_RETRY_AFTER = 300.0  # seconds; a longer ask is capped, the caller's deadline decides


class Action(StrEnum):
    """The driver's next step."""

    OK = "ok"
    RETRY = "retry"  # send the same request again after the delay
    VERIFY = "verify"  # a write whose effect is unknown: read back, then decide
    REFRESH = "refresh"  # renew the access token, then retry
    RELOGIN = "relogin"  # the session is gone or wants MFA again: sign in, then retry
    RATE_LIMITED = "rate_limited"  # back off (Retry-After) and tell the throttle
    FAIL = "fail"  # a final answer: raise


@dataclass(frozen=True)
class Resolution:
    """The verdict on one outcome.

    Attributes:
        action: the next step.
        reason: a short machine-readable reason (``"status_503"``, ``"timeout"`` ...).
        retry_after: seconds the upstream asked us to wait, when it said so.
        status: the HTTP status, when there was a response.
        congestion: whether the throttle should treat this as a sign of overload.
    """

    action: Action
    reason: str
    retry_after: float | None = None
    status: int | None = None
    congestion: bool = False


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), capped."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def _portal_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def classify(
    outcome: httpx.Response | BaseException,
    *,
    surface: Surface,
    idempotent: bool,
    now: datetime | None = None,
) -> Resolution:
    """Decide what a response or a transport exception means for the driver."""
    if isinstance(outcome, BaseException):
        return _classify_exception(outcome, idempotent=idempotent)
    status = outcome.status_code
    retry_after = parse_retry_after(outcome.headers.get("retry-after"), now=now)
    if status < 400:
        return Resolution(Action.OK, "ok", status=status)
    if status == 401:
        if surface == "portal":
            return Resolution(
                Action.RELOGIN, _portal_code(outcome) or "unauthorized", status=status
            )
        return Resolution(Action.REFRESH, "unauthorized", status=status)
    if status == 429:
        return Resolution(
            Action.RATE_LIMITED, "rate_limited", retry_after, status=status, congestion=True
        )
    if status == 423 and surface == "portal":
        return Resolution(Action.FAIL, _portal_code(outcome) or "locked", retry_after, status)
    if status in (408, 500, 502, 503, 504) or status >= 500:
        action = Action.RETRY if idempotent else Action.VERIFY
        return Resolution(action, f"status_{status}", retry_after, status=status, congestion=True)
    return Resolution(Action.FAIL, f"status_{status}", status=status)


def _classify_exception(error: BaseException, *, idempotent: bool) -> Resolution:
    unknown = Action.RETRY if idempotent else Action.VERIFY
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # Nothing reached the upstream: safe to send again, write or not.
        return Resolution(Action.RETRY, "connect", congestion=isinstance(error, httpx.PoolTimeout))
    if isinstance(error, httpx.TimeoutException):
        return Resolution(unknown, "timeout", congestion=True)
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return Resolution(unknown, "connection_lost")
    if isinstance(error, httpx.TransportError):
        return Resolution(unknown, "transport")
    if isinstance(error, ConnectionRefusedError):
        return Resolution(Action.RETRY, "connect")
    if isinstance(error, OSError):  # a reset or abort below httpx: the request may have landed
        return Resolution(unknown, "connection_lost")
    return Resolution(Action.FAIL, type(error).__name__)
