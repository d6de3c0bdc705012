"""Read use cases over the store: authorization by scope, tenant scoping, and the audit of
every PHI access, recorded before the answer leaves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from carebridge.errors import CarebridgeError
from carebridge.ports.records import AuditSink, KeyStore, RecordPage, RecordStore
from carebridge.services import keys

PHI_KINDS = frozenset({"patient", "appointment", "encounter", "claim", "charge", "document"})


class Unauthorized(CarebridgeError):
    """No usable credential (401)."""


class Forbidden(CarebridgeError):
    """The credential lacks the scope the route needs (403)."""


class NotFound(CarebridgeError):
    """No such record for this tenant (404: another tenant's ids look absent, never forbidden)."""


@dataclass(frozen=True)
class Principal:
    """Who calls: a tenant's API key and its scopes."""

    id: str
    tenant_id: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        """Raise :class:`Forbidden` unless the scopes cover ``scope``."""
        if not keys.allows(self.scopes, scope):
            raise Forbidden(f"this key lacks the scope {scope}")


async def authenticate(store: KeyStore, authorization: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer cbk_...`` header."""
    token = (authorization or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    parts = keys.split(token)
    if parts is None:
        raise Unauthorized("an API key is required (Authorization: Bearer cbk_...)")
    record = await store.by_prefix(parts[0])
    if record is None or record.revoked or not keys.verify(token, record.secret_hash):
        raise Unauthorized("the API key is not valid")
    return Principal(record.id, record.tenant_id, record.scopes)


@dataclass
class Records:
    """Reads of normalized records for one deployment."""

    store: RecordStore
    audit: AuditSink
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def list(
        self,
        principal: Principal,
        kind: str,
        route: str,
        *,
        filters: dict[str, str],
        updated_since: datetime | None = None,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RecordPage:
        """A page of the tenant's records of ``kind``; PHI reads are audited first."""
        principal.require(f"{kind}.read")
        page = await self.store.page(
            principal.tenant_id,
            kind,
            filters=filters,
            updated_since=updated_since,
            starts_from=starts_from,
            starts_before=starts_before,
            limit=limit,
            cursor=cursor,
        )
        await self._audit(principal, kind, route, page.items)
        return page

    async def get(
        self, principal: Principal, kind: str, route: str, entity_id: str
    ) -> dict[str, Any]:
        """One record of the tenant; another tenant's id is not found."""
        principal.require(f"{kind}.read")
        record = await self.store.get(principal.tenant_id, kind, entity_id)
        if record is None:
            raise NotFound(f"no {kind} {entity_id}")
        await self._audit(principal, kind, route, [record])
        return record

    async def _audit(self, principal: Principal, kind: str, route: str, items: Any) -> None:
        if kind not in PHI_KINDS:
            return
        patients = sorted(
            {str(item["id"] if kind == "patient" else item.get("patient_id")) for item in items}
            - {"None"}
        )
        await self.audit.record(principal.tenant_id, principal.id, route, patients, self.clock())
