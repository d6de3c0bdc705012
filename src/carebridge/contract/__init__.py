"""The API's wire contract (v1): a pydantic model of every answer the API gives.

Framework-free on purpose: it imports pydantic and :mod:`carebridge.domain` only (an
import-linter contract), so the typed client, the MCP server and the API share it.

- :mod:`~carebridge.contract.records`: one model per kind of record (``RECORDS``), derived from
  the kinds registry's domain models; a kind whose records carry amounts adds ``currency``.
- :mod:`~carebridge.contract.envelopes`: the list envelope ``Page[T]`` (``data``, ``has_more``,
  ``next_cursor``) and a write's answer ``WriteAnswer[T]``.
- :mod:`~carebridge.contract.problems`: the RFC 9457 problem body and its problem types.
- :mod:`~carebridge.contract.resources`: events, audit entries, webhooks, deliveries, the sync
  report, health and tenants.
- :mod:`~carebridge.contract.time`: the one timestamp format (``2026-11-24T15:00:00Z``).

The conventions these models follow are written down in ``docs/api-conventions.md``.
"""

from __future__ import annotations

from carebridge.contract.envelopes import Page, WriteAnswer
from carebridge.contract.problems import PROBLEM_TYPES, TYPES_BASE, FieldError, Problem
from carebridge.contract.records import (
    CURRENCY,
    RECORDS,
    Balance,
    Slot,
    carries_money,
    record_model,
)
from carebridge.contract.resources import (
    AuditEntry,
    Delivery,
    Event,
    Health,
    Replay,
    SecretRotated,
    StreamReport,
    SyncReport,
    Tenant,
    UpstreamHealth,
    Webhook,
    WebhookCreated,
)
from carebridge.contract.time import Timestamp, rfc3339

VERSION = "1"
"""The contract's version (the ``Carebridge-Version`` every answer carries)."""

PREVIOUS_VERSION = "0"
"""The version before v1, whose shapes ``Carebridge-Version: 0`` asks for (ADR 0015)."""

__all__ = [
    "CURRENCY",
    "PREVIOUS_VERSION",
    "PROBLEM_TYPES",
    "RECORDS",
    "TYPES_BASE",
    "VERSION",
    "AuditEntry",
    "Balance",
    "Delivery",
    "Event",
    "FieldError",
    "Health",
    "Page",
    "Problem",
    "Replay",
    "SecretRotated",
    "Slot",
    "StreamReport",
    "SyncReport",
    "Tenant",
    "Timestamp",
    "UpstreamHealth",
    "Webhook",
    "WebhookCreated",
    "WriteAnswer",
    "carries_money",
    "record_model",
    "rfc3339",
]
