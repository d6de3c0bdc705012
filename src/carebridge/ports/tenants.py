"""Ports of the tenants as the administration use cases see them: onboarding, listing, showing.

::

    TenantStore
    ├── add_tenant   the tenant row and its secrets, sealed, in one transaction
    ├── tenants      every tenant, in id order
    └── tenant       one tenant, with the names (never the values) of its sealed secrets

Settings are the upstream profile (URLs, practice); secrets are credentials, which the store
seals with the vault before they reach a row and never hands back through this port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class TenantRecord:
    """A tenant as stored: its profile and the names of its sealed secrets."""

    id: str
    name: str
    upstream: str
    settings: Mapping[str, Any]
    created_at: datetime
    disabled: bool
    secret_names: tuple[str, ...]


class TenantStore(Protocol):
    """The deployment's tenants."""

    async def add_tenant(
        self,
        *,
        tenant_id: str,
        name: str,
        upstream: str,
        settings: Mapping[str, Any],
        secrets: Mapping[str, str],
        now: datetime,
    ) -> None:
        """Onboard a tenant with its settings and sealed secrets, in one transaction.

        Raises:
            carebridge.errors.TenantExists: the id is onboarded already.
            carebridge.errors.ConfigError: no vault key to seal the secrets with.
        """
        ...

    async def tenants(self) -> list[TenantRecord]:
        """Every tenant (enabled or not), in id order."""
        ...

    async def tenant(self, tenant_id: str) -> TenantRecord | None:
        """One tenant, or None."""
        ...
