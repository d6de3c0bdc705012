"""Ports of the API keys as the administration use cases see them: stored, listed, revoked.

A key itself is never stored: only its public prefix and the hash of its secret
(:mod:`carebridge.services.keys` mints them). Every method takes the tenant and filters by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class KeyInfo:
    """An API key as an operator sees it: never the key, nor its hash."""

    id: str
    tenant_id: str
    prefix: str
    scopes: frozenset[str]
    label: str
    created_at: datetime
    revoked: bool


class KeyAdmin(Protocol):
    """A tenant's API keys."""

    async def add_key(
        self,
        *,
        key_id: str,
        tenant_id: str,
        prefix: str,
        secret_hash: str,
        scopes: frozenset[str],
        label: str,
        now: datetime,
    ) -> None:
        """Store an API key's hash and scopes.

        Raises:
            carebridge.errors.UnknownTenant: no such tenant.
        """
        ...

    async def keys(self, tenant_id: str) -> list[KeyInfo]:
        """The tenant's keys, revoked ones included, oldest first."""
        ...

    async def revoke_key(self, tenant_id: str, key_id: str, *, now: datetime) -> bool:
        """Revoke a tenant's key; False when the tenant has no such live key."""
        ...
