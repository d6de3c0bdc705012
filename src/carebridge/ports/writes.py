"""Ports of the write path: idempotency records, the write ledger, and freshness marks.

The outcomes of :meth:`Idempotency.begin` follow Stripe's semantics (see
``carebridge.store.idempotency``): run the request, replay a stored answer, refuse another
body under the same key (422), or refuse while the first request still runs (409).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from carebridge.domain.provenance import DomainModel

LEASE = timedelta(seconds=30)
"""How long an in-flight key stays claimed without its request renewing the claim. A process
killed mid-write stops renewing, so its key is free again (``Start(resumed=True)``) a lease
later, instead of answering "in flight" until the record expires."""

RESUMING: ContextVar[bool] = ContextVar("carebridge_write_resuming", default=False)
"""True while a write runs for a key whose earlier attempt died mid-flight: the upstream may
already hold its effect, so a driver looks for it before sending again."""


@dataclass(frozen=True)
class Start:
    """Run the request; complete the record afterwards. ``resumed``: the key was in flight in a
    request that died without an answer (its lease ran out), so an earlier attempt may have
    reached the upstream."""

    resumed: bool = False


@dataclass(frozen=True)
class Replay:
    """Answer with the stored response: a write's outcome (``status_code`` 201 when it created
    a record, else 200), or a refusal by the rules (``status_code`` the error's ``status``,
    ``response`` ``{"refused": {"code", "message", "fields"}}``; see ``services.writes``)."""

    status_code: int
    response: Any


@dataclass(frozen=True)
class Mismatch:
    """The key was used with another request body (422)."""


@dataclass(frozen=True)
class InFlight:
    """The first request with this key is still running (409)."""


Outcome = Start | Replay | Mismatch | InFlight


def request_hash(method: str, path: str, body: Any) -> str:
    """A stable hash of a request: method, path and canonical JSON body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


class Idempotency(Protocol):
    """Idempotency records per tenant and principal."""

    async def begin(
        self, tenant_id: str, principal: str, key: str, fingerprint: str, now: datetime
    ) -> Outcome: ...

    async def complete(
        self, tenant_id: str, principal: str, key: str, status_code: int, response: Any
    ) -> None: ...

    async def abandon(self, tenant_id: str, principal: str, key: str) -> None: ...

    async def renew(self, tenant_id: str, principal: str, key: str, now: datetime) -> None:
        """Extend an in-flight claim by a :data:`LEASE` from ``now``."""
        ...


class WriteLedger(Protocol):
    """Every write carebridge sends upstream: accepted, then its outcome."""

    async def open(
        self, tenant_id: str, operation: str, request: dict[str, Any], now: datetime
    ) -> int: ...

    async def close(
        self,
        entry: int,
        *,
        state: str,
        entity_id: str | None,
        diverged: Sequence[str],
        now: datetime,
    ) -> None: ...


class RecordWriter(Protocol):
    """Where records read or written through the upstream are kept, with freshness marks."""

    async def put(
        self, tenant_id: str, kind: str, records: Sequence[DomainModel], fetched_at: datetime
    ) -> int: ...

    async def refreshed_at(self, tenant_id: str, kind: str, scope: str) -> datetime | None: ...

    async def mark_refreshed(self, tenant_id: str, kind: str, scope: str, at: datetime) -> None: ...


@dataclass(frozen=True)
class Opened:
    """What opening a write decided: its key's ``outcome`` (always :class:`Start` without a
    key) and, when it runs, its ledger ``entry``."""

    outcome: Outcome
    entry: int | None = None


@dataclass(frozen=True)
class Audited:
    """The audit entry a write makes when it runs: who, through which route, about whom."""

    principal: str
    route: str
    patient_ids: Sequence[str]


class WriteJournal(Protocol):
    """A write's bookkeeping in two transactions, one on each side of the upstream call.

    :meth:`open` claims the ``Idempotency-Key`` (if any) and, when the write is to run, enters
    it in the ledger and the audit log, all in one transaction. :meth:`close` keeps the records
    written, closes the ledger entry and stores the answer under the key, all in one
    transaction (the key's record then lives a day from ``claimed_at``, the ``now`` it was
    opened at). :meth:`fail` closes the entry (or leaves it accepted) and releases the key.
    """

    async def open(
        self,
        tenant_id: str,
        *,
        key: str | None,
        fingerprint: str,
        operation: str,
        request: dict[str, Any],
        audited: Audited,
        now: datetime,
    ) -> Opened: ...

    async def close(
        self,
        tenant_id: str,
        *,
        key: str | None,
        principal: str,
        claimed_at: datetime,
        entry: int,
        state: str,
        entity_id: str | None,
        diverged: Sequence[str],
        kind: str,
        records: Sequence[DomainModel],
        status_code: int,
        response: Any,
        now: datetime,
    ) -> None: ...

    async def fail(
        self,
        tenant_id: str,
        *,
        key: str | None,
        principal: str,
        entry: int | None,
        state: str | None,
        now: datetime,
    ) -> None: ...
