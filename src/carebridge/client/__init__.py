"""The typed Python client of the carebridge API: ``Carebridge`` (sync) and ``AsyncCarebridge``.

::

    from carebridge.client import Carebridge

    with Carebridge("http://127.0.0.1:8700", api_key="cbk_...") as client:
        for patient in client.patients.list(limit=50):  # every page, fetched as it goes
            print(patient.id, patient.birth_date)
        booked = client.appointments.create(patient_id=..., resource_id=..., ...)

- One namespace per resource (``client.patients``, ``client.appointments``, ``client.claims``,
  ``client.events``, ``client.webhooks``...); records are the contract's typed models
  (:mod:`carebridge.contract`).
- Lists are auto-paging iterators over ``{data, has_more, next_cursor}`` (the event log by its
  numeric ``after``).
- Every write carries an ``Idempotency-Key`` (generated, or ``idempotency_key=``), the same on
  every retry.
- 429 and 503 answers, and requests that got no answer, are retried (bounded), waiting as
  ``Retry-After`` says.
- Error answers raise typed exceptions (one class per problem type or status) carrying the RFC
  9457 fields and the request id.
- :func:`carebridge.client.webhooks.verify` checks a webhook delivery's Standard Webhooks
  signature.

It imports only :mod:`carebridge.contract` and :mod:`carebridge.domain` from carebridge (an
import-linter contract), never the server's layers.
"""

from __future__ import annotations

from carebridge.client._async import AsyncCarebridge
from carebridge.client._core import RetryPolicy, new_idempotency_key
from carebridge.client._engine import AsyncPager, Pager
from carebridge.client._errors import (
    ApiError,
    BadGateway,
    BadRequest,
    CarebridgeClientError,
    Conflict,
    ConnectionFailed,
    ContentTooLarge,
    FieldError,
    Forbidden,
    GatewayTimeout,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    Locked,
    MissingScope,
    NotConfigured,
    NotFound,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    TimedOut,
    Unauthorized,
    Unprocessable,
    UpstreamAuth,
    UpstreamBusy,
    UpstreamFailed,
    UpstreamUnreachable,
    WebhookVerificationError,
)
from carebridge.client._sync import Carebridge
from carebridge.client.webhooks import WebhookMessage, verify

__all__ = [
    "ApiError",
    "AsyncCarebridge",
    "AsyncPager",
    "BadGateway",
    "BadRequest",
    "Carebridge",
    "CarebridgeClientError",
    "Conflict",
    "ConnectionFailed",
    "ContentTooLarge",
    "FieldError",
    "Forbidden",
    "GatewayTimeout",
    "IdempotencyKeyInFlight",
    "IdempotencyKeyReused",
    "Locked",
    "MissingScope",
    "NotConfigured",
    "NotFound",
    "Pager",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "TimedOut",
    "Unauthorized",
    "Unprocessable",
    "UpstreamAuth",
    "UpstreamBusy",
    "UpstreamFailed",
    "UpstreamUnreachable",
    "WebhookMessage",
    "WebhookVerificationError",
    "new_idempotency_key",
    "verify",
]
