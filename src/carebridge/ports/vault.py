"""Ports of the credential vault and the audit chain it keys, for the operator's checks.

::

    SecretVault   seals one secret of a tenant (a replaced credential), and re-wraps every
                  sealed secret under the key ring's primary key (rotation)
    AuditChain    walks a tenant's audit chain under its key and holds it to its checkpoint
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Verification:
    """The result of walking one tenant's audit chain."""

    entries: int
    first_broken: int | None  # the seq of the first entry whose MAC does not follow, or missing
    problem: str | None = None  # what is wrong, in words (no entry content)

    @property
    def intact(self) -> bool:
        """No entry was edited, removed or reordered, and the chain reaches its checkpoint."""
        return self.first_broken is None and self.problem is None


class SecretVault(Protocol):
    """The sealed secrets of every tenant."""

    @property
    def primary(self) -> str:
        """The id of the key that seals and wraps."""
        ...

    async def seal(self, tenant_id: str, slot: str, secret: str, *, now: datetime) -> None:
        """Seal and store (or replace) one secret of a tenant."""
        ...

    async def rotate(self, *, now: datetime) -> int:
        """Re-wrap every secret whose key is not the primary; returns how many changed."""
        ...


class AuditChain(Protocol):
    """The tenants' audit chains, read back for verification."""

    async def verify(self, tenant_id: str) -> Verification:
        """Recompute the tenant's chain from genesis under its key.

        Raises:
            carebridge.errors.VaultError: the audit key does not open with this vault.
        """
        ...
