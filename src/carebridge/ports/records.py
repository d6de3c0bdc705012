"""Ports of the store as the use cases see it: normalized records, API keys and the audit log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol


@dataclass(frozen=True)
class RecordPage:
    """A page of records and the cursor of the next page, if any.

    ``raw`` is each record's JSON text as stored (a list route sends it without re-encoding);
    ``patient_ids`` names the patient each record is about, for the audit.
    """

    raw: Sequence[str]
    patient_ids: Sequence[str | None]
    next_cursor: str | None

    @property
    def items(self) -> list[dict[str, Any]]:
        """The records, parsed."""
        return [json.loads(text) for text in self.raw]

    @cached_property
    def patients(self) -> tuple[str, ...]:
        """The distinct patients the records are about, sorted (the audit's subjects), worked
        out once per page."""
        return tuple(sorted({p for p in self.patient_ids if p}))

    @cached_property
    def joined(self) -> bytes:
        """The records as the inside of a JSON array, encoded once per page (a page the store
        serves again is not serialized again)."""
        return ",".join(self.raw).encode()

    def spliced(self, head: bytes) -> bytes:
        """:attr:`joined` with ``head`` in place of each record's opening brace (a field
        spliced in front of the others), encoded once per page and ``head``."""
        done: dict[bytes, bytes] = self.__dict__.setdefault("_spliced", {})
        found = done.get(head)
        if found is None:
            found = done[head] = b",".join(head + text.encode()[1:] for text in self.raw)
        return found


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: its hash, tenant and scopes."""

    id: str
    tenant_id: str
    secret_hash: str
    scopes: frozenset[str]
    revoked: bool


class RecordStore(Protocol):
    """Normalized records per tenant."""

    async def page(
        self,
        tenant_id: str,
        kind: str,
        *,
        filters: dict[str, str],
        updated_since: datetime | None,
        starts_from: datetime | None,
        starts_before: datetime | None,
        limit: int,
        cursor: str | None,
        order: str = "id",
    ) -> RecordPage: ...

    async def get(self, tenant_id: str, kind: str, entity_id: str) -> dict[str, Any] | None: ...


class KeyStore(Protocol):
    """API keys by their public prefix."""

    async def by_prefix(self, prefix: str) -> KeyRecord | None: ...


class AuditSink(Protocol):
    """Where every PHI access is recorded, durably, before the response."""

    async def record(
        self, tenant_id: str, principal: str, route: str, patient_ids: Sequence[str], at: datetime
    ) -> int: ...


class AuditReader(Protocol):
    """The audit log, read back in sequence order."""

    async def events(self, tenant_id: str, *, after: int, limit: int) -> list[dict[str, Any]]: ...


class EventReader(Protocol):
    """A tenant's ordered event log."""

    async def events(
        self, tenant_id: str, *, after: int, types: Sequence[str], limit: int
    ) -> list[dict[str, Any]]: ...
