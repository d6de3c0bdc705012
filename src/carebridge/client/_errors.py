"""The client's exception tree: every answer that is not a success becomes one of these.

The API answers every error as an RFC 9457 problem (``application/problem+json``). The client
raises the class of the problem's ``type`` when it knows that type, else the class of its status,
so ``except NotFound`` and ``except IdempotencyKeyReused`` both work. Every :class:`ApiError`
carries the problem's fields (``type``, ``title``, ``status``, ``detail``, ``instance``), its
field ``errors``, its ``code`` (a rule's name, on refusals) and the request id (``X-Request-Id``
or the body's ``request_id``), which is what to quote when asking for help.

::

    CarebridgeClientError
    ├── ConnectionFailed                   no answer (after the retries)
    │   └── TimedOut                       the answer did not come in time
    ├── WebhookVerificationError           a webhook's signature, timestamp or body is not valid
    └── ApiError                           a problem answer; status, type, detail, request_id
        ├── BadRequest                400  malformed syntax: a bad cursor, an invalid key header
        ├── Unauthorized              401  no usable credential
        ├── Forbidden                 403  the key lacks a scope
        │   └── MissingScope          403  type missing-scope
        ├── NotFound                  404  absent, or another tenant's
        ├── Conflict                  409  a taken slot, a signed encounter, a tenant that exists
        │   └── IdempotencyKeyInFlight 409 the key's first request is still running
        ├── ContentTooLarge           413  the body is over the API's limit
        ├── Unprocessable             422  well-formed but invalid; ``errors`` names the fields
        │   └── IdempotencyKeyReused  422  the key was used with another body
        ├── Locked                    423  sign-in locked; ``retry_after``
        ├── RateLimited               429  over the key's own rate; ``retry_after``
        └── ServerError               5xx
            ├── BadGateway            502  the upstream failed
            │   ├── UpstreamAuth      502  type upstream-auth
            │   └── UpstreamFailed    502  type upstream-error
            ├── ServiceUnavailable    503  ``retry_after``
            │   ├── UpstreamBusy      503  type upstream-busy: the upstream is rate limiting
            │   └── NotConfigured     503  type not-configured
            └── GatewayTimeout        504
                └── UpstreamUnreachable 504 type upstream-unreachable

:func:`from_response` picks the class; it never raises itself, whatever the body holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

PROBLEM_TYPES = "https://carebridge.dev/problems/"
"""The prefix of carebridge's problem type URIs; the rest is the type's slug."""


class CarebridgeClientError(Exception):
    """The root of every error the client raises."""


class ConnectionFailed(CarebridgeClientError):
    """The request got no answer (connection refused or reset), after the retries."""


class TimedOut(ConnectionFailed):
    """The answer did not come within the client's timeout, after the retries."""


class WebhookVerificationError(CarebridgeClientError):
    """A webhook request whose signature, timestamp or body does not verify."""


@dataclass(frozen=True)
class FieldError:
    """One refused input of a problem: its dotted name (a query or header name too), the rule
    it broke (``missing``, ``pattern``, ``extra_forbidden``...) and why, in words."""

    field: str
    message: str
    rule: str | None = None


class ApiError(CarebridgeClientError):
    """An error answer from the API, with the RFC 9457 problem's fields.

    Attributes:
        status: the HTTP status.
        type: the problem type URI (``about:blank`` for a plain HTTP status).
        title: the status's short title.
        detail: what went wrong, in words written by carebridge (never request values).
        instance: the problem occurrence's URI, when the API gives one.
        code: the refusing rule's name (``SlotTaken``...), on refusals.
        errors: the refused fields.
        request_id: the request's id, from ``X-Request-Id`` or the body.
        retry_after: seconds to wait before retrying, from ``Retry-After``.
        body: the whole problem body as answered.
    """

    status_code: ClassVar[int | None] = None
    problem_type: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        status: int,
        type: str = "about:blank",  # the RFC 9457 member's name
        title: str = "",
        detail: str = "",
        instance: str | None = None,
        code: str | None = None,
        errors: tuple[FieldError, ...] = (),
        request_id: str | None = None,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.instance = instance
        self.code = code
        self.errors = errors
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body if body is not None else {}
        where = f" (request {request_id})" if request_id else ""
        super().__init__(f"{status} {title or 'Error'}: {detail}{where}")

    @property
    def slug(self) -> str | None:
        """The carebridge problem type's slug (``missing-scope``), or None for others."""
        if self.type.startswith(PROBLEM_TYPES):
            return self.type[len(PROBLEM_TYPES) :]
        return None


