"""The MCP server's confirmation tokens and approval policy (:mod:`ports.confirmations`).

A token is used by one conditional ``UPDATE ... WHERE used_at IS NULL``: whichever process gets
the row count 1 runs the write, every other use is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from carebridge.ports.confirmations import Confirmation
from carebridge.store.engine import commit_one, read_first
from carebridge.store.schema import mcp_confirmations as T
from carebridge.store.schema import mcp_policies as P


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands instants back naive (they are stored in UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _row(row: Any) -> Confirmation:
    return Confirmation(
        id=row.id,
        tenant_id=row.tenant_id,
        principal=row.principal,
        tool=row.tool,
        args_hash=row.args_hash,
        secret_hash=row.secret_hash,
        issued_at=_aware(row.issued_at) or row.issued_at,
        expires_at=_aware(row.expires_at) or row.expires_at,
        needs_person=bool(row.needs_person),
        approved_by=row.approved_by,
        approved_at=_aware(row.approved_at),
        used_at=_aware(row.used_at),
    )


class SqlConfirmations:
    """``ConfirmationStore`` over the ``mcp_confirmations`` and ``mcp_policies`` tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _one(self, tenant_id: str, token_id: str) -> Any:
        return and_(T.c.tenant_id == tenant_id, T.c.id == token_id)

    async def issue(self, token: Confirmation) -> None:
        await commit_one(
            self.engine,
            T.insert().values(
                id=token.id,
                tenant_id=token.tenant_id,
                principal=token.principal,
                tool=token.tool,
                args_hash=token.args_hash,
                secret_hash=token.secret_hash,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
                needs_person=token.needs_person,
            ),
        )

    async def get(self, tenant_id: str, token_id: str) -> Confirmation | None:
        row = await read_first(self.engine, select(T).where(self._one(tenant_id, token_id)))
        return None if row is None else _row(row)

    async def approve(self, tenant_id: str, token_id: str, approver: str, now: datetime) -> bool:
        result = await commit_one(
            self.engine,
            update(T)
            .where(
                and_(
                    self._one(tenant_id, token_id),
                    T.c.used_at.is_(None),
                    T.c.approved_at.is_(None),
                    T.c.expires_at > now,
                )
            )
            .values(approved_by=approver, approved_at=now),
        )
        return result.rowcount == 1

    async def use(self, tenant_id: str, token_id: str, now: datetime) -> bool:
        result = await commit_one(
            self.engine,
            update(T)
            .where(
                and_(
                    self._one(tenant_id, token_id),
                    T.c.used_at.is_(None),
                    T.c.expires_at > now,
                    (T.c.needs_person.is_(False)) | (T.c.approved_at.is_not(None)),
                )
            )
            .values(used_at=now),
        )
        return result.rowcount == 1

    async def needs_person(self, tenant_id: str, principal: str) -> bool:
        row = await read_first(
            self.engine,
            select(P.c.needs_person).where(
                and_(P.c.tenant_id == tenant_id, P.c.principal == principal)
            ),
        )
        return bool(row is not None and row.needs_person)

    async def set_needs_person(
        self, tenant_id: str, principal: str, needs_person: bool, now: datetime
    ) -> None:
        where = and_(P.c.tenant_id == tenant_id, P.c.principal == principal)
        result = await commit_one(
            self.engine, update(P).where(where).values(needs_person=needs_person, updated_at=now)
        )
        if result.rowcount == 1:
            return
        try:
            await commit_one(
                self.engine,
                P.insert().values(
                    tenant_id=tenant_id,
                    principal=principal,
                    needs_person=needs_person,
                    updated_at=now,
                ),
            )
        except IntegrityError:  # another process inserted it first: update that row
            await commit_one(
                self.engine,
                update(P).where(where).values(needs_person=needs_person, updated_at=now),
            )
