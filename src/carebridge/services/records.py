"""Who calls: API keys turned into principals, their scopes, and the access errors every use
case raises (401, 403, and 404 for another tenant's ids)."""

from __future__ import annotations

from dataclasses import dataclass

from carebridge.errors import Forbidden as Forbidden
from carebridge.errors import NotFound as NotFound
from carebridge.errors import Unauthorized as Unauthorized
from carebridge.ports.records import AuditReader as AuditReader
from carebridge.ports.records import EventReader as EventReader
from carebridge.ports.records import KeyStore as KeyStore
from carebridge.services import keys


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


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization`` header: what follows ``Bearer``, or the bare value."""
    token = (authorization or "").strip()
    return token[7:].strip() if token.lower().startswith("bearer ") else token


async def authenticate(store: KeyStore, authorization: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer cbk_...`` header."""
    token = bearer(authorization)
    parts = keys.split(token)
    if parts is None:
        raise Unauthorized("an API key is required (Authorization: Bearer cbk_...)")
    record = await store.by_prefix(parts[0])
    if record is None or record.revoked or not keys.verify(token, record.secret_hash):
        raise Unauthorized("the API key is not valid")
    return Principal(record.id, record.tenant_id, record.scopes)