class BadRequest(ApiError):
    """400: the request's syntax is malformed (a bad cursor, an invalid key header...)."""

    status_code = 400


class Unauthorized(ApiError):
    """401: no usable credential."""

    status_code = 401


class Forbidden(ApiError):
    """403: the credential may not do this."""

    status_code = 403


class MissingScope(Forbidden):
    """403: the key lacks the scope the operation needs (``detail`` names it)."""

    problem_type = "missing-scope"


class NotFound(ApiError):
    """404: no such record, or another tenant's."""

    status_code = 404


class Conflict(ApiError):
    """409: the request conflicts with the record's state."""

    status_code = 409


class IdempotencyKeyInFlight(Conflict):
    """409: a request with the same ``Idempotency-Key`` is still running."""

    problem_type = "idempotency-key-in-flight"


class ContentTooLarge(ApiError):
    """413: the request body is over the API's limit."""

    status_code = 413


class Unprocessable(ApiError):
    """422: well-formed but invalid input; ``errors`` names each field and its rule."""

    status_code = 422


class IdempotencyKeyReused(Unprocessable):
    """422: the ``Idempotency-Key`` was first used with another body."""

    problem_type = "idempotency-key-reused"


class Locked(ApiError):
    """423: sign-in is locked for ``retry_after`` seconds."""

    status_code = 423


class RateLimited(ApiError):
    """429: over the key's own request rate; wait ``retry_after`` seconds."""

    status_code = 429


class ServerError(ApiError):
    """5xx: carebridge or its upstream failed."""


class BadGateway(ServerError):
    """502: the upstream failed."""

    status_code = 502


class UpstreamAuth(BadGateway):
    """502: the upstream refused carebridge's credentials for the tenant."""

    problem_type = "upstream-auth"


class UpstreamFailed(BadGateway):
    """502: the upstream answered an error."""

    problem_type = "upstream-error"


class ServiceUnavailable(ServerError):
    """503: try again after ``retry_after`` seconds."""

    status_code = 503


class UpstreamBusy(ServiceUnavailable):
    """503: the upstream is rate limiting carebridge."""

    problem_type = "upstream-busy"


class NotConfigured(ServiceUnavailable):
    """503: the tenant has no working upstream connection."""

    problem_type = "not-configured"


class GatewayTimeout(ServerError):
    """504: the upstream did not answer in time."""

    status_code = 504


class UpstreamUnreachable(GatewayTimeout):
    """504: the upstream could not be reached."""

    problem_type = "upstream-unreachable"


def _classes(root: type[ApiError]) -> list[type[ApiError]]:
    found = [root]
    for sub in root.__subclasses__():
        found.extend(_classes(sub))
    return found


BY_STATUS: dict[int, type[ApiError]] = {
    c.status_code: c for c in _classes(ApiError) if c.status_code and "problem_type" not in vars(c)
}
"""The class of each status the API answers."""
BY_TYPE: dict[str, type[ApiError]] = {
    c.problem_type: c for c in _classes(ApiError) if "problem_type" in vars(c) and c.problem_type
}
"""The class of each problem type slug the client knows."""


def class_for(status: int, problem_type: str) -> type[ApiError]:
    """The class of a problem: its type's when known (and of the same status), else its
    status's, else :class:`ServerError` (5xx) or :class:`ApiError`."""
    if problem_type.startswith(PROBLEM_TYPES):
        known = BY_TYPE.get(problem_type[len(PROBLEM_TYPES) :])
        if known is not None and issubclass(known, BY_STATUS.get(status, ApiError)):
            return known
    if status in BY_STATUS:
        return BY_STATUS[status]
    return ServerError if status >= 500 else ApiError


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (its delay-seconds form), or None. The HTTP-date form is read
    by the retry policy, which knows the time."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def from_response(response: httpx.Response) -> ApiError:
    """The error of an error answer (a problem, or any other body)."""
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    status = response.status_code
    problem_type = _text(body.get("type")) or "about:blank"
    raw_errors = body.get("errors")
    errors = tuple(
        FieldError(str(e.get("field", "")), str(e.get("message", "")), _text(e.get("rule")))
        for e in (raw_errors if isinstance(raw_errors, list) else [])
        if isinstance(e, dict)
    )
    request_id = response.headers.get("x-request-id") or _text(body.get("request_id"))
    cls = class_for(status, problem_type)
    return cls(
        status=status,
        type=problem_type,
        title=_text(body.get("title")) or response.reason_phrase,
        detail=_text(body.get("detail")) or "",
        instance=_text(body.get("instance")),
        code=_text(body.get("code")),
        errors=errors,
        request_id=request_id,
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
        body=body,
    )
