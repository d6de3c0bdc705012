"""Ports of the write path: idempotency records, the write ledger, and freshness marks.

The outcomes of :meth:`Idempotency.begin` follow Stripe's semantics (see
``carebridge.store.idempotency``): run the request, replay a stored answer, refuse another
body under the same key (422), or refuse while the first request still runs (409).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from carebridge.domain.provenance import DomainModel


@dataclass(frozen=True)
class Start:
    """Run the request; complete the record afterwards."""


@dataclass(frozen=True)
class Replay:
    """Answer with the stored response."""

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
