"""The MFA ledger of upstream accounts in the store (``upstream_mfa``), shared by every process.

A TOTP step is claimed by one conditional ``UPDATE ... WHERE last_step < :step`` whose row count
says who won, so two processes (on SQLite or PostgreSQL) can never send the same step. The same
statement refuses while the account has too many consecutive failures or is locked, so a
process that reads a stale record still cannot add a failure past the bound.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.ports.upstream import MfaAccountState, StepClaim
from carebridge.store.engine import commit_one, read_first
from carebridge.store.schema import upstream_mfa

T = upstream_mfa.c


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands instants back naive (they were stored as UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class SqlMfaSteps:
    """``MfaSteps`` over the store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _ensure(self, conn: AsyncConnection, account: str) -> None:
        values = {"account": account, "last_step": -1, "failures": 0, "locked_until": None}
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        await conn.execute(insert(upstream_mfa).values(**values).on_conflict_do_nothing())

    async def state(self, account: str) -> MfaAccountState:
        row = await read_first(self.engine, select(upstream_mfa).where(T.account == account))
        if row is None:
            return MfaAccountState()
        return MfaAccountState(
            last_step=int(row.last_step),
            failures=int(row.failures),
            locked_until=_aware(row.locked_until),
        )

    async def claim(
        self, account: str, step: int, *, max_failures: int, now: datetime
    ) -> StepClaim:
        now = now.astimezone(UTC)  # SQLite compares instants as text: always UTC
        async with self.engine.begin() as conn:
            await self._ensure(conn, account)
            result = await conn.execute(
                update(upstream_mfa)
                .where(
                    and_(
                        T.account == account,
                        T.last_step < step,
                        T.failures < max_failures,
                        or_(T.locked_until.is_(None), T.locked_until <= now),
                    )
                )
                .values(last_step=step)
            )
            if result.rowcount == 1:
                return "claimed"
            row = (await conn.execute(select(upstream_mfa).where(T.account == account))).one()
        locked = _aware(row.locked_until)
        if row.failures >= max_failures or (locked is not None and now < locked):
            return "blocked"
        return "used"

    async def failed(self, account: str) -> int:
        async with self.engine.begin() as conn:
            await self._ensure(conn, account)
            await conn.execute(
                update(upstream_mfa).where(T.account == account).values(failures=T.failures + 1)
            )
            count = (
                await conn.execute(select(T.failures).where(T.account == account))
            ).scalar_one()
        return int(count)

    async def succeeded(self, account: str) -> None:
        await commit_one(
            self.engine,
            update(upstream_mfa)
            .where(and_(T.account == account, T.failures != 0))
            .values(failures=0),
        )

    async def locked(self, account: str, until: datetime) -> None:
        until = until.astimezone(UTC)
        async with self.engine.begin() as conn:
            await self._ensure(conn, account)
            await conn.execute(
                update(upstream_mfa)
                .where(
                    and_(
                        T.account == account,
                        or_(T.locked_until.is_(None), T.locked_until < until),
                    )
                )
                .values(locked_until=until)
            )

    async def reset(self, account: str) -> None:
        await commit_one(
            self.engine,
            update(upstream_mfa).where(T.account == account).values(failures=0, locked_until=None),
        )
