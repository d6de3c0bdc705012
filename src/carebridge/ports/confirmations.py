"""Ports of the agents' two-phase writes: the confirmation tokens a write preview issues, and
the per-key policy that says whether a person must approve them.

A token is kept once, by id, with the hash of its secret (never the secret), the principal and
tool it was issued to, the hash of the exact arguments, and its expiry. Using it is one
conditional update, so a token is used at most once across every process over the store.
Every method takes the tenant and filters by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Confirmation:
    """A confirmation token as the store keeps it."""

    id: str
    tenant_id: str
    principal: str
    tool: str
    args_hash: str
    secret_hash: str
    issued_at: datetime
    expires_at: datetime
    needs_person: bool
    approved_by: str | None = None
    approved_at: datetime | None = None
    used_at: datetime | None = None


class ConfirmationStore(Protocol):
    """The tenant's confirmation tokens and its keys' approval policy."""

    async def issue(self, token: Confirmation) -> None:
        """Keep a new token."""
        ...

    async def get(self, tenant_id: str, token_id: str) -> Confirmation | None:
        """The tenant's token ``token_id`` (None: no such token for this tenant)."""
        ...

    async def approve(self, tenant_id: str, token_id: str, approver: str, now: datetime) -> bool:
        """Record a person's approval; False unless the token is unused, unexpired at ``now``
        and not approved yet."""
        ...

    async def use(self, tenant_id: str, token_id: str, now: datetime) -> bool:
        """Mark the token used, atomically: True for exactly one caller across processes, and
        only while it is unexpired at ``now`` (and approved, when it needs a person)."""
        ...

    async def needs_person(self, tenant_id: str, principal: str) -> bool:
        """Whether the principal's writes wait for a person's approval."""
        ...

    async def set_needs_person(
        self, tenant_id: str, principal: str, needs_person: bool, now: datetime
    ) -> None:
        """Set the principal's approval policy."""
        ...
